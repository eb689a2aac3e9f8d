//! The cors plugin beside tower-http's `CorsLayer` with the same rules, same run: a simple
//! cross-origin GET and a preflight.
//!
//! ```not_rust
//! cargo bench --bench cors
//! python3 scripts/bench-ratios.py cors
//! ```
//!
//! Overhead is each case minus the bare service (which answers the same requests with no
//! layer); the target is ours at most 0.5x tower-http's on both.

#[path = "support.rs"]
mod support;

use std::time::Duration;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use http::{HeaderValue, Method, Request};
use http_body_util::Full;
use support::{drive, inner};
use tower::{Layer, ServiceExt};
use tower_plugins::cors::{AllowOrigin, CorsLayer};

const APP: &str = "https://app.example.com";

fn ours() -> CorsLayer {
    let l = CorsLayer::new()
        .allow_origin(AllowOrigin::list([APP]).unwrap())
        .allow_methods([Method::GET, Method::PUT, Method::DELETE])
        .allow_headers(["content-type", "x-custom"])
        .unwrap()
        .expose_headers(["x-total"])
        .unwrap()
        .max_age(Duration::from_secs(600))
        // tower-http answers preflights 200; answer the same.
        .preflight_status(http::StatusCode::OK)
        .unwrap();
    l.check().unwrap();
    l
}

fn peer() -> tower_http::cors::CorsLayer {
    use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, ExposeHeaders};
    tower_http::cors::CorsLayer::new()
        .allow_origin(AllowOrigin::list([HeaderValue::from_static(APP)]))
        .allow_methods(AllowMethods::list([
            Method::GET,
            Method::PUT,
            Method::DELETE,
        ]))
        .allow_headers(AllowHeaders::list([
            http::header::CONTENT_TYPE,
            http::HeaderName::from_static("x-custom"),
        ]))
        .expose_headers(ExposeHeaders::list([http::HeaderName::from_static(
            "x-total",
        )]))
        .max_age(Duration::from_secs(600))
}

fn simple_get() -> Request<Full<Bytes>> {
    Request::get("/api/items")
        .header("origin", APP)
        .body(Full::new(Bytes::new()))
        .unwrap()
}

fn preflight() -> Request<Full<Bytes>> {
    Request::options("/api/items")
        .header("origin", APP)
        .header("access-control-request-method", "PUT")
        .header("access-control-request-headers", "content-type, x-custom")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let rt = support::runtime();
    let mut g = support::group(c, "cors");

    let bare = inner::<Full<Bytes>>();
    let ours = ours().layer(inner());
    let peer = peer().layer(inner());

    // Both layers must give the browser the same answer, or the comparison means nothing.
    rt.block_on(async {
        for req in [simple_get, preflight] {
            let a = ours.clone().oneshot(req()).await.unwrap();
            let b = peer.clone().oneshot(req()).await.unwrap();
            assert_eq!(a.status(), b.status());
            for name in [
                "access-control-allow-origin",
                "access-control-allow-methods",
                "access-control-expose-headers",
                "access-control-max-age",
            ] {
                let list = |v: Option<&HeaderValue>| -> Vec<String> {
                    v.map(|v| {
                        v.to_str()
                            .unwrap()
                            .split(',')
                            .map(|s| s.trim().to_owned())
                            .collect()
                    })
                    .unwrap_or_default()
                };
                assert_eq!(
                    list(a.headers().get(name)),
                    list(b.headers().get(name)),
                    "{name}"
                );
            }
        }
    });

    for (case, make) in [
        ("simple_get", simple_get as fn() -> _),
        ("preflight", preflight),
    ] {
        g.bench_function(BenchmarkId::new(format!("bare_{case}"), "service"), |b| {
            b.to_async(&rt).iter(|| drive(&bare, make()));
        });
        g.bench_function(BenchmarkId::new(case, "ours"), |b| {
            b.to_async(&rt).iter(|| drive(&ours, make()));
        });
        g.bench_function(BenchmarkId::new(case, "tower_http"), |b| {
            b.to_async(&rt).iter(|| drive(&peer, make()));
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
