#![doc = include_str!("../README.md")]
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
pub use service::{Cors, CorsState, ResponseFuture};

#[cfg(test)]
mod tests;

/// The request headers a grpc-web client sends, which its preflight asks for (tonic-web's
/// defaults): `x-grpc-web`, `x-user-agent`, `grpc-timeout`, `content-type`.
pub const GRPC_WEB_ALLOW_HEADERS: &[&str] =
    &["x-grpc-web", "x-user-agent", "grpc-timeout", "content-type"];

/// The response headers a grpc-web client must read to learn a call's outcome:
/// `grpc-status`, `grpc-message`, `grpc-status-details-bin`.
pub const GRPC_WEB_EXPOSE_HEADERS: &[&str] =
    &["grpc-status", "grpc-message", "grpc-status-details-bin"];
