//! The PluginStack's own cost: the bare service, the timer layer composed by hand, and a
//! PluginStack with the same timer built from TOML, side by side in one run.
//!
//! A second pair does the same with two plugins (cors outside the timer). The `full` group
//! compares the whole stacks of `benches/compared.rs` (ours from TOML as the demo configures
//! it and writing only the peers' headers, the peer crates doing the same work) on an axum
//! router.
//!
//! ```not_rust
//! cargo bench --bench stack
//! python3 scripts/performance.py ratios stack
//! ```
//!
//! Every case answers the same request with the same service and reads the whole body, so
//! the differences are the layers' work: two clock readings, two formatted headers, the
//! `ServerTiming` extension and the body wrapper (the timer), plus, for the stack, request body
//! normalisation and the pass-through slots.

#[path = "compared.rs"]
mod compared;
#[path = "support.rs"]
mod support;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use http::Request;
use support::{drive, inner};
use tower::Layer;
use tower_plugins::timer::TimerLayer;
use tower_plugins::{Body, PluginStack};

fn get() -> Request<Body> {
    Request::get("/api/items").body(Body::empty()).unwrap()
}

fn get_from(origin: &'static str) -> Request<Body> {
    Request::get("/api/items")
        .header("origin", origin)
        .body(Body::empty())
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let rt = support::runtime();
    let mut g = support::group(c, "stack");

    let bare = inner::<Body>();
    g.bench_function(BenchmarkId::new("bare", "service"), |b| {
        b.to_async(&rt).iter(|| drive(&bare, get()));
    });

    let by_hand = TimerLayer::new().layer(inner());
    g.bench_function(BenchmarkId::new("timer", "by_hand"), |b| {
        b.to_async(&rt).iter(|| drive(&by_hand, get()));
    });

    let stack = PluginStack::from_toml_str("[[plugin]]\nuse = \"timer\"\n").unwrap();
    let from_toml = stack.layer().layer(inner());
    g.bench_function(BenchmarkId::new("timer", "plugin_stack"), |b| {
        b.to_async(&rt).iter(|| drive(&from_toml, get()));
    });

    // Two plugins: cors outside the timer, by hand and from TOML, on a cross-origin GET.
    let origin = "https://app.example.com";
    let cors = tower_plugins::cors::CorsLayer::new()
        .allow_origin(tower_plugins::cors::AllowOrigin::list([origin]).unwrap());
    let two_by_hand = tower::ServiceBuilder::new()
        .layer(cors)
        .layer(TimerLayer::new())
        .service(inner());
    g.bench_function(BenchmarkId::new("cors_timer", "by_hand"), |b| {
        b.to_async(&rt)
            .iter(|| drive(&two_by_hand, get_from(origin)));
    });
    let two = PluginStack::from_toml_str(&format!(
        "[[plugin]]\nuse = \"cors\"\nallow_origins = [\"{origin}\"]\n\
         [[plugin]]\nuse = \"timer\"\n"
    ))
    .unwrap()
    .layer()
    .layer(inner());
    g.bench_function(BenchmarkId::new("cors_timer", "plugin_stack"), |b| {
        b.to_async(&rt).iter(|| drive(&two, get_from(origin)));
    });

    let empty = PluginStack::from_toml_str("")
        .unwrap()
        .layer()
        .layer(inner());
    g.bench_function(BenchmarkId::new("empty", "plugin_stack"), |b| {
        b.to_async(&rt).iter(|| drive(&empty, get()));
    });
    g.finish();

    // The whole stacks of `benches/compared.rs` on an axum router, a cross-origin request.
    let mut g = support::group(c, "full");
    let _in_runtime = rt.enter(); // axum-prometheus spawns its upkeep task
    for (name, router) in [
        ("bare", compared::router()),
        (
            "ours",
            compared::router().layer(compared::ours("stack_bench").layer()),
        ),
        (
            "ours_same_work",
            compared::router().layer(compared::ours_same_work("stack_bench_same").layer()),
        ),
        ("peers", compared::peers(compared::router())),
    ] {
        let router = support::served(router);
        g.bench_function(BenchmarkId::new(name, "router"), |b| {
            b.to_async(&rt).iter(|| drive(&router, compared::request()));
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
