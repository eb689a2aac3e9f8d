#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod collector;
#[cfg(feature = "serde")]
mod config;
mod endpoints;
mod facade;
mod histogram;
mod layer;
mod metric_names;
mod prometheus;
mod registry;
mod route;
mod service;
mod template;

pub use collector::{Collector, CounterMap, EndInfo, LargeResponses, RequestInfo, ResponseInfo};
#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
pub use config::StatsConfig;
pub use facade::MetricNames;
pub use layer::{DEFAULT_MAX_ROUTES, MAX_ROUTES, StatsHandle, StatsLayer};
pub use registry::{ByClass, Latency, OTHER, RouteSnapshot, Snapshot, UNMATCHED};
pub use service::{Finish, Pending, ResponseBody, ResponseFuture, Stats, StatsHooks};

#[cfg(test)]
mod tests;
