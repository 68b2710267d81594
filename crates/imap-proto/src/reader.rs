//! Bounded framing of IMAP messages: lines and the literals they announce.
//!
//! ```text
//! literal  = "{" number64 ["+"] "}" CRLF *CHAR8    ; RFC 9051 §9, RFC 7888
//! message  = *(line-with-literal literal) line CRLF
//! ```
//!
//! The reader finds message boundaries before any parsing, so a literal's
//! octets are never read as commands. It never reads a literal the caller
//! did not accept: an announced literal stops the reader until
//! [`MessageReader::accept_literal`] or [`MessageReader::refuse_literal`].
//! Every buffer is wiped when dropped (messages may hold passwords).

use zeroize::Zeroizing;

/// How a literal was announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LiteralMode {
    /// `{n}`: the sender waits for a continuation request.
    Sync,
    /// `{n+}` (RFC 7888): the octets follow at once.
    NonSync,
}

/// What [`MessageReader::next`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A complete message: its lines (with line endings) and literals.
    Message(Zeroizing<Vec<u8>>),
    /// The message so far announces a literal; accept or refuse it.
    Literal {
        /// The announced length.
        length: u64,
        /// How it was announced.
        mode: LiteralMode,
    },
    /// A line over the limit, or a line ending in a bare LF: the message
    /// is skipped up to the end of that line.
    BadLine {
        /// The start of the message (up to 64 octets), to find its tag.
        head: Vec<u8>,
        /// The line was too long (else: a bare LF).
        too_long: bool,
        /// The line announced a literal of this kind (its octets are on
        /// their way when non-synchronizing).
        announced: Option<LiteralMode>,
    },
    /// An overlong line, skipped after [`Frame::BadLine`], ended by
    /// announcing a non-synchronizing literal: its octets are on their way.
    SkippedLiteral,
    /// The whole message would exceed the message limit.
    TooBig {
        /// The start of the message (up to 64 octets).
        head: Vec<u8>,
        /// The refused line announced a literal of this kind (its octets
        /// are on their way when non-synchronizing).
        announced: Option<LiteralMode>,
    },
    /// No complete message or announcement yet.
    Incomplete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a line of the current message.
    Line,
    /// Stopped at an announced literal, waiting for the caller.
    Announced { length: u64, mode: LiteralMode },
    /// Reading `remaining` octets of an accepted literal.
    Literal { remaining: u64 },
    /// Skipping the rest of an overlong line.
    Skipping,
}

/// Splits input into messages of at most `max_message` octets whose lines
/// are at most `max_line` octets (without CRLF).
#[derive(Debug)]
pub(crate) struct MessageReader {
    input: Zeroizing<Vec<u8>>,
    /// The current message so far.
    message: Zeroizing<Vec<u8>>,
    /// Where the current (incomplete) line of `message` starts in `input`:
    /// bytes `..scanned` of `input` were looked at already.
    scanned: usize,
    state: State,
    max_line: usize,
    max_message: usize,
    /// Lines only, no literals (SASL response lines, or strict contexts).
    lines_only: bool,
    /// The last octets of a line being skipped, to see how it ends.
    skip_tail: Vec<u8>,
}

/// How many octets of a skipped line are kept to find an announcement.
const TAIL: usize = 32;

/// The literal announced at the end of `line` (without its line ending).
fn announcement(line: &[u8]) -> Option<(u64, LiteralMode)> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let spec = &inner[open + 1..];
    let (digits, mode) = match spec.strip_suffix(b"+") {
        Some(d) => (d, LiteralMode::NonSync),
        None => (spec, LiteralMode::Sync),
    };
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let length = digits.iter().try_fold(0u64, |n, d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })?;
    Some((length, mode))
}

fn head(bytes: &[u8]) -> Vec<u8> {
    bytes[..bytes.len().min(64)].to_vec()
}

impl MessageReader {
    pub(crate) fn new(max_line: usize, max_message: usize) -> Self {
        Self {
            input: Zeroizing::new(Vec::new()),
            message: Zeroizing::new(Vec::new()),
            scanned: 0,
            state: State::Line,
            max_line,
            max_message: max_message.max(max_line),
            lines_only: false,
            skip_tail: Vec::new(),
        }
    }

    pub(crate) fn feed(&mut self, data: &[u8]) {
        self.input.extend_from_slice(data);
    }

    /// Octets fed and not yet looked at as part of a message.
    pub(crate) fn unread(&self) -> usize {
        self.input.len()
    }

    /// Reads lines only (no literal announcements) until switched back.
    pub(crate) fn set_lines_only(&mut self, lines_only: bool) {
        self.lines_only = lines_only;
    }

    /// Removes and returns everything buffered (the current message so
    /// far, then unread input).
    pub(crate) fn take_all(&mut self) -> Zeroizing<Vec<u8>> {
        let mut out = std::mem::replace(&mut self.message, Zeroizing::new(Vec::new()));
        out.extend_from_slice(&self.input);
        self.input.clear();
        self.scanned = 0;
        self.state = State::Line;
        out
    }

    /// Drops everything buffered and returns how many octets that was.
    pub(crate) fn discard(&mut self) -> usize {
        self.take_all().len()
    }

    /// Accepts the announced literal: its octets are read next.
    pub(crate) fn accept_literal(&mut self) {
        if let State::Announced { length, .. } = self.state {
            self.state = State::Literal { remaining: length };
        }
    }

    /// Refuses the announced literal: the message so far is dropped and
    /// reading starts again at the next line (the client does not send a
    /// refused synchronizing literal).
    pub(crate) fn refuse_literal(&mut self) {
        if let State::Announced { .. } = self.state {
            self.message.clear();
            self.state = State::Line;
        }
    }

    /// The start of the current message, to find its tag.
    pub(crate) fn message_head(&self) -> Vec<u8> {
        head(&self.message)
    }

    pub(crate) fn next(&mut self) -> Frame {
        loop {
            match self.state {
                State::Announced { length, mode } => return Frame::Literal { length, mode },
                State::Literal { remaining } => {
                    let available = u64::try_from(self.input.len()).unwrap_or(u64::MAX);
                    let take = remaining.min(available);
                    // `take` is at most `input.len()`, a usize.
                    let take_usize = usize::try_from(take).unwrap_or(self.input.len());
                    let rest = self.input.split_off(take_usize);
                    let literal = std::mem::replace(&mut *self.input, rest);
                    self.message.extend_from_slice(&literal);
                    drop(Zeroizing::new(literal));
                    self.scanned = 0;
                    if take < remaining {
                        self.state = State::Literal {
                            remaining: remaining - take,
                        };
                        return Frame::Incomplete;
                    }
                    self.state = State::Line;
                }
                State::Skipping => {
                    let lf = self.input.iter().position(|&b| b == b'\n');
                    let end = lf.unwrap_or(self.input.len());
                    self.skip_tail
                        .extend_from_slice(&self.input[end.saturating_sub(TAIL)..end]);
                    let excess = self.skip_tail.len().saturating_sub(TAIL);
                    self.skip_tail.drain(..excess);
                    let Some(lf) = lf else {
                        self.input.clear();
                        self.scanned = 0;
                        return Frame::Incomplete;
                    };
                    let rest = self.input.split_off(lf + 1);
                    drop(std::mem::replace(&mut self.input, Zeroizing::new(rest)));
                    self.scanned = 0;
                    self.state = State::Line;
                    let tail = std::mem::take(&mut self.skip_tail);
                    let body = tail.strip_suffix(b"\r").unwrap_or(&tail);
                    if self.announced(body) == Some(LiteralMode::NonSync) {
                        return Frame::SkippedLiteral;
                    }
                }
                State::Line => return self.line(),
            }
        }
    }

    fn line(&mut self) -> Frame {
        let from = self.scanned;
        let Some(lf) = self.input[from..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|p| p + from)
        else {
            self.scanned = self.input.len();
            // Allow for the CR of a CRLF not yet complete.
            if self.input.len() > self.max_line.saturating_add(1) {
                let h = if self.message.is_empty() {
                    head(&self.input)
                } else {
                    self.message_head()
                };
                let keep = self.input.len().saturating_sub(TAIL);
                self.skip_tail = self.input[keep..].to_vec();
                self.input.clear();
                self.message.clear();
                self.scanned = 0;
                self.state = State::Skipping;
                return Frame::BadLine {
                    head: h,
                    too_long: true,
                    announced: None,
                };
            }
            return Frame::Incomplete;
        };
        let rest = self.input.split_off(lf + 1);
        let line = Zeroizing::new(std::mem::replace(&mut *self.input, rest));
        self.scanned = 0;
        let crlf = line.ends_with(b"\r\n");
        let body = &line[..line.len() - if crlf { 2 } else { 1 }];
        if !crlf || body.len() > self.max_line {
            self.message.extend_from_slice(&line[..line.len().min(64)]);
            let h = self.message_head();
            self.message.clear();
            return Frame::BadLine {
                head: h,
                too_long: crlf,
                announced: self.announced(body),
            };
        }
        if self.message.len().saturating_add(line.len()) > self.max_message {
            self.message.extend_from_slice(&line[..line.len().min(64)]);
            let h = self.message_head();
            self.message.clear();
            let announced = self.announced(body);
            return Frame::TooBig { head: h, announced };
        }
        self.message.extend_from_slice(&line);
        if !self.lines_only
            && let Some((length, mode)) = announcement(body)
        {
            self.state = State::Announced { length, mode };
            return Frame::Literal { length, mode };
        }
        Frame::Message(std::mem::replace(
            &mut self.message,
            Zeroizing::new(Vec::new()),
        ))
    }

    /// The kind of literal `body` (a line without its ending) announces,
    /// unless only lines are read.
    fn announced(&self, body: &[u8]) -> Option<LiteralMode> {
        if self.lines_only {
            return None;
        }
        announcement(body).map(|(_, mode)| mode)
    }

    /// Whether `length` more octets fit in the current message.
    pub(crate) fn fits(&self, length: u64) -> bool {
        let used = u64::try_from(self.message.len()).unwrap_or(u64::MAX);
        let max = u64::try_from(self.max_message).unwrap_or(u64::MAX);
        used.checked_add(length).is_some_and(|n| n <= max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements() {
        assert_eq!(announcement(b"a LOGIN {5}"), Some((5, LiteralMode::Sync)));
        assert_eq!(
            announcement(b"a LOGIN {1000000000+}"),
            Some((1_000_000_000, LiteralMode::NonSync))
        );
        assert_eq!(announcement(b"a LOGIN {}"), None);
        assert_eq!(announcement(b"a LOGIN {+}"), None);
        assert_eq!(announcement(b"a LOGIN {99999999999999999999}"), None);
        assert_eq!(announcement(b"a LOGIN x}"), None);
    }

    #[test]
    fn literal_waits_for_the_caller() {
        let mut r = MessageReader::new(100, 1000);
        r.feed(b"a LOGIN {3}\r\nabc {2+}\r\nxy\r\nb NOOP\r\n");
        assert_eq!(
            r.next(),
            Frame::Literal {
                length: 3,
                mode: LiteralMode::Sync
            }
        );
        // Asked again without an answer: the same announcement.
        assert!(matches!(r.next(), Frame::Literal { length: 3, .. }));
        r.accept_literal();
        assert_eq!(
            r.next(),
            Frame::Literal {
                length: 2,
                mode: LiteralMode::NonSync
            }
        );
        r.accept_literal();
        let Frame::Message(m) = r.next() else {
            panic!("message")
        };
        assert_eq!(&m[..], b"a LOGIN {3}\r\nabc {2+}\r\nxy\r\n");
        let Frame::Message(m) = r.next() else {
            panic!("message")
        };
        assert_eq!(&m[..], b"b NOOP\r\n");
        assert_eq!(r.next(), Frame::Incomplete);
    }

    #[test]
    fn overlong_line_skipped_once() {
        let mut r = MessageReader::new(10, 100);
        r.feed(&[b'x'; 30]);
        assert!(matches!(r.next(), Frame::BadLine { too_long: true, .. }));
        r.feed(&[b'x'; 30]);
        assert_eq!(r.next(), Frame::Incomplete);
        r.feed(b"x\r\nb NOOP\r\n");
        assert!(matches!(r.next(), Frame::Message(m) if &m[..] == b"b NOOP\r\n"));
    }

    #[test]
    fn skipped_line_ending_in_a_literal_is_reported() {
        let mut r = MessageReader::new(10, 100);
        r.feed(b"a1 LOGIN xxxxxxxxxxxxxxxx");
        assert!(matches!(r.next(), Frame::BadLine { too_long: true, .. }));
        r.feed(b"xxxxxxxxxxxxxxxxxxxxxxx {");
        assert_eq!(r.next(), Frame::Incomplete);
        r.feed(b"5+}\r\nabcde");
        assert_eq!(r.next(), Frame::SkippedLiteral);
        // A synchronizing one is not sent until "+": nothing to report.
        let mut r = MessageReader::new(10, 100);
        r.feed(b"a1 LOGIN xxxxxxxxxxxxxxxxxxxxxxxxx {5}\r\na2 NOOP\r\n");
        assert!(matches!(r.next(), Frame::BadLine { too_long: true, .. }));
        assert!(matches!(r.next(), Frame::Message(m) if &m[..] == b"a2 NOOP\r\n"));
    }

    #[test]
    fn bare_lf_refused() {
        let mut r = MessageReader::new(100, 1000);
        r.feed(b"a NOOP\nb NOOP\r\n");
        assert!(matches!(
            r.next(),
            Frame::BadLine {
                too_long: false,
                ..
            }
        ));
        assert!(matches!(r.next(), Frame::Message(m) if &m[..] == b"b NOOP\r\n"));
    }
}
