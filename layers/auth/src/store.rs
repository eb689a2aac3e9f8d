//! Where sessions live: the [`SessionStore`] contract, and the bounded, self-sweeping
//! [`MemoryStore`] (the default, which the layer calls without a future).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use tower_plugins_core::BoxError;

use crate::clock::Clock;
use crate::keys::StoreKey;
use crate::users::User;

/// One session, as stored: who logged in, when, when they were last seen, and the handler's
/// data. Cloning it clones two `Arc`s, never the data; it is 32 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The user and their roles at login (shared by every session of the user).
    pub user: Arc<User>,
    /// When the session was made (login), in seconds since the Unix epoch.
    pub created: u64,
    /// When it was last seen (written at most once per touch interval).
    pub last_seen: u64,
    /// Values the handlers stored (`Session::insert`).
    pub data: Arc<BTreeMap<String, String>>,
}

/// One change to a session's data, applied field by field (two handlers writing different
/// fields at once both keep theirs).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// Sets a field.
    Insert(String, String),
    /// Removes a field.
    Remove(String),
}

/// When sessions end, in seconds: `idle` after they were last seen, `absolute` after login
/// whatever the activity; a read records activity when `touch` seconds have passed since the
/// last one recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// The idle timeout.
    pub idle: u64,
    /// The absolute timeout.
    pub absolute: u64,
    /// How often a read records activity.
    pub touch: u64,
}

impl Timeouts {
    /// Whether `r` has ended at `now`: idle past `idle`, or older than `absolute`.
    pub fn expired(&self, r: &Record, now: u64) -> bool {
        now > self.ends_at(r)
    }

    /// The last second `r` is alive, unless it is seen again: what a store's TTL is set to.
    pub fn ends_at(&self, r: &Record) -> u64 {
        (r.last_seen.saturating_add(self.idle)).min(r.created.saturating_add(self.absolute))
    }

    /// Whether a read at `now` records activity.
    pub fn touch_due(&self, r: &Record, now: u64) -> bool {
        now.saturating_sub(r.last_seen) >= self.touch
    }
}

/// Why a store could not answer (Redis away, a timeout, a custom store's own failure).
#[derive(Debug)]
pub struct StoreError(BoxError);

impl StoreError {
    /// A failure of a custom store.
    pub fn new(e: impl Into<BoxError>) -> Self {
        StoreError(e.into())
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "session store unavailable: {}", self.0)
    }
}

impl std::error::Error for StoreError {}

/// What a [`SessionStore`] operation returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Where sessions live, for stores of your own (the memory store is built in; `redis` is a
/// feature). Every operation is on one session, by its [`StoreKey`], and atomic: `update`
/// writes only the fields it names and never brings back a deleted session.
///
/// The layer asks with the [`Timeouts`] each time: a store ends sessions by them (and may let
/// a record's storage expire at [`Timeouts::ends_at`]).
pub trait SessionStore: Send + Sync + 'static {
    /// The live record under `key` at `now`: `None` when there is none or it has ended (and
    /// is then removed). A read is activity: when [`Timeouts::touch_due`], `last_seen`
    /// becomes `now` in the store and in the record returned.
    fn load<'a>(
        &'a self,
        key: &'a StoreKey,
        now: u64,
        timeouts: Timeouts,
    ) -> StoreFuture<'a, Option<Record>>;

    /// Stores a new session; `false` (and nothing written) when `key` is taken.
    fn create<'a>(
        &'a self,
        key: &'a StoreKey,
        record: &'a Record,
        timeouts: Timeouts,
    ) -> StoreFuture<'a, bool>;

    /// Applies `changes` to the data of the session under `key`, field by field; nothing when
    /// there is no session (a write arriving after a logout must not bring it back).
    fn update<'a>(&'a self, key: &'a StoreKey, changes: &'a [Change]) -> StoreFuture<'a, ()>;

    /// Removes the session under `key`.
    fn delete<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, ()>;
}

/// The store of a layer: memory, called in place, or any other through its futures.
#[derive(Clone)]
pub(crate) enum Store {
    Memory(Arc<MemoryStore>),
    Remote(Arc<dyn SessionStore>),
}

impl Store {
    pub(crate) async fn load(
        &self,
        key: &StoreKey,
        now: u64,
        t: Timeouts,
    ) -> Result<Option<Record>, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.load(key, now)),
            Store::Remote(r) => r.load(key, now, t).await,
        }
    }

    pub(crate) async fn create(
        &self,
        key: &StoreKey,
        record: Record,
        t: Timeouts,
    ) -> Result<bool, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.create(*key, record)),
            Store::Remote(r) => r.create(key, &record, t).await,
        }
    }

    /// Applies `changes` (the memory store takes them over; another store reads them).
    pub(crate) async fn update(
        &self,
        key: &StoreKey,
        changes: Vec<Change>,
    ) -> Result<(), StoreError> {
        match self {
            Store::Memory(m) => {
                m.update(key, changes);
                Ok(())
            }
            Store::Remote(r) => r.update(key, &changes).await,
        }
    }

    pub(crate) async fn delete(&self, key: &StoreKey) -> Result<(), StoreError> {
        match self {
            Store::Memory(m) => {
                m.delete(key);
                Ok(())
            }
            Store::Remote(r) => r.delete(key).await,
        }
    }
}

/// Hashes a store key by its first 8 bytes: they are HMAC output, already uniform.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes.iter().take(8) {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
}

type Shard = HashMap<StoreKey, Record, BuildHasherDefault<KeyHasher>>;

/// The memory store: at most `max_sessions` sessions in sharded maps, expired ones swept by
/// the process's sweeper thread, so that nobody has a task to run. Anonymous requests never
/// reach it; a session exists only after a login.
pub struct MemoryStore {
    shards: Box<[Mutex<Shard>]>,
    mask: usize,
    shard_cap: usize,
    timeouts: Timeouts,
    clock: Clock,
    sweep_every: Duration,
    next_sweep: Mutex<Instant>,
    evicted_live: AtomicU64,
    expired: AtomicU64,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("sessions", &self.len())
            .field("max_sessions", &(self.shard_cap * self.shards.len()))
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The one empty data map every new session shares until a handler writes to it.
pub(crate) fn no_data() -> Arc<BTreeMap<String, String>> {
    static EMPTY: OnceLock<Arc<BTreeMap<String, String>>> = OnceLock::new();
    EMPTY.get_or_init(Arc::default).clone()
}

impl MemoryStore {
    pub(crate) fn new(max_sessions: usize, timeouts: Timeouts, clock: Clock) -> Arc<Self> {
        let shards = (max_sessions / 1024)
            .clamp(1, 64)
            .next_power_of_two()
            .min(64);
        let store = Arc::new(MemoryStore {
            shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
            mask: shards - 1,
            shard_cap: max_sessions.div_ceil(shards).max(1),
            timeouts,
            clock,
            sweep_every: Duration::from_secs(timeouts.idle.clamp(1, 60)),
            next_sweep: Mutex::new(Instant::now()),
            evicted_live: AtomicU64::new(0),
            expired: AtomicU64::new(0),
        });
        if let Err(e) = tower_plugins_core::register_sweep(&store, "auth") {
            tracing::warn!(error = %e, "auth: could not start the sweeper thread; full shards still make room");
        }
        store
    }

    fn shard(&self, key: &StoreKey) -> &Mutex<Shard> {
        &self.shards[key.0[8] as usize & self.mask]
    }

    /// Sessions held now.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Live sessions forgotten early because their shard was full (the oldest-seen first).
    pub fn evicted_live(&self) -> u64 {
        self.evicted_live.load(Ordering::Relaxed)
    }

    /// The live record under `key`; an expired one is removed and `None`. A read is
    /// activity: `last_seen` moves to `now` when a touch is due.
    pub(crate) fn load(&self, key: &StoreKey, now: u64) -> Option<Record> {
        let mut shard = lock(self.shard(key));
        let rec = shard.get_mut(key)?;
        if self.timeouts.expired(rec, now) {
            shard.remove(key);
            self.expired.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        if self.timeouts.touch_due(rec, now) {
            rec.last_seen = now;
        }
        Some(rec.clone())
    }

    /// Stores a new record; `false` when the key is taken.
    pub(crate) fn create(&self, key: StoreKey, record: Record) -> bool {
        let mut shard = lock(self.shard(&key));
        if shard.contains_key(&key) {
            return false;
        }
        if shard.len() >= self.shard_cap {
            self.make_room(&mut shard);
        }
        shard.insert(key, record);
        true
    }

    pub(crate) fn update(&self, key: &StoreKey, changes: Vec<Change>) {
        let mut shard = lock(self.shard(key));
        let Some(rec) = shard.get_mut(key) else {
            return;
        };
        let data = Arc::make_mut(&mut rec.data);
        for c in changes {
            match c {
                Change::Insert(k, v) => {
                    data.insert(k, v);
                }
                Change::Remove(k) => {
                    data.remove(&k);
                }
            }
        }
    }

    pub(crate) fn delete(&self, key: &StoreKey) {
        lock(self.shard(key)).remove(key);
    }

    /// A full shard: expired records go first; if none did, the eighth seen longest ago.
    fn make_room(&self, shard: &mut Shard) {
        let now = self.clock.now();
        let before = shard.len();
        shard.retain(|_, r| !self.timeouts.expired(r, now));
        self.expired
            .fetch_add((before - shard.len()) as u64, Ordering::Relaxed);
        if shard.len() < self.shard_cap {
            return;
        }
        let mut seen: Vec<u64> = shard.values().map(|r| r.last_seen).collect();
        let cut_at = (seen.len() / 8).max(1) - 1;
        let (_, cut, _) = seen.select_nth_unstable(cut_at);
        let cut = *cut;
        let mut budget = cut_at + 1;
        shard.retain(|_, r| {
            let drop = r.last_seen <= cut && budget > 0;
            budget -= usize::from(drop);
            !drop
        });
        self.evicted_live
            .fetch_add((cut_at + 1 - budget) as u64, Ordering::Relaxed);
    }

    /// Removes every expired record and gives memory back.
    pub fn sweep(&self) {
        let now = self.clock.now();
        for s in self.shards.iter() {
            let mut shard = lock(s);
            let before = shard.len();
            shard.retain(|_, r| !self.timeouts.expired(r, now));
            self.expired
                .fetch_add((before - shard.len()) as u64, Ordering::Relaxed);
            let len = shard.len();
            if len * 4 < shard.capacity() {
                shard.shrink_to(len * 2);
            }
        }
    }
}

/// The memory store answers at once, with the timeouts it was built with.
impl SessionStore for MemoryStore {
    fn load<'a>(
        &'a self,
        key: &'a StoreKey,
        now: u64,
        _: Timeouts,
    ) -> StoreFuture<'a, Option<Record>> {
        Box::pin(std::future::ready(Ok(MemoryStore::load(self, key, now))))
    }

    fn create<'a>(
        &'a self,
        key: &'a StoreKey,
        record: &'a Record,
        _: Timeouts,
    ) -> StoreFuture<'a, bool> {
        Box::pin(std::future::ready(Ok(MemoryStore::create(
            self,
            *key,
            record.clone(),
        ))))
    }

    fn update<'a>(&'a self, key: &'a StoreKey, changes: &'a [Change]) -> StoreFuture<'a, ()> {
        MemoryStore::update(self, key, changes.to_vec());
        Box::pin(std::future::ready(Ok(())))
    }

    fn delete<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, ()> {
        MemoryStore::delete(self, key);
        Box::pin(std::future::ready(Ok(())))
    }
}

impl tower_plugins_core::Sweep for MemoryStore {
    fn sweep_if_due(&self, now: Instant) -> Instant {
        let mut next = lock(&self.next_sweep);
        if now >= *next {
            self.sweep();
            *next = now + self.sweep_every;
        }
        *next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn record(user: &str, at: u64) -> Record {
        Record {
            user: Arc::new(User::new(user, [""; 0])),
            created: at,
            last_seen: at,
            data: no_data(),
        }
    }

    fn key(i: u32) -> StoreKey {
        let mut k = [0; 16];
        k[..4].copy_from_slice(&i.to_be_bytes());
        k[8..12].copy_from_slice(&i.to_le_bytes());
        StoreKey(k)
    }

    const T: Timeouts = Timeouts {
        idle: 1800,
        absolute: 43_200,
        touch: 0,
    };

    #[test]
    fn idle_and_absolute_timeouts_end_a_session_and_reads_count_as_activity() {
        let clock = ManualClock::new(1_000_000);
        let s = MemoryStore::new(100, T, Clock::Manual(clock.clone()));
        assert!(s.create(key(1), record("alice", clock.now())));
        assert!(
            !s.create(key(1), record("mallory", clock.now())),
            "a taken key"
        );
        // Seen every 20 minutes: idle never ends it...
        for _ in 0..35 {
            clock.advance(Duration::from_secs(1200));
            assert!(s.load(&key(1), clock.now()).is_some());
        }
        // ... but 12 hours after login it ends whatever the activity.
        clock.advance(Duration::from_secs(1800));
        assert!(s.load(&key(1), clock.now()).is_none());
        assert!(s.create(key(2), record("bob", clock.now())));
        clock.advance(Duration::from_secs(1801));
        assert!(
            s.load(&key(2), clock.now()).is_none(),
            "idle past 30 minutes"
        );
    }

    #[test]
    fn writes_are_per_field_and_a_deleted_session_stays_deleted() {
        let s = MemoryStore::new(100, T, Clock::Manual(ManualClock::new(5)));
        s.create(key(1), record("alice", 5));
        s.update(&key(1), vec![Change::Insert("a".into(), "1".into())]);
        s.update(&key(1), vec![Change::Insert("b".into(), "2".into())]);
        let r = s.load(&key(1), 5).unwrap();
        assert_eq!(r.data.len(), 2);
        s.delete(&key(1));
        s.update(&key(1), vec![Change::Insert("c".into(), "3".into())]);
        assert!(s.load(&key(1), 5).is_none());
    }

    #[test]
    fn concurrent_writes_of_different_fields_all_stay_and_a_logout_is_final() {
        let s = MemoryStore::new(100, T, Clock::Manual(ManualClock::new(5)));
        s.create(key(1), record("alice", 5));
        std::thread::scope(|scope| {
            for i in 0..100 {
                let s = &s;
                scope.spawn(move || {
                    s.update(
                        &key(1),
                        vec![Change::Insert(format!("k{i}"), i.to_string())],
                    );
                });
            }
        });
        assert_eq!(s.load(&key(1), 5).unwrap().data.len(), 100);
        // A logout racing writes: whatever the order, the session stays gone once deleted.
        std::thread::scope(|scope| {
            scope.spawn(|| s.delete(&key(1)));
            for i in 0..50 {
                let s = &s;
                scope.spawn(move || {
                    s.update(
                        &key(1),
                        vec![Change::Insert(format!("late{i}"), String::new())],
                    );
                });
            }
        });
        assert!(s.load(&key(1), 5).is_none());
    }

    #[test]
    fn a_full_store_drops_expired_sessions_then_the_longest_unseen() {
        let clock = ManualClock::new(0);
        let s = MemoryStore::new(64, T, Clock::Manual(clock.clone()));
        for i in 0..64 {
            clock.advance(Duration::from_secs(1));
            assert!(s.create(key(i), record("u", clock.now())));
        }
        for i in 64..200 {
            clock.advance(Duration::from_secs(1));
            s.create(key(i), record("u", clock.now()));
        }
        assert!(s.len() <= 64);
        assert!(s.evicted_live() > 0);
        assert!(s.load(&key(199), clock.now()).is_some(), "the newest stays");
        assert!(
            s.load(&key(0), clock.now()).is_none(),
            "the oldest went first"
        );
    }
}
