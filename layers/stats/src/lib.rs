//! Per-route request stats for any tower service: counts, status classes, latency
//! percentiles, bytes, requests in flight and the request rate, with custom collectors, a JSON
//! snapshot, a live dashboard and Prometheus text.
//!
//! - **Routes never explode**: a request is counted under axum's `MatchedPath` (feature
//!   `axum`), else under the first configured route template its path matches
//!   (`/api/items/{id}`), else under one `unmatched` label. Raw paths never become labels;
//!   `max_routes` caps the distinct routes, and requests past it are counted under `other`.
//! - **No lock on the hot path**: every route's counters are sharded by thread (cache-line
//!   aligned), routes are found in an insert-only table without a lock, and a request records
//!   with relaxed atomic adds only. The registry lives for the life of the process, so a
//!   request copies a reference to it instead of touching a shared reference count.
//! - **Finished means finished**: a request is recorded when its response body ends, fails or
//!   is dropped (then it is also counted as aborted), or when it is dropped before its
//!   response. In-flight never leaks.
//! - **Custom collectors** ([`Collector`]) see each request, response head and end, and add
//!   their own figures to the snapshot; [`LargeResponses`] is the example.
//! - **Endpoints**, off unless configured: [`StatsLayer::endpoint`] answers the JSON
//!   [`Snapshot`], or the dashboard (one self-contained page) to browsers;
//!   [`StatsLayer::metrics_endpoint`] answers Prometheus text. By default only loopback
//!   clients may read them ([`StatsLayer::allow`], [`StatsLayer::token`]).
//! - **The `metrics` facade**, off unless asked for ([`StatsLayer::metrics_facade`]): the same
//!   figures under Prometheus names or OpenTelemetry's semantic conventions ([`MetricNames`]),
//!   for whatever recorder the application installed.
//!
//! ```
//! use std::convert::Infallible;
//! use http::{Request, Response};
//! use tower::{Layer, ServiceExt, service_fn};
//! use tower_plugins_stats::{LargeResponses, StatsLayer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let layer = StatsLayer::new()
//!     .routes(["/items/{id}"])?
//!     .collector("large_responses", LargeResponses::new(1000));
//! let stats = layer.handle();
//! let svc = layer.layer(service_fn(|_req: Request<String>| async {
//!     Ok::<_, Infallible>(Response::new("x".repeat(2000)))
//! }));
//!
//! let res = svc.clone().oneshot(Request::new(String::new())).await?; // "/" is unmatched
//! drop(res); // dropped before its body was read: aborted
//! let res = svc.oneshot(Request::get("/items/7").body(String::new())?).await?;
//! http_body_util::BodyExt::collect(res.into_body()).await?;
//!
//! let snap = stats.snapshot();
//! assert_eq!(snap.overall.requests, 2);
//! assert_eq!(snap.overall.aborted, 1);
//! let items = snap.routes.iter().find(|r| r.route == "/items/{id}").unwrap();
//! assert_eq!(items.by_class.c2xx, 1);
//! assert_eq!(items.bytes_sent, 2000);
//! assert_eq!(snap.collectors["large_responses"]["total"], 1);
//! # Ok(()) }
//! ```
//!
//! Features: `serde` (the `use = "stats"` configuration of a plugin stack), `axum` (route
//! names from `MatchedPath`).
#![cfg_attr(docsrs, feature(doc_cfg))]

mod collector;
#[cfg(feature = "serde")]
mod config;
mod endpoints;
mod facade;
mod histogram;
mod layer;
mod metric_names;
mod prometheus;
mod registry;
mod route;
mod service;
mod template;

pub use collector::{Collector, CounterMap, EndInfo, LargeResponses, RequestInfo, ResponseInfo};
#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
pub use config::StatsConfig;
pub use facade::MetricNames;
pub use layer::{DEFAULT_MAX_ROUTES, StatsHandle, StatsLayer};
pub use registry::{ByClass, Latency, OTHER, RouteSnapshot, Snapshot, UNMATCHED};
pub use service::{Finish, ResponseBody, ResponseFuture, Stats};

#[cfg(test)]
mod tests;
