//! What the Redis backend adds per request on loopback (p50, p99, p99.9), and what a key
//! costs in Redis, against the server at `REDIS_URL` (default `redis://127.0.0.1:6379`).
//!
//! ```not_rust
//! cargo bench --bench rate_limit_redis --features rate-limit-redis
//! ```
//!
//! Criterion reports means and medians; tails need every sample, so this bench times each
//! request itself: 20,000 sequential requests through the same stack with the memory backend,
//! then with Redis (after 2,000 warm-up requests each), interleaved in rounds so both see
//! the same machine.

use std::convert::Infallible;
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http::{Request, Response};
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_plugins::core::Quota;
use tower_plugins::rate_limit::{RateLimitLayer, RedisSettings};

#[path = "support.rs"]
mod support;

const ROUNDS: usize = 10;
const PER_ROUND: usize = 2_000;

fn req(i: u32) -> Request<()> {
    let mut r = Request::get("/api/items").body(()).unwrap();
    let ip = std::net::Ipv4Addr::from(0xc000_0200 + (i % 200));
    r.extensions_mut().insert(SocketAddr::from((ip, 40_000)));
    r
}

async fn time_one<S>(svc: &mut S, i: u32) -> Duration
where
    S: Service<
            Request<()>,
            Response = Response<tower_plugins::core::PluginBody<()>>,
            Error = Infallible,
        >,
{
    let start = Instant::now();
    let res = svc.ready().await.unwrap().call(req(i)).await.unwrap();
    let took = start.elapsed();
    assert_eq!(res.status(), 200, "the quota must not be reached");
    black_box(res);
    took
}

fn main() {
    if !support::selected("rate_limit_redis") {
        return;
    }
    support::runtime().block_on(async {
        let Some((url, mut admin)) = support::redis_admin("rate_limit_redis").await else {
            return;
        };
        let prefix = format!("tower-plugins-bench:{}:", std::process::id());
        let quota = Quota::new(1_000_000, Duration::from_secs(1)).unwrap();
        let inner = service_fn(|_: Request<()>| async { Ok::<_, Infallible>(Response::new(())) });
        let mut memory = RateLimitLayer::new(quota).layer(inner);
        let mut redis = RateLimitLayer::new(quota)
            .redis(RedisSettings::new(&url).unwrap().prefix(prefix.clone()))
            .layer(inner);
        for i in 0..2_000 {
            time_one(&mut memory, i).await;
            time_one(&mut redis, i).await;
        }
        let (mut m, mut r, mut ping) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            // The bare round trip, for scale: a PING on a multiplexed connection.
            for _ in 0..PER_ROUND {
                let start = Instant::now();
                let _: String = redis::cmd("PING").query_async(&mut admin).await.unwrap();
                ping.push(start.elapsed());
            }
            for i in 0..PER_ROUND {
                m.push(time_one(&mut memory, (round * PER_ROUND + i) as u32).await);
            }
            for i in 0..PER_ROUND {
                r.push(time_one(&mut redis, (round * PER_ROUND + i) as u32).await);
            }
        }
        m.sort();
        r.sort();
        ping.sort();
        println!("rate_limit_redis: {} requests each, one at a time, loopback Redis at {url}", m.len());
        support::print_percentiles(&[("memory", &m), ("redis", &r), ("PING alone", &ping)]);

        // What a key costs in Redis: 10,000 distinct clients, then MEMORY USAGE and the
        // server's own used_memory.
        let used = |info: String| -> i64 {
            info.lines()
                .find_map(|l| l.strip_prefix("used_memory:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        let slow = Quota::new(1, Duration::from_secs(3600)).unwrap();
        let mut keyed = RateLimitLayer::new(slow)
            .redis(RedisSettings::new(&url).unwrap().prefix(format!("{prefix}keys:")))
            .layer(service_fn(|_: Request<()>| async { Ok::<_, Infallible>(Response::new(())) }));
        let before: String = redis::cmd("INFO").arg("memory").query_async(&mut admin).await.unwrap();
        for i in 0..10_000u32 {
            let mut r = Request::new(());
            let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i);
            r.extensions_mut().insert(SocketAddr::from((ip, 40_000)));
            keyed.ready().await.unwrap().call(r).await.unwrap();
        }
        let after: String = redis::cmd("INFO").arg("memory").query_async(&mut admin).await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query_async(&mut admin)
            .await
            .unwrap();
        let mut usage = 0i64;
        let sample: Vec<&String> = keys.iter().filter(|k| k.contains(":keys:")).take(100).collect();
        for k in &sample {
            let u: i64 = redis::cmd("MEMORY").arg("USAGE").arg(*k).query_async(&mut admin).await.unwrap();
            usage += u;
        }
        println!(
            "redis memory per key: MEMORY USAGE {} bytes (mean of {}), used_memory growth {} bytes per key over 10,000 keys (key: {:?})",
            usage / sample.len().max(1) as i64,
            sample.len(),
            (used(after) - used(before)) / 10_000,
            sample.first().map(|s| s.as_str()).unwrap_or("")
        );
        for chunk in keys.chunks(1000) {
            let _: () = redis::cmd("DEL").arg(chunk).query_async(&mut admin).await.unwrap();
        }
    });
}
