//! The rate_limit plugin beside tower_governor, same quota, same key, same run.
//!
//! ```not_rust
//! cargo bench --bench rate_limit
//! python3 scripts/performance.py ratios rate_limit
//! ```
//!
//! Both limiters get the quota, key and request of `benches/compared.rs` (a request from a
//! trusted local proxy, keyed by its `X-Forwarded-For` address). Overhead is each case minus
//! the bare service.
//!
//! - `admitted`: a request under the limit. Ours writes `RateLimit-Policy` and `RateLimit`
//!   (the IETF headers, on by default); tower_governor writes no header. Target: ours at most
//!   0.8x the peer's overhead.
//! - `admitted_headers`: ours with the legacy `X-RateLimit-*` too, tower_governor with
//!   `use_headers()` (`x-ratelimit-limit` and `-remaining`).
//! - `admitted_no_headers`: ours with headers off (what the headers cost).
//! - `refused`: a request over the limit, answered 429 by the limiter.

#[path = "compared.rs"]
mod compared;
#[path = "support.rs"]
mod support;

use axum::body::Body;
use compared::rate_limit::{BURST, huge, ours};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use support::{axum_inner as inner, drive};
use tower::Layer;
use tower_governor::GovernorLayer;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::key_extractor::SmartIpKeyExtractor;
use tower_plugins::core::Quota;

fn request() -> http::Request<Body> {
    compared::rate_limit::request()
}

fn bench(c: &mut Criterion) {
    let rt = support::runtime();
    let mut g = support::group(c, "rate_limit");

    let bare = inner();
    g.bench_function(BenchmarkId::new("bare", "service"), |b| {
        b.to_async(&rt).iter(|| drive(&bare, request()));
    });

    let huge = huge();

    let svc = ours(huge, BURST).layer(inner());
    g.bench_function(BenchmarkId::new("admitted", "ours"), |b| {
        b.to_async(&rt).iter(|| drive(&svc, request()));
    });
    let peer = GovernorLayer::new(compared::rate_limit::peer().finish().unwrap()).layer(inner());
    g.bench_function(BenchmarkId::new("admitted", "peer"), |b| {
        b.to_async(&rt).iter(|| drive(&peer, request()));
    });

    let svc = ours(huge, BURST).legacy_headers(true).layer(inner());
    g.bench_function(BenchmarkId::new("admitted_headers", "ours"), |b| {
        b.to_async(&rt).iter(|| drive(&svc, request()));
    });
    let peer = GovernorLayer::new(compared::rate_limit::peer().use_headers().finish().unwrap())
        .layer(inner());
    g.bench_function(BenchmarkId::new("admitted_headers", "peer"), |b| {
        b.to_async(&rt).iter(|| drive(&peer, request()));
    });

    let svc = ours(huge, BURST).headers(false).layer(inner());
    g.bench_function(BenchmarkId::new("admitted_no_headers", "ours"), |b| {
        b.to_async(&rt).iter(|| drive(&svc, request()));
    });

    // Over the limit: one request an hour, already used.
    let one = Quota::new(1, std::time::Duration::from_secs(3600)).unwrap();
    let svc = ours(one, 1).layer(inner());
    rt.block_on(drive(&svc, request()));
    g.bench_function(BenchmarkId::new("refused", "ours"), |b| {
        b.to_async(&rt).iter(|| drive(&svc, request()));
    });
    let peer = GovernorLayer::new(
        GovernorConfigBuilder::default()
            .per_second(3600)
            .burst_size(1)
            .key_extractor(SmartIpKeyExtractor)
            .finish()
            .unwrap(),
    )
    .layer(inner());
    rt.block_on(drive(&peer, request()));
    g.bench_function(BenchmarkId::new("refused", "peer"), |b| {
        b.to_async(&rt).iter(|| drive(&peer, request()));
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
