//! Which mechanisms a service advertises and accepts on a connection.
//!
//! Built from typed values of the configuration registry (the binary maps
//! the configuration file to [`PolicyConfig`]):
//!
//! | parameter | field |
//! |---|---|
//! | `sasl.default.mech_list` | [`PolicyConfig::mech_list`] |
//! | `sasl.default.ldap.has_plain_passwords` | [`PolicyConfig::has_plain_passwords`] |
//! | `service.imap.allowanonymouslogin` | [`PolicyConfig::imap_allow_anonymous`] |
//! | `service.plaintextmincipher` | [`PolicyConfig::plaintext_min_cipher`] |
//! | `service.<svc>.plaintextmincipher` | [`PolicyConfig::service_plaintext_min_cipher`] |

use std::collections::BTreeMap;

use crate::{Error, Mechanism, ServerContext, Service};

/// Typed policy inputs. Start from [`PolicyConfig::default`] (the chapter's
/// defaults: empty list, no cleartext passwords, no anonymous login,
/// plaintext allowed) and set fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PolicyConfig {
    /// `sasl.default.mech_list`: when non-empty it is the list of enabled
    /// mechanisms for every protocol, overriding `has_plain_passwords`.
    /// ANONYMOUS stays IMAP-only and needs `imap_allow_anonymous` too: the
    /// list can withhold it, never extend it (listing it for POP or SMTP is
    /// ignored with a warning). Names are matched case-insensitively.
    pub mech_list: Vec<String>,
    /// `sasl.default.ldap.has_plain_passwords`: the directory can return
    /// cleartext passwords, which enables CRAM-MD5, DIGEST-MD5 and APOP.
    pub has_plain_passwords: bool,
    /// `service.imap.allowanonymouslogin`: enables ANONYMOUS for IMAP.
    pub imap_allow_anonymous: bool,
    /// `service.plaintextmincipher`: > 0 means PLAIN, LOGIN and the
    /// protocols' own password commands need TLS; < 0 (the legacy "-1")
    /// refuses them always; 0 allows them.
    pub plaintext_min_cipher: i64,
    /// Per-service `service.<svc>.plaintextmincipher`, which wins over the
    /// global value.
    pub service_plaintext_min_cipher: BTreeMap<Service, i64>,
    /// The directory holds SCRAM secrets (RFC 5803): enables SCRAM-SHA-1,
    /// SCRAM-SHA-256 and their -PLUS variants when `mech_list` is empty.
    /// Not a chapter parameter; defaults to false.
    pub has_scram_secrets: bool,
}

/// The configuration parameters [`PolicyConfig::from_parameters`] reads.
pub const POLICY_PARAMETERS: [&str; 8] = [
    "sasl.default.mech_list",
    "sasl.default.ldap.has_plain_passwords",
    "service.imap.allowanonymouslogin",
    "service.plaintextmincipher",
    "service.imap.plaintextmincipher",
    "service.pop.plaintextmincipher",
    "service.smtp.plaintextmincipher",
    "service.http.plaintextmincipher",
];

fn parse_flag(name: &str, v: &str) -> Result<bool, Error> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(Error::Policy(format!("{name}: not a boolean"))),
    }
}

impl PolicyConfig {
    /// Reads the chapter's parameters ([`POLICY_PARAMETERS`]) through
    /// `get`, which returns a parameter's value as text, or `None` (or an
    /// empty string) when it is unset: for example
    /// `|name| config.string(name).ok()` over the Portcullis configuration
    /// file. `has_scram_secrets` is not a parameter and stays false.
    ///
    /// # Errors
    /// [`Error::Policy`] naming the parameter whose value is not a boolean
    /// or an integer.
    pub fn from_parameters(get: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let value = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let int = |name: &str| -> Result<Option<i64>, Error> {
            value(name)
                .map(|v| {
                    v.trim()
                        .parse::<i64>()
                        .map_err(|_| Error::Policy(format!("{name}: not an integer")))
                })
                .transpose()
        };
        let mut c = match value("sasl.default.mech_list") {
            Some(list) => Self::default().with_mech_list(&list),
            None => Self::default(),
        };
        if let Some(v) = value("sasl.default.ldap.has_plain_passwords") {
            c.has_plain_passwords = parse_flag("sasl.default.ldap.has_plain_passwords", &v)?;
        }
        if let Some(v) = value("service.imap.allowanonymouslogin") {
            c.imap_allow_anonymous = parse_flag("service.imap.allowanonymouslogin", &v)?;
        }
        c.plaintext_min_cipher = int("service.plaintextmincipher")?.unwrap_or(0);
        for (service, name) in [
            (Service::Imap, "service.imap.plaintextmincipher"),
            (Service::Pop, "service.pop.plaintextmincipher"),
            (Service::Smtp, "service.smtp.plaintextmincipher"),
            (Service::Http, "service.http.plaintextmincipher"),
        ] {
            if let Some(v) = int(name)? {
                c.service_plaintext_min_cipher.insert(service, v);
            }
        }
        Ok(c)
    }

    /// Sets `mech_list` from the configuration string (names separated by
    /// spaces or commas).
    #[must_use]
    pub fn with_mech_list(mut self, list: &str) -> Self {
        self.mech_list = list
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        self
    }
}

/// How PLAIN-style passwords are treated on a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlaintextRule {
    /// Allowed with or without TLS.
    Allow,
    /// Allowed only over TLS.
    RequireTls,
    /// Never allowed.
    Deny,
}

/// The mechanism policy (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// `None`: the defaults apply.
    list: Option<Vec<Mechanism>>,
    has_plain_passwords: bool,
    imap_allow_anonymous: bool,
    has_scram_secrets: bool,
    plaintext: i64,
    plaintext_per_service: BTreeMap<Service, i64>,
}

impl Policy {
    /// Builds the policy.
    ///
    /// # Errors
    ///
    /// [`Error::Policy`] naming an unknown mechanism in `mech_list` (this is
    /// configuration text, never client input).
    pub fn new(config: &PolicyConfig) -> Result<Self, Error> {
        let list = if config.mech_list.is_empty() {
            None
        } else {
            let mut list = Vec::new();
            for name in &config.mech_list {
                let m = Mechanism::from_name(name.as_bytes()).ok_or_else(|| {
                    Error::Policy(format!(
                        "unknown mechanism {name:?} in sasl.default.mech_list"
                    ))
                })?;
                if !list.contains(&m) {
                    list.push(m);
                }
            }
            if list.contains(&Mechanism::Anonymous) {
                if config.imap_allow_anonymous {
                    tracing::warn!(
                        "ANONYMOUS in sasl.default.mech_list is offered for IMAP only; POP and SMTP ignore it"
                    );
                } else {
                    tracing::warn!(
                        "ANONYMOUS in sasl.default.mech_list is not offered: service.imap.allowanonymouslogin is off, and POP and SMTP never offer it"
                    );
                }
            }
            Some(list)
        };
        Ok(Self {
            list,
            has_plain_passwords: config.has_plain_passwords,
            imap_allow_anonymous: config.imap_allow_anonymous,
            has_scram_secrets: config.has_scram_secrets,
            plaintext: config.plaintext_min_cipher,
            plaintext_per_service: config.service_plaintext_min_cipher.clone(),
        })
    }

    /// The rule for cleartext passwords on `service`.
    pub fn plaintext_rule(&self, service: Service) -> PlaintextRule {
        let v = self
            .plaintext_per_service
            .get(&service)
            .copied()
            .unwrap_or(self.plaintext);
        match v {
            0 => PlaintextRule::Allow,
            v if v > 0 => PlaintextRule::RequireTls,
            _ => PlaintextRule::Deny,
        }
    }

    /// Whether the protocols' own cleartext logins (IMAP LOGIN, POP3
    /// USER/PASS) are allowed on this connection.
    pub fn plaintext_login_allowed(&self, ctx: &ServerContext) -> bool {
        match self.plaintext_rule(ctx.service) {
            PlaintextRule::Allow => true,
            PlaintextRule::RequireTls => ctx.tls.is_some(),
            PlaintextRule::Deny => false,
        }
    }

    /// Whether `m` is enabled for `service`, before looking at the
    /// connection.
    fn enabled(&self, service: Service, m: Mechanism) -> bool {
        if service == Service::Http {
            // The HTTP service supports only the plaintext password
            // mechanism.
            return m == Mechanism::Plain && self.list.as_ref().is_none_or(|l| l.contains(&m));
        }
        if m == Mechanism::Apop && service != Service::Pop {
            return false;
        }
        // ANONYMOUS belongs to IMAP and `service.imap.allowanonymouslogin`,
        // whatever the list says: the list can only withhold it.
        if m == Mechanism::Anonymous {
            return service == Service::Imap
                && self.imap_allow_anonymous
                && self.list.as_ref().is_none_or(|l| l.contains(&m));
        }
        if let Some(list) = &self.list {
            return list.contains(&m);
        }
        match m {
            Mechanism::Plain | Mechanism::External => true,
            // "LOGIN ... by default enabled for SMTP only."
            Mechanism::Login => service == Service::Smtp,
            Mechanism::CramMd5 | Mechanism::DigestMd5 | Mechanism::Apop => self.has_plain_passwords,
            Mechanism::Anonymous => service == Service::Imap && self.imap_allow_anonymous,
            Mechanism::ScramSha1
            | Mechanism::ScramSha1Plus
            | Mechanism::ScramSha256
            | Mechanism::ScramSha256Plus => self.has_scram_secrets,
        }
    }

    /// Whether `m` may run on this connection.
    ///
    /// # Errors
    ///
    /// [`Error::EncryptionRequired`] for PLAIN/LOGIN without TLS when
    /// `plaintextmincipher` > 0; [`Error::MechanismUnavailable`] when the
    /// mechanism is disabled, EXTERNAL has no client certificate, or -PLUS
    /// has no usable channel binding.
    pub fn check(&self, m: Mechanism, ctx: &ServerContext) -> Result<(), Error> {
        if !self.enabled(ctx.service, m) {
            return Err(Error::MechanismUnavailable);
        }
        if m.is_plaintext() {
            match self.plaintext_rule(ctx.service) {
                PlaintextRule::Allow => {}
                PlaintextRule::RequireTls if ctx.tls.is_some() => {}
                PlaintextRule::RequireTls => return Err(Error::EncryptionRequired),
                PlaintextRule::Deny => return Err(Error::MechanismUnavailable),
            }
        }
        if m == Mechanism::External && ctx.external.is_none() {
            return Err(Error::MechanismUnavailable);
        }
        if m.is_plus()
            && ctx
                .tls
                .as_ref()
                .and_then(|t| t.preferred_channel_binding())
                .is_none()
        {
            return Err(Error::MechanismUnavailable);
        }
        Ok(())
    }

    /// The SASL mechanisms to advertise on this connection, strongest first.
    /// APOP is not a SASL mechanism and is never in this list (see
    /// [`Policy::apop_enabled`]).
    pub fn advertised(&self, ctx: &ServerContext) -> Vec<Mechanism> {
        Mechanism::ALL
            .into_iter()
            .filter(|m| *m != Mechanism::Apop && self.check(*m, ctx).is_ok())
            .collect()
    }

    /// Whether the POP3 greeting should carry an APOP timestamp.
    pub fn apop_enabled(&self, ctx: &ServerContext) -> bool {
        self.check(Mechanism::Apop, ctx).is_ok()
    }

    /// A copy of `ctx` whose `plus_advertised` matches what this policy
    /// advertises (so a SCRAM `y` flag is judged correctly).
    pub fn context(&self, ctx: &ServerContext) -> ServerContext {
        let mut ctx = ctx.clone();
        ctx.plus_advertised = self.advertised(&ctx).iter().any(|m| m.is_plus());
        ctx
    }

    /// The capability string: advertised names separated by spaces
    /// (`AUTH=` prefixes are the protocol's business).
    pub fn advertised_names(&self, ctx: &ServerContext) -> String {
        self.advertised(ctx)
            .iter()
            .map(|m| m.name())
            .collect::<Vec<_>>()
            .join(" ")
    }
}
