//! The relay side: the pool of `SmtpRelays`, the hand-off of the real
//! client (XCLIENT or PROXY protocol), the EHLO keyword filter, and the
//! sans-I/O reply parser.
//!
//! ```text
//!  client ──► front end (smtpd) ──► RelayPool::connect ──► relay 1 ✗ (skipped N min)
//!                                                      └─► relay 2 ✓
//!           [PROXY header] 220 ◄─ EHLO ─ [STARTTLS, EHLO] ─ XCLIENT ─ 220 ◄─ EHLO
//! ```

pub mod ehlo;
pub mod lookup;
pub mod pool;
pub mod proxy;
pub mod reply;
mod tls;
pub mod validate;
pub mod xclient;

pub use ehlo::{DEFAULT_EHLO_KEYWORDS, EhloFilter};
pub use lookup::{ForwardLookup, ReverseResolver, SystemResolver, confirmed_name};
pub use pool::{
    Clock, Handoff, ManualClock, RelayAddr, RelayPool, RelayPoolBuilder, RelaySession, RelaySpec,
    RelayStream, SystemClock, TlsPolicy, parse_relays,
};
pub use reply::{Reply, ReplyError, ReplyParser};
pub use xclient::{ClientInfo, ClientName, Proto};
