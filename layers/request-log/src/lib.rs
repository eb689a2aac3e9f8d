#![doc = include_str!("../README.md")]
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
pub use service::{LogOnEnd, LogState, RequestLog, ResponseBody, ResponseFuture};
pub use sink::{MAX_BUFFER_BYTES, MAX_BUFFER_LINES, Rotate};
pub use template::Template;

#[cfg(test)]
mod tests;
