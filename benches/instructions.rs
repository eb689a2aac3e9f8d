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

/// Every case: its name, the case whose cost it is measured over, what it is, and how it
/// runs `n` requests (in a process of its own).
const CASES: &[Case] = &[
    Case {
        name: "bare",
        over: "bare",
        what: "the bare service, a plain GET",
        run: |n| run(inner::<Body>, req(Kind::Plain), n),
    },
    Case {
        name: "timer_by_hand",
        over: "bare",
        what: "timer, both headers, by hand",
        run: |n| run(|| TimerLayer::new().layer(inner()), req(Kind::Plain), n),
    },
    Case {
        name: "timer_lean_by_hand",
        over: "bare",
        what: "timer, both headers, handler entries off, by hand",
        run: |n| {
            run(
                || TimerLayer::new().handler_entries(false).layer(inner()),
                req(Kind::Plain),
                n,
            );
        },
    },
    Case {
        name: "timer_stack",
        over: "bare",
        what: "timer from a PluginStack",
        run: |n| {
            run(
                || stack("[[plugin]]\nuse = \"timer\"\n"),
                req(Kind::Plain),
                n,
            );
        },
    },
    Case {
        name: "timer_chosen_by_hand",
        over: "bare",
        what: "timer or nothing, chosen at run time by hand (tower's Either)",
        run: |n| run(|| chosen(std::hint::black_box(true)), req(Kind::Plain), n),
    },
    Case {
        name: "timer_boxed_by_hand",
        over: "bare",
        what: "timer chosen at run time by boxing, as a Router's layer is",
        run: |n| {
            run(
                || {
                    let timed = TimerLayer::new().layer(inner());
                    tower::util::BoxCloneSyncService::new(tower::ServiceExt::map_response(
                        timed,
                        |r: Response<_>| r.map(Body::new),
                    ))
                },
                req(Kind::Plain),
                n,
            );
        },
    },
    Case {
        name: "five_silent_by_hand",
        over: "bare",
        what: "five timers writing nothing, by hand: the cost of nesting",
        run: |n| {
            run(
                || {
                    let silent = || TimerLayer::new().header(None).server_timing(false);
                    tower::ServiceBuilder::new()
                        .layer(silent())
                        .layer(silent())
                        .layer(silent())
                        .layer(silent())
                        .layer(silent())
                        .service(inner())
                },
                req(Kind::Plain),
                n,
            );
        },
    },
    Case {
        name: "five_silent_stack",
        over: "bare",
        what: "the same five from a PluginStack",
        run: |n| run(|| stack(silent_timers(5)), req(Kind::Plain), n),
    },
    Case {
        name: "empty_stack",
        over: "bare",
        what: "a PluginStack with no entry",
        run: |n| run(|| stack(""), req(Kind::Plain), n),
    },
    Case {
        name: "rate_limit_stack",
        over: "bare",
        what: "rate_limit from a PluginStack, admitted, IETF headers",
        run: |n| {
            run(
                || stack("[[plugin]]\nuse = \"rate_limit\"\nquota = \"1000000/s\"\nburst = 100\n"),
                req(Kind::Plain),
                n,
            );
        },
    },
    Case {
        name: "stats_stack",
        over: "bare",
        what: "stats from a PluginStack",
        run: |n| {
            run(
                || stack("[[plugin]]\nuse = \"stats\"\n"),
                req(Kind::Plain),
                n,
            );
        },
    },
    Case {
        name: "request_log_stack",
        over: "bare",
        what: "request_log from a PluginStack, combined to a file",
        run: |n| run(|| stack(log_toml("combined")), req(Kind::Plain), n),
    },
    Case {
        name: "request_log_json_stack",
        over: "bare",
        what: "request_log from a PluginStack, JSON to a file",
        run: |n| run(|| stack(log_toml("json")), req(Kind::Plain), n),
    },
    // The default sink with no subscriber installed: nobody hears the lines.
    Case {
        name: "request_log_unheard_stack",
        over: "bare",
        what: "request_log, tracing sink, no subscriber",
        run: |n| {
            run(
                || stack("[[plugin]]\nuse = \"request_log\"\nsink = \"tracing\"\n"),
                req(Kind::Plain),
                n,
            );
        },
    },
    Case {
        name: "bare_cross_origin",
        over: "bare_cross_origin",
        what: "the bare service, a cross-origin GET",
        run: |n| run(inner::<Body>, req(Kind::CrossOrigin), n),
    },
    Case {
        name: "cors_timer_by_hand",
        over: "bare_cross_origin",
        what: "cors + timer by hand",
        run: |n| {
            run(
                || {
                    tower::ServiceBuilder::new()
                        .layer(compared::cors::ours())
                        .layer(TimerLayer::new())
                        .service(inner())
                },
                req(Kind::CrossOrigin),
                n,
            );
        },
    },
    Case {
        name: "cors_timer_stack",
        over: "bare_cross_origin",
        what: "cors + timer from a PluginStack",
        run: |n| {
            run(
                || stack(format!("{}[[plugin]]\nuse = \"timer\"\n", cors_toml())),
                req(Kind::CrossOrigin),
                n,
            );
        },
    },
    Case {
        name: "cors_get_ours",
        over: "bare_cross_origin",
        what: "cors, simple cross-origin GET",
        run: |n| {
            run(
                || compared::cors::ours().layer(inner()),
                req(Kind::CrossOrigin),
                n,
            );
        },
    },
    Case {
        name: "cors_get_peer",
        over: "bare_cross_origin",
        what: "tower-http CorsLayer, same GET",
        run: |n| {
            run(
                || compared::cors::peer().layer(inner()),
                req(Kind::CrossOrigin),
                n,
            );
        },
    },
    Case {
        name: "bare_preflight",
        over: "bare_preflight",
        what: "the bare service, a preflight",
        run: |n| run(inner::<Body>, req(Kind::Preflight), n),
    },
    Case {
        name: "cors_preflight_ours",
        over: "bare_preflight",
        what: "cors, preflight",
        run: |n| {
            run(
                || compared::cors::ours().layer(inner()),
                req(Kind::Preflight),
                n,
            );
        },
    },
    Case {
        name: "cors_preflight_peer",
        over: "bare_preflight",
        what: "tower-http CorsLayer, preflight",
        run: |n| {
            run(
                || compared::cors::peer().layer(inner()),
                req(Kind::Preflight),
                n,
            );
        },
    },
    Case {
        name: "preflight_stack",
        over: "bare_preflight",
        what: "cors preflight from a PluginStack",
        run: |n| run(|| stack(cors_toml()), req(Kind::Preflight), n),
    },
    Case {
        name: "bare_proxied",
        over: "bare_proxied",
        what: "the bare axum service, a request from a trusted proxy",
        run: |n| run(axum_inner, req(Kind::Proxied), n),
    },
    Case {
        name: "rate_limit_ours",
        over: "bare_proxied",
        what: "rate_limit, admitted, IETF headers",
        run: |n| run(|| limiter().layer(axum_inner()), req(Kind::Proxied), n),
    },
    Case {
        name: "rate_limit_ours_large_burst",
        over: "bare_proxied",
        what: "rate_limit, admitted, IETF headers, a burst of 10,000 (past its table)",
        run: |n| {
            run(
                || {
                    compared::rate_limit::ours(compared::rate_limit::huge(), 10_000)
                        .layer(axum_inner())
                },
                req(Kind::Proxied),
                n,
            );
        },
    },
    Case {
        name: "rate_limit_ours_no_headers",
        over: "bare_proxied",
        what: "rate_limit, admitted, no headers",
        run: |n| {
            run(
                || limiter().headers(false).layer(axum_inner()),
                req(Kind::Proxied),
                n,
            );
        },
    },
    Case {
        name: "rate_limit_ours_legacy",
        over: "bare_proxied",
        what: "rate_limit, admitted, IETF + X-RateLimit-*",
        run: |n| {
            run(
                || limiter().legacy_headers(true).layer(axum_inner()),
                req(Kind::Proxied),
                n,
            );
        },
    },
    Case {
        name: "rate_limit_peer",
        over: "bare_proxied",
        what: "tower_governor, admitted, no headers",
        run: |n| {
            run(
                || {
                    tower_governor::GovernorLayer::new(
                        compared::rate_limit::peer().finish().unwrap(),
                    )
                    .layer(axum_inner())
                },
                req(Kind::Proxied),
                n,
            );
        },
    },
    Case {
        name: "rate_limit_peer_headers",
        over: "bare_proxied",
        what: "tower_governor, admitted, use_headers()",
        run: |n| {
            run(
                || {
                    let config = compared::rate_limit::peer().use_headers().finish().unwrap();
                    tower_governor::GovernorLayer::new(config).layer(axum_inner())
                },
                req(Kind::Proxied),
                n,
            );
        },
    },
    Case {
        name: "bare_two_hops",
        over: "bare_two_hops",
        what: "the bare service, the client two proxies back",
        run: |n| run(inner::<Body>, req(Kind::TwoHops), n),
    },
    // Two plugins that need the client's address, behind a trusted proxy.
    Case {
        name: "log_limit_proxied_stack",
        over: "bare_two_hops",
        what: "request_log + rate_limit behind proxies",
        run: |n| {
            let toml = format!(
                "[client_ip]\ntrusted_proxies = [\"10.0.0.0/8\"]\n\n{}\n\
                 [[plugin]]\nuse = \"rate_limit\"\nquota = \"1000000/s\"\nburst = 100\n",
                log_toml("combined")
            );
            run(|| stack(toml), req(Kind::TwoHops), n);
        },
    },
    Case {
        name: "bare_logged",
        over: "bare_logged",
        what: "the bare service, a GET with a user agent and referer",
        run: |n| run(inner::<Body>, req(Kind::Logged), n),
    },
    Case {
        name: "log_combined_ours",
        over: "bare_logged",
        what: "request_log, combined, writer thread",
        run: |n| {
            run(
                || {
                    tower_plugins::request_log::RequestLogLayer::new()
                        .format(tower_plugins::request_log::LogFormat::Combined)
                        .to_writer(std::io::sink(), 1 << 16)
                        .unwrap()
                        .layer(inner())
                },
                req(Kind::Logged),
                n,
            );
        },
    },
    Case {
        name: "log_tracing_ours",
        over: "bare_logged",
        what: "request_log, tracing sink, fmt subscriber",
        run: |n| {
            compared::fmt_subscriber();
            run(
                || tower_plugins::request_log::RequestLogLayer::new().layer(inner()),
                req(Kind::Logged),
                n,
            );
        },
    },
    Case {
        name: "log_tracing_peer",
        over: "bare_logged",
        what: "tower-http TraceLayer, same fmt subscriber",
        run: |n| {
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
        },
    },
    Case {
        name: "full_bare",
        over: "full_bare",
        what: "an axum router, a cross-origin GET from 127.0.0.1",
        run: |n| run(|| support::served(compared::router()), compared::request, n),
    },
    Case {
        name: "stats_ours",
        over: "full_bare",
        what: "stats on the router",
        run: |n| {
            run(
                || {
                    let stats = tower_plugins::stats::StatsLayer::new();
                    support::served(compared::router().layer(stats))
                },
                compared::request,
                n,
            );
        },
    },
    Case {
        name: "stats_peer",
        over: "full_bare",
        what: "axum-prometheus on the router",
        run: |n| {
            run(
                || {
                    let (prometheus, _handle) = axum_prometheus::PrometheusMetricLayer::pair();
                    support::served(compared::router().layer(prometheus))
                },
                compared::request,
                n,
            );
        },
    },
    Case {
        name: "full_ours",
        over: "full_bare",
        what: "our demo-like stack from TOML on the router",
        run: |n| {
            run(
                || {
                    let ours = compared::ours("instructions").layer();
                    support::served(compared::router().layer(ours))
                },
                compared::request,
                n,
            );
        },
    },
    Case {
        name: "full_ours_same_work",
        over: "full_bare",
        what: "the same, no request ids, no RateLimit headers",
        run: |n| {
            run(
                || {
                    let ours = compared::ours_same_work("instructions").layer();
                    support::served(compared::router().layer(ours))
                },
                compared::request,
                n,
            );
        },
    },
    Case {
        name: "full_peers",
        over: "full_bare",
        what: "the peer stack on the router",
        run: |n| {
            run(
                || support::served(compared::peers(compared::router())),
                compared::request,
                n,
            );
        },
    },
];

/// One case of [`CASES`].
struct Case {
    name: &'static str,
    /// The case whose cost this one's overhead is measured over.
    over: &'static str,
    what: &'static str,
    run: fn(usize),
}

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

/// `k` timer entries that write no header (each needs its own name).
fn silent_timers(k: usize) -> String {
    (0..k)
        .map(|i| {
            format!(
                "[[plugin]]\nuse = \"timer\"\nname = \"t{i}\"\nheader = \"\"\nserver_timing = false\n"
            )
        })
        .collect()
}

/// A request_log entry writing `format` lines to a file.
fn log_toml(format: &str) -> String {
    let path = std::env::temp_dir().join(format!("instructions-access.{format}"));
    format!(
        "[[plugin]]\nuse = \"request_log\"\nformat = \"{format}\"\nsink = {{ file = {:?} }}\n",
        path.display().to_string()
    )
}

/// The timer over the bare service when `on`, else the bare service: the least a layer
/// chosen at run time costs over the same layer composed by hand (one enum of two services,
/// their futures and bodies).
fn chosen(
    on: bool,
) -> impl Service<
    Request<Body>,
    Response = Response<impl http_body::Body<Data = Bytes, Error: std::fmt::Debug>>,
    Error = Infallible,
> + Clone {
    use http_body_util::Either as Body2;
    use tower::ServiceExt as _;
    use tower::util::Either;
    if on {
        Either::Left(
            TimerLayer::new()
                .layer(inner())
                .map_response(|r: Response<_>| r.map(Body2::Left)),
        )
    } else {
        Either::Right(inner().map_response(|r: Response<_>| r.map(Body2::Right)))
    }
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
    let name = args.next().unwrap_or_else(|| "timer_stack".to_owned());
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(2000);
    if name == "--list" {
        for c in CASES {
            println!("{}\t{}\t{}", c.name, c.over, c.what);
        }
        return;
    }
    match CASES.iter().find(|c| c.name == name) {
        Some(c) => (c.run)(n),
        None => panic!("unknown case {name} (--list lists them)"),
    }
}

/// The request `kind`, made anew for each request.
fn req(kind: Kind) -> impl Fn() -> Request<Body> {
    move || request(kind)
}

/// Our rate limiter with `compared::rate_limit`'s quota and key.
fn limiter() -> tower_plugins::rate_limit::RateLimitLayer {
    compared::rate_limit::ours(compared::rate_limit::huge(), compared::rate_limit::BURST)
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
