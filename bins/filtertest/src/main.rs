//! `filtertest`: which access does a client get? (like tcp_wrappers'
//! `tcpdmatch`).
//!
//! ```text
//! filtertest [--allow FILE] [--deny FILE] [--config FILE] SERVICE[@SERVER] [USER@]CLIENT
//! filtertest [...] --batch < queries
//! ```
//!
//! Prints `granted`, `denied` or `tempfail` and the explanation; exits 0
//! (granted), 1 (denied), 3 (tempfail) or 2 (usage or syntax error).
// The argument docs are clap's help text, where `name[address]` is literal.
#![allow(rustdoc::broken_intra_doc_links)]

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use portcullis_accessfilter::net::{DnsResolver, IdentClient};
use portcullis_accessfilter::{
    Action, Combined, DnsAnswer, Endpoint, Family, FilterSet, FilterSetBuilder, Level, Lookups,
    NameLookup, Query, Resolver, UserLookup, Verdict, combine, parse_file, parse_ldap,
};

/// Check which access a client gets under the client access filters.
#[derive(Debug, Parser)]
#[command(name = "filtertest", version)]
struct Args {
    /// Allow filters, file form.
    #[arg(long, value_name = "FILE")]
    allow: Option<PathBuf>,
    /// Deny filters, file form.
    #[arg(long, value_name = "FILE")]
    deny: Option<PathBuf>,
    /// Take the service level from `service.<svc>.domainallowed` /
    /// `domainnotallowed` in this Portcullis configuration file.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["allow", "deny"])]
    config: Option<PathBuf>,
    /// A domain-level filter (LDAP form, as in mailDomainAllowedServiceAccess).
    #[arg(long, value_name = "VALUE")]
    domain_filter: Option<String>,
    /// A user-level filter (LDAP form, as in mailAllowedServiceAccess).
    #[arg(long, value_name = "VALUE")]
    user_filter: Option<String>,
    /// Do no DNS and no ident lookup: a missing name or user is unknown.
    #[arg(long)]
    no_lookups: bool,
    /// Read queries from standard input, one per line:
    /// `SERVICE CLIENT_ADDR [CLIENT_NAME] [USER]` (`-` for "not given");
    /// print one verdict word per line.
    #[arg(long)]
    batch: bool,
    /// Name server to ask (ADDRESS:PORT; repeatable) instead of the system's
    /// resolv.conf.
    #[arg(long, value_name = "ADDR:PORT")]
    dns_server: Vec<std::net::SocketAddr>,
    /// Time limit of one DNS lookup, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    dns_timeout: u64,
    /// Time limit of an ident lookup, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    ident_timeout: u64,
    /// The client's port (with --server-port and a server address, enables
    /// an ident lookup when a rule needs the user).
    #[arg(long, value_name = "PORT")]
    client_port: Option<u16>,
    /// The server's port.
    #[arg(long, value_name = "PORT")]
    server_port: Option<u16>,
    /// SERVICE or SERVICE@SERVER (SERVER: address, name or name[address]).
    service: Option<String>,
    /// CLIENT or USER@CLIENT (CLIENT: address, name or name[address]).
    client: Option<String>,
}

const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    match run(&args) {
        Ok(code) => ExitCode::from(code),
        Err(msg) => {
            eprintln!("filtertest: {msg}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Where the service-level filters come from.
enum Service {
    Files(Box<FilterSet>),
    Config(Box<portcullis_config::Config>),
    None,
}

struct Policy {
    service: Service,
    per_service: HashMap<String, FilterSet>,
    domain: Option<FilterSet>,
    user: Option<FilterSet>,
}

fn read(path: &PathBuf) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn load(args: &Args) -> Result<Policy, String> {
    let service = if let Some(cfg) = &args.config {
        Service::Config(Box::new(
            portcullis_config::Config::load(cfg).map_err(|e| format!("{}: {e}", cfg.display()))?,
        ))
    } else if args.allow.is_some() || args.deny.is_some() {
        let mut b = FilterSetBuilder::new();
        if let Some(p) = &args.allow {
            let name = p.display().to_string();
            let f = parse_file(&read(p)?, Action::Allow).map_err(|e| format!("{name}:{e}"))?;
            b = b.filters(&name, f);
        }
        if let Some(p) = &args.deny {
            let name = p.display().to_string();
            let f = parse_file(&read(p)?, Action::Deny).map_err(|e| format!("{name}:{e}"))?;
            b = b.filters(&name, f);
        }
        Service::Files(Box::new(b.build()))
    } else {
        Service::None
    };
    let attr = |name: &str, v: &Option<String>| -> Result<Option<FilterSet>, String> {
        v.as_deref()
            .map(|v| {
                parse_ldap(v)
                    .map(|f| FilterSetBuilder::new().filters(name, f).build())
                    .map_err(|e| format!("{name}:{e}"))
            })
            .transpose()
    };
    let domain = attr("mailDomainAllowedServiceAccess", &args.domain_filter)?;
    let user = attr("mailAllowedServiceAccess", &args.user_filter)?;
    if matches!(service, Service::None) && domain.is_none() && user.is_none() {
        return Err(
            "no filters: give --allow/--deny, --config, --domain-filter or --user-filter".into(),
        );
    }
    Ok(Policy {
        service,
        per_service: HashMap::new(),
        domain,
        user,
    })
}

impl Policy {
    /// The service-level set for `service`.
    fn service_set(&mut self, service: &str) -> Result<Option<&FilterSet>, String> {
        match &self.service {
            Service::None => Ok(None),
            Service::Files(set) => Ok(Some(&**set)),
            Service::Config(cfg) => {
                if !self.per_service.contains_key(service) {
                    let mut b = FilterSetBuilder::new();
                    for sf in cfg.service_filters(service).map_err(|e| e.to_string())? {
                        let f = sf.filters.map_err(|e| format!("{}:{e}", sf.parameter))?;
                        b = b.filters(&sf.parameter, f);
                    }
                    self.per_service.insert(service.to_owned(), b.build());
                }
                Ok(self.per_service.get(service))
            }
        }
    }
}

struct Env {
    runtime: Option<tokio::runtime::Runtime>,
    resolver: Option<DnsResolver>,
    ident: IdentClient,
    no_lookups: bool,
    /// Set when the address of a client given by name could not be looked
    /// up for now: the verdict is then `tempfail`, never a guess.
    address_tempfail: std::cell::Cell<bool>,
}

impl Env {
    fn new(args: &Args) -> Result<Self, String> {
        if args.no_lookups {
            return Ok(Env {
                runtime: None,
                resolver: None,
                ident: IdentClient::new(),
                no_lookups: true,
                address_tempfail: std::cell::Cell::new(false),
            });
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("runtime: {e}"))?;
        let timeout = Duration::from_secs(args.dns_timeout.max(1));
        let resolver = {
            let _guard = runtime.enter();
            let built = if args.dns_server.is_empty() {
                DnsResolver::from_system(timeout)
            } else {
                DnsResolver::with_servers(&args.dns_server, timeout)
            };
            match built {
                Ok(r) => Some(r),
                Err(e) => {
                    eprintln!("filtertest: warning: {e}; host names count as unknown");
                    None
                }
            }
        };
        Ok(Env {
            runtime: Some(runtime),
            resolver,
            ident: IdentClient::new().with_timeout(Duration::from_secs(args.ident_timeout.max(1))),
            no_lookups: false,
            address_tempfail: std::cell::Cell::new(false),
        })
    }

    /// Evaluates every level, doing lookups as needed.
    fn decide(&self, policy: &mut Policy, q: &mut Query) -> Result<Combined, String> {
        if self.no_lookups {
            q.without_lookups();
        }
        let service = q.service().to_owned();
        let mut levels = Vec::new();
        let mut sets: Vec<(Level, &FilterSet)> = Vec::new();
        // Build the service set first (needs &mut), then borrow all.
        policy.service_set(&service)?;
        let svc = match &policy.service {
            Service::None => None,
            Service::Files(set) => Some(&**set),
            Service::Config(_) => policy.per_service.get(&service),
        };
        if let Some(s) = svc {
            sets.push((Level::Service, s));
        }
        if let Some(s) = &policy.domain {
            sets.push((Level::Domain, s));
        }
        if let Some(s) = &policy.user {
            sets.push((Level::User, s));
        }
        for (level, set) in sets {
            let decision = match &self.runtime {
                Some(rt) => {
                    let lookups = Lookups {
                        resolver: self.resolver.as_ref().map(|r| r as &dyn Resolver),
                        ident: Some(&self.ident),
                    };
                    rt.block_on(set.decide(q, &lookups))
                }
                None => set.decide_offline(q),
            };
            levels.push((level, decision));
        }
        Ok(combine(levels))
    }

    /// Forward lookup of a client given by name only.
    fn address_of(&self, name: &str) -> Option<IpAddr> {
        let (rt, r) = (self.runtime.as_ref()?, self.resolver.as_ref()?);
        // IPv4 first, then IPv6 (a name with both is asked about by its
        // IPv4 address, as a dual-stack client usually connects).
        for family in [Family::V4, Family::V6] {
            match rt.block_on(r.forward(name, family)) {
                DnsAnswer::Found(addrs) => return addrs.first().copied(),
                DnsAnswer::NotFound => {}
                DnsAnswer::Tempfail => {
                    self.address_tempfail.set(true);
                    return None;
                }
            }
        }
        None
    }
}

/// `address`, `name` or `name[address]`.
fn endpoint(spec: &str, env: &Env) -> Result<Endpoint, String> {
    if let Some((name, rest)) = spec.split_once('[') {
        let addr = rest
            .strip_suffix(']')
            .and_then(|a| a.parse::<IpAddr>().ok())
            .ok_or_else(|| format!("bad address in `{spec}`"))?;
        let mut e = Endpoint::new(addr);
        // `[2001:db8::1]` is an address alone: its name is looked up as
        // for a bare address, not taken to be "unknown".
        if !name.is_empty() {
            e.set_name(NameLookup::given(name));
        }
        return Ok(e);
    }
    let bare = spec.trim_start_matches('[').trim_end_matches(']');
    if let Ok(addr) = bare.parse::<IpAddr>() {
        return Ok(Endpoint::new(addr));
    }
    if spec.is_empty() || spec.eq_ignore_ascii_case("unknown") {
        return Ok(Endpoint::unknown());
    }
    let name = NameLookup::given(spec);
    let mut e = match env.address_of(spec) {
        Some(addr) => Endpoint::new(addr),
        None => Endpoint::unknown(),
    };
    e.set_name(name);
    Ok(e)
}

fn query(service_spec: &str, client_spec: &str, args: &Args, env: &Env) -> Result<Query, String> {
    let (service, server) = match service_spec.split_once('@') {
        Some((s, srv)) => (s, Some(endpoint(srv, env)?)),
        None => (service_spec, None),
    };
    if service.is_empty() {
        return Err("empty service name".into());
    }
    let (user, client) = match client_spec.split_once('@') {
        Some((u, c)) => (Some(u), c),
        None => (None, client_spec),
    };
    let mut client = endpoint(client, env)?;
    if let Some(p) = args.client_port {
        client.set_port(p);
    }
    // The server end is what `service@address` names; without it, it is
    // unknown and `service@host` rules match only ALL and UNKNOWN hosts.
    let mut server = server.unwrap_or_else(Endpoint::unknown);
    if let Some(p) = args.server_port {
        server.set_port(p);
    }
    let mut q = Query::with_endpoints(service, client, server);
    if let Some(u) = user {
        q.set_user(UserLookup::given(u));
    }
    Ok(q)
}

fn exit_code(v: Verdict) -> u8 {
    match v {
        Verdict::Allow => 0,
        Verdict::Deny => 1,
        Verdict::Tempfail => 3,
    }
}

fn describe(q: &Query) -> String {
    let name = match q.client().name() {
        NameLookup::Verified(n) => n.clone(),
        NameLookup::Mismatch(n) => format!("{n} (does not map back to the address)"),
        NameLookup::Unknown => "unknown".into(),
        NameLookup::NotDone => "not looked up".into(),
        NameLookup::Tempfail => "lookup failed temporarily".into(),
    };
    let user = match q.user() {
        UserLookup::Known(u) => u.clone(),
        UserLookup::Unknown => "unknown".into(),
        UserLookup::NotDone => "not looked up".into(),
        UserLookup::Tempfail => "lookup failed temporarily".into(),
    };
    let addr = q
        .client()
        .addr()
        .map_or_else(|| "unknown".to_owned(), |a| a.to_string());
    format!(
        "client: address {addr}, name {name}, user {user}; service {}{}",
        q.service(),
        if q.is_tls() { " over TLS" } else { "" }
    )
}

fn run(args: &Args) -> Result<u8, String> {
    let mut policy = load(args)?;
    let env = Env::new(args)?;
    if args.batch {
        if args.service.is_some() || args.client.is_some() {
            return Err("--batch takes its queries from standard input".into());
        }
        return batch(&mut policy, args, &env);
    }
    let (Some(service), Some(client)) = (&args.service, &args.client) else {
        return Err(
            "usage: filtertest [OPTIONS] SERVICE[@SERVER] [USER@]CLIENT (see --help)".into(),
        );
    };
    let mut q = query(service, client, args, &env)?;
    if env.address_tempfail.get() {
        let text = format!(
            "{}\n  the client's address could not be looked up (temporary DNS failure)\n",
            Verdict::Tempfail.word()
        );
        print_quietly(&text)?;
        return Ok(exit_code(Verdict::Tempfail));
    }
    let combined = env.decide(&mut policy, &mut q)?;
    let mut text = format!("{}\n  {}\n", combined.verdict.word(), describe(&q));
    for line in combined.to_string().lines().skip(1) {
        text.push_str(line);
        text.push('\n');
    }
    if combined.levels.is_empty() {
        text.push_str("  no filters apply: granted\n");
    }
    print_quietly(&text)?;
    Ok(exit_code(combined.verdict))
}

/// Writes to standard output; a reader that went away (`| head`) is not an
/// error, the verdict's exit code still stands.
fn print_quietly(text: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(format!("stdout: {e}")),
        _ => Ok(()),
    }
}

fn batch(policy: &mut Policy, args: &Args, env: &Env) -> Result<u8, String> {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut status = 0;
    for (n, line) in stdin.lock().lines().enumerate() {
        let line = line.map_err(|e| format!("stdin: {e}"))?;
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() || fields[0].starts_with('#') {
            continue;
        }
        env.address_tempfail.set(false);
        let word = match batch_query(&fields, args, env) {
            Ok(_) if env.address_tempfail.get() => Verdict::Tempfail.word(),
            Ok(mut q) => match env.decide(policy, &mut q) {
                Ok(c) => c.verdict.word(),
                Err(e) => return Err(e),
            },
            Err(e) => {
                eprintln!("filtertest: line {}: {e}", n + 1);
                status = EXIT_USAGE;
                "error"
            }
        };
        match writeln!(out, "{word}") {
            // The reader went away (`| head`): stop quietly.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(status),
            Err(e) => return Err(format!("stdout: {e}")),
            Ok(()) => {}
        }
    }
    match out.flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(format!("stdout: {e}")),
        _ => Ok(status),
    }
}

fn batch_query(fields: &[&str], args: &Args, env: &Env) -> Result<Query, String> {
    if !(2..=4).contains(&fields.len()) {
        return Err("expected SERVICE CLIENT_ADDR [CLIENT_NAME] [USER]".into());
    }
    let given = |i: usize| fields.get(i).copied().filter(|f| *f != "-");
    let addr = fields[1];
    let client = match (given(2), addr) {
        (Some(name), "-") => name.to_owned(),
        (None, "-") => "unknown".to_owned(),
        (Some(name), _) => format!(
            "{name}[{}]",
            addr.trim_start_matches('[').trim_end_matches(']')
        ),
        (None, _) => addr.to_owned(),
    };
    let client = match given(3) {
        Some(user) => format!("{user}@{client}"),
        None => client,
    };
    if addr != "-"
        && addr
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_err()
    {
        return Err(format!("bad client address `{addr}`"));
    }
    query(fields[0], &client, args, env)
}
