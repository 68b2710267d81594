#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod code;
pub mod command;
mod error;
mod line;
pub mod server;

pub use client::{ClientConfig, ClientEvent, ClientSession, Login};
pub use code::{Response, ResponseCode};
pub use command::Command;
pub use error::Error;
pub use portcullis_sasl::Password;
pub use server::{Event, ServerConfig, ServerSession};
