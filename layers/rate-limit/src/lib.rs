//! Rate limiting for tower services: GCRA buckets (governor's) keyed by the client's address,
//! a header, the user or nothing at all, with the IETF `RateLimit` headers.
//!
//! - Quotas as people write them (`"100/min"`), a burst, per-route [`Rule`]s by path and
//!   method, `count = "failures"` for login forms, `shadow` rules, exempt paths and networks.
//! - Keys from the client's address resolved through trusted proxies only
//!   ([`KeySource::client_ip`], IPv6 grouped by /64), a header, the auth plugin's user, or a
//!   function; a request without a usable key is never a 500 ([`UnknownKey`]).
//! - Admitted requests carry `RateLimit-Policy` and `RateLimit`; refusals are `429` with
//!   `Retry-After` (rounded up, never 0) and an RFC 9457 `application/problem+json` body.
//! - Memory is capped ([`RateLimitLayer::max_keys`]) and swept by a thread of the crate's own;
//!   the `redis` feature shares the buckets between instances (one atomic round trip).
//!
//! See the [README](https://docs.rs/crate/tower-plugins-rate-limit) for every choice and the
//! measured figures.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::convert::Infallible;
//! use std::net::SocketAddr;
//! use http::{Request, Response, StatusCode};
//! use tower::{Layer, ServiceExt, service_fn};
//! use tower_plugins_core::parse_quota;
//! use tower_plugins_rate_limit::RateLimitLayer;
//!
//! let limit = RateLimitLayer::new(parse_quota("2/min")?);
//! let svc = limit.layer(service_fn(|_: Request<()>| async {
//!     Ok::<_, Infallible>(Response::new(String::from("hello")))
//! }));
//!
//! // The peer address, as axum's ConnectInfo or hyper-util servers provide it.
//! let from = |ip: &str| {
//!     let mut req = Request::new(());
//!     req.extensions_mut().insert(format!("{ip}:5000").parse::<SocketAddr>().unwrap());
//!     req
//! };
//! let res = svc.clone().oneshot(from("192.0.2.1")).await?;
//! assert_eq!(res.headers()["ratelimit"], "\"default\";r=1;t=30");
//! svc.clone().oneshot(from("192.0.2.1")).await?;
//! let refused = svc.clone().oneshot(from("192.0.2.1")).await?;
//! assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
//! assert_eq!(refused.headers()["retry-after"], "30");
//! // Another client has its own bucket.
//! assert_eq!(svc.oneshot(from("192.0.2.2")).await?.status(), StatusCode::OK);
//! # Ok(()) }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

mod answer;
mod clock;
#[cfg(feature = "serde")]
mod config;
mod decide;
mod engine;
mod header_values;
mod key;
mod layer;
#[cfg(feature = "redis")]
mod redis;
mod service;
mod settings;
mod store;

pub use clock::ManualClock;
#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
pub use config::{BackendConfig, KeyConfig, RateLimitConfig, RuleConfig};
pub use key::{KeyRequest, KeySource, MAX_KEY_LEN, RateKey, UnknownKey};
pub use layer::RateLimitLayer;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::RedisSettings;
pub use service::{RateLimit, ResponseFuture};
pub use settings::{
    Count, DEFAULT_MAX_KEYS, OnBackendError, RateLimitStats, RejectReason, Rejection, Rule,
};

#[cfg(test)]
mod tests;
