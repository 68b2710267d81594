#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod conf;
pub mod dn;
mod error;
pub mod escape;
pub mod plan;

pub use conf::{CertMap, CertMapConfig, Component, Comps};
pub use dn::{AttributeType, AttributeValue, Ava, Dn};
pub use error::Error;
pub use plan::{ClientCert, MappingPlan, Scope, SearchBase, SubjectAttr, default_plan, plan};
pub use x509_cert;
