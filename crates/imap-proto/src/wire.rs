//! Encoding of server responses and client commands through imap-codec,
//! with text and tags made safe first.

use imap_codec::encode::{Encoder, Fragment};
use imap_codec::imap_types::core::{IString, NString, Tag, Text};
use imap_codec::imap_types::response::{
    CommandContinuationRequest, Data, Greeting, GreetingKind, Response, Status,
};
use imap_codec::{CommandCodec, GreetingCodec, ResponseCodec};

use crate::{ResponseCode, StatusKind};

/// `text` with control characters replaced by spaces, never empty.
pub(crate) fn safe_text(text: &str) -> Text<'static> {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let cleaned = cleaned.trim().to_owned();
    // A text starting with "[" would read as a response code.
    let cleaned = match cleaned.strip_prefix('[') {
        Some(rest) => format!("({rest}"),
        None => cleaned,
    };
    Text::try_from(cleaned).unwrap_or_else(|_| Text::unvalidated("Done"))
}

/// A tag parsed from the start of a message, if it is a valid tag.
pub(crate) fn tag_of(head: &[u8]) -> Option<Tag<'static>> {
    let end = head
        .iter()
        .position(|&b| b == b' ' || b == b'\r' || b == b'\n')?;
    Tag::try_from(head[..end].to_vec()).ok()
}

/// A status response with CRLF: tagged when `tag` is given, `BYE` always
/// untagged.
pub(crate) fn status(
    tag: Option<&Tag<'_>>,
    kind: StatusKind,
    code: Option<&ResponseCode>,
    text: &str,
) -> Vec<u8> {
    use imap_codec::imap_types::response::StatusKind as K;
    let code = code.and_then(ResponseCode::to_codec);
    let text = safe_text(text);
    let tag = tag.cloned();
    let status = match kind {
        StatusKind::Ok => Status::new(tag, K::Ok, code, text),
        StatusKind::No => Status::new(tag, K::No, code, text),
        StatusKind::Bad => Status::new(tag, K::Bad, code, text),
        StatusKind::Bye => Status::bye(code, text),
    };
    match status {
        Ok(s) => ResponseCodec::default().encode(&Response::Status(s)).dump(),
        // The text was validated above; an impossible failure answers BAD.
        Err(_) => b"* BAD Internal error\r\n".to_vec(),
    }
}

/// `* OK [CAPABILITY ...] text` or `* BYE text` greeting with CRLF.
pub(crate) fn greeting(ok: bool, code: Option<&ResponseCode>, text: &str) -> Vec<u8> {
    let greeting = Greeting {
        kind: if ok {
            GreetingKind::Ok
        } else {
            GreetingKind::Bye
        },
        code: code.and_then(ResponseCode::to_codec),
        text: safe_text(text),
    };
    GreetingCodec::default().encode(&greeting).dump()
}

/// `* CAPABILITY ...` with CRLF.
pub(crate) fn capability_data(capabilities: &[String]) -> Vec<u8> {
    match crate::capability::to_codec(capabilities) {
        Some(caps) => ResponseCodec::default()
            .encode(&Response::Data(Data::Capability(caps)))
            .dump(),
        None => b"* CAPABILITY IMAP4rev1\r\n".to_vec(),
    }
}

/// `* ID (...)` or `* ID NIL` with CRLF (RFC 2971 §3.2).
pub(crate) fn id_data(fields: &[(String, String)]) -> Vec<u8> {
    let parameters: Option<Vec<(IString<'static>, NString<'static>)>> = if fields.is_empty() {
        None
    } else {
        Some(
            fields
                .iter()
                .filter_map(|(k, v)| {
                    let k = IString::try_from(k.clone()).ok()?;
                    let v = IString::try_from(v.clone()).ok()?;
                    Some((k, NString(Some(v))))
                })
                .collect(),
        )
    };
    ResponseCodec::default()
        .encode(&Response::Data(Data::Id { parameters }))
        .dump()
}

/// `+ text` with CRLF.
pub(crate) fn continuation(text: &str) -> Vec<u8> {
    match CommandContinuationRequest::basic(None, safe_text(text)) {
        Ok(c) => ResponseCodec::default()
            .encode(&Response::CommandContinuationRequest(c))
            .dump(),
        Err(_) => b"+ Ready\r\n".to_vec(),
    }
}

/// One piece of an encoded command: a line to send at once, or a literal
/// to send after the peer's continuation request (unless `sync` is false).
#[derive(Debug)]
pub(crate) enum Piece {
    /// Bytes that can go out now.
    Line(zeroize::Zeroizing<Vec<u8>>),
    /// A literal's octets.
    Literal {
        /// The octets.
        data: zeroize::Zeroizing<Vec<u8>>,
        /// The sender waits for `+` first.
        sync: bool,
    },
}

/// Encodes a command into pieces, wiping imap-codec's buffers as it goes.
pub(crate) fn command_pieces(command: &imap_codec::imap_types::command::Command<'_>) -> Vec<Piece> {
    CommandCodec::default()
        .encode(command)
        .map(|f| match f {
            Fragment::Line { data } => Piece::Line(zeroize::Zeroizing::new(data)),
            Fragment::Literal { data, mode } => Piece::Literal {
                data: zeroize::Zeroizing::new(data),
                sync: mode == imap_codec::imap_types::core::LiteralMode::Sync,
            },
        })
        .collect()
}
