//! The parsed form of the filter language.
//!
//! Every type here displays as text that [`crate::parse_file`] /
//! [`crate::parse_ldap`] parse back into an equal value.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

/// What a filter does when it matches: the `+`/`-` of the LDAP form, or
/// which list (allow or deny) a file-form filter came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// An Allow filter: a match grants access.
    Allow,
    /// A Deny filter: a match denies access.
    Deny,
}

impl Action {
    /// The sign used in the LDAP attribute form.
    pub fn sign(self) -> char {
        match self {
            Action::Allow => '+',
            Action::Deny => '-',
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Allow => "allow",
            Action::Deny => "deny",
        })
    }
}

/// Where a filter came from in its source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Origin {
    /// 1-based line of the filter's first character.
    pub line: u32,
    /// 1-based column (in characters) of the filter's first character.
    pub column: u32,
    /// 1-based number of the filter within its source (the `$`-separated
    /// rule number in the LDAP form, the filter count in a file).
    pub rule: u32,
}

/// One filter: `serviceList: clientList`, with its action.
#[derive(Debug, Clone)]
pub struct Filter {
    /// Allow or deny.
    pub action: Action,
    /// The services (daemon names, optionally `@server`) it applies to.
    pub services: List<ServiceSpec>,
    /// The clients it matches.
    pub clients: List<ClientSpec>,
    /// Where it came from.
    pub origin: Origin,
}

impl Filter {
    /// Whether two filters say the same thing (ignores [`Origin`]).
    pub fn same_as(&self, other: &Filter) -> bool {
        self.action == other.action
            && self.services == other.services
            && self.clients == other.clients
    }

    /// Writes the filter in LDAP attribute form (`+imap:ALL`).
    pub fn to_ldap_string(&self) -> String {
        format!("{}{}", self.action.sign(), self)
    }
}

impl fmt::Display for Filter {
    /// The file form, without the action: `imap, pop: .example.com`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.services, self.clients)
    }
}

/// A list with right-nested exceptions: `items EXCEPT (except)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct List<T> {
    /// The entries; the list matches when any of them does…
    pub items: Vec<T>,
    /// …unless the exception list matches too.
    pub except: Option<Box<List<T>>>,
}

impl<T> List<T> {
    /// A list without exceptions.
    pub fn of(items: Vec<T>) -> Self {
        List {
            items,
            except: None,
        }
    }

    /// Number of `EXCEPT` levels below this one.
    pub fn depth(&self) -> usize {
        self.except.as_ref().map_or(0, |e| 1 + e.depth())
    }
}

impl<T: fmt::Display> fmt::Display for List<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{item}")?;
        }
        if let Some(except) = &self.except {
            write!(f, " EXCEPT {except}")?;
        }
        Ok(())
    }
}

/// `service` or `service@hostSpec`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServiceSpec {
    /// The daemon (service) name pattern.
    pub daemon: Word,
    /// The server endpoint the client connected to, for multi-homed hosts.
    pub server: Option<HostPattern>,
}

impl fmt::Display for ServiceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.daemon)?;
        if let Some(server) = &self.server {
            write!(f, "@{server}")?;
        }
        Ok(())
    }
}

/// `hostSpec` or `user@hostSpec`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientSpec {
    /// The user name (RFC 1413) pattern, when given.
    pub user: Option<Word>,
    /// The client host pattern.
    pub host: HostPattern,
}

impl fmt::Display for ClientSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        write!(f, "{}", self.host)
    }
}

/// A pattern for a daemon (service) name or a user name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Word {
    /// `ALL` or `*`: anything.
    All,
    /// `KNOWN`: a user whose name is known (users only).
    Known,
    /// `UNKNOWN`: a user whose name is unknown (users only).
    Unknown,
    /// A `*`/`?` glob (stored lower-case).
    Glob(String),
    /// A literal name (stored lower-case).
    Literal(String),
}

impl fmt::Display for Word {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Word::All => f.write_str("ALL"),
            Word::Known => f.write_str("KNOWN"),
            Word::Unknown => f.write_str("UNKNOWN"),
            Word::Glob(s) | Word::Literal(s) => f.write_str(s),
        }
    }
}

/// A pattern for a host (client, or server in `service@host`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// `ALL` or `*`.
    All,
    /// `KNOWN`: address and (forward-confirmed) name are known.
    Known,
    /// `UNKNOWN`: address or name is unknown.
    Unknown,
    /// `LOCAL`: a known name without a dot.
    Local,
    /// `DNSSPOOFER` (tcp_wrappers: `PARANOID`): the name does not map back
    /// to the address.
    DnsSpoofer,
    /// `@netgroup`: a host member of the netgroup (case-sensitive).
    Netgroup(String),
    /// `.example.com`: names ending in the suffix (stored with the dot).
    Suffix(String),
    /// `192.168.`: addresses whose text starts with the prefix.
    AddrPrefix(String),
    /// `host.`: names starting with the prefix (non-numeric trailing dot).
    NamePrefix(String),
    /// `n.n.n.n/m.m.m.m`: `address & mask == net`.
    NetMask {
        /// The network.
        net: Ipv4Addr,
        /// The mask.
        mask: Ipv4Addr,
    },
    /// `n.n.n.n/len` or `[v6net]/len`.
    Net {
        /// The network.
        net: IpAddr,
        /// The prefix length.
        len: u8,
    },
    /// A single address: `n.n.n.n` or `[v6]`.
    Addr(IpAddr),
    /// A `*`/`?` glob over names and addresses (stored lower-case).
    Glob(String),
    /// A literal host name (stored lower-case).
    Name(String),
}

impl HostPattern {
    /// Whether matching this pattern needs the host's name (so a DNS lookup)
    /// — as opposed to its address only.
    pub fn needs_name(&self) -> bool {
        !matches!(
            self,
            HostPattern::All
                | HostPattern::AddrPrefix(_)
                | HostPattern::NetMask { .. }
                | HostPattern::Net { .. }
                | HostPattern::Addr(_)
        )
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::All => f.write_str("ALL"),
            HostPattern::Known => f.write_str("KNOWN"),
            HostPattern::Unknown => f.write_str("UNKNOWN"),
            HostPattern::Local => f.write_str("LOCAL"),
            HostPattern::DnsSpoofer => f.write_str("DNSSPOOFER"),
            HostPattern::Netgroup(n) => write!(f, "@{n}"),
            HostPattern::Suffix(s)
            | HostPattern::AddrPrefix(s)
            | HostPattern::NamePrefix(s)
            | HostPattern::Glob(s)
            | HostPattern::Name(s) => f.write_str(s),
            HostPattern::NetMask { net, mask } => write!(f, "{net}/{mask}"),
            HostPattern::Net {
                net: IpAddr::V4(net),
                len,
            } => write!(f, "{net}/{len}"),
            HostPattern::Net {
                net: IpAddr::V6(net),
                len,
            } => write!(f, "[{net}]/{len}"),
            HostPattern::Addr(IpAddr::V4(a)) => write!(f, "{a}"),
            HostPattern::Addr(IpAddr::V6(a)) => write!(f, "[{a}]"),
        }
    }
}
