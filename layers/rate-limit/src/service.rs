//! [`RateLimit`], its [`ResponseFuture`], and the headers and refusals it writes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_plugins_core::{PluginBody, PluginFuture, write_json_str};
use tower_service::Service;

use crate::key::{Key, KeyRequest, UnknownKey, ip_key};
use crate::layer::{Compiled, Count, Engine, RejectReason, Rejection};
use crate::lines::{Line, int_value};
use crate::store::Probe;

pub(crate) const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
pub(crate) const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
const X_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const X_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const X_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
const PROBLEM_JSON: HeaderValue = HeaderValue::from_static("application/problem+json");
const NANOS_PER_SEC: u64 = 1_000_000_000;

/// The rate-limiting service. See the [crate docs](crate) for an example.
pub struct RateLimit<S> {
    pub(crate) inner: S,
    pub(crate) engine: Arc<Engine>,
}

impl<S: Clone> Clone for RateLimit<S> {
    fn clone(&self) -> Self {
        RateLimit {
            inner: self.inner.clone(),
            engine: self.engine.clone(),
        }
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for RateLimit<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimit")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S> RateLimit<S> {
    /// Wraps `inner` with the rules (and the shared buckets) of `layer`.
    pub fn new(inner: S, layer: &crate::RateLimitLayer) -> Self {
        RateLimit {
            inner,
            engine: layer.engine().clone(),
        }
    }

    tower_plugins_core::inner_service_accessors!();
}

/// Zero, one or many of something, without allocating for the first.
#[derive(Debug, Default)]
pub(crate) enum Few<T> {
    #[default]
    Zero,
    One(T),
    Many(Vec<T>),
}

impl<T> Few<T> {
    pub(crate) fn push(&mut self, item: T) {
        match self {
            // Written in place: the first item (the hot case) moves nothing else.
            Few::Zero => *self = Few::One(item),
            Few::One(_) => {
                let Few::One(first) = std::mem::take(self) else {
                    unreachable!("matched One")
                };
                *self = Few::Many(vec![first, item]);
            }
            Few::Many(v) => v.push(item),
        }
    }

    pub(crate) fn as_slice(&self) -> &[T] {
        match self {
            Few::Zero => &[],
            Few::One(x) => std::slice::from_ref(x),
            Few::Many(v) => v,
        }
    }

    #[cfg(feature = "redis")]
    pub(crate) fn is_empty(&self) -> bool {
        matches!(self, Few::Zero)
    }
}

impl<T> IntoIterator for Few<T> {
    type Item = T;
    type IntoIter = std::iter::Chain<std::option::IntoIter<T>, std::vec::IntoIter<T>>;

    fn into_iter(self) -> Self::IntoIter {
        let (one, many) = match self {
            Few::Zero => (None, Vec::new()),
            Few::One(x) => (Some(x), Vec::new()),
            Few::Many(v) => (None, v),
        };
        one.into_iter().chain(many)
    }
}

/// Units given back when a `count = "failures"` request succeeds.
pub(crate) struct Refund {
    pub(crate) engine: Arc<Engine>,
    pub(crate) items: Few<(usize, Key)>,
}

impl Refund {
    fn run(self) {
        #[cfg(feature = "redis")]
        if let Some(redis) = &self.engine.redis {
            redis.refund(&self.engine, self.items);
            return;
        }
        for (i, key) in self.items.as_slice() {
            let rule = &self.engine.rules[*i];
            if let Some((_, store)) = &rule.limiter {
                store.refund(key, rule.t);
            }
        }
    }
}

/// What an admitted request's response is given.
#[derive(Default)]
pub(crate) struct Report {
    /// `RateLimit-Policy` and `RateLimit` for each rule that applied.
    lines: Few<Line>,
    /// The legacy headers' figures: those of the tightest rule.
    legacy: Option<Legacy>,
    refund: Option<Box<Refund>>,
}

impl std::fmt::Debug for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Report")
            .field("lines", &self.lines)
            .finish_non_exhaustive()
    }
}

/// `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (seconds from now).
#[derive(Debug, Clone, Copy)]
struct Legacy {
    limit: u32,
    remaining: u32,
    reset_secs: u64,
}

impl Legacy {
    /// Writes the three headers, keeping any the handler (or a custom refusal) set.
    fn write(self, h: &mut HeaderMap) {
        h.entry(X_LIMIT)
            .or_insert_with(|| int_value(u64::from(self.limit)));
        h.entry(X_REMAINING)
            .or_insert_with(|| int_value(u64::from(self.remaining)));
        h.entry(X_RESET)
            .or_insert_with(|| int_value(self.reset_secs));
    }
}

/// Whole seconds, rounded up.
#[inline]
pub(crate) fn ceil_secs(ns: u64) -> u64 {
    ns.div_ceil(NANOS_PER_SEC)
}

impl Report {
    /// Records that `rule` admitted the request, leaving `remaining` units and full again in
    /// `reset_ns`.
    pub(crate) fn admit(&mut self, e: &Engine, rule: &Compiled, remaining: u32, reset_ns: u64) {
        let reset = ceil_secs(reset_ns);
        if e.headers {
            self.lines.push(rule.lines.get(remaining, reset));
        }
        if e.legacy_headers && self.legacy.is_none_or(|l| remaining < l.remaining) {
            self.legacy = Some(Legacy {
                limit: rule.burst,
                remaining,
                reset_secs: reset,
            });
        }
    }

    pub(crate) fn refund_later(&mut self, engine: &Arc<Engine>, rule: usize, key: Key) {
        match &mut self.refund {
            Some(r) => r.items.push((rule, key)),
            None => {
                self.refund = Some(Box::new(Refund {
                    engine: engine.clone(),
                    items: Few::One((rule, key)),
                }));
            }
        }
    }

    fn apply(&mut self, status: StatusCode, headers: &mut HeaderMap) {
        // Matched rather than iterated: the one-rule case is the hot one, and the chained
        // iterator measured slower there.
        match std::mem::take(&mut self.lines) {
            Few::Zero => {}
            Few::One(line) => line.append_to(headers),
            Few::Many(lines) => {
                for line in lines {
                    line.append_to(headers);
                }
            }
        }
        if let Some(l) = self.legacy.take() {
            l.write(headers);
        }
        if let Some(refund) = self.refund.take() {
            if !(status.is_client_error() || status.is_server_error()) {
                refund.run();
            }
        }
    }
}

/// The answer to a refused request.
pub(crate) fn refusal(
    e: &Engine,
    rule: Option<&Compiled>,
    reason: RejectReason,
    wait_ns: u64,
    reset_ns: u64,
) -> Response<Bytes> {
    let retry = ceil_secs(wait_ns).max(1);
    let policy = rule.map_or("", |r| &r.name);
    let limit = rule.map_or(0, |r| r.burst);
    let mut res = match &e.on_reject {
        Some(f) => f(&Rejection {
            policy: policy.to_owned(),
            reason,
            retry_after: std::time::Duration::from_secs(retry),
            limit,
        }),
        None => {
            let status = match reason {
                RejectReason::BackendUnavailable => StatusCode::SERVICE_UNAVAILABLE,
                RejectReason::Limited | RejectReason::NoKey => StatusCode::TOO_MANY_REQUESTS,
            };
            let mut body = Vec::with_capacity(200);
            body.extend_from_slice(b"{\"type\":\"about:blank\",\"title\":");
            write_json_str(
                &mut body,
                status.canonical_reason().unwrap_or("").as_bytes(),
            );
            body.extend_from_slice(b",\"status\":");
            body.extend_from_slice(itoa::Buffer::new().format(status.as_u16()).as_bytes());
            body.extend_from_slice(b",\"detail\":");
            let detail = match reason {
                RejectReason::Limited => {
                    format!("rate limit {policy:?} exceeded; retry in {retry} s")
                }
                RejectReason::NoKey => {
                    format!("rate limit {policy:?} needs a key this request lacks")
                }
                RejectReason::BackendUnavailable => {
                    "the rate limiter cannot decide now; retry shortly".to_owned()
                }
            };
            write_json_str(&mut body, detail.as_bytes());
            if rule.is_some() {
                body.extend_from_slice(b",\"policy\":");
                write_json_str(&mut body, policy.as_bytes());
            }
            body.extend_from_slice(b",\"retry_after\":");
            body.extend_from_slice(itoa::Buffer::new().format(retry).as_bytes());
            body.extend_from_slice(b"}\n");
            let mut res = Response::new(Bytes::from(body));
            *res.status_mut() = status;
            res.headers_mut().insert(CONTENT_TYPE, PROBLEM_JSON);
            res
        }
    };
    let h = res.headers_mut();
    h.entry(RETRY_AFTER).or_insert_with(|| int_value(retry));
    if let Some(rule) = rule.filter(|_| reason == RejectReason::Limited) {
        if e.headers && !h.contains_key(RATELIMIT) {
            let (policy, line) = rule.lines.get(0, ceil_secs(reset_ns)).values();
            h.insert(RATELIMIT_POLICY, policy);
            h.insert(RATELIMIT, line);
        }
        if e.legacy_headers {
            Legacy {
                limit: rule.burst,
                remaining: 0,
                reset_secs: ceil_secs(reset_ns),
            }
            .write(h);
        }
    }
    e.limited.fetch_add(1, Ordering::Relaxed);
    res
}

pub(crate) fn log_shadow(rule: &Compiled) {
    tracing::info!(
        target: "tower_plugins::rate_limit",
        policy = &*rule.name,
        "rate limit exceeded (shadow rule: request let through)"
    );
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
fn prepare<'a, B>(e: &Engine, req: &'a Request<B>) -> Option<(usize, KeyRequest<'a>)> {
    let path = req.uri().path();
    if !e.exempt_paths.is_empty() && e.exempt_paths.matches(path) {
        return None;
    }
    let first = e.rules.iter().position(|r| r.applies(req.method(), path))?;
    let ip = if e.needs_ip {
        e.client_ip.resolve(req)
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
fn applying<'e, 'r>(
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
fn key_for(e: &Engine, rule: &Compiled, kreq: &KeyRequest<'_>) -> Option<Result<Key, ()>> {
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
fn matched<B>(e: &Engine, req: &Request<B>) -> Few<Matched> {
    let mut out = Few::Zero;
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

/// What the memory backend decided.
enum Decision {
    Admit(Report),
    Refuse(Response<Bytes>),
}

/// Asks the memory limiters, rule by rule. A request refused by one rule is given back the
/// units the rules before it took, so a refused request costs nothing.
fn decide_memory<B>(engine: &Arc<Engine>, req: &Request<B>) -> Decision {
    let e = &**engine;
    let mut report = Report::default();
    let Some((first, kreq)) = prepare(e, req) else {
        return Decision::Admit(report);
    };
    let several = e.rules.len() > 1;
    let mut charged: Few<(usize, Key)> = Few::Zero;
    let give_back = |charged: &Few<(usize, Key)>| {
        for (i, key) in charged.as_slice() {
            let rule = &e.rules[*i];
            if let Some((_, store)) = &rule.limiter {
                store.refund(key, rule.t);
            }
        }
    };
    for (i, rule) in applying(e, first, &kreq) {
        let key = match key_for(e, rule, &kreq) {
            None => continue,
            Some(Ok(key)) => key,
            Some(Err(())) => {
                give_back(&charged);
                return Decision::Refuse(refusal(e, Some(rule), RejectReason::NoKey, rule.t, 0));
            }
        };
        let Some((limiter, store)) = &rule.limiter else {
            continue;
        };
        let probe = Probe::new(key);
        let admitted = limiter.check_key(&probe).is_ok();
        let now = store.decision_time();
        let tat = probe.tat.get();
        if admitted {
            report.admit(e, rule, rule.remaining(tat, now), tat.saturating_sub(now));
            if rule.count == Count::Failures {
                report.refund_later(engine, i, probe.key.clone());
            }
            if several {
                charged.push((i, probe.key));
            }
        } else if rule.shadow {
            e.shadow_limited.fetch_add(1, Ordering::Relaxed);
            log_shadow(rule);
        } else {
            give_back(&charged);
            let wait = tat.saturating_sub(rule.tau).saturating_sub(now);
            return Decision::Refuse(refusal(
                e,
                Some(rule),
                RejectReason::Limited,
                wait,
                tat.saturating_sub(now),
            ));
        }
    }
    Decision::Admit(report)
}

type RemoteCheck = Pin<Box<dyn Future<Output = RemoteVerdict> + Send>>;

/// What the Redis backend decided.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) enum RemoteVerdict {
    Admit(Report),
    Refuse(Response<Bytes>),
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RateLimit<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    ReqBody: Send + 'static,
{
    type Response = Response<PluginBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        #[cfg(feature = "redis")]
        if let Some(redis) = &self.engine.redis {
            let rules = matched(&self.engine, &req);
            if rules.is_empty() {
                return ResponseFuture::inner(self.inner.call(req), Report::default());
            }
            let check = redis.check(self.engine.clone(), rules);
            // The inner service is called once the verdict is in: take the ready one and
            // leave a clone in its place (tower's contract for services called later).
            let clone = self.inner.clone();
            let mut inner = std::mem::replace(&mut self.inner, clone);
            return ResponseFuture {
                state: State::Remote {
                    check,
                    call: Some(Box::new(move || inner.call(req))),
                },
                report: Report::default(),
            };
        }
        match decide_memory(&self.engine, &req) {
            Decision::Admit(report) => ResponseFuture::inner(self.inner.call(req), report),
            Decision::Refuse(res) => ResponseFuture {
                state: State::Refuse {
                    res: Some(Box::new(res)),
                },
                report: Report::default(),
            },
        }
    }
}

pin_project! {
    /// The response future of [`RateLimit`].
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
        report: Report,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Inner { #[pin] fut: F },
        Refuse { res: Option<Box<Response<Bytes>>> },
        Remote { check: RemoteCheck, call: Option<Box<dyn FnOnce() -> F + Send>> },
    }
}

impl<F> ResponseFuture<F> {
    fn inner(fut: F, report: Report) -> Self {
        ResponseFuture {
            state: State::Inner { fut },
            report,
        }
    }
}

impl<F, B, E> PluginFuture for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Body = PluginBody<B>;
    type Error = E;

    #[inline]
    fn poll_with<T>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        wrap: impl FnOnce(PluginBody<B>) -> T,
    ) -> Poll<Result<Response<T>, E>> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Inner { fut } => {
                    let mut res = ready!(fut.poll(cx))?;
                    let status = res.status();
                    this.report.apply(status, res.headers_mut());
                    return Poll::Ready(Ok(res.map(|b| wrap(PluginBody::inner(b)))));
                }
                StateProj::Refuse { res } => {
                    let res = res.take().expect("ResponseFuture polled after completion");
                    return Poll::Ready(Ok((*res).map(|b| wrap(PluginBody::full(b)))));
                }
                StateProj::Remote { check, call } => match ready!(check.as_mut().poll(cx)) {
                    RemoteVerdict::Admit(report) => {
                        *this.report = report;
                        let call = call.take().expect("ResponseFuture polled after completion");
                        this.state.set(State::Inner { fut: call() });
                    }
                    RemoteVerdict::Refuse(res) => {
                        this.state.set(State::Refuse {
                            res: Some(Box::new(res)),
                        });
                    }
                },
            }
        }
    }
}

tower_plugins_core::plugin_future!(ResponseFuture);
