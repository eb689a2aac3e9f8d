//! The figures of one route, sharded so that threads recording at once do not share cache
//! lines, and the insert-only table that finds a route by name without a lock.

use std::cell::Cell;
use std::hash::BuildHasher;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, AtomicU16, AtomicU64, AtomicUsize, Ordering::Relaxed};

use crate::facade::RouteMetrics;
use crate::histogram::{self, BUCKETS};

/// Prometheus histogram bounds (seconds), as microseconds: the client libraries' defaults.
pub(crate) const PROM_BOUNDS_US: [u64; 11] = [
    5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000,
    10_000_000,
];

/// Seconds of request rate kept.
pub(crate) const RATE_SECONDS: usize = 60;

/// Distinct status codes counted exactly per shard; more fall under `other_status` (their
/// class is still counted).
const STATUS_SLOTS: usize = 16;

/// What one thread (or a few) records for a route. Aligned so two shards never share a cache
/// line.
#[repr(align(128))]
pub(crate) struct Shard {
    pub(crate) requests: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) aborted: AtomicU64,
    pub(crate) in_flight: AtomicI64,
    /// 1xx..5xx; responses with another status count in none.
    pub(crate) classes: [AtomicU64; 5],
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) latency_sum_us: AtomicU64,
    pub(crate) latency_max_us: AtomicU64,
    pub(crate) latency: [AtomicU64; BUCKETS],
    /// Non-cumulative counts per Prometheus bound, the last one past every bound.
    pub(crate) prom: [AtomicU64; PROM_BOUNDS_US.len() + 1],
    /// Requests per second: the second (high 32 bits) and its count (low 32 bits).
    pub(crate) rate: [AtomicU64; RATE_SECONDS],
    status_codes: [AtomicU16; STATUS_SLOTS],
    status_counts: [AtomicU64; STATUS_SLOTS],
    pub(crate) other_status: AtomicU64,
    /// gRPC calls by `grpc-status` (0 to 16).
    pub(crate) grpc: [AtomicU64; GRPC_CODES],
}

/// The gRPC status codes, 0 to 16.
pub(crate) const GRPC_CODES: usize = 17;

fn zeros<const N: usize>() -> [AtomicU64; N] {
    std::array::from_fn(|_| AtomicU64::new(0))
}

impl Shard {
    fn new() -> Self {
        Shard {
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            aborted: AtomicU64::new(0),
            in_flight: AtomicI64::new(0),
            classes: zeros(),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            latency_sum_us: AtomicU64::new(0),
            latency_max_us: AtomicU64::new(0),
            latency: zeros(),
            prom: zeros(),
            rate: zeros(),
            status_codes: std::array::from_fn(|_| AtomicU16::new(0)),
            status_counts: zeros(),
            other_status: AtomicU64::new(0),
            grpc: zeros(),
        }
    }

    /// Counts one response with `status`.
    #[inline]
    pub(crate) fn count_status(&self, status: u16) {
        if let Some(class) = (status / 100).checked_sub(1).filter(|c| *c < 5) {
            self.classes[class as usize].fetch_add(1, Relaxed);
        }
        let start = status as usize % STATUS_SLOTS;
        for i in 0..STATUS_SLOTS {
            let slot = (start + i) % STATUS_SLOTS;
            let code = self.status_codes[slot].load(Relaxed);
            if code == status {
                self.status_counts[slot].fetch_add(1, Relaxed);
                return;
            }
            if code == 0 {
                match self.status_codes[slot].compare_exchange(0, status, Relaxed, Relaxed) {
                    Ok(_) => {
                        self.status_counts[slot].fetch_add(1, Relaxed);
                        return;
                    }
                    Err(now) if now == status => {
                        self.status_counts[slot].fetch_add(1, Relaxed);
                        return;
                    }
                    Err(_) => {}
                }
            }
        }
        self.other_status.fetch_add(1, Relaxed);
    }

    /// Counts a latency of `us` microseconds.
    #[inline]
    pub(crate) fn count_latency(&self, us: u64) {
        self.latency[histogram::bucket(us)].fetch_add(1, Relaxed);
        let prom = PROM_BOUNDS_US
            .iter()
            .position(|b| us <= *b)
            .unwrap_or(PROM_BOUNDS_US.len());
        self.prom[prom].fetch_add(1, Relaxed);
        self.latency_sum_us.fetch_add(us, Relaxed);
        if us > self.latency_max_us.load(Relaxed) {
            self.latency_max_us.fetch_max(us, Relaxed);
        }
    }

    /// Counts one request completed in second `sec` (since the registry started).
    #[inline]
    pub(crate) fn count_second(&self, sec: u32) {
        let slot = &self.rate[sec as usize % RATE_SECONDS];
        let tag = u64::from(sec) << 32;
        let mut cur = slot.load(Relaxed);
        loop {
            if cur >> 32 == u64::from(sec) && cur != 0 {
                slot.fetch_add(1, Relaxed);
                return;
            }
            match slot.compare_exchange_weak(cur, tag | 1, Relaxed, Relaxed) {
                Ok(_) => return,
                Err(now) => cur = now,
            }
        }
    }

    /// The exact status counts of this shard.
    pub(crate) fn statuses(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        self.status_codes
            .iter()
            .zip(&self.status_counts)
            .map(|(c, n)| (c.load(Relaxed), n.load(Relaxed)))
            .filter(|(c, n)| *c != 0 && *n != 0)
    }
}

/// One route's name and shards.
pub(crate) struct Route {
    pub(crate) name: Box<str>,
    pub(crate) shards: Box<[Shard]>,
    /// The `metrics` facade's handles, made when the facade is on and first used.
    metrics: OnceLock<Box<RouteMetrics>>,
}

impl Route {
    pub(crate) fn new(name: &str) -> Self {
        Route {
            name: name.into(),
            shards: (0..shard_count()).map(|_| Shard::new()).collect(),
            metrics: OnceLock::new(),
        }
    }

    /// The `metrics` facade's handles of this route.
    #[inline]
    pub(crate) fn metrics(&self) -> &RouteMetrics {
        self.metrics.get_or_init(Box::default)
    }

    /// The shard of the calling thread.
    #[inline]
    pub(crate) fn shard(&self) -> &Shard {
        &self.shards[thread_index() & (self.shards.len() - 1)]
    }
}

/// Shards per route: twice the cores (rounded up to a power of two, at most 64), so threads
/// that are given neighbouring indexes rarely share one.
pub(crate) fn shard_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(4, std::num::NonZero::get);
        (cores * 2).next_power_of_two().min(64)
    })
}

/// A small number given to each thread on its first recording, round robin.
#[inline]
fn thread_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    INDEX.with(|i| {
        let mut v = i.get();
        if v == usize::MAX {
            v = NEXT.fetch_add(1, Relaxed);
            i.set(v);
        }
        v
    })
}

/// An insert-only table from name to value, found without a lock: a name is placed in the
/// first free slot of its probe sequence, and a slot once filled never changes. At most `max`
/// names are admitted; the table has at least twice as many slots, so a probe always ends.
/// A slot is a pointer, and its entry is allocated when a name fills it, so a large `max`
/// costs 16 bytes a slot up front rather than a whole entry.
pub(crate) struct Table<T> {
    slots: Box<[OnceLock<Box<(Box<str>, T)>>]>,
    hasher: foldhash::fast::FixedState,
    len: AtomicUsize,
    max: usize,
}

impl<T> Table<T> {
    pub(crate) fn new(max: usize) -> Self {
        let size = (max.max(1) * 2).next_power_of_two();
        Table {
            slots: (0..size).map(|_| OnceLock::new()).collect(),
            hasher: foldhash::fast::FixedState::with_seed(0x7374_6174),
            len: AtomicUsize::new(0),
            max,
        }
    }

    /// The value of `name`, made by `make` if the table has room for a new name; `None` when
    /// it is new and the table is full.
    #[inline]
    pub(crate) fn get_or_insert(&self, name: &str, make: impl FnOnce() -> T) -> Option<&T> {
        let mask = self.slots.len() - 1;
        let mut at = self.hasher.hash_one(name) as usize & mask;
        let mut make = Some(make);
        let mut reserved = false;
        for _ in 0..self.slots.len() {
            let slot = &self.slots[at];
            let entry = match slot.get() {
                Some(e) => e,
                None => {
                    if !reserved {
                        if self.len.fetch_add(1, Relaxed) >= self.max {
                            self.len.fetch_sub(1, Relaxed);
                            return None;
                        }
                        reserved = true;
                    }
                    let mut mine = None;
                    let e = slot.get_or_init(|| {
                        let make = make.take().expect("made once");
                        mine = Some(());
                        Box::new((name.into(), make()))
                    });
                    if mine.is_some() {
                        reserved = false;
                    }
                    e
                }
            };
            if &*entry.0 == name {
                if reserved {
                    // Another thread placed the same name first.
                    self.len.fetch_sub(1, Relaxed);
                }
                return Some(&entry.1);
            }
            at = (at + 1) & mask;
        }
        if reserved {
            self.len.fetch_sub(1, Relaxed);
        }
        None
    }

    /// The names and values, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &T)> {
        self.slots
            .iter()
            .filter_map(|s| s.get())
            .map(|e| (&*e.0, &e.1))
    }

    /// Names held.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Relaxed).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_counted_exactly_and_by_class() {
        let s = Shard::new();
        for code in [200, 200, 404, 503, 299, 99] {
            s.count_status(code);
        }
        let mut st: Vec<_> = s.statuses().collect();
        st.sort_unstable();
        assert_eq!(st, vec![(99, 1), (200, 2), (299, 1), (404, 1), (503, 1)]);
        let classes: Vec<u64> = s.classes.iter().map(|c| c.load(Relaxed)).collect();
        assert_eq!(classes, vec![0, 3, 0, 1, 1]);
        // More distinct codes than slots: the rest are counted as other.
        let s = Shard::new();
        for code in 200..240 {
            s.count_status(code);
        }
        assert_eq!(s.statuses().count(), STATUS_SLOTS);
        assert_eq!(s.other_status.load(Relaxed), 40 - STATUS_SLOTS as u64);
    }

    #[test]
    fn seconds_roll_over() {
        let s = Shard::new();
        s.count_second(5);
        s.count_second(5);
        assert_eq!(s.rate[5].load(Relaxed), (5 << 32) | 2);
        s.count_second(65);
        assert_eq!(s.rate[5].load(Relaxed), (65 << 32) | 1);
        s.count_second(0);
        assert_eq!(s.rate[0].load(Relaxed), 1);
    }

    #[test]
    fn the_table_admits_at_most_max_names() {
        let t: Table<u32> = Table::new(3);
        assert_eq!(t.get_or_insert("/a", || 1), Some(&1));
        assert_eq!(t.get_or_insert("/a", || 9), Some(&1));
        assert_eq!(t.get_or_insert("/b", || 2), Some(&2));
        assert_eq!(t.get_or_insert("/c", || 3), Some(&3));
        assert_eq!(t.get_or_insert("/d", || 4), None);
        assert_eq!(t.get_or_insert("/b", || 9), Some(&2));
        assert_eq!(t.len(), 3);
        let mut names: Vec<_> = t.iter().map(|(n, v)| (n.to_owned(), *v)).collect();
        names.sort();
        assert_eq!(
            names,
            vec![("/a".into(), 1), ("/b".into(), 2), ("/c".into(), 3)]
        );
    }

    #[test]
    fn threads_inserting_at_once_agree() {
        let t: Table<usize> = Table::new(50);
        std::thread::scope(|s| {
            for th in 0..4 {
                let t = &t;
                s.spawn(move || {
                    for i in 0..100 {
                        let name = format!("/r{}", i % 60);
                        let _ = t.get_or_insert(&name, || th);
                    }
                });
            }
        });
        assert_eq!(t.len(), 50);
        assert_eq!(t.iter().count(), 50);
    }
}
