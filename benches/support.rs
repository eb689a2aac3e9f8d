//! What the benches share: the bare service and one request driven to the end of its body.
#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::hint::black_box;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use tower::{Service, ServiceExt, service_fn};

/// The runtime the benches drive their requests on (criterion's async loop): one thread.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A benchmark group measured in requests: one request per iteration.
pub fn group<'c>(
    c: &'c mut criterion::Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'c, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.throughput(criterion::Throughput::Elements(1));
    g
}

/// The bare service: answers every request with a short fixed body.
pub fn inner<B: Send + 'static>() -> impl Service<
    Request<B>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Send + 'static,
> + Clone
+ Send
+ Sync
+ 'static {
    service_fn(|_req: Request<B>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
            b"hello, world",
        ))))
    })
}

/// The bare service as an axum handler returning a `&str` answers: axum's body, with its
/// `content-type` (tower_governor builds its refusals from axum's body type).
pub fn axum_inner() -> impl Service<
    Request<axum::body::Body>,
    Response = Response<axum::body::Body>,
    Error = Infallible,
    Future = impl Send + 'static,
> + Clone
+ Send
+ Sync
+ 'static {
    service_fn(|_req: Request<axum::body::Body>| async {
        let mut res = Response::new(axum::body::Body::from("hello, world"));
        res.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        Ok::<_, Infallible>(res)
    })
}

/// `router` as `axum::serve` runs it: called as a service directly, a `Router<()>` turns its
/// handlers into routes, and so applies its layers, on every request; providing the state
/// once turns them once.
pub fn served(router: axum::Router) -> axum::Router {
    router.with_state(())
}

/// Sends `req` through a clone of `svc` (as axum does per request) and reads the whole body.
pub async fn drive<S, ReqBody, B>(svc: &S, req: Request<ReqBody>)
where
    S: Service<Request<ReqBody>, Response = Response<B>, Error = Infallible> + Clone,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let res = svc.clone().oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    black_box(parts.headers.len());
    black_box(body.collect().await.unwrap().to_bytes());
}

/// Whether a bench named `name` runs: `cargo bench` passes `--bench`, and a filter that does
/// not name this bench skips it.
pub fn selected(name: &str) -> bool {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()))
}

/// The server at `REDIS_URL` (default `redis://127.0.0.1:6379`) and a connection of the
/// bench's own, or `None` after saying the bench `name` is skipped.
pub async fn redis_admin(name: &str) -> Option<(String, redis::aio::MultiplexedConnection)> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let client = redis::Client::open(url.as_str()).ok()?;
    let conn = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        client.get_multiplexed_async_connection(),
    );
    match conn.await {
        Ok(Ok(c)) => Some((url, c)),
        _ => {
            println!("{name}: SKIPPED, no Redis at {url}");
            None
        }
    }
}

/// The sample at percentile `p` (0 to 1) of `sorted`.
pub fn pct(sorted: &[std::time::Duration], p: f64) -> std::time::Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// Prints p50 to p99.9 of each sorted column, then what the second adds to the first.
pub fn print_percentiles(columns: &[(&str, &[std::time::Duration])]) {
    let us = |d: std::time::Duration| d.as_secs_f64() * 1e6;
    print!("{:<8}", "");
    for (name, _) in columns {
        print!(" {name:>14}");
    }
    println!(" {:>14}", "added");
    for (label, p) in [
        ("p50", 0.50),
        ("p90", 0.90),
        ("p99", 0.99),
        ("p99.9", 0.999),
    ] {
        print!("{label:<8}");
        for (_, col) in columns {
            print!(" {:>12.1}us", us(pct(col, p)));
        }
        let added = pct(columns[1].1, p).saturating_sub(pct(columns[0].1, p));
        println!(" {:>12.1}us", us(added));
    }
}
