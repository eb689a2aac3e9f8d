//! [`RateLimitLayer`]: its settings and the engine every clone of the layer shares.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::Response;
use tower_layer::Layer;
use tower_plugins_core::{ClientIpResolver, PathSet, Quota};

use crate::RateLimit;
use crate::clock::ManualClock;
use crate::engine::Engine;
use crate::key::{KeySource, UnknownKey};
use crate::settings::{Count, OnBackendError, OnReject, RateLimitStats, Rejection, Rule, Settings};

/// Limits requests with GCRA buckets. See the [crate docs](crate) for an example.
///
/// Every clone of the layer, and every service it makes, shares one set of buckets, so the
/// limit holds however many connections axum or hyper serve at once. The buckets are made
/// when the layer first wraps a service (or is asked for its stats); a setter called after
/// that starts from fresh buckets, so configure the layer before handing it out.
#[derive(Clone)]
#[must_use]
pub struct RateLimitLayer {
    settings: Arc<Settings>,
    /// Built once, on first use, from `settings`, and shared by every clone made since.
    engine: Arc<OnceLock<Arc<Engine>>>,
}

impl Default for RateLimitLayer {
    fn default() -> Self {
        Self::from_rules([])
    }
}

impl fmt::Debug for RateLimitLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.settings;
        f.debug_struct("RateLimitLayer")
            .field("rules", &s.rules)
            .field("key", &s.key)
            .field("unknown_key", &s.unknown_key)
            .field("headers", &s.headers)
            .field("legacy_headers", &s.legacy_headers)
            .field("max_keys", &s.max_keys)
            .finish_non_exhaustive()
    }
}

impl RateLimitLayer {
    /// One rule, named `default`, admitting `quota` on every path per client address.
    ///
    /// ```
    /// use tower_plugins_core::parse_quota;
    /// use tower_plugins_rate_limit::RateLimitLayer;
    ///
    /// let layer = RateLimitLayer::new(parse_quota("100/min")?);
    /// # Ok::<(), tower_plugins_core::ConfigError>(())
    /// ```
    pub fn new(quota: Quota) -> Self {
        Self::from_rules([Rule::new("default", quota)])
    }

    /// The given rules, in order (a request must pass every rule that applies to it).
    pub fn from_rules(rules: impl IntoIterator<Item = Rule>) -> Self {
        RateLimitLayer {
            settings: Arc::new(Settings {
                rules: rules.into_iter().collect(),
                ..Settings::default()
            }),
            engine: Arc::default(),
        }
    }

    fn map(mut self, f: impl FnOnce(&mut Settings)) -> Self {
        f(Arc::make_mut(&mut self.settings));
        self.engine = Arc::default();
        self
    }

    /// The shared state, built on first use.
    pub(crate) fn engine(&self) -> &Arc<Engine> {
        self.engine
            .get_or_init(|| Arc::new(Engine::new(&self.settings)))
    }

    /// Adds a rule after the existing ones.
    pub fn rule(self, rule: Rule) -> Self {
        self.map(|s| s.rules.push(rule))
    }

    /// The burst of every rule that does not set its own. Default: each quota's count.
    pub fn burst(self, burst: NonZeroU32) -> Self {
        self.map(|s| s.burst = Some(burst))
    }

    /// What rules without their own key count per. Default: [`KeySource::client_ip`].
    pub fn key(self, key: KeySource) -> Self {
        self.map(|s| s.key = key)
    }

    /// How the client's address is found (trusted proxies and their header). Default: the
    /// peer address, no proxy trusted. A [`PluginStack`] passes its `[client_ip]` section.
    ///
    /// [`PluginStack`]: https://docs.rs/tower-plugins
    pub fn client_ip(self, resolver: impl Into<Arc<ClientIpResolver>>) -> Self {
        let r = resolver.into();
        self.map(|s| s.client_ip = r)
    }

    /// Paths never limited (and given no `RateLimit` headers). Default: none.
    pub fn exempt_paths(self, paths: PathSet) -> Self {
        self.map(|s| s.exempt_paths = paths)
    }

    /// Client networks never limited (matched against the resolved client address).
    /// Default: none.
    pub fn exempt_ips(self, nets: impl IntoIterator<Item = ipnet::IpNet>) -> Self {
        let nets: Vec<_> = nets.into_iter().collect();
        self.map(|s| s.exempt_ips = nets)
    }

    /// What happens to requests without a usable key. Default: [`UnknownKey::Shared`].
    pub fn unknown_key(self, policy: UnknownKey) -> Self {
        self.map(|s| s.unknown_key = policy)
    }

    /// Count and report, but never refuse, for rules that do not set it themselves.
    /// Default: false.
    pub fn shadow(self, shadow: bool) -> Self {
        self.map(|s| s.shadow = shadow)
    }

    /// Whether limited routes answer `RateLimit-Policy` and `RateLimit` headers. Default: true.
    pub fn headers(self, on: bool) -> Self {
        self.map(|s| s.headers = on)
    }

    /// Whether limited routes also answer `X-RateLimit-Limit`, `X-RateLimit-Remaining` and
    /// `X-RateLimit-Reset` (seconds from now). Default: false.
    pub fn legacy_headers(self, on: bool) -> Self {
        self.map(|s| s.legacy_headers = on)
    }

    /// The most keys each rule keeps in memory. When a rule's map is full, buckets that are
    /// full again are dropped first (losing nothing), then the ones closest to full.
    /// Default: 100,000 (about 5 MB per rule; see the crate README for the measured figure);
    /// brought within 1 to [`MAX_KEYS`](crate::MAX_KEYS).
    pub fn max_keys(self, max: usize) -> Self {
        self.map(|s| s.max_keys = max.clamp(1, crate::MAX_KEYS))
    }

    /// How often the sweeper thread removes buckets that are full again. Default: 10 s.
    pub fn sweep_interval(self, every: Duration) -> Self {
        self.map(|s| s.sweep_every = every.max(Duration::from_millis(1)))
    }

    /// Reads time from `clock` instead of the system's (memory backend only), to test limits
    /// without waiting.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_plugins_core::parse_quota;
    /// use tower_plugins_rate_limit::{ManualClock, RateLimitLayer};
    ///
    /// let clock = ManualClock::new();
    /// let layer = RateLimitLayer::new(parse_quota("1/s")?).clock(clock.clone());
    /// clock.advance(Duration::from_secs(1));
    /// # Ok::<(), tower_plugins_core::ConfigError>(())
    /// ```
    pub fn clock(self, clock: ManualClock) -> Self {
        self.map(|s| s.clock = Some(clock))
    }

    /// What requests get when the backend cannot be asked. Default: [`OnBackendError::Allow`].
    pub fn on_backend_error(self, policy: OnBackendError) -> Self {
        self.map(|s| s.on_backend_error = policy)
    }

    /// Writes refusals with `f` instead of the default `application/problem+json` body.
    /// `Retry-After` and the `RateLimit` headers are added unless `f` set them.
    ///
    /// ```
    /// use http::{Response, StatusCode};
    /// use tower_plugins_core::parse_quota;
    /// use tower_plugins_rate_limit::RateLimitLayer;
    ///
    /// let layer = RateLimitLayer::new(parse_quota("10/s")?).on_reject(|r| {
    ///     let mut res = Response::new(format!("slow down ({})\n", r.policy).into());
    ///     *res.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    ///     res
    /// });
    /// # Ok::<(), tower_plugins_core::ConfigError>(())
    /// ```
    pub fn on_reject<F>(self, f: F) -> Self
    where
        F: Fn(&Rejection) -> Response<Bytes> + Send + Sync + 'static,
    {
        let f: OnReject = Arc::new(f);
        self.map(|s| s.on_reject = Some(f))
    }

    /// Keeps the buckets in Redis, shared by every instance of the application.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn redis(self, redis: crate::RedisSettings) -> Self {
        self.map(|s| s.redis = Some(redis))
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.settings.rules
    }

    /// Removes, now, every bucket that is full again (the sweeper thread does this every
    /// [`sweep_interval`](Self::sweep_interval)). Returns how many keys were removed.
    pub fn sweep(&self) -> usize {
        self.engine().stores().map(|s| s.sweep()).sum()
    }

    /// The bytes the memory backend's tables hold (an estimate from their capacity).
    pub fn memory_bytes(&self) -> usize {
        self.engine().stores().map(|s| s.heap_bytes()).sum()
    }

    /// What the limiter has seen and dropped so far.
    pub fn stats(&self) -> RateLimitStats {
        let e = self.engine();
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RateLimitStats {
            keys: e.stores().map(|s| s.len()).sum(),
            limited: load(&e.limited),
            shadow_limited: load(&e.shadow_limited),
            backend_errors: load(&e.backend_errors) + e.remote_errors(),
            swept: e.stores().map(|s| load(&s.counters.swept)).sum(),
            evicted_full: e.stores().map(|s| load(&s.counters.evicted_full)).sum(),
        }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit {
            inner,
            engine: self.engine().clone(),
        }
    }
}

impl RateLimitLayer {
    /// A one-line summary, as the plugin stack prints it.
    pub fn describe(&self) -> String {
        let s = &self.settings;
        let rules: Vec<String> = s
            .rules
            .iter()
            .map(|r| {
                let mut d = format!("{} {}", r.name, r.quota);
                if let Some(b) = r.burst.or(s.burst) {
                    d.push_str(&format!(" burst {b}"));
                }
                if !r.paths.is_empty() {
                    let p: Vec<_> = r.paths.patterns().iter().map(|p| p.as_str()).collect();
                    d.push_str(&format!(" on {}", p.join(" ")));
                }
                d.push_str(&format!(" per {}", r.key.as_ref().unwrap_or(&s.key)));
                if r.count == Count::Failures {
                    d.push_str(" (failures)");
                }
                if r.shadow.unwrap_or(s.shadow) {
                    d.push_str(" (shadow)");
                }
                d
            })
            .collect();
        #[cfg(feature = "redis")]
        let backend = if s.redis.is_some() { "redis" } else { "memory" };
        #[cfg(not(feature = "redis"))]
        let backend = "memory";
        format!("{}; {backend}", rules.join(", "))
    }
}
