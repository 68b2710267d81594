#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cache;
mod error;
pub mod guard;
pub mod key;
pub mod relay;
mod secret;
pub mod settings;
mod time;

pub use cache::{
    AuthCache, Authorization, CacheSettings, Lookup, MemoryStore, PopAuthStore, RedisStore,
    UserName,
};
pub use error::Error;
pub use key::{AddressGrouping, ClientKey};
pub use secret::Secret;
pub use settings::Settings;
pub use time::Timestamp;

pub use redis;
pub use rustls;
