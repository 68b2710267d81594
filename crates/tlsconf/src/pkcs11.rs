//! Handshake signatures made on a PKCS#11 token, through the certificate
//! database's PKCS#11 support.
//!
//! The process has one PKCS#11 implementation: `portcullis-certdb`'s, with
//! one cryptoki context per module library, a session pool and one login
//! per token, and reconnection when a token goes away and comes back. A
//! nickname `module:alias` in the certificate database reaches it through
//! [`crate::certdb::CertDbSource`]; [`token_key`] opens a token key named
//! directly (a key pair made with `pkcs11-tool`, say) for
//! [`crate::PemFileSource::with_external_key`] or a [`crate::Credential`].
//!
//! Token signatures block on the device. rustls asks for them inside the
//! handshake; on a multi-threaded tokio runtime they run in
//! [`tokio::task::block_in_place`], so the worker's other tasks move to
//! another thread meanwhile; on a current-thread runtime (which has no
//! other worker) they run in place.

use std::path::Path;
use std::sync::Arc;

use portcullis_certdb::Password;
pub use portcullis_certdb::{Module, Token, TokenDescription, TokenSigner, list_tokens};
use rustls::sign::SigningKey;

use crate::Error;
use crate::certdb::CertDbKey;

fn token_error(e: portcullis_certdb::Error) -> Error {
    Error::Token(e.to_string())
}

/// The private key labelled `key_label` on the token labelled
/// `token_label` of the PKCS#11 library `library`, logged in with `pin`,
/// as a rustls signing key. The key never leaves the token.
///
/// # Errors
/// [`Error::Token`] when the library cannot be loaded, there is no such
/// token or key, the PIN is wrong or the key type is not supported.
pub fn token_key(
    library: &Path,
    token_label: &str,
    pin: &str,
    key_label: &str,
) -> Result<Arc<dyn SigningKey>, Error> {
    let module = Module {
        name: token_label.to_owned(),
        library: library.to_owned(),
        token_label: Some(token_label.to_owned()),
    };
    let token = Token::open(&module, Some(&Password::new(pin))).map_err(token_error)?;
    let signer = token.signer(key_label).map_err(token_error)?;
    Ok(Arc::new(CertDbKey(Arc::new(signer))))
}
