//! Loopback helpers: real servers on 127.0.0.1:0 and a small hyper client.
#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The demo's plugin stack, from `examples/plugins.toml`.
pub fn demo_stack() -> tower_plugins::PluginStack {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/plugins.toml");
    tower_plugins::PluginStack::from_file(path).expect("the demo config is valid")
}

/// Every network step of a test finishes within this, or the test fails.
pub const LIMIT: Duration = Duration::from_secs(10);

/// A running server; dropping it stops the server.
pub struct Server {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Serves an axum router (with `ConnectInfo`) on an ephemeral loopback port.
pub async fn spawn_axum(app: axum::Router) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    serve_axum(listener, app)
}

/// Serves an axum router on a listener the caller bound (to know its address first).
pub fn serve_axum(listener: TcpListener, app: axum::Router) -> Server {
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Server {
        addr,
        stop: Some(tx),
    }
}

/// Serves a tower service with plain hyper-util (no axum), inserting the peer `SocketAddr`
/// into each request's extensions.
pub async fn spawn_hyper<S, B>(make: impl Fn() -> S + Send + 'static) -> Server
where
    S: tower::Service<Request<hyper::body::Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, mut rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                a = listener.accept() => a.unwrap(),
                _ = &mut rx => return,
            };
            let svc = tower::ServiceBuilder::new()
                .map_request(move |mut req: Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(peer);
                    req
                })
                .service(make());
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(
                        TokioIo::new(tcp),
                        hyper_util::service::TowerToHyperService::new(svc),
                    )
                    .await;
            });
        }
    });
    Server {
        addr,
        stop: Some(tx),
    }
}

/// Sends one request over a fresh HTTP/1.1 connection; returns the head and the whole body.
pub async fn send(addr: SocketAddr, req: Request<Full<Bytes>>) -> (http::response::Parts, Bytes) {
    send_over(false, addr, req).await
}

/// Sends one request over a fresh HTTP/2 connection (h2c with prior knowledge, as gRPC and
/// HTTP/2 clients on loopback do); returns the head and the whole body. The request's
/// authority travels as `:authority`, with no `Host` header.
pub async fn send_h2(
    addr: SocketAddr,
    req: Request<Full<Bytes>>,
) -> (http::response::Parts, Bytes) {
    send_over(true, addr, req).await
}

async fn send_over(
    h2: bool,
    addr: SocketAddr,
    req: Request<Full<Bytes>>,
) -> (http::response::Parts, Bytes) {
    tokio::time::timeout(LIMIT, async move {
        let res = if h2 {
            h2_connection(addr).await.send_request(req).await
        } else {
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                .await
                .unwrap();
            tokio::spawn(conn);
            sender.send_request(req).await
        };
        let (parts, body) = res.unwrap().into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (parts, bytes)
    })
    .await
    .expect("the request finished in time")
}

/// A fresh HTTP/2 connection (h2c with prior knowledge) to `addr`, driven in the background.
pub async fn h2_connection<B>(addr: SocketAddr) -> hyper::client::conn::http2::SendRequest<B>
where
    B: http_body::Body + Unpin + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    sender
}

/// `GET path` with the given headers.
pub async fn get(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (http::response::Parts, Bytes) {
    let mut b = Request::get(path).header("host", addr.to_string());
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    send(addr, b.body(Full::new(Bytes::new())).unwrap()).await
}

/// `GET path` with the given headers, over HTTP/1.1 (`h2` false, with `Host`) or HTTP/2 (the
/// authority as `:authority`, no `Host`).
pub async fn get_over(
    h2: bool,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (http::response::Parts, Bytes) {
    if !h2 {
        return get(addr, path, headers).await;
    }
    let mut b = Request::get(format!("http://{addr}{path}")).version(http::Version::HTTP_2);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    send_h2(addr, b.body(Full::new(Bytes::new())).unwrap()).await
}

/// Flags every headless Chromium run of the tests uses (root in CI needs `--no-sandbox`).
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
];

/// Opens `url` in headless `browser` with a profile of its own (named after `name`), waits at
/// most 60 s for the page's report on `results`, then stops the browser and removes the
/// profile.
pub async fn browse_for<T>(
    browser: &std::path::Path,
    url: &str,
    name: &str,
    results: &mut tokio::sync::mpsc::Receiver<T>,
) -> T {
    let profile = std::env::temp_dir().join(format!(
        "tower-plugins-chromium-{name}-{}",
        std::process::id()
    ));
    let mut child = tokio::process::Command::new(browser)
        .args(CHROMIUM_FLAGS)
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromium starts");
    let got = tokio::time::timeout(Duration::from_secs(60), results.recv()).await;
    let _ = child.kill().await;
    let _ = std::fs::remove_dir_all(&profile);
    got.expect("the page reported within 60 s")
        .expect("the page posted its results")
}

/// Debian's Chromium (or `$CHROMIUM`). Without one, the calling test should return: this
/// says it was skipped, unless `TOWER_PLUGINS_REQUIRE_BROWSER=1`, which makes it a failure.
pub fn chromium() -> Option<std::path::PathBuf> {
    let found = std::env::var_os("CHROMIUM")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            [
                "/usr/bin/chromium",
                "/usr/bin/chromium-browser",
                "/usr/bin/google-chrome",
            ]
            .into_iter()
            .map(std::path::PathBuf::from)
            .find(|p| p.exists())
        });
    if found.is_none() {
        if std::env::var("TOWER_PLUGINS_REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!(
                "no Chromium found and TOWER_PLUGINS_REQUIRE_BROWSER=1 (install Debian's chromium)"
            );
        }
        eprintln!("skipped: no Chromium found (install Debian's `chromium`, or set CHROMIUM)");
    }
    found
}
