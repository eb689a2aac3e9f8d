//! HTTP middleware plugins for any tower-based server (axum, hyper, tonic), composed in a
//! configured order from a TOML file.
//!
//! Each concern is an independent tower `Layer` in its own crate, re-exported here behind a
//! feature; a [`PluginStack`] composes them in the order a TOML file (plus code and the
//! environment) gives, so operators change middleware without touching Rust.
//!
//! | plugin (`use = ...`) | crate | feature |
//! |---|---|---|
//! | `timer` | [`tower-plugins-timer`](timer) | `timer` |
//! | `cors` | [`tower-plugins-cors`](cors) | `cors` |
//! | `request_log` | [`tower-plugins-request-log`](request_log) | `request-log` |
//! | `rate_limit` | [`tower-plugins-rate-limit`](rate_limit) | `rate-limit` (Redis: `rate-limit-redis`) |
//! | `stats` | [`tower-plugins-stats`](stats) | `stats` |
//!
//! # Example
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use tower_plugins::PluginStack;
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let stack = PluginStack::from_file("plugins.toml")?;   // a ConfigError names file:line:col
//! println!("{stack}");                                   // the effective stack
//! let app = Router::new()
//!     .route("/", get(|| async { "hello" }))
//!     .layer(stack.layer());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! # Features
//! - `timer` (default): the timer plugin and its re-export as [`timer`].
//! - `cors` (default): the CORS plugin and its re-export as [`cors`].
//! - `request-log` (default): the request-log plugin and its re-export as [`request_log`].
//! - `rate-limit` (default): the rate-limit plugin and its re-export as [`rate_limit`].
//! - `rate-limit-redis`: the rate limiter's Redis backend (`backend = { redis = "..." }`).
//! - `stats` (default): the stats plugin and its re-export as [`stats`].
//! - `axum` (default): read the client's peer address from axum's `ConnectInfo` too.
//! - `full`: everything.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod stack;

pub use stack::{
    CustomLayer, EntryInfo, Next, PluginContext, PluginEntry, PluginStack, PluginStackBuilder,
    PluginStackLayer, PluginStackService, from_fn,
};

/// The request body inside a stack, and of the service it wraps: a boxed body (axum's own
/// `Body`, so an axum `Router` needs no conversion). `Body::new` wraps any other body.
pub use axum_core::body::Body;

pub use tower_plugins_core as core;
pub use tower_plugins_core::{ConfigError, ConfigProblem, Location, ProblemKind};

/// The timer plugin: `X-Response-Time` and `Server-Timing`.
#[cfg(feature = "timer")]
pub use tower_plugins_timer as timer;

/// The CORS plugin: Fetch-standard CORS with validated rules.
#[cfg(feature = "cors")]
pub use tower_plugins_cors as cors;

/// The request-log plugin: access logs with request ids, redaction and non-blocking sinks.
#[cfg(feature = "request-log")]
pub use tower_plugins_request_log as request_log;

/// The rate-limit plugin: GCRA limits per client address, header or user, IETF headers,
/// memory or Redis buckets.
#[cfg(feature = "rate-limit")]
pub use tower_plugins_rate_limit as rate_limit;

/// The stats plugin: per-route stats, custom collectors, a dashboard and Prometheus.
#[cfg(feature = "stats")]
pub use tower_plugins_stats as stats;

pub use tower_plugins_core::BoxError;
