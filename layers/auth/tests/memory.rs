//! The session store's bound, measured with a counting allocator: a flood of logins never
//! grows it past `max_sessions`, and the memory comes back once the sessions expire, without
//! anyone calling anything.

use std::alloc::System;
use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cap::Cap;
use http::{Request, Response};
use http_body_util::Empty;
use tower::{Layer, Service, service_fn};
use tower_plugins_auth::{AuthLayer, Login, ManualClock, Secret, StaticUsers, User};

#[global_allocator]
static ALLOC: Cap<System> = Cap::new(System, usize::MAX);

const LOGINS: u32 = 1_000_000;
const MAX: usize = 50_000;

#[tokio::test]
async fn a_million_logins_stay_within_max_sessions_and_memory_comes_back() {
    let clock = ManualClock::new(1_000_000);
    let layer =
        AuthLayer::new(Secret::parse("a memory test secret that is long enough to use").unwrap())
            .static_users(StaticUsers::new())
            .max_sessions(MAX)
            .timeouts(
                Duration::from_secs(2),
                Duration::from_secs(60),
                Duration::ZERO,
            )
            .clock(clock.clone());
    // Each request is a login the application decides (no password to hash): a new session.
    let user = std::sync::Arc::new(User::new("flood", ["r"]));
    let mut svc = layer.layer(service_fn(move |_: Request<Empty<Bytes>>| {
        let user = user.clone();
        async move {
            let mut res = Response::new(());
            res.extensions_mut().insert(Login(user));
            Ok::<_, Infallible>(res)
        }
    }));
    let before = ALLOC.allocated();
    let mut peak = 0;
    for i in 0..LOGINS {
        let res = svc.call(Request::new(Empty::new())).await.unwrap();
        assert!(res.headers().contains_key("set-cookie"));
        drop(res);
        if i % 10_000 == 0 {
            peak = peak.max(ALLOC.allocated().saturating_sub(before));
        }
    }
    peak = peak.max(ALLOC.allocated().saturating_sub(before));
    let held = layer.sessions();
    assert!((MAX * 8 / 10..=MAX).contains(&held), "{held} sessions held");
    let per_session = peak as f64 / held as f64;
    eprintln!(
        "{LOGINS} logins: {held} sessions held, peak growth {peak} bytes ({per_session:.0} bytes per session)"
    );
    let settled = ALLOC.allocated().saturating_sub(before) as f64 / held as f64;
    eprintln!("held after the flood: {settled:.0} bytes per session");
    // A record is 32 bytes and its key 16; the table's load factor and power-of-two growth
    // make the rest, and a resize briefly holds two tables.
    assert!(settled < 150.0, "{settled:.0} bytes per session held");
    assert!(
        per_session < 250.0,
        "{per_session:.0} bytes per session at the peak"
    );

    // Nobody comes back: the sessions pass their idle timeout and the sweeper thread removes
    // them and gives the memory back.
    clock.advance(Duration::from_secs(3));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = ALLOC.allocated().saturating_sub(before);
        if layer.sessions() == 0 && now < 100_000 {
            eprintln!("after the sweep: {now} bytes above the start");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "memory did not come back: {now} bytes, {} sessions",
            layer.sessions()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
