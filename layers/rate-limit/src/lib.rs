//! Rate limiting for tower services: GCRA buckets (governor's) keyed by the client's address,
//! a header, the user or nothing at all, with the IETF `RateLimit` headers.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod clock;
#[cfg(feature = "serde")]
mod config;
mod key;
mod layer;
#[cfg(feature = "redis")]
mod redis;
mod service;
mod store;

pub use clock::ManualClock;
#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
pub use config::{BackendConfig, KeyConfig, RateLimitConfig, RuleConfig};
pub use key::{KeyRequest, KeySource, MAX_KEY_LEN, RateKey, UnknownKey};
pub use layer::{
    Count, DEFAULT_MAX_KEYS, OnBackendError, RateLimitLayer, RateLimitStats, RejectReason,
    Rejection, Rule,
};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::RedisSettings;
pub use service::{RateLimit, ResponseFuture};

#[cfg(test)]
mod tests;
