//! What a decision is asked about: the connection's endpoints, and the
//! lookups done so far.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// The outcome of a host-name lookup (reverse DNS, then forward DNS to
/// confirm that the name maps back to the address).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum NameLookup {
    /// Not looked up yet; a rule that needs it asks for it.
    #[default]
    NotDone,
    /// The name, confirmed by the forward lookup.
    Verified(String),
    /// The address has a name, but the name does not map back to the
    /// address (what `DNSSPOOFER` matches; tcp_wrappers' `paranoid`).
    Mismatch(String),
    /// The address has no name.
    Unknown,
    /// The lookup failed temporarily (timeout, server failure).
    Tempfail,
}

impl NameLookup {
    /// A name given by the caller (not looked up): trusted as verified,
    /// lower-cased. The empty string and `unknown` mean [`NameLookup::Unknown`].
    pub fn given(name: &str) -> Self {
        let name = name.trim_end_matches('.');
        if name.is_empty() || name.eq_ignore_ascii_case("unknown") {
            NameLookup::Unknown
        } else {
            NameLookup::Verified(name.to_ascii_lowercase())
        }
    }
}

/// The outcome of an RFC 1413 (ident) user lookup.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum UserLookup {
    /// Not looked up yet.
    #[default]
    NotDone,
    /// The user name the client's identd returned.
    Known(String),
    /// No user name (no identd, or an error reply).
    Unknown,
    /// The lookup failed temporarily.
    Tempfail,
}

impl UserLookup {
    /// A user name given by the caller, lower-cased. The empty string and
    /// `unknown` mean [`UserLookup::Unknown`].
    pub fn given(user: &str) -> Self {
        if user.is_empty() || user.eq_ignore_ascii_case("unknown") {
            UserLookup::Unknown
        } else {
            UserLookup::Known(user.to_ascii_lowercase())
        }
    }
}

/// One end of the connection.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Endpoint {
    addr: Option<IpAddr>,
    addr_text: String,
    port: Option<u16>,
    name: NameLookup,
}

impl Endpoint {
    /// An endpoint with a known address (IPv4-mapped IPv6 addresses count
    /// as IPv4).
    pub fn new(addr: IpAddr) -> Self {
        let addr = normalize(addr);
        Endpoint {
            addr: Some(addr),
            addr_text: addr.to_string(),
            port: None,
            name: NameLookup::NotDone,
        }
    }

    /// An endpoint whose address is unknown.
    pub fn unknown() -> Self {
        Endpoint {
            addr: None,
            addr_text: String::new(),
            port: None,
            name: NameLookup::Unknown,
        }
    }

    /// The address, when known.
    pub fn addr(&self) -> Option<IpAddr> {
        self.addr
    }

    /// The address as text (empty when unknown).
    pub fn addr_text(&self) -> &str {
        &self.addr_text
    }

    /// The port, when known.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The name lookup's state.
    pub fn name(&self) -> &NameLookup {
        &self.name
    }

    /// Sets the port.
    pub fn set_port(&mut self, port: u16) {
        self.port = Some(port);
    }

    /// Records the name lookup's outcome (names are lower-cased).
    pub fn set_name(&mut self, name: NameLookup) {
        self.name = match name {
            NameLookup::Verified(n) => NameLookup::Verified(n.to_ascii_lowercase()),
            NameLookup::Mismatch(n) => NameLookup::Mismatch(n.to_ascii_lowercase()),
            other => other,
        };
    }
}

fn normalize(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The services with a TLS-only name: `(base, tls name)`.
///
/// A query always carries the base name (`imap`); whether the connection is
/// TLS-protected is a separate flag ([`Query::tls`]). In a filter's service
/// list the base name matches every connection to the service, plain or
/// TLS, and the TLS name only the TLS-protected ones (implicit TLS, or a
/// query made after STARTTLS). So the Sun example
/// `+imaps,pops:ALL$+imap,pop:proxy.example.com` means "TLS from anywhere,
/// plain only from the proxy": a filter naming `imaps` applies to the IMAP
/// service, which makes it allow-only, and a plain connection from
/// elsewhere matches nothing and is denied. An IMAPS connection is governed
/// by the `service.imap.*` parameters.
pub const SERVICE_NAMES: [(&str, &str); 4] = [
    ("imap", "imaps"),
    ("pop", "pops"),
    ("smtp", "smtps"),
    ("http", "https"),
];

/// The base name of a service name and whether the name itself asks for
/// TLS: `imaps` → (`imap`, true), `imap` → (`imap`, false). `pop3` and
/// `pop3s` are read as `pop` and `pops`. Other names are their own base.
/// Expects a lower-case name.
pub fn base_service(name: &str) -> (&str, bool) {
    if name == "pop3" {
        return ("pop", false);
    }
    if name == "pop3s" {
        return ("pop", true);
    }
    for (base, tls) in SERVICE_NAMES {
        if name == tls {
            return (base, true);
        }
    }
    (name, false)
}

/// The TLS-only name of a base service name (`imap` → `imaps`).
pub(crate) fn tls_name_of(base: &str) -> Option<&'static str> {
    SERVICE_NAMES
        .iter()
        .find(|(b, _)| *b == base)
        .map(|(_, t)| *t)
}

/// A request for access: the service, both endpoints and the user.
///
/// Lookups are lazy: fields start as [`NameLookup::NotDone`] /
/// [`UserLookup::NotDone`], and the evaluator asks for a lookup only when a
/// decision depends on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The base service name.
    service: String,
    /// Whether the connection is TLS-protected.
    tls: bool,
    /// The client end.
    client: Endpoint,
    /// The server end (the address the client connected to).
    server: Endpoint,
    user: UserLookup,
    /// Netgroup answers so far: (netgroup, host, member or `None` for a
    /// temporary failure).
    netgroups: Vec<(String, String, Option<bool>)>,
    /// Set by [`Query::without_lookups`]: what was not asked counts as
    /// unknown (not a member).
    lookups_off: bool,
    /// Netgroup membership not asked yet can no longer be asked: it counts
    /// as a temporary failure.
    netgroups_failed: bool,
}

impl Query {
    /// The query for a connection accepted on `local` from `peer`: both
    /// endpoints with their ports, so `service@host` rules and ident
    /// lookups always have what they need. `service` is lower-cased; a TLS
    /// name (`imaps`, `pops`, `smtps`, `https`) sets [`Query::is_tls`] and
    /// is stored as its base name (see [`SERVICE_NAMES`]).
    pub fn for_connection(service: &str, peer: SocketAddr, local: SocketAddr) -> Self {
        let mut client = Endpoint::new(peer.ip());
        client.set_port(peer.port());
        let mut server = Endpoint::new(local.ip());
        server.set_port(local.port());
        Query::with_endpoints(service, client, server)
    }

    /// A query with both endpoints given. For tools that ask "what if"
    /// (`filtertest`): pass [`Endpoint::unknown`] for a server end that is
    /// really unknown, and `service@host` rules then match only `ALL` and
    /// `UNKNOWN` hosts. A daemon uses [`Query::for_connection`].
    pub fn with_endpoints(service: &str, client: Endpoint, server: Endpoint) -> Self {
        let service = service.to_ascii_lowercase();
        let (base, tls) = base_service(&service);
        Query {
            service: base.to_owned(),
            tls,
            client,
            server,
            user: UserLookup::NotDone,
            netgroups: Vec::new(),
            lookups_off: false,
            netgroups_failed: false,
        }
    }

    /// Marks the connection as TLS-protected or not (builder style): an
    /// implicit-TLS port, or a query made again after STARTTLS.
    #[must_use]
    pub fn tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }

    /// Whether the connection is TLS-protected.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The service's base name (`imap` for an IMAPS connection too).
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The client end.
    pub fn client(&self) -> &Endpoint {
        &self.client
    }

    /// The client end, to record lookups.
    pub fn client_mut(&mut self) -> &mut Endpoint {
        &mut self.client
    }

    /// The server end.
    pub fn server(&self) -> &Endpoint {
        &self.server
    }

    /// The server end, to record lookups.
    pub fn server_mut(&mut self) -> &mut Endpoint {
        &mut self.server
    }

    /// The user lookup's state.
    pub fn user(&self) -> &UserLookup {
        &self.user
    }

    /// Sets the client's name (builder style).
    #[must_use]
    pub fn client_name(mut self, name: NameLookup) -> Self {
        self.client.set_name(name);
        self
    }

    /// Sets the server endpoint (builder style).
    #[must_use]
    pub fn server_endpoint(mut self, server: Endpoint) -> Self {
        self.server = server;
        self
    }

    /// Records the user lookup's outcome (builder style).
    #[must_use]
    pub fn user_lookup(mut self, user: UserLookup) -> Self {
        self.set_user(user);
        self
    }

    /// Records the user lookup's outcome (user names are lower-cased).
    pub fn set_user(&mut self, user: UserLookup) {
        self.user = match user {
            UserLookup::Known(u) => UserLookup::Known(u.to_ascii_lowercase()),
            other => other,
        };
    }

    /// The verified host names of the client and the server ends (what
    /// netgroup membership is asked about).
    pub fn verified_names(&self) -> Vec<String> {
        [self.client.name(), self.server.name()]
            .into_iter()
            .filter_map(|n| match n {
                NameLookup::Verified(n) => Some(n.clone()),
                _ => None,
            })
            .collect()
    }

    /// Records whether `host` (a verified name) is a member of `netgroup`;
    /// `None` records a temporary failure.
    pub fn record_netgroup(&mut self, netgroup: &str, host: &str, member: Option<bool>) {
        let host = host.to_ascii_lowercase();
        match self
            .netgroups
            .iter_mut()
            .find(|(g, h, _)| g == netgroup && *h == host)
        {
            Some(entry) => entry.2 = member,
            None => self.netgroups.push((netgroup.to_owned(), host, member)),
        }
    }

    /// The recorded netgroup answer: `None` when not asked yet,
    /// `Some(None)` for a temporary failure.
    pub fn netgroup_answer(&self, netgroup: &str, host: &str) -> Option<Option<bool>> {
        self.netgroups
            .iter()
            .find(|(g, h, _)| g == netgroup && h == host)
            .map(|(_, _, m)| *m)
    }

    /// Makes every netgroup answer not recorded yet a temporary failure
    /// (the membership could not be asked).
    pub fn fail_netgroups(&mut self) {
        self.netgroups_failed = true;
    }

    /// Whether unrecorded netgroup answers are temporary failures
    /// ([`Query::fail_netgroups`]).
    pub fn netgroups_failed(&self) -> bool {
        self.netgroups_failed
    }

    /// Whether lookups not done count as unknown ([`Query::without_lookups`]).
    pub fn lookups_off(&self) -> bool {
        self.lookups_off
    }

    /// Marks every lookup not done yet as unknown (no DNS, no ident, no
    /// netgroup membership).
    pub fn without_lookups(&mut self) {
        for ep in [&mut self.client, &mut self.server] {
            if ep.name == NameLookup::NotDone {
                ep.name = NameLookup::Unknown;
            }
        }
        if self.user == UserLookup::NotDone {
            self.user = UserLookup::Unknown;
        }
        self.lookups_off = true;
    }
}

/// A lookup the evaluator needs before it can decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Need {
    /// The server address's name (for `service@host` rules).
    ServerName,
    /// The client address's name (reverse + forward DNS).
    ClientName,
    /// The client's user name (RFC 1413).
    User,
    /// Netgroup membership of the verified host names.
    Netgroups,
}

impl fmt::Display for Need {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Need::ServerName => "server host name",
            Need::ClientName => "client host name",
            Need::User => "client user name",
            Need::Netgroups => "netgroup membership",
        })
    }
}
