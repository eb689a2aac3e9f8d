//! Instructions per request for callgrind: every case of the other benches that compares us
//! with a peer or with ourselves, each driven through a release build. A case is warmed up
//! (1,000 requests), then `measure` drives N requests; collect only inside `measure`.
//!
//! ```not_rust
//! cargo bench --bench instructions --no-run
//! target/release/deps/instructions-* --list      # every case, its baseline and what it is
//! valgrind --tool=callgrind --toggle-collect='*measure*' target/release/deps/instructions-* CASE 2000
//! python3 scripts/performance.py --only instructions   # every case, overheads and ratios
//! ```
//!
//! The total over N requests divided by N is the cost of one request, building the request
//! included (as criterion counts it); a case's overhead is its cost minus its baseline's,
//! which sends the same request to the same bare service. Each case runs in a process of its
//! own, so the peers' global tracing subscriber is installed only where a case needs it.

#[path = "compared.rs"]
mod compared;
#[path = "support.rs"]
mod support;

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response};
use support::{axum_inner, drive, inner};
use tower::{Layer, Service};
use tower_plugins::timer::TimerLayer;
use tower_plugins::{Body, PluginStack};

/// Every case: its name, the case whose cost it is measured over, and what it is.
const CASES: &[(&str, &str, &str)] = &[
    ("bare", "bare", "the bare service, a plain GET"),
    ("timer_by_hand", "bare", "timer, both headers, by hand"),
    (
        "timer_lean_by_hand",
        "bare",
        "timer, both headers, handler entries off, by hand",
    ),
    ("timer_stack", "bare", "timer from a PluginStack"),
    ("empty_stack", "bare", "a PluginStack with no entry"),
    (
        "rate_limit_stack",
        "bare",
        "rate_limit from a PluginStack, admitted, IETF headers",
    ),
    ("stats_stack", "bare", "stats from a PluginStack"),
    (
        "request_log_stack",
        "bare",
        "request_log from a PluginStack, combined to a file",
    ),
    (
        "request_log_json_stack",
        "bare",
        "request_log from a PluginStack, JSON to a file",
    ),
    (
        "request_log_unheard_stack",
        "bare",
        "request_log, tracing sink, no subscriber",
    ),
    (
        "bare_cross_origin",
        "bare_cross_origin",
        "the bare service, a cross-origin GET",
    ),
    (
        "cors_timer_by_hand",
        "bare_cross_origin",
        "cors + timer by hand",
    ),
    (
        "cors_timer_stack",
        "bare_cross_origin",
        "cors + timer from a PluginStack",
    ),
    (
        "cors_get_ours",
        "bare_cross_origin",
        "cors, simple cross-origin GET",
    ),
    (
        "cors_get_peer",
        "bare_cross_origin",
        "tower-http CorsLayer, same GET",
    ),
    (
        "bare_preflight",
        "bare_preflight",
        "the bare service, a preflight",
    ),
    ("cors_preflight_ours", "bare_preflight", "cors, preflight"),
    (
        "cors_preflight_peer",
        "bare_preflight",
        "tower-http CorsLayer, preflight",
    ),
    (
        "preflight_stack",
        "bare_preflight",
        "cors preflight from a PluginStack",
    ),
    (
        "bare_proxied",
        "bare_proxied",
        "the bare axum service, a request from a trusted proxy",
    ),
    (
        "rate_limit_ours",
        "bare_proxied",
        "rate_limit, admitted, IETF headers",
    ),
    (
        "rate_limit_ours_no_headers",
        "bare_proxied",
        "rate_limit, admitted, no headers",
    ),
    (
        "rate_limit_ours_legacy",
        "bare_proxied",
        "rate_limit, admitted, IETF + X-RateLimit-*",
    ),
    (
        "rate_limit_peer",
        "bare_proxied",
        "tower_governor, admitted, no headers",
    ),
    (
        "rate_limit_peer_headers",
        "bare_proxied",
        "tower_governor, admitted, use_headers()",
    ),
    (
        "bare_two_hops",
        "bare_two_hops",
        "the bare service, the client two proxies back",
    ),
    (
        "log_limit_proxied_stack",
        "bare_two_hops",
        "request_log + rate_limit behind proxies",
    ),
    (
        "bare_logged",
        "bare_logged",
        "the bare service, a GET with a user agent and referer",
    ),
    (
        "log_combined_ours",
        "bare_logged",
        "request_log, combined, writer thread",
    ),
    (
        "log_tracing_ours",
        "bare_logged",
        "request_log, tracing sink, fmt subscriber",
    ),
    (
        "log_tracing_peer",
        "bare_logged",
        "tower-http TraceLayer, same fmt subscriber",
    ),
    (
        "full_bare",
        "full_bare",
        "an axum router, a cross-origin GET from 127.0.0.1",
    ),
    ("stats_ours", "full_bare", "stats on the router"),
    ("stats_peer", "full_bare", "axum-prometheus on the router"),
    (
        "full_ours",
        "full_bare",
        "our demo-like stack from TOML on the router",
    ),
    (
        "full_ours_same_work",
        "full_bare",
        "the same, no request ids, no RateLimit headers",
    ),
    ("full_peers", "full_bare", "the peer stack on the router"),
];

/// Which request a case sends (the whole-stack cases send `compared::request()`).
#[derive(Clone, Copy)]
enum Kind {
    Plain,
    CrossOrigin,
    Preflight,
    /// From a trusted local proxy, the rate limiters' request (`compared::rate_limit`).
    Proxied,
    /// From a trusted proxy (10.0.0.1), with the client two hops back in `X-Forwarded-For`.
    TwoHops,
    /// What an access log records: a user agent, a referer, the peer address.
    Logged,
}

// Never inlined, so that building the request costs the same in every build compared.
#[inline(never)]
fn request(kind: Kind) -> Request<Body> {
    let b = Request::get("/api/items");
    let b = match kind {
        Kind::Plain => b,
        Kind::CrossOrigin => return compared::cors::simple_get(),
        Kind::Preflight => return compared::cors::preflight(),
        Kind::Proxied => return compared::rate_limit::request(),
        Kind::TwoHops => b.header("x-forwarded-for", "198.51.100.9, 203.0.113.7, 10.0.0.2"),
        Kind::Logged => b
            .header("user-agent", "Mozilla/5.0 (X11; Linux x86_64) bench")
            .header("referer", "https://app.example.com/items"),
    };
    let mut req = b.body(Body::empty()).unwrap();
    let peer = match kind {
        Kind::TwoHops => Some(([10, 0, 0, 1], 4000)),
        Kind::Logged => Some(([203, 0, 113, 9], 5555)),
        _ => None,
    };
    if let Some(peer) = peer {
        req.extensions_mut()
            .insert(std::net::SocketAddr::from(peer));
    }
    req
}

#[inline(never)]
fn measure<S, B>(rt: &tokio::runtime::Runtime, svc: &S, make: impl Fn() -> Request<Body>, n: usize)
where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible> + Clone,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    rt.block_on(async {
        for _ in 0..n {
            drive(svc, make()).await;
        }
    });
}

/// Builds the service inside the runtime (axum-prometheus spawns its upkeep task), warms it
/// up, then measures `n` requests.
fn run<S, B>(svc: impl FnOnce() -> S, make: impl Fn() -> Request<Body>, n: usize)
where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible> + Clone,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let rt = support::runtime();
    let svc = rt.block_on(async { svc() });
    rt.block_on(async {
        for _ in 0..1000 {
            drive(&svc, make()).await;
        }
    });
    measure(&rt, &svc, make, n);
}

/// A request_log entry writing `format` lines to a file.
fn log_toml(format: &str) -> String {
    let path = std::env::temp_dir().join(format!("instructions-access.{format}"));
    format!(
        "[[plugin]]\nuse = \"request_log\"\nformat = \"{format}\"\nsink = {{ file = {:?} }}\n",
        path.display().to_string()
    )
}

/// `toml`'s stack over the bare service.
fn stack(
    toml: impl AsRef<str>,
) -> impl Service<
    Request<Body>,
    Response = Response<impl http_body::Body<Data = Bytes, Error: std::fmt::Debug>>,
    Error = Infallible,
> + Clone {
    PluginStack::from_toml_str(toml.as_ref())
        .unwrap()
        .layer()
        .layer(inner())
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let case = args.next().unwrap_or_else(|| "timer_stack".to_owned());
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(2000);
    if case == "--list" {
        for (name, baseline, what) in CASES {
            println!("{name}\t{baseline}\t{what}");
        }
        return;
    }
    let req = |kind| move || request(kind);
    let rate_limit =
        compared::rate_limit::ours(compared::rate_limit::huge(), compared::rate_limit::BURST);
    match case.as_str() {
        "bare" => run(inner::<Body>, req(Kind::Plain), n),
        "timer_by_hand" => run(|| TimerLayer::new().layer(inner()), req(Kind::Plain), n),
        "timer_lean_by_hand" => run(
            || TimerLayer::new().handler_entries(false).layer(inner()),
            req(Kind::Plain),
            n,
        ),
        "timer_stack" => run(
            || stack("[[plugin]]\nuse = \"timer\"\n"),
            req(Kind::Plain),
            n,
        ),
        "empty_stack" => run(|| stack(""), req(Kind::Plain), n),
        "rate_limit_stack" => run(
            || stack("[[plugin]]\nuse = \"rate_limit\"\nquota = \"1000000/s\"\nburst = 100\n"),
            req(Kind::Plain),
            n,
        ),
        "stats_stack" => run(
            || stack("[[plugin]]\nuse = \"stats\"\n"),
            req(Kind::Plain),
            n,
        ),
        "request_log_stack" => run(|| stack(log_toml("combined")), req(Kind::Plain), n),
        "request_log_json_stack" => run(|| stack(log_toml("json")), req(Kind::Plain), n),
        // The default sink with no subscriber installed: nobody hears the lines.
        "request_log_unheard_stack" => run(
            || stack("[[plugin]]\nuse = \"request_log\"\nsink = \"tracing\"\n"),
            req(Kind::Plain),
            n,
        ),
        "bare_cross_origin" => run(inner::<Body>, req(Kind::CrossOrigin), n),
        "cors_timer_by_hand" => run(
            || {
                tower::ServiceBuilder::new()
                    .layer(compared::cors::ours())
                    .layer(TimerLayer::new())
                    .service(inner())
            },
            req(Kind::CrossOrigin),
            n,
        ),
        "cors_timer_stack" => run(
            || stack(format!("{}[[plugin]]\nuse = \"timer\"\n", cors_toml())),
            req(Kind::CrossOrigin),
            n,
        ),
        "cors_get_ours" => run(
            || compared::cors::ours().layer(inner()),
            req(Kind::CrossOrigin),
            n,
        ),
        "cors_get_peer" => run(
            || compared::cors::peer().layer(inner()),
            req(Kind::CrossOrigin),
            n,
        ),
        "bare_preflight" => run(inner::<Body>, req(Kind::Preflight), n),
        "cors_preflight_ours" => run(
            || compared::cors::ours().layer(inner()),
            req(Kind::Preflight),
            n,
        ),
        "cors_preflight_peer" => run(
            || compared::cors::peer().layer(inner()),
            req(Kind::Preflight),
            n,
        ),
        "preflight_stack" => run(|| stack(cors_toml()), req(Kind::Preflight), n),
        "bare_proxied" => run(axum_inner, req(Kind::Proxied), n),
        "rate_limit_ours" => run(|| rate_limit.layer(axum_inner()), req(Kind::Proxied), n),
        "rate_limit_ours_no_headers" => run(
            || rate_limit.headers(false).layer(axum_inner()),
            req(Kind::Proxied),
            n,
        ),
        "rate_limit_ours_legacy" => run(
            || rate_limit.legacy_headers(true).layer(axum_inner()),
            req(Kind::Proxied),
            n,
        ),
        "rate_limit_peer" => run(
            || {
                tower_governor::GovernorLayer::new(compared::rate_limit::peer().finish().unwrap())
                    .layer(axum_inner())
            },
            req(Kind::Proxied),
            n,
        ),
        "rate_limit_peer_headers" => run(
            || {
                let config = compared::rate_limit::peer().use_headers().finish().unwrap();
                tower_governor::GovernorLayer::new(config).layer(axum_inner())
            },
            req(Kind::Proxied),
            n,
        ),
        "bare_two_hops" => run(inner::<Body>, req(Kind::TwoHops), n),
        // Two plugins that need the client's address, behind a trusted proxy.
        "log_limit_proxied_stack" => {
            let toml = format!(
                "[client_ip]\ntrusted_proxies = [\"10.0.0.0/8\"]\n\n{}\n\
                 [[plugin]]\nuse = \"rate_limit\"\nquota = \"1000000/s\"\nburst = 100\n",
                log_toml("combined")
            );
            run(|| stack(toml), req(Kind::TwoHops), n);
        }
        "bare_logged" => run(inner::<Body>, req(Kind::Logged), n),
        "log_combined_ours" => run(
            || {
                tower_plugins::request_log::RequestLogLayer::new()
                    .format(tower_plugins::request_log::LogFormat::Combined)
                    .to_writer(std::io::sink(), 1 << 16)
                    .unwrap()
                    .layer(inner())
            },
            req(Kind::Logged),
            n,
        ),
        "log_tracing_ours" => {
            compared::fmt_subscriber();
            run(
                || tower_plugins::request_log::RequestLogLayer::new().layer(inner()),
                req(Kind::Logged),
                n,
            );
        }
        "log_tracing_peer" => {
            use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
            compared::fmt_subscriber();
            run(
                || {
                    TraceLayer::new_for_http()
                        .make_span_with(DefaultMakeSpan::new().level(tracing::Level::INFO))
                        .on_response(DefaultOnResponse::new().level(tracing::Level::INFO))
                        .layer(inner())
                },
                req(Kind::Logged),
                n,
            );
        }
        "full_bare" => run(|| support::served(compared::router()), compared::request, n),
        "stats_ours" => run(
            || {
                let stats = tower_plugins::stats::StatsLayer::new();
                support::served(compared::router().layer(stats))
            },
            compared::request,
            n,
        ),
        "stats_peer" => run(
            || {
                let (prometheus, _handle) = axum_prometheus::PrometheusMetricLayer::pair();
                support::served(compared::router().layer(prometheus))
            },
            compared::request,
            n,
        ),
        "full_ours" => run(
            || {
                let ours = compared::ours("instructions").layer();
                support::served(compared::router().layer(ours))
            },
            compared::request,
            n,
        ),
        "full_ours_same_work" => run(
            || {
                let ours = compared::ours_same_work("instructions").layer();
                support::served(compared::router().layer(ours))
            },
            compared::request,
            n,
        ),
        "full_peers" => run(
            || support::served(compared::peers(compared::router())),
            compared::request,
            n,
        ),
        other => panic!("unknown case {other} (--list lists them)"),
    }
}

/// A cors entry with `compared::cors`'s rules.
fn cors_toml() -> String {
    format!(
        "[[plugin]]\nuse = \"cors\"\nallow_origins = [\"{}\"]\n\
         allow_methods = [\"GET\", \"PUT\", \"DELETE\"]\n\
         allow_headers = [\"content-type\", \"x-custom\"]\nexpose_headers = [\"x-total\"]\n\
         max_age = \"10m\"\npreflight_status = 200\n",
        compared::cors::APP
    )
}
