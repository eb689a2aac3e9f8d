//! The Redis backend against the real server at `REDIS_URL` (default
//! `redis://127.0.0.1:6379`). Each test uses its own key prefix and deletes its keys.
//! Without a server the tests say so and pass, unless `TOWER_PLUGINS_REQUIRE_REDIS=1`.
#![cfg(feature = "redis")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::StatusCode;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tower_plugins_core::parse_quota;
use tower_plugins_rate_limit::{Count, OnBackendError, RateLimitLayer, RedisSettings, Rule};

mod support;
use support::{req_from, status_of};
#[path = "../../../tests/support/redis.rs"]
mod redis_server;
use redis_server::{Prefix, Proxy, admin, redis_addr, redis_url, until_recovered};

fn layer(prefix: &str, url: &str, quota: &str) -> RateLimitLayer {
    RateLimitLayer::new(parse_quota(quota).unwrap()).redis(
        RedisSettings::new(url)
            .unwrap()
            .prefix(prefix)
            .timeout(Duration::from_millis(200)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stacks_sharing_redis_admit_no_more_than_the_quota() {
    let Some(conn) = admin().await else { return };
    let p = Prefix::new(&conn, "exact");
    let url = redis_url();
    // Two independent layers (two application instances), one Redis.
    let a = layer(&p.prefix, &url, "20/min");
    let b = layer(&p.prefix, &url, "20/min");
    let ok = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..100 {
        let l = if i % 2 == 0 { a.clone() } else { b.clone() };
        let ok = ok.clone();
        tasks.push(tokio::spawn(async move {
            let (s, _) = status_of(&l, req_from("192.0.2.1", "/")).await;
            assert!(
                s == StatusCode::OK || s == StatusCode::TOO_MANY_REQUESTS,
                "{s}"
            );
            if s == StatusCode::OK {
                ok.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(ok.load(Ordering::SeqCst), 20);
    assert_eq!(a.stats().backend_errors + b.stats().backend_errors, 0);
    let (s, h) = status_of(&a, req_from("192.0.2.1", "/")).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3).contains(&retry), "one unit every 3 s: {retry}");
    // Another client is unaffected, and sees the IETF headers.
    let (s, h) = status_of(&b, req_from("192.0.2.2", "/")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["ratelimit-policy"], "\"default\";q=20;w=60");
    assert_eq!(h["ratelimit"], "\"default\";r=19;t=3");
    p.cleanup().await;
}

#[tokio::test]
async fn the_script_is_reloaded_when_redis_forgets_it_and_keys_expire_when_full() {
    let Some(mut conn) = admin().await else {
        return;
    };
    let mut p = Prefix::new(&conn, "reload");
    let l = layer(&p.prefix, &redis_url(), "5/s");
    assert_eq!(
        status_of(&l, req_from("192.0.2.1", "/")).await.0,
        StatusCode::OK
    );
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        status_of(&l, req_from("192.0.2.1", "/")).await.0,
        StatusCode::OK
    );
    assert_eq!(l.stats().backend_errors, 0);
    let keys = p.keys().await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].ends_with("default:ip:192.0.2.1"), "{keys:?}");
    // The key lives only while its bucket is not full: 2 units at 5/s = 0.4 s.
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&keys[0])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((1..=400).contains(&ttl), "{ttl}");
    p.cleanup().await;
}

#[tokio::test]
async fn failures_rules_in_redis_count_only_error_answers() {
    let Some(conn) = admin().await else { return };
    let p = Prefix::new(&conn, "failures");
    let l = RateLimitLayer::from_rules([
        Rule::new("login", parse_quota("2/min").unwrap()).count(Count::Failures)
    ])
    .redis(RedisSettings::new(&redis_url()).unwrap().prefix(&p.prefix));
    for _ in 0..5 {
        assert_eq!(
            status_of(&l, req_from("192.0.2.1", "/login")).await.0,
            StatusCode::OK
        );
        // The refund is sent after the response; give it a moment.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..2 {
        assert_eq!(
            status_of(&l, req_from("192.0.2.1", "/login?status=401"))
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        status_of(&l, req_from("192.0.2.1", "/login")).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    p.cleanup().await;
}

/// A TCP forwarder to Redis that can stall: while stalled it holds every byte, in both
/// directions, and forwards them when it resumes, as a Redis paused by `SIGSTOP` or a GC-like
/// stall would answer them late.
struct StallingProxy {
    url: String,
    stalled: tokio::sync::watch::Sender<bool>,
    accept: JoinHandle<()>,
}

impl StallingProxy {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("redis://{}", listener.local_addr().unwrap());
        let (stalled, rx) = tokio::sync::watch::channel(false);
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(target).await else {
                    return;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(forward(cr, sw, rx.clone()));
                tokio::spawn(forward(sr, cw, rx.clone()));
            }
        });
        StallingProxy {
            url,
            stalled,
            accept,
        }
    }

    fn stall(&self, on: bool) {
        self.stalled.send_replace(on);
    }
}

impl Drop for StallingProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn forward(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut stalled: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0; 16 * 1024];
    while let Ok(n @ 1..) = from.read(&mut buf).await {
        while *stalled.borrow_and_update() {
            if stalled.changed().await.is_err() {
                return;
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Checks abandoned by the timeout while Redis stalled reach Redis when it resumes: they
/// must not spend the client's quota then (they did: after three 503s, a burst of 5 admitted
/// one request instead of four).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_abandoned_during_a_stall_spend_nothing_when_redis_resumes() {
    let Some(conn) = admin().await else { return };
    let p = Prefix::new(&conn, "stall");
    let proxy = StallingProxy::start(redis_addr().await).await;
    let l = RateLimitLayer::new(parse_quota("5/min").unwrap())
        .redis(
            RedisSettings::new(&proxy.url)
                .unwrap()
                .prefix(&p.prefix)
                .timeout(Duration::from_millis(100)),
        )
        .on_backend_error(OnBackendError::Deny);
    assert_eq!(
        status_of(&l, req_from("192.0.2.1", "/")).await.0,
        StatusCode::OK
    );
    proxy.stall(true);
    for _ in 0..3 {
        let s = status_of(&l, req_from("192.0.2.1", "/")).await.0;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    }
    proxy.stall(false);
    // Let the held calls reach Redis and run (or be refused as too late).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(status_of(&l, req_from("192.0.2.1", "/")).await.0.as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 200, 429]);
    p.cleanup().await;
}

async fn outage(policy: OnBackendError, expect_down: StatusCode) {
    let Some(conn) = admin().await else { return };
    let p = Prefix::new(&conn, "outage");
    let proxy = Proxy::start(redis_addr().await).await;
    let l = RateLimitLayer::new(parse_quota("1000/min").unwrap())
        .redis(
            RedisSettings::new(&proxy.url())
                .unwrap()
                .prefix(&p.prefix)
                .timeout(Duration::from_millis(100)),
        )
        .on_backend_error(policy);
    let (s, h) = status_of(&l, req_from("192.0.2.1", "/")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(h.contains_key("ratelimit"));

    proxy.close().await;
    for _ in 0..5 {
        let started = Instant::now();
        let (s, h) = status_of(&l, req_from("192.0.2.1", "/")).await;
        assert_eq!(s, expect_down);
        assert!(
            !h.contains_key("ratelimit"),
            "no figures without the backend"
        );
        if s == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(h["retry-after"], "1");
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "a request waited {:?} for a dead backend",
            started.elapsed()
        );
    }
    assert!(l.stats().backend_errors >= 5);

    // Back: the connection is re-established and limiting resumes.
    proxy.open();
    until_recovered(|| async {
        let (s, h) = status_of(&l, req_from("192.0.2.1", "/")).await;
        s == StatusCode::OK && h.contains_key("ratelimit")
    })
    .await;
    proxy.close().await;
    p.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_away_with_allow_lets_requests_through_and_recovers() {
    outage(OnBackendError::Allow, StatusCode::OK).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_away_with_deny_answers_503_and_recovers() {
    outage(OnBackendError::Deny, StatusCode::SERVICE_UNAVAILABLE).await;
}

#[tokio::test]
async fn an_unreachable_redis_from_the_start_never_fails_a_request() {
    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let l = layer("unused:", &format!("redis://127.0.0.1:{port}"), "1/min");
    for _ in 0..3 {
        assert_eq!(
            status_of(&l, req_from("192.0.2.1", "/")).await.0,
            StatusCode::OK
        );
    }
    assert_eq!(l.stats().backend_errors, 3);
    // Under deny, a gRPC call is told UNAVAILABLE in its own terms.
    let deny = l.on_backend_error(OnBackendError::Deny);
    let mut call = req_from("192.0.2.1", "/pkg.Svc/Call");
    call.headers_mut()
        .insert("content-type", "application/grpc".parse().unwrap());
    let (s, h) = status_of(&deny, call).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["grpc-status"], "14");
    assert_eq!(h["retry-after"], "1");
}
