#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod answer;
mod clock;
#[cfg(feature = "serde")]
mod config;
mod cookie;
mod csrf;
mod endpoints;
mod keys;
mod layer;
mod next;
#[cfg(feature = "redis")]
mod redis_store;
mod rules;
mod service;
mod session;
mod store;
mod throttle;
mod users;
mod verifier;

pub use clock::ManualClock;
#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
pub use config::{AuthConfig, CookieConfig, LoginConfig, RuleConfig, ThrottleConfig, UserConfig};
pub use cookie::{CookieSettings, SameSite};
pub use keys::{Secret, StoreKey};
pub use layer::{AuthLayer, OnStoreError};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis_store::RedisStore;
pub use rules::{Rule, Unauthenticated};
pub use service::{Auth, ResponseFuture};
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use session::NoUser;
pub use session::{CurrentUser, Login, Session};
pub use store::{Change, MemoryStore, Record, SessionStore, StoreError, StoreFuture, Timeouts};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use tower_plugins_core::RedisSettings;
pub use users::{AuthError, AuthFuture, StaticUsers, User, UserProvider};
pub use verifier::{
    Busy, MAX_LANES, MAX_MEMORY_KIB, MAX_PASSES, Verifier, check_phc, hash_password,
};

/// Sessions the memory store holds by default.
pub const DEFAULT_MAX_SESSIONS: usize = 100_000;
/// The most sessions `max_sessions` may ask for (about 150 bytes each, plus the user's id).
pub const MAX_SESSIONS: usize = 10_000_000;
/// The longest user name a login post may carry, in bytes.
pub const MAX_USERNAME: usize = 256;
/// The longest password a login post may carry, in bytes (argon2 would hash any length).
pub const MAX_PASSWORD: usize = 1024;
/// The largest login body `max_body` may allow, in bytes.
pub const MAX_LOGIN_BODY: usize = 64 * 1024;
/// The most password-hashing threads `max_concurrent_hashes` may ask for.
pub const MAX_HASH_THREADS: usize = 256;

#[cfg(test)]
mod tests;
