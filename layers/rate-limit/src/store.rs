//! The memory backend's keyed state: governor's GCRA over a sharded table whose size is
//! capped and whose stale entries are swept by a thread of its own.
//!
//! A bucket's whole state is its theoretical arrival time (TAT). Once the TAT is in the past
//! the bucket is full again, exactly as if it had never been used, so removing it loses
//! nothing: that is what the sweep does. When a shard is full, the entries closest to full
//! (the smallest TATs) are forgotten first.

use std::cell::Cell;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use governor::nanos::Nanos;
use governor::state::StateStore;
use hashbrown::{DefaultHashBuilder, HashTable};

use crate::clock::RateClock;
use crate::key::Key;

/// The key governor is asked about: the bucket's key, and where the store writes the TAT it
/// read and the one it stored, so the service can report remaining capacity and reset time.
#[derive(Debug, Clone)]
pub(crate) struct Probe {
    pub(crate) key: Key,
    /// The TAT after the decision (the new one when admitted, the unchanged one when not).
    pub(crate) tat: Cell<u64>,
}

impl Probe {
    pub(crate) fn new(key: Key) -> Self {
        Probe {
            key,
            tat: Cell::new(0),
        }
    }
}

impl PartialEq for Probe {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Probe {}

impl Hash for Probe {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}

#[repr(align(64))]
struct Shard(Mutex<HashTable<(Key, u64)>>);

/// Counters of what the store dropped, for [`RateLimitLayer::stats`](crate::RateLimitLayer::stats).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) swept: AtomicU64,
    pub(crate) evicted_full: AtomicU64,
}

pub(crate) struct Store {
    shards: Box<[Shard]>,
    mask: usize,
    hasher: DefaultHashBuilder,
    shard_cap: usize,
    clock: RateClock,
    /// The clock reading governor's limiter took as its start (TATs are relative to it).
    start: AtomicU64,
    sweep_every: Duration,
    next_sweep: Mutex<Instant>,
    pub(crate) counters: Counters,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("shards", &self.shards.len())
            .field("shard_cap", &self.shard_cap)
            .finish_non_exhaustive()
    }
}

/// Whether a table of `capacity` has grown past the size that holds `cap` entries (tombstones
/// left by sweeps make a full table grow). A table sized for `cap` holds less than twice as
/// many (its buckets are the power of two past `cap * 8 / 7`, loaded to 7/8), so twice `cap`
/// is one growth too many; computed rather than measured, so no table is allocated up front.
fn grown_past(capacity: usize, cap: usize) -> bool {
    capacity >= cap.max(4).saturating_mul(2)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Store {
    /// A store holding at most about `max_keys` keys.
    pub(crate) fn new(max_keys: usize, clock: RateClock, sweep_every: Duration) -> Self {
        // Enough shards that concurrent requests rarely meet, few enough that each holds a
        // fair share of the cap.
        let shards = (max_keys / 256).clamp(1, 64).next_power_of_two().min(64);
        let shard_cap = max_keys.div_ceil(shards).max(1);
        let start = AtomicU64::new(clock.nanos());
        Store {
            shards: (0..shards)
                .map(|_| Shard(Mutex::new(HashTable::new())))
                .collect(),
            mask: shards - 1,
            hasher: DefaultHashBuilder::default(),
            shard_cap,
            clock,
            start,
            sweep_every,
            next_sweep: Mutex::new(Instant::now() + sweep_every),
            counters: Counters::default(),
        }
    }

    /// Now, on the limiter's time line.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        self.clock
            .nanos()
            .saturating_sub(self.start.load(Ordering::Relaxed))
    }

    /// Aligns the store's time line with the limiter's: call right after building the
    /// limiter over this store, on the same thread.
    pub(crate) fn start_at_last_reading(&self) {
        self.start
            .store(crate::clock::last_reading(), Ordering::Relaxed);
    }

    /// The instant of the decision just made on this thread, on the limiter's time line.
    #[inline]
    pub(crate) fn decision_time(&self) -> u64 {
        crate::clock::last_reading().saturating_sub(self.start.load(Ordering::Relaxed))
    }

    #[inline]
    fn shard(&self, hash: u64) -> &Mutex<HashTable<(Key, u64)>> {
        // Bits the table itself does not use: it takes the low bits for the position and
        // the top seven for its tags.
        &self.shards[(hash >> 32) as usize & self.mask].0
    }

    fn rehash(&self) -> impl Fn(&(Key, u64)) -> u64 + '_ {
        |e| self.hasher.hash_one(&e.0)
    }

    /// Gives one unit back to `key` (a response that a `count = "failures"` rule does not
    /// count).
    pub(crate) fn refund(&self, key: &Key, t: u64) {
        let hash = self.hasher.hash_one(key);
        let mut table = lock(self.shard(hash));
        if let Some(e) = table.find_mut(hash, |e| e.0 == *key) {
            e.1 = e.1.saturating_sub(t);
        }
    }

    /// The number of keys held.
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(&s.0).len()).sum()
    }

    /// The bytes the tables hold (buckets, tags and key text), for tests and documentation.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let t = lock(&s.0);
                let buckets = if t.capacity() == 0 {
                    0
                } else {
                    (t.capacity() * 8 / 7).next_power_of_two()
                };
                buckets * (size_of::<(Key, u64)>() + 1)
                    + t.iter().map(|e| e.0.heap_len()).sum::<usize>()
            })
            .sum()
    }

    /// Removes every bucket that is full again, and gives back table memory the remaining
    /// keys do not need. Returns how many keys were removed.
    pub(crate) fn sweep(&self) -> usize {
        let now = self.now();
        let mut removed = 0;
        for s in &*self.shards {
            let mut t = lock(&s.0);
            let before = t.len();
            t.retain(|e| e.1 > now);
            removed += before - t.len();
            let len = t.len();
            if len * 4 < t.capacity() {
                t.shrink_to(len * 2, self.rehash());
            }
        }
        self.counters
            .swept
            .fetch_add(removed as u64, Ordering::Relaxed);
        removed
    }

    /// Frees room in a full shard: stale entries first, then the eighth of the shard whose
    /// buckets are closest to full. The shard is rebuilt at its capped size, so the deletions
    /// leave no tombstones behind that would make the table grow past the cap.
    fn make_room(&self, t: &mut HashTable<(Key, u64)>) {
        let now = self.now();
        let want = (self.shard_cap / 8).max(1);
        let stale = t.iter().filter(|e| e.1 <= now).count();
        // The TAT at or below which live buckets are forgotten, when stale ones are too few.
        let cut = (stale < want).then(|| {
            let mut tats: Vec<u64> = t.iter().map(|e| e.1).filter(|&tat| tat > now).collect();
            let k = (want - stale - 1).min(tats.len().saturating_sub(1));
            tats.select_nth_unstable(k).1.to_owned()
        });
        let mut budget = want.saturating_sub(stale);
        let mut forgotten = 0u64;
        let mut fresh = HashTable::with_capacity(self.shard_cap);
        for e in std::mem::take(t) {
            if e.1 <= now {
                continue;
            }
            if cut.is_some_and(|c| e.1 <= c) && budget > 0 {
                budget -= 1;
                forgotten += 1;
                continue;
            }
            fresh.insert_unique(self.hasher.hash_one(&e.0), e, self.rehash());
        }
        *t = fresh;
        self.counters
            .swept
            .fetch_add(stale as u64, Ordering::Relaxed);
        self.counters
            .evicted_full
            .fetch_add(forgotten, Ordering::Relaxed);
    }
}

impl tower_plugins_core::Sweep for Store {
    /// Sweeps when the interval has passed (called by the sweeper thread).
    fn sweep_if_due(&self, now: Instant) -> Instant {
        let mut next = lock(&self.next_sweep);
        if now >= *next {
            self.sweep();
            *next = now + self.sweep_every;
        }
        *next
    }
}

impl StateStore for Store {
    type Key = Probe;

    #[inline]
    fn measure_and_replace<T, F, E>(&self, probe: &Probe, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let hash = self.hasher.hash_one(&probe.key);
        let mut table = lock(self.shard(hash));
        if let Some(e) = table.find_mut(hash, |e| e.0 == probe.key) {
            probe.tat.set(e.1);
            let (out, next) = f(Some(Nanos::from(e.1)))?;
            e.1 = next.as_u64();
            probe.tat.set(e.1);
            return Ok(out);
        }
        let (out, next) = f(None)?;
        probe.tat.set(next.as_u64());
        self.insert(&mut table, hash, &probe.key, next.as_u64());
        Ok(out)
    }
}

impl Store {
    /// A key seen for the first time: made room for, inserted, and the table kept at its
    /// capped size. Kept out of line, so that the path of a known key stays small.
    #[cold]
    #[inline(never)]
    fn insert(&self, table: &mut HashTable<(Key, u64)>, hash: u64, key: &Key, tat: u64) {
        if table.len() >= self.shard_cap {
            self.make_room(table);
        }
        table.insert_unique(hash, (key.clone(), tat), self.rehash());
        if grown_past(table.capacity(), self.shard_cap) {
            // Tombstones left by sweeps made the table grow: back to the capped size.
            table.shrink_to(self.shard_cap, self.rehash());
        }
    }
}

/// Hands a store to the process's sweeper thread (core's, shared with every bounded table).
pub(crate) fn register(store: &Arc<Store>) {
    if let Err(e) = tower_plugins_core::register_sweep(store, "rate-limit") {
        // Without a thread, full shards still make room for new keys on the request path.
        tracing::warn!(error = %e, "rate_limit: could not start the sweeper thread");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn probe_insert(s: &Store, key: Key, tat: u64) {
        let _ = s.measure_and_replace(&Probe::new(key), |_| Ok::<_, ()>(((), Nanos::from(tat))));
    }

    #[test]
    fn a_full_store_forgets_the_buckets_closest_to_full() {
        let clock = ManualClock::new();
        let s = Store::new(
            64,
            RateClock::Manual(clock.clone()),
            Duration::from_secs(60),
        );
        for i in 0..64u32 {
            probe_insert(&s, Key::V4(i), 1_000 + u64::from(i));
        }
        assert_eq!(s.len(), 64);
        for i in 64..1_000u32 {
            probe_insert(&s, Key::V4(i), 1_000_000 + u64::from(i));
        }
        assert!(s.len() <= 64, "{} keys", s.len());
        assert!(s.counters.evicted_full.load(Ordering::Relaxed) > 0);
        // The newest keys (largest TATs) survive.
        let newest = Key::V4(999);
        let hash = s.hasher.hash_one(&newest);
        assert!(lock(s.shard(hash)).find(hash, |e| e.0 == newest).is_some());
    }

    #[test]
    fn sweeping_removes_full_buckets_and_returns_memory() {
        let clock = ManualClock::new();
        let s = Store::new(
            100_000,
            RateClock::Manual(clock.clone()),
            Duration::from_secs(60),
        );
        for i in 0..20_000u32 {
            probe_insert(&s, Key::V4(i), 1_000_000_000);
        }
        let full = s.heap_bytes();
        assert_eq!(s.len(), 20_000);
        clock.advance(Duration::from_millis(500));
        assert_eq!(s.sweep(), 0, "nothing is stale yet");
        clock.advance(Duration::from_millis(600));
        assert_eq!(s.sweep(), 20_000);
        assert_eq!(s.len(), 0);
        assert!(s.heap_bytes() * 10 < full, "{} of {full}", s.heap_bytes());
    }

    #[test]
    fn refunds_give_one_unit_back() {
        let s = Store::new(
            100,
            RateClock::Manual(ManualClock::new()),
            Duration::from_secs(60),
        );
        probe_insert(&s, Key::Global, 5_000);
        s.refund(&Key::Global, 1_000);
        let p = Probe::new(Key::Global);
        let _ = s.measure_and_replace(&p, |tat| Err::<((), Nanos), u64>(tat.unwrap().as_u64()));
        assert_eq!(p.tat.get(), 4_000);
    }
}
