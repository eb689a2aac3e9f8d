//! The cors plugin beside tower-http's `CorsLayer` with the same rules, same run: a simple
//! cross-origin GET and a preflight.
//!
//! ```not_rust
//! cargo bench --bench cors
//! python3 scripts/performance.py ratios cors
//! ```
//!
//! Overhead is each case minus the bare service (which answers the same requests with no
//! layer); the target is ours at most 0.5x tower-http's on both.

#[path = "compared.rs"]
mod compared;
#[path = "support.rs"]
mod support;

use bytes::Bytes;
use compared::cors;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use http::HeaderValue;
use http_body_util::Full;
use support::{drive, inner};
use tower::{Layer, ServiceExt};

fn bench(c: &mut Criterion) {
    let rt = support::runtime();
    let mut g = support::group(c, "cors");

    let bare = inner::<Full<Bytes>>();
    let ours = cors::ours().layer(inner());
    let peer = cors::peer().layer(inner());

    // Both layers must give the browser the same answer, or the comparison means nothing.
    rt.block_on(async {
        for req in [cors::simple_get::<Full<Bytes>>, cors::preflight] {
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
        ("simple_get", cors::simple_get::<Full<Bytes>> as fn() -> _),
        ("preflight", cors::preflight),
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
