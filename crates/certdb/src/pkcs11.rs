//! PKCS#11 tokens (cryptoki): keys generated on and never leaving the token,
//! certificates stored on the token, signing with token keys.
//!
//! One `Pkcs11` context per library per process (PKCS#11 allows one
//! `C_Initialize` per application), a pool of sessions per token, and a
//! single login per token (PKCS#11 login state is per application and
//! token, shared by all sessions).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{
    Attribute, AttributeType, CertificateType, KeyType as CkKeyType, ObjectClass, ObjectHandle,
};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use der::asn1::{ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use sha2::Digest as _;

use crate::cert::CertInfo;
use crate::db::Module;
use crate::error::{Error, Result};
use crate::key::{
    KeyAlgorithm, KeyType, ec_p256_spki, rsa_public_key_der, rsa_spki, spki_algorithm,
};
use crate::password::Password;
use crate::signer::{KeyLocation, SignatureScheme, Signer};

const P256_OID: ObjectIdentifier = const_oid::db::rfc5912::SECP_256_R_1;
/// Sessions kept open per token.
const POOL_MAX: usize = 8;

fn contexts() -> &'static Mutex<HashMap<PathBuf, Pkcs11>> {
    static C: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    C.get_or_init(|| Mutex::new(HashMap::new()))
}

type StateMap = HashMap<(PathBuf, u64), Arc<TokenState>>;

fn states() -> &'static Mutex<StateMap> {
    static S: OnceLock<Mutex<StateMap>> = OnceLock::new();
    S.get_or_init(|| Mutex::new(HashMap::new()))
}

fn ck(module: &str, e: CkError) -> Error {
    match e {
        CkError::Pkcs11(RvError::PinIncorrect, _) => Error::WrongPin(module.to_owned()),
        CkError::Pkcs11(RvError::TokenNotPresent | RvError::TokenNotRecognized, _) => {
            Error::TokenNotPresent(module.to_owned())
        }
        CkError::Pkcs11(RvError::UserAnotherAlreadyLoggedIn, _) => Error::Pkcs11 {
            module: module.to_owned(),
            message: "another user (the security officer) is already logged in to the token".into(),
        },
        CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _) => Error::Pkcs11 {
            module: module.to_owned(),
            message: "the user is already logged in to the token".into(),
        },
        CkError::Pkcs11(RvError::PinLocked, _) => Error::Pkcs11 {
            module: module.to_owned(),
            message: "the token's PIN is locked".into(),
        },
        CkError::Pkcs11(RvError::UserNotLoggedIn, _) => Error::Pkcs11 {
            module: module.to_owned(),
            message: "not logged in (no PIN for this module in sslpassword.conf?)".into(),
        },
        CkError::LibraryLoading(e) => Error::Pkcs11 {
            module: module.to_owned(),
            message: format!("cannot load the PKCS#11 library: {e}"),
        },
        other => Error::Pkcs11 {
            module: module.to_owned(),
            message: other.to_string(),
        },
    }
}

/// The process's context for a library, initialised on first use.
fn context(module: &str, library: &Path) -> Result<Pkcs11> {
    let mut map = contexts()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(c) = map.get(library) {
        return Ok(c.clone());
    }
    let ctx = Pkcs11::new(library).map_err(|e| ck(module, e))?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(ck(module, e)),
    }
    map.insert(library.to_owned(), ctx.clone());
    Ok(ctx)
}

/// Why one certificate lookup found nothing usable.
enum Lookup {
    /// The object was removed between the search and the read.
    Gone,
    /// The token failed.
    Failed(Error),
}

/// A certificate object: handle, DER value, `CKA_ID`.
type TokenCert = (ObjectHandle, Vec<u8>, Vec<u8>);

/// Per-token state shared by every handle in the process.
struct TokenState {
    sessions: Mutex<Vec<Session>>,
    logged_in: Mutex<bool>,
}

/// A token in a PKCS#11 module.
#[derive(Clone)]
pub struct Token {
    module: String,
    ctx: Pkcs11,
    slot: Slot,
    label: String,
    state: Arc<TokenState>,
    pin: Option<Password>,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("module", &self.module)
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

/// A token as `list-tokens` shows it.
#[derive(Clone, Debug)]
pub struct TokenDescription {
    /// Slot id.
    pub slot: u64,
    /// Slot description.
    pub slot_description: String,
    /// Token label, when a token is present.
    pub label: Option<String>,
    /// Manufacturer and model.
    pub model: Option<String>,
    /// Serial number.
    pub serial: Option<String>,
}

/// Lists the slots and tokens of a module.
///
/// # Errors
/// The library cannot be loaded or queried.
pub fn list_tokens(module: &Module) -> Result<Vec<TokenDescription>> {
    let ctx = context(&module.name, &module.library)?;
    let slots = ctx.get_all_slots().map_err(|e| ck(&module.name, e))?;
    let mut out = Vec::new();
    for s in slots {
        let si = ctx.get_slot_info(s).map_err(|e| ck(&module.name, e))?;
        let mut d = TokenDescription {
            slot: s.id(),
            slot_description: si.slot_description().trim().to_owned(),
            label: None,
            model: None,
            serial: None,
        };
        if si.token_present()
            && let Ok(ti) = ctx.get_token_info(s)
        {
            d.label = Some(ti.label().trim().to_owned());
            d.model = Some(format!(
                "{} {}",
                ti.manufacturer_id().trim(),
                ti.model().trim()
            ));
            d.serial = Some(ti.serial_number().trim().to_owned());
        }
        out.push(d);
    }
    Ok(out)
}

/// A session borrowed from the token's pool; returned on drop.
struct Pooled<'a> {
    state: &'a TokenState,
    session: Option<Session>,
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Session;
    fn deref(&self) -> &Session {
        // Invariant: `session` is only taken in `drop`.
        self.session
            .as_ref()
            .unwrap_or_else(|| unreachable!("session taken before drop"))
    }
}

impl Pooled<'_> {
    /// Drops the session instead of returning it to the pool.
    fn discard(mut self) {
        if let Some(s) = self.session.take() {
            let _ = s.close();
        }
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            let mut pool = self
                .state
                .sessions
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if pool.len() < POOL_MAX {
                pool.push(s);
            }
        }
    }
}

fn ecdsa_raw_to_der(raw: &[u8]) -> Result<Vec<u8>> {
    if !raw.len().is_multiple_of(2) || raw.is_empty() {
        return Err(Error::Crypto(
            "token returned a malformed ECDSA signature".into(),
        ));
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    #[derive(der::Sequence)]
    struct Sig<'a> {
        r: der::asn1::UintRef<'a>,
        s: der::asn1::UintRef<'a>,
    }
    let sig = Sig {
        r: der::asn1::UintRef::new(r).map_err(|e| Error::Crypto(e.to_string()))?,
        s: der::asn1::UintRef::new(s).map_err(|e| Error::Crypto(e.to_string()))?,
    };
    sig.to_der().map_err(|e| Error::Crypto(e.to_string()))
}

impl Token {
    /// Opens the module's token (its configured label, else the first
    /// initialised token). `pin` is needed for private objects and signing.
    ///
    /// # Errors
    /// [`Error::TokenNotPresent`], library errors.
    pub fn open(module: &Module, pin: Option<&Password>) -> Result<Token> {
        let ctx = context(&module.name, &module.library)?;
        let slots = ctx
            .get_slots_with_token()
            .map_err(|e| ck(&module.name, e))?;
        let mut found = None;
        for s in slots {
            let Ok(ti) = ctx.get_token_info(s) else {
                continue;
            };
            let label = ti.label().trim().to_owned();
            let wanted = match &module.token_label {
                Some(l) => *l == label,
                None => ti.token_initialized(),
            };
            if wanted {
                found = Some((s, label));
                break;
            }
        }
        let (slot, label) = found.ok_or_else(|| Error::TokenNotPresent(module.name.clone()))?;
        let key = (module.library.clone(), slot.id());
        let state = states()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(key)
            .or_insert_with(|| {
                Arc::new(TokenState {
                    sessions: Mutex::new(Vec::new()),
                    logged_in: Mutex::new(false),
                })
            })
            .clone();
        Ok(Token {
            module: module.name.clone(),
            ctx,
            slot,
            label,
            state,
            pin: pin.cloned(),
        })
    }

    /// The token's label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The module name.
    pub fn module(&self) -> &str {
        &self.module
    }

    fn session(&self) -> Result<Pooled<'_>> {
        let pooled = self
            .state
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let s = match pooled {
            Some(s) => s,
            None => self
                .ctx
                .open_rw_session(self.slot)
                .map_err(|e| ck(&self.module, e))?,
        };
        Ok(Pooled {
            state: &self.state,
            session: Some(s),
        })
    }

    /// Logs the user in once for the process (idempotent: a token already
    /// logged in by this process is fine).
    ///
    /// # Errors
    /// [`Error::NoPin`], [`Error::WrongPin`], PIN locked, another user (SO)
    /// logged in.
    pub fn login(&self) -> Result<()> {
        let mut logged = self
            .state
            .logged_in
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *logged {
            return Ok(());
        }
        let pin = self
            .pin
            .as_ref()
            .ok_or_else(|| Error::NoPin(self.module.clone()))?;
        let s = self.session()?;
        match s.login(
            UserType::User,
            Some(&AuthPin::from(pin.expose().to_owned())),
        ) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {
                *logged = true;
                Ok(())
            }
            Err(e) => Err(ck(&self.module, e)),
        }
    }

    /// Forgets the process's sessions and login on this token: after the
    /// token was removed (or its sessions closed under us), the next
    /// operation opens fresh sessions and logs in again.
    pub fn reset(&self) {
        let stale: Vec<Session> = std::mem::take(
            &mut *self
                .state
                .sessions
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        // Closing a session the token already dropped fails; that is fine.
        for s in stale {
            let _ = s.close();
        }
        *self
            .state
            .logged_in
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = false;
    }

    /// A signer for the private key labelled `label` (a key pair without a
    /// certificate on the token, such as one made by `pkcs11-tool`): the
    /// public key comes from the public-key object of the same `CKA_ID` or
    /// label.
    ///
    /// # Errors
    /// No such key, no public half, unsupported key type, token errors.
    pub fn signer(&self, label: &str) -> Result<TokenSigner> {
        self.login()?;
        let s = self.session()?;
        let m = &self.module;
        let nick = format!("{m}:{label}");
        let lab = Attribute::Label(label.as_bytes().to_vec());
        let key = s
            .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY), lab.clone()])
            .map_err(|e| ck(m, e))?
            .into_iter()
            .next()
            .ok_or_else(|| Error::NoPrivateKey(nick.clone()))?;
        let mut id = Vec::new();
        let mut kt = None;
        for a in s
            .get_attributes(key, &[AttributeType::Id, AttributeType::KeyType])
            .map_err(|e| ck(m, e))?
        {
            match a {
                Attribute::Id(i) => id = i,
                Attribute::KeyType(k) => kt = Some(k),
                _ => {}
            }
        }
        let kind = match kt {
            Some(k) if k == CkKeyType::EC => KeyType::EcP256,
            Some(k) if k == CkKeyType::RSA => KeyType::Rsa2048,
            _ => return Err(Error::Unsupported(format!("the key type of {nick}"))),
        };
        let by = if id.is_empty() {
            lab
        } else {
            Attribute::Id(id)
        };
        let public = s
            .find_objects(&[Attribute::Class(ObjectClass::PUBLIC_KEY), by])
            .map_err(|e| ck(m, e))?
            .into_iter()
            .next()
            .ok_or_else(|| Error::BadKey(format!("{nick} has no public key object")))?;
        let spki = self.public_key_info(&s, public, kind)?;
        drop(s);
        TokenSigner::new(self.clone(), key, label.to_owned(), spki)
    }

    /// Finds the private key whose public half is `spki` again (object
    /// handles do not survive the token's removal).
    fn find_private_key(&self, spki: &[u8]) -> Result<ObjectHandle> {
        let s = self.session()?;
        let id = self
            .id_for_public_key(&s, spki)?
            .ok_or_else(|| Error::NoPrivateKey(format!("{}:<key>", self.module)))?;
        self.private_key_handle(&s, &id)?
            .ok_or_else(|| Error::NoPrivateKey(format!("{}:<key>", self.module)))
    }

    /// Certificates on the token: `(label, DER, private key present)`.
    ///
    /// # Errors
    /// Token errors.
    pub fn certificates(&self) -> Result<Vec<(String, Vec<u8>, bool)>> {
        if self.pin.is_some() {
            self.login()?;
        }
        let s = self.session()?;
        let m = &self.module;
        let handles = s
            .find_objects(&[
                Attribute::Class(ObjectClass::CERTIFICATE),
                Attribute::Token(true),
            ])
            .map_err(|e| ck(m, e))?;
        let mut out = Vec::new();
        for h in handles {
            let attrs = match s.get_attributes(
                h,
                &[
                    AttributeType::Label,
                    AttributeType::Value,
                    AttributeType::Id,
                ],
            ) {
                Ok(a) => a,
                // Removed meanwhile (a renewal replacing it): not listed.
                Err(CkError::Pkcs11(RvError::ObjectHandleInvalid, _)) => continue,
                Err(e) => return Err(ck(m, e)),
            };
            let (mut label, mut value, mut id) = (String::new(), Vec::new(), Vec::new());
            for a in attrs {
                match a {
                    Attribute::Label(l) => label = String::from_utf8_lossy(&l).into_owned(),
                    Attribute::Value(v) => value = v,
                    Attribute::Id(i) => id = i,
                    _ => {}
                }
            }
            if value.is_empty() {
                continue;
            }
            let has_key = !id.is_empty() && self.private_key_handle(&s, &id)?.is_some();
            out.push((label, value, has_key));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    fn private_key_handle(&self, s: &Session, id: &[u8]) -> Result<Option<ObjectHandle>> {
        let h = s
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Id(id.to_vec()),
            ])
            .map_err(|e| ck(&self.module, e))?;
        Ok(h.into_iter().next())
    }

    /// The certificate object with this label: handle, DER, `CKA_ID`.
    fn find_cert(&self, s: &Session, label: &str) -> Result<Option<TokenCert>> {
        // A renewal may remove the object found between the search and the
        // read; the search then finds its successor.
        for _ in 0..3 {
            match self.find_cert_once(s, label) {
                Err(Lookup::Gone) => continue,
                Err(Lookup::Failed(e)) => return Err(e),
                Ok(found) => return Ok(found),
            }
        }
        self.find_cert_once(s, label).map_err(|e| match e {
            Lookup::Failed(e) => e,
            Lookup::Gone => Error::UnknownAlias(format!("{}:{label}", self.module)),
        })
    }

    fn find_cert_once(&self, s: &Session, label: &str) -> Result<Option<TokenCert>, Lookup> {
        let handles = s
            .find_objects(&[
                Attribute::Class(ObjectClass::CERTIFICATE),
                Attribute::Label(label.as_bytes().to_vec()),
            ])
            .map_err(|e| Lookup::Failed(ck(&self.module, e)))?;
        let Some(h) = handles.into_iter().next() else {
            return Ok(None);
        };
        let attrs = match s.get_attributes(h, &[AttributeType::Value, AttributeType::Id]) {
            Ok(a) => a,
            Err(CkError::Pkcs11(RvError::ObjectHandleInvalid, _)) => return Err(Lookup::Gone),
            Err(e) => return Err(Lookup::Failed(ck(&self.module, e))),
        };
        let (mut value, mut id) = (Vec::new(), Vec::new());
        for a in attrs {
            match a {
                Attribute::Value(v) => value = v,
                Attribute::Id(i) => id = i,
                _ => {}
            }
        }
        Ok(Some((h, value, id)))
    }

    /// The certificate with this label and a signer for its key.
    ///
    /// # Errors
    /// Unknown label, no key, token errors.
    pub fn identity(&self, label: &str) -> Result<(Vec<u8>, TokenSigner)> {
        self.login()?;
        let s = self.session()?;
        let nick = format!("{}:{label}", self.module);
        let (_, der, id) = self
            .find_cert(&s, label)?
            .ok_or_else(|| Error::UnknownAlias(nick.clone()))?;
        let info = CertInfo::parse(&der)?;
        let handle = self
            .private_key_handle(&s, &id)?
            .ok_or(Error::NoPrivateKey(nick))?;
        drop(s);
        let signer = TokenSigner::new(self.clone(), handle, label.to_owned(), info.spki)?;
        Ok((der, signer))
    }

    /// Generates a key pair on the token (private key sensitive and not
    /// extractable). Returns its signer; `CKA_ID` is the SHA-1 of the public
    /// key, as NSS does.
    ///
    /// # Errors
    /// Token errors.
    pub fn generate_key(&self, label: &str, kind: KeyType) -> Result<TokenSigner> {
        self.login()?;
        let s = self.session()?;
        let m = &self.module;
        let tmp_id = crate::fsutil::random_hex(8)?.into_bytes();
        let lab = label.as_bytes().to_vec();
        let (mech, mut pub_t) = match kind.rsa_bits() {
            None => (
                Mechanism::EccKeyPairGen,
                vec![Attribute::EcParams(
                    P256_OID
                        .to_der()
                        .map_err(|e| Error::Crypto(e.to_string()))?,
                )],
            ),
            Some(bits) => (
                Mechanism::RsaPkcsKeyPairGen,
                vec![
                    Attribute::ModulusBits(u64::try_from(bits).unwrap_or(2048).into()),
                    Attribute::PublicExponent(vec![1, 0, 1]),
                ],
            ),
        };
        pub_t.extend([
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::Encrypt(false),
            Attribute::Wrap(false),
            Attribute::Label(lab.clone()),
            Attribute::Id(tmp_id.clone()),
        ]);
        let priv_t = vec![
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Decrypt(false),
            Attribute::Unwrap(false),
            Attribute::Derive(false),
            Attribute::Label(lab),
            Attribute::Id(tmp_id),
        ];
        let (pubh, privh) = s
            .generate_key_pair(&mech, &pub_t, &priv_t)
            .map_err(|e| ck(m, e))?;
        let spki = self.public_key_info(&s, pubh, kind)?;
        let (_, raw) = spki_algorithm(&spki)?;
        let id = sha1::Sha1::digest(&raw).to_vec();
        for h in [pubh, privh] {
            s.update_attributes(h, &[Attribute::Id(id.clone())])
                .map_err(|e| ck(m, e))?;
        }
        drop(s);
        TokenSigner::new(self.clone(), privh, label.to_owned(), spki)
    }

    fn public_key_info(&self, s: &Session, pubh: ObjectHandle, kind: KeyType) -> Result<Vec<u8>> {
        let m = &self.module;
        if kind.rsa_bits().is_some() {
            let attrs = s
                .get_attributes(
                    pubh,
                    &[AttributeType::Modulus, AttributeType::PublicExponent],
                )
                .map_err(|e| ck(m, e))?;
            let (mut n, mut e) = (Vec::new(), Vec::new());
            for a in attrs {
                match a {
                    Attribute::Modulus(v) => n = v,
                    Attribute::PublicExponent(v) => e = v,
                    _ => {}
                }
            }
            rsa_spki(&rsa_public_key_der(&n, &e)?)
        } else {
            let attrs = s
                .get_attributes(pubh, &[AttributeType::EcPoint])
                .map_err(|e| ck(m, e))?;
            let point = attrs
                .into_iter()
                .find_map(|a| match a {
                    Attribute::EcPoint(p) => Some(p),
                    _ => None,
                })
                .ok_or_else(|| Error::Crypto("token gave no EC point".into()))?;
            // CKA_EC_POINT is a DER OCTET STRING around the point (some
            // tokens give the bare point).
            let raw = match OctetString::from_der(&point) {
                Ok(o) if o.as_bytes().len() == 65 => o.as_bytes().to_vec(),
                _ => point,
            };
            ec_p256_spki(&raw)
        }
    }

    /// Finds a key pair on the token whose public key matches `spki` and
    /// returns its `CKA_ID`.
    fn id_for_public_key(&self, s: &Session, spki: &[u8]) -> Result<Option<Vec<u8>>> {
        let m = &self.module;
        let (alg, _) = spki_algorithm(spki)?;
        let kt = match alg {
            KeyAlgorithm::EcP256 => CkKeyType::EC,
            KeyAlgorithm::Rsa { .. } => CkKeyType::RSA,
        };
        let kind = match alg {
            KeyAlgorithm::EcP256 => KeyType::EcP256,
            KeyAlgorithm::Rsa { .. } => KeyType::Rsa2048,
        };
        let handles = s
            .find_objects(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::KeyType(kt),
            ])
            .map_err(|e| ck(m, e))?;
        for h in handles {
            if self.public_key_info(s, h, kind)? == spki {
                let attrs = s
                    .get_attributes(h, &[AttributeType::Id])
                    .map_err(|e| ck(m, e))?;
                for a in attrs {
                    if let Attribute::Id(id) = a {
                        return Ok(Some(id));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Stores a certificate on the token under `label`, linked (`CKA_ID`)
    /// to the token key pair with the same public key, if any. Returns
    /// whether a key was found.
    ///
    /// # Errors
    /// The label is taken, token errors.
    pub fn store_certificate(&self, label: &str, der: &[u8]) -> Result<bool> {
        self.login()?;
        let info = CertInfo::parse(der)?;
        let s = self.session()?;
        if self.find_cert(&s, label)?.is_some() {
            return Err(Error::AliasInUse(format!("{}:{label}", self.module)));
        }
        let id = self.id_for_public_key(&s, &info.spki)?;
        let has_key = id.is_some();
        let id = id.unwrap_or_else(|| sha1::Sha1::digest(&info.spki).to_vec());
        s.create_object(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::CertificateType(CertificateType::X_509),
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id),
            Attribute::Subject(info.subject_der.clone()),
            Attribute::Issuer(info.issuer_der.clone()),
            Attribute::SerialNumber(
                der::asn1::Int::new(&info.serial)
                    .and_then(|i| i.to_der())
                    .map_err(|e| Error::Crypto(e.to_string()))?,
            ),
            Attribute::Value(der.to_vec()),
        ])
        .map_err(|e| ck(&self.module, e))?;
        Ok(has_key)
    }

    /// Removes the certificate with this label and the key pair linked to
    /// it.
    ///
    /// # Errors
    /// Unknown label, token errors.
    pub fn remove_certificate(&self, label: &str) -> Result<()> {
        self.login()?;
        let s = self.session()?;
        let (h, _, id) = self
            .find_cert(&s, label)?
            .ok_or_else(|| Error::UnknownAlias(format!("{}:{label}", self.module)))?;
        if !id.is_empty() {
            for class in [ObjectClass::PRIVATE_KEY, ObjectClass::PUBLIC_KEY] {
                let hs = s
                    .find_objects(&[Attribute::Class(class), Attribute::Id(id.clone())])
                    .map_err(|e| ck(&self.module, e))?;
                for k in hs {
                    s.destroy_object(k).map_err(|e| ck(&self.module, e))?;
                }
            }
        }
        s.destroy_object(h).map_err(|e| ck(&self.module, e))
    }

    /// Replaces the certificate with this label (renewal), keeping the label.
    ///
    /// # Errors
    /// Unknown label, no key for the new certificate, token errors.
    pub fn replace_certificate(&self, label: &str, der: &[u8]) -> Result<()> {
        self.login()?;
        let info = CertInfo::parse(der)?;
        let s = self.session()?;
        let (h, _, _) = self
            .find_cert(&s, label)?
            .ok_or_else(|| Error::UnknownAlias(format!("{}:{label}", self.module)))?;
        if self.id_for_public_key(&s, &info.spki)?.is_none() {
            return Err(Error::RenewMismatch {
                alias: format!("{}:{label}", self.module),
                reason: "no key pair on the token matches the new certificate",
            });
        }
        drop(s);
        // Store the new one under a temporary label, give it the label, and
        // only then remove the old one: the token holds a certificate under
        // `label` at every moment (for an instant two, both valid).
        let tmp = format!("{label}.renewing");
        self.store_certificate(&tmp, der)?;
        let s = self.session()?;
        let (nh, _, _) = self
            .find_cert(&s, &tmp)?
            .ok_or_else(|| Error::UnknownAlias(format!("{}:{tmp}", self.module)))?;
        s.update_attributes(nh, &[Attribute::Label(label.as_bytes().to_vec())])
            .map_err(|e| ck(&self.module, e))?;
        s.destroy_object(h).map_err(|e| ck(&self.module, e))
    }

    /// The key pairs on the token: `(label, has a certificate)`, sorted by
    /// label. Keys made by `request-cert` show up here until their
    /// certificate is added.
    ///
    /// # Errors
    /// Token errors.
    pub fn keys(&self) -> Result<Vec<(String, bool)>> {
        self.login()?;
        let s = self.session()?;
        let m = &self.module;
        let mut out = Vec::new();
        for h in s
            .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])
            .map_err(|e| ck(m, e))?
        {
            let (mut label, mut id) = (String::new(), Vec::new());
            for a in s
                .get_attributes(h, &[AttributeType::Label, AttributeType::Id])
                .map_err(|e| ck(m, e))?
            {
                match a {
                    Attribute::Label(l) => label = String::from_utf8_lossy(&l).into_owned(),
                    Attribute::Id(i) => id = i,
                    _ => {}
                }
            }
            let has_cert = !id.is_empty()
                && !s
                    .find_objects(&[
                        Attribute::Class(ObjectClass::CERTIFICATE),
                        Attribute::Id(id),
                    ])
                    .map_err(|e| ck(m, e))?
                    .is_empty();
            out.push((label, has_cert));
        }
        out.sort();
        Ok(out)
    }

    /// Removes the key pair labelled `label` that no certificate uses (a
    /// `request-cert` key whose certificate will not come).
    ///
    /// # Errors
    /// No such key, a certificate still uses it, token errors.
    pub fn remove_key(&self, label: &str) -> Result<()> {
        let signer = self.signer(label)?;
        if self
            .keys()?
            .iter()
            .any(|(l, has_cert)| l == label && *has_cert)
        {
            return Err(Error::Unsupported(format!(
                "a certificate uses key {}:{label}; remove the certificate instead",
                self.module
            )));
        }
        self.destroy_key_pair(signer.public_key_info())
    }

    /// Destroys the private and public key objects whose public key is
    /// `spki`.
    pub(crate) fn destroy_key_pair(&self, spki: &[u8]) -> Result<()> {
        let s = self.session()?;
        let m = &self.module;
        let Some(id) = self.id_for_public_key(&s, spki)? else {
            return Ok(());
        };
        for class in [ObjectClass::PRIVATE_KEY, ObjectClass::PUBLIC_KEY] {
            for h in s
                .find_objects(&[Attribute::Class(class), Attribute::Id(id.clone())])
                .map_err(|e| ck(m, e))?
            {
                s.destroy_object(h).map_err(|e| ck(m, e))?;
            }
        }
        Ok(())
    }

    /// Whether a certificate is stored under `label`.
    pub(crate) fn has_certificate(&self, label: &str) -> Result<bool> {
        let s = self.session()?;
        Ok(self.find_cert(&s, label)?.is_some())
    }
}

/// Why one signing attempt failed.
enum SignFailure {
    /// The session, the login or the key handle is gone (token removed,
    /// sessions closed): worth reconnecting.
    Lost(CkError),
    /// Anything else the token said.
    Other(CkError),
    /// Opening a session or logging in failed.
    Db(Error),
}

/// Token answers after which a fresh session, login and key handle may
/// succeed.
fn is_lost(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(
            RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::DeviceRemoved
                | RvError::DeviceError
                | RvError::TokenNotPresent
                | RvError::UserNotLoggedIn
                | RvError::KeyHandleInvalid
                | RvError::ObjectHandleInvalid,
            _
        )
    )
}

impl TokenSigner {
    fn sign_once(&self, mech: &Mechanism<'_>, data: &[u8]) -> Result<Vec<u8>, SignFailure> {
        self.token.login().map_err(SignFailure::Db)?;
        let s = self.token.session().map_err(SignFailure::Db)?;
        let key = *self
            .key
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match s.sign(mech, key, data) {
            Ok(sig) => Ok(sig),
            Err(e) if is_lost(&e) => {
                // A broken session does not go back to the pool.
                s.discard();
                Err(SignFailure::Lost(e))
            }
            Err(e) => Err(SignFailure::Other(e)),
        }
    }
}

/// A [`Signer`] whose private key stays on a PKCS#11 token.
pub struct TokenSigner {
    token: Token,
    key: Mutex<ObjectHandle>,
    label: String,
    spki: Vec<u8>,
    algorithm: KeyAlgorithm,
}

impl fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSigner")
            .field("module", &self.token.module)
            .field("label", &self.label)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    fn new(token: Token, key: ObjectHandle, label: String, spki: Vec<u8>) -> Result<Self> {
        let (algorithm, _) = spki_algorithm(&spki)?;
        Ok(TokenSigner {
            token,
            key: Mutex::new(key),
            label,
            spki,
            algorithm,
        })
    }
}

impl Signer for TokenSigner {
    fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    fn public_key_info(&self) -> &[u8] {
        &self.spki
    }

    fn location(&self) -> KeyLocation {
        KeyLocation::Token {
            module: self.token.module.clone(),
            label: self.label.clone(),
        }
    }

    fn sign(&self, scheme: SignatureScheme, message: &[u8]) -> Result<Vec<u8>> {
        let pss = |hash: MechanismType, mgf: PkcsMgfType, len: u64| PkcsPssParams {
            hash_alg: hash,
            mgf,
            s_len: len.into(),
        };
        let (mech, data): (Mechanism<'_>, Vec<u8>) = match (self.algorithm, scheme) {
            (KeyAlgorithm::EcP256, SignatureScheme::EcdsaP256Sha256) => {
                (Mechanism::Ecdsa, sha2::Sha256::digest(message).to_vec())
            }
            (KeyAlgorithm::Rsa { .. }, SignatureScheme::RsaPkcs1Sha256) => {
                (Mechanism::Sha256RsaPkcs, message.to_vec())
            }
            (KeyAlgorithm::Rsa { .. }, SignatureScheme::RsaPkcs1Sha384) => {
                (Mechanism::Sha384RsaPkcs, message.to_vec())
            }
            (KeyAlgorithm::Rsa { .. }, SignatureScheme::RsaPkcs1Sha512) => {
                (Mechanism::Sha512RsaPkcs, message.to_vec())
            }
            (KeyAlgorithm::Rsa { .. }, SignatureScheme::RsaPssSha256) => (
                Mechanism::Sha256RsaPkcsPss(pss(
                    MechanismType::SHA256,
                    PkcsMgfType::MGF1_SHA256,
                    32,
                )),
                message.to_vec(),
            ),
            (KeyAlgorithm::Rsa { .. }, SignatureScheme::RsaPssSha384) => (
                Mechanism::Sha384RsaPkcsPss(pss(
                    MechanismType::SHA384,
                    PkcsMgfType::MGF1_SHA384,
                    48,
                )),
                message.to_vec(),
            ),
            (KeyAlgorithm::Rsa { .. }, SignatureScheme::RsaPssSha512) => (
                Mechanism::Sha512RsaPkcsPss(pss(
                    MechanismType::SHA512,
                    PkcsMgfType::MGF1_SHA512,
                    64,
                )),
                message.to_vec(),
            ),
            (alg, s) => return Err(Error::Unsupported(format!("{s:?} with a {alg} key"))),
        };
        let sig = match self.sign_once(&mech, &data) {
            Err(SignFailure::Lost(e)) => {
                // The token went away (or closed our sessions) and may be
                // back: drop the broken sessions, log in again, find the
                // key again, and try once more.
                tracing::warn!(module = %self.token.module, label = %self.label, error = %e,
                    "token session lost; reconnecting");
                self.token.reset();
                self.token.login()?;
                let handle = self.token.find_private_key(&self.spki)?;
                *self
                    .key
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = handle;
                match self.sign_once(&mech, &data) {
                    Ok(sig) => sig,
                    Err(SignFailure::Lost(e) | SignFailure::Other(e)) => {
                        return Err(ck(&self.token.module, e));
                    }
                    Err(SignFailure::Db(e)) => return Err(e),
                }
            }
            Err(SignFailure::Other(e)) => return Err(ck(&self.token.module, e)),
            Err(SignFailure::Db(e)) => return Err(e),
            Ok(sig) => sig,
        };
        if self.algorithm == KeyAlgorithm::EcP256 {
            ecdsa_raw_to_der(&sig)
        } else {
            Ok(sig)
        }
    }
}
