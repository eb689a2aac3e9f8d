//! The decision's machinery: the settings compiled into rules with their limiters, and which
//! rules apply to a request with what key.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use governor::RateLimiter;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::StateStore;
use http::{Method, Request};
use tower_plugins_core::{ClientIpResolver, PathSet, Quota};

use crate::clock::RateClock;
use crate::header_values::Lines;
use crate::key::{Key, KeyRequest, KeySource, UnknownKey, ip_key};
#[cfg(feature = "redis")]
use crate::redis::RedisBackend;
use crate::settings::{Count, OnBackendError, OnReject, Settings};
use crate::store::{Probe, Store};

pub(crate) const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Whole seconds, rounded up.
#[inline]
pub(crate) fn ceil_secs(ns: u64) -> u64 {
    ns.div_ceil(NANOS_PER_SEC)
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
    pub(crate) redis: Option<RedisBackend>,
}

/// A rule's interval in nanoseconds and its burst, within the bounds a configuration is
/// checked against (a quota from code may be past them): at most one event per
/// [`Quota::MIN_INTERVAL`], and a burst that refills within [`Quota::MAX_PERIOD`], so that no
/// figure of the rate arithmetic overflows.
fn bounded(quota: Quota, burst: Option<NonZeroU32>) -> (u64, NonZeroU32) {
    let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    let t = nanos(quota.interval()).max(nanos(Quota::MIN_INTERVAL));
    let most = u32::try_from(nanos(Quota::MAX_PERIOD) / t).unwrap_or(u32::MAX);
    let most = NonZeroU32::new(most).unwrap_or(NonZeroU32::MIN);
    let burst = burst.unwrap_or(quota.count()).min(most);
    (t, burst)
}

impl Engine {
    pub(crate) fn new(s: &Settings) -> Self {
        #[cfg(feature = "redis")]
        let redis = s.redis.as_ref().map(RedisBackend::new);
        #[cfg(feature = "redis")]
        let memory = redis.is_none();
        #[cfg(not(feature = "redis"))]
        let memory = true;
        let rules: Vec<Compiled> = s
            .rules
            .iter()
            .map(|r| {
                let (t, burst) = bounded(r.quota, r.burst.or(s.burst));
                let tau = t.saturating_mul(u64::from(burst.get() - 1));
                // Whole seconds to refill the whole burst: the policy's window.
                let window = ceil_secs(t.saturating_mul(u64::from(burst.get()))).max(1);
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
                    lines: Lines::new(item, burst.get(), t, window),
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

    /// Backend calls that failed or timed out (malformed replies count in `backend_errors`).
    pub(crate) fn remote_errors(&self) -> u64 {
        #[cfg(feature = "redis")]
        if let Some(redis) = &self.redis {
            return redis.errors();
        }
        0
    }

    pub(crate) fn is_exempt_ip(&self, ip: Option<IpAddr>) -> bool {
        ip.is_some_and(|ip| self.exempt_ips.iter().any(|n| n.contains(&ip)))
    }

    pub(crate) fn stores(&self) -> impl Iterator<Item = &Arc<Store>> {
        self.rules
            .iter()
            .filter_map(|r| r.limiter.as_ref().map(|(_, s)| s))
    }
}

/// A rule that applies to a request, with the key it found.
#[cfg(feature = "redis")]
pub(crate) enum Matched {
    Key(usize, Key),
    /// No usable key and the policy is to refuse.
    Deny(usize),
}

/// What key extraction needs of a request, with the index of the first rule that applies to
/// it, or `None` when none applies or the request is exempt. The client's address is only
/// resolved for requests some rule limits.
#[inline]
pub(crate) fn prepare<'a, B>(e: &Engine, req: &'a Request<B>) -> Option<(usize, KeyRequest<'a>)> {
    let path = req.uri().path();
    if !e.exempt_paths.is_empty() && e.exempt_paths.matches(path) {
        return None;
    }
    let first = e.rules.iter().position(|r| r.applies(req.method(), path))?;
    let ip = if e.needs_ip {
        e.client_ip.resolve_cached(req)
    } else {
        None
    };
    if e.is_exempt_ip(ip) {
        return None;
    }
    Some((
        first,
        KeyRequest {
            method: req.method(),
            uri: req.uri(),
            headers: req.headers(),
            extensions: req.extensions(),
            client_ip: ip,
        },
    ))
}

/// The rules from `first` on that apply to `kreq`, with their indices: `first` is the one
/// [`prepare`] found, so its path and method are not matched again.
#[inline]
pub(crate) fn applying<'e, 'r>(
    e: &'e Engine,
    first: usize,
    kreq: &KeyRequest<'r>,
) -> impl Iterator<Item = (usize, &'e Compiled)> + use<'e, 'r> {
    let (method, path) = (kreq.method, kreq.uri.path());
    e.rules
        .iter()
        .enumerate()
        .skip(first)
        .filter(move |(i, rule)| *i == first || rule.applies(method, path))
}

/// The key a rule that applies counts `kreq` under: `Some(Ok(key))`, `None` when it has no
/// usable key and the policy is to let it through, `Some(Err(()))` when the policy is to
/// refuse.
#[inline]
pub(crate) fn key_for(
    e: &Engine,
    rule: &Compiled,
    kreq: &KeyRequest<'_>,
) -> Option<Result<Key, ()>> {
    Some(match rule.key.extract(kreq) {
        Some(k) => Ok(k),
        None => match e.unknown_key {
            UnknownKey::Shared => Ok(Key::Unknown),
            UnknownKey::ClientIp {
                v4_prefix,
                v6_prefix,
            } => Ok(kreq
                .client_ip
                .map_or(Key::Unknown, |ip| ip_key(ip, v4_prefix, v6_prefix))),
            UnknownKey::Allow => return None,
            UnknownKey::Deny => Err(()),
        },
    })
}

/// The rules that apply to `req`, each with its key (for the Redis backend, which asks
/// about all of them in one call).
#[cfg(feature = "redis")]
pub(crate) fn matched<B>(e: &Engine, req: &Request<B>) -> FirstInline<Matched> {
    let mut out = FirstInline::Zero;
    let Some((first, kreq)) = prepare(e, req) else {
        return out;
    };
    for (i, rule) in applying(e, first, &kreq) {
        match key_for(e, rule, &kreq) {
            None => {}
            Some(Ok(key)) => out.push(Matched::Key(i, key)),
            Some(Err(())) => out.push(Matched::Deny(i)),
        }
    }
    out
}

/// A list whose first item is stored inline: zero, one or many of something, without
/// allocating for the first (most requests match one rule).
#[derive(Debug, Default)]
pub(crate) enum FirstInline<T> {
    #[default]
    Zero,
    One(T),
    Many(Vec<T>),
}

impl<T> FirstInline<T> {
    pub(crate) fn push(&mut self, item: T) {
        match self {
            // Written in place: the first item (the hot case) moves nothing else.
            FirstInline::Zero => *self = FirstInline::One(item),
            FirstInline::One(_) => {
                let FirstInline::One(first) = std::mem::take(self) else {
                    unreachable!("matched One")
                };
                *self = FirstInline::Many(vec![first, item]);
            }
            FirstInline::Many(v) => v.push(item),
        }
    }

    pub(crate) fn as_slice(&self) -> &[T] {
        match self {
            FirstInline::Zero => &[],
            FirstInline::One(x) => std::slice::from_ref(x),
            FirstInline::Many(v) => v,
        }
    }

    #[cfg(feature = "redis")]
    pub(crate) fn is_empty(&self) -> bool {
        matches!(self, FirstInline::Zero)
    }
}

impl<T> IntoIterator for FirstInline<T> {
    type Item = T;
    type IntoIter = std::iter::Chain<std::option::IntoIter<T>, std::vec::IntoIter<T>>;

    fn into_iter(self) -> Self::IntoIter {
        let (one, many) = match self {
            FirstInline::Zero => (None, Vec::new()),
            FirstInline::One(x) => (Some(x), Vec::new()),
            FirstInline::Many(v) => (None, v),
        };
        one.into_iter().chain(many)
    }
}
