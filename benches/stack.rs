//! The PluginStack's own cost: the bare service, the timer layer composed by hand, and a
//! PluginStack with the same timer built from TOML, side by side in one run.
//!
//! A second pair does the same with two plugins (cors outside the timer).
//!
//! ```not_rust
//! cargo bench --bench stack
//! python3 scripts/bench-ratios.py stack
//! ```
//!
//! Every case answers the same request with the same service and reads the whole body, so
//! the differences are the layers' work: two clock readings, two formatted headers, the
//! `ServerTiming` extension and the body wrapper (the timer), plus, for the stack, request body
//! normalisation and the pass-through slots.

use std::convert::Infallible;
use std::hint::black_box;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_plugins::timer::TimerLayer;
use tower_plugins::{Body, PluginStack};

fn inner() -> impl Service<
    Request<Body>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Send + 'static,
> + Clone
+ Send
+ Sync
+ 'static {
    service_fn(|_req: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
            b"hello, world",
        ))))
    })
}

async fn drive<S, B>(svc: &S)
where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible> + Clone,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let req = Request::get("/api/items").body(Body::empty()).unwrap();
    let res = svc.clone().oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    black_box(parts.headers.len());
    black_box(body.collect().await.unwrap().to_bytes());
}

/// `drive`, with an `Origin` header.
async fn drive_from<S, B>(svc: &S, origin: &'static str)
where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible> + Clone,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let req = Request::get("/api/items")
        .header("origin", origin)
        .body(Body::empty())
        .unwrap();
    let res = svc.clone().oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    black_box(parts.headers.len());
    black_box(body.collect().await.unwrap().to_bytes());
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("stack");
    g.throughput(Throughput::Elements(1));

    let bare = inner();
    g.bench_function(BenchmarkId::new("bare", "service"), |b| {
        b.to_async(&rt).iter(|| drive(&bare));
    });

    let by_hand = TimerLayer::new().layer(inner());
    g.bench_function(BenchmarkId::new("timer", "by_hand"), |b| {
        b.to_async(&rt).iter(|| drive(&by_hand));
    });

    let stack = PluginStack::from_toml_str("[[plugin]]\nuse = \"timer\"\n").unwrap();
    let from_toml = stack.layer().layer(inner());
    g.bench_function(BenchmarkId::new("timer", "plugin_stack"), |b| {
        b.to_async(&rt).iter(|| drive(&from_toml));
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
        b.to_async(&rt).iter(|| drive_from(&two_by_hand, origin));
    });
    let two = PluginStack::from_toml_str(&format!(
        "[[plugin]]\nuse = \"cors\"\nallow_origins = [\"{origin}\"]\n\
         [[plugin]]\nuse = \"timer\"\n"
    ))
    .unwrap()
    .layer()
    .layer(inner());
    g.bench_function(BenchmarkId::new("cors_timer", "plugin_stack"), |b| {
        b.to_async(&rt).iter(|| drive_from(&two, origin));
    });

    let empty = PluginStack::from_toml_str("")
        .unwrap()
        .layer()
        .layer(inner());
    g.bench_function(BenchmarkId::new("empty", "plugin_stack"), |b| {
        b.to_async(&rt).iter(|| drive(&empty));
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
