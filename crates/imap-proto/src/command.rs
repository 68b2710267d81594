//! IMAP commands of the not-authenticated state, parsed by imap-codec and
//! held as owned values.
//!
//! ```text
//! command         = tag SP (command-any / command-auth / command-nonauth /
//!                   command-select) CRLF                      ; RFC 9051 §9
//! command-any     = "CAPABILITY" / "LOGOUT" / "NOOP" / x-command / id
//! command-nonauth = login / authenticate / "STARTTLS"
//! login           = "LOGIN" SP userid SP password             ; astrings
//! authenticate    = "AUTHENTICATE" SP auth-type [SP initial-resp]
//! initial-resp    = base64 / "="                              ; RFC 4959
//! id              = "ID" SP id-params-list                    ; RFC 2971
//! ```

use std::fmt;

use imap_codec::CommandCodec;
use imap_codec::decode::{CommandDecodeError, Decoder};
use imap_codec::imap_types::auth::AuthMechanism;
use imap_codec::imap_types::command::{Command as CodecCommand, CommandBody};
use imap_codec::imap_types::core::{AString, IString, NString};
use portcullis_sasl::Password;
use zeroize::Zeroizing;

use crate::Error;

/// RFC 2971 §3.3 bounds: 30 pairs, 30-octet fields, 1024-octet values.
pub const MAX_ID_PAIRS: usize = 30;
/// The longest ID field name (RFC 2971 §3.3).
pub const MAX_ID_FIELD: usize = 30;
/// The longest ID value (RFC 2971 §3.3).
pub const MAX_ID_VALUE: usize = 1024;

/// The fields of an ID command (RFC 2971): names and values (`None` for
/// NIL).
pub type IdParameters = Vec<(String, Option<String>)>;

/// One client command (without its tag).
#[derive(Clone)]
#[non_exhaustive]
pub enum Command {
    /// `CAPABILITY`.
    Capability,
    /// `NOOP`.
    Noop,
    /// `LOGOUT`.
    Logout,
    /// `STARTTLS` (RFC 9051 §6.2.1).
    StartTls,
    /// `LOGIN user password` (astrings: atoms, quoted strings or literals).
    Login {
        /// The user name (UTF-8).
        user: String,
        /// The password (UTF-8).
        password: Password,
    },
    /// `AUTHENTICATE mechanism [initial-response]` (RFC 4959).
    Authenticate {
        /// The mechanism name, upper-cased.
        mechanism: String,
        /// The initial response as sent (base64 or `=`), wiped on drop.
        initial_response: Option<Zeroizing<String>>,
    },
    /// `ID (field value ...)` or `ID NIL` (RFC 2971); values may be NIL.
    Id(Option<IdParameters>),
    /// Any other valid command: its name, upper-cased.
    Other(String),
}

impl PartialEq for Command {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Capability, Self::Capability)
            | (Self::Noop, Self::Noop)
            | (Self::Logout, Self::Logout)
            | (Self::StartTls, Self::StartTls) => true,
            (
                Self::Login { user, password },
                Self::Login {
                    user: u2,
                    password: p2,
                },
            ) => user == u2 && password.ct_eq(p2),
            (
                Self::Authenticate {
                    mechanism,
                    initial_response,
                },
                Self::Authenticate {
                    mechanism: m2,
                    initial_response: i2,
                },
            ) => mechanism == m2 && initial_response == i2,
            (Self::Id(a), Self::Id(b)) => a == b,
            (Self::Other(a), Self::Other(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Command {}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Capability => f.write_str("Capability"),
            Self::Noop => f.write_str("Noop"),
            Self::Logout => f.write_str("Logout"),
            Self::StartTls => f.write_str("StartTls"),
            Self::Login { user, .. } => f
                .debug_struct("Login")
                .field("user", user)
                .finish_non_exhaustive(),
            Self::Authenticate {
                mechanism,
                initial_response,
            } => f
                .debug_struct("Authenticate")
                .field("mechanism", mechanism)
                .field(
                    "initial_response",
                    &initial_response.as_ref().map(|_| "<redacted>"),
                )
                .finish(),
            Self::Id(p) => f.debug_tuple("Id").field(p).finish(),
            Self::Other(n) => f.debug_tuple("Other").field(n).finish(),
        }
    }
}

fn astring_utf8(a: &AString<'_>, what: &'static str) -> Result<String, Error> {
    String::from_utf8(AsRef::<[u8]>::as_ref(a).to_vec()).map_err(|_| Error::Syntax(what))
}

fn id_params(
    parameters: &Option<Vec<(IString<'_>, NString<'_>)>>,
) -> Result<Option<IdParameters>, Error> {
    let Some(list) = parameters else {
        return Ok(None);
    };
    if list.len() > MAX_ID_PAIRS {
        return Err(Error::Syntax("ID: more than 30 pairs"));
    }
    let mut out = Vec::with_capacity(list.len());
    for (k, v) in list {
        let k = String::from_utf8_lossy(k.as_ref()).into_owned();
        if k.len() > MAX_ID_FIELD {
            return Err(Error::Syntax("ID: field name over 30 octets"));
        }
        let v =
            v.0.as_ref()
                .map(|v| String::from_utf8_lossy(v.as_ref()).into_owned());
        if v.as_ref().is_some_and(|v| v.len() > MAX_ID_VALUE) {
            return Err(Error::Syntax("ID: value over 1024 octets"));
        }
        out.push((k, v));
    }
    Ok(Some(out))
}

/// The raw initial-response argument of an AUTHENTICATE line, as sent.
fn raw_initial_response(message: &[u8]) -> Option<Zeroizing<String>> {
    let line = message.strip_suffix(b"\r\n").unwrap_or(message);
    let mut parts = line.split(|&b| b == b' ');
    let _tag = parts.next()?;
    let _verb = parts.next()?;
    let _mechanism = parts.next()?;
    let ir = parts.next()?;
    Some(Zeroizing::new(String::from_utf8_lossy(ir).into_owned()))
}

impl Command {
    /// Parses one complete message (lines and literals, CRLF included)
    /// into its tag and command.
    ///
    /// # Errors
    ///
    /// [`Error::Syntax`] when the message is not one valid command, or a
    /// LOGIN name or password is not UTF-8, or an ID list breaks RFC 2971's
    /// bounds.
    pub fn parse(message: &[u8]) -> Result<(String, Self), Error> {
        let (rest, command) = match CommandCodec::default().decode(message) {
            Ok(ok) => ok,
            Err(CommandDecodeError::Incomplete | CommandDecodeError::LiteralFound { .. }) => {
                return Err(Error::Syntax("incomplete command"));
            }
            Err(CommandDecodeError::Failed) => return Err(Error::Syntax("invalid command")),
        };
        if !rest.is_empty() {
            return Err(Error::Syntax("trailing data after the command"));
        }
        let tag = command.tag.inner().to_owned();
        let parsed = match &command.body {
            CommandBody::Capability => Self::Capability,
            CommandBody::Noop => Self::Noop,
            CommandBody::Logout => Self::Logout,
            CommandBody::StartTLS => Self::StartTls,
            CommandBody::Login { username, password } => Self::Login {
                user: astring_utf8(username, "LOGIN user name is not UTF-8")?,
                password: Password::new(astring_utf8(
                    password.declassify(),
                    "LOGIN password is not UTF-8",
                )?),
            },
            CommandBody::Authenticate {
                mechanism,
                initial_response,
            } => Self::Authenticate {
                mechanism: mechanism.to_string().to_ascii_uppercase(),
                initial_response: initial_response
                    .as_ref()
                    .and_then(|_| raw_initial_response(message)),
            },
            CommandBody::Id { parameters } => Self::Id(id_params(parameters)?),
            other => Self::Other(other.name().to_owned()),
        };
        Ok((tag, parsed))
    }

    /// The imap-codec form, for encoding.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] for a value IMAP cannot carry (an empty or NUL
    /// holding name, a malformed initial response, [`Command::Other`]).
    pub(crate) fn to_codec(&self, tag: &str) -> Result<CodecCommand<'static>, Error> {
        let body = match self {
            Self::Capability => CommandBody::Capability,
            Self::Noop => CommandBody::Noop,
            Self::Logout => CommandBody::Logout,
            Self::StartTls => CommandBody::StartTLS,
            Self::Login { user, password } => {
                CommandBody::login(user.clone(), password.expose().to_owned())
                    .map_err(|_| Error::Encode("LOGIN user name or password"))?
            }
            Self::Authenticate {
                mechanism,
                initial_response,
            } => {
                let mechanism = AuthMechanism::try_from(mechanism.clone())
                    .map_err(|_| Error::Encode("mechanism name"))?;
                match initial_response {
                    None => CommandBody::authenticate(mechanism),
                    Some(ir) => {
                        let data =
                            portcullis_sasl::framing::decode_initial_response(Some(ir.as_bytes()))
                                .map_err(|_| Error::Encode("initial response"))?
                                .unwrap_or_default();
                        CommandBody::authenticate_with_ir(mechanism, data.to_vec())
                    }
                }
            }
            Self::Id(params) => CommandBody::Id {
                parameters: match params {
                    None => None,
                    Some(list) => Some(
                        list.iter()
                            .map(|(k, v)| {
                                let k = IString::try_from(k.clone())
                                    .map_err(|_| Error::Encode("ID field"))?;
                                let v = match v {
                                    None => NString(None),
                                    Some(v) => NString(Some(
                                        IString::try_from(v.clone())
                                            .map_err(|_| Error::Encode("ID value"))?,
                                    )),
                                };
                                Ok((k, v))
                            })
                            .collect::<Result<Vec<_>, Error>>()?,
                    ),
                },
            },
            Self::Other(_) => return Err(Error::Encode("unknown command")),
        };
        CodecCommand::new(tag.to_owned(), body).map_err(|_| Error::Encode("tag"))
    }

    /// Encodes the command with `tag`, literals inline (as a client that
    /// received every continuation would send it).
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] as for a value IMAP cannot carry.
    pub fn encode(&self, tag: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
        let command = self.to_codec(tag)?;
        let mut out = Zeroizing::new(Vec::new());
        for piece in crate::wire::command_pieces(&command) {
            match piece {
                crate::wire::Piece::Line(l) => out.extend_from_slice(&l),
                crate::wire::Piece::Literal { data, .. } => out.extend_from_slice(&data),
            }
        }
        Ok(out)
    }
}
