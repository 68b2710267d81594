//! The one place where this crate's types meet their counterparts in
//! `portcullis-sasl` and `portcullis-certdb`.
//!
//! Each crate keeps the type its own API needs (sasl: the service of an
//! exchange and the negotiated version; certdb: where a nickname's
//! certificate is stored; here: the per-service parameters, ALPN ids and
//! version parsing). tlsconf is the only crate that depends on both
//! others, so the conversions live here and nowhere else: a daemon turns a
//! [`Service`] into `sasl::Service` with `.into()`, never by matching.

#[cfg(feature = "certdb")]
use crate::{Error, Nickname};
#[cfg(feature = "sasl")]
use crate::{Service, TlsVersion};

#[cfg(feature = "sasl")]
impl From<Service> for portcullis_sasl::Service {
    /// SMTP and submission share `sasl::Service::Smtp`.
    fn from(s: Service) -> Self {
        match s {
            Service::Smtp => Self::Smtp,
            Service::Imap => Self::Imap,
            Service::Pop => Self::Pop,
            Service::Http => Self::Http,
        }
    }
}

#[cfg(feature = "sasl")]
impl From<TlsVersion> for portcullis_sasl::TlsVersion {
    fn from(v: TlsVersion) -> Self {
        match v {
            TlsVersion::Tls12 => Self::Tls12,
            TlsVersion::Tls13 => Self::Tls13,
        }
    }
}

#[cfg(feature = "sasl")]
impl TryFrom<portcullis_sasl::TlsVersion> for TlsVersion {
    type Error = portcullis_sasl::TlsVersion;

    /// Gives the version back when this crate does not know it.
    fn try_from(v: portcullis_sasl::TlsVersion) -> Result<Self, Self::Error> {
        match v {
            portcullis_sasl::TlsVersion::Tls12 => Ok(Self::Tls12),
            portcullis_sasl::TlsVersion::Tls13 => Ok(Self::Tls13),
            other => Err(other),
        }
    }
}

#[cfg(feature = "sasl")]
impl TryFrom<portcullis_sasl::Service> for Service {
    type Error = portcullis_sasl::Service;

    /// Gives the service back when this crate does not know it.
    fn try_from(s: portcullis_sasl::Service) -> Result<Self, Self::Error> {
        match s {
            portcullis_sasl::Service::Smtp => Ok(Self::Smtp),
            portcullis_sasl::Service::Imap => Ok(Self::Imap),
            portcullis_sasl::Service::Pop => Ok(Self::Pop),
            portcullis_sasl::Service::Http => Ok(Self::Http),
            other => Err(other),
        }
    }
}

#[cfg(feature = "certdb")]
impl From<&Nickname> for portcullis_certdb::Nickname {
    /// An unqualified nickname, or one qualified with the internal token's
    /// name (`Internal (Software) Token:alias`), is in the database
    /// directory; any other module names a PKCS#11 token.
    fn from(n: &Nickname) -> Self {
        match n.module() {
            None => Self::Internal(n.alias().to_owned()),
            Some(m) if m == portcullis_certdb::INTERNAL_TOKEN => {
                Self::Internal(n.alias().to_owned())
            }
            Some(m) => Self::Token {
                module: m.to_owned(),
                alias: n.alias().to_owned(),
            },
        }
    }
}

#[cfg(feature = "certdb")]
impl TryFrom<&portcullis_certdb::Nickname> for Nickname {
    type Error = Error;

    /// # Errors
    /// [`Error::InvalidNickname`] when a part is empty or holds a control
    /// character (which certdb never stores).
    fn try_from(n: &portcullis_certdb::Nickname) -> Result<Self, Error> {
        match n {
            portcullis_certdb::Nickname::Internal(alias) => Nickname::internal(alias),
            portcullis_certdb::Nickname::Token { module, alias } => {
                Nickname::on_token(module, alias)
            }
            other => Err(Error::InvalidNickname(other.to_string())),
        }
    }
}
