//! A bounded CRLF line decoder.

/// `line` without one trailing CRLF or LF.
pub(crate) fn strip_crlf(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// What [`LineBuffer::next_line`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// A complete line, without its line ending.
    Complete(zeroize::Zeroizing<Vec<u8>>),
    /// A line over the limit: everything up to its end is skipped.
    TooLong,
    /// No complete line buffered yet.
    Incomplete,
}

/// Buffered input split into lines of at most `limit` octets (without the
/// line ending). The buffer is wiped when dropped: lines may hold passwords.
#[derive(Debug)]
pub(crate) struct LineBuffer {
    buf: zeroize::Zeroizing<Vec<u8>>,
    limit: usize,
    /// Inside an overlong line whose rest is being skipped.
    skipping: bool,
}

impl LineBuffer {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            buf: zeroize::Zeroizing::new(Vec::new()),
            limit,
            skipping: false,
        }
    }

    pub(crate) fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Removes and returns everything buffered.
    pub(crate) fn take_all(&mut self) -> zeroize::Zeroizing<Vec<u8>> {
        self.skipping = false;
        std::mem::replace(&mut self.buf, zeroize::Zeroizing::new(Vec::new()))
    }

    /// Drops everything buffered and returns how many octets that was.
    pub(crate) fn discard(&mut self) -> usize {
        self.take_all().len()
    }

    pub(crate) fn next_line(&mut self) -> Line {
        loop {
            let Some(lf) = self.buf.iter().position(|&b| b == b'\n') else {
                // Allow for the CR of a CRLF not yet complete.
                if self.buf.len() > self.limit.saturating_add(1) {
                    let was_skipping = self.skipping;
                    self.buf.clear();
                    self.skipping = true;
                    if !was_skipping {
                        return Line::TooLong;
                    }
                }
                return Line::Incomplete;
            };
            let rest = self.buf.split_off(lf + 1);
            let line = std::mem::replace(&mut *self.buf, rest);
            let line = zeroize::Zeroizing::new(line);
            if self.skipping {
                self.skipping = false;
                continue;
            }
            let body = strip_crlf(&line);
            if body.len() > self.limit {
                return Line::TooLong;
            }
            return Line::Complete(zeroize::Zeroizing::new(body.to_vec()));
        }
    }
}
