//! Access logs for tower: `common`, `combined`, `json` or custom formats, request ids,
//! redaction, filters, and sinks that never block the async runtime.
//!
//! A line is written when the response body ends, so `bytes` and the duration are real; a
//! request whose client went away is logged with `outcome` `aborted` and what was sent.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::convert::Infallible;
//! use http::{Request, Response};
//! use http_body_util::{BodyExt, Full};
//! use bytes::Bytes;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use tower_plugins_request_log::{LogFormat, RequestLogLayer};
//!
//! let log = RequestLogLayer::new().format(LogFormat::Combined).to_stdout(8192)?;
//! let svc = ServiceBuilder::new().layer(log).service(service_fn(|_req: Request<()>| async {
//!     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("hello"))))
//! }));
//! let res = svc.oneshot(Request::get("/").body(())?).await?;
//! assert!(res.headers().contains_key("x-request-id"));
//! res.into_body().collect().await?; // the line is written here
//! # Ok(()) }
//! ```
//!
//! # Features
//! - `serde`: [`RequestLogConfig`], the `use = "request_log"` table of a plugin stack.
//! - `axum`: the `route` field from axum's `MatchedPath`.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "serde")]
mod config;
mod escape;
mod format;
mod layer;
mod request_id;
mod service;
mod sink;
mod template;

#[cfg(feature = "serde")]
pub use config::{RequestLogConfig, SinkConfig};
pub use format::{LogFormat, REDACTED, Record};
pub use layer::RequestLogLayer;
pub use request_id::RequestId;
pub use service::{LogOnEnd, RequestLog, ResponseBody, ResponseFuture};
pub use sink::Rotate;
pub use template::Template;

#[cfg(test)]
mod tests;
