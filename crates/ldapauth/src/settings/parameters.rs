//! [`Settings`] from the configuration parameters, read through a getter so
//! that this crate does not depend on the configuration crate.

use std::path::{Path, PathBuf};
use std::time::Duration;

use portcullis_certmap::CertMapConfig;
use portcullis_sasl::Password;

use super::{Settings, VerifyMode};
use crate::Error;
use crate::filter::FilterTemplate;
use crate::scheme::{NewScheme, limits};

/// Largest `local.ugldappoolsize`.
const MAX_POOL_SIZE: u64 = 1024;
/// sha-crypt's smallest round count.
const MIN_SHA_CRYPT_ROUNDS: u32 = 1000;
/// PBKDF2 iterations of `PBKDF2-SHA256` without a count.
const DEFAULT_PBKDF2_ITERATIONS: u32 = 100_000;
/// sha-crypt rounds of `SHA512-CRYPT` / `SHA256-CRYPT` without a count
/// (glibc's default).
const DEFAULT_SHA_CRYPT_ROUNDS: u32 = 5000;

fn bad(name: &str, why: impl std::fmt::Display) -> Error {
    Error::Config(format!("{name}: {why}"))
}

/// The values of one configuration, by parameter name; unset and empty
/// values are `None`.
struct Values<G> {
    get: G,
}

impl<G: Fn(&str) -> Option<String>> Values<G> {
    fn text(&self, name: &str) -> Option<String> {
        (self.get)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn flag(&self, name: &str, default: bool) -> Result<bool, Error> {
        let Some(v) = self.text(name) else {
            return Ok(default);
        };
        match v.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err(bad(name, format!("`{v}` is not a boolean"))),
        }
    }

    /// A whole number in `min..=max`.
    fn number(&self, name: &str, min: u64, max: u64) -> Result<Option<u64>, Error> {
        let Some(v) = self.text(name) else {
            return Ok(None);
        };
        match v.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(bad(
                name,
                format!("`{v}` is not a whole number in {min}..={max}"),
            )),
        }
    }

    fn seconds(&self, name: &str, min: u64, default: Duration) -> Result<Duration, Error> {
        Ok(self
            .number(name, min, u64::MAX)?
            .map_or(default, Duration::from_secs))
    }

    /// A path, relative ones taken from `dir`.
    fn path(&self, name: &str, dir: &Path) -> Option<PathBuf> {
        self.text(name).map(|p| dir.join(p))
    }
}

/// The storage scheme named by `sasl.default.transition_scheme`: `SSHA`,
/// `SSHA256`, `SSHA512`, `CLEARTEXT`, `ARGON2`, `SHA512-CRYPT[:rounds]`
/// (also `CRYPT`), `SHA256-CRYPT[:rounds]` or
/// `PBKDF2-SHA256[:iterations]`, in any case, with or without braces.
fn transition_scheme(name: &str, value: &str) -> Result<NewScheme, Error> {
    let upper = value.to_ascii_uppercase();
    let (scheme, given) = match upper.split_once(':') {
        Some((s, c)) => (s, Some(c)),
        None => (upper.as_str(), None),
    };
    let scheme = match scheme.strip_prefix('{') {
        Some(inner) => inner.strip_suffix('}').unwrap_or("{"),
        None => scheme,
    };
    let count = |default: u32, min: u32, max: u32| -> Result<u32, Error> {
        let Some(c) = given else { return Ok(default) };
        match c.parse::<u32>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(bad(
                name,
                format!("`{value}`: the count must be a whole number in {min}..={max}"),
            )),
        }
    };
    let no_count = |s: NewScheme| match given {
        None => Ok(s),
        Some(_) => Err(bad(name, format!("`{value}`: {scheme} takes no count"))),
    };
    let rounds = || {
        count(
            DEFAULT_SHA_CRYPT_ROUNDS,
            MIN_SHA_CRYPT_ROUNDS,
            limits::MAX_SHA_CRYPT_ROUNDS,
        )
    };
    match scheme {
        "CLEARTEXT" => no_count(NewScheme::Cleartext),
        "SSHA" => no_count(NewScheme::SaltedSha1),
        "SSHA256" => no_count(NewScheme::SaltedSha256),
        "SSHA512" => no_count(NewScheme::SaltedSha512),
        "ARGON2" => no_count(NewScheme::Argon2id),
        "CRYPT" | "SHA512-CRYPT" => Ok(NewScheme::Sha512Crypt { rounds: rounds()? }),
        "SHA256-CRYPT" => Ok(NewScheme::Sha256Crypt { rounds: rounds()? }),
        "PBKDF2-SHA256" => Ok(NewScheme::Pbkdf2Sha256 {
            iterations: count(
                DEFAULT_PBKDF2_ITERATIONS,
                1000,
                limits::MAX_PBKDF2_ITERATIONS,
            )?,
        }),
        _ => Err(bad(
            name,
            format!(
                "unknown scheme `{value}` (SSHA, SSHA256, SSHA512, CLEARTEXT, ARGON2, \
                 SHA512-CRYPT[:rounds], SHA256-CRYPT[:rounds], PBKDF2-SHA256[:iterations])"
            ),
        )),
    }
}

/// An attribute description (RFC 4512 §2.5): a name or numeric OID, with
/// options.
fn is_attribute(a: &str) -> bool {
    let mut parts = a.split(';');
    let kind = parts.next().unwrap_or_default();
    let name_ok = kind.starts_with(|c: char| c.is_ascii_alphabetic())
        && kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let oid_ok = !kind.is_empty()
        && kind.contains('.')
        && kind
            .split('.')
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    (name_ok || oid_ok)
        && parts.all(|o| !o.is_empty() && o.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

fn extra_attributes(name: &str, value: Option<String>) -> Result<Vec<String>, Error> {
    let mut out: Vec<String> = Vec::new();
    for a in value
        .iter()
        .flat_map(|v| v.split(|c: char| c == ',' || c.is_whitespace()))
        .filter(|a| !a.is_empty())
    {
        if !is_attribute(a) {
            return Err(bad(name, format!("`{a}` is not an attribute name")));
        }
        let kind = a.split(';').next().unwrap_or_default();
        if kind.eq_ignore_ascii_case("userPassword") || kind == "2.5.4.35" {
            return Err(bad(name, "userPassword is never handed out with the entry"));
        }
        if !out.iter().any(|o| o.eq_ignore_ascii_case(a)) {
            out.push(a.to_owned());
        }
    }
    Ok(out)
}

/// Checks a `local.ugldapcanonicalform` template: only `%u`, `%d`, `%m`
/// and `%%`, and at least one of `%u` / `%m`, so that two users never
/// share an identity.
fn canonical_form(name: &str, value: &str) -> Result<(), Error> {
    let mut names_user = false;
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            continue;
        }
        match chars.next() {
            Some('u' | 'm') => names_user = true,
            Some('d' | '%') => {}
            Some(other) => {
                return Err(bad(
                    name,
                    format!("`%{other}` is not %u (uid), %d (domain), %m (mail) or %%"),
                ));
            }
            None => return Err(bad(name, "the template ends with a lone `%`")),
        }
    }
    if !names_user {
        return Err(bad(
            name,
            "the template must contain %u or %m, or every user would get the same identity",
        ));
    }
    Ok(())
}

impl Settings {
    /// The configuration parameters [`Settings::from_parameters`] reads.
    pub const PARAMETERS: [&'static str; 29] = [
        "local.ugldaphost",
        "local.ugldapport",
        "local.ugldapusessl",
        "local.ugldapstarttls",
        "local.ugldapcafile",
        "local.ugldapbinddn",
        "local.ugldapbindcred",
        "local.ugldapbasedn",
        "local.ugldapconnecttimeout",
        "local.ugldapoperationtimeout",
        "local.ugldapfailoverhold",
        "local.ugldappoolsize",
        "local.ugldapidlecheck",
        "local.ugldapextraattrs",
        "local.ugldapcanonicalform",
        "service.defaultdomain",
        "service.authcachettl",
        "sasl.default.ldap.searchfilter",
        "sasl.default.ldap.searchfordomain",
        "sasl.default.ldap.domainfilter",
        "sasl.default.ldap.has_plain_passwords",
        "sasl.default.ldap.verify",
        "sasl.default.ldap.admingroupdn",
        "sasl.default.ldap.certmapfile",
        "sasl.default.ldap.certmapbasedn",
        "sasl.default.auto_transition",
        "sasl.default.transition_scheme",
        "sasl.default.transition_scram",
        "sasl.default.scram.iterations",
    ];

    /// Reads the directory settings from the configuration parameters
    /// ([`Settings::PARAMETERS`]) through `get`, which returns a
    /// parameter's value as text, or `None` (or an empty string) when it
    /// is unset: for example `|name| config.string(name).ok()` over the
    /// Portcullis configuration file. Relative paths (`local.ugldapcafile`,
    /// `sasl.default.ldap.certmapfile`) are taken from `config_dir`; the
    /// certmap file is read and parsed here. Unset parameters keep the
    /// defaults of [`Settings::new`]; trust roots from the certificate
    /// database (`ca_certs`) are not a parameter and are left to the
    /// caller.
    ///
    /// `local.ugldapport` is used as given; when `get` has no value at all,
    /// the port is 389, or 636 with `local.ugldapusessl`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the parameter whose value is unusable (not
    /// a boolean or number, out of range, an unknown scheme or verify mode,
    /// a malformed filter template or host list, an unreadable CA or
    /// certmap file, a certmap file that does not parse).
    pub fn from_parameters(
        get: impl Fn(&str) -> Option<String>,
        config_dir: &Path,
    ) -> Result<Self, Error> {
        let v = Values { get };

        let hosts = v
            .text("local.ugldaphost")
            .ok_or_else(|| bad("local.ugldaphost", "no directory server is named"))?;
        let base_dn = v
            .text("local.ugldapbasedn")
            .ok_or_else(|| bad("local.ugldapbasedn", "the base DN is empty"))?;
        let mut s = Self::new(hosts, base_dn);

        s.port = v
            .number("local.ugldapport", 1, u64::from(u16::MAX))?
            .and_then(|p| u16::try_from(p).ok());
        s.use_ssl = v.flag("local.ugldapusessl", s.use_ssl)?;
        s.starttls = v.flag("local.ugldapstarttls", s.starttls)?;
        s.servers().map_err(|e| match e {
            Error::Config(why) => bad("local.ugldaphost", why),
            other => other,
        })?;
        s.ca_file = v.path("local.ugldapcafile", config_dir);
        if let Some(path) = &s.ca_file {
            std::fs::metadata(path)
                .map_err(|e| bad("local.ugldapcafile", format!("{}: {e}", path.display())))?;
        }

        if let Some(dn) = v.text("local.ugldapbinddn") {
            s.bind_dn = dn;
        }
        // Taken as it is (a password may have blanks at its ends).
        if let Some(pw) = (v.get)("local.ugldapbindcred").filter(|p| !p.is_empty()) {
            s.bind_password = Password::from(pw);
        }

        s.connect_timeout = v.seconds("local.ugldapconnecttimeout", 1, s.connect_timeout)?;
        s.operation_timeout = v.seconds("local.ugldapoperationtimeout", 1, s.operation_timeout)?;
        s.failover_hold = v.seconds("local.ugldapfailoverhold", 0, s.failover_hold)?;
        s.idle_check_after = v.seconds("local.ugldapidlecheck", 0, s.idle_check_after)?;
        if let Some(n) = v.number("local.ugldappoolsize", 1, MAX_POOL_SIZE)? {
            s.pool_size = usize::try_from(n).unwrap_or(s.pool_size);
        }
        s.cache_ttl = match v.number("service.authcachettl", 0, u64::MAX)? {
            None | Some(0) => None,
            Some(n) => Some(Duration::from_secs(n)),
        };

        s.extra_attributes =
            extra_attributes("local.ugldapextraattrs", v.text("local.ugldapextraattrs"))?;
        if let Some(form) = v.text("local.ugldapcanonicalform") {
            canonical_form("local.ugldapcanonicalform", &form)?;
            s.canonical_form = form;
        }

        s.default_domain = v
            .text("service.defaultdomain")
            .map(|d| d.to_ascii_lowercase());
        if let Some(d) = &s.default_domain
            && !d
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        {
            return Err(bad(
                "service.defaultdomain",
                format!("`{d}` is not a domain name"),
            ));
        }

        if let Some(f) = v.text("sasl.default.ldap.searchfilter") {
            FilterTemplate::parse(&f).map_err(|e| bad("sasl.default.ldap.searchfilter", e))?;
            s.search_filter = f;
        }
        s.search_for_domain = v.flag("sasl.default.ldap.searchfordomain", s.search_for_domain)?;
        if let Some(f) = v.text("sasl.default.ldap.domainfilter") {
            FilterTemplate::parse(&f).map_err(|e| bad("sasl.default.ldap.domainfilter", e))?;
            s.domain_filter = f;
        }
        s.has_plain_passwords = v.flag(
            "sasl.default.ldap.has_plain_passwords",
            s.has_plain_passwords,
        )?;
        if let Some(mode) = v.text("sasl.default.ldap.verify") {
            s.verify = match mode.to_ascii_lowercase().as_str() {
                "bind" => VerifyMode::Bind,
                "localhash" => VerifyMode::LocalHash,
                _ => {
                    return Err(bad(
                        "sasl.default.ldap.verify",
                        format!("`{mode}` is neither bind nor localhash"),
                    ));
                }
            };
        }
        s.admin_group_dn = v.text("sasl.default.ldap.admingroupdn");

        if let Some(path) = v.path("sasl.default.ldap.certmapfile", config_dir) {
            let name = "sasl.default.ldap.certmapfile";
            let text = std::fs::read_to_string(&path)
                .map_err(|e| bad(name, format!("{}: {e}", path.display())))?;
            let parsed = CertMapConfig::parse(&text)
                .map_err(|e| bad(name, format!("{}: {e}", path.display())))?;
            s.certmap = Some(parsed);
        }
        s.certmap_base_dn = v.text("sasl.default.ldap.certmapbasedn");

        s.auto_transition = v.flag("sasl.default.auto_transition", s.auto_transition)?;
        if let Some(scheme) = v.text("sasl.default.transition_scheme") {
            s.transition_scheme = transition_scheme("sasl.default.transition_scheme", &scheme)?;
        }
        s.transition_scram = v.flag("sasl.default.transition_scram", s.transition_scram)?;
        if let Some(n) = v.number(
            "sasl.default.scram.iterations",
            4096,
            u64::from(limits::MAX_PBKDF2_ITERATIONS),
        )? {
            s.scram_iterations = u32::try_from(n).unwrap_or(s.scram_iterations);
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_schemes() {
        let n = "sasl.default.transition_scheme";
        for (text, want) in [
            ("SSHA", NewScheme::SaltedSha1),
            ("{ssha256}", NewScheme::SaltedSha256),
            ("ssha512", NewScheme::SaltedSha512),
            ("CLEARTEXT", NewScheme::Cleartext),
            ("argon2", NewScheme::Argon2id),
            ("{CRYPT}", NewScheme::Sha512Crypt { rounds: 5000 }),
            (
                "sha512-crypt:20000",
                NewScheme::Sha512Crypt { rounds: 20000 },
            ),
            ("SHA256-CRYPT", NewScheme::Sha256Crypt { rounds: 5000 }),
            (
                "{PBKDF2-SHA256}:200000",
                NewScheme::Pbkdf2Sha256 {
                    iterations: 200_000,
                },
            ),
            (
                "PBKDF2-SHA256:600000",
                NewScheme::Pbkdf2Sha256 {
                    iterations: 600_000,
                },
            ),
        ] {
            assert_eq!(transition_scheme(n, text).unwrap(), want, "{text}");
        }
        for text in [
            "MD5",
            "SSHA:5",
            "SHA512-CRYPT:999",
            "SHA512-CRYPT:500001",
            "PBKDF2-SHA256:x",
            "PBKDF2-SHA256:2000000",
            "{SSHA",
            "SSHA}",
        ] {
            let e = transition_scheme(n, text).unwrap_err();
            assert!(e.to_string().contains(n), "{text}: {e}");
        }
    }

    #[test]
    fn attribute_names() {
        for ok in ["mailHost", "cn;lang-en", "2.5.4.3", "x-custom-1"] {
            assert!(is_attribute(ok), "{ok}");
        }
        for no in [
            "",
            "*",
            "+",
            "1mail",
            "mail host",
            "2.5..3",
            "cn;",
            "a_b",
            "m(ail",
        ] {
            assert!(!is_attribute(no), "{no}");
        }
    }

    #[test]
    fn canonical_forms() {
        let n = "local.ugldapcanonicalform";
        for ok in ["%u@%d", "%m", "%u", "user-%u%%%d"] {
            canonical_form(n, ok).unwrap();
        }
        for no in ["%d", "static", "%u@%x", "%u%", "100%%"] {
            assert!(
                canonical_form(n, no).unwrap_err().to_string().contains(n),
                "{no}"
            );
        }
    }
}
