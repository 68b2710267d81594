//! The in-process store: sharded, bounded, swept incrementally.
//!
//! Each shard is a ring of slots in record order plus a hash table of ring
//! positions:
//!
//! ```text
//!   hash(key) ──► shard ──► HashTable<u32 seq> ──► ring[seq - base]
//!                                                   (key, expires, user)
//!   ring front = oldest record ──► swept when expired, evicted when full
//! ```
//!
//! With one TTL, record order is expiry order, so the oldest entry is at the
//! ring's front: eviction and the sweep of expired entries both pop from
//! the front, a few entries at a time, holding one shard's lock. The bound
//! is global: one counter over all shards, so the store holds exactly
//! `max_entries` before it evicts anything, however the keys fall into
//! shards. When it is full, a record evicts the oldest entry of its own
//! shard (or, if that shard is empty, of the next shard holding one). A
//! repeated record for the same key turns the old slot into a tombstone;
//! a shard is compacted when its tombstones outnumber a quarter of its
//! live entries.

use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use hashbrown::{DefaultHashBuilder, HashTable};

use super::{BoxFuture, PopAuthStore, StoredAuth, UserName};
use crate::Error;
use crate::key::ClientKey;
use crate::time::Timestamp;

/// Expired entries a `record` call removes from its shard on the way.
const SWEEP_ON_RECORD: usize = 4;

/// The in-memory [`PopAuthStore`].
#[derive(Debug)]
pub struct MemoryStore {
    shards: Box<[Padded<RwLock<Shard>>]>,
    hasher: DefaultHashBuilder,
    shard_mask: u64,
    sweep_cursor: AtomicUsize,
    /// Live entries over all shards (never above `max_entries`).
    live: AtomicUsize,
    max_entries: usize,
}

/// Keeps each shard's lock on its own cache lines.
#[derive(Debug)]
#[repr(align(128))]
struct Padded<T>(T);

/// Builder for [`MemoryStore`].
#[derive(Debug, Clone)]
#[must_use]
pub struct MemoryStoreBuilder {
    max_entries: usize,
    shards: usize,
}

impl Default for MemoryStoreBuilder {
    fn default() -> Self {
        Self {
            max_entries: 1_000_000,
            shards: 64,
        }
    }
}

impl MemoryStoreBuilder {
    /// At most this many entries (default 1,000,000), over all shards
    /// together: nothing is evicted before the store holds `max_entries`,
    /// and it never holds more.
    pub fn max_entries(mut self, max_entries: usize) -> Self {
        self.max_entries = max_entries.clamp(1, u32::MAX as usize / 2);
        self
    }

    /// Number of shards (rounded up to a power of two, 1..=4096; default
    /// 64). Fewer shards than `max_entries` are used if needed. With one
    /// shard eviction is exactly oldest-first over the whole store.
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = shards.clamp(1, 4096).next_power_of_two();
        self
    }

    /// The store.
    #[must_use]
    pub fn build(self) -> MemoryStore {
        let mut shards = self.shards;
        while shards > self.max_entries {
            shards /= 2;
        }
        let shards_vec: Vec<_> = (0..shards)
            .map(|_| Padded(RwLock::new(Shard::new())))
            .collect();
        MemoryStore {
            shards: shards_vec.into_boxed_slice(),
            hasher: DefaultHashBuilder::default(),
            shard_mask: (shards as u64) - 1,
            sweep_cursor: AtomicUsize::new(0),
            live: AtomicUsize::new(0),
            max_entries: self.max_entries,
        }
    }
}

#[derive(Debug)]
struct Slot {
    hi: u64,
    lo: u64,
    expires: u64,
    /// `None` marks a tombstone (the key was recorded again later).
    user: Option<UserName>,
}

impl Slot {
    fn key_bits(&self) -> u128 {
        (u128::from(self.hi) << 64) | u128::from(self.lo)
    }
}

#[derive(Debug)]
struct Shard {
    table: HashTable<u32>,
    ring: VecDeque<Slot>,
    /// Sequence number of `ring[0]`; `ring[i]` has `base + i` (wrapping).
    base: u32,
    live: usize,
}

fn split(bits: u128) -> (u64, u64) {
    // Deliberate truncation: the high and low halves of the key.
    #[allow(clippy::cast_possible_truncation)]
    let parts = ((bits >> 64) as u64, bits as u64);
    parts
}

fn seq_offset(len: usize) -> u32 {
    // A ring holds at most `max_entries` live slots plus a quarter as many
    // tombstones (and 8), and the builder keeps `max_entries` at or below
    // `u32::MAX / 2`, so this is below `u32::MAX`.
    u32::try_from(len).unwrap_or(u32::MAX)
}

impl Shard {
    fn new() -> Self {
        Self {
            table: HashTable::new(),
            ring: VecDeque::new(),
            base: 0,
            live: 0,
        }
    }

    fn index(&self, seq: u32) -> usize {
        seq.wrapping_sub(self.base) as usize
    }

    fn find(&self, hash: u64, bits: u128) -> Option<&Slot> {
        let (hi, lo) = split(bits);
        let seq = self.table.find(hash, |&seq| {
            self.ring
                .get(seq.wrapping_sub(self.base) as usize)
                .is_some_and(|s| s.hi == hi && s.lo == lo)
        })?;
        self.ring.get(self.index(*seq))
    }

    /// Remove the table entry pointing at `seq`.
    fn unlink(&mut self, hash: u64, seq: u32) {
        if let Ok(entry) = self.table.find_entry(hash, |&s| s == seq) {
            entry.remove();
        }
    }

    /// Pop the front slot; returns it with its sequence number.
    fn pop_front(&mut self) -> Option<(u32, Slot)> {
        let slot = self.ring.pop_front()?;
        let seq = self.base;
        self.base = self.base.wrapping_add(1);
        Some((seq, slot))
    }

    /// Remove up to `budget` expired or dead slots from the front.
    fn sweep_front(&mut self, now: u64, mut budget: usize, hasher: &DefaultHashBuilder) -> usize {
        let mut removed = 0;
        while budget > 0 {
            let Some(front) = self.ring.front() else {
                break;
            };
            if front.user.is_some() && front.expires > now {
                break;
            }
            budget -= 1;
            if let Some((seq, slot)) = self.pop_front()
                && slot.user.is_some()
            {
                self.unlink(hasher.hash_one(slot.key_bits()), seq);
                self.live -= 1;
                removed += 1;
            }
        }
        removed
    }

    /// Evict the oldest live entry; `false` if the shard holds none.
    fn evict_oldest(&mut self, hasher: &DefaultHashBuilder) -> bool {
        while let Some((seq, slot)) = self.pop_front() {
            if let Some(user) = &slot.user {
                self.unlink(hasher.hash_one(slot.key_bits()), seq);
                self.live -= 1;
                tracing::debug!(
                    user = &**user,
                    "POP-before-SMTP cache full: evicted oldest entry"
                );
                return true;
            }
        }
        false
    }

    /// Make room in the ring for one more slot: drop tombstones at the
    /// front, and compact when tombstones outnumber a quarter of the live
    /// entries (amortised O(1) per record).
    fn make_room(&mut self, hasher: &DefaultHashBuilder) {
        while self.ring.front().is_some_and(|s| s.user.is_none()) {
            self.pop_front();
        }
        let tombstones = self.ring.len() - self.live;
        if tombstones > self.live / 4 + 8 {
            self.compact(hasher);
        }
    }

    /// Drop tombstones and renumber (one shard, O(shard size)).
    fn compact(&mut self, hasher: &DefaultHashBuilder) {
        self.ring.retain(|s| s.user.is_some());
        self.table.clear();
        let Self {
            table, ring, base, ..
        } = self;
        for (i, slot) in ring.iter().enumerate() {
            let seq = base.wrapping_add(seq_offset(i));
            table.insert_unique(hasher.hash_one(slot.key_bits()), seq, |&s| {
                ring.get(s.wrapping_sub(*base) as usize)
                    .map_or(0, |slot| hasher.hash_one(slot.key_bits()))
            });
        }
    }

    /// Turn the live entry for `bits` into a tombstone; `false` if there is none.
    fn tombstone(&mut self, hash: u64, bits: u128) -> bool {
        let (hi, lo) = split(bits);
        let Self {
            table, ring, base, ..
        } = self;
        let Ok(entry) = table.find_entry(hash, |&seq| {
            ring.get(seq.wrapping_sub(*base) as usize)
                .is_some_and(|s| s.hi == hi && s.lo == lo)
        }) else {
            return false;
        };
        let (seq, _) = entry.remove();
        if let Some(slot) = ring.get_mut(seq.wrapping_sub(*base) as usize) {
            slot.user = None;
        }
        self.live -= 1;
        true
    }

    /// Append a live entry for a key the shard does not hold.
    fn push(
        &mut self,
        hash: u64,
        bits: u128,
        user: UserName,
        expires: u64,
        hasher: &DefaultHashBuilder,
    ) {
        let (hi, lo) = split(bits);
        self.make_room(hasher);
        let seq = self.base.wrapping_add(seq_offset(self.ring.len()));
        self.ring.push_back(Slot {
            hi,
            lo,
            expires,
            user: Some(user),
        });
        let Self {
            table, ring, base, ..
        } = self;
        table.insert_unique(hash, seq, |&s| {
            ring.get(s.wrapping_sub(*base) as usize)
                .map_or(0, |slot| hasher.hash_one(slot.key_bits()))
        });
        self.live += 1;
    }

    fn heap_bytes(&self) -> usize {
        let users: usize = self
            .ring
            .iter()
            .filter_map(|s| s.user.as_ref())
            .map(UserName::heap_bytes)
            .sum();
        self.table.allocation_size() + self.ring.capacity() * size_of::<Slot>() + users
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::builder().build()
    }
}

impl MemoryStore {
    /// A builder with the defaults (1,000,000 entries, 64 shards).
    pub fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder::default()
    }

    fn shard_index(&self, hash: u64) -> usize {
        // Shard by bits 40.. of the hash: hashbrown uses the low bits for the
        // bucket and the top seven for its tag. The mask keeps the index
        // below the shard count.
        #[allow(clippy::cast_possible_truncation)]
        let i = ((hash >> 40) & self.shard_mask) as usize;
        i
    }

    fn shard_for(&self, hash: u64) -> &RwLock<Shard> {
        &self.shards[self.shard_index(hash)].0
    }

    /// Take one unit of the global bound; `false` when the store is full.
    fn reserve(&self) -> bool {
        self.live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_entries).then_some(n + 1)
            })
            .is_ok()
    }

    /// Evict the oldest entry of the first shard after `from` that holds
    /// one, locking one shard at a time.
    fn evict_elsewhere(&self, from: usize) {
        let n = self.shards.len();
        for i in 1..=n {
            let mut shard = Self::write(&self.shards[(from + i) % n].0);
            if shard.evict_oldest(&self.hasher) {
                self.live.fetch_sub(1, Ordering::AcqRel);
                return;
            }
        }
    }

    fn read(lock: &RwLock<Shard>) -> RwLockReadGuard<'_, Shard> {
        lock.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(lock: &RwLock<Shard>) -> RwLockWriteGuard<'_, Shard> {
        lock.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Record without a future (the store never waits).
    pub fn record_now(&self, key: ClientKey, user: &str, now: Timestamp, expires: Timestamp) {
        let bits = key.bits();
        let hash = self.hasher.hash_one(bits);
        let user = UserName::from(user);
        let index = self.shard_index(hash);
        loop {
            {
                let mut shard = Self::write(&self.shards[index].0);
                let swept = shard.sweep_front(now.unix_secs(), SWEEP_ON_RECORD, &self.hasher);
                self.live.fetch_sub(swept, Ordering::AcqRel);
                // A new record for a key replaces its entry: the count stays.
                // Otherwise take a unit of the bound, or, when the store is
                // full, the place of this shard's oldest entry.
                if shard.tombstone(hash, bits) || self.reserve() || shard.evict_oldest(&self.hasher)
                {
                    shard.push(hash, bits, user, expires.unix_secs(), &self.hasher);
                    return;
                }
            }
            // Full, and this shard holds nothing to evict: make room in
            // another shard (its lock taken after this one's is released).
            self.evict_elsewhere(index);
        }
    }

    /// Look up without a future (the store never waits).
    #[must_use]
    pub fn lookup_now(&self, key: ClientKey, now: Timestamp) -> Option<StoredAuth> {
        let bits = key.bits();
        let hash = self.hasher.hash_one(bits);
        let shard = Self::read(self.shard_for(hash));
        let slot = shard.find(hash, bits)?;
        let user = slot.user.as_ref()?;
        (slot.expires > now.unix_secs()).then(|| StoredAuth {
            user: user.clone(),
            expires: Timestamp::from_unix_secs(slot.expires),
        })
    }

    /// Whether `key` has a live entry (no user name copied).
    #[must_use]
    pub fn contains(&self, key: ClientKey, now: Timestamp) -> bool {
        let bits = key.bits();
        let hash = self.hasher.hash_one(bits);
        let shard = Self::read(self.shard_for(hash));
        shard
            .find(hash, bits)
            .is_some_and(|s| s.user.is_some() && s.expires > now.unix_secs())
    }

    /// Entries held (live or expired but not yet swept).
    #[must_use]
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| Self::read(&s.0).live).sum()
    }

    /// Whether the store holds no entries.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most entries the store holds.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.max_entries
    }

    /// Heap bytes held by the tables, rings and user names (an estimate
    /// that leaves out the allocator's own overhead).
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| Self::read(&s.0).heap_bytes())
            .sum()
    }

    /// Remove up to `budget` expired entries, visiting shards in turn from
    /// where the previous call stopped and locking one shard at a time.
    pub fn sweep_expired(&self, now: Timestamp, budget: usize) -> usize {
        let n = self.shards.len();
        let start = self.sweep_cursor.load(Ordering::Relaxed) % n;
        let mut left = budget;
        let mut removed = 0;
        let mut visited = 0;
        while visited < n && left > 0 {
            let shard = &self.shards[(start + visited) % n].0;
            let got = Self::write(shard).sweep_front(now.unix_secs(), left, &self.hasher);
            self.live.fetch_sub(got, Ordering::AcqRel);
            removed += got;
            left = left.saturating_sub(got.max(1));
            visited += 1;
        }
        // The next call starts after the last shard visited.
        self.sweep_cursor
            .store((start + visited) % n, Ordering::Relaxed);
        removed
    }
}

impl PopAuthStore for MemoryStore {
    fn record<'a>(
        &'a self,
        key: ClientKey,
        user: &'a str,
        now: Timestamp,
        expires: Timestamp,
    ) -> BoxFuture<'a, Result<(), Error>> {
        self.record_now(key, user, now, expires);
        Box::pin(std::future::ready(Ok(())))
    }

    fn lookup(
        &self,
        key: ClientKey,
        now: Timestamp,
    ) -> BoxFuture<'_, Result<Option<StoredAuth>, Error>> {
        Box::pin(std::future::ready(Ok(self.lookup_now(key, now))))
    }

    fn sweep(&self, now: Timestamp, budget: usize) -> usize {
        self.sweep_expired(now, budget)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::AddressGrouping;

    fn key(i: u32) -> ClientKey {
        AddressGrouping::default().key(std::net::Ipv4Addr::from(0x0a00_0000 + i).into())
    }

    #[test]
    fn one_shard_evicts_oldest_first() {
        let s = MemoryStore::builder().max_entries(100).shards(1).build();
        let t = Timestamp::from_unix_secs(10);
        let exp = t.plus_secs(1000);
        for i in 0..150 {
            s.record_now(key(i), "u", t, exp);
        }
        assert_eq!(s.len(), 100);
        for i in 0..50 {
            assert!(!s.contains(key(i), t), "{i} should be evicted");
        }
        for i in 50..150 {
            assert!(s.contains(key(i), t), "{i} should be present");
        }
    }

    #[test]
    fn rerecords_make_tombstones_that_compact() {
        let s = MemoryStore::builder().max_entries(40).shards(1).build();
        let mut t = Timestamp::from_unix_secs(10);
        // 40 keys, each recorded 30 times: far more records than ring room.
        for round in 0..30 {
            for i in 0..40 {
                s.record_now(key(i), &format!("u{round}"), t, t.plus_secs(100));
            }
            t = t.plus_secs(1);
        }
        assert_eq!(s.len(), 40);
        for i in 0..40 {
            let got = s.lookup_now(key(i), t).expect("present");
            assert_eq!(&*got.user, "u29");
        }
        // A re-recorded key moves to the back: it is evicted last.
        s.record_now(key(0), "again", t, t.plus_secs(100));
        s.record_now(key(100), "new", t, t.plus_secs(100));
        assert!(s.contains(key(0), t));
        assert!(!s.contains(key(1), t));
    }

    #[test]
    fn sweep_removes_expired_front_entries() {
        let s = MemoryStore::builder().max_entries(1000).shards(4).build();
        // Recorded "at" 0 so that records do not sweep on the way.
        let t0 = Timestamp::from_unix_secs(0);
        for i in 0..100 {
            s.record_now(
                key(i),
                "u",
                t0,
                Timestamp::from_unix_secs(u64::from(i) + 10),
            );
        }
        let now = Timestamp::from_unix_secs(60);
        // Entries recorded at 0..=50 expire by 60.
        let mut removed = 0;
        for _ in 0..100 {
            removed += s.sweep_expired(now, 7);
        }
        assert_eq!(removed, 51);
        assert_eq!(s.len(), 49);
    }

    #[test]
    fn bound_holds_with_many_shards() {
        let s = MemoryStore::builder().max_entries(6400).shards(64).build();
        assert!(s.capacity() <= 6400);
        let t = Timestamp::from_unix_secs(1);
        for i in 0..10_000 {
            s.record_now(key(i), "u", t, t.plus_secs(100));
        }
        assert!(s.len() <= 6400);
        for i in 9_000..10_000 {
            assert!(s.contains(key(i), t));
        }
    }

    #[test]
    fn the_bound_is_global_not_per_shard() {
        // 100 entries over 64 shards: all 100 are kept (a per-shard split
        // of the bound kept one per shard, 64 in all).
        let s = MemoryStore::builder().max_entries(100).shards(64).build();
        assert_eq!(s.capacity(), 100);
        let t = Timestamp::from_unix_secs(1);
        for i in 0..100 {
            s.record_now(key(i), "u", t, t.plus_secs(100));
        }
        assert_eq!(s.len(), 100);
        for i in 0..100 {
            assert!(
                s.contains(key(i), t),
                "{i} evicted before the store was full"
            );
        }
        // Full: each further record evicts one entry and the count stays.
        for i in 100..300 {
            s.record_now(key(i), "u", t, t.plus_secs(100));
            assert_eq!(s.len(), 100);
        }
        // A record is never its own victim.
        assert!(s.contains(key(299), t));
    }

    #[test]
    fn a_large_store_does_not_evict_early() {
        // Keys fall into 64 shards unevenly; with the bound split per
        // shard, the fuller shards evicted long before 20,000 entries.
        let s = MemoryStore::builder()
            .max_entries(20_000)
            .shards(64)
            .build();
        let t = Timestamp::from_unix_secs(1);
        for i in 0..20_000 {
            s.record_now(key(i), "u", t, t.plus_secs(100));
        }
        assert_eq!(s.len(), 20_000);
        assert!((0..20_000).all(|i| s.contains(key(i), t)));
        // Re-recording every key leaves the count alone.
        for i in 0..20_000 {
            s.record_now(key(i), "v", t, t.plus_secs(100));
        }
        assert_eq!(s.len(), 20_000);
        assert_eq!(&*s.lookup_now(key(7), t).expect("present").user, "v");
    }

    #[test]
    fn a_full_store_evicts_from_other_shards_when_needed() {
        // Two shards; fill the store, then record keys: whichever shard
        // they fall into, the total stays at the bound.
        let s = MemoryStore::builder().max_entries(10).shards(2).build();
        let t = Timestamp::from_unix_secs(1);
        for i in 0..1000 {
            s.record_now(key(i), "u", t, t.plus_secs(100));
            assert!(s.len() <= 10);
            assert!(s.contains(key(i), t));
        }
        assert_eq!(s.len(), 10);
    }

    #[test]
    fn sweeping_gives_room_back_to_the_bound() {
        let s = MemoryStore::builder().max_entries(50).shards(8).build();
        let t0 = Timestamp::from_unix_secs(0);
        for i in 0..50 {
            s.record_now(key(i), "u", t0, Timestamp::from_unix_secs(10));
        }
        assert_eq!(s.sweep_expired(Timestamp::from_unix_secs(20), 1000), 50);
        assert_eq!(s.len(), 0);
        let t = Timestamp::from_unix_secs(20);
        for i in 100..150 {
            s.record_now(key(i), "u", t, t.plus_secs(100));
        }
        assert_eq!(s.len(), 50);
        assert!((100..150).all(|i| s.contains(key(i), t)));
    }
}
