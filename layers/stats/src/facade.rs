//! The figures emitted through the [`metrics`] facade, so that any exporter (Prometheus,
//! OpenTelemetry, StatsD, ...) receives them.
//!
//! Handles are registered with the recorder once per route and label set, the first time a
//! request needs them, and kept beside the route: a request then costs an array lookup and
//! the handles' own work, with no key built, no label allocated and no map searched. With no
//! recorder installed, the handles are the facade's no-op handles.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::time::Duration;

use http::{Method, StatusCode};
use metrics::{Counter, Gauge, Histogram, Key, Label, Level, Metadata, SharedString, Unit};
use tower_plugins_core::{BodyOutcome, GrpcCode};

use crate::metric_names::{
    ABORTED, BYTES_IN, BYTES_OUT, DURATION, ERRORS, IN_FLIGHT, REQUESTS, RPC_CALLS,
};

/// The names the figures take in the [`metrics`] facade.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
#[non_exhaustive]
pub enum MetricNames {
    /// The names of the layer's own `/metrics` text:
    ///
    /// | metric | kind | labels |
    /// |---|---|---|
    /// | `http_requests_total` | counter | `route`, `method`, `status` |
    /// | `http_request_duration_seconds` | histogram | `route`, `method`, `status` |
    /// | `http_requests_in_flight` | gauge | `route` |
    /// | `http_requests_errors_total` | counter | `route` |
    /// | `http_requests_aborted_total` | counter | `route` |
    /// | `http_request_body_bytes_total` | counter | `route` |
    /// | `http_response_body_bytes_total` | counter | `route` |
    /// | `rpc_server_calls_total` | counter | `route`, `rpc_system`, `rpc_service`, `rpc_method`, `rpc_grpc_status_code` |
    ///
    /// `status` is `none` for a request that ended without a response. The `rpc_` counter
    /// counts gRPC calls only, with OpenTelemetry's RPC attribute names.
    Prometheus,
    /// OpenTelemetry's semantic conventions for HTTP servers:
    ///
    /// | metric | kind | attributes |
    /// |---|---|---|
    /// | `http.server.request.duration` (s) | histogram | `http.request.method`, `http.route`, `http.response.status_code`, `url.scheme`, `error.type` |
    /// | `http.server.active_requests` | gauge | `http.request.method`, `url.scheme` |
    /// | `http.server.request.body.size` (By) | histogram | as the duration |
    /// | `http.server.response.body.size` (By) | histogram | as the duration |
    /// | `rpc.server.call.duration` (s) | histogram | `rpc.system`, `rpc.service`, `rpc.method`, `rpc.grpc.status_code` (gRPC calls only) |
    ///
    /// `error.type` is the status code of a 5xx answer, `aborted` when the client went away
    /// before the end of the response, `failed` when the service or its body failed, and
    /// absent otherwise. The request body size is recorded when `Content-Length` gives it.
    #[cfg_attr(feature = "serde", serde(rename = "opentelemetry", alias = "otel"))]
    OpenTelemetry,
}

/// Methods with their own label; any other is `_OTHER`, as OpenTelemetry specifies, so that
/// a client inventing methods cannot create series.
const METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "_OTHER",
];

/// The index of `m` in [`METHODS`].
#[inline]
pub(crate) fn method_index(m: &Method) -> u8 {
    match *m {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::PUT => 3,
        Method::DELETE => 4,
        Method::PATCH => 5,
        Method::OPTIONS => 6,
        Method::CONNECT => 7,
        Method::TRACE => 8,
        _ => 9,
    }
}

/// What a request carries from its start to its end for the facade.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Labels {
    pub(crate) method: u8,
    pub(crate) https: bool,
}

impl Labels {
    #[inline]
    pub(crate) fn of<B>(req: &http::Request<B>) -> Self {
        Labels {
            method: method_index(req.method()),
            https: req.uri().scheme() == Some(&http::uri::Scheme::HTTPS),
        }
    }

    fn scheme(self) -> &'static str {
        if self.https { "https" } else { "http" }
    }
}

/// Label sets per route whose handles are kept: more (a route answering with many distinct
/// statuses and methods) are registered per request, correct but slower.
const SETS: usize = 32;

/// A route's handles.
pub(crate) struct RouteMetrics {
    /// In flight: Prometheus uses slot 0 (by route); OpenTelemetry one per method and scheme.
    active: [OnceLock<Gauge>; METHODS.len() * 2],
    /// Prometheus' per-route counters.
    counters: OnceLock<RouteCounters>,
    /// Handles per label set, found by [`set_key`].
    sets: [(AtomicU32, OnceLock<SetHandles>); SETS],
}

struct RouteCounters {
    errors: Counter,
    aborted: Counter,
    bytes_in: Counter,
    bytes_out: Counter,
}

/// The handles of one label set: requests (Prometheus) or nothing, the duration, and the body
/// sizes (OpenTelemetry).
struct SetHandles {
    requests: Counter,
    duration: Histogram,
    request_size: Histogram,
    response_size: Histogram,
    /// A gRPC call's: `rpc_server_calls_total` (Prometheus names) or
    /// `rpc.server.call.duration` (OpenTelemetry's); no-ops for plain HTTP.
    rpc_calls: Counter,
    rpc_duration: Histogram,
}

impl Default for RouteMetrics {
    fn default() -> Self {
        RouteMetrics {
            active: std::array::from_fn(|_| OnceLock::new()),
            counters: OnceLock::new(),
            sets: std::array::from_fn(|_| (AtomicU32::new(0), OnceLock::new())),
        }
    }
}

/// The end of a request, as the facade records it.
pub(crate) struct End {
    pub(crate) status: Option<StatusCode>,
    pub(crate) outcome: BodyOutcome,
    pub(crate) error: bool,
    pub(crate) elapsed: Duration,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    /// A gRPC call's status code.
    pub(crate) grpc: Option<GrpcCode>,
}

#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

const OTEL_DURATION: &str = "http.server.request.duration";
const OTEL_ACTIVE: &str = "http.server.active_requests";
const OTEL_REQUEST_SIZE: &str = "http.server.request.body.size";
const OTEL_RESPONSE_SIZE: &str = "http.server.response.body.size";

const META: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

fn counter(name: &'static str, labels: Vec<Label>) -> Counter {
    metrics::with_recorder(|r| r.register_counter(&Key::from_parts(name, labels), &META))
}

fn gauge(name: &'static str, labels: Vec<Label>) -> Gauge {
    metrics::with_recorder(|r| r.register_gauge(&Key::from_parts(name, labels), &META))
}

fn histogram(name: &'static str, labels: Vec<Label>) -> Histogram {
    metrics::with_recorder(|r| r.register_histogram(&Key::from_parts(name, labels), &META))
}

/// A label whose value lives as long as the registry (route names: the registry is never
/// freed).
fn label(key: &'static str, value: &'static str) -> Label {
    Label::from_static_parts(key, value)
}

/// A label set's place in a route's table: status (0 for none), method, scheme and outcome.
/// Prometheus names label only route, method and status, so the rest is left out of its key.
fn set_key(names: MetricNames, labels: Labels, end: &End) -> u32 {
    let status = u32::from(end.status.map_or(0, |s| s.as_u16()));
    let method = u32::from(labels.method) << 10 | grpc_bits(end.grpc) << 17;
    match names {
        MetricNames::Prometheus => status | method | 1 << 31,
        MetricNames::OpenTelemetry => {
            let outcome = match end.outcome {
                BodyOutcome::Aborted => 1,
                BodyOutcome::Failed => 2,
                _ => 0,
            };
            status | method | u32::from(labels.https) << 14 | outcome << 15 | 1 << 31
        }
    }
}

/// A gRPC code in the label-set key: 1 to 17, 0 for plain HTTP.
fn grpc_bits(code: Option<GrpcCode>) -> u32 {
    code.map_or(0, |c| u32::from(c.as_u8()) + 1)
}

/// `rpc.server.call.duration`: OpenTelemetry's RPC server call duration, in seconds.
const OTEL_RPC_DURATION: &str = "rpc.server.call.duration";

impl MetricNames {
    /// Every metric under these names: its kind, name, unit and help.
    fn families(self) -> &'static [(Kind, &'static str, Unit, &'static str)] {
        use Kind::{Counter, Gauge, Histogram};
        match self {
            MetricNames::Prometheus => &[
                (Counter, REQUESTS.name, Unit::Count, REQUESTS.help),
                (Histogram, DURATION.name, Unit::Seconds, DURATION.help),
                (Gauge, IN_FLIGHT.name, Unit::Count, IN_FLIGHT.help),
                (Counter, ERRORS.name, Unit::Count, ERRORS.help),
                (Counter, ABORTED.name, Unit::Count, ABORTED.help),
                (Counter, BYTES_IN.name, Unit::Bytes, BYTES_IN.help),
                (Counter, BYTES_OUT.name, Unit::Bytes, BYTES_OUT.help),
                (Counter, RPC_CALLS.name, Unit::Count, RPC_CALLS.help),
            ],
            MetricNames::OpenTelemetry => &[
                (
                    Histogram,
                    OTEL_DURATION,
                    Unit::Seconds,
                    "Duration of HTTP server requests.",
                ),
                (
                    Gauge,
                    OTEL_ACTIVE,
                    Unit::Count,
                    "Number of active HTTP server requests.",
                ),
                (
                    Histogram,
                    OTEL_REQUEST_SIZE,
                    Unit::Bytes,
                    "Size of HTTP server request bodies.",
                ),
                (
                    Histogram,
                    OTEL_RESPONSE_SIZE,
                    Unit::Bytes,
                    "Size of HTTP server response bodies.",
                ),
                (
                    Histogram,
                    OTEL_RPC_DURATION,
                    Unit::Seconds,
                    "Duration of gRPC calls, by service, method and status code.",
                ),
            ],
        }
    }

    /// Describes every metric to the recorder (its unit and help), when one is installed.
    pub(crate) fn describe(self) {
        metrics::with_recorder(|r| {
            for &(kind, name, unit, help) in self.families() {
                let (name, help) = (name.into(), SharedString::const_str(help));
                match kind {
                    Kind::Counter => r.describe_counter(name, Some(unit), help),
                    Kind::Gauge => r.describe_gauge(name, Some(unit), help),
                    Kind::Histogram => r.describe_histogram(name, Some(unit), help),
                }
            }
        });
    }

    /// The in-flight gauge of a request with `labels` on `route`.
    #[inline]
    pub(crate) fn active<'m>(
        self,
        m: &'m RouteMetrics,
        route: &'static str,
        labels: Labels,
    ) -> &'m Gauge {
        let i = match self {
            MetricNames::Prometheus => 0,
            MetricNames::OpenTelemetry => {
                usize::from(labels.method) * 2 + usize::from(labels.https)
            }
        };
        m.active[i].get_or_init(|| match self {
            MetricNames::Prometheus => gauge(IN_FLIGHT.name, vec![label("route", route)]),
            MetricNames::OpenTelemetry => gauge(
                OTEL_ACTIVE,
                vec![
                    label("http.request.method", METHODS[usize::from(labels.method)]),
                    label("url.scheme", labels.scheme()),
                ],
            ),
        })
    }

    /// Records the end of a request on `route`.
    pub(crate) fn end(self, m: &RouteMetrics, route: &'static str, labels: Labels, end: &End) {
        self.active(m, route, labels).decrement(1.0);
        if let MetricNames::Prometheus = self {
            let c = m.counters.get_or_init(|| {
                let by_route = |name| counter(name, vec![label("route", route)]);
                RouteCounters {
                    errors: by_route(ERRORS.name),
                    aborted: by_route(ABORTED.name),
                    bytes_in: by_route(BYTES_IN.name),
                    bytes_out: by_route(BYTES_OUT.name),
                }
            });
            if end.error {
                c.errors.increment(1);
            }
            if end.outcome == BodyOutcome::Aborted {
                c.aborted.increment(1);
            }
            if end.bytes_in > 0 {
                c.bytes_in.increment(end.bytes_in);
            }
            if end.bytes_out > 0 {
                c.bytes_out.increment(end.bytes_out);
            }
        }
        let key = set_key(self, labels, end);
        let start = (key as usize).wrapping_mul(0x9E37_79B9) >> 7;
        for i in 0..SETS {
            let (k, slot) = &m.sets[(start + i) % SETS];
            let mut cur = k.load(Relaxed);
            if cur == 0 {
                cur = match k.compare_exchange(0, key, Relaxed, Relaxed) {
                    Ok(_) => key,
                    Err(now) => now,
                };
            }
            if cur == key {
                let h = slot.get_or_init(|| self.register(route, labels, end));
                self.record(h, end);
                return;
            }
        }
        // Every slot holds another label set: register this one for this request only.
        self.record(&self.register(route, labels, end), end);
    }

    fn record(self, h: &SetHandles, end: &End) {
        h.requests.increment(1);
        h.duration.record(end.elapsed.as_secs_f64());
        if end.grpc.is_some() {
            h.rpc_calls.increment(1);
            h.rpc_duration.record(end.elapsed.as_secs_f64());
        }
        if let MetricNames::OpenTelemetry = self {
            if end.bytes_in > 0 {
                h.request_size.record(end.bytes_in as f64);
            }
            h.response_size.record(end.bytes_out as f64);
        }
    }

    fn register(self, route: &'static str, labels: Labels, end: &End) -> SetHandles {
        match self {
            MetricNames::Prometheus => register_prometheus(route, labels, end),
            MetricNames::OpenTelemetry => register_otel(route, labels, end),
        }
    }
}

/// The RPC label names under the Prometheus names, and under OpenTelemetry's.
const PROMETHEUS_RPC: [&str; 4] = [
    "rpc_system",
    "rpc_service",
    "rpc_method",
    "rpc_grpc_status_code",
];
const OTEL_RPC: [&str; 4] = [
    "rpc.system",
    "rpc.service",
    "rpc.method",
    "rpc.grpc.status_code",
];

/// The handles of a label set under the Prometheus names: route, method and status.
fn register_prometheus(route: &'static str, labels: Labels, end: &End) -> SetHandles {
    let status: SharedString = match end.status {
        Some(s) => s.as_u16().to_string().into(),
        None => SharedString::const_str("none"),
    };
    let labels = vec![
        label("route", route),
        label("method", METHODS[usize::from(labels.method)]),
        Label::new("status", status),
    ];
    let rpc_calls = match rpc_labels(route, end, PROMETHEUS_RPC) {
        Some(mut rpc) => {
            rpc.push(label("route", route));
            counter(RPC_CALLS.name, rpc)
        }
        None => Counter::noop(),
    };
    SetHandles {
        requests: counter(REQUESTS.name, labels.clone()),
        duration: histogram(DURATION.name, labels),
        request_size: Histogram::noop(),
        response_size: Histogram::noop(),
        rpc_calls,
        rpc_duration: Histogram::noop(),
    }
}

/// The handles of a label set under OpenTelemetry's semantic conventions.
fn register_otel(route: &'static str, labels: Labels, end: &End) -> SetHandles {
    let mut attrs = vec![
        label("http.request.method", METHODS[usize::from(labels.method)]),
        label("http.route", route),
        label("url.scheme", labels.scheme()),
    ];
    if let Some(s) = end.status {
        attrs.push(Label::new(
            "http.response.status_code",
            s.as_u16().to_string(),
        ));
    }
    let error: Option<SharedString> = match (end.outcome, end.status) {
        (BodyOutcome::Aborted, _) => Some(SharedString::const_str("aborted")),
        (BodyOutcome::Failed, _) | (_, None) => Some(SharedString::const_str("failed")),
        (_, Some(s)) if s.is_server_error() => Some(s.as_u16().to_string().into()),
        _ => None,
    };
    if let Some(e) = error {
        attrs.push(Label::new("error.type", e));
    }
    let rpc = rpc_labels(route, end, OTEL_RPC);
    SetHandles {
        requests: Counter::noop(),
        duration: histogram(OTEL_DURATION, attrs.clone()),
        request_size: histogram(OTEL_REQUEST_SIZE, attrs.clone()),
        response_size: histogram(OTEL_RESPONSE_SIZE, attrs),
        rpc_calls: Counter::noop(),
        rpc_duration: rpc.map_or_else(Histogram::noop, |l| histogram(OTEL_RPC_DURATION, l)),
    }
}

/// The RPC labels of a gRPC call on the method route `/service/method`, under `names`
/// (system, service, method, status code); `None` for plain HTTP.
fn rpc_labels(route: &'static str, end: &End, names: [&'static str; 4]) -> Option<Vec<Label>> {
    let code = end.grpc?;
    let (service, method) = route.strip_prefix('/')?.split_once('/')?;
    Some(vec![
        label(names[0], "grpc"),
        label(names[1], service),
        label(names[2], method),
        Label::new(names[3], code.as_u8().to_string()),
    ])
}
