//! The request_log plugin beside tower-http's `TraceLayer` (with a tracing-subscriber fmt
//! layer writing each request's event to a sink), same run.
//!
//! ```not_rust
//! cargo bench --bench request_log
//! python3 scripts/performance.py ratios request_log
//! ```
//!
//! Overhead is each case minus the bare service. `ours/combined` formats an Apache combined
//! line and hands it to the writer thread (which writes to `io::sink()`); `ours/tracing` emits
//! one structured event through the same fmt subscriber as the peer; `peer/trace_layer` is
//! `TraceLayer` at INFO (a span per request and its response event). Target: ours at most
//! 0.4x the peer's overhead.

#[path = "compared.rs"]
mod compared;
#[path = "support.rs"]
mod support;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use http::Request;
use http_body_util::Full;
use support::{drive, inner};
use tower::Layer;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tower_plugins::request_log::{LogFormat, RequestLogLayer};
use tracing::Level;

fn req() -> Request<Full<Bytes>> {
    let mut r = Request::get("/api/items?page=2")
        .header("user-agent", "Mozilla/5.0 (X11; Linux x86_64) bench")
        .header("referer", "https://app.example.com/items")
        .body(Full::new(Bytes::new()))
        .unwrap();
    r.extensions_mut()
        .insert("203.0.113.9:5555".parse::<std::net::SocketAddr>().unwrap());
    r
}

fn bench(c: &mut Criterion) {
    // Both tracing cases write through one fmt subscriber into a sink.
    compared::fmt_subscriber();

    let rt = support::runtime();
    let mut g = support::group(c, "request_log");

    let bare = inner::<Full<Bytes>>();
    g.bench_function(BenchmarkId::new("bare", "service"), |b| {
        b.to_async(&rt).iter(|| drive(&bare, req()));
    });

    let lines = RequestLogLayer::new()
        .format(LogFormat::Combined)
        .to_writer(std::io::sink(), 1 << 16)
        .unwrap();
    let ours = lines.clone().layer(inner());
    g.bench_function(BenchmarkId::new("ours", "combined"), |b| {
        b.to_async(&rt).iter(|| drive(&ours, req()));
    });
    // A comparison that dropped lines would flatter us: there must be none.
    assert_eq!(lines.dropped_lines(), 0, "the writer thread fell behind");

    // The same line without request ids: what generating the id, putting it in the request
    // extensions and in the response header costs (TraceLayer does none of it).
    let no_ids = RequestLogLayer::new()
        .format(LogFormat::Combined)
        .request_id_header(None)
        .to_writer(std::io::sink(), 1 << 16)
        .unwrap();
    let ours_no_ids = no_ids.clone().layer(inner());
    g.bench_function(BenchmarkId::new("ours", "combined_without_ids"), |b| {
        b.to_async(&rt).iter(|| drive(&ours_no_ids, req()));
    });
    assert_eq!(no_ids.dropped_lines(), 0, "the writer thread fell behind");

    let traced = RequestLogLayer::new().layer(inner());
    g.bench_function(BenchmarkId::new("ours", "tracing"), |b| {
        b.to_async(&rt).iter(|| drive(&traced, req()));
    });

    let peer = TraceLayer::new_for_http()
        .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
        .on_response(DefaultOnResponse::new().level(Level::INFO))
        .layer(inner());
    g.bench_function(BenchmarkId::new("peer", "trace_layer"), |b| {
        b.to_async(&rt).iter(|| drive(&peer, req()));
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
