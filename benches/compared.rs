//! What the benches compare, defined once: our layers beside the peer crates' with the same
//! rules ([`cors`], [`rate_limit`]), and the two whole stacks a user chooses between
//! (`loopback`, `stack` and `instructions` compare them):
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
    ours_with(tag, false)
}

/// Our stack doing only the work the peer stack does: no request ids, no `RateLimit` headers
/// (the peers write neither), so both write the same three response headers.
pub fn ours_same_work(tag: &str) -> tower_plugins::PluginStack {
    ours_with(tag, true)
}

fn ours_with(tag: &str, same_work: bool) -> tower_plugins::PluginStack {
    let (log_extra, limit_extra) = if same_work {
        ("request_id_header = \"\"\n", "headers = false\n")
    } else {
        ("", "")
    };
    let log = std::env::temp_dir().join(format!("{tag}-{}.log", std::process::id()));
    let toml = format!(
        r#"
[[plugin]]
use = "request_log"
format = "combined"
sink = {{ file = {:?} }}
{log_extra}
[[plugin]]
use = "stats"

[[plugin]]
use = "cors"
allow_origins = ["{ORIGIN}"]

[[plugin]]
use = "rate_limit"
quota = "1000000/s"
burst = 100
{limit_extra}
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

    fmt_subscriber();
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

/// The process's global tracing subscriber, as the peers' access log is written: the fmt
/// layer at INFO, into a sink (no I/O measured). Once per process.
pub fn fmt_subscriber() {
    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::io::sink)
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();
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

/// The CORS rules both layers get (`benches/cors.rs`), and the two requests compared.
pub mod cors {
    use std::time::Duration;

    use http::{HeaderValue, Method, Request};
    use tower_plugins::cors::{AllowOrigin, CorsLayer};

    pub const APP: &str = "https://app.example.com";

    pub fn ours() -> CorsLayer {
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

    pub fn peer() -> tower_http::cors::CorsLayer {
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

    pub fn simple_get<B: Default>() -> Request<B> {
        Request::get("/api/items")
            .header("origin", APP)
            .body(B::default())
            .unwrap()
    }

    pub fn preflight<B: Default>() -> Request<B> {
        Request::options("/api/items")
            .header("origin", APP)
            .header("access-control-request-method", "PUT")
            .header("access-control-request-headers", "content-type, x-custom")
            .body(B::default())
            .unwrap()
    }
}

/// The quota, key and request both rate limiters get (`benches/rate_limit.rs`): each request
/// comes from a trusted local proxy (peer 127.0.0.1) with `X-Forwarded-For: 203.0.113.9`, so
/// both key it by 203.0.113.9 (ours because 127.0.0.1 is a trusted proxy; tower_governor's
/// `SmartIpKeyExtractor` reads the header from anyone).
pub mod rate_limit {
    use std::net::SocketAddr;
    use std::num::NonZeroU32;
    use std::time::Duration;

    use axum::extract::ConnectInfo;
    use governor::middleware::NoOpMiddleware;
    use http::Request;
    use tower_governor::governor::GovernorConfigBuilder;
    use tower_governor::key_extractor::SmartIpKeyExtractor;
    use tower_plugins::core::{ClientIpResolver, Quota};
    use tower_plugins::rate_limit::RateLimitLayer;

    /// A burst of the size real quotas have, so the `RateLimit` values are the two-digit ones
    /// real responses carry.
    pub const BURST: u32 = 100;

    /// A quota no bench run can exhaust: one unit a microsecond (the fastest quota).
    pub fn huge() -> Quota {
        Quota::new(1_000_000, Duration::from_secs(1)).unwrap()
    }

    pub fn ours(quota: Quota, burst: u32) -> RateLimitLayer {
        RateLimitLayer::new(quota)
            .burst(NonZeroU32::new(burst).unwrap())
            .client_ip(ClientIpResolver::new().trust(["127.0.0.1/32"]).unwrap())
    }

    /// tower_governor with the same quota and burst as `ours(huge(), BURST)`; `.finish()` it,
    /// or `.use_headers().finish()` for its `x-ratelimit-*` headers.
    pub fn peer() -> GovernorConfigBuilder<SmartIpKeyExtractor, NoOpMiddleware> {
        GovernorConfigBuilder::default()
            .period(Duration::from_micros(1))
            .burst_size(BURST)
            .key_extractor(SmartIpKeyExtractor)
    }

    pub fn request<B: Default>() -> Request<B> {
        let mut r = Request::get("/api/items")
            .header("x-forwarded-for", "203.0.113.9")
            .body(B::default())
            .unwrap();
        r.extensions_mut()
            .insert(ConnectInfo("127.0.0.1:5555".parse::<SocketAddr>().unwrap()));
        r
    }
}
