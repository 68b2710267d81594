//! Benchmarks live in `benches/benches/` (criterion) and in `src/bin/`
//! (side-by-side runs against the peers, started by
//! `benches/scripts/*.sh`); this library holds what the latter share.

pub mod imapload;
pub mod procstat;
