#![doc = include_str!("../README.md")]
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
pub use service::{ResponseBody, ResponseFuture, Timer, TimerEnd, TimerState};

#[cfg(test)]
mod tests;
