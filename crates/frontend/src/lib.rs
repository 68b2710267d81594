#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod backend;
mod error;
pub mod limits;
pub mod net;
pub mod penalty;
pub mod proxy_protocol;
pub mod relay;

pub use backend::{Backend, ClientIdentity, StoreAddress, StoreSession};
pub use error::Error;
pub use limits::{ConnLimits, ConnectionGate, Limits, Permit, Refusal};
pub use net::{ClientKey, NetworkList};
pub use penalty::Penalty;
pub use proxy_protocol::{ProxyHeader, ProxyPolicy};
pub use relay::{RelayOutcome, relay};

pub use portcullis_config as config;
pub use redis;
