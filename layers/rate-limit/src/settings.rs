//! The rate limiter's settings and the public types that describe them: rules, what they
//! count, what happens when the backend cannot be asked, and why a request was refused.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Response};
use tower_plugins_core::{ClientIpResolver, PathSet, Quota};

use crate::clock::ManualClock;
use crate::key::{KeySource, UnknownKey};

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

impl OnBackendError {
    /// The policy as configured: `"allow"` or `"deny"`.
    pub fn as_str(self) -> &'static str {
        match self {
            OnBackendError::Allow => "allow",
            OnBackendError::Deny => "deny",
        }
    }
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
    /// for every path and method, keyed as the layer's [`key`](crate::RateLimitLayer::key) says.
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

/// Why a request was refused, for a custom answer ([`RateLimitLayer::on_reject`](crate::RateLimitLayer::on_reject)).
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

pub(crate) type OnReject = Arc<dyn Fn(&Rejection) -> Response<Bytes> + Send + Sync>;

/// What the limiter has seen and dropped, from [`RateLimitLayer::stats`](crate::RateLimitLayer::stats).
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
    pub(crate) redis: Option<crate::RedisSettings>,
}

/// The default cap on keys per rule.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// The most keys a rule may keep in memory (`max_keys`): ten million, about 430 MB at full.
pub const MAX_KEYS: usize = 10_000_000;

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
