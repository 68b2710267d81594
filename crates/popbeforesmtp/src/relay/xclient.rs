//! XCLIENT (Postfix's `XCLIENT_README`, also spoken by nginx mail and
//! Haraka): the proxy tells the relay who the real client is.
//!
//! ```text
//! xclient-command = XCLIENT 1*( SP attribute-name "=" attribute-value )
//! attribute-name  = ( NAME | ADDR | PORT | PROTO | HELO | LOGIN | ... )
//! attribute-value = xtext
//! ```
//!
//! Values are xtext (RFC 3461 §4): printable ASCII other than `+` and `=`
//! as is, everything else as `+HH`. IPv6 addresses in `ADDR` carry an
//! `IPV6:` prefix. The relay answers each accepted command with a new
//! `220` greeting, after which the client (here: the proxy) sends EHLO again.

use std::fmt::Write as _;
use std::net::IpAddr;

/// Longest command line sent (RFC 5321 §4.5.3.1.4), CRLF included.
pub const MAX_COMMAND_LINE: usize = 512;

/// Encode `value` as xtext.
#[must_use]
pub fn xtext_encode(value: &[u8]) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "+{b:02X}");
        }
    }
    out
}

/// Decode xtext; `None` if it is not valid xtext.
#[must_use]
pub fn xtext_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'+' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hi = hex_val(hex[0])?;
            let lo = hex_val(hex[1])?;
            out.push(hi << 4 | lo);
            i += 3;
        } else if (b'!'..=b'~').contains(&b) && b != b'=' {
            out.push(b);
            i += 1;
        } else {
            return None;
        }
    }
    Some(out)
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The client's host name as passed in `NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientName {
    /// The reverse lookup found this name.
    Name(String),
    /// The address has no name (`[UNAVAILABLE]`).
    Unavailable,
    /// The lookup failed for now (`[TEMPUNAVAIL]`).
    TempUnavail,
}

impl ClientName {
    /// The attribute value before xtext encoding.
    #[must_use]
    pub fn as_attribute(&self) -> &str {
        match self {
            Self::Name(n) => n,
            Self::Unavailable => "[UNAVAILABLE]",
            Self::TempUnavail => "[TEMPUNAVAIL]",
        }
    }
}

/// `PROTO`: whether the client greeted with HELO or EHLO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// HELO.
    Smtp,
    /// EHLO.
    Esmtp,
}

/// What the proxy knows about the real client.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientInfo {
    /// The client's address and port.
    pub addr: std::net::SocketAddr,
    /// The proxy's address the client connected to (for PROXY headers).
    pub local: std::net::SocketAddr,
    /// The reverse lookup result (`ClientLookup yes`). `None` (no lookup)
    /// sends `NAME=[UNAVAILABLE]`: without it the relay would keep the
    /// proxy's own host name for the new address.
    pub name: Option<ClientName>,
    /// The HELO/EHLO argument the client gave, if it has greeted yet.
    pub helo: Option<String>,
    /// HELO or EHLO.
    pub proto: Proto,
    /// The login to assert: the POP-before-SMTP user (or an SMTP AUTH identity).
    pub login: Option<String>,
}

impl ClientInfo {
    /// A client at `addr` that connected to `local`, nothing else known yet.
    #[must_use]
    pub fn new(addr: std::net::SocketAddr, local: std::net::SocketAddr) -> Self {
        Self {
            addr,
            local,
            name: None,
            helo: None,
            proto: Proto::Esmtp,
            login: None,
        }
    }
}

/// `ADDR` value: IPv4 as is, IPv6 with `IPV6:` (IPv4-mapped IPv6 as IPv4).
#[must_use]
pub fn addr_attribute(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => format!("IPV6:{v6}"),
        },
    }
}

/// The `(name, value)` attributes for `client`, limited to those the
/// relay lists in its `XCLIENT` EHLO line (`supported`, upper case).
#[must_use]
pub fn attributes(client: &ClientInfo, supported: &[&str]) -> Vec<(&'static str, String)> {
    let mut attrs: Vec<(&'static str, String)> = Vec::new();
    let name = client.name.as_ref().unwrap_or(&ClientName::Unavailable);
    attrs.push(("NAME", name.as_attribute().to_owned()));
    attrs.push(("ADDR", addr_attribute(client.addr.ip())));
    attrs.push(("PORT", client.addr.port().to_string()));
    attrs.push((
        "PROTO",
        match client.proto {
            Proto::Smtp => "SMTP",
            Proto::Esmtp => "ESMTP",
        }
        .to_owned(),
    ));
    if let Some(helo) = &client.helo {
        attrs.push(("HELO", helo.clone()));
    }
    if let Some(login) = &client.login {
        attrs.push(("LOGIN", login.clone()));
    }
    attrs.retain(|(n, _)| supported.iter().any(|s| s.eq_ignore_ascii_case(n)));
    attrs
}

/// The XCLIENT command lines (without CRLF) carrying `attrs`, split so that
/// no line exceeds [`MAX_COMMAND_LINE`]. Attributes too long for any line
/// are replaced by `[UNAVAILABLE]`.
#[must_use]
pub fn command_lines(attrs: &[(&str, String)]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::from("XCLIENT");
    for (name, value) in attrs {
        let mut attr = format!(" {name}={}", xtext_encode(value.as_bytes()));
        if "XCLIENT".len() + attr.len() + 2 > MAX_COMMAND_LINE {
            attr = format!(" {name}=[UNAVAILABLE]");
        }
        if line.len() + attr.len() + 2 > MAX_COMMAND_LINE {
            lines.push(std::mem::replace(&mut line, String::from("XCLIENT")));
        }
        line.push_str(&attr);
    }
    if line.len() > "XCLIENT".len() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xtext_vectors() {
        // RFC 3461 §4: "+" and "=" and anything outside "!".."~" are hex-encoded.
        assert_eq!(xtext_encode(b"alice@example.com"), "alice@example.com");
        assert_eq!(xtext_encode(b"a+b=c d"), "a+2Bb+3Dc+20d");
        assert_eq!(xtext_encode("é".as_bytes()), "+C3+A9");
        assert_eq!(
            xtext_decode("a+2Bb+3Dc+20d").as_deref(),
            Some(&b"a+b=c d"[..])
        );
        assert_eq!(xtext_decode("+2b"), None);
        assert_eq!(xtext_decode("a=b"), None);
        assert_eq!(xtext_decode("+2"), None);
        assert_eq!(xtext_decode("a b"), None);
    }

    #[test]
    fn attributes_follow_relay_support() {
        let mut c = ClientInfo::new(
            "[2001:db8::5]:40000".parse().expect("addr"),
            "127.0.0.1:25".parse().expect("addr"),
        );
        c.name = Some(ClientName::TempUnavail);
        c.helo = Some("pc.example".into());
        c.login = Some("alice smith".into());
        let all = ["NAME", "ADDR", "PORT", "PROTO", "HELO", "LOGIN"];
        let lines = command_lines(&attributes(&c, &all));
        assert_eq!(
            lines,
            vec![
                "XCLIENT NAME=[TEMPUNAVAIL] ADDR=IPV6:2001:db8::5 PORT=40000 PROTO=ESMTP HELO=pc.example LOGIN=alice+20smith"
            ]
        );
        let lines = command_lines(&attributes(&c, &["ADDR"]));
        assert_eq!(lines, vec!["XCLIENT ADDR=IPV6:2001:db8::5"]);
    }

    #[test]
    fn long_attributes_split_lines() {
        let attrs = vec![
            ("HELO", "h".repeat(300)),
            ("LOGIN", "l".repeat(300)),
            ("NAME", "n".repeat(600)),
        ];
        let lines = command_lines(&attrs);
        assert_eq!(lines.len(), 2);
        assert!(lines.iter().all(|l| l.len() + 2 <= MAX_COMMAND_LINE));
        assert!(lines[1].ends_with("NAME=[UNAVAILABLE]"));
    }
}
