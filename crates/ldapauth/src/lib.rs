#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cache;
mod directory;
mod error;
pub mod filter;
mod md5crypt;
mod pool;
mod sasl_impl;
pub mod scheme;
mod settings;
mod source;
pub mod userfile;

pub use directory::{Directory, Entry, User, canonical_identity};
pub use error::{Error, Reject};
pub use filter::{FilterTemplate, parse_filter};
pub use portcullis_certmap as certmap;
pub use portcullis_sasl::Password;
pub use scheme::{NewScheme, Scheme, SchemeError};
pub use settings::{DEFAULT_SEARCH_FILTER, Settings, VerifyMode};
pub use source::UserSource;
pub use userfile::{FileUser, UserFile, UserFileOptions, Users};
