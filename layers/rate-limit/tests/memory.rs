//! The memory bound, measured with a counting allocator: a million distinct client
//! addresses never grow the limiter past `max_keys`, and the memory comes back once they go
//! quiet, without anyone calling anything.

use std::alloc::System;
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use cap::Cap;
use http::{Request, Response};
use tower::{Layer, Service, service_fn};
use tower_plugins_core::parse_quota;
use tower_plugins_rate_limit::{DEFAULT_MAX_KEYS, ManualClock, RateLimitLayer};

#[global_allocator]
static ALLOC: Cap<System> = Cap::new(System, usize::MAX);

#[tokio::test]
async fn a_million_client_addresses_stay_within_max_keys_and_memory_comes_back() {
    let clock = ManualClock::new();
    let layer = RateLimitLayer::new(parse_quota("10/s").unwrap())
        .clock(clock.clone())
        .sweep_interval(Duration::from_millis(50));
    let mut svc = layer.layer(service_fn(|_: Request<()>| async {
        Ok::<_, Infallible>(Response::new(()))
    }));
    let before = ALLOC.allocated();
    let mut peak = 0;
    for i in 0..1_000_000u32 {
        let mut req = Request::new(());
        let ip = Ipv4Addr::from(0x0a00_0000 + i);
        req.extensions_mut().insert(SocketAddr::from((ip, 40_000)));
        let res = svc.call(req).await.unwrap();
        assert_eq!(res.status(), 200);
        drop(res);
        if i % 10_000 == 0 {
            peak = peak.max(ALLOC.allocated().saturating_sub(before));
        }
    }
    peak = peak.max(ALLOC.allocated().saturating_sub(before));
    let stats = layer.stats();
    assert!(stats.keys <= DEFAULT_MAX_KEYS, "{stats:?}");
    assert!(
        stats.keys >= DEFAULT_MAX_KEYS * 8 / 10,
        "the map is used: {stats:?}"
    );
    let per_key = peak as f64 / stats.keys as f64;
    eprintln!(
        "1,000,000 addresses: {} keys held, peak growth {peak} bytes ({per_key:.1} bytes per key held), {} evicted under pressure",
        stats.keys, stats.evicted_full
    );
    // The documented bound: 64 shards of 2,048 buckets of 33 bytes = 4.3 MB for the default
    // 100,000 keys, whatever the number of clients.
    assert!(peak < 5_000_000, "peak growth {peak} bytes");

    // The clients go quiet: their buckets refill (0.1 s each) and the sweeper thread, on its
    // own, removes them and gives the table memory back.
    clock.advance(Duration::from_secs(1));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = ALLOC.allocated().saturating_sub(before);
        if layer.stats().keys == 0 && now < 200_000 {
            eprintln!("after the sweep: {now} bytes above the start");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "memory did not come back: {now} bytes, {:?}",
            layer.stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
