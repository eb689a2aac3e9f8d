//! What the limiter writes: the `RateLimit` headers of an admitted request (and the units it
//! gives back later), and the answer to a refused one.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::header::RETRY_AFTER;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use tower_plugins_core::{GRPC_RETRY_PUSHBACK_MS, grpc_refusal, write_json_str};

use crate::engine::{Compiled, Engine, FirstInline, ceil_secs};
use crate::header_values::{
    Line, RATELIMIT, RATELIMIT_POLICY, X_LIMIT, X_REMAINING, X_RESET, int_value,
};
use crate::key::Key;
use crate::settings::{RejectReason, Rejection};

/// What the backend decided.
pub(crate) enum Verdict<R = Response<Bytes>> {
    Admit(Report),
    /// The answer (or, before it is known whether the caller speaks gRPC, a [`Refused`]).
    Refuse(R),
}

/// Units given back when a `count = "failures"` request succeeds.
pub(crate) struct Refund {
    pub(crate) engine: Arc<Engine>,
    pub(crate) items: FirstInline<(usize, Key)>,
}

impl Refund {
    pub(crate) fn run(self) {
        #[cfg(feature = "redis")]
        if let Some(redis) = &self.engine.redis {
            let keys = (self.items.into_iter())
                .map(|(i, key)| {
                    let rule = &self.engine.rules[i];
                    redis.key(&rule.name, &key, rule.t, 0, false)
                })
                .collect();
            redis.refund(keys, self.engine.on_backend_error.as_str());
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
    lines: FirstInline<Line>,
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
                    items: FirstInline::One((rule, key)),
                }));
            }
        }
    }

    pub(crate) fn apply(&mut self, status: StatusCode, headers: &mut HeaderMap) {
        // Matched rather than iterated: the one-rule case is the hot one, and the chained
        // iterator measured slower there.
        match std::mem::take(&mut self.lines) {
            FirstInline::Zero => {}
            FirstInline::One(line) => line.append_to(headers),
            FirstInline::Many(lines) => {
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

/// A refused request's answer, with what a gRPC caller is told instead of its body.
pub(crate) struct Refused {
    res: Response<Bytes>,
    detail: String,
    retry_ms: u64,
}

impl Refused {
    /// The answer: as built for plain HTTP, or trailers-only for a gRPC call (whose
    /// `content-type` is `grpc`): `RESOURCE_EXHAUSTED` with `grpc-retry-pushback-ms` beside
    /// `Retry-After`, or `UNAVAILABLE` when the backend could not decide.
    pub(crate) fn answer(self, grpc: Option<&HeaderValue>) -> Response<Bytes> {
        let Some(ct) = grpc else {
            return self.res;
        };
        let limited = self.res.status() == StatusCode::TOO_MANY_REQUESTS;
        let mut res = grpc_refusal(ct, self.res, &self.detail);
        if limited {
            res.headers_mut()
                .insert(GRPC_RETRY_PUSHBACK_MS, int_value(self.retry_ms));
        }
        res
    }
}

/// The answer to a refused request.
pub(crate) fn refusal(
    e: &Engine,
    rule: Option<&Compiled>,
    reason: RejectReason,
    wait_ns: u64,
    reset_ns: u64,
) -> Refused {
    let retry = ceil_secs(wait_ns).max(1);
    let policy = rule.map_or("", |r| &r.name);
    let limit = rule.map_or(0, |r| r.burst);
    let detail = match reason {
        RejectReason::Limited => format!("rate limit {policy:?} exceeded; retry in {retry} s"),
        RejectReason::NoKey => format!("rate limit {policy:?} needs a key this request lacks"),
        RejectReason::BackendUnavailable => {
            "the rate limiter cannot decide now; retry shortly".to_owned()
        }
    };
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
            problem(status, &detail, rule.map(|_| policy), retry)
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
    Refused {
        res,
        detail,
        retry_ms: wait_ns.div_ceil(1_000_000).max(1),
    }
}

/// The problem+json answer of a refusal: the policy (when a rule refused) and the wait.
fn problem(status: StatusCode, detail: &str, policy: Option<&str>, retry: u64) -> Response<Bytes> {
    tower_plugins_core::problem_json(status, detail, |body| {
        if let Some(policy) = policy {
            body.extend_from_slice(b",\"policy\":");
            write_json_str(body, policy.as_bytes());
        }
        body.extend_from_slice(b",\"retry_after\":");
        body.extend_from_slice(itoa::Buffer::new().format(retry).as_bytes());
    })
}

pub(crate) fn log_shadow(rule: &Compiled) {
    tracing::info!(
        target: "tower_plugins::rate_limit",
        policy = &*rule.name,
        "rate limit exceeded (shadow rule: request let through)"
    );
}
