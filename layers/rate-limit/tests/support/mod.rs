//! The inner service and requests shared by the unit tests (`src/tests.rs`, through `#[path]`)
//! and the integration tests.
#![allow(dead_code)] // each test target uses its own part

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::Full;
use tower::{Layer, Service, ServiceExt, service_fn};

pub(crate) type Svc =
    tower::util::BoxCloneSyncService<Request<()>, Response<Full<Bytes>>, Infallible>;

/// Answers `ok` with the status given by `?status=` (200 without).
pub(crate) fn inner() -> Svc {
    Svc::new(service_fn(|req: Request<()>| async move {
        let status = req
            .uri()
            .query()
            .and_then(|q| q.strip_prefix("status="))
            .and_then(|s| s.parse().ok())
            .unwrap_or(200);
        let mut res = Response::new(Full::new(Bytes::from_static(b"ok")));
        *res.status_mut() = StatusCode::from_u16(status).unwrap();
        Ok::<_, Infallible>(res)
    }))
}

/// A request for `path` from the peer address `peer` (port 40000).
pub(crate) fn req_from(peer: &str, path: &str) -> Request<()> {
    let mut r = Request::builder().uri(path).body(()).unwrap();
    let addr: SocketAddr = format!("{peer}:40000").parse().unwrap();
    r.extensions_mut().insert(addr);
    r
}

/// The status and headers of the answer to `req` through `layer` over [`inner`].
pub(crate) async fn status_of<L, B>(layer: &L, req: Request<()>) -> (StatusCode, HeaderMap)
where
    L: Layer<Svc>,
    L::Service: Service<Request<()>, Response = Response<B>, Error = Infallible>,
{
    let res = layer.layer(inner()).oneshot(req).await.unwrap();
    (res.status(), res.headers().clone())
}
