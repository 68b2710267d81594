#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod backend;
pub mod cli;
mod error;
pub mod imap;
pub mod limits;
pub mod listen;
pub mod metrics;
pub mod net;
pub mod penalty;
pub mod pop3;
pub mod proxy_protocol;
pub mod relay;
mod reload;
mod run;
mod session;
pub mod smtp;

pub use backend::{Backend, ClientIdentity, StoreAddress, StoreSession};
pub use error::Error;
pub use limits::{ConnLimits, ConnectionGate, Limits, Permit, Refusal};
pub use metrics::{MessageResult, Metrics, ServiceMetrics};
pub use net::{ClientKey, NetworkList};
pub use penalty::Penalty;
pub use proxy_protocol::{ProxyHeader, ProxyPolicy};
pub use relay::{RelayOutcome, relay};
pub use reload::Reloads;
pub use run::{SHUTDOWN_GRACE, check, run};

pub use portcullis_config as config;
pub use portcullis_tlsconf::Service;
pub use redis;
