//! Instructions per request of the stack cases, for callgrind: each case is warmed up, then
//! `measure` drives N requests; collect only inside `measure`.
//!
//! ```not_rust
//! cargo bench --bench stack_instructions --no-run
//! valgrind --tool=callgrind --toggle-collect='*measure*' target/release/deps/stack_instructions-* CASE 2000
//! python3 scripts/callgrind-per-request.py   # or: callgrind_annotate, total Ir / N
//! ```
//! The cases are those of `benches/stack.rs`: `bare`, `timer_by_hand`, `timer_stack`,
//! `cors_timer_by_hand`, `cors_timer_stack`, `empty_stack`; and one plugin each from a stack:
//! `preflight_stack` (a CORS preflight), `rate_limit_stack` (admitted, with headers),
//! `stats_stack`, `request_log_stack` / `request_log_json_stack` (a combined or JSON line
//! to a file, the request's thread only), `request_log_unheard_stack` (the `tracing` sink with
//! no subscriber), and `log_limit_proxied_stack` (request_log and
//! rate_limit, a request from a trusted proxy: the client's address resolved through
//! `X-Forwarded-For`). The whole stacks of `benches/stacks.rs` on an axum router, a
//! cross-origin request: `full_bare` (the router alone), `full_ours` and `full_peers`.

#[path = "stacks.rs"]
mod stacks;
#[path = "support.rs"]
mod support;

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response};
use support::{drive, inner};
use tower::{Layer, Service};
use tower_plugins::timer::TimerLayer;
use tower_plugins::{Body, PluginStack};

const ORIGIN: &str = "https://app.example.com";

// Never inlined, so that building the request costs the same in every build compared.
#[inline(never)]
fn request(kind: Kind) -> Request<Body> {
    let b = Request::get("/api/items");
    let b = match kind {
        Kind::Plain => b,
        Kind::CrossOrigin => b.header("origin", ORIGIN),
        Kind::Preflight => b
            .method("OPTIONS")
            .header("origin", ORIGIN)
            .header("access-control-request-method", "PUT"),
        Kind::Proxied => b.header("x-forwarded-for", "198.51.100.9, 203.0.113.7, 10.0.0.2"),
    };
    let mut req = b.body(Body::empty()).unwrap();
    if let Kind::Proxied = kind {
        req.extensions_mut()
            .insert(std::net::SocketAddr::from(([10, 0, 0, 1], 4000)));
    }
    req
}

/// Which request a case sends.
#[derive(Clone, Copy)]
enum Kind {
    Plain,
    CrossOrigin,
    Preflight,
    /// From a trusted proxy (10.0.0.1), with the client two hops back in `X-Forwarded-For`.
    Proxied,
}

#[inline(never)]
fn measure<S, B>(rt: &tokio::runtime::Runtime, svc: &S, kind: Kind, n: usize)
where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible> + Clone,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    rt.block_on(async {
        for _ in 0..n {
            drive(svc, request(kind)).await;
        }
    });
}

/// `measure` for the whole stacks: `stacks::request()` through an axum router.
#[inline(never)]
fn measure_full(rt: &tokio::runtime::Runtime, svc: &axum::Router, n: usize) {
    rt.block_on(async {
        for _ in 0..n {
            drive(svc, stacks::request()).await;
        }
    });
}

/// Builds the router inside the runtime (axum-prometheus spawns its upkeep task).
fn run_full(router: impl FnOnce() -> axum::Router, n: usize) {
    let rt = support::runtime();
    let router = rt.block_on(async { router() });
    rt.block_on(async {
        for _ in 0..1000 {
            drive(&router, stacks::request()).await;
        }
    });
    measure_full(&rt, &router, n);
}

fn run<S, B>(svc: S, kind: Kind, n: usize)
where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible> + Clone,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let rt = support::runtime();
    rt.block_on(async {
        for _ in 0..1000 {
            drive(&svc, request(kind)).await;
        }
    });
    measure(&rt, &svc, kind, n);
}

/// A request_log entry writing `format` lines to a file.
fn log_toml(format: &str) -> String {
    let path = std::env::temp_dir().join(format!("stack_instructions-access.{format}"));
    format!(
        "[[plugin]]\nuse = \"request_log\"\nformat = \"{format}\"\nsink = {{ file = {:?} }}\n",
        path.display().to_string()
    )
}

fn stack(toml: &str) -> PluginStack {
    PluginStack::from_toml_str(toml).unwrap()
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let case = args.next().unwrap_or_else(|| "timer_stack".to_owned());
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(2000);
    let cors = || {
        tower_plugins::cors::CorsLayer::new()
            .allow_origin(tower_plugins::cors::AllowOrigin::list([ORIGIN]).unwrap())
    };
    let two = format!(
        "[[plugin]]\nuse = \"cors\"\nallow_origins = [\"{ORIGIN}\"]\n[[plugin]]\nuse = \"timer\"\n"
    );
    let one = |toml: &str| stack(toml).layer().layer(inner());
    match case.as_str() {
        "bare" => run(inner::<Body>(), Kind::Plain, n),
        "timer_by_hand" => run(TimerLayer::new().layer(inner()), Kind::Plain, n),
        "timer_stack" => run(one("[[plugin]]\nuse = \"timer\"\n"), Kind::Plain, n),
        "cors_timer_by_hand" => run(
            tower::ServiceBuilder::new()
                .layer(cors())
                .layer(TimerLayer::new())
                .service(inner()),
            Kind::CrossOrigin,
            n,
        ),
        "cors_timer_stack" => run(one(&two), Kind::CrossOrigin, n),
        "empty_stack" => run(one(""), Kind::Plain, n),
        "preflight_stack" => run(
            one(&format!(
                "[[plugin]]\nuse = \"cors\"\nallow_origins = [\"{ORIGIN}\"]\n\
                 allow_methods = [\"GET\", \"PUT\"]\n"
            )),
            Kind::Preflight,
            n,
        ),
        "rate_limit_stack" => run(
            one("[[plugin]]\nuse = \"rate_limit\"\nquota = \"1000000/s\"\nburst = 100\n"),
            Kind::Plain,
            n,
        ),
        "stats_stack" => run(one("[[plugin]]\nuse = \"stats\"\n"), Kind::Plain, n),
        "request_log_json_stack" => run(one(&log_toml("json")), Kind::Plain, n),
        "request_log_stack" => run(one(&log_toml("combined")), Kind::Plain, n),
        // The default sink with no subscriber installed: nobody hears the lines.
        "request_log_unheard_stack" => run(
            one("[[plugin]]\nuse = \"request_log\"\nsink = \"tracing\"\n"),
            Kind::Plain,
            n,
        ),
        // Two plugins that need the client's address, behind a trusted proxy.
        "log_limit_proxied_stack" => {
            let toml = format!(
                "[client_ip]\ntrusted_proxies = [\"10.0.0.0/8\"]\n\n{}\n\
                 [[plugin]]\nuse = \"rate_limit\"\nquota = \"1000000/s\"\nburst = 100\n",
                log_toml("combined")
            );
            run(one(&toml), Kind::Proxied, n);
        }
        "full_bare" => run_full(stacks::router, n),
        "full_ours" => run_full(
            || stacks::router().layer(stacks::ours("stack_instructions").layer()),
            n,
        ),
        "full_peers" => run_full(|| stacks::peers(stacks::router()), n),
        "sizes" => {
            let rt = support::runtime();
            rt.block_on(async {
                let inner = || {
                    tower::service_fn(|_r: Request<Body>| async {
                        Ok::<_, Infallible>(Response::new(http_body_util::Full::new(
                            Bytes::from_static(b"hello"),
                        )))
                    })
                };
                let mut svc = stacks::ours("sizes").layer().layer(inner());
                let fut = svc.call(request(Kind::CrossOrigin));
                println!("stack future {}", std::mem::size_of_val(&fut));
                let res = fut.await.unwrap();
                println!(
                    "stack response {} body {}",
                    std::mem::size_of_val(&res),
                    std::mem::size_of_val(res.body())
                );
                macro_rules! one {
                    ($name:literal, $layer:expr) => {{
                        let mut s = $layer.layer(inner());
                        let f = s.call(request(Kind::CrossOrigin));
                        let sz = std::mem::size_of_val(&f);
                        let r = f.await.unwrap();
                        println!(
                            "{} future {} body {}",
                            $name,
                            sz,
                            std::mem::size_of_val(r.body())
                        );
                    }};
                }
                one!("timer", TimerLayer::new());
                one!("cors", tower_plugins::cors::CorsLayer::new());
                one!(
                    "rate_limit",
                    tower_plugins::rate_limit::RateLimitLayer::new(
                        tower_plugins::core::Quota::new(1000, std::time::Duration::from_secs(1))
                            .unwrap()
                    )
                );
                one!("stats", tower_plugins::stats::StatsLayer::new());
                one!(
                    "request_log",
                    tower_plugins::request_log::RequestLogLayer::new()
                );
            });
        }
        other => panic!("unknown case {other}"),
    }
}
