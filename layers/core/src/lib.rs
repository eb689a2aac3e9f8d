#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "serde")]
mod backend;
mod body;
mod bound;
mod client_ip;
mod error;
mod grpc;
mod guard;
mod header_arena;
mod header_name;
mod hooks;
mod human;
mod json;
mod pattern;
mod plugin;
#[cfg(feature = "redis")]
mod redis;
mod spares;
#[cfg(feature = "serde")]
mod string_or;
mod sweeper;
mod timing;
mod token;
mod values;

#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
pub use backend::BackendConfig;
pub use body::PluginBody;
pub use bound::{count_in, duration_in};
pub use client_ip::{ClientIpConfig, ClientIpResolver, ForwardedHeader, parse_cidr};
pub use error::{ConfigError, ConfigProblem, Location, PluginRef, ProblemKind, Problems, join_key};
pub use grpc::{
    GRPC_MESSAGE, GRPC_RETRY_PUSHBACK_MS, GRPC_STATUS, GrpcCode, decode_grpc_message,
    grpc_content_type, grpc_refusal, refusal_for,
};
pub use guard::{BodyEnd, BodyOutcome, GuardedBody, NoopOnEnd, OnBodyEnd};
pub use header_arena::{header_value, header_value_from_parts};
pub use header_name::header_name;
pub use hooks::{Before, Hooks, NoHooks};
pub use human::{HumanDuration, Quota, parse_duration, parse_quota};
pub use json::{problem_json, write_json_str};
pub use pattern::{PathPattern, PathSet};
pub use plugin::{AnswerBody, KeptFuture, Plugin, PluginContext, PluginFuture};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::{RedisConnection, RedisSettings, redis_client};
pub use spares::Spares;
#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
pub use string_or::StringOr;
pub use sweeper::{Sweep, register_sweep};
pub use timing::{AuthUser, RequestStart};
pub use token::{TOKEN_CHARS, is_tchar, write_quoted};
pub use values::{choice, parse_method};

/// Writes `get_ref`, `get_mut` and `into_inner` for a service struct whose wrapped service is
/// the field `inner` (the accessors every tower-plugins service offers, as tower-http's do).
///
/// ```
/// pub struct Wrapper<S> {
///     inner: S,
/// }
///
/// impl<S> Wrapper<S> {
///     tower_plugins_core::inner_service_accessors!();
/// }
///
/// let mut w = Wrapper { inner: 5 };
/// *w.get_mut() += 1;
/// assert_eq!(*w.get_ref(), 6);
/// assert_eq!(w.into_inner(), 6);
/// ```
#[macro_export]
macro_rules! inner_service_accessors {
    () => {
        /// The inner service.
        pub fn get_ref(&self) -> &S {
            &self.inner
        }

        /// The inner service, mutably.
        pub fn get_mut(&mut self) -> &mut S {
            &mut self.inner
        }

        /// Consumes the service, returning the inner one.
        pub fn into_inner(self) -> S {
            self.inner
        }
    };
}

/// The candidate closest to `word` (Jaro-Winkler similarity of at least 0.8), for "did you
/// mean" hints in configuration errors.
///
/// ```
/// assert_eq!(tower_plugins_core::nearest("timr", ["timer", "cors"].into_iter()), Some("timer"));
/// assert_eq!(tower_plugins_core::nearest("zzz", ["timer", "cors"].into_iter()), None);
/// ```
pub fn nearest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// A boxed error, as used by body and service errors across the tower ecosystem (the facade
/// re-exports this one).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the crate's macros name; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use http::Response;
}
