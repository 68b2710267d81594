//! The client side: one mail transaction toward the relay, pipelined when
//! the relay offers PIPELINING (RFC 2920), the body sent with BDAT when it
//! offers CHUNKING (RFC 3030), else with DATA (dot-stuffed).
//!
//! ```text
//! daemon --mail/rcpt/data/body/end--> Transaction --take_output--> relay
//! daemon <--------- poll: (Sent, Reply) ---------- feed <--------- relay
//! ```
//!
//! Replies are read with `portcullis_popbeforesmtp`'s bounded
//! [`ReplyParser`], the same parser the relay pool uses for EHLO, and the
//! relay's EHLO reply (from `RelaySession::ehlo_reply`) says what it
//! offers. Commands are held back until the relay may receive them: with
//! PIPELINING, MAIL, RCPT and BDAT go out in one write and DATA ends a
//! group (nothing follows it before the `354`); without, one command at a
//! time.

use std::collections::VecDeque;

use portcullis_popbeforesmtp::relay::ehlo;

use crate::command::{MailFrom, RcptTo};
use crate::data::DotStuffer;
use crate::{Error, Reply, ReplyParser};

/// The command a reply answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Sent {
    /// MAIL FROM.
    Mail,
    /// RCPT TO.
    Rcpt,
    /// DATA (the reply is `354` when the relay takes the body).
    Data,
    /// One BDAT chunk (not the last).
    Chunk,
    /// The end of the message: `.` after DATA, or `BDAT n LAST`.
    EndOfData,
    /// RSET.
    Rset,
}

/// A reply from the relay and the command it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientEvent {
    /// What it answers.
    pub sent: Sent,
    /// The relay's reply.
    pub reply: Reply,
}

/// How to give up a message already started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Abort {
    /// RSET was queued (write the output); the relay keeps nothing.
    Rset,
    /// DATA content was already sent: only closing the connection drops
    /// it (never send the final dot).
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DataState {
    Idle,
    Requested,
    Open,
    Closed,
}

/// One mail transaction toward a relay (reusable: after the end of data
/// or RSET the next MAIL starts the next).
#[derive(Debug)]
pub struct Transaction {
    pipelining: bool,
    chunking: bool,
    parser: ReplyParser,
    output: Vec<u8>,
    queue: VecDeque<(Sent, Vec<u8>)>,
    in_flight: VecDeque<Sent>,
    data: DataState,
    stuffer: DotStuffer,
}

/// The relay's queue id from its reply to the end of data (Postfix:
/// `250 2.0.0 Ok: queued as 4ZkQ1x0Y3Tz8`), if it names one.
#[must_use]
pub fn queue_id(reply: &Reply) -> Option<String> {
    let text = reply.lines().last()?;
    let lower = text.to_ascii_lowercase();
    let at = lower.find("queued as ")? + "queued as ".len();
    let id: String = text
        .get(at..)?
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .take(64)
        .collect();
    (!id.is_empty()).then_some(id)
}

fn line(s: &str) -> Result<Vec<u8>, Error> {
    if s.contains(['\r', '\n']) {
        return Err(Error::InvalidValue("command contains CR or LF"));
    }
    if s.len() + 2 > crate::MAX_COMMAND_LINE {
        return Err(Error::InvalidValue("command longer than 512 octets"));
    }
    let mut v = Vec::with_capacity(s.len() + 2);
    v.extend_from_slice(s.as_bytes());
    v.extend_from_slice(b"\r\n");
    Ok(v)
}

impl Transaction {
    /// A transaction using what the relay's EHLO reply offers.
    #[must_use]
    pub fn new(relay_ehlo: &Reply) -> Self {
        Self::with_options(
            ehlo::offers(relay_ehlo, "PIPELINING"),
            ehlo::offers(relay_ehlo, "CHUNKING"),
        )
    }

    /// A transaction with PIPELINING and CHUNKING on or off.
    #[must_use]
    pub fn with_options(pipelining: bool, chunking: bool) -> Self {
        Self {
            pipelining,
            chunking,
            parser: ReplyParser::new(),
            output: Vec::new(),
            queue: VecDeque::new(),
            in_flight: VecDeque::new(),
            data: DataState::Idle,
            stuffer: DotStuffer::new(),
        }
    }

    /// Whether the body goes with BDAT (else DATA).
    #[must_use]
    pub fn chunking(&self) -> bool {
        self.chunking
    }

    /// Replies still due from the relay.
    #[must_use]
    pub fn replies_due(&self) -> usize {
        self.in_flight.len() + self.queue.len()
    }

    fn push(&mut self, sent: Sent, wire: Vec<u8>) {
        self.queue.push_back((sent, wire));
        self.release();
    }

    fn release(&mut self) {
        while !self.queue.is_empty() {
            let may = match self.in_flight.back() {
                None => true,
                // DATA ends a group: nothing goes after it before the 354.
                Some(Sent::Data) => false,
                Some(_) => self.pipelining,
            };
            if !may {
                break;
            }
            if let Some((sent, wire)) = self.queue.pop_front() {
                self.output.extend_from_slice(&wire);
                self.in_flight.push_back(sent);
            }
        }
    }

    /// Queues `MAIL FROM` (built from the checked values).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidValue`] if the line would be too long.
    pub fn mail(&mut self, from: &MailFrom) -> Result<(), Error> {
        if self.data_in_flight() {
            return Err(Error::ApiMisuse(
                "DATA content is open: close the connection",
            ));
        }
        let wire = line(&from.to_line())?;
        self.data = DataState::Idle;
        self.stuffer = DotStuffer::new();
        self.push(Sent::Mail, wire);
        Ok(())
    }

    /// Queues `RCPT TO`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidValue`] if the line would be too long;
    /// [`Error::ApiMisuse`] while DATA content is open.
    pub fn rcpt(&mut self, to: &RcptTo) -> Result<(), Error> {
        if self.data_in_flight() {
            return Err(Error::ApiMisuse(
                "DATA content is open: close the connection",
            ));
        }
        let wire = line(&to.to_line())?;
        self.push(Sent::Rcpt, wire);
        Ok(())
    }

    /// Opens the body: queues `DATA` (wait for [`Sent::Data`]'s `354`), or
    /// with CHUNKING nothing (the body can follow at once).
    ///
    /// # Errors
    ///
    /// [`Error::ApiMisuse`] when the body is already open.
    pub fn data(&mut self) -> Result<(), Error> {
        if self.data != DataState::Idle {
            return Err(Error::ApiMisuse("body already open"));
        }
        if self.chunking {
            self.data = DataState::Open;
        } else {
            self.data = DataState::Requested;
            self.push(Sent::Data, b"DATA\r\n".to_vec());
        }
        Ok(())
    }

    /// Sends content (as [`crate::Event::Body`] gives it): dot-stuffed
    /// after DATA, one BDAT chunk with CHUNKING.
    ///
    /// # Errors
    ///
    /// [`Error::ApiMisuse`] before the relay took the body (`354`), or
    /// after its end.
    pub fn body(&mut self, content: &[u8]) -> Result<(), Error> {
        if self.data != DataState::Open {
            return Err(Error::ApiMisuse("the relay has not taken the body"));
        }
        if content.is_empty() {
            return Ok(());
        }
        if self.chunking {
            let mut wire = format!("BDAT {}\r\n", content.len()).into_bytes();
            wire.extend_from_slice(content);
            self.push(Sent::Chunk, wire);
        } else {
            self.stuffer.stuff(content, &mut self.output);
        }
        Ok(())
    }

    /// Ends the message: `.` after DATA, `BDAT 0 LAST` with CHUNKING. The
    /// reply is [`Sent::EndOfData`].
    ///
    /// # Errors
    ///
    /// [`Error::ApiMisuse`] when the body is not open.
    pub fn end(&mut self) -> Result<(), Error> {
        if self.data != DataState::Open {
            return Err(Error::ApiMisuse("the body is not open"));
        }
        self.data = DataState::Closed;
        if self.chunking {
            self.push(Sent::EndOfData, b"BDAT 0 LAST\r\n".to_vec());
        } else {
            self.stuffer.finish(&mut self.output);
            self.in_flight.push_back(Sent::EndOfData);
        }
        Ok(())
    }

    /// Whether DATA was sent and the message not ended: whatever is written
    /// now is message content to the relay.
    fn data_in_flight(&self) -> bool {
        !self.chunking && matches!(self.data, DataState::Open | DataState::Requested)
    }

    /// Gives up the transaction: RSET, unless DATA was sent (then the connection must be closed, see [`Abort::Close`]).
    pub fn abort(&mut self) -> Abort {
        self.rset()
    }

    /// Queues RSET (after RSET, EHLO or STARTTLS from the client), or, when
    /// DATA was sent and the message not ended, says the connection must be
    /// closed: the relay would read the RSET as message content.
    pub fn rset(&mut self) -> Abort {
        if self.data_in_flight() {
            self.data = DataState::Closed;
            return Abort::Close;
        }
        self.data = DataState::Idle;
        self.push(Sent::Rset, b"RSET\r\n".to_vec());
        Abort::Rset
    }

    /// The bytes to write to the relay.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    /// Adds bytes read from the relay.
    pub fn feed(&mut self, data: &[u8]) {
        self.parser.feed(data);
    }

    /// The next reply and what it answers; `Ok(None)` when more bytes are
    /// needed. Held-back commands are released as replies arrive (write
    /// [`Self::take_output`] after each call).
    ///
    /// # Errors
    ///
    /// [`Error::Reply`] for bytes that are not a reply,
    /// [`Error::UnexpectedReply`] for a reply nothing asked for: close the
    /// relay connection.
    pub fn poll(&mut self) -> Result<Option<ClientEvent>, Error> {
        let Some(reply) = self.parser.next_reply()? else {
            return Ok(None);
        };
        let sent = self.in_flight.pop_front().ok_or(Error::UnexpectedReply)?;
        if sent == Sent::Data {
            if reply.code() == 354 {
                self.data = DataState::Open;
            } else {
                self.data = DataState::Closed;
            }
        }
        self.release();
        Ok(Some(ClientEvent { sent, reply }))
    }
}
