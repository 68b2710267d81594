#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod ast;
mod checker;
mod error;
mod eval;
mod index;
pub mod lint;
mod lookup;
#[cfg(feature = "tokio")]
pub mod net;
mod parse;
mod query;
mod set;

pub use crate::ast::{Action, ClientSpec, Filter, HostPattern, List, Origin, ServiceSpec, Word};
pub use crate::error::{Error, SyntaxErrorKind};
pub use crate::eval::{Decision, Match, NetgroupProvider, Outcome, Reason, Verdict};
pub use crate::lookup::{
    BoxFuture, DnsAnswer, Family, IdentLookup, Lookups, Resolver, lookup_name,
};
pub use crate::parse::{
    MAX_EXCEPT_DEPTH, MAX_INPUT, parse_file, parse_filter_list, parse_ldap, validate_filter_value,
};
pub use crate::query::{
    Endpoint, NameLookup, Need, Query, SERVICE_NAMES, UserLookup, base_service,
};
pub use crate::set::{Combined, FilterSet, FilterSetBuilder, Level, combine, perform};

/// Service names Portcullis knows (the schema's list); `filtercheck`
/// warns about others.
pub const KNOWN_SERVICES: &[&str] = &[
    "imap", "imaps", "pop", "pops", "smtp", "smtps", "http", "https", "smime",
];
