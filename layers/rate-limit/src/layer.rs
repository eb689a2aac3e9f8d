//! [`RateLimitLayer`], its [`Rule`]s and the shared state every clone of the layer uses.

use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use governor::RateLimiter;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::StateStore;
use http::{Method, Response};
use tower_layer::Layer;
use tower_plugins_core::{ClientIpResolver, PathSet, Quota};

use crate::RateLimit;
use crate::clock::{ManualClock, RateClock};
use crate::key::{KeySource, UnknownKey};
use crate::lines::Lines;
use crate::store::{Probe, Store};

/// Which answers a rule counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Count {
    /// Every request (the default).
    #[default]
    All,
    /// Only requests answered 4xx or 5xx, for brute-force protection of a login form: a
    /// request is charged when it arrives (so concurrent attempts cannot overrun the limit)
    /// and refunded when its answer is a success.
    Failures,
}

/// What a request gets when the backend cannot be asked (Redis away or too slow).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnBackendError {
    /// Let the request through, unlimited (fail open; the default).
    #[default]
    Allow,
    /// Answer `503 Service Unavailable` with `Retry-After: 1` (fail closed).
    Deny,
}

/// One limit: which requests it applies to, how many it admits, and what it counts them by.
///
/// ```
/// use http::Method;
/// use tower_plugins_core::{PathSet, parse_quota};
/// use tower_plugins_rate_limit::{Count, Rule};
///
/// let login = Rule::new("login", parse_quota("5/min")?)
///     .paths(PathSet::new(["/login"])?)
///     .methods([Method::POST])
///     .count(Count::Failures);
/// # Ok::<(), tower_plugins_core::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Rule {
    pub(crate) name: String,
    pub(crate) paths: PathSet,
    pub(crate) methods: Vec<Method>,
    pub(crate) quota: Quota,
    pub(crate) burst: Option<NonZeroU32>,
    pub(crate) key: Option<KeySource>,
    pub(crate) count: Count,
    pub(crate) shadow: Option<bool>,
}

impl Rule {
    /// A rule named `name` (the policy name in the `RateLimit` headers) admitting `quota`,
    /// for every path and method, keyed as the layer's [`key`](RateLimitLayer::key) says.
    pub fn new(name: impl Into<String>, quota: Quota) -> Self {
        Rule {
            name: name.into(),
            paths: PathSet::default(),
            methods: Vec::new(),
            quota,
            burst: None,
            key: None,
            count: Count::All,
            shadow: None,
        }
    }

    /// The paths the rule applies to. Default: all.
    pub fn paths(mut self, paths: PathSet) -> Self {
        self.paths = paths;
        self
    }

    /// The methods the rule applies to. Default: all.
    pub fn methods(mut self, methods: impl IntoIterator<Item = Method>) -> Self {
        self.methods = methods.into_iter().collect();
        self
    }

    /// How many requests may arrive at once before the steady rate applies. Default: the
    /// quota's count (`100/min` admits 100 at once, then one every 0.6 s).
    pub fn burst(mut self, burst: NonZeroU32) -> Self {
        self.burst = Some(burst);
        self
    }

    /// What the rule counts per. Default: the layer's key.
    pub fn key(mut self, key: KeySource) -> Self {
        self.key = Some(key);
        self
    }

    /// Which answers count. Default: all.
    pub fn count(mut self, count: Count) -> Self {
        self.count = count;
        self
    }

    /// Count and report, but never refuse. Default: the layer's setting.
    pub fn shadow(mut self, shadow: bool) -> Self {
        self.shadow = Some(shadow);
        self
    }

    /// The rule's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Why a request was refused, for a custom answer ([`RateLimitLayer::on_reject`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Rejection {
    /// The name of the rule that refused the request.
    pub policy: String,
    /// Why.
    pub reason: RejectReason,
    /// When a request would be admitted again (at least one second; rounded up).
    pub retry_after: Duration,
    /// The rule's burst.
    pub limit: u32,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectReason {
    /// The key's bucket is empty.
    Limited,
    /// No usable key, and the policy is [`UnknownKey::Deny`].
    NoKey,
    /// The backend could not be asked, and the policy is [`OnBackendError::Deny`].
    BackendUnavailable,
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RejectReason::Limited => "rate limit exceeded",
            RejectReason::NoKey => "no rate-limit key",
            RejectReason::BackendUnavailable => "rate-limit backend unavailable",
        })
    }
}

type OnReject = Arc<dyn Fn(&Rejection) -> Response<Bytes> + Send + Sync>;

/// What the limiter has seen and dropped, from [`RateLimitLayer::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimitStats {
    /// Keys held in memory now (memory backend).
    pub keys: usize,
    /// Requests refused.
    pub limited: u64,
    /// Requests a `shadow` rule would have refused.
    pub shadow_limited: u64,
    /// Backend calls that failed or timed out.
    pub backend_errors: u64,
    /// Keys removed because their bucket was full again (no information lost).
    pub swept: u64,
    /// Keys forgotten early because the map was at `max_keys`.
    pub evicted_full: u64,
}

/// The settings a layer is built from.
#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) rules: Vec<Rule>,
    pub(crate) burst: Option<NonZeroU32>,
    pub(crate) key: KeySource,
    pub(crate) client_ip: Arc<ClientIpResolver>,
    pub(crate) exempt_paths: PathSet,
    pub(crate) exempt_ips: Vec<ipnet::IpNet>,
    pub(crate) unknown_key: UnknownKey,
    pub(crate) shadow: bool,
    pub(crate) headers: bool,
    pub(crate) legacy_headers: bool,
    pub(crate) max_keys: usize,
    pub(crate) sweep_every: Duration,
    pub(crate) clock: Option<ManualClock>,
    pub(crate) on_backend_error: OnBackendError,
    pub(crate) on_reject: Option<OnReject>,
    #[cfg(feature = "redis")]
    pub(crate) redis: Option<crate::redis::RedisSettings>,
}

/// The default cap on keys per rule.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

impl Default for Settings {
    fn default() -> Self {
        Settings {
            rules: Vec::new(),
            burst: None,
            key: KeySource::client_ip(),
            client_ip: Arc::new(ClientIpResolver::new()),
            exempt_paths: PathSet::default(),
            exempt_ips: Vec::new(),
            unknown_key: UnknownKey::Shared,
            shadow: false,
            headers: true,
            legacy_headers: false,
            max_keys: DEFAULT_MAX_KEYS,
            sweep_every: Duration::from_secs(10),
            clock: None,
            on_backend_error: OnBackendError::Allow,
            on_reject: None,
            #[cfg(feature = "redis")]
            redis: None,
        }
    }
}

/// The memory store as governor's state store (the sweeper holds the same `Arc`).
#[derive(Debug)]
pub(crate) struct SharedStore(pub(crate) Arc<Store>);

impl StateStore for SharedStore {
    type Key = Probe;

    #[inline]
    fn measure_and_replace<T, F, E>(&self, key: &Probe, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        self.0.measure_and_replace(key, f)
    }
}

pub(crate) type Limiter = RateLimiter<Probe, SharedStore, RateClock, NoOpMiddleware<Nanos>>;

/// A rule, ready to decide.
pub(crate) struct Compiled {
    pub(crate) name: Box<str>,
    pub(crate) paths: PathSet,
    pub(crate) methods: Vec<Method>,
    pub(crate) key: KeySource,
    pub(crate) count: Count,
    pub(crate) shadow: bool,
    pub(crate) burst: u32,
    /// Nanoseconds between two units at the steady rate.
    pub(crate) t: u64,
    /// How far ahead of now the TAT may run: `t * (burst - 1)`.
    pub(crate) tau: u64,
    /// This rule's `RateLimit-Policy` and `RateLimit` values.
    pub(crate) lines: Lines,
    /// The memory limiter (absent under the Redis backend).
    pub(crate) limiter: Option<(Limiter, Arc<Store>)>,
}

impl Compiled {
    #[inline]
    pub(crate) fn applies(&self, method: &Method, path: &str) -> bool {
        (self.methods.is_empty() || self.methods.contains(method))
            && (self.paths.is_empty() || self.paths.matches(path))
    }

    /// Units left when the TAT is `tat` at `now`.
    #[inline]
    pub(crate) fn remaining(&self, tat: u64, now: u64) -> u32 {
        let room = (now + self.tau + self.t).saturating_sub(tat);
        (room / self.t).min(u64::from(self.burst)) as u32
    }
}

/// The state every clone of the layer (and every service it makes) shares.
pub(crate) struct Engine {
    pub(crate) rules: Vec<Compiled>,
    pub(crate) client_ip: Arc<ClientIpResolver>,
    pub(crate) exempt_paths: PathSet,
    pub(crate) exempt_ips: Vec<ipnet::IpNet>,
    pub(crate) needs_ip: bool,
    pub(crate) unknown_key: UnknownKey,
    pub(crate) headers: bool,
    pub(crate) legacy_headers: bool,
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) on_backend_error: OnBackendError,
    pub(crate) on_reject: Option<OnReject>,
    pub(crate) limited: AtomicU64,
    pub(crate) shadow_limited: AtomicU64,
    pub(crate) backend_errors: AtomicU64,
    #[cfg(feature = "redis")]
    pub(crate) redis: Option<crate::redis::RedisBackend>,
}

impl Engine {
    fn new(s: &Settings) -> Self {
        #[cfg(feature = "redis")]
        let redis = s.redis.as_ref().map(crate::redis::RedisBackend::new);
        #[cfg(feature = "redis")]
        let memory = redis.is_none();
        #[cfg(not(feature = "redis"))]
        let memory = true;
        let rules: Vec<Compiled> = s
            .rules
            .iter()
            .map(|r| {
                let burst = r.burst.or(s.burst).unwrap_or(r.quota.count());
                let t = u64::try_from(r.quota.interval().as_nanos())
                    .unwrap_or(u64::MAX)
                    .max(1);
                let tau = t.saturating_mul(u64::from(burst.get() - 1));
                // Whole seconds to refill the whole burst: the largest reset, and the window.
                let full = crate::service::ceil_secs(t.saturating_mul(u64::from(burst.get())));
                let window = full.max(1);
                let mut item = String::with_capacity(r.name.len() + 2);
                // A String's writes do not fail.
                let _ = tower_plugins_core::write_quoted(&mut item, &r.name);
                let limiter = memory.then(|| {
                    let clock = match &s.clock {
                        Some(m) => RateClock::Manual(m.clone()),
                        None => RateClock::system(),
                    };
                    let store = Arc::new(Store::new(s.max_keys, clock.clone(), s.sweep_every));
                    crate::store::register(&store);
                    let quota = governor::Quota::with_period(Duration::from_nanos(t))
                        .expect("the interval is at least one nanosecond")
                        .allow_burst(burst);
                    let limiter = RateLimiter::new(quota, SharedStore(store.clone()), clock);
                    store.start_at_last_reading();
                    (limiter, store)
                });
                Compiled {
                    name: r.name.as_str().into(),
                    paths: r.paths.clone(),
                    methods: r.methods.clone(),
                    key: r.key.clone().unwrap_or_else(|| s.key.clone()),
                    count: r.count,
                    shadow: r.shadow.unwrap_or(s.shadow),
                    burst: burst.get(),
                    t,
                    tau,
                    lines: Lines::new(item, burst.get(), full, window),
                    limiter,
                }
            })
            .collect();
        let needs_ip = !s.exempt_ips.is_empty()
            || matches!(s.unknown_key, UnknownKey::ClientIp { .. })
            || rules.iter().any(|r| r.key.needs_ip());
        Engine {
            rules,
            client_ip: s.client_ip.clone(),
            exempt_paths: s.exempt_paths.clone(),
            exempt_ips: s.exempt_ips.clone(),
            needs_ip,
            unknown_key: s.unknown_key,
            headers: s.headers,
            legacy_headers: s.legacy_headers,
            on_backend_error: s.on_backend_error,
            on_reject: s.on_reject.clone(),
            limited: AtomicU64::new(0),
            shadow_limited: AtomicU64::new(0),
            backend_errors: AtomicU64::new(0),
            #[cfg(feature = "redis")]
            redis,
        }
    }

    pub(crate) fn is_exempt_ip(&self, ip: Option<IpAddr>) -> bool {
        ip.is_some_and(|ip| self.exempt_ips.iter().any(|n| n.contains(&ip)))
    }

    fn stores(&self) -> impl Iterator<Item = &Arc<Store>> {
        self.rules
            .iter()
            .filter_map(|r| r.limiter.as_ref().map(|(_, s)| s))
    }
}

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
    /// Default: 100,000 (about 5 MB per rule; see the crate README for the measured figure).
    pub fn max_keys(self, max: usize) -> Self {
        self.map(|s| s.max_keys = max.max(1))
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
    pub fn redis(self, redis: crate::redis::RedisSettings) -> Self {
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
            backend_errors: load(&e.backend_errors),
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
