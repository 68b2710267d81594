//! SMTP replies from relays: a sans-I/O, bounded, incremental parser.
//!
//! RFC 5321 §4.2:
//!
//! ```text
//! Reply-line     = *( Reply-code "-" [ textstring ] CRLF )
//!                  Reply-code [ SP textstring ] CRLF
//! Reply-code     = %x32-35 %x30-35 %x30-39
//! ```
//!
//! Feed bytes as they arrive with [`ReplyParser::feed`], then take complete
//! replies with [`ReplyParser::next_reply`]. A bare LF is accepted as a line
//! end (the CR is dropped); lines longer than [`MAX_LINE`] bytes and replies
//! of more than [`MAX_LINES`] lines are refused, so a hostile or broken relay
//! cannot make the proxy buffer without bound.

use std::fmt;

/// Longest reply line accepted, terminator included.
pub const MAX_LINE: usize = 2048;
/// Most lines in one reply.
pub const MAX_LINES: usize = 256;

/// Why bytes from a relay are not a valid reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// A line longer than [`MAX_LINE`].
    #[error("reply line longer than {MAX_LINE} bytes")]
    LineTooLong,
    /// A reply with more than [`MAX_LINES`] lines.
    #[error("reply with more than {MAX_LINES} lines")]
    TooManyLines,
    /// A line that does not start with a three-digit reply code.
    #[error("reply line {line} has no valid reply code")]
    BadCode {
        /// 1-based line number within the reply.
        line: usize,
    },
    /// A character other than `-` or SP after the code.
    #[error("reply line {line} has a bad separator after the code")]
    BadSeparator {
        /// 1-based line number within the reply.
        line: usize,
    },
    /// A CR inside a line (RFC 5321 text excludes CR and LF).
    #[error("reply line {line} contains a bare CR")]
    BareCr {
        /// 1-based line number within the reply.
        line: usize,
    },
    /// A continuation line with a different code than the first line.
    #[error("reply line {line} changes the reply code")]
    MixedCodes {
        /// 1-based line number within the reply.
        line: usize,
    },
}

/// One complete SMTP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub(super) code: u16,
    pub(super) lines: Vec<String>,
}

impl Reply {
    /// A reply with `code` (200..=599) and the text of each line (no CR/LF).
    ///
    /// # Errors
    /// [`ReplyError::BadCode`] for a code outside RFC 5321's range;
    /// [`ReplyError::BadSeparator`] for text containing CR or LF.
    pub fn new(code: u16, lines: Vec<String>) -> Result<Self, ReplyError> {
        if !valid_code(code) {
            return Err(ReplyError::BadCode { line: 1 });
        }
        if let Some(i) = lines.iter().position(|l| l.contains(['\r', '\n'])) {
            return Err(ReplyError::BadSeparator { line: i + 1 });
        }
        let lines = if lines.is_empty() {
            vec![String::new()]
        } else {
            lines
        };
        Ok(Self { code, lines })
    }

    /// A one-line reply with empty text; `code` comes from a parsed reply.
    pub(crate) fn bare(code: u16) -> Self {
        Self {
            code,
            lines: vec![String::new()],
        }
    }

    /// The three-digit code.
    #[must_use]
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The text of each line (never empty).
    #[must_use]
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// The first line's text.
    #[must_use]
    pub fn text(&self) -> &str {
        self.lines.first().map_or("", String::as_str)
    }

    /// 2yz: positive completion.
    #[must_use]
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// 4yz: transient negative.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// The wire form: `NNN-text` lines, the last `NNN text`, each ending CRLF.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let last = self.lines.len().saturating_sub(1);
        for (i, line) in self.lines.iter().enumerate() {
            out.extend_from_slice(format!("{:03}", self.code).as_bytes());
            out.push(if i == last { b' ' } else { b'-' });
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.text())
    }
}

fn valid_code(code: u16) -> bool {
    (200..=599).contains(&code) && (code / 10) % 10 <= 5
}

/// Incremental reply parser.
#[derive(Debug, Default)]
pub struct ReplyParser {
    buf: Vec<u8>,
    pos: usize,
    code: Option<u16>,
    lines: Vec<String>,
    failed: Option<ReplyError>,
}

impl ReplyParser {
    /// An empty parser.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Append bytes received from the relay.
    pub fn feed(&mut self, data: &[u8]) {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Bytes fed but not yet consumed by a complete reply.
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Take the bytes fed but not consumed (e.g. before handing the stream on).
    pub fn take_buffered(&mut self) -> Vec<u8> {
        let rest = self.buf[self.pos..].to_vec();
        self.buf.clear();
        self.pos = 0;
        rest
    }

    /// The next complete reply, `Ok(None)` if more bytes are needed.
    ///
    /// # Errors
    /// A [`ReplyError`] when the bytes are not a reply; the parser then
    /// keeps returning that error (close the connection).
    pub fn next_reply(&mut self) -> Result<Option<Reply>, ReplyError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let r = self.parse();
        if let Err(e) = &r {
            self.failed = Some(e.clone());
        }
        r
    }

    fn parse(&mut self) -> Result<Option<Reply>, ReplyError> {
        loop {
            let rest = &self.buf[self.pos..];
            let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
                if rest.len() >= MAX_LINE {
                    return Err(ReplyError::LineTooLong);
                }
                // Drop consumed bytes so the buffer stays bounded.
                if self.pos > 0 {
                    self.buf.drain(..self.pos);
                    self.pos = 0;
                }
                return Ok(None);
            };
            if nl + 1 > MAX_LINE {
                return Err(ReplyError::LineTooLong);
            }
            let mut line = &rest[..nl];
            if let [head @ .., b'\r'] = line {
                line = head;
            }
            let number = self.lines.len() + 1;
            if number > MAX_LINES {
                return Err(ReplyError::TooManyLines);
            }
            if line.contains(&b'\r') {
                return Err(ReplyError::BareCr { line: number });
            }
            let (code, last, text) = split_line(line, number)?;
            if let Some(first) = self.code
                && first != code
            {
                return Err(ReplyError::MixedCodes { line: number });
            }
            let text = String::from_utf8_lossy(text).into_owned();
            // The line as it is kept and sent on (`NNN-text` CRLF, invalid
            // UTF-8 replaced) must fit the bound too, so every reply this
            // parser yields encodes to lines it would parse again.
            if text.len() + 6 > MAX_LINE {
                return Err(ReplyError::LineTooLong);
            }
            self.code = Some(code);
            self.lines.push(text);
            self.pos += nl + 1;
            if last {
                let lines = std::mem::take(&mut self.lines);
                self.code = None;
                return Ok(Some(Reply { code, lines }));
            }
        }
    }
}

/// `(code, is_last_line, text)` of one line without its terminator.
fn split_line(line: &[u8], number: usize) -> Result<(u16, bool, &[u8]), ReplyError> {
    let bad_code = ReplyError::BadCode { line: number };
    let [a, b, c, rest @ ..] = line else {
        return Err(bad_code);
    };
    if !(a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit()) {
        return Err(bad_code);
    }
    let code = u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
    if !valid_code(code) {
        return Err(bad_code);
    }
    match rest {
        [] => Ok((code, true, &[])),
        [b' ', text @ ..] => Ok((code, true, text)),
        [b'-', text @ ..] => Ok((code, false, text)),
        _ => Err(ReplyError::BadSeparator { line: number }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(chunks: &[&[u8]]) -> Result<Vec<Reply>, ReplyError> {
        let mut p = ReplyParser::new();
        let mut out = Vec::new();
        for c in chunks {
            p.feed(c);
            while let Some(r) = p.next_reply()? {
                out.push(r);
            }
        }
        Ok(out)
    }

    #[test]
    fn table() {
        type Case = (&'static [u8], Result<(u16, usize), ReplyError>);
        let cases: &[Case] = &[
            (b"220 mx.example ESMTP\r\n", Ok((220, 1))),
            (
                b"250-mx\r\n250-PIPELINING\r\n250 8BITMIME\r\n",
                Ok((250, 3)),
            ),
            (b"250\r\n", Ok((250, 1))),
            (b"250 ok\n", Ok((250, 1))),
            (b"25 ok\r\n", Err(ReplyError::BadCode { line: 1 })),
            (b"abc ok\r\n", Err(ReplyError::BadCode { line: 1 })),
            (b"199 no\r\n", Err(ReplyError::BadCode { line: 1 })),
            (b"260 no\r\n", Err(ReplyError::BadCode { line: 1 })),
            (b"250+x\r\n", Err(ReplyError::BadSeparator { line: 1 })),
            (b"250 a\rb\r\n", Err(ReplyError::BareCr { line: 1 })),
            (
                b"250-mx\r\n250-FOO\rXCLIENT\r\n250 ok\r\n",
                Err(ReplyError::BareCr { line: 2 }),
            ),
            (
                b"250-a\r\n251 b\r\n",
                Err(ReplyError::MixedCodes { line: 2 }),
            ),
        ];
        for (input, want) in cases {
            let got = parse_all(&[input]).map(|v| {
                let r = &v[0];
                (r.code(), r.lines().len())
            });
            assert_eq!(&got, want, "input {:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn split_at_every_boundary() {
        let wire: &[u8] =
            b"250-relay.example Hello\r\n250-SIZE 1000\r\n250 XCLIENT NAME ADDR\r\n221 bye\r\n";
        for cut in 0..wire.len() {
            let got = parse_all(&[&wire[..cut], &wire[cut..]]).expect("valid");
            assert_eq!(got.len(), 2, "cut {cut}");
            assert_eq!(got[0].lines()[2], "XCLIENT NAME ADDR");
            assert_eq!(got[1].code(), 221);
        }
    }

    #[test]
    fn bounded() {
        let long = vec![b'2'; MAX_LINE + 1];
        assert_eq!(parse_all(&[&long]), Err(ReplyError::LineTooLong));
        // A bare-LF line that fits, but not once it ends in CRLF.
        let mut bare = b"250 ".to_vec();
        bare.resize(MAX_LINE - 1, b'x');
        bare.push(b'\n');
        assert_eq!(parse_all(&[&bare]), Err(ReplyError::LineTooLong));
        // Invalid UTF-8 that grows when replaced past the bound.
        let mut invalid = b"250 ".to_vec();
        invalid.resize(MAX_LINE / 2, 0xff);
        invalid.extend_from_slice(b"\r\n");
        assert_eq!(parse_all(&[&invalid]), Err(ReplyError::LineTooLong));
        // The longest line that still encodes within the bound parses.
        let mut longest = b"250 ".to_vec();
        longest.resize(MAX_LINE - 2, b'x');
        longest.extend_from_slice(b"\r\n");
        let replies = parse_all(&[&longest]).unwrap();
        assert_eq!(replies[0].encode(), longest);
        let mut many = Vec::new();
        for _ in 0..=MAX_LINES {
            many.extend_from_slice(b"250-x\r\n");
        }
        assert_eq!(parse_all(&[&many]), Err(ReplyError::TooManyLines));
    }

    #[test]
    fn encode_round_trip() {
        let r = Reply::new(250, vec!["mx".into(), "SIZE 10".into()]).expect("valid");
        assert_eq!(r.encode(), b"250-mx\r\n250 SIZE 10\r\n");
        assert_eq!(parse_all(&[&r.encode()]).expect("valid"), vec![r]);
    }
}
