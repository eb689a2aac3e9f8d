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
pub use service::{Cors, ResponseFuture};

#[cfg(test)]
mod tests;
