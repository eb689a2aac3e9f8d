//! A unary gRPC call (tonic-health's generated `Check`) through the plugins, in-process over
//! tonic's own routes, beside tower_governor's tonic integration for the rate limit, in one
//! criterion run. Overhead is each case minus `bare/routes`.
//!
//! ```not_rust
//! cargo bench --bench grpc --features tonic && python3 scripts/performance.py ratios grpc
//! ```
//!
//! - `rate_limit`: admitted calls, per client address, one unit a microsecond (the fastest quota) up to 100 at
//!   once. Ours writes the IETF `RateLimit` headers by default (`ours`) and can write none
//!   (`ours_no_headers`); tower_governor writes none (`governor`). tower_governor's key
//!   extractors read axum's `ConnectInfo`, not tonic's `TcpConnectInfo`, so the request
//!   carries both.
//! - `stack`: request_log (JSON lines to a file), stats, cors (grpc-web), rate_limit and timer
//!   from TOML, the demo's kind of stack around a gRPC server.

#[path = "support.rs"]
mod support;

use std::net::SocketAddr;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use http::{Request, Version};
use http_body_util::Full;
use support::drive;
use tonic::service::Routes;
use tonic::transport::server::TcpConnectInfo;
use tower::Layer;
use tower_governor::GovernorLayer;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::key_extractor::PeerIpKeyExtractor;
use tower_plugins::core::Quota;
use tower_plugins::rate_limit::RateLimitLayer;

const BURST: u32 = 100;

/// `Check("")`: an empty message in its gRPC frame, from 192.0.2.1.
fn call() -> Request<Full<Bytes>> {
    let mut r = Request::post("/grpc.health.v1.Health/Check")
        .version(Version::HTTP_2)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])))
        .unwrap();
    let peer = SocketAddr::from(([192, 0, 2, 1], 40_000));
    r.extensions_mut().insert(TcpConnectInfo {
        local_addr: None,
        remote_addr: Some(peer),
    });
    r.extensions_mut().insert(axum::extract::ConnectInfo(peer));
    r
}

fn routes() -> Routes {
    let (_reporter, health) = tonic_health::server::health_reporter();
    Routes::new(health)
}

fn stack_toml() -> String {
    let log = std::env::temp_dir().join("bench-grpc-access.log");
    format!(
        r#"
[[plugin]]
use = "request_log"
format = "json"
sink = {{ file = {:?} }}

[[plugin]]
use = "stats"

[[plugin]]
use = "cors"
allow_origins = ["http://localhost:*"]
grpc_web = true

[[plugin]]
use = "rate_limit"
quota = "1000000/s"
burst = {BURST}

[[plugin]]
use = "timer"
"#,
        log.display().to_string()
    )
}

fn bench(c: &mut Criterion) {
    let rt = support::runtime();
    let mut g = support::group(c, "grpc");
    let bare = routes();
    g.bench_function(BenchmarkId::new("bare", "routes"), |b| {
        b.to_async(&rt).iter(|| drive(&bare, call()));
    });

    let huge = Quota::new(1_000_000, std::time::Duration::from_secs(1)).unwrap();
    let burst = std::num::NonZeroU32::new(BURST).unwrap();
    let ours = RateLimitLayer::new(huge).burst(burst).layer(routes());
    g.bench_function(BenchmarkId::new("rate_limit", "ours"), |b| {
        b.to_async(&rt).iter(|| drive(&ours, call()));
    });
    let quiet = RateLimitLayer::new(huge)
        .burst(burst)
        .headers(false)
        .layer(routes());
    g.bench_function(BenchmarkId::new("rate_limit", "ours_no_headers"), |b| {
        b.to_async(&rt).iter(|| drive(&quiet, call()));
    });
    let config = GovernorConfigBuilder::default()
        .period(std::time::Duration::from_micros(1))
        .burst_size(BURST)
        .key_extractor(PeerIpKeyExtractor)
        .finish()
        .unwrap();
    let governor = GovernorLayer::new(config).layer(routes());
    g.bench_function(BenchmarkId::new("rate_limit", "governor"), |b| {
        b.to_async(&rt).iter(|| drive(&governor, call()));
    });

    let stack = tower_plugins::PluginStack::from_toml_str(&stack_toml()).unwrap();
    let full = stack.layer().layer(routes());
    g.bench_function(BenchmarkId::new("stack", "ours"), |b| {
        b.to_async(&rt).iter(|| drive(&full, call()));
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
