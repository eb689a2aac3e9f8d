//! The limiter's time source: the system's monotonic clock, or a [`ManualClock`] for tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::nanos::Nanos;

/// A clock that only moves when told, for testing limits without waiting.
///
/// Clones share one time; give a clone to [`RateLimitLayer::clock`](crate::RateLimitLayer::clock)
/// and keep another to advance it. It drives the memory backend only: the Redis backend
/// reads the Redis server's clock, so that every instance agrees.
///
/// ```
/// use std::time::Duration;
/// use tower_plugins_rate_limit::ManualClock;
///
/// let clock = ManualClock::new();
/// clock.advance(Duration::from_secs(3));
/// assert_eq!(clock.now(), Duration::from_secs(3));
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let ns = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.0.fetch_add(ns, Ordering::SeqCst);
    }

    /// The time since the clock was made, as advanced.
    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::SeqCst))
    }
}

thread_local! {
    /// The last reading governor took on this thread, so the service reports remaining
    /// capacity and reset times from the same instant the decision used, without reading the
    /// clock twice.
    static LAST: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The clock reading of the last decision made on this thread.
#[inline]
pub(crate) fn last_reading() -> u64 {
    LAST.with(std::cell::Cell::get)
}

/// The clock a limiter reads: nanoseconds since the limiter was built.
///
/// The system clock is quanta's, as governor's default is: the CPU's time-stamp counter
/// scaled to nanoseconds by a calibration made once per process, where the CPU has an
/// invariant one (else the monotonic clock): a counter read is much cheaper than
/// `Instant::now`, which measured a tenth of the limiter's whole cost (docs/PERFORMANCE.md).
#[derive(Debug, Clone)]
pub(crate) enum RateClock {
    System { clock: quanta::Clock, start: u64 },
    Manual(ManualClock),
}

impl RateClock {
    pub(crate) fn system() -> Self {
        let clock = quanta::Clock::new();
        let start = clock.raw();
        RateClock::System { clock, start }
    }

    #[inline]
    pub(crate) fn nanos(&self) -> u64 {
        match self {
            RateClock::System { clock, start } => clock.delta_as_nanos(*start, clock.raw()),
            RateClock::Manual(m) => m.0.load(Ordering::SeqCst),
        }
    }
}

impl governor::clock::Clock for RateClock {
    type Instant = Nanos;

    #[inline]
    fn now(&self) -> Nanos {
        let n = self.nanos();
        LAST.with(|l| l.set(n));
        Nanos::from(n)
    }
}
