//! Handshake signatures made on a PKCS#11 token.
//!
//! [`TokenKey`] is a rustls [`SigningKey`] over an ECDSA private key that
//! stays on the token: rustls hands it the bytes to sign, it hashes them,
//! the token signs the hash with `CKM_ECDSA`, and the raw `r || s` result is
//! encoded as the DER `ECDSA-Sig-Value` TLS expects.
//!
//! Signing blocks on the token. On a multi-threaded tokio runtime it runs
//! in [`tokio::task::block_in_place`], so the worker's other tasks move to
//! another thread meanwhile; elsewhere it simply blocks. Sessions come from
//! a small pool (a cryptoki `Session` is `Send` but not `Sync`), so
//! concurrent handshakes sign in parallel.

use std::fmt;
use std::sync::{Arc, Mutex};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use ring::digest;
use rustls::sign::{Signer, SigningKey};
use rustls::{SignatureAlgorithm, SignatureScheme};
use rustls_pki_types::{AlgorithmIdentifier, SubjectPublicKeyInfoDer, alg_id};

pub use cryptoki;

use crate::Error;
use crate::blocking::off_async_workers;

fn tok(e: impl fmt::Display) -> Error {
    Error::Token(e.to_string())
}

/// Loads a PKCS#11 module and initialises it for use from many threads.
/// Call once per process and share the result (it is cheap to clone).
///
/// # Errors
/// [`Error::Token`] when the library cannot be loaded or initialised.
pub fn load_module(path: impl AsRef<std::path::Path>) -> Result<Pkcs11, Error> {
    let p = Pkcs11::new(path).map_err(tok)?;
    match p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(p),
        Err(e) => Err(tok(e)),
    }
}

/// Finds the slot holding the token labelled `label`.
///
/// # Errors
/// [`Error::Token`] when there is none.
pub fn find_token(pkcs11: &Pkcs11, label: &str) -> Result<Slot, Error> {
    for slot in pkcs11.get_slots_with_initialized_token().map_err(tok)? {
        if pkcs11.get_token_info(slot).map_err(tok)?.label().trim_end() == label {
            return Ok(slot);
        }
    }
    Err(Error::Token(format!("no token labelled {label:?}")))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Curve {
    P256,
    P384,
}

impl Curve {
    fn from_params(params: &[u8]) -> Option<Self> {
        const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
        const P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
        match params {
            P256 => Some(Self::P256),
            P384 => Some(Self::P384),
            _ => None,
        }
    }
    fn scheme(self) -> SignatureScheme {
        match self {
            Self::P256 => SignatureScheme::ECDSA_NISTP256_SHA256,
            Self::P384 => SignatureScheme::ECDSA_NISTP384_SHA384,
        }
    }
    fn digest(self) -> &'static digest::Algorithm {
        match self {
            Self::P256 => &digest::SHA256,
            Self::P384 => &digest::SHA384,
        }
    }
    fn alg_id(self) -> AlgorithmIdentifier {
        match self {
            Self::P256 => alg_id::ECDSA_P256,
            Self::P384 => alg_id::ECDSA_P384,
        }
    }
}

struct Inner {
    pkcs11: Pkcs11,
    slot: Slot,
    key: ObjectHandle,
    curve: Curve,
    spki: Vec<u8>,
    idle: Mutex<Vec<Session>>,
    max_idle: usize,
}

/// An ECDSA (P-256 or P-384) private key on a PKCS#11 token.
#[derive(Clone)]
pub struct TokenKey {
    inner: Arc<Inner>,
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenKey")
            .field("slot", &self.inner.slot)
            .field("curve", &self.inner.curve)
            .finish()
    }
}

impl TokenKey {
    /// Logs in to the token in `slot` with `pin` and finds the private key
    /// labelled `key_label` and its public half.
    ///
    /// # Errors
    /// [`Error::Token`] for a failed login, a missing key, a non-EC key or
    /// an unsupported curve.
    pub fn open(pkcs11: &Pkcs11, slot: Slot, pin: &str, key_label: &str) -> Result<Self, Error> {
        let session = pkcs11.open_ro_session(slot).map_err(tok)?;
        match session.login(UserType::User, Some(&AuthPin::from(pin.to_owned()))) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => return Err(tok(e)),
        }
        let label = Attribute::Label(key_label.as_bytes().to_vec());
        let key = *session
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::KeyType(KeyType::EC),
                label.clone(),
            ])
            .map_err(tok)?
            .first()
            .ok_or_else(|| Error::Token(format!("no EC private key labelled {key_label:?}")))?;
        let public = *session
            .find_objects(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::KeyType(KeyType::EC),
                label,
            ])
            .map_err(tok)?
            .first()
            .ok_or_else(|| Error::Token(format!("no EC public key labelled {key_label:?}")))?;
        let mut params = None;
        let mut point = None;
        for a in session
            .get_attributes(public, &[AttributeType::EcParams, AttributeType::EcPoint])
            .map_err(tok)?
        {
            match a {
                Attribute::EcParams(p) => params = Some(p),
                Attribute::EcPoint(p) => point = Some(p),
                _ => {}
            }
        }
        let curve = params
            .as_deref()
            .and_then(Curve::from_params)
            .ok_or_else(|| Error::Token("unsupported EC curve (P-256 and P-384 are)".into()))?;
        let point = point.ok_or_else(|| Error::Token("public key has no EC point".into()))?;
        let point = unwrap_octet_string(&point).unwrap_or(&point);
        let spki = rustls::sign::public_key_to_spki(&curve.alg_id(), point)
            .as_ref()
            .to_vec();
        Ok(Self {
            inner: Arc::new(Inner {
                pkcs11: pkcs11.clone(),
                slot,
                key,
                curve,
                spki,
                idle: Mutex::new(vec![session]),
                max_idle: 8,
            }),
        })
    }

    /// Signs `message` (hashing it first) and returns the DER signature.
    fn sign_blocking(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let hash = digest::digest(self.inner.curve.digest(), message);
        let session = self.take_session()?;
        let result = session.sign(&Mechanism::Ecdsa, self.inner.key, hash.as_ref());
        match result {
            Ok(raw) => {
                self.give_back(session);
                ecdsa_raw_to_der(&raw)
                    .ok_or_else(|| Error::Token("token returned a malformed signature".into()))
            }
            // A session that failed is not reused.
            Err(e) => Err(tok(e)),
        }
    }

    fn take_session(&self) -> Result<Session, Error> {
        let pooled = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        match pooled {
            Some(s) => Ok(s),
            // Login state is per application and token, so a new session of
            // this process is already logged in.
            None => self
                .inner
                .pkcs11
                .open_ro_session(self.inner.slot)
                .map_err(tok),
        }
    }

    fn give_back(&self, session: Session) {
        let mut idle = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < self.inner.max_idle {
            idle.push(session);
        }
    }
}

impl SigningKey for TokenKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        let scheme = self.inner.curve.scheme();
        offered.contains(&scheme).then(|| {
            Box::new(TokenSigner {
                key: self.clone(),
                scheme,
            }) as Box<dyn Signer>
        })
    }

    fn public_key(&self) -> Option<SubjectPublicKeyInfoDer<'_>> {
        Some(SubjectPublicKeyInfoDer::from(self.inner.spki.as_slice()))
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::ECDSA
    }
}

#[derive(Debug)]
struct TokenSigner {
    key: TokenKey,
    scheme: SignatureScheme,
}

impl Signer for TokenSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        off_async_workers(|| self.key.sign_blocking(message)).map_err(|e| {
            tracing::warn!(error = %e, "token signature failed");
            rustls::Error::General(e.to_string())
        })
    }

    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }
}

/// CKA_EC_POINT is a DER OCTET STRING around the point (some tokens give
/// the bare point).
fn unwrap_octet_string(der: &[u8]) -> Option<&[u8]> {
    let (&tag, rest) = der.split_first()?;
    if tag != 0x04 {
        return None;
    }
    let (len, body) = der_len(rest)?;
    (body.len() == len && body.first() == Some(&0x04)).then_some(body)
}

fn der_len(b: &[u8]) -> Option<(usize, &[u8])> {
    let (&first, rest) = b.split_first()?;
    if first < 0x80 {
        return Some((usize::from(first), rest));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 2 || rest.len() < n {
        return None;
    }
    let (len_bytes, rest) = rest.split_at(n);
    Some((
        len_bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b)),
        rest,
    ))
}

/// `r || s` (each half the length) to DER `SEQUENCE { INTEGER r, INTEGER s }`.
pub fn ecdsa_raw_to_der(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return None;
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let mut body = Vec::with_capacity(raw.len() + 8);
    der_integer(&mut body, r);
    der_integer(&mut body, s);
    let mut out = Vec::with_capacity(body.len() + 4);
    out.push(0x30);
    push_len(&mut out, body.len());
    out.extend_from_slice(&body);
    Some(out)
}

fn der_integer(out: &mut Vec<u8>, mut v: &[u8]) {
    while v.len() > 1 && v[0] == 0 {
        v = &v[1..];
    }
    let pad = v.first().is_some_and(|b| b & 0x80 != 0);
    out.push(0x02);
    push_len(out, v.len() + usize::from(pad));
    if pad {
        out.push(0);
    }
    out.extend_from_slice(v);
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    // Lengths here are at most a few hundred bytes.
    if len < 0x80 {
        out.push(len.to_le_bytes()[0]);
    } else if len < 0x100 {
        out.extend_from_slice(&[0x81, len.to_le_bytes()[0]]);
    } else {
        let b = len.to_be_bytes();
        out.extend_from_slice(&[0x82, b[b.len() - 2], b[b.len() - 1]]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_to_der() {
        // High bit set on r: padded; leading zeros on s: stripped.
        let mut raw = vec![0x80; 32];
        raw.extend_from_slice(&[0u8; 31]);
        raw.push(0x05);
        let der = ecdsa_raw_to_der(&raw).unwrap();
        assert_eq!(&der[..4], &[0x30, 2 + 33 + 3, 0x02, 33]);
        assert_eq!(der[4], 0);
        assert_eq!(&der[der.len() - 3..], &[0x02, 1, 0x05]);
        assert!(ecdsa_raw_to_der(&[1, 2, 3]).is_none());
        // P-521 sized values need a long-form length.
        let der = ecdsa_raw_to_der(&[0xff; 132]).unwrap();
        assert_eq!(&der[..3], &[0x30, 0x81, 2 * (2 + 67)]);
    }

    #[test]
    fn ec_point_unwrap() {
        let mut der = vec![0x04, 65, 0x04];
        der.extend_from_slice(&[1; 64]);
        assert_eq!(unwrap_octet_string(&der).unwrap().len(), 65);
        assert!(unwrap_octet_string(&der[2..]).is_none());
    }
}
