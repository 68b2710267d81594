//! The message scanner: DATA (RFC 5321 §4.1.1.4, §4.5.2) and BDAT chunks
//! (RFC 3030), refusing the SMTP smuggling class by default.
//!
//! ```text
//! DATA content ends only at   CR LF "." CR LF   (the CR LF before the dot
//! being the end of the previous line, or the DATA command's own CR LF)
//! ```
//!
//! A bare LF or a bare CR anywhere in a message is refused with
//! `550 5.5.2` ([`BareNewline::Reject`], the default, as Postfix's
//! `smtpd_forbid_bare_newline = reject`), or turned into CR LF
//! ([`BareNewline::Normalize`]); with either policy the end of the data is
//! the strict `CRLF.CRLF` and nothing else, so `\n.\n`, `\n.\r\n`,
//! `\r.\r`, `\r\n.\n` or `\r\n.\r\r\n` never end a message here
//! (CVE-2023-51764, -51765, -51766).
//!
//! The scanner streams: it keeps no more than a few state bits between
//! calls and hands on the content (dot-unstuffed, every line ending CR LF)
//! as it arrives. After a violation it hands on nothing more and only looks
//! for the end of the data, so the client and the server stay in step.
//! [`DotStuffer`] encodes content for a relay's DATA.

use std::str::FromStr;

use crate::reply::{Reply, Standard, standard};

/// The longest text line, CR LF included (RFC 5321 §4.5.3.1.6).
pub const MAX_TEXT_LINE: usize = 1000;

/// What to do with a bare LF or bare CR in a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum BareNewline {
    /// Refuse the message with `550 5.5.2` (the default).
    #[default]
    Reject,
    /// Treat a bare LF or bare CR as a line end and send CR LF on. The end
    /// of the data is still only `CRLF.CRLF`.
    Normalize,
}

impl BareNewline {
    /// The configuration word: `reject` or `normalize`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reject => "reject",
            Self::Normalize => "normalize",
        }
    }
}

impl FromStr for BareNewline {
    type Err = crate::Error;

    /// `reject` or `normalize`, ignoring ASCII case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("reject") {
            Ok(Self::Reject)
        } else if s.eq_ignore_ascii_case("normalize") {
            Ok(Self::Normalize)
        } else {
            Err(crate::Error::InvalidValue(
                "bare newline policy must be reject or normalize",
            ))
        }
    }
}

/// Why a message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Violation {
    /// An LF not preceded by CR.
    BareLf,
    /// A CR not followed by LF.
    BareCr,
    /// A line longer than the text line limit.
    LineTooLong,
    /// More content than the message size limit.
    TooBig,
}

impl Violation {
    /// The reply code and text.
    #[must_use]
    pub fn standard(self) -> Standard {
        match self {
            Self::BareLf => (550, "5.5.2 Error: bare <LF> received"),
            Self::BareCr => (550, "5.5.2 Error: bare <CR> received"),
            Self::LineTooLong => (550, "5.6.0 Message line longer than 1000 octets"),
            Self::TooBig => (552, "5.3.4 Message size exceeds fixed maximum message size"),
        }
    }

    /// The reply the client gets once the data has ended.
    #[must_use]
    pub fn reply(self) -> Reply {
        standard(self.standard())
    }
}

/// How the message is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Framing {
    /// DATA: dot-stuffed, ends at `CRLF.CRLF`.
    Dot,
    /// BDAT: the chunk lengths frame the message; no dot-stuffing.
    Chunked,
}

/// Limits of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The largest message in octets (as handed on); 0 means no limit.
    pub max_size: u64,
    /// The longest line, CR LF included.
    pub max_line: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_size: 0,
            max_line: MAX_TEXT_LINE,
        }
    }
}

/// The streaming scanner for one message.
#[derive(Debug, Clone)]
pub struct DataScanner {
    framing: Framing,
    policy: BareNewline,
    limits: Limits,
    /// Nothing of the current line seen yet.
    line_start: bool,
    /// The current line is so far exactly one dot (DATA only).
    held_dot: bool,
    /// A CR was the last octet seen; its meaning depends on the next one.
    pending_cr: bool,
    /// The previous line ended in a strict CR LF.
    prev_crlf: bool,
    line_len: usize,
    size: u64,
    violation: Option<Violation>,
    ended: bool,
}

impl DataScanner {
    /// A scanner at the start of a message.
    #[must_use]
    pub fn new(framing: Framing, policy: BareNewline, limits: Limits) -> Self {
        Self {
            framing,
            policy,
            limits,
            line_start: true,
            held_dot: false,
            pending_cr: false,
            prev_crlf: true,
            line_len: 0,
            size: 0,
            violation: None,
            ended: false,
        }
    }

    /// The first violation, if any (the message is then refused).
    #[must_use]
    pub fn violation(&self) -> Option<Violation> {
        self.violation
    }

    /// Octets of content handed on so far.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether the end of the data (`CRLF.CRLF`) was seen.
    #[must_use]
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    fn violate(&mut self, v: Violation) {
        if self.violation.is_none() {
            #[cfg(feature = "tracing")]
            tracing::info!(violation = ?v, "message refused");
            self.violation = Some(v);
        }
    }

    fn emit(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        if self.violation.is_some() {
            return;
        }
        let n = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        self.size = self.size.saturating_add(n);
        if self.limits.max_size > 0 && self.size > self.limits.max_size {
            self.violate(Violation::TooBig);
            return;
        }
        out.extend_from_slice(bytes);
    }

    fn count(&mut self, n: usize) {
        self.line_len = self.line_len.saturating_add(n);
        if self.line_len > self.limits.max_line.saturating_sub(2) {
            self.violate(Violation::LineTooLong);
        }
    }

    /// Ends the current line; `true` when it was the end of the data.
    fn end_line(&mut self, strict: bool, out: &mut Vec<u8>) -> bool {
        if self.held_dot {
            if strict && self.prev_crlf {
                self.ended = true;
                return true;
            }
            // A lone dot that is not the end (normalize policy, or after a
            // violation): content, which DotStuffer sends on as "..".
            self.emit(b".", out);
        }
        self.emit(b"\r\n", out);
        self.prev_crlf = strict;
        self.line_start = true;
        self.held_dot = false;
        self.line_len = 0;
        false
    }

    fn bare(&mut self, v: Violation, out: &mut Vec<u8>) -> bool {
        if self.policy == BareNewline::Reject {
            self.violate(v);
        }
        // Either way the line ends here, but not strictly: it can never
        // make the next line the end of the data.
        self.end_line(false, out)
    }

    /// Scans `input`, appending content to `out`. Returns the octets
    /// consumed: all of `input`, or (DATA) up to and including the end of
    /// the data, after which the rest is the client's next command.
    pub fn scan(&mut self, input: &[u8], out: &mut Vec<u8>) -> usize {
        let dot = self.framing == Framing::Dot;
        let mut i = 0;
        while i < input.len() {
            if self.ended {
                return i;
            }
            let b = input[i];
            if self.pending_cr {
                self.pending_cr = false;
                if b == b'\n' {
                    i += 1;
                    if self.end_line(true, out) {
                        return i;
                    }
                    continue;
                }
                // A bare CR; `b` is then read as the next line's first octet.
                if self.bare(Violation::BareCr, out) {
                    return i;
                }
            }
            match b {
                b'\r' => {
                    self.pending_cr = true;
                    i += 1;
                }
                b'\n' => {
                    i += 1;
                    // `bare` never ends the data (the line end is not strict).
                    self.bare(Violation::BareLf, out);
                }
                b'.' if dot && self.line_start => {
                    self.line_start = false;
                    self.held_dot = true;
                    self.count(1);
                    i += 1;
                }
                _ => {
                    // The unstuffed dot (if any) is dropped; then the run of
                    // octets up to the next CR or LF is handed on at once.
                    self.held_dot = false;
                    self.line_start = false;
                    let run = input[i..]
                        .iter()
                        .position(|&c| c == b'\r' || c == b'\n')
                        .unwrap_or(input.len() - i);
                    self.count(run);
                    self.emit(&input[i..i + run], out);
                    i += run;
                }
            }
        }
        i
    }

    /// After the last BDAT chunk: a trailing CR is a bare CR, and an
    /// unterminated last line gets its CR LF.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.pending_cr {
            self.pending_cr = false;
            self.bare(Violation::BareCr, out);
        }
        if !self.line_start || self.held_dot {
            self.end_line(true, out);
        }
        self.ended = true;
    }
}

/// Encodes content (every line ending CR LF, as [`DataScanner`] hands it
/// on) for a relay's DATA: dot-stuffing, then `.` CR LF at the end.
#[derive(Debug, Clone)]
pub struct DotStuffer {
    line_start: bool,
}

impl Default for DotStuffer {
    fn default() -> Self {
        Self { line_start: true }
    }
}

impl DotStuffer {
    /// A stuffer at the start of a message.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `content`, dot-stuffed, to `out`.
    pub fn stuff(&mut self, content: &[u8], out: &mut Vec<u8>) {
        let mut rest = content;
        while !rest.is_empty() {
            if self.line_start && rest[0] == b'.' {
                out.push(b'.');
            }
            match rest.iter().position(|&b| b == b'\n') {
                Some(lf) => {
                    out.extend_from_slice(&rest[..=lf]);
                    rest = &rest[lf + 1..];
                    self.line_start = true;
                }
                None => {
                    out.extend_from_slice(rest);
                    self.line_start = false;
                    rest = &[];
                }
            }
        }
    }

    /// Appends the end of the data (a CR LF first if the last line is
    /// unterminated).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
        self.line_start = true;
    }
}
