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
    /// Whether `login` comes from a POP-before-SMTP authorization (the
    /// hand-off is then logged with `mmp.popbeforesmtpkludgechannel`).
    pub pop_authorized: bool,
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
            pop_authorized: false,
        }
    }

    /// Assert the user of a recent POP login ([`crate::Lookup::Authorize`]).
    pub fn authorize_by_pop(&mut self, authorization: &crate::Authorization) {
        self.login = Some(authorization.user.as_str().to_owned());
        self.pop_authorized = true;
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

/// Attributes that go in the last XCLIENT command. After `NAME` or
/// `ADDR` the session is the client's, which may not send XCLIENT (Postfix
/// authorizes XCLIENT by the address it currently sees), and Postfix resets
/// the login on every XCLIENT command without `LOGIN`
/// (`smtpd_sasl_auth_reset`), so the login must come with them.
pub const LAST_COMMAND: [&str; 3] = ["LOGIN", "NAME", "ADDR"];

/// The `(name, value)` attributes for `client`, limited to those the
/// relay lists in its `XCLIENT` EHLO line (`supported`, upper case), in
/// the order they are sent: `HELO`, `PROTO`, `PORT`, then `LOGIN`,
/// `NAME` and `ADDR` ([`LAST_COMMAND`]). A `NAME` that is not a valid host
/// name is sent as `[UNAVAILABLE]`.
#[must_use]
pub fn attributes(client: &ClientInfo, supported: &[&str]) -> Vec<(&'static str, String)> {
    let mut attrs: Vec<(&'static str, String)> = Vec::new();
    if let Some(helo) = &client.helo {
        attrs.push(("HELO", helo.clone()));
    }
    attrs.push((
        "PROTO",
        match client.proto {
            Proto::Smtp => "SMTP",
            Proto::Esmtp => "ESMTP",
        }
        .to_owned(),
    ));
    attrs.push(("PORT", client.addr.port().to_string()));
    if let Some(login) = &client.login {
        attrs.push(("LOGIN", login.clone()));
    }
    let name = match &client.name {
        Some(ClientName::Name(n)) if !super::validate::valid_host_name(n) => {
            tracing::debug!(name = %n.escape_debug(), "client name is not a host name; sent as [UNAVAILABLE]");
            &ClientName::Unavailable
        }
        Some(n) => n,
        None => &ClientName::Unavailable,
    };
    attrs.push(("NAME", name.as_attribute().to_owned()));
    attrs.push(("ADDR", addr_attribute(client.addr.ip())));
    attrs.retain(|(n, _)| supported.iter().any(|s| s.eq_ignore_ascii_case(n)));
    attrs
}

/// The XCLIENT command lines (without CRLF) carrying `attrs`, each within
/// [`MAX_COMMAND_LINE`] bytes with its CRLF. Attributes are packed in the
/// order given, except that the [`LAST_COMMAND`] ones (`LOGIN`, `NAME`,
/// `ADDR`) all go together in the last line. Should a long login and a
/// long host name not fit that line together, `NAME` is sent as
/// `[UNAVAILABLE]` (the relay then treats the client as unnamed, never as
/// someone else).
///
/// # Errors
/// The name of an attribute whose encoded value cannot fit any line
/// (values checked by [`super::validate`] always fit).
pub fn command_lines(attrs: &[(&str, String)]) -> Result<Vec<String>, &'static str> {
    const VERB: &str = "XCLIENT";
    let fits = |len: usize| len + 2 <= MAX_COMMAND_LINE;
    let encode = |name: &str, value: &str| format!(" {name}={}", xtext_encode(value.as_bytes()));
    let mut early = Vec::new();
    let mut late: Vec<(&str, String)> = Vec::new();
    for (name, value) in attrs {
        let attr = encode(name, value);
        if !fits(VERB.len() + attr.len()) {
            return Err(attr_name(name));
        }
        if LAST_COMMAND.iter().any(|a| a.eq_ignore_ascii_case(name)) {
            late.push((name, attr));
        } else {
            early.push(attr);
        }
    }
    let late_len = |late: &[(&str, String)]| late.iter().map(|(_, a)| a.len()).sum::<usize>();
    if !fits(VERB.len() + late_len(&late)) {
        if let Some((name, attr)) = late
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case("NAME"))
        {
            tracing::info!("client name too long to send with the login; NAME=[UNAVAILABLE]");
            *attr = encode(name, ClientName::Unavailable.as_attribute());
        }
        if !fits(VERB.len() + late_len(&late)) {
            return Err("LOGIN");
        }
    }
    let last: String = late.into_iter().map(|(_, a)| a).collect();
    let mut lines = Vec::new();
    let mut line = String::from(VERB);
    for attr in early.iter().chain(std::iter::once(&last)) {
        if attr.is_empty() {
            continue;
        }
        if !fits(line.len() + attr.len()) {
            lines.push(std::mem::replace(&mut line, String::from(VERB)));
        }
        line.push_str(attr);
    }
    if line.len() > VERB.len() {
        lines.push(line);
    }
    Ok(lines)
}

/// The static name of a known attribute (for errors).
fn attr_name(name: &str) -> &'static str {
    ["NAME", "ADDR", "PORT", "PROTO", "HELO", "LOGIN"]
        .into_iter()
        .find(|n| n.eq_ignore_ascii_case(name))
        .unwrap_or("XCLIENT")
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
        let lines = command_lines(&attributes(&c, &all)).expect("fits");
        assert_eq!(
            lines,
            vec![
                "XCLIENT HELO=pc.example PROTO=ESMTP PORT=40000 LOGIN=alice+20smith NAME=[TEMPUNAVAIL] ADDR=IPV6:2001:db8::5"
            ]
        );
        let lines = command_lines(&attributes(&c, &["ADDR"])).expect("fits");
        assert_eq!(lines, vec!["XCLIENT ADDR=IPV6:2001:db8::5"]);
        // A name that is not a host name is not passed on.
        c.name = Some(ClientName::Name("evil name\r\nRSET".into()));
        let lines = command_lines(&attributes(&c, &["NAME"])).expect("fits");
        assert_eq!(lines, vec!["XCLIENT NAME=[UNAVAILABLE]"]);
    }

    #[test]
    fn long_attributes_split_lines_with_login_name_and_addr_last() {
        let attrs = vec![
            ("HELO", "h".repeat(250)),
            ("PROTO", "ESMTP".to_owned()),
            ("PORT", "1".to_owned()),
            ("LOGIN", "é".repeat(30)),
            ("NAME", format!("{}.example", "n".repeat(60))),
            ("ADDR", "192.0.2.1".to_owned()),
        ];
        let lines = command_lines(&attrs).expect("fits");
        assert!(lines.len() >= 2, "{lines:?}");
        assert!(lines.iter().all(|l| l.len() + 2 <= MAX_COMMAND_LINE));
        let last = lines.last().expect("a line");
        for a in LAST_COMMAND {
            assert!(last.contains(&format!(" {a}=")), "{a}: {last}");
        }
        for l in &lines[..lines.len() - 1] {
            assert!(
                LAST_COMMAND.iter().all(|a| !l.contains(&format!(" {a}="))),
                "{l}"
            );
        }
        // Every attribute is sent exactly once.
        for (name, _) in &attrs {
            let n = lines
                .iter()
                .map(|l| l.matches(&format!(" {name}=")).count())
                .sum::<usize>();
            assert_eq!(n, 1, "{name}: {lines:?}");
        }
        // A longest login and a longest name do not fit one line: the
        // name gives way, the login never does.
        let long_name = format!("{}.example", vec!["n".repeat(60); 4].join("."));
        let lines = command_lines(&[
            ("LOGIN", "l".repeat(255)),
            ("NAME", long_name),
            ("ADDR", "192.0.2.1".to_owned()),
        ])
        .expect("fits");
        assert_eq!(lines.len(), 1);
        assert!(lines[0].contains(&format!(" LOGIN={} ", "l".repeat(255))));
        assert!(lines[0].contains(" NAME=[UNAVAILABLE] ADDR=192.0.2.1"));
        // A value too long for any line is an error, never dropped.
        assert_eq!(command_lines(&[("LOGIN", "l".repeat(600))]), Err("LOGIN"));
    }
}
