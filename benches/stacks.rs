//! The two stacks a user chooses between, shared by the benches that compare them whole
//! (`loopback`, `stack`, `stack_instructions`):
//!
//! - **ours**, from TOML: request_log (combined lines, written by its thread to a file) >
//!   stats > cors > rate_limit (per client address, a quota no run spends, IETF headers) >
//!   timer (`X-Response-Time` only).
//! - **peers**: tower-http's `TraceLayer` (a span and a response event per request, formatted
//!   by tracing-subscriber's fmt layer into a sink) > axum-prometheus > tower-http's
//!   `CorsLayer` (the same origins) > tower_governor (the same quota, per peer address, no
//!   headers) > an `X-Response-Time` header from a clock read when the request arrives (an
//!   axum `from_fn` middleware: no peer crate writes it).
//!
//! Both are added to an axum `Router` with `Router::layer`, as users add them.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::{Duration, Instant};

/// The origin both stacks' CORS rules allow.
pub const ORIGIN: &str = "http://localhost:5173";

/// Our stack, its access log written to a file named for `tag` in the temporary directory.
pub fn ours(tag: &str) -> tower_plugins::PluginStack {
    let log = std::env::temp_dir().join(format!("{tag}-{}.log", std::process::id()));
    let toml = format!(
        r#"
[[plugin]]
use = "request_log"
format = "combined"
sink = {{ file = {:?} }}

[[plugin]]
use = "stats"

[[plugin]]
use = "cors"
allow_origins = ["{ORIGIN}"]

[[plugin]]
use = "rate_limit"
quota = "1000000/s"
burst = 100

[[plugin]]
use = "timer"
server_timing = false
"#,
        log.display().to_string()
    );
    tower_plugins::PluginStack::from_toml_str(&toml).unwrap()
}

/// The peer stack around `router`. Installs the process's global tracing subscriber (fmt
/// into a sink at INFO), so call it once per process.
pub fn peers(router: axum::Router) -> axum::Router {
    use tower_governor::GovernorLayer;
    use tower_governor::governor::GovernorConfigBuilder;
    use tower_http::cors::{AllowOrigin, CorsLayer};
    use tower_http::trace::TraceLayer;

    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::io::sink)
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let (prometheus, _handle) = axum_prometheus::PrometheusMetricLayer::pair();
    let governor = GovernorConfigBuilder::default()
        .period(Duration::from_micros(1))
        .burst_size(100)
        .finish()
        .unwrap();
    let cors = CorsLayer::new().allow_origin(AllowOrigin::list([ORIGIN.parse().unwrap()]));
    // X-Response-Time from a clock read when the request arrives, as our timer writes it.
    let timed = axum::middleware::from_fn(
        |req: axum::extract::Request, next: axum::middleware::Next| async move {
            let start = Instant::now();
            let mut res = next.run(req).await;
            let v = format!("{:.3}ms", start.elapsed().as_secs_f64() * 1000.0);
            res.headers_mut()
                .insert("x-response-time", v.parse().unwrap());
            res
        },
    );
    router
        .layer(timed)
        .layer(GovernorLayer::new(Arc::new(governor)))
        .layer(cors)
        .layer(prometheus)
        .layer(TraceLayer::new_for_http())
}

/// The router the in-process comparisons wrap: one route answering a short text.
pub fn router() -> axum::Router {
    axum::Router::new().route(
        "/api/items",
        axum::routing::get(|| async { "hello, world" }),
    )
}

/// The request the in-process comparisons send: a cross-origin `GET /api/items` from
/// 127.0.0.1 (axum's `ConnectInfo`, as `into_make_service_with_connect_info` gives).
pub fn request() -> http::Request<axum::body::Body> {
    let mut req = http::Request::get("/api/items")
        .header("origin", ORIGIN)
        .body(axum::body::Body::empty())
        .unwrap();
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            [127, 0, 0, 1],
            5555,
        ))));
    req
}
