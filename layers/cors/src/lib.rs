//! CORS for tower, exactly as the Fetch standard and real browsers expect.
//!
//! - Only `OPTIONS` with `Origin` **and** `Access-Control-Request-Method` is a preflight; every
//!   other `OPTIONS` request reaches the handler.
//! - Origins: an exact list, `"*"`, patterns matched by host labels (`https://*.example.com`
//!   never matches `https://evil-example.com` or `https://example.com.evil.net`), ports
//!   (`http://localhost:*`), anchored regexes, a predicate from code; `null` only when listed.
//! - The requested method and headers are checked; a disallowed preflight gets no CORS headers
//!   (or `403` with `strict`).
//! - `Vary: Origin` is appended to the handler's `Vary`, never replacing it; CORS headers the
//!   handler set are kept unless `override_handler`.
//! - Every invalid setting, including credentials with any `*`, is a
//!   [`ConfigError`](tower_plugins_core::ConfigError) at load, never a panic; hostile request
//!   headers (repeated or binary `Origin`, a 100 KB `Access-Control-Request-Headers`) are
//!   refused, never a crash.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::convert::Infallible;
//! use http::{Method, Request, Response};
//! use http_body_util::Full;
//! use bytes::Bytes;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use tower_plugins_cors::{AllowOrigin, CorsLayer};
//!
//! let cors = CorsLayer::new()
//!     .allow_origin(AllowOrigin::list(["https://app.example.com"])?)
//!     .allow_methods([Method::GET, Method::PUT])
//!     .allow_headers(["content-type"])?;
//! cors.check()?;
//! let svc = ServiceBuilder::new()
//!     .layer(cors)
//!     .service(service_fn(|_req: Request<()>| async {
//!         Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("hello"))))
//!     }));
//!
//! let preflight = Request::options("/items")
//!     .header("origin", "https://app.example.com")
//!     .header("access-control-request-method", "PUT")
//!     .header("access-control-request-headers", "content-type")
//!     .body(())?;
//! let res = svc.clone().oneshot(preflight).await?;
//! assert_eq!(res.status(), 204);
//! assert_eq!(res.headers()["access-control-allow-origin"], "https://app.example.com");
//!
//! let get = Request::get("/items").header("origin", "https://evil.example").body(())?;
//! let res = svc.oneshot(get).await?;
//! assert!(!res.headers().contains_key("access-control-allow-origin"));
//! assert_eq!(res.headers()["vary"], "origin");
//! # Ok(()) }
//! ```
//!
//! # Features
//! - `serde`: [`CorsConfig`], the `use = "cors"` table of a plugin stack.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "serde")]
mod config;
mod layer;
mod origin;
mod preflight;
mod service;

#[cfg(feature = "serde")]
pub use config::{CorsConfig, OneOrMany};
pub use layer::CorsLayer;
pub use origin::{AllowOrigin, OriginRequest};
pub use service::{Cors, ResponseFuture};

#[cfg(test)]
mod tests;
