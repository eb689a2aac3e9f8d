//! The decision: memory limiters asked rule by rule, or one Redis script call for every rule
//! that applies.

use std::sync::Arc;
use std::sync::atomic::Ordering;

#[cfg(feature = "redis")]
use http::HeaderValue;
use http::Request;
use tower_plugins_core::grpc_content_type;

use std::future::Future;

#[cfg(feature = "redis")]
use crate::answer::Refused;
use crate::answer::{Report, Verdict, log_shadow, refusal};
#[cfg(feature = "redis")]
use crate::engine::Matched;
use crate::engine::{Engine, FirstInline, applying, key_for, prepare};
use crate::key::Key;
#[cfg(feature = "redis")]
use crate::redis::{RedisBackend, ScriptKey};
#[cfg(feature = "redis")]
use crate::settings::OnBackendError;
use crate::settings::{Count, RejectReason};
use crate::store::Probe;

/// Asks the memory limiters, rule by rule. A request refused by one rule is given back the
/// units the rules before it took, so a refused request costs nothing.
pub(crate) fn decide_memory<B>(engine: &Arc<Engine>, req: &Request<B>) -> Verdict {
    let e = &**engine;
    let mut report = Report::default();
    let Some((first, kreq)) = prepare(e, req) else {
        return Verdict::Admit(report);
    };
    let several = e.rules.len() > 1;
    let mut charged: FirstInline<(usize, Key)> = FirstInline::Zero;
    let give_back = |charged: &FirstInline<(usize, Key)>| {
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
                let refused = refusal(e, Some(rule), RejectReason::NoKey, rule.t, 0);
                return Verdict::Refuse(refused.answer(grpc_content_type(req.headers())));
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
            let reset = tat.saturating_sub(now);
            let refused = refusal(e, Some(rule), RejectReason::Limited, wait, reset);
            return Verdict::Refuse(refused.answer(grpc_content_type(req.headers())));
        }
    }
    Verdict::Admit(report)
}

/// The Redis decision, awaited before the inner service is called (a type of every build:
/// the response future's variant for it cannot be `cfg`'d away).
pub(crate) type RemoteCheck = std::pin::Pin<Box<dyn Future<Output = Verdict> + Send>>;

/// Asks Redis about every rule that applies (`rules`, from [`matched`](crate::engine::matched)),
/// in one call. `grpc` is the request's `content-type` when it is a gRPC call.
#[cfg(feature = "redis")]
pub(crate) fn decide_remote(
    engine: &Arc<Engine>,
    redis: &RedisBackend,
    rules: FirstInline<Matched>,
    grpc: Option<HeaderValue>,
) -> RemoteCheck {
    let (engine, redis) = (engine.clone(), redis.clone());
    Box::pin(async move {
        let mut keys = Vec::new();
        for m in rules {
            match m {
                Matched::Key(i, key) => keys.push((i, key)),
                Matched::Deny(i) => {
                    let rule = &engine.rules[i];
                    let refused = refusal(&engine, Some(rule), RejectReason::NoKey, rule.t, 0);
                    return Verdict::Refuse(refused.answer(grpc.as_ref()));
                }
            }
        }
        let script_keys: Vec<ScriptKey> = (keys.iter())
            .map(|(i, key)| {
                let rule = &engine.rules[*i];
                redis.key(&rule.name, key, rule.t, rule.tau, !rule.shadow)
            })
            .collect();
        let reply = redis
            .check(&script_keys, engine.on_backend_error.as_str())
            .await;
        match reply.and_then(|reply| verdict(&engine, keys, &reply)) {
            Some(Verdict::Admit(report)) => Verdict::Admit(report),
            Some(Verdict::Refuse(refused)) => Verdict::Refuse(refused.answer(grpc.as_ref())),
            None => backend_failed(&engine, grpc.as_ref()),
        }
    })
}

/// What a request gets when Redis could not decide: the `on_backend_error` policy.
#[cfg(feature = "redis")]
fn backend_failed(engine: &Engine, grpc: Option<&HeaderValue>) -> Verdict {
    match engine.on_backend_error {
        OnBackendError::Allow => Verdict::Admit(Report::default()),
        OnBackendError::Deny => {
            let refused = refusal(engine, None, RejectReason::BackendUnavailable, 0, 0);
            Verdict::Refuse(refused.answer(grpc))
        }
    }
}

/// The verdict in the script's reply, or `None` (counted as a backend error) when the reply
/// is not of the script's form.
#[cfg(feature = "redis")]
fn verdict(
    engine: &Arc<Engine>,
    keys: Vec<(usize, Key)>,
    reply: &[i64],
) -> Option<Verdict<Refused>> {
    let e = &**engine;
    let malformed = || {
        e.backend_errors.fetch_add(1, Ordering::Relaxed);
        None
    };
    let (Some(&first), Some(&d)) = (reply.first(), reply.get(1)) else {
        return malformed();
    };
    if reply.len() != keys.len() + 1 && first == 0 {
        return malformed();
    }
    if first > 0 {
        let Some((i, _)) = usize::try_from(first - 1).ok().and_then(|x| keys.get(x)) else {
            return malformed();
        };
        let rule = &e.rules[*i];
        let full_in = u64::try_from(d).unwrap_or(0) * 1000;
        return Some(Verdict::Refuse(refusal(
            e,
            Some(rule),
            RejectReason::Limited,
            full_in.saturating_sub(rule.tau),
            full_in,
        )));
    }
    let mut report = Report::default();
    for ((i, key), &d) in keys.into_iter().zip(&reply[1..]) {
        let rule = &e.rules[i];
        if d > 0 {
            let full_in = u64::try_from(d).unwrap_or(0) * 1000;
            report.admit(e, rule, rule.remaining(full_in, 0), full_in);
            if rule.count == Count::Failures {
                report.refund_later(engine, i, key);
            }
        } else {
            e.shadow_limited.fetch_add(1, Ordering::Relaxed);
            log_shadow(rule);
        }
    }
    Some(Verdict::Admit(report))
}
