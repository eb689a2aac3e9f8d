//! [`Limiter`]: the rate limiter's GCRA and bounded, swept store, keyed by bytes, for other
//! plugins that limit something a request's headers do not name (auth's login attempts per
//! user name).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use tower_plugins_core::Quota;

use crate::clock::ManualClock;
use crate::engine::Engine;
use crate::key::Key;
use crate::settings::{Rule, Settings};
use crate::store::Probe;

/// A keyed GCRA limiter in memory: at most `max_keys` keys, swept when full again, as a
/// `rate_limit` rule's. Cloning shares the buckets.
///
/// ```
/// use tower_plugins_core::parse_quota;
/// use tower_plugins_rate_limit::Limiter;
/// let limiter = Limiter::new(parse_quota("2/min")?);
/// assert!(limiter.check(b"alice").is_ok());
/// assert!(limiter.check(b"alice").is_ok());
/// let retry = limiter.check(b"alice").unwrap_err();
/// assert!(retry.as_secs() >= 29);
/// limiter.refund(b"alice");
/// assert!(limiter.check(b"alice").is_ok(), "one unit given back");
/// assert!(limiter.check(b"bob").is_ok(), "another key has its own bucket");
/// # Ok::<(), tower_plugins_core::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct Limiter {
    settings: Settings,
    engine: Arc<Engine>,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("quota", &self.settings.rules[0].quota)
            .field("max_keys", &self.settings.max_keys)
            .finish_non_exhaustive()
    }
}

impl Limiter {
    /// A limiter admitting `quota` per key (the burst is the quota's count).
    pub fn new(quota: Quota) -> Self {
        let settings = Settings {
            rules: vec![Rule::new("limiter", quota)],
            ..Settings::default()
        };
        let engine = Arc::new(Engine::new(&settings));
        Limiter { settings, engine }
    }

    fn map(mut self, f: impl FnOnce(&mut Settings)) -> Self {
        f(&mut self.settings);
        self.engine = Arc::new(Engine::new(&self.settings));
        self
    }

    /// How many may come at once (default: the quota's count).
    pub fn burst(self, burst: NonZeroU32) -> Self {
        self.map(|s| s.burst = Some(burst))
    }

    /// The most keys kept (default 100,000; within 1 to [`MAX_KEYS`](crate::MAX_KEYS)).
    pub fn max_keys(self, n: usize) -> Self {
        self.map(|s| s.max_keys = n.clamp(1, crate::MAX_KEYS))
    }

    /// A manual clock, for tests.
    pub fn clock(self, clock: ManualClock) -> Self {
        self.map(|s| s.clock = Some(clock))
    }

    /// Takes one unit of `key`'s bucket; `Err` with the wait until one is there (rounded up
    /// to whole seconds, at least one) when it is empty, which takes nothing.
    ///
    /// # Errors
    /// The time to wait, when the bucket is empty.
    pub fn check(&self, key: &[u8]) -> Result<(), Duration> {
        let rule = &self.engine.rules[0];
        let Some((limiter, store)) = &rule.limiter else {
            return Ok(());
        };
        let probe = Probe::new(Key::Text(key.into()));
        if limiter.check_key(&probe).is_ok() {
            return Ok(());
        }
        let wait = probe
            .tat
            .get()
            .saturating_sub(rule.tau)
            .saturating_sub(store.decision_time());
        Err(Duration::from_secs(crate::engine::ceil_secs(wait).max(1)))
    }

    /// Gives one unit back to `key`'s bucket (after a success that should not count).
    pub fn refund(&self, key: &[u8]) {
        let rule = &self.engine.rules[0];
        if let Some((_, store)) = &rule.limiter {
            store.refund(&Key::Text(key.into()), rule.t);
        }
    }
}
