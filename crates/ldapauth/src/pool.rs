//! Servers, failover and pooled service-account connections.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ldap3::exop::WhoAmI;
use ldap3::{
    Ldap, LdapConnAsync, LdapConnSettings, LdapError, Mod, Scope, SearchEntry, SearchOptions,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::{Error, Settings};

/// LDAP result codes that mean "this server cannot serve now": busy (51),
/// unavailable (52), other (80).
const SERVER_TROUBLE: &[u32] = &[51, 52, 80];

/// Longest wait for the answer to a liveness check (shorter when the
/// operation timeout is).
const LIVENESS_TIMEOUT: Duration = Duration::from_secs(2);

/// A connection waiting in the idle list, and since when.
struct Idle {
    ldap: Ldap,
    since: Instant,
}

struct Server {
    url: String,
    down_until: Mutex<Option<Instant>>,
    idle: Mutex<Vec<Idle>>,
    permits: Semaphore,
}

impl Server {
    fn available(&self, now: Instant) -> bool {
        self.down_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none_or(|t| now >= t)
    }
}

/// What went wrong with one attempt.
enum Fault {
    /// The server (or the connection) failed: try another.
    Server(String),
    /// A final answer (LDAP error or refusal): do not retry.
    Final(Error),
    /// Every pooled connection to the server stayed busy: try another
    /// server, but this one has not failed.
    Busy,
}

impl From<LdapError> for Fault {
    fn from(e: LdapError) -> Self {
        match e {
            LdapError::LdapResult { result } if !SERVER_TROUBLE.contains(&result.rc) => {
                Self::Final(Error::Directory(format!(
                    "rc={} {}",
                    result.rc, result.text
                )))
            }
            other => Self::Server(other.to_string()),
        }
    }
}

pub(crate) struct Pool {
    servers: Vec<Server>,
    conn_settings: LdapConnSettings,
    bind_dn: String,
    bind_password: portcullis_sasl::Password,
    op_timeout: Duration,
    hold: Duration,
    idle_check_after: Duration,
}

/// A checked-out connection, bound as the service account.
struct Conn<'a> {
    ldap: Ldap,
    server: &'a Server,
    _permit: SemaphorePermit<'a>,
    reusable: bool,
    /// Taken from the idle list (it may have gone stale since).
    pooled: bool,
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        if self.reusable && !self.ldap.is_closed() {
            self.server
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Idle {
                    ldap: self.ldap.clone(),
                    since: Instant::now(),
                });
        }
    }
}

/// Whether a connection may go back to the idle list after an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reuse {
    /// Still bound as the service account.
    Keep,
    /// Bound as someone else (a failed re-bind): closed, never reused.
    Discard,
}

/// Result of a search: at most two entries are asked for, which is
/// enough to tell "one" from "several".
pub(crate) struct Found {
    pub(crate) entries: Vec<SearchEntry>,
    pub(crate) more: bool,
}

fn tls_config(settings: &Settings) -> Result<Arc<rustls::ClientConfig>, Error> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(path) = &settings.ca_file {
        let iter = CertificateDer::pem_file_iter(path)
            .map_err(|e| Error::Config(format!("CA file {}: {e}", path.display())))?;
        for c in iter {
            let c = c.map_err(|e| Error::Config(format!("CA file {}: {e}", path.display())))?;
            roots
                .add(c)
                .map_err(|e| Error::Config(format!("CA file {}: {e}", path.display())))?;
        }
    }
    for der in &settings.ca_certs {
        roots
            .add(CertificateDer::from(der.clone()))
            .map_err(|e| Error::Config(format!("CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(Error::Config(
            "LDAPS / StartTLS needs trust roots (a CA file or certificates)".into(),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

impl Pool {
    pub(crate) fn new(settings: &Settings) -> Result<Self, Error> {
        let urls = settings.servers()?;
        if settings.connect_timeout.is_zero() || settings.operation_timeout.is_zero() {
            return Err(Error::Config("timeouts must be greater than zero".into()));
        }
        let pool_size = settings.pool_size.clamp(1, 1024);
        let mut conn_settings = LdapConnSettings::new().set_conn_timeout(settings.connect_timeout);
        if settings.use_ssl || settings.starttls {
            conn_settings = conn_settings.set_config(tls_config(settings)?);
            if !settings.use_ssl {
                conn_settings = conn_settings.set_starttls(true);
            }
        }
        Ok(Self {
            servers: urls
                .into_iter()
                .map(|url| Server {
                    url,
                    down_until: Mutex::new(None),
                    idle: Mutex::new(Vec::new()),
                    permits: Semaphore::new(pool_size),
                })
                .collect(),
            conn_settings,
            bind_dn: settings.bind_dn.clone(),
            bind_password: settings.bind_password.clone(),
            op_timeout: settings.operation_timeout,
            hold: settings.failover_hold,
            idle_check_after: settings.idle_check_after,
        })
    }

    /// Each server's URL and whether it is currently tried (not skipped).
    pub(crate) fn status(&self) -> Vec<(String, bool)> {
        let now = Instant::now();
        self.servers
            .iter()
            .map(|s| (s.url.clone(), s.available(now)))
            .collect()
    }

    fn mark_down(&self, server: &Server, why: &str) {
        tracing::warn!(server = %server.url, reason = why, hold_secs = self.hold.as_secs(), "LDAP server failed; skipping it");
        *server
            .down_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now() + self.hold);
        server
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    async fn connect(&self, server: &Server) -> Result<Ldap, Fault> {
        let (conn, mut ldap) =
            LdapConnAsync::with_settings(self.conn_settings.clone(), &server.url).await?;
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(error = %e, "LDAP connection ended");
            }
        });
        self.service_bind(&mut ldap).await?;
        Ok(ldap)
    }

    async fn service_bind(&self, ldap: &mut Ldap) -> Result<(), Fault> {
        let r = ldap
            .with_timeout(self.op_timeout)
            .simple_bind(&self.bind_dn, self.bind_password.expose())
            .await?;
        if r.rc != 0 {
            // A service account the server refuses is a configuration
            // fault on that server: treat it as down and try the next.
            return Err(Fault::Server(format!(
                "service bind refused: rc={} {}",
                r.rc, r.text
            )));
        }
        Ok(())
    }

    /// Whether the server still answers on `ldap`: a WhoAmI request
    /// (RFC 4532) with a short timeout. Any LDAP answer counts, even a
    /// refusal from a server that does not know the operation; only a
    /// closed connection or silence fails.
    async fn alive(&self, ldap: &mut Ldap) -> bool {
        ldap.with_timeout(self.op_timeout.min(LIVENESS_TIMEOUT))
            .extended(WhoAmI)
            .await
            .is_ok()
    }

    /// A connection to `server`, from the idle list or new. An idle
    /// connection the server closed is dropped; one idle for
    /// `idle_check_after` or longer is checked first ([`Pool::alive`]),
    /// and dropped, with every one idle longer, when it fails the check.
    async fn checkout<'a>(&'a self, server: &'a Server) -> Result<Conn<'a>, Fault> {
        let permit = tokio::time::timeout(self.op_timeout, server.permits.acquire())
            .await
            .map_err(|_| Fault::Busy)?
            .map_err(|_| Fault::Server("pool closed".into()))?;
        loop {
            let idle = server
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let Some(Idle { mut ldap, since }) = idle else {
                break;
            };
            if ldap.is_closed() {
                continue;
            }
            if since.elapsed() >= self.idle_check_after && !self.alive(&mut ldap).await {
                tracing::debug!(server = %server.url, "idle LDAP connection failed its liveness check; dropping it");
                // Those idle longer most likely share its fate.
                server
                    .idle
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .retain(|i| i.since > since);
                continue;
            }
            return Ok(Conn {
                ldap,
                server,
                _permit: permit,
                reusable: true,
                pooled: true,
            });
        }
        let ldap = self.connect(server).await?;
        Ok(Conn {
            ldap,
            server,
            _permit: permit,
            reusable: true,
            pooled: false,
        })
    }

    /// The servers to try, in order: those not being skipped; when every
    /// one is, the one whose hold ends first, so a single server (or a
    /// directory that has come back) is probed rather than refused for the
    /// whole hold. The flag says whether this is such a probe.
    fn candidates(&self) -> (Vec<&Server>, usize, bool) {
        let now = Instant::now();
        let up: Vec<&Server> = self.servers.iter().filter(|s| s.available(now)).collect();
        if !up.is_empty() {
            let skipped = self.servers.len() - up.len();
            return (up, skipped, false);
        }
        let probe = self
            .servers
            .iter()
            .min_by_key(|s| *s.down_until.lock().unwrap_or_else(PoisonError::into_inner));
        (
            probe.into_iter().collect(),
            self.servers.len().saturating_sub(1),
            true,
        )
    }

    /// Runs `op` on the first server that answers; a server that fails is
    /// skipped for `hold` and the next one is tried. `op` answers with its
    /// result and whether the connection may go back to the pool (`false`
    /// when it is no longer bound as the service account).
    async fn run<T>(
        &self,
        what: &str,
        mut op: impl for<'c> FnMut(
            &'c mut Ldap,
        ) -> std::pin::Pin<
            Box<dyn Future<Output = Result<(T, Reuse), Fault>> + Send + 'c>,
        >,
    ) -> Result<T, Error> {
        let (servers, skipped, probing) = self.candidates();
        let tried = servers.len();
        'servers: for server in servers {
            let mut conn = match self.checkout(server).await {
                Ok(c) => c,
                Err(Fault::Server(why)) => {
                    self.mark_down(server, &why);
                    continue;
                }
                Err(Fault::Busy) => {
                    tracing::debug!(server = %server.url, "LDAP pool busy; trying the next server");
                    continue;
                }
                Err(Fault::Final(e)) => return Err(e),
            };
            loop {
                let mut why = match op(&mut conn.ldap).await {
                    Ok((v, reuse)) => {
                        if reuse == Reuse::Discard {
                            conn.reusable = false;
                            let _ = conn.ldap.unbind().await;
                        }
                        if probing {
                            // The probe got through: the hold ends.
                            *server
                                .down_until
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner) = None;
                        }
                        return Ok(v);
                    }
                    Err(Fault::Final(e)) => return Err(e),
                    Err(Fault::Server(why)) => why,
                    Err(Fault::Busy) => "busy".to_owned(),
                };
                conn.reusable = false;
                if conn.pooled {
                    // An idle connection may have been closed by the server
                    // meanwhile: one retry on a fresh one before the server
                    // counts as failed.
                    tracing::debug!(server = %server.url, reason = why, "pooled LDAP connection failed; reconnecting");
                    match self.connect(server).await {
                        Ok(ldap) => {
                            conn.ldap = ldap;
                            conn.pooled = false;
                            conn.reusable = true;
                            continue;
                        }
                        Err(Fault::Final(e)) => return Err(e),
                        Err(Fault::Server(w)) => why = w,
                        Err(Fault::Busy) => {}
                    }
                }
                drop(conn);
                self.mark_down(server, &why);
                continue 'servers;
            }
        }
        tracing::warn!(operation = what, tried, "no LDAP server available");
        Err(Error::Unavailable(format!(
            "{what}: no LDAP server answered ({tried} tried, {skipped} skipped)"
        )))
    }

    /// Searches with the service account. `noSuchObject` is an empty
    /// result; at most two entries are returned.
    pub(crate) async fn search(
        &self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
    ) -> Result<Found, Error> {
        let t = self.op_timeout;
        self.run("search", |ldap| {
            let base = base.to_owned();
            let filter = filter.to_owned();
            let attrs: Vec<String> = attrs.iter().map(|s| (*s).to_owned()).collect();
            Box::pin(async move {
                let res = ldap
                    .with_search_options(SearchOptions::new().sizelimit(2))
                    .with_timeout(t)
                    .search(&base, scope, &filter, attrs)
                    .await?;
                let ldap3::SearchResult(entries, result) = res;
                match result.rc {
                    0 | 4 | 32 => Ok((
                        Found {
                            more: result.rc == 4 || entries.len() > 1,
                            entries: entries
                                .into_iter()
                                .map(entry_of)
                                .collect::<Result<_, _>>()
                                .map_err(|e| Fault::Final(Error::Directory(e)))?,
                        },
                        Reuse::Keep,
                    )),
                    rc if SERVER_TROUBLE.contains(&rc) => {
                        Err(Fault::Server(format!("search rc={rc}")))
                    }
                    rc => Err(Fault::Final(Error::Directory(format!(
                        "search rc={rc} {}",
                        result.text
                    )))),
                }
            })
        })
        .await
    }

    /// Binds as `dn` with `password` on a pooled connection, then re-binds
    /// it as the service account before it is reused. `Ok(false)` for
    /// invalid credentials.
    pub(crate) async fn check_bind(&self, dn: &str, password: &str) -> Result<bool, Error> {
        let t = self.op_timeout;
        self.run("bind", |ldap| {
            let dn = dn.to_owned();
            let password = zeroize::Zeroizing::new(password.to_owned());
            let service_dn = self.bind_dn.clone();
            let service_pw = self.bind_password.clone();
            Box::pin(async move {
                let r = ldap.with_timeout(t).simple_bind(&dn, &password).await?;
                let ok = match r.rc {
                    0 => true,
                    // invalidCredentials, inappropriateAuthentication,
                    // unwillingToPerform (e.g. empty password), noSuchObject.
                    49 | 48 | 53 | 32 => false,
                    rc if SERVER_TROUBLE.contains(&rc) => {
                        return Err(Fault::Server(format!("bind rc={rc}")));
                    }
                    rc => {
                        return Err(Fault::Final(Error::Directory(format!(
                            "bind rc={rc} {}",
                            r.text
                        ))));
                    }
                };
                // Re-bind as the service account before the connection is
                // reused; if that fails, the connection is closed and never
                // goes back to the pool (it would search as the user).
                let rebound = ldap
                    .with_timeout(t)
                    .simple_bind(&service_dn, service_pw.expose())
                    .await
                    .is_ok_and(|r| r.rc == 0);
                if !rebound {
                    tracing::warn!("LDAP re-bind as the service account failed; connection closed");
                }
                Ok((ok, if rebound { Reuse::Keep } else { Reuse::Discard }))
            })
        })
        .await
    }

    /// Replaces exactly the values `old` of `attr` with `new`, in one
    /// modify (delete those values, add the new ones): if another change
    /// removed or replaced any of `old` meanwhile, the server refuses the
    /// whole modify (noSuchAttribute) and nothing is overwritten;
    /// `Ok(false)` then.
    pub(crate) async fn swap_values(
        &self,
        dn: &str,
        attr: &str,
        old: Vec<Vec<u8>>,
        new: Vec<Vec<u8>>,
    ) -> Result<bool, Error> {
        let t = self.op_timeout;
        self.run("modify", |ldap| {
            let dn = dn.to_owned();
            let attr = attr.to_owned();
            let old: HashSet<Vec<u8>> = old.iter().cloned().collect();
            let new: HashSet<Vec<u8>> = new.iter().cloned().collect();
            Box::pin(async move {
                let r = ldap
                    .with_timeout(t)
                    .modify(
                        &dn,
                        vec![
                            Mod::Delete(attr.clone().into_bytes(), old),
                            Mod::Add(attr.into_bytes(), new),
                        ],
                    )
                    .await?;
                match r.rc {
                    0 => Ok((true, Reuse::Keep)),
                    // noSuchAttribute: a value to delete is gone (changed
                    // meanwhile); attributeOrValueExists: a new value was
                    // set meanwhile.
                    16 | 20 => Ok((false, Reuse::Keep)),
                    rc if SERVER_TROUBLE.contains(&rc) => {
                        Err(Fault::Server(format!("modify rc={rc}")))
                    }
                    rc => Err(Fault::Final(Error::Directory(format!(
                        "modify rc={rc} {}",
                        r.text
                    )))),
                }
            })
        })
        .await
    }
}

/// A search result entry, read without trusting its shape: ldap3's
/// `SearchEntry::construct` panics on a DN or attribute type that is not
/// UTF-8, or on a malformed structure, which a broken or hostile server can
/// send. Here each is an error naming what was wrong.
pub(crate) fn entry_of(re: ldap3::ResultEntry) -> Result<SearchEntry, String> {
    use std::collections::HashMap;

    let bad = |what: &str| format!("malformed search result entry: {what}");
    let mut tags =
        re.0.match_id(4)
            .and_then(ldap3::asn1::StructureTag::expect_constructed)
            .ok_or_else(|| bad("not a SearchResultEntry"))?
            .into_iter();
    let dn = tags
        .next()
        .and_then(ldap3::asn1::StructureTag::expect_primitive)
        .ok_or_else(|| bad("no DN"))?;
    let dn = String::from_utf8(dn).map_err(|_| bad("the DN is not UTF-8"))?;
    let attrs = tags
        .next()
        .and_then(ldap3::asn1::StructureTag::expect_constructed)
        .ok_or_else(|| bad("no attribute list"))?;
    let mut text: HashMap<String, Vec<String>> = HashMap::new();
    let mut binary: HashMap<String, Vec<Vec<u8>>> = HashMap::new();
    for attr in attrs {
        let mut parts = attr
            .expect_constructed()
            .ok_or_else(|| bad("an attribute is not a sequence"))?
            .into_iter();
        let name = parts
            .next()
            .and_then(ldap3::asn1::StructureTag::expect_primitive)
            .ok_or_else(|| bad("an attribute without a type"))?;
        let name = String::from_utf8(name).map_err(|_| bad("an attribute type is not UTF-8"))?;
        let values = parts
            .next()
            .and_then(ldap3::asn1::StructureTag::expect_constructed)
            .ok_or_else(|| bad("an attribute without a value set"))?;
        let mut raw = Vec::with_capacity(values.len());
        for v in values {
            raw.push(
                v.expect_primitive()
                    .ok_or_else(|| bad("a value is not an octet string"))?,
            );
        }
        // As ldap3 does: an attribute with any non-UTF-8 value is binary.
        if raw.iter().all(|v| std::str::from_utf8(v).is_ok()) {
            let strings = raw
                .into_iter()
                .filter_map(|v| String::from_utf8(v).ok())
                .collect();
            text.insert(name, strings);
        } else {
            binary.insert(name, raw);
        }
    }
    Ok(SearchEntry {
        dn,
        attrs: text,
        bin_attrs: binary,
    })
}

#[cfg(test)]
mod entry_tests {
    use ldap3::asn1::{PL, StructureTag, TagClass};

    use super::entry_of;

    fn octets(b: &[u8]) -> StructureTag {
        StructureTag {
            class: TagClass::Universal,
            id: 4,
            payload: PL::P(b.to_vec()),
        }
    }

    fn seq(id: u64, class: TagClass, items: Vec<StructureTag>) -> StructureTag {
        StructureTag {
            class,
            id,
            payload: PL::C(items),
        }
    }

    fn entry(dn: &[u8], attrs: Vec<StructureTag>) -> ldap3::ResultEntry {
        ldap3::ResultEntry::new(seq(
            4,
            TagClass::Application,
            vec![octets(dn), seq(16, TagClass::Universal, attrs)],
        ))
    }

    fn attr(name: &[u8], values: &[&[u8]]) -> StructureTag {
        seq(
            16,
            TagClass::Universal,
            vec![
                octets(name),
                seq(
                    17,
                    TagClass::Universal,
                    values.iter().map(|v| octets(v)).collect(),
                ),
            ],
        )
    }

    #[test]
    fn entries_read_as_ldap3_reads_them() {
        let make = || {
            entry(
                b"uid=alice,o=example",
                vec![
                    attr(b"mail", &[b"alice@example.com"]),
                    attr(b"jpegPhoto", &[b"\xff\xd8\xff"]),
                ],
            )
        };
        let ours = entry_of(make()).unwrap();
        let theirs = ldap3::SearchEntry::construct(make());
        assert_eq!(ours.dn, theirs.dn);
        assert_eq!(ours.attrs, theirs.attrs);
        assert_eq!(ours.bin_attrs, theirs.bin_attrs);
    }

    /// What makes ldap3's own reader panic is an error here.
    #[test]
    fn malformed_entries_are_errors_not_panics() {
        let non_utf8_dn = entry(b"uid=\xff,o=example", vec![]);
        assert!(
            entry_of(non_utf8_dn)
                .unwrap_err()
                .contains("DN is not UTF-8")
        );
        let non_utf8_type = entry(b"o=example", vec![attr(b"\xfe", &[b"x"])]);
        assert!(entry_of(non_utf8_type).is_err());
        let flat_attr = entry(b"o=example", vec![octets(b"mail")]);
        assert!(entry_of(flat_attr).is_err());
        let no_values = entry(
            b"o=example",
            vec![seq(16, TagClass::Universal, vec![octets(b"mail")])],
        );
        assert!(entry_of(no_values).is_err());
        let not_an_entry = ldap3::ResultEntry::new(octets(b"x"));
        assert!(entry_of(not_an_entry).is_err());
        // ldap3's reader panics on the first of these.
        let panicked = std::panic::catch_unwind(|| {
            ldap3::SearchEntry::construct(entry(b"uid=\xff,o=example", vec![]))
        });
        assert!(panicked.is_err());
    }
}

#[cfg(test)]
mod liveness_tests {
    use std::time::Duration;

    use ldap3::Scope;
    use portcullis_test_support::slapd::Slapd;

    use super::{Conn, Fault, Pool};
    use crate::Settings;

    fn pool(slapd: &Slapd, idle_check_after: Duration) -> Pool {
        let mut s = Settings::new(format!("127.0.0.1:{}", slapd.port()), slapd.base_dn());
        s.bind_dn = slapd.service_dn().into();
        s.bind_password = slapd.service_password().into();
        s.pool_size = 1;
        s.idle_check_after = idle_check_after;
        Pool::new(&s).unwrap()
    }

    async fn root_dse(pool: &Pool) {
        let found = pool
            .search("", Scope::Base, "(objectClass=*)", &["1.1"])
            .await
            .unwrap();
        assert_eq!(found.entries.len(), 1);
    }

    async fn checkout(pool: &Pool) -> Conn<'_> {
        match pool.checkout(&pool.servers[0]).await {
            Ok(c) => c,
            Err(Fault::Server(why)) => panic!("checkout failed: {why}"),
            Err(_) => panic!("checkout failed"),
        }
    }

    /// On one thread, so that while the test blocks in the restart, the
    /// connections' drivers cannot notice the server closed them: the
    /// idle connections then look open, and only the check tells.
    #[tokio::test(flavor = "current_thread")]
    async fn a_dead_idle_connection_is_replaced_before_reuse() {
        let mut slapd = Slapd::start().unwrap();
        let checked = pool(&slapd, Duration::ZERO);
        let unchecked = pool(&slapd, Duration::from_secs(3600));
        root_dse(&checked).await;
        root_dse(&unchecked).await;

        // A live idle connection passes the check and is reused.
        let c = checkout(&checked).await;
        assert!(c.pooled);
        drop(c);

        slapd.restart().unwrap();

        // The control: not checked (idle for less than the threshold), the
        // dead connection is handed out as if alive.
        let c = checkout(&unchecked).await;
        assert!(c.pooled);
        drop(c);

        // Checked, it is dropped and a fresh connection made.
        let c = checkout(&checked).await;
        assert!(!c.pooled, "a dead idle connection was handed out");
        drop(c);
        root_dse(&checked).await;
        assert!(checked.status().iter().all(|(_, up)| *up));
    }
}
