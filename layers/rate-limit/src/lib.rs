#![doc = include_str!("../README.md")]
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
mod limiter;
#[cfg(feature = "redis")]
mod redis;
mod service;
mod settings;
mod store;

pub use clock::ManualClock;
#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
pub use config::{KeyConfig, RateLimitConfig, RuleConfig};
pub use key::{KeyRequest, KeySource, MAX_KEY_LEN, RateKey, UnknownKey};
pub use layer::RateLimitLayer;
pub use limiter::Limiter;
pub use service::{RateLimit, RateLimitHooks, RateLimitState, ResponseFuture};
pub use settings::{
    Count, DEFAULT_MAX_KEYS, MAX_KEYS, OnBackendError, RateLimitStats, RejectReason, Rejection,
    Rule,
};
#[cfg(feature = "serde")]
pub use tower_plugins_core::BackendConfig;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use tower_plugins_core::RedisSettings;

#[cfg(test)]
mod tests;
