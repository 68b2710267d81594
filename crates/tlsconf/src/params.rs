//! Server TLS settings from the configuration parameters.
//!
//! A library does not read the configuration file: the caller passes a
//! getter that returns a parameter's value as text (`None`, or an empty
//! string, when unset), e.g. `|name| config.string(name).ok()` over the
//! Portcullis configuration. [`ServerSettings::from_parameters`] maps the
//! parameters of [`SERVER_PARAMETERS`] onto [`ServerSettings`];
//! [`TlsServer::from_parameters`](crate::TlsServer::from_parameters) (feature `certdb`) goes on to a ready
//! server over the certificate database `local.ssldbpath`. Every refused
//! value is an [`Error::Parameter`] naming the parameter.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rustls_pki_types::DnsName;

use crate::client_auth::ClientAuthMode;
use crate::server::SniEntry;
use crate::suites::{CipherSuites, TlsVersion, VersionRange};
use crate::{Error, Nickname, ServerSettings, Service, parse_nickname_list};

/// `encryption.rsa.nssslpersonalityssl`: the certificate nicknames of
/// every service without `local.<service>.sslnicknames`.
pub const PERSONALITY: &str = "encryption.rsa.nssslpersonalityssl";
/// `local.ssldbpath`: the certificate database, relative to the
/// configuration directory.
pub const DATABASE: &str = "local.ssldbpath";
/// `local.sslminversion`: the oldest TLS version accepted.
pub const MIN_VERSION: &str = "local.sslminversion";
/// `local.sslmaxversion`: the newest TLS version accepted.
pub const MAX_VERSION: &str = "local.sslmaxversion";
/// `encryption.nsssl3ciphers`: the cipher suites, most preferred first
/// (the original's parameter for its SSL 3/TLS cipher list).
pub const CIPHERS: &str = "encryption.nsssl3ciphers";
/// `encryption.nssslclientauth`: when to ask for client certificates.
pub const CLIENT_AUTH: &str = "encryption.nssslclientauth";
/// `local.sslcrlfiles`: CRL files or directories.
pub const CRL_FILES: &str = "local.sslcrlfiles";
/// `local.sslstrictalpn`: refuse clients offering only other protocols.
pub const STRICT_ALPN: &str = "local.sslstrictalpn";
/// `local.sslsessiontickets`: issue session tickets.
pub const SESSION_TICKETS: &str = "local.sslsessiontickets";
/// `local.sslticketlifetime`: seconds one ticket key issues tickets.
pub const TICKET_LIFETIME: &str = "local.sslticketlifetime";
/// `local.sslsnimap`: certificates by server name.
pub const SNI_MAP: &str = "local.sslsnimap";
/// `local.sslsnistrict`: refuse server names nothing covers.
pub const SNI_STRICT: &str = "local.sslsnistrict";
/// `local.sslhandshaketimeout`: seconds a handshake may take.
pub const HANDSHAKE_TIMEOUT: &str = "local.sslhandshaketimeout";

/// Every parameter [`ServerSettings::from_parameters`] and
/// [`TlsServer::from_parameters`](crate::TlsServer::from_parameters) read.
pub const SERVER_PARAMETERS: [&str; 17] = [
    "local.imta.sslnicknames",
    "local.imap.sslnicknames",
    "local.pop.sslnicknames",
    "local.http.sslnicknames",
    PERSONALITY,
    DATABASE,
    MIN_VERSION,
    MAX_VERSION,
    CIPHERS,
    CLIENT_AUTH,
    CRL_FILES,
    STRICT_ALPN,
    SESSION_TICKETS,
    TICKET_LIFETIME,
    SNI_MAP,
    SNI_STRICT,
    HANDSHAKE_TIMEOUT,
];

/// The parameters as the getter gives them, trimmed, blank meaning unset.
struct Parameters<F> {
    get: F,
}

impl<F: Fn(&str) -> Option<String>> Parameters<F> {
    fn value(&self, name: &'static str) -> Option<String> {
        (self.get)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// The parameter `service`'s certificate list comes from.
    fn nickname_parameter(&self, service: Service) -> &'static str {
        let own = service.nicknames_parameter();
        if self.value(own).is_some() {
            own
        } else {
            PERSONALITY
        }
    }

    fn boolean(&self, name: &'static str) -> Result<Option<bool>, Error> {
        self.value(name)
            .map(|v| match v.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(Error::Config(format!("{v:?} is not a boolean")).in_parameter(name)),
            })
            .transpose()
    }

    fn seconds(&self, name: &'static str) -> Result<Option<Duration>, Error> {
        self.value(name)
            .map(|v| match v.parse::<u64>() {
                Ok(n) if n > 0 => Ok(Duration::from_secs(n)),
                _ => Err(Error::Config(format!(
                    "{v:?} is not a whole number of seconds (1 or more)"
                ))
                .in_parameter(name)),
            })
            .transpose()
    }

    fn version(&self, name: &'static str) -> Result<Option<TlsVersion>, Error> {
        self.value(name)
            .map(|v| v.parse::<TlsVersion>().map_err(|e| e.in_parameter(name)))
            .transpose()
    }
}

/// `auto` | `off`/`none` | `request`/`allowed` | `require`/`required`.
fn client_auth_mode(value: &str) -> Result<ClientAuthMode, Error> {
    match value.to_ascii_lowercase().as_str() {
        "auto" => Ok(ClientAuthMode::Auto),
        "off" | "none" => Ok(ClientAuthMode::Off),
        "request" | "allowed" => Ok(ClientAuthMode::Requested),
        "require" | "required" => Ok(ClientAuthMode::Required),
        _ => Err(Error::Config(format!(
            "{value:?} is not a client certificate mode: use auto, off, request or require"
        ))),
    }
}

/// Parses an SNI map: entries separated by `;` or new lines, each
/// `names = nicknames`, both comma lists; a name is a host name or
/// `*.domain`.
///
/// ```text
/// mail.example.com, imap.example.com = example-ec, example-rsa;
/// *.example.org = org-cert
/// ```
fn sni_map(text: &str) -> Result<Vec<SniEntry>, Error> {
    let mut out = Vec::new();
    for entry in text
        .split([';', '\n'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        let Some((names, nicknames)) = entry.split_once('=') else {
            return Err(Error::Config(format!(
                "{entry:?}: expected host names = nicknames"
            )));
        };
        let names: Vec<String> = names
            .split([',', ' ', '\t'])
            .filter(|n| !n.is_empty())
            .map(|n| {
                let host = n.strip_prefix("*.").unwrap_or(n);
                DnsName::try_from(host)
                    .map(|_| n.to_ascii_lowercase())
                    .map_err(|_| Error::Config(format!("{n:?} is not a host name or *.domain")))
            })
            .collect::<Result<_, _>>()?;
        if names.is_empty() {
            return Err(Error::Config(format!("{entry:?}: no host name")));
        }
        let nicknames: Vec<Nickname> = parse_nickname_list(nicknames)?;
        out.push(SniEntry::new(names, nicknames));
    }
    Ok(out)
}

/// The certificate database directory: `local.ssldbpath` (`certdb` when
/// unset), relative to `config_dir`.
pub fn certificate_database(get: impl Fn(&str) -> Option<String>, config_dir: &Path) -> PathBuf {
    let p = Parameters { get };
    config_dir.join(p.value(DATABASE).unwrap_or_else(|| "certdb".to_owned()))
}

impl ServerSettings {
    /// The TLS settings of `service` from the configuration parameters
    /// ([`SERVER_PARAMETERS`]), read through `get` (a parameter's value as
    /// text, `None` or blank when unset), with relative paths taken from
    /// `config_dir`:
    ///
    /// | parameter | setting |
    /// |---|---|
    /// | `local.<svc>.sslnicknames`, else `encryption.rsa.nssslpersonalityssl` | [`ServerSettings::nicknames`] |
    /// | `local.sslminversion`, `local.sslmaxversion` (`TLSv1.2`, `TLSv1.3`; `sslv3`, `tls1`, `TLSv1.1` refused) | [`ServerSettings::versions`] |
    /// | `encryption.nsssl3ciphers` (IANA, OpenSSL or rustls names; RC4, DES, 3DES, RC2, export, NULL and MD5 refused naming the cipher) | [`ServerSettings::cipher_suites`] |
    /// | `encryption.nssslclientauth` (`auto`, `off`, `request`, `require`) | [`crate::ClientAuth::mode`] |
    /// | `local.sslcrlfiles` | [`crate::ClientAuth::crls`] |
    /// | `local.sslstrictalpn` | [`crate::Alpn::strict`] (the IDs are the service's) |
    /// | `local.sslsessiontickets`, `local.sslticketlifetime` | [`crate::Resumption`] |
    /// | `local.sslsnimap`, `local.sslsnistrict` | [`ServerSettings::sni`], [`ServerSettings::sni_strict`] |
    /// | `local.sslhandshaketimeout` | [`ServerSettings::handshake_timeout`] |
    ///
    /// Unset parameters keep the defaults of [`ServerSettings::for_service`].
    /// Nothing is read from disk here: certificates, keys and CRLs are
    /// read when the configuration is built.
    ///
    /// # Errors
    /// [`Error::Parameter`] naming the parameter whose value is refused,
    /// with the reason (a legacy version or cipher says why and what to
    /// use instead); [`Error::Config`] when no certificate is configured.
    pub fn from_parameters(
        service: Service,
        get: impl Fn(&str) -> Option<String>,
        config_dir: &Path,
    ) -> Result<Self, Error> {
        let p = Parameters { get };
        let own = service.nicknames_parameter();
        let list_parameter = p.nickname_parameter(service);
        let list = p.value(list_parameter);
        let nicknames = match list {
            Some(l) => parse_nickname_list(&l).map_err(|e| e.in_parameter(list_parameter))?,
            None => Vec::new(),
        };
        let mut s = Self::for_service(service, nicknames);

        let min = p.version(MIN_VERSION)?.unwrap_or(s.versions.min);
        let max = p.version(MAX_VERSION)?.unwrap_or(s.versions.max);
        s.versions = VersionRange::new(min, max).map_err(|e| e.in_parameter(MIN_VERSION))?;
        if let Some(list) = p.value(CIPHERS) {
            let suites = CipherSuites::parse(&list).map_err(|e| e.in_parameter(CIPHERS))?;
            suites
                .for_versions(&s.versions)
                .map_err(|e| e.in_parameter(CIPHERS))?;
            s.cipher_suites = suites;
        }

        if let Some(mode) = p.value(CLIENT_AUTH) {
            s.client_auth.mode =
                client_auth_mode(&mode).map_err(|e| e.in_parameter(CLIENT_AUTH))?;
        }
        if let Some(files) = p.value(CRL_FILES) {
            s.client_auth.crls = files
                .split(',')
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .map(|f| config_dir.join(f))
                .collect();
        }

        if let Some(strict) = p.boolean(STRICT_ALPN)? {
            s.alpn.strict = strict;
        }
        if let Some(tickets) = p.boolean(SESSION_TICKETS)? {
            s.resumption.tickets = tickets;
        }
        if let Some(lifetime) = p.seconds(TICKET_LIFETIME)? {
            s.resumption.ticket_key_lifetime = lifetime;
        }
        if let Some(map) = p.value(SNI_MAP) {
            s.sni = sni_map(&map).map_err(|e| e.in_parameter(SNI_MAP))?;
        }
        if let Some(strict) = p.boolean(SNI_STRICT)? {
            s.sni_strict = strict;
        }
        if let Some(timeout) = p.seconds(HANDSHAKE_TIMEOUT)? {
            s.handshake_timeout = timeout;
        }

        if s.nicknames.is_empty() && s.sni.is_empty() {
            return Err(Error::Config(format!(
                "no server certificate: set {own} or {PERSONALITY}"
            )));
        }
        Ok(s)
    }
}

#[cfg(feature = "certdb")]
impl crate::TlsServer {
    /// The TLS server of `service` as the configuration describes it:
    /// [`ServerSettings::from_parameters`] over the certificate database
    /// [`certificate_database`] (`local.ssldbpath`). The one call a daemon
    /// makes per service; on SIGHUP, [`crate::TlsServer::reconfigure_async`]
    /// with fresh settings, or [`crate::TlsServer::reload_async`] for new
    /// certificates. Services over the same database share one
    /// [`crate::certdb::CertDbSource::shared`], so each database key is
    /// decrypted once for all of them.
    ///
    /// # Errors
    /// As [`ServerSettings::from_parameters`], then any error of building
    /// the configuration; one a parameter is to blame for (an unknown or
    /// duplicate nickname, an unreadable CRL file or database) comes as
    /// [`Error::Parameter`] naming it.
    pub fn from_parameters(
        service: Service,
        get: impl Fn(&str) -> Option<String>,
        config_dir: &Path,
    ) -> Result<Self, Error> {
        let settings = ServerSettings::from_parameters(service, &get, config_dir)?;
        let source = crate::certdb::CertDbSource::shared(certificate_database(&get, config_dir));
        let list_parameter = Parameters { get: &get }.nickname_parameter(service);
        Self::new(source, settings.clone()).map_err(|e| blame(e, &settings, list_parameter))
    }

    /// A configuration reload of a server [`crate::TlsServer::from_parameters`]
    /// made: fresh [`ServerSettings::from_parameters`], then
    /// [`crate::TlsServer::reconfigure`] over the same source (its keys
    /// stay decrypted; ticket keys survive unless the trust changed). The
    /// certificate database path is the one the server was built with:
    /// when `local.ssldbpath` changes, build a new server instead
    /// ([`certificate_database`] tells). Blocking (the database is read):
    /// call it on a blocking thread, as [`crate::TlsServer::reconfigure_async`]
    /// does. On error the current configuration stays.
    ///
    /// # Errors
    /// As [`crate::TlsServer::from_parameters`].
    pub fn reconfigure_from_parameters(
        &self,
        service: Service,
        get: impl Fn(&str) -> Option<String>,
        config_dir: &Path,
    ) -> Result<u64, Error> {
        let settings = ServerSettings::from_parameters(service, &get, config_dir)?;
        let list_parameter = Parameters { get: &get }.nickname_parameter(service);
        self.reconfigure(settings.clone())
            .map_err(|e| blame(e, &settings, list_parameter))
    }
}

/// Names the parameter behind a build error where one is to blame: a
/// nickname no certificate answers to (the service's list or the SNI
/// map), a CRL file, the certificate database.
#[cfg(feature = "certdb")]
fn blame(e: Error, settings: &ServerSettings, list_parameter: &'static str) -> Error {
    let crl = |p: &Path| settings.client_auth.crls.iter().any(|c| p.starts_with(c));
    let parameter = match &e {
        Error::UnknownNickname(n) | Error::DuplicateKeyType { second: n, .. } => {
            if settings.nicknames.iter().any(|k| k.to_string() == *n) {
                list_parameter
            } else {
                SNI_MAP
            }
        }
        Error::Io { path, .. } if crl(path) => CRL_FILES,
        Error::BadMaterial { what: "CRL", .. } => CRL_FILES,
        Error::Source(_) => DATABASE,
        _ => return e,
    };
    e.in_parameter(parameter)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<ServerSettings, Error> {
        ServerSettings::from_parameters(
            Service::Imap,
            |n| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == n)
                    .map(|(_, v)| (*v).to_owned())
            },
            Path::new("/etc/portcullis"),
        )
    }

    #[test]
    fn sni_map_syntax() {
        let m = sni_map("a.example.com, B.example.com = a-ec, a-rsa;\n*.example.org=org").unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].names, ["a.example.com", "b.example.com"]);
        assert_eq!(m[0].nicknames.len(), 2);
        assert_eq!(m[1].names, ["*.example.org"]);
        for bad in ["a.example.com", "= x", "bad..name = x", "a.example.com = ,"] {
            assert!(sni_map(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refusals_name_the_parameter() {
        let base = ("encryption.rsa.nssslpersonalityssl", "Server-Cert");
        for (name, value, why) in [
            ("local.sslminversion", "sslv3", "SSL 2.0 and 3.0"),
            ("local.sslminversion", "tls1", "TLS 1.0 and 1.1"),
            ("local.sslmaxversion", "TLSv9", "unknown TLS version"),
            ("encryption.nsssl3ciphers", "rsa_3des_sha", "triple DES"),
            (
                "encryption.nssslclientauth",
                "sometimes",
                "not a client certificate mode",
            ),
            ("local.sslstrictalpn", "maybe", "not a boolean"),
            ("local.sslticketlifetime", "0", "whole number of seconds"),
            ("local.sslhandshaketimeout", "-5", "whole number of seconds"),
            (
                "local.sslsnimap",
                "x.example.com = ",
                "invalid certificate nickname",
            ),
            (
                "local.imap.sslnicknames",
                "a,,b",
                "invalid certificate nickname",
            ),
        ] {
            let e = from(&[base, (name, value)]).unwrap_err();
            assert!(
                matches!(&e, Error::Parameter { parameter, .. } if *parameter == name),
                "{name}: {e:?}"
            );
            let text = e.to_string();
            assert!(text.starts_with(&format!("{name}: ")), "{text}");
            assert!(text.contains(why), "{text}");
        }
        // Min newer than max names the range's first parameter.
        let e = from(&[
            base,
            ("local.sslminversion", "TLSv1.3"),
            ("local.sslmaxversion", "1.2"),
        ])
        .unwrap_err();
        assert!(e.to_string().starts_with("local.sslminversion: "), "{e}");
        // No certificate at all.
        let e = from(&[]).unwrap_err();
        assert!(e.to_string().contains("local.imap.sslnicknames"), "{e}");
    }

    #[test]
    fn client_auth_modes() {
        for (v, mode) in [
            ("auto", ClientAuthMode::Auto),
            ("OFF", ClientAuthMode::Off),
            ("none", ClientAuthMode::Off),
            ("allowed", ClientAuthMode::Requested),
            ("request", ClientAuthMode::Requested),
            ("required", ClientAuthMode::Required),
        ] {
            assert_eq!(client_auth_mode(v).unwrap(), mode, "{v}");
        }
    }
}
