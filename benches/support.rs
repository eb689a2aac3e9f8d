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
