//! STARTTLS done safely (RFC 3207 §4.2, RFC 9051 §6.2.1, RFC 2595 §4).
//!
//! The protocol core parses `STARTTLS`, asks [`StartTls::begin`], sends the
//! reply it maps the answer to, and the edge runs the handshake with the
//! [`Upgrade`] proof `begin` returned ([`crate::TlsServer::accept_starttls`],
//! [`crate::MaybeTls::start_tls`]: neither runs without one). `begin`
//! throws away whatever the client sent after the command line, before the
//! handshake: bytes that arrived in plaintext must never be read as if they
//! came through TLS (CVE-2011-0411, the "STARTTLS command injection" class).
//!
//! ```text
//!  Plain ──begin()──▶ Negotiating ──established()──▶ Tls
//!    │                    │                           │
//!    └─ after AUTH: refused└─ begin() again: refused  └─ begin() again: refused
//! ```

use std::fmt;

use tokio::io::{AsyncBufRead, AsyncRead, BufReader};

/// What to do with bytes the client pipelined after `STARTTLS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PipelinedInput {
    /// Drop them and go on with the handshake (what Postfix does).
    #[default]
    Discard,
    /// Drop them and refuse the STARTTLS; the caller sends the refusal and
    /// closes the connection.
    Refuse,
}

/// Why a STARTTLS was refused. The core maps it to its reply
/// (`454 4.7.0` / `503 5.5.1` in SMTP, `BAD` in IMAP, `-ERR` in POP3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartTlsRefusal {
    /// TLS is already active or being negotiated.
    AlreadyActive,
    /// The client has already authenticated (IMAP allows STARTTLS only in
    /// the not-authenticated state; SMTP and POP3 forbid it after AUTH).
    AfterAuthentication,
    /// The client sent more after the command, and the policy refuses that.
    /// The bytes have been discarded; close the connection.
    PipelinedInput {
        /// How many bytes were discarded.
        discarded: usize,
    },
}

impl fmt::Display for StartTlsRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AlreadyActive => f.write_str("TLS already active"),
            Self::AfterAuthentication => f.write_str("STARTTLS not allowed after authentication"),
            Self::PipelinedInput { discarded } => {
                write!(f, "{discarded} bytes pipelined after STARTTLS")
            }
        }
    }
}

impl std::error::Error for StartTlsRefusal {}

/// Input that was read but not yet processed, which `begin` clears.
pub trait PendingInput {
    /// How many bytes are waiting.
    fn pending(&self) -> usize;
    /// Drops them.
    fn discard(&mut self);
}

impl PendingInput for Vec<u8> {
    fn pending(&self) -> usize {
        self.len()
    }
    fn discard(&mut self) {
        self.clear();
    }
}

impl PendingInput for std::collections::VecDeque<u8> {
    fn pending(&self) -> usize {
        self.len()
    }
    fn discard(&mut self) {
        self.clear();
    }
}

impl<R: AsyncRead + Unpin> PendingInput for BufReader<R> {
    fn pending(&self) -> usize {
        self.buffer().len()
    }
    fn discard(&mut self) {
        let n = self.buffer().len();
        std::pin::Pin::new(self).consume(n);
    }
}

/// Permission to run the TLS handshake, proof that the pending input was
/// cleared. Only [`StartTls::begin`] (and [`StartTls::begin_buffered`])
/// makes one, and the upgrade handshake
/// ([`crate::TlsServer::accept_starttls`]) takes it.
#[derive(Debug)]
#[must_use = "run the handshake, then call StartTls::established"]
pub struct Upgrade {
    discarded: usize,
}

impl Upgrade {
    /// How many pipelined bytes were discarded (for logging).
    pub fn discarded(&self) -> usize {
        self.discarded
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Plain,
    Negotiating,
    Tls,
}

/// The STARTTLS state of one connection.
#[derive(Debug, Clone)]
pub struct StartTls {
    policy: PipelinedInput,
    state: State,
}

impl StartTls {
    /// A plaintext connection where STARTTLS may come.
    pub fn new(policy: PipelinedInput) -> Self {
        Self {
            policy,
            state: State::Plain,
        }
    }

    /// A connection that started in TLS (implicit TLS ports): STARTTLS is
    /// always refused.
    pub fn already_tls() -> Self {
        Self {
            policy: PipelinedInput::Discard,
            state: State::Tls,
        }
    }

    /// Whether TLS is active or being negotiated.
    pub fn is_active(&self) -> bool {
        self.state != State::Plain
    }

    /// Called when the core has parsed a STARTTLS command. `pending` is the
    /// input read after the command line: when the upgrade may go ahead it
    /// is discarded (and under [`PipelinedInput::Refuse`], if not empty, the
    /// STARTTLS refused); a STARTTLS refused for the connection's state
    /// leaves it, as it came through the channel that stays in use.
    ///
    /// # Errors
    /// A [`StartTlsRefusal`] for a second STARTTLS, one after
    /// authentication, or pipelined input under [`PipelinedInput::Refuse`].
    pub fn begin(
        &mut self,
        authenticated: bool,
        pending: &mut impl PendingInput,
    ) -> Result<Upgrade, StartTlsRefusal> {
        // A refused STARTTLS leaves the channel as it is, so input pipelined
        // behind it came through that same channel and stays.
        if self.state != State::Plain {
            return Err(StartTlsRefusal::AlreadyActive);
        }
        if authenticated {
            return Err(StartTlsRefusal::AfterAuthentication);
        }
        let discarded = pending.pending();
        pending.discard();
        if discarded > 0 {
            tracing::warn!(
                discarded,
                "input pipelined after STARTTLS discarded (CVE-2011-0411)"
            );
            if self.policy == PipelinedInput::Refuse {
                return Err(StartTlsRefusal::PipelinedInput { discarded });
            }
        }
        self.state = State::Negotiating;
        Ok(Upgrade { discarded })
    }

    /// [`StartTls::begin`] for a connection read through a [`BufReader`]:
    /// takes the reader, empties its buffer and hands back the transport
    /// under it with the proof, so the handshake runs on exactly the
    /// stream whose buffered plaintext was discarded. A refusal gives the
    /// reader back.
    ///
    /// # Errors
    /// As [`StartTls::begin`], with the reader.
    pub fn begin_buffered<R: AsyncRead + Unpin>(
        &mut self,
        authenticated: bool,
        mut reader: BufReader<R>,
    ) -> Result<(R, Upgrade), (BufReader<R>, StartTlsRefusal)> {
        match self.begin(authenticated, &mut reader) {
            Ok(upgrade) => Ok((reader.into_inner(), upgrade)),
            Err(refusal) => Err((reader, refusal)),
        }
    }

    /// Called when the handshake has finished; the core then forgets any
    /// state the client set in plaintext (EHLO, capabilities) as the RFCs
    /// require.
    pub fn established(&mut self, upgrade: Upgrade) {
        let _ = upgrade;
        self.state = State::Tls;
    }

    /// Called when the handshake failed; the connection must be closed, and
    /// the state stays "active" so nothing continues in plaintext.
    pub fn failed(&mut self, upgrade: Upgrade) {
        let _ = upgrade;
        self.state = State::Negotiating;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipelined_bytes_are_discarded() {
        let mut st = StartTls::new(PipelinedInput::Discard);
        let mut buf = b"NOOP\r\nMAIL FROM:<x>\r\n".to_vec();
        let up = st.begin(false, &mut buf).unwrap();
        assert!(buf.is_empty());
        assert_eq!(up.discarded(), 21);
        st.established(up);
        let mut empty = Vec::new();
        assert_eq!(
            st.begin(false, &mut empty).unwrap_err(),
            StartTlsRefusal::AlreadyActive
        );
    }

    #[test]
    fn refuse_policy() {
        let mut st = StartTls::new(PipelinedInput::Refuse);
        let mut buf = b"X".to_vec();
        assert_eq!(
            st.begin(false, &mut buf).unwrap_err(),
            StartTlsRefusal::PipelinedInput { discarded: 1 }
        );
        assert!(buf.is_empty());
        assert!(!st.is_active());
        // Nothing pending: fine.
        assert!(st.begin(false, &mut buf).is_ok());
    }

    #[test]
    fn after_auth_and_second() {
        let mut st = StartTls::new(PipelinedInput::Discard);
        let mut buf = Vec::new();
        assert_eq!(
            st.begin(true, &mut buf).unwrap_err(),
            StartTlsRefusal::AfterAuthentication
        );
        let up = st.begin(false, &mut buf).unwrap();
        // Second STARTTLS while negotiating.
        assert_eq!(
            st.begin(false, &mut buf).unwrap_err(),
            StartTlsRefusal::AlreadyActive
        );
        st.failed(up);
        assert!(st.is_active());
        let mut t = StartTls::already_tls();
        let mut inside = b"NOOP\r\n".to_vec();
        assert_eq!(
            t.begin(false, &mut inside).unwrap_err(),
            StartTlsRefusal::AlreadyActive
        );
        assert_eq!(inside, b"NOOP\r\n", "input inside TLS is kept");
    }

    #[tokio::test]
    async fn bufreader_is_drained() {
        use tokio::io::AsyncBufReadExt;
        let data: &[u8] = b"STARTTLS\r\nINJECTED\r\n";
        let mut r = BufReader::new(data);
        let mut line = String::new();
        r.read_line(&mut line).await.unwrap();
        assert_eq!(line, "STARTTLS\r\n");
        assert_eq!(r.pending(), 10);
        let mut st = StartTls::new(PipelinedInput::Discard);
        let up = st.begin(false, &mut r).unwrap();
        assert_eq!(up.discarded(), 10);
        assert_eq!(r.pending(), 0);
        let inner = r.into_inner();
        assert!(inner.is_empty());
    }

    #[tokio::test]
    async fn begin_buffered_returns_the_transport() {
        use tokio::io::AsyncBufReadExt;
        let data: &[u8] = b"STARTTLS\r\nINJECTED\r\n";
        let mut r = BufReader::new(data);
        let mut line = String::new();
        r.read_line(&mut line).await.unwrap();
        // Refused (after AUTH): the reader comes back with its buffer.
        let mut st = StartTls::new(PipelinedInput::Discard);
        let (mut r, refusal) = st.begin_buffered(true, r).unwrap_err();
        assert_eq!(refusal, StartTlsRefusal::AfterAuthentication);
        assert_eq!(r.pending(), 10);
        line.clear();
        r.read_line(&mut line).await.unwrap();
        assert_eq!(line, "INJECTED\r\n");

        let mut r = BufReader::new(data);
        line.clear();
        r.read_line(&mut line).await.unwrap();
        let (inner, up) = st.begin_buffered(false, r).unwrap();
        assert_eq!(up.discarded(), 10);
        assert!(inner.is_empty(), "the transport holds nothing more");
    }
}
