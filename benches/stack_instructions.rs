//! Instructions per request of the stack cases, for callgrind: each case is warmed up, then
//! `measure` drives N requests; collect only inside `measure`.
//!
//! ```not_rust
//! cargo bench --bench stack_instructions --no-run
//! valgrind --tool=callgrind --toggle-collect='*measure*' target/release/deps/stack_instructions-* CASE 2000
//! python3 scripts/callgrind-per-request.py   # or: callgrind_annotate, total Ir / N
//! ```
//! The cases are those of `benches/stack.rs`: `bare`, `timer_by_hand`, `timer_stack`,
//! `cors_timer_by_hand`, `cors_timer_stack`, `empty_stack`.

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
fn request(cross_origin: bool) -> Request<Body> {
    let b = Request::get("/api/items");
    let b = if cross_origin {
        b.header("origin", ORIGIN)
    } else {
        b
    };
    b.body(Body::empty()).unwrap()
}

#[inline(never)]
fn measure<S, B>(rt: &tokio::runtime::Runtime, svc: &S, cross_origin: bool, n: usize)
where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible> + Clone,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    rt.block_on(async {
        for _ in 0..n {
            drive(svc, request(cross_origin)).await;
        }
    });
}

fn run<S, B>(svc: S, cross_origin: bool, n: usize)
where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible> + Clone,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let rt = support::runtime();
    rt.block_on(async {
        for _ in 0..1000 {
            drive(&svc, request(cross_origin)).await;
        }
    });
    measure(&rt, &svc, cross_origin, n);
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
    match case.as_str() {
        "bare" => run(inner::<Body>(), false, n),
        "timer_by_hand" => run(TimerLayer::new().layer(inner()), false, n),
        "timer_stack" => run(
            stack("[[plugin]]\nuse = \"timer\"\n")
                .layer()
                .layer(inner()),
            false,
            n,
        ),
        "cors_timer_by_hand" => run(
            tower::ServiceBuilder::new()
                .layer(cors())
                .layer(TimerLayer::new())
                .service(inner()),
            true,
            n,
        ),
        "cors_timer_stack" => run(stack(&two).layer().layer(inner()), true, n),
        "empty_stack" => run(stack("").layer().layer(inner()), false, n),
        other => panic!("unknown case {other}"),
    }
}
