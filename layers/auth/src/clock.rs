//! Seconds since the Unix epoch: the session store's time, from the system clock or a
//! manual one for tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A clock that moves only when told to, for tests of idle and absolute timeouts.
///
/// ```
/// use std::time::Duration;
/// use tower_plugins_auth::ManualClock;
/// let clock = ManualClock::new(1_000);
/// clock.advance(Duration::from_secs(90));
/// assert_eq!(clock.now(), 1_090);
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock reading `unix_secs`.
    pub fn new(unix_secs: u64) -> Self {
        ManualClock(Arc::new(AtomicU64::new(unix_secs)))
    }

    /// Moves the clock forward (whole seconds).
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_secs(), Ordering::Relaxed);
    }

    /// The time it reads, in seconds since the Unix epoch.
    pub fn now(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The clock sessions are timed by.
#[derive(Debug, Clone, Default)]
pub(crate) enum Clock {
    #[default]
    System,
    Manual(ManualClock),
}

impl Clock {
    /// Seconds since the Unix epoch.
    pub(crate) fn now(&self) -> u64 {
        match self {
            Clock::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            Clock::Manual(m) => m.now(),
        }
    }
}
