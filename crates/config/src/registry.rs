//! The parameter registry: every configuration parameter Portcullis knows,
//! with its type, default and description.
//!
//! Parameter names are the ones the original `configutil` used (chapter 23
//! of the Messaging Server 6.3 administration guide); the POP-before-SMTP
//! options of the multiplexor live under `mmp.`.

/// What kind of value a parameter holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// `true`/`false` (also accepted: `1`/`0`, `yes`/`no`, `on`/`off`).
    Bool,
    /// A whole number within an inclusive range.
    Integer {
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
    },
    /// Free text.
    String,
    /// Free text that is a secret: never printed in full listings.
    Secret,
    /// A list of words separated by blanks (the seed's `mech_list` form).
    List,
    /// A list of names separated by commas (the `sslnicknames` form).
    CommaList,
    /// A client access filter (`serviceList: clientList` rules).
    Filter,
}

impl Kind {
    /// A short name of the type for help output.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::Bool => "boolean".to_owned(),
            Self::Integer { min, max } if *max == i64::MAX => format!("integer >= {min}"),
            Self::Integer { min, max } => format!("integer {min}..{max}"),
            Self::String => "string".to_owned(),
            Self::Secret => "secret string".to_owned(),
            Self::List => "space-separated list".to_owned(),
            Self::CommaList => "comma-separated list".to_owned(),
            Self::Filter => "access filter".to_owned(),
        }
    }
}

/// One known parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parameter {
    /// The canonical (lower-case, dotted) name.
    pub name: &'static str,
    /// The value's type.
    pub kind: Kind,
    /// The default in configuration syntax, or `None` when an unset value
    /// means something of its own (described in `description`).
    pub default: Option<&'static str>,
    /// What the parameter does.
    pub description: &'static str,
}

const fn p(
    name: &'static str,
    kind: Kind,
    default: Option<&'static str>,
    description: &'static str,
) -> Parameter {
    Parameter {
        name,
        kind,
        default,
        description,
    }
}

const BOOL: Kind = Kind::Bool;
const FLAG: Kind = Kind::Integer { min: 0, max: 1 };
const SECONDS: Kind = Kind::Integer {
    min: 1,
    max: i64::MAX,
};
const NONNEG: Kind = Kind::Integer {
    min: 0,
    max: i64::MAX,
};
const PORT: Kind = Kind::Integer { min: 1, max: 65535 };

/// Every parameter, sorted by name.
pub static PARAMETERS: &[Parameter] = &[
    p(
        "encryption.rsa.nssslpersonalityssl",
        Kind::CommaList,
        Some("Server-Cert"),
        "Nickname(s) of the server certificate used by every service that has no \
         local.<service>.sslnicknames of its own; module:nickname names a key on a PKCS#11 token.",
    ),
    p(
        "local.http.sslnicknames",
        Kind::CommaList,
        None,
        "Certificate nicknames for HTTP (at most one per key type); unset: \
         encryption.rsa.nssslpersonalityssl.",
    ),
    p(
        "local.imap.sslnicknames",
        Kind::CommaList,
        None,
        "Certificate nicknames for IMAP (at most one per key type); unset: \
         encryption.rsa.nssslpersonalityssl.",
    ),
    p(
        "local.imta.sslnicknames",
        Kind::CommaList,
        None,
        "Certificate nicknames for SMTP (at most one per key type); unset: \
         encryption.rsa.nssslpersonalityssl.",
    ),
    p(
        "local.pop.sslnicknames",
        Kind::CommaList,
        None,
        "Certificate nicknames for POP (at most one per key type); unset: \
         encryption.rsa.nssslpersonalityssl.",
    ),
    p(
        "local.ssldbpath",
        Kind::String,
        Some("certdb"),
        "Directory of the certificate database (msgcert -d overrides it); relative paths \
         are taken from the configuration file's directory.",
    ),
    p(
        "local.ugldapbasedn",
        Kind::String,
        Some("o=example"),
        "Base DN of the user/group directory tree.",
    ),
    p(
        "local.ugldapbindcred",
        Kind::Secret,
        Some(""),
        "Password of local.ugldapbinddn.",
    ),
    p(
        "local.ugldapbinddn",
        Kind::String,
        Some(""),
        "DN of the service account the servers bind as to search the user/group directory.",
    ),
    p(
        "local.ugldaphost",
        Kind::List,
        Some("localhost"),
        "User/group directory server(s): blank-separated host[:port] list, tried in order \
         with failover.",
    ),
    p(
        "local.ugldapport",
        PORT,
        Some("389"),
        "Port of the user/group directory for hosts that name none (636 is usual with \
         local.ugldapusessl = 1).",
    ),
    p(
        "local.ugldapusessl",
        FLAG,
        Some("0"),
        "1: talk to the user/group directory over LDAPS; 0: plain LDAP (StartTLS when \
         configured).",
    ),
    p(
        "mmp.authservicettl",
        SECONDS,
        Some("900"),
        "AuthServiceTTL: seconds a successful POP login authorizes SMTP relaying from the \
         same client address.",
    ),
    p(
        "mmp.clientlookup",
        BOOL,
        Some("false"),
        "ClientLookup: do one reverse DNS lookup of the client at the proxy and pass the \
         name to the SMTP relay.",
    ),
    p(
        "mmp.ehlokeywords",
        Kind::List,
        Some(""),
        "EhloKeywords: EHLO keywords passed from the SMTP relays to clients besides the \
         default set (8BITMIME PIPELINING DSN ENHANCEDSTATUSCODES EXPN HELP XLOOP ETRN SIZE \
         STARTTLS AUTH).",
    ),
    p(
        "mmp.failovertimeout",
        SECONDS,
        Some("10"),
        "FailoverTimeout: seconds to wait for an SMTP relay before trying the next; a \
         failed relay is not tried again for this many minutes.",
    ),
    p(
        "mmp.popbeforesmtpkludgechannel",
        Kind::String,
        Some(""),
        "PopBeforeSmtpKludgeChannel: channel the relay switches POP-authorized clients to \
         (e.g. tcp_intranet); with XCLIENT the user is passed as LOGIN instead.",
    ),
    p(
        "mmp.preauth",
        BOOL,
        Some("false"),
        "PreAuth: authenticate POP users at the proxy and record their address for \
         POP-before-SMTP.",
    ),
    p(
        "mmp.smtpproxypassword",
        Kind::Secret,
        Some(""),
        "SmtpProxyPassword: password the SMTP proxy presents to the relays (the relays' \
         PROXY_PASSWORD).",
    ),
    p(
        "mmp.smtprelays",
        Kind::List,
        Some(""),
        "SmtpRelays: blank-separated host[:port] list of SMTP relays, used round robin.",
    ),
    p(
        "sasl.default.auto_transition",
        BOOL,
        Some("false"),
        "When a user logs in with a plaintext password, rewrite the stored password in the \
         directory's default storage scheme.",
    ),
    p(
        "sasl.default.ldap.has_plain_passwords",
        BOOL,
        Some("false"),
        "The directory holds cleartext passwords: enables APOP, CRAM-MD5 and DIGEST-MD5.",
    ),
    p(
        "sasl.default.ldap.searchfilter",
        Kind::String,
        Some("(&(uid=%U)(objectclass=inetmailuser))"),
        "Default filter to find a user: %U local part, %D domain, %o login as typed.",
    ),
    p(
        "sasl.default.ldap.searchfordomain",
        FLAG,
        Some("1"),
        "1: look up the login's domain first and search the user under it (with the \
         domain's inetDomainSearchFilter if it has one); 0: search under local.ugldapbasedn.",
    ),
    p(
        "sasl.default.mech_list",
        Kind::List,
        Some(""),
        "Space-separated list of SASL mechanisms; when non-empty it is the list, \
         overriding has_plain_passwords and allowanonymouslogin.",
    ),
    p(
        "service.http.domainallowed",
        Kind::Filter,
        Some(""),
        "Access filters whose matches are granted HTTP access.",
    ),
    p(
        "service.http.domainnotallowed",
        Kind::Filter,
        Some(""),
        "Access filters whose matches are denied HTTP access.",
    ),
    p(
        "service.http.plaintextmincipher",
        NONNEG,
        None,
        "Per-service override of service.plaintextmincipher for HTTP.",
    ),
    p(
        "service.http.proxydomainallowed",
        Kind::Filter,
        Some(""),
        "Access filters for hosts allowed to log in to HTTP on behalf of users (proxy \
         authentication).",
    ),
    p(
        "service.http.sessiontimeout",
        SECONDS,
        Some("7200"),
        "Seconds an idle HTTP session stays valid.",
    ),
    p(
        "service.imap.allowanonymouslogin",
        BOOL,
        Some("false"),
        "Allow SASL ANONYMOUS for IMAP.",
    ),
    p(
        "service.imap.domainallowed",
        Kind::Filter,
        Some(""),
        "Access filters whose matches are granted IMAP access.",
    ),
    p(
        "service.imap.domainnotallowed",
        Kind::Filter,
        Some(""),
        "Access filters whose matches are denied IMAP access.",
    ),
    p(
        "service.imap.plaintextmincipher",
        NONNEG,
        None,
        "Per-service override of service.plaintextmincipher for IMAP.",
    ),
    p(
        "service.plaintextmincipher",
        NONNEG,
        Some("0"),
        "Greater than 0: plaintext passwords (PLAIN, LOGIN, USER/PASS) are refused and not \
         advertised unless the connection uses TLS.",
    ),
    p(
        "service.pop.domainallowed",
        Kind::Filter,
        Some(""),
        "Access filters whose matches are granted POP access.",
    ),
    p(
        "service.pop.domainnotallowed",
        Kind::Filter,
        Some(""),
        "Access filters whose matches are denied POP access.",
    ),
    p(
        "service.pop.plaintextmincipher",
        NONNEG,
        None,
        "Per-service override of service.plaintextmincipher for POP.",
    ),
    p(
        "service.smtp.domainallowed",
        Kind::Filter,
        Some(""),
        "Access filters whose matches are granted authenticated SMTP access.",
    ),
    p(
        "service.smtp.domainnotallowed",
        Kind::Filter,
        Some(""),
        "Access filters whose matches are denied authenticated SMTP access.",
    ),
    p(
        "service.smtp.plaintextmincipher",
        NONNEG,
        None,
        "Per-service override of service.plaintextmincipher for SMTP.",
    ),
];

/// Finds a parameter by name, ignoring ASCII case.
#[must_use]
pub fn lookup(name: &str) -> Option<&'static Parameter> {
    PARAMETERS
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(name))
}

/// The known parameter whose name is closest to `name` (edit distance), if
/// any is reasonably close.
#[must_use]
pub fn closest(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    let (best, dist) = PARAMETERS
        .iter()
        .map(|p| (p.name, distance(&lower, p.name)))
        .min_by_key(|&(_, d)| d)?;
    // Accept up to a third of the name as edits, or a shared last component.
    let last = lower.rsplit('.').next().unwrap_or(&lower);
    if dist * 3 <= best.len().max(lower.len()) || best.rsplit('.').next() == Some(last) {
        Some(best)
    } else {
        None
    }
}

/// Levenshtein distance over bytes.
fn distance(a: &str, b: &str) -> usize {
    let a = a.as_bytes();
    let b = b.as_bytes();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, &ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j + 1] + 1).min(cur[j] + 1).min(prev[j] + cost);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_is_sorted_unique_and_lower_case() {
        for pair in PARAMETERS.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} / {}",
                pair[0].name,
                pair[1].name
            );
        }
        for p in PARAMETERS {
            assert_eq!(p.name, p.name.to_ascii_lowercase());
            assert!(!p.description.is_empty());
        }
    }

    #[test]
    fn closest_suggests_typos() {
        assert_eq!(
            closest("sasl.default.mech_lst"),
            Some("sasl.default.mech_list")
        );
        assert_eq!(
            closest("service.imap.domainalowed"),
            Some("service.imap.domainallowed")
        );
        assert_eq!(closest("mmp.PreAuht"), Some("mmp.preauth"));
        assert_eq!(closest("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"), None);
    }

    #[test]
    fn lookup_ignores_case() {
        assert_eq!(lookup("MMP.PreAuth").map(|p| p.name), Some("mmp.preauth"));
        assert!(lookup("no.such.thing").is_none());
    }
}
