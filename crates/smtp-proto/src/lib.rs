#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod command;
mod data;
pub mod domain;
mod error;
pub mod reply;
pub mod server;

pub use client::{Abort, ClientEvent, Sent, Transaction, queue_id};
pub use command::{Body, Command, MailFrom, Notify, RcptTo, Ret};
pub use data::{BareNewline, DataScanner, DotStuffer, Framing, Limits, MAX_TEXT_LINE, Violation};
pub use error::Error;
pub use portcullis_popbeforesmtp::relay::{Reply, ReplyParser};
pub use server::{Event, MAX_COMMAND_LINE, SERVER_PARAMETERS, ServerConfig, ServerSession};
