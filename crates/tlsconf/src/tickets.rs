//! Session resumption: stateless tickets with key rotation, a stateful
//! cache, or neither.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ring::aead;
use ring::rand::{SecureRandom, SystemRandom};
use rustls::server::{
    NoServerSessionStorage, ProducesTickets, ServerSessionMemoryCache, StoresServerSessions,
};
use rustls::ticketer::TicketRotator;

use crate::Error;

/// Resumption settings.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Resumption {
    /// Issue stateless session tickets (RFC 5077, RFC 8446 §4.6.1).
    pub tickets: bool,
    /// How long one ticket key encrypts new tickets; a ticket is accepted
    /// for at most twice this. Rounded to whole seconds, at least 1 s.
    pub ticket_key_lifetime: Duration,
    /// Tickets sent after a full TLS 1.3 handshake.
    pub tls13_tickets: usize,
    /// Size of the stateful session cache (session IDs, and TLS 1.3
    /// resumption when tickets are off); 0 turns it off.
    pub cache_size: usize,
}

impl Default for Resumption {
    fn default() -> Self {
        Self {
            tickets: true,
            ticket_key_lifetime: Duration::from_secs(6 * 3600),
            tls13_tickets: 2,
            cache_size: 1024,
        }
    }
}

impl Resumption {
    /// No resumption at all: every handshake is a full one.
    pub fn disabled() -> Self {
        Self {
            tickets: false,
            ticket_key_lifetime: Duration::from_secs(1),
            tls13_tickets: 0,
            cache_size: 0,
        }
    }
}

/// The ticket keys and session cache, kept across reloads so a reload does
/// not end resumption for every client.
#[derive(Clone)]
pub(crate) struct ResumptionState {
    pub(crate) settings: Resumption,
    pub(crate) ticketer: Arc<dyn ProducesTickets>,
    pub(crate) storage: Arc<dyn StoresServerSessions>,
}

impl fmt::Debug for ResumptionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResumptionState")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl ResumptionState {
    pub(crate) fn new(settings: &Resumption) -> Result<Self, Error> {
        let ticketer: Arc<dyn ProducesTickets> = if settings.tickets {
            let secs = u32::try_from(settings.ticket_key_lifetime.as_secs())
                .unwrap_or(u32::MAX)
                .max(1);
            Arc::new(AgedTickets {
                inner: TicketRotator::new(secs, new_ticket_key)?,
                max_age_ms: u64::from(secs) * 2000,
            })
        } else {
            Arc::new(NoTickets)
        };
        let storage: Arc<dyn StoresServerSessions> = if settings.cache_size > 0 {
            ServerSessionMemoryCache::new(settings.cache_size)
        } else {
            Arc::new(NoServerSessionStorage {})
        };
        Ok(Self {
            settings: settings.clone(),
            ticketer,
            storage,
        })
    }

    pub(crate) fn apply(&self, config: &mut rustls::ServerConfig) {
        config.ticketer = Arc::clone(&self.ticketer);
        config.session_storage = Arc::clone(&self.storage);
        config.send_tls13_tickets = if self.settings.tickets || self.settings.cache_size > 0 {
            self.settings.tls13_tickets
        } else {
            0
        };
    }
}

/// The rotator with a hard bound on ticket age. The rotator switches keys
/// only when tickets pass through it, so on a quiet server one rotation can
/// stand for several lifetimes and an old ticket would still decrypt; the
/// issue time sealed inside each ticket makes every ticket expire after two
/// key lifetimes, as documented, whatever the traffic.
#[derive(Debug)]
struct AgedTickets {
    inner: TicketRotator,
    max_age_ms: u64,
}

/// Milliseconds since the Unix epoch.
fn unix_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl ProducesTickets for AgedTickets {
    fn enabled(&self) -> bool {
        self.inner.enabled()
    }
    fn lifetime(&self) -> u32 {
        self.inner.lifetime()
    }
    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let mut stamped = Vec::with_capacity(8 + plain.len());
        stamped.extend_from_slice(&unix_now_ms().to_be_bytes());
        stamped.extend_from_slice(plain);
        self.inner.encrypt(&stamped)
    }
    fn decrypt(&self, ticket: &[u8]) -> Option<Vec<u8>> {
        let mut stamped = self.inner.decrypt(ticket)?;
        let issued = u64::from_be_bytes(stamped.get(..8)?.try_into().ok()?);
        let now = unix_now_ms();
        // A clock that went backwards does not make tickets live longer.
        if now.saturating_sub(issued) > self.max_age_ms || issued > now.saturating_add(60_000) {
            return None;
        }
        stamped.drain(..8);
        Some(stamped)
    }
}

#[derive(Debug)]
struct NoTickets;

impl ProducesTickets for NoTickets {
    fn enabled(&self) -> bool {
        false
    }
    fn lifetime(&self) -> u32 {
        0
    }
    fn encrypt(&self, _: &[u8]) -> Option<Vec<u8>> {
        None
    }
    fn decrypt(&self, _: &[u8]) -> Option<Vec<u8>> {
        None
    }
}

fn new_ticket_key() -> Result<Box<dyn ProducesTickets>, rustls::crypto::GetRandomFailed> {
    Ok(Box::new(TicketKey::new()?))
}

/// One ChaCha20-Poly1305 ticket key, named by 16 random bytes.
/// Ticket = key name || nonce || ciphertext+tag; the key name is the AAD.
struct TicketKey {
    key: aead::LessSafeKey,
    name: [u8; 16],
    max_ciphertext: AtomicUsize,
}

impl fmt::Debug for TicketKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TicketKey")
    }
}

impl TicketKey {
    fn new() -> Result<Self, rustls::crypto::GetRandomFailed> {
        let rng = SystemRandom::new();
        let mut key = [0u8; 32];
        let mut name = [0u8; 16];
        rng.fill(&mut key)
            .map_err(|_| rustls::crypto::GetRandomFailed)?;
        rng.fill(&mut name)
            .map_err(|_| rustls::crypto::GetRandomFailed)?;
        let key = aead::UnboundKey::new(&aead::CHACHA20_POLY1305, &key)
            .map_err(|_| rustls::crypto::GetRandomFailed)?;
        Ok(Self {
            key: aead::LessSafeKey::new(key),
            name,
            max_ciphertext: AtomicUsize::new(0),
        })
    }
}

impl ProducesTickets for TicketKey {
    fn enabled(&self) -> bool {
        true
    }
    fn lifetime(&self) -> u32 {
        // The rotator reports its own lifetime; this value is not used.
        0
    }
    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let mut nonce = [0u8; aead::NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).ok()?;
        let mut out = Vec::with_capacity(16 + nonce.len() + plain.len() + aead::MAX_TAG_LEN);
        out.extend_from_slice(&self.name);
        out.extend_from_slice(&nonce);
        let mut body = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(&self.name),
                &mut body,
            )
            .ok()?;
        out.extend_from_slice(&body);
        self.max_ciphertext.fetch_max(out.len(), Ordering::SeqCst);
        Some(out)
    }
    fn decrypt(&self, ticket: &[u8]) -> Option<Vec<u8>> {
        // Over-long tickets are refused early (partitioning oracles).
        if ticket.len() > self.max_ciphertext.load(Ordering::SeqCst) {
            return None;
        }
        let (name, rest) = ticket.split_at_checked(16)?;
        if !ring_eq(name, &self.name) {
            return None;
        }
        let (nonce, sealed) = rest.split_at_checked(aead::NONCE_LEN)?;
        let nonce = aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = sealed.to_vec();
        let plain_len = self
            .key
            .open_in_place(nonce, aead::Aad::from(&self.name), &mut body)
            .ok()?
            .len();
        body.truncate(plain_len);
        Some(body)
    }
}

fn ring_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_roundtrip_and_tamper() {
        let k = TicketKey::new().unwrap();
        let t = k.encrypt(b"session state").unwrap();
        assert_eq!(k.decrypt(&t).unwrap(), b"session state");
        let mut bad = t.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(k.decrypt(&bad).is_none());
        let other = TicketKey::new().unwrap();
        other.encrypt(&[0; 64]);
        assert!(other.decrypt(&t).is_none());
        assert!(k.decrypt(&t[..10]).is_none());
    }

    #[test]
    fn disabled_means_nothing() {
        let s = ResumptionState::new(&Resumption::disabled()).unwrap();
        assert!(!s.ticketer.enabled());
        assert!(!s.storage.can_cache());
        let s = ResumptionState::new(&Resumption::default()).unwrap();
        assert!(s.ticketer.enabled());
        assert_eq!(s.ticketer.lifetime(), 2 * 6 * 3600);
    }
}
