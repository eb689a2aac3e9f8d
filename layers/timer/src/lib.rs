//! Response time middleware for tower: `X-Response-Time` and W3C `Server-Timing`.
//!
//! [`TimerLayer`] reads the clock once when a request arrives (or reuses the instant an outer
//! plugin stored, see [`RequestStart`](tower_plugins_core::RequestStart)), and when the
//! response head is ready writes:
//!
//! - `X-Response-Time: 12.345ms`: header name, unit, digits and suffix configurable, as
//!   express's `response-time` does; a value the handler set is kept;
//! - `Server-Timing: total;dur=12.345`: appended as a further field line, so entries the
//!   handler wrote stay; handlers can also add entries through the [`ServerTiming`] request
//!   extension, written before `total`.
//!
//! It also measures the time to the end of the body (or to the moment the client went away)
//! and hands both timings to [`TimerLayer::on_complete`].
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use std::convert::Infallible;
//! use http::{Request, Response};
//! use http_body_util::Full;
//! use bytes::Bytes;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use tower_plugins_timer::TimerLayer;
//!
//! let svc = ServiceBuilder::new()
//!     .layer(TimerLayer::new())
//!     .service(service_fn(|_req: Request<()>| async {
//!         Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("hello"))))
//!     }));
//! let res = svc.oneshot(Request::new(())).await.unwrap();
//! let rt = res.headers()["x-response-time"].to_str().unwrap();
//! assert!(rt.ends_with("ms"));
//! assert!(res.headers()["server-timing"].to_str().unwrap().starts_with("total;dur="));
//! # }
//! ```
//!
//! # Features
//! - `serde`: [`TimerConfig`], the `use = "timer"` table of a plugin stack.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "serde")]
mod config;
mod format;
mod layer;
mod server_timing;
mod service;

#[cfg(feature = "serde")]
pub use config::TimerConfig;
pub use format::TimeUnit;
pub use layer::{TimerLayer, Timings};
pub use server_timing::ServerTiming;
pub use service::{ResponseBody, ResponseFuture, Timer, TimerEnd};

#[cfg(test)]
mod tests;
