//! The registry every clone of a [`StatsLayer`](crate::StatsLayer) records into, and the
//! snapshot read from it.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use serde::Serialize;

use crate::Collector;
use crate::histogram::{self, BUCKETS};
use tower_plugins_core::GrpcCode;

use crate::route::{GRPC_CODES, PROM_BOUNDS_US, RATE_SECONDS, Route, Table};
use crate::template::Template;

/// The label of requests no route template (and no `MatchedPath`) names.
pub const UNMATCHED: &str = "unmatched";
/// The label of requests to routes past `max_routes`.
pub const OTHER: &str = "other";

/// Where the figures live. One per layer, kept for the life of the process (as a metrics
/// recorder is), so that recording copies a reference instead of touching a reference count
/// that every core would share.
pub(crate) struct Registry {
    pub(crate) service: Option<Box<str>>,
    pub(crate) start: Instant,
    /// Routes named by configured templates, in order (outside the table: no lookup).
    pub(crate) templates: Vec<(Template, Route)>,
    /// Routes named at request time (axum's `MatchedPath`).
    pub(crate) routes: Table<Route>,
    pub(crate) unmatched: Route,
    pub(crate) other: Route,
    pub(crate) max_routes: usize,
    pub(crate) collectors: Vec<(Box<str>, Arc<dyn Collector>)>,
}

impl Registry {
    pub(crate) fn new(
        service: Option<&str>,
        max_routes: usize,
        templates: Vec<(Template, Route)>,
        collectors: Vec<(Box<str>, Arc<dyn Collector>)>,
    ) -> Self {
        Registry {
            service: service.map(Into::into),
            start: Instant::now(),
            routes: Table::new(max_routes.saturating_sub(templates.len())),
            templates,
            unmatched: Route::new(UNMATCHED),
            other: Route::new(OTHER),
            max_routes,
            collectors,
        }
    }

    /// The route named `name`, or [`OTHER`] once `max_routes` names are taken.
    #[inline]
    pub(crate) fn route(&self, name: &str) -> &Route {
        self.routes
            .get_or_insert(name, || Route::new(name))
            .unwrap_or(&self.other)
    }

    /// The route `req` is counted under: axum's `MatchedPath` (with the `axum` feature), else
    /// the first template its path matches, else [`UNMATCHED`].
    #[inline]
    pub(crate) fn route_for<B>(&self, req: &http::Request<B>) -> &Route {
        #[cfg(feature = "axum")]
        if let Some(m) = req.extensions().get::<axum::extract::MatchedPath>() {
            return self.route(m.as_str());
        }
        let path = req.uri().path();
        self.templates
            .iter()
            .find(|(t, _)| t.matches(path))
            .map_or(&self.unmatched, |(_, r)| r)
    }

    /// Every route with requests, plus `unmatched` and `other` when they have some.
    fn all_routes(&self) -> impl Iterator<Item = &Route> {
        self.templates
            .iter()
            .map(|(_, r)| r)
            .chain(self.routes.iter().map(|(_, r)| r))
            .chain([&self.unmatched, &self.other])
    }

    /// The seconds since the registry started, as the rate ring counts them.
    #[inline]
    pub(crate) fn second(&self, at: Instant) -> u32 {
        at.saturating_duration_since(self.start).as_secs() as u32
    }

    /// The figures now.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let totals = self.totals();
        let mut overall = Totals::default();
        for (_, t) in &totals {
            overall.merge(t);
        }
        Snapshot {
            service: self.service.as_deref().map(str::to_owned),
            uptime_seconds: self.start.elapsed().as_secs_f64(),
            routes_max: self.max_routes,
            routes_used: self.templates.len() + self.routes.len(),
            overflow_requests: overflow(&totals),
            overall: overall.snapshot("*"),
            routes: totals.iter().map(|(n, t)| t.snapshot(n)).collect(),
            collectors: self
                .collectors
                .iter()
                .map(|(n, c)| (n.to_string(), c.snapshot()))
                .collect(),
        }
    }

    /// Each route's totals (with requests or in flight), sorted by name. Template and
    /// `MatchedPath` names start with `/`, so [`OTHER`] and [`UNMATCHED`] name only their
    /// own routes.
    pub(crate) fn totals(&self) -> Vec<(&str, Totals)> {
        let now = self.second(Instant::now());
        let mut v: Vec<(&str, Totals)> = self
            .all_routes()
            .map(|r| (&*r.name, Totals::of(r, now)))
            .filter(|(_, t)| t.requests > 0 || t.in_flight != 0)
            .collect();
        v.sort_by(|a, b| a.0.cmp(b.0));
        v
    }
}

/// Requests counted under [`OTHER`] (past `max_routes`), from [`Registry::totals`].
pub(crate) fn overflow(totals: &[(&str, Totals)]) -> u64 {
    totals
        .iter()
        .find(|(r, _)| *r == OTHER)
        .map_or(0, |(_, t)| t.requests)
}

/// A route's figures summed over its shards.
#[derive(Clone)]
pub(crate) struct Totals {
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) aborted: u64,
    pub(crate) in_flight: i64,
    pub(crate) classes: [u64; 5],
    pub(crate) statuses: Vec<(u16, u64)>,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    pub(crate) latency_sum_us: u64,
    pub(crate) latency_max_us: u64,
    pub(crate) latency: Vec<u64>,
    pub(crate) prom: [u64; PROM_BOUNDS_US.len() + 1],
    /// Requests per second, oldest first, the current second last.
    pub(crate) rate: [u64; RATE_SECONDS],
    /// gRPC calls by status code.
    pub(crate) grpc: [u64; GRPC_CODES],
}

impl Default for Totals {
    fn default() -> Self {
        Totals {
            requests: 0,
            errors: 0,
            aborted: 0,
            in_flight: 0,
            classes: [0; 5],
            statuses: Vec::new(),
            bytes_in: 0,
            bytes_out: 0,
            latency_sum_us: 0,
            latency_max_us: 0,
            latency: vec![0; BUCKETS],
            grpc: [0; GRPC_CODES],
            prom: [0; PROM_BOUNDS_US.len() + 1],
            rate: [0; RATE_SECONDS],
        }
    }
}

impl Totals {
    fn of(r: &Route, now: u32) -> Self {
        let mut t = Totals::default();
        for s in &*r.shards {
            t.requests += s.requests.load(Relaxed);
            t.errors += s.errors.load(Relaxed);
            t.aborted += s.aborted.load(Relaxed);
            t.in_flight += s.in_flight.load(Relaxed);
            for (a, b) in t.classes.iter_mut().zip(&s.classes) {
                *a += b.load(Relaxed);
            }
            for (code, n) in s.statuses() {
                add_status(&mut t.statuses, code, n);
            }
            t.bytes_in += s.bytes_in.load(Relaxed);
            t.bytes_out += s.bytes_out.load(Relaxed);
            t.latency_sum_us += s.latency_sum_us.load(Relaxed);
            t.latency_max_us = t.latency_max_us.max(s.latency_max_us.load(Relaxed));
            for (a, b) in t.latency.iter_mut().zip(&s.latency) {
                *a += b.load(Relaxed);
            }
            for (a, b) in t.prom.iter_mut().zip(&s.prom) {
                *a += b.load(Relaxed);
            }
            for (a, b) in t.grpc.iter_mut().zip(&s.grpc) {
                *a += b.load(Relaxed);
            }
            for (i, slot) in t.rate.iter_mut().enumerate() {
                // Position i holds second now - 59 + i.
                let Some(sec) = (now + 1 + i as u32).checked_sub(RATE_SECONDS as u32) else {
                    continue;
                };
                let v = s.rate[sec as usize % RATE_SECONDS].load(Relaxed);
                if v != 0 && v >> 32 == u64::from(sec) {
                    *slot += v & 0xffff_ffff;
                }
            }
        }
        t.statuses.sort_unstable();
        t
    }

    fn merge(&mut self, o: &Totals) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.aborted += o.aborted;
        self.in_flight += o.in_flight;
        for (a, b) in self.classes.iter_mut().zip(&o.classes) {
            *a += b;
        }
        for &(code, n) in &o.statuses {
            add_status(&mut self.statuses, code, n);
        }
        self.statuses.sort_unstable();
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
        self.latency_sum_us += o.latency_sum_us;
        self.latency_max_us = self.latency_max_us.max(o.latency_max_us);
        for (a, b) in self.latency.iter_mut().zip(&o.latency) {
            *a += b;
        }
        for (a, b) in self.prom.iter_mut().zip(&o.prom) {
            *a += b;
        }
        for (a, b) in self.rate.iter_mut().zip(&o.rate) {
            *a += b;
        }
        for (a, b) in self.grpc.iter_mut().zip(&o.grpc) {
            *a += b;
        }
    }

    /// Requests with a measured latency (every finished one).
    pub(crate) fn timed(&self) -> u64 {
        self.latency.iter().sum()
    }

    fn ms(&self, q: f64) -> Option<f64> {
        histogram::quantile(&self.latency, q, self.latency_max_us).map(|us| round3(us / 1000.0))
    }

    fn snapshot(&self, name: &str) -> RouteSnapshot {
        let timed = self.timed();
        RouteSnapshot {
            route: name.to_owned(),
            requests: self.requests,
            in_flight: self.in_flight,
            errors: self.errors,
            aborted: self.aborted,
            by_class: ByClass {
                c1xx: self.classes[0],
                c2xx: self.classes[1],
                c3xx: self.classes[2],
                c4xx: self.classes[3],
                c5xx: self.classes[4],
            },
            by_status: self
                .statuses
                .iter()
                .map(|(c, n)| (c.to_string(), *n))
                .collect(),
            latency_ms: Latency {
                p50: self.ms(0.5),
                p90: self.ms(0.9),
                p99: self.ms(0.99),
                max: (timed > 0).then(|| round3(self.latency_max_us as f64 / 1000.0)),
                mean: (timed > 0)
                    .then(|| round3(self.latency_sum_us as f64 / timed as f64 / 1000.0)),
            },
            bytes_received: self.bytes_in,
            bytes_sent: self.bytes_out,
            rate_per_sec: round3(self.rate.iter().sum::<u64>() as f64 / RATE_SECONDS as f64),
            rate_last_60s: self.rate.to_vec(),
            by_grpc_status: (self.grpc.iter().enumerate())
                .filter(|(_, n)| **n > 0)
                .filter_map(|(c, n)| Some((GrpcCode::from_u8(c as u8)?.name(), *n)))
                .collect(),
        }
    }
}

fn add_status(v: &mut Vec<(u16, u64)>, code: u16, n: u64) {
    match v.iter_mut().find(|(c, _)| *c == code) {
        Some(e) => e.1 += n,
        None => v.push((code, n)),
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The figures of every route at one moment: what `GET /admin/stats` answers as JSON.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Snapshot {
    /// The configured service name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Seconds since the layer was built.
    pub uptime_seconds: f64,
    /// The `max_routes` cap.
    pub routes_max: usize,
    /// Distinct routes recorded (at most `routes_max`).
    pub routes_used: usize,
    /// Requests counted under `other` because the cap was reached.
    pub overflow_requests: u64,
    /// Every route together (`route` is `"*"`).
    pub overall: RouteSnapshot,
    /// Each route with requests, sorted by name.
    pub routes: Vec<RouteSnapshot>,
    /// Each collector's figures, by the name it was registered under.
    pub collectors: serde_json::Map<String, serde_json::Value>,
}

/// One route's figures.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct RouteSnapshot {
    /// The route template, `unmatched`, `other`, or `*` for all.
    pub route: String,
    /// Requests finished (including aborted ones).
    pub requests: u64,
    /// Requests started and not finished.
    pub in_flight: i64,
    /// 5xx answers, inner service errors and response bodies that failed.
    pub errors: u64,
    /// Requests dropped before their response or before the end of its body.
    pub aborted: u64,
    /// Responses by status class.
    pub by_class: ByClass,
    /// Responses by exact status.
    pub by_status: std::collections::BTreeMap<String, u64>,
    /// Latency in milliseconds, `null` without requests.
    pub latency_ms: Latency,
    /// Request body bytes (from `Content-Length`).
    pub bytes_received: u64,
    /// Response body bytes sent.
    pub bytes_sent: u64,
    /// Mean requests per second over the last 60 seconds.
    pub rate_per_sec: f64,
    /// Requests finished in each of the last 60 seconds, oldest first (the last is the
    /// current, partial second).
    pub rate_last_60s: Vec<u64>,
    /// gRPC calls by `grpc-status` name (`OK`, `NOT_FOUND`, ...); absent without any.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub by_grpc_status: std::collections::BTreeMap<&'static str, u64>,
}

/// Responses by status class.
#[derive(Debug, Clone, Copy, Serialize)]
#[allow(missing_docs)]
pub struct ByClass {
    #[serde(rename = "1xx")]
    pub c1xx: u64,
    #[serde(rename = "2xx")]
    pub c2xx: u64,
    #[serde(rename = "3xx")]
    pub c3xx: u64,
    #[serde(rename = "4xx")]
    pub c4xx: u64,
    #[serde(rename = "5xx")]
    pub c5xx: u64,
}

/// Latency percentiles, mean and max, in milliseconds (within 6.25% for the percentiles).
#[derive(Debug, Clone, Copy, Serialize)]
#[allow(missing_docs)]
pub struct Latency {
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
}
