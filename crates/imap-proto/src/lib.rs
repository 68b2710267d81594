#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod capability;
pub mod client;
pub mod code;
pub mod command;
mod error;
mod reader;
pub mod server;
mod wire;

pub use client::{ClientConfig, ClientEvent, ClientSession, Login, ProxyId};
pub use code::{ResponseCode, Status, StatusKind};
pub use command::Command;
pub use error::Error;
/// Re-exported: the parser and encoder underneath.
pub use imap_codec;
pub use portcullis_sasl::Password;
pub use server::{Event, ServerConfig, ServerSession, refusal_greeting};
