//! The rate_limit plugin beside tower_governor, same quota, same key, same run.
//!
//! ```not_rust
//! cargo bench --bench rate_limit
//! python3 scripts/bench-ratios.py rate_limit
//! ```
//!
//! Each request comes from a trusted local proxy (peer 127.0.0.1) with
//! `X-Forwarded-For: 203.0.113.9`, so both limiters key it by 203.0.113.9 (ours because
//! 127.0.0.1 is a trusted proxy; tower_governor's `SmartIpKeyExtractor` reads the header from
//! anyone). Overhead is each case minus the bare service.
//!
//! - `admitted`: a request under the limit. Ours writes `RateLimit-Policy` and `RateLimit`
//!   (the IETF headers, on by default); tower_governor writes no header. Target: ours at most
//!   0.8x the peer's overhead.
//! - `admitted_headers`: ours with the legacy `X-RateLimit-*` too, tower_governor with
//!   `use_headers()` (`x-ratelimit-limit` and `-remaining`).
//! - `admitted_no_headers`: ours with headers off (what the headers cost).
//! - `refused`: a request over the limit, answered 429 by the limiter.

#[path = "support.rs"]
mod support;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use http::Request;
use support::{axum_inner as inner, drive};
use tower::Layer;
use tower_governor::GovernorLayer;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::key_extractor::SmartIpKeyExtractor;
use tower_plugins::core::{ClientIpResolver, Quota};
use tower_plugins::rate_limit::RateLimitLayer;

fn req() -> Request<Body> {
    let mut r = Request::get("/api/items")
        .header("x-forwarded-for", "203.0.113.9")
        .body(Body::empty())
        .unwrap();
    r.extensions_mut()
        .insert(ConnectInfo("127.0.0.1:5555".parse::<SocketAddr>().unwrap()));
    r
}

const BURST: u32 = 100;

fn ours(quota: Quota, burst: u32) -> RateLimitLayer {
    RateLimitLayer::new(quota)
        .burst(std::num::NonZeroU32::new(burst).unwrap())
        .client_ip(ClientIpResolver::new().trust(["127.0.0.1/32"]).unwrap())
}

fn bench(c: &mut Criterion) {
    let rt = support::runtime();
    let mut g = support::group(c, "rate_limit");

    let bare = inner();
    g.bench_function(BenchmarkId::new("bare", "service"), |b| {
        b.to_async(&rt).iter(|| drive(&bare, req()));
    });

    // A quota no bench run can exhaust: one unit a microsecond (the fastest quota), up to 100 at once (a burst
    // of the size real quotas have, so the `RateLimit` values are the two-digit ones real
    // responses carry).
    let huge = Quota::new(1_000_000, std::time::Duration::from_secs(1)).unwrap();
    let peer_config = || {
        GovernorConfigBuilder::default()
            .period(std::time::Duration::from_micros(1))
            .burst_size(BURST)
            .key_extractor(SmartIpKeyExtractor)
    };

    let svc = ours(huge, BURST).layer(inner());
    g.bench_function(BenchmarkId::new("admitted", "ours"), |b| {
        b.to_async(&rt).iter(|| drive(&svc, req()));
    });
    let peer = GovernorLayer::new(peer_config().finish().unwrap()).layer(inner());
    g.bench_function(BenchmarkId::new("admitted", "peer"), |b| {
        b.to_async(&rt).iter(|| drive(&peer, req()));
    });

    let svc = ours(huge, BURST).legacy_headers(true).layer(inner());
    g.bench_function(BenchmarkId::new("admitted_headers", "ours"), |b| {
        b.to_async(&rt).iter(|| drive(&svc, req()));
    });
    let peer = GovernorLayer::new(peer_config().use_headers().finish().unwrap()).layer(inner());
    g.bench_function(BenchmarkId::new("admitted_headers", "peer"), |b| {
        b.to_async(&rt).iter(|| drive(&peer, req()));
    });

    let svc = ours(huge, BURST).headers(false).layer(inner());
    g.bench_function(BenchmarkId::new("admitted_no_headers", "ours"), |b| {
        b.to_async(&rt).iter(|| drive(&svc, req()));
    });

    // Over the limit: one request an hour, already used.
    let one = Quota::new(1, std::time::Duration::from_secs(3600)).unwrap();
    let svc = ours(one, 1).layer(inner());
    rt.block_on(drive(&svc, req()));
    g.bench_function(BenchmarkId::new("refused", "ours"), |b| {
        b.to_async(&rt).iter(|| drive(&svc, req()));
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
    rt.block_on(drive(&peer, req()));
    g.bench_function(BenchmarkId::new("refused", "peer"), |b| {
        b.to_async(&rt).iter(|| drive(&peer, req()));
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
