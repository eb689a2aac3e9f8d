#![doc = include_str!("../README.md")]
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

#[cfg(feature = "auth")]
pub use tower_plugins_auth as auth;

pub use tower_plugins_core::BoxError;
