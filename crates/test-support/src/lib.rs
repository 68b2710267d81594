//! Test fixtures for Portcullis: real services on loopback.
pub mod postfix;
