//! Refusing hand-off commands from clients.
//!
//! XCLIENT, XFORWARD and PROXY headers let the sender claim to be someone
//! else. The proxy speaks them to its relays; it must never accept them
//! from the clients it serves. The front end passes each client line (and
//! the first bytes of each connection) through [`client_handoff`].

use crate::relay::proxy::V2_SIGNATURE;

/// Where the NUL byte sits in the PROXY v2 signature.
const V2_NUL_AT: usize = 4;

/// A hand-off attempt seen from a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientHandoff {
    /// An `XCLIENT` command.
    Xclient,
    /// An `XFORWARD` command.
    Xforward,
    /// A PROXY protocol v1 header (`PROXY TCP4 ...`).
    ProxyV1,
    /// A PROXY protocol v2 header (binary signature), or a prefix of one
    /// that reaches its NUL byte (a blank line pair alone is not one).
    ProxyV2,
}

impl ClientHandoff {
    /// What to answer. Commands are refused and the session goes on;
    /// a PROXY header means the peer is not speaking SMTP to us: answer
    /// and close.
    #[must_use]
    pub fn reply(self) -> &'static str {
        match self {
            Self::Xclient | Self::Xforward => "550 5.7.0 Command not permitted from clients\r\n",
            Self::ProxyV1 | Self::ProxyV2 => {
                "554 5.7.0 PROXY protocol not accepted from clients\r\n"
            }
        }
    }

    /// Whether the connection must be closed after [`ClientHandoff::reply`].
    #[must_use]
    pub fn closes(self) -> bool {
        matches!(self, Self::ProxyV1 | Self::ProxyV2)
    }
}

/// Whether `line` (a client command line or a connection's first bytes)
/// is a hand-off attempt. Leading spaces and case do not hide a verb.
///
/// ```
/// use portcullis_popbeforesmtp::guard::{client_handoff, ClientHandoff};
/// assert_eq!(client_handoff(b"xclient ADDR=10.0.0.1\r\n"), Some(ClientHandoff::Xclient));
/// assert_eq!(client_handoff(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), Some(ClientHandoff::ProxyV1));
/// assert_eq!(client_handoff(b"MAIL FROM:<a@example.com>\r\n"), None);
/// ```
#[must_use]
pub fn client_handoff(line: &[u8]) -> Option<ClientHandoff> {
    // The signature starts with two blank lines, which a client may send
    // as harmless empty commands; its fifth byte, NUL, is never SMTP.
    if line.len() > V2_NUL_AT
        && V2_SIGNATURE.starts_with(&line[..line.len().min(V2_SIGNATURE.len())])
    {
        return Some(ClientHandoff::ProxyV2);
    }
    let start = line
        .iter()
        .position(|b| *b != b' ' && *b != b'\t')
        .unwrap_or(line.len());
    let line = &line[start..];
    let end = line
        .iter()
        .position(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .unwrap_or(line.len());
    let verb = &line[..end];
    if verb.eq_ignore_ascii_case(b"XCLIENT") {
        Some(ClientHandoff::Xclient)
    } else if verb.eq_ignore_ascii_case(b"XFORWARD") {
        Some(ClientHandoff::Xforward)
    } else if verb == b"PROXY" {
        Some(ClientHandoff::ProxyV1)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases: &[(&[u8], Option<ClientHandoff>)] = &[
            (b"XCLIENT LOGIN=root\r\n", Some(ClientHandoff::Xclient)),
            (b"  XClient\r\n", Some(ClientHandoff::Xclient)),
            (b"XCLIENT", Some(ClientHandoff::Xclient)),
            (b"XFORWARD ADDR=1.2.3.4\r\n", Some(ClientHandoff::Xforward)),
            (b"PROXY TCP6 ::1 ::1 1 2\r\n", Some(ClientHandoff::ProxyV1)),
            (
                b"\r\n\r\n\0\r\nQUIT\n\x21\x11\0\x0c",
                Some(ClientHandoff::ProxyV2),
            ),
            (b"\r\n\r\n\0", Some(ClientHandoff::ProxyV2)),
            (b"\r\n\r\n\0\r\nQUIT\n", Some(ClientHandoff::ProxyV2)),
            // A blank line pair is two empty commands, not a PROXY header.
            (b"\r\n\r\n", None),
            (b"\r\n\r\nEHLO x\r\n", None),
            (b"\r\n", None),
            (b"XCLIENTS\r\n", None),
            (b"EHLO proxy.example\r\n", None),
            (b"HELO PROXY\r\n", None),
            (b"", None),
        ];
        for (line, want) in cases {
            assert_eq!(
                client_handoff(line),
                *want,
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
        assert!(ClientHandoff::ProxyV1.closes());
        assert!(!ClientHandoff::Xclient.closes());
        assert!(ClientHandoff::Xclient.reply().starts_with("550 5.7.0"));
    }
}
