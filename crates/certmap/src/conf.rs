//! The `certmap.conf` parser.
//!
//! ```text
//! # comment
//! certmap default default
//! default:DNComps
//! default:FilterComps e=mail
//! certmap corp CN=Corp CA, O=Corp, C=US
//! corp:DNComps ou, o
//! corp:FilterComps uid, ou=department
//! corp:verifycert on
//! corp:CmapLdapAttr certSubjectDN
//! ```
//!
//! A map is declared by `certmap NAME ISSUER_DN`; its properties follow as
//! `NAME:PROPERTY [VALUE]`. The first map must be `certmap default
//! default`. Component lists are separated by commas and/or spaces; each
//! item is `attr` (the certificate subject's attribute, searched under the
//! name written, except the e-mail address — `e`, `E`, `email` or
//! `emailAddress` — which is searched as `mail`) or the MMP form `FROM=TO`.

use crate::Error;
use crate::dn::{AttributeType, Dn};

/// Longest `certmap.conf` accepted (bytes).
pub const MAX_FILE_LEN: usize = 1 << 20;

/// One `FROM[=TO]` item of a `DNComps` / `FilterComps` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    /// Attribute of the certificate subject.
    pub from: AttributeType,
    /// Directory attribute it becomes in the base DN or filter.
    pub to: String,
}

/// A property list: absent, present but empty, or a list of components.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Comps {
    /// The property is not given.
    #[default]
    Absent,
    /// Given with no value.
    Empty,
    /// Given with components.
    List(Vec<Component>),
}

/// One `certmap` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertMap {
    /// Map name.
    pub name: String,
    /// Issuer DN selected by this map (`None` for `default`).
    pub issuer: Option<Dn>,
    /// `NAME:DNComps`.
    pub dn_comps: Comps,
    /// `NAME:FilterComps`.
    pub filter_comps: Comps,
    /// `NAME:verifycert on|off` (default off).
    pub verify_cert: bool,
    /// `NAME:CmapLdapAttr ATTR`.
    pub cmap_ldap_attr: Option<String>,
    /// Line of the `certmap` declaration.
    pub line: usize,
}

/// A parsed `certmap.conf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertMapConfig {
    /// The maps in file order; the first is `default`.
    maps: Vec<CertMap>,
}

fn syntax(line: usize, message: impl Into<String>) -> Error {
    Error::Syntax {
        line,
        message: message.into(),
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Attribute name valid in an LDAP filter or DN (descriptor or OID), with
/// RFC 4515 options (`;binary`) refused.
fn ldap_attr(s: &str, line: usize) -> Result<String, Error> {
    let ok = !s.is_empty()
        && (s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            || (s.as_bytes()[0].is_ascii_alphabetic()
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(syntax(line, format!("`{s}` is not an attribute name")))
    }
}

fn parse_comps(value: &str, line: usize) -> Result<Comps, Error> {
    let items: Vec<&str> = value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .collect();
    if items.is_empty() {
        return Ok(Comps::Empty);
    }
    let mut out = Vec::new();
    for item in items {
        let (from, to) = match item.split_once('=') {
            Some((f, t)) => (f, Some(t)),
            None => (item, None),
        };
        let attr = AttributeType::from_name(from).map_err(|_| {
            syntax(
                line,
                format!("`{from}` is not a certificate attribute name"),
            )
        })?;
        let to = match to {
            Some(t) => ldap_attr(t, line)?,
            None if attr == AttributeType::EMAIL => "mail".to_owned(),
            None => ldap_attr(from, line)?,
        };
        out.push(Component { from: attr, to });
    }
    Ok(Comps::List(out))
}

impl CertMapConfig {
    /// Parses the text of a `certmap.conf`.
    ///
    /// # Errors
    /// [`Error::Syntax`] / [`Error::Unsupported`] with the 1-based line,
    /// or [`Error::MissingDefault`].
    pub fn parse(text: &str) -> Result<Self, Error> {
        if text.len() > MAX_FILE_LEN {
            return Err(syntax(0, "file too large"));
        }
        let mut maps: Vec<CertMap> = Vec::new();
        // Per map: which properties were already set (for duplicates).
        let mut seen: Vec<Vec<String>> = Vec::new();
        for (idx, raw) in text.split('\n').enumerate() {
            let line = idx + 1;
            let l = raw.strip_suffix('\r').unwrap_or(raw).trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            if l.contains('\0') {
                return Err(syntax(line, "NUL byte"));
            }
            let (head, rest) = match l.find(|c: char| c.is_whitespace()) {
                Some(i) => (&l[..i], l[i..].trim()),
                None => (l, ""),
            };
            if head.eq_ignore_ascii_case("certmap") {
                let (name, issuer) = match rest.find(|c: char| c.is_whitespace()) {
                    Some(i) => (&rest[..i], rest[i..].trim()),
                    None => (rest, ""),
                };
                if !is_name(name) {
                    return Err(syntax(line, "expected `certmap NAME ISSUER_DN`"));
                }
                if issuer.is_empty() {
                    return Err(syntax(line, format!("map `{name}` has no issuer DN")));
                }
                if maps.iter().any(|m| m.name == name) {
                    return Err(syntax(line, format!("map `{name}` is declared twice")));
                }
                let is_default = name == "default";
                if maps.is_empty() && !(is_default && issuer == "default") {
                    return Err(syntax(
                        line,
                        "the first map must be `certmap default default`",
                    ));
                }
                let issuer = if is_default {
                    if issuer != "default" {
                        return Err(syntax(
                            line,
                            "the default map must be declared as `certmap default default`",
                        ));
                    }
                    None
                } else {
                    let dn = Dn::parse(issuer)
                        .map_err(|e| syntax(line, format!("issuer of map `{name}`: {e}")))?;
                    if dn.is_empty() {
                        return Err(syntax(line, format!("map `{name}` has an empty issuer DN")));
                    }
                    if let Some(other) = maps.iter().find(|m| m.issuer.as_ref() == Some(&dn)) {
                        return Err(syntax(
                            line,
                            format!(
                                "map `{name}` has the same issuer as map `{}` (line {})",
                                other.name, other.line
                            ),
                        ));
                    }
                    Some(dn)
                };
                maps.push(CertMap {
                    name: name.to_owned(),
                    issuer,
                    dn_comps: Comps::Absent,
                    filter_comps: Comps::Absent,
                    verify_cert: false,
                    cmap_ldap_attr: None,
                    line,
                });
                seen.push(Vec::new());
                continue;
            }
            let Some((name, prop)) = head.split_once(':') else {
                return Err(syntax(
                    line,
                    format!("expected `certmap NAME ISSUER_DN` or `NAME:PROPERTY`, found `{head}`"),
                ));
            };
            let Some(idx) = maps.iter().position(|m| m.name == name) else {
                return Err(syntax(
                    line,
                    format!("property for map `{name}`, which is not declared above"),
                ));
            };
            let key = prop.to_ascii_lowercase();
            if seen[idx].contains(&key) {
                return Err(syntax(line, format!("`{name}:{prop}` is given twice")));
            }
            seen[idx].push(key.clone());
            let map = &mut maps[idx];
            match key.as_str() {
                "dncomps" => map.dn_comps = parse_comps(rest, line)?,
                "filtercomps" => map.filter_comps = parse_comps(rest, line)?,
                "verifycert" => {
                    map.verify_cert = match rest.to_ascii_lowercase().as_str() {
                        "on" => true,
                        "off" => false,
                        _ => {
                            return Err(syntax(
                                line,
                                format!("`{name}:verifycert` takes `on` or `off`, not `{rest}`"),
                            ));
                        }
                    }
                }
                "cmapldapattr" => {
                    if rest.is_empty() || rest.contains(char::is_whitespace) {
                        return Err(syntax(
                            line,
                            format!("`{name}:CmapLdapAttr` takes one attribute name"),
                        ));
                    }
                    map.cmap_ldap_attr = Some(ldap_attr(rest, line)?);
                }
                "library" | "initfn" => {
                    return Err(Error::Unsupported {
                        line,
                        map: name.to_owned(),
                        directive: prop.to_owned(),
                    });
                }
                _ => {
                    return Err(syntax(
                        line,
                        format!("unknown property `{prop}` for map `{name}`"),
                    ));
                }
            }
        }
        if maps.is_empty() {
            return Err(Error::MissingDefault);
        }
        Ok(Self { maps })
    }

    /// The maps, `default` first.
    #[must_use]
    pub fn maps(&self) -> &[CertMap] {
        &self.maps
    }

    /// The map for a certificate issued by `issuer`: the one whose issuer DN
    /// equals it (RFC 4514-normalised comparison), else `default`.
    #[must_use]
    pub fn select(&self, issuer: &Dn) -> &CertMap {
        self.maps
            .iter()
            .skip(1)
            .find(|m| m.issuer.as_ref() == Some(issuer))
            .unwrap_or(&self.maps[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_line(text: &str) -> usize {
        match CertMapConfig::parse(text) {
            Err(Error::Syntax { line, .. } | Error::Unsupported { line, .. }) => line,
            other => panic!("expected a line error, got {other:?}"),
        }
    }

    #[test]
    fn full_file() {
        let text = "# comment\r\n\
            certmap default default\r\n\
            default:DNComps\n\
            default:FilterComps e=mail\n\
            \n\
            certmap corp   CN=Corp CA, O=Corp, C=US\n\
            corp:DNComps ou, o\n\
            corp:FilterComps uid,ou=department e\n\
            corp:verifycert ON\n\
            corp:CmapLdapAttr certSubjectDN\n";
        let c = CertMapConfig::parse(text).unwrap();
        assert_eq!(c.maps().len(), 2);
        let d = &c.maps()[0];
        assert_eq!(d.dn_comps, Comps::Empty);
        assert_eq!(
            d.filter_comps,
            Comps::List(vec![Component {
                from: AttributeType::EMAIL,
                to: "mail".into()
            }])
        );
        let corp = &c.maps()[1];
        assert_eq!(corp.line, 6);
        assert!(corp.verify_cert);
        assert_eq!(corp.cmap_ldap_attr.as_deref(), Some("certSubjectDN"));
        assert_eq!(
            corp.filter_comps,
            Comps::List(vec![
                Component {
                    from: AttributeType::UID,
                    to: "uid".into()
                },
                Component {
                    from: AttributeType::OU,
                    to: "department".into()
                },
                Component {
                    from: AttributeType::EMAIL,
                    to: "mail".into()
                },
            ])
        );
        let issuer = Dn::parse("cn=corp ca,o=CORP,c=us").unwrap();
        assert_eq!(c.select(&issuer).name, "corp");
        let other = Dn::parse("cn=other").unwrap();
        assert_eq!(c.select(&other).name, "default");
    }

    #[test]
    fn errors_carry_lines() {
        assert_eq!(err_line("certmap default default\nx:DNComps\n"), 2);
        assert_eq!(err_line("certmap corp cn=x\n"), 1);
        assert_eq!(err_line("\n\ncertmap default other\n"), 3);
        assert_eq!(
            err_line("certmap default default\ndefault:library /x.so\n"),
            2
        );
        assert_eq!(err_line("certmap default default\ndefault:InitFn f\n"), 2);
        assert_eq!(
            err_line("certmap default default\ndefault:verifycert maybe\n"),
            2
        );
        assert_eq!(err_line("certmap default default\ndefault:Bogus x\n"), 2);
        assert_eq!(
            err_line("certmap default default\ndefault:DNComps\ndefault:dncomps\n"),
            3
        );
        assert_eq!(
            err_line("certmap default default\ncertmap a cn=x\ncertmap b CN=X\n"),
            3
        );
        assert_eq!(err_line("certmap default default\ncertmap a\n"), 2);
        assert_eq!(err_line("certmap default default\ncertmap a cn=x,\n"), 2);
        assert_eq!(
            err_line("certmap default default\ndefault:FilterComps (uid)\n"),
            2
        );
        assert_eq!(
            err_line("certmap default default\ndefault:CmapLdapAttr a b\n"),
            2
        );
        assert_eq!(err_line("certmap default default\ngarbage\n"), 2);
        assert_eq!(
            err_line("certmap default default\ncertmap default default\n"),
            2
        );
        assert_eq!(
            CertMapConfig::parse("# nothing\n"),
            Err(Error::MissingDefault)
        );
        assert_eq!(CertMapConfig::parse(""), Err(Error::MissingDefault));
    }

    #[test]
    fn unsupported_names_the_line() {
        let e = CertMapConfig::parse("certmap default default\n\ndefault:library /lib/x.so\n")
            .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("line 3"), "{msg}");
        assert!(msg.contains("not supported"), "{msg}");
        assert!(msg.contains("default:library"), "{msg}");
    }
}
