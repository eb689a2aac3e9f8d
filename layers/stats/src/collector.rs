//! Custom collectors: figures of your own, recorded beside the built-in ones and shown in the
//! snapshot, the dashboard and `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::{Value, json};
use tower_plugins_core::BodyOutcome;

use crate::route::Table;

/// A request as a collector sees it when it arrives.
#[derive(Debug)]
#[non_exhaustive]
pub struct RequestInfo<'a> {
    /// The route it is counted under (a template, `unmatched` or `other`).
    pub route: &'a str,
    /// Its method.
    pub method: &'a Method,
    /// Its URI.
    pub uri: &'a Uri,
    /// Its headers.
    pub headers: &'a HeaderMap,
}

/// A response head as a collector sees it.
#[derive(Debug)]
#[non_exhaustive]
pub struct ResponseInfo<'a> {
    /// The route.
    pub route: &'a str,
    /// The status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: &'a HeaderMap,
}

/// A finished request as a collector sees it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct EndInfo<'a> {
    /// The route.
    pub route: &'a str,
    /// The status, or `None` when no response was made (the inner service failed, or the
    /// request was dropped before its response).
    pub status: Option<StatusCode>,
    /// From the request's arrival (core's `RequestStart`, shared with the other plugins) to
    /// the end of its response body.
    pub elapsed: Duration,
    /// Bytes of response body sent.
    pub body_bytes: u64,
    /// How the body ended; [`BodyOutcome::Aborted`] also when there was no response.
    pub outcome: BodyOutcome,
}

/// Figures of your own, in the way FlaskStats' `register_collector` works: register one with
/// [`StatsLayer::collector`](crate::StatsLayer::collector) under a name, and its
/// [`snapshot`](Collector::snapshot) appears under `collectors.<name>` in the JSON snapshot
/// and on the dashboard.
///
/// The hooks run on the request's path: keep them to atomic updates (see [`CounterMap`] for
/// counts per route). Each has a default that does nothing.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use tower_plugins_stats::{Collector, EndInfo};
///
/// /// Requests slower than a second.
/// #[derive(Default)]
/// struct Slow(AtomicU64);
///
/// impl Collector for Slow {
///     fn on_end(&self, end: &EndInfo<'_>) {
///         if end.elapsed.as_secs() >= 1 {
///             self.0.fetch_add(1, Ordering::Relaxed);
///         }
///     }
///     fn snapshot(&self) -> serde_json::Value {
///         serde_json::json!({ "total": self.0.load(Ordering::Relaxed) })
///     }
/// }
/// let layer = tower_plugins_stats::StatsLayer::new().collector("slow", Slow::default());
/// ```
pub trait Collector: Send + Sync + 'static {
    /// A request arrived.
    fn on_request(&self, _req: &RequestInfo<'_>) {}
    /// Its response head is ready.
    fn on_response(&self, _res: &ResponseInfo<'_>) {}
    /// Its response body ended (or was dropped, or there was no response).
    fn on_end(&self, _end: &EndInfo<'_>) {}
    /// The collector's figures, as JSON.
    fn snapshot(&self) -> Value;
    /// The collector's figures as Prometheus text lines (with their `# TYPE` lines), if it
    /// has any to export. Default: none.
    fn prometheus(&self, _out: &mut String) {}
}

/// A collector behind an `Arc`: register one clone and keep another to read it from code.
impl<C: Collector> Collector for std::sync::Arc<C> {
    fn on_request(&self, req: &RequestInfo<'_>) {
        (**self).on_request(req);
    }
    fn on_response(&self, res: &ResponseInfo<'_>) {
        (**self).on_response(res);
    }
    fn on_end(&self, end: &EndInfo<'_>) {
        (**self).on_end(end);
    }
    fn snapshot(&self) -> Value {
        (**self).snapshot()
    }
    fn prometheus(&self, out: &mut String) {
        (**self).prometheus(out);
    }
}

/// Counts per name (such as a route), without a lock: at most `max` names, more are counted
/// under `other`.
///
/// ```
/// let counts = tower_plugins_stats::CounterMap::new(100);
/// counts.add("/large", 1);
/// counts.add("/large", 2);
/// assert_eq!(counts.get("/large"), 3);
/// ```
pub struct CounterMap {
    table: Table<AtomicU64>,
    other: AtomicU64,
}

impl std::fmt::Debug for CounterMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.to_vec()).finish()
    }
}

impl CounterMap {
    /// A map holding up to `max` names.
    pub fn new(max: usize) -> Self {
        CounterMap {
            table: Table::new(max),
            other: AtomicU64::new(0),
        }
    }

    /// Adds `n` to `name`'s count.
    #[inline]
    pub fn add(&self, name: &str, n: u64) {
        match self.table.get_or_insert(name, || AtomicU64::new(0)) {
            Some(c) => c.fetch_add(n, Relaxed),
            None => self.other.fetch_add(n, Relaxed),
        };
    }

    /// `name`'s count (0 if unseen).
    pub fn get(&self, name: &str) -> u64 {
        self.to_vec()
            .into_iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, c)| c)
    }

    /// Every name with its count, sorted by name; `other` last when names overflowed.
    pub fn to_vec(&self) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = self
            .table
            .iter()
            .map(|(n, c)| (n.to_owned(), c.load(Relaxed)))
            .collect();
        v.sort();
        let other = self.other.load(Relaxed);
        if other > 0 {
            v.push(("other".to_owned(), other));
        }
        v
    }
}

/// Responses whose body is larger than a threshold (FlaskStats' example: "responses larger
/// than 1,000 bytes"), in all and per route.
#[derive(Debug)]
pub struct LargeResponses {
    threshold: u64,
    total: AtomicU64,
    by_route: CounterMap,
}

impl LargeResponses {
    /// Counts responses with more than `threshold` bytes of body.
    pub fn new(threshold: u64) -> Self {
        LargeResponses {
            threshold,
            total: AtomicU64::new(0),
            by_route: CounterMap::new(1024),
        }
    }
}

impl Collector for LargeResponses {
    fn on_end(&self, end: &EndInfo<'_>) {
        if end.body_bytes > self.threshold {
            self.total.fetch_add(1, Relaxed);
            self.by_route.add(end.route, 1);
        }
    }

    fn snapshot(&self) -> Value {
        let by_route: serde_json::Map<String, Value> = self
            .by_route
            .to_vec()
            .into_iter()
            .map(|(r, n)| (r, json!(n)))
            .collect();
        json!({
            "threshold_bytes": self.threshold,
            "total": self.total.load(Relaxed),
            "by_route": by_route,
        })
    }

    fn prometheus(&self, out: &mut String) {
        use std::fmt::Write as _;
        let _ = writeln!(
            out,
            "# HELP http_large_responses_total Responses with more than {} bytes of body.",
            self.threshold
        );
        out.push_str("# TYPE http_large_responses_total counter\n");
        for (route, n) in self.by_route.to_vec() {
            out.push_str("http_large_responses_total{route=\"");
            crate::prometheus::escape_label(out, &route);
            let _ = writeln!(out, "\"}} {n}");
        }
    }
}
