//! The stats plugin beside axum-prometheus, recording the same request in the same run.
//!
//! ```not_rust
//! cargo bench --bench stats
//! python3 scripts/performance.py ratios stats
//! ```
//!
//! Every case is an axum `Router` with the route `/api/items/{id}` answering `GET
//! /api/items/42`, the layer added with `Router::layer` (so both see `MatchedPath`), served
//! once as `axum::serve` does, and the whole body read. Overhead is each case minus the bare
//! router.
//!
//! - `record/ours`: `StatsLayer` (its own figures: counts by status and class, latency
//!   histogram, bytes, in flight, the per-second rate). `record/peer`: axum-prometheus's
//!   `PrometheusMetricLayer` with its Prometheus recorder (requests, duration, pending).
//!   Target: ours at most 0.3x the peer's overhead.
//! - `facade_no_recorder/ours`: ours with the `metrics` facade on and no recorder installed
//!   yet (what the facade costs when nothing listens).
//! - `facade/ours`: ours with the facade on, emitting into the Prometheus recorder that
//!   axum-prometheus installed (the same recorder the peer writes to).
//! - `threads_N/*` (and their baseline `bare_threads_N/service`): each of N threads runs its
//!   own runtime and sends `iters` requests through one shared service; the time is until every
//!   thread is done. With recording that never makes one request wait on another, the
//!   overhead with 2 threads (on 2 cores) is no more than with 1.

#[path = "support.rs"]
mod support;

use std::sync::Barrier;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use axum_prometheus::PrometheusMetricLayer;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use http::Request;
use support::{drive, served};
use tower_plugins::stats::{MetricNames, StatsLayer};

fn req() -> Request<Body> {
    Request::get("/api/items/42").body(Body::empty()).unwrap()
}

fn router() -> Router {
    Router::new().route("/api/items/{id}", get(|| async { "hello, world" }))
}

/// Runs `iters` requests through `svc` on each of `threads` threads at once; the time until
/// the last is done.
fn threaded(svc: &Router, threads: usize, iters: u64) -> Duration {
    let ready = Barrier::new(threads);
    std::thread::scope(|s| {
        let runs: Vec<_> = (0..threads)
            .map(|_| {
                let ready = &ready;
                s.spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .unwrap();
                    ready.wait();
                    let start = Instant::now();
                    rt.block_on(async {
                        for _ in 0..iters {
                            drive(svc, req()).await;
                        }
                    });
                    start.elapsed()
                })
            })
            .collect();
        runs.into_iter()
            .map(|r| r.join().unwrap())
            .max()
            .unwrap_or_default()
    })
}

fn bench(c: &mut Criterion) {
    let rt = support::runtime();
    let mut g = support::group(c, "stats");

    let bare = served(router());
    g.bench_function(BenchmarkId::new("bare", "service"), |b| {
        b.to_async(&rt).iter(|| drive(&bare, req()));
    });

    let ours = served(router().layer(StatsLayer::new()));
    g.bench_function(BenchmarkId::new("record", "ours"), |b| {
        b.to_async(&rt).iter(|| drive(&ours, req()));
    });

    // Before any recorder is installed.
    let facade_off =
        served(router().layer(StatsLayer::new().metrics_facade(MetricNames::Prometheus)));
    g.bench_function(BenchmarkId::new("facade_no_recorder", "ours"), |b| {
        b.to_async(&rt).iter(|| drive(&facade_off, req()));
    });

    // Installs metrics-exporter-prometheus as the global recorder (and spawns its upkeep
    // task on the runtime).
    let (layer, _handle) = {
        let _rt = rt.enter();
        PrometheusMetricLayer::pair()
    };
    let peer = served(router().layer(layer));
    g.bench_function(BenchmarkId::new("record", "peer"), |b| {
        b.to_async(&rt).iter(|| drive(&peer, req()));
    });

    let facade = served(router().layer(StatsLayer::new().metrics_facade(MetricNames::Prometheus)));
    g.bench_function(BenchmarkId::new("facade", "ours"), |b| {
        b.to_async(&rt).iter(|| drive(&facade, req()));
    });

    // Named so that scripts/performance.py measures each against the bare router with the
    // same number of threads (`bare_threads_N/service`).
    for threads in [1, 2] {
        let cases = [
            (format!("bare_threads_{threads}"), "service", &bare),
            (format!("threads_{threads}"), "ours", &ours),
            (format!("threads_{threads}"), "peer", &peer),
        ];
        for (id, name, svc) in cases {
            g.bench_function(BenchmarkId::new(id, name), |b| {
                b.iter_custom(|iters| threaded(svc, threads, iters));
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
