//! Replies the front end sends on its own, with enhanced status codes
//! (RFC 3463, RFC 2034).
//!
//! ```text
//! Reply-line = *( Reply-code "-" [ textstring ] CRLF )
//!              Reply-code [ SP textstring ] CRLF        ; RFC 5321 §4.2
//! textstring = status-code SP text                     ; RFC 2034 §4
//! ```
//!
//! The daemon answers [`crate::Event`]s with a [`Reply`] (its own, one of
//! these, or the relay's as received).

pub use portcullis_popbeforesmtp::relay::Reply;

/// A reply code and its text, the latter starting with the enhanced
/// status code.
pub type Standard = (u16, &'static str);

/// `250 2.0.0 Ok`.
pub const OK: Standard = (250, "2.0.0 Ok");
/// `250 2.1.0 Sender ok`.
pub const SENDER_OK: Standard = (250, "2.1.0 Sender ok");
/// `250 2.1.5 Recipient ok`.
pub const RECIPIENT_OK: Standard = (250, "2.1.5 Recipient ok");
/// `530 5.7.0 Authentication required` (RFC 4954 §6): MAIL FROM from a
/// client that neither authenticated nor logged in to POP recently.
pub const AUTH_REQUIRED: Standard = (530, "5.7.0 Authentication required");
/// `553 5.7.1` (Postfix's `reject_sender_login_mismatch`): MAIL FROM with an
/// address the user does not own.
pub const SENDER_MISMATCH: Standard = (553, "5.7.1 Sender address not owned by the user");
/// `421 4.3.0`: no relay reachable; the connection is closed.
pub const RELAY_UNAVAILABLE: Standard = (421, "4.3.0 Service not available, try again later");
/// `451 4.3.0`: the relay failed during a transaction.
pub const RELAY_FAILED: Standard = (451, "4.3.0 Local error in processing");
/// `421 4.4.2`: the connection timed out.
pub const TIMEOUT: Standard = (421, "4.4.2 Timeout, closing connection");
/// `421 4.3.2`: the server is shutting down.
pub const SHUTDOWN: Standard = (421, "4.3.2 Service shutting down, closing connection");

/// A one-line reply from a [`Standard`] pair.
///
/// # Panics
///
/// Never for the constants of this module (the crate's tests check each);
/// a `Standard` made elsewhere needs a code in 200..=599 and a text
/// without CR or LF.
#[must_use]
pub fn standard(reply: Standard) -> Reply {
    // Every `Standard` here has a code in 200..=599 and a text without CR
    // or LF (the crate's tests check each one), which `Reply::new` accepts.
    #[allow(clippy::expect_used)]
    Reply::new(reply.0, vec![reply.1.to_owned()]).expect("valid standard reply")
}

/// A one-line reply `code text`, control characters dropped from `text`;
/// a code outside 200..=599 becomes 451.
///
/// # Panics
///
/// Never: the fallback (451 with cleaned text) is always a valid reply.
#[must_use]
pub fn line(code: u16, text: &str) -> Reply {
    let text = clean(text);
    Reply::new(code, vec![text.clone()]).unwrap_or_else(|_| {
        // 451 is in range and `text` is clean: this cannot fail.
        #[allow(clippy::expect_used)]
        Reply::new(451, vec![text]).expect("451 with clean text")
    })
}

/// `text` as a single reply line: CR, LF and other control characters
/// dropped.
pub(crate) fn clean(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).collect()
}

/// Appends `code text CRLF`.
pub(crate) fn push(out: &mut Vec<u8>, code: u16, text: &str) {
    out.extend_from_slice(format!("{code:03} {}\r\n", clean(text)).as_bytes());
}

/// A multi-line reply (EHLO); lines are cleaned of control characters.
pub(crate) fn multi(code: u16, lines: Vec<String>) -> Reply {
    let lines: Vec<String> = lines.iter().map(|l| clean(l)).collect();
    Reply::new(code, lines).unwrap_or_else(|_| line(code, ""))
}
