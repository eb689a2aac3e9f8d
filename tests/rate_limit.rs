//! The rate limiter in a plugin stack over real loopback sockets: the demo's limits, and two
//! servers sharing one Redis.
#![cfg(feature = "rate-limit")]

mod common;

#[path = "../examples/shared/app.rs"]
mod app;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use tower_plugins::PluginStack;

use common::{demo_stack, get, send, spawn_axum};

#[tokio::test]
async fn the_demo_limits_the_api_per_client_over_a_real_socket() {
    let server = spawn_axum(app::router().layer(demo_stack().layer())).await;
    // The burst of 20, each answer saying how much is left.
    for i in 0..20 {
        let (parts, _) = get(server.addr, "/api/items", &[]).await;
        assert_eq!(parts.status, 200, "request {i}");
        assert_eq!(parts.headers["ratelimit-policy"], "\"default\";q=20;w=20");
        let line = parts.headers["ratelimit"].to_str().unwrap();
        assert!(
            line.starts_with(&format!("\"default\";r={};t=", 19 - i)),
            "request {i}: {line}"
        );
    }
    let origin = "http://localhost:5173";
    let (parts, body) = get(server.addr, "/api/items", &[("origin", origin)]).await;
    assert_eq!(parts.status, 429);
    let retry: u64 = parts.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1, "{retry}");
    assert_eq!(parts.headers["content-type"], "application/problem+json");
    // The refusal keeps its CORS headers (cors is outside the limiter), so a page can read it.
    assert_eq!(parts.headers["access-control-allow-origin"], origin);
    let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["status"], 429);
    assert_eq!(problem["policy"], "default");

    // Other paths are not limited, and carry no RateLimit headers.
    let (parts, _) = get(server.addr, "/health", &[]).await;
    assert_eq!(parts.status, 200);
    assert!(!parts.headers.contains_key("ratelimit"));

    // A client behind the trusted local proxy has its own bucket; a forged header from an
    // untrusted peer would be ignored (see the crate tests), but 127.0.0.1 is trusted here.
    let (parts, _) = get(
        server.addr,
        "/api/items",
        &[("x-forwarded-for", "203.0.113.9")],
    )
    .await;
    assert_eq!(parts.status, 200);
}

#[tokio::test]
async fn the_demo_limits_writes_tighter() {
    let server = spawn_axum(app::router().layer(demo_stack().layer())).await;
    let post = || {
        Request::post("/api/items")
            .header("host", "x")
            .header("content-type", "application/json")
            .header("x-forwarded-for", "203.0.113.50")
            .body(Full::new(Bytes::from(r#"{"name":"plum"}"#)))
            .unwrap()
    };
    for i in 0..10 {
        let (parts, _) = send(server.addr, post()).await;
        assert_eq!(parts.status, 201, "write {i}");
        let lines: Vec<_> = parts.headers.get_all("ratelimit").iter().collect();
        assert_eq!(lines.len(), 2, "both rules report");
    }
    let (parts, body) = send(server.addr, post()).await;
    assert_eq!(parts.status, 429);
    let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["policy"], "writes");
    // The refused write cost the general rule nothing: 10 of its 20 are used.
    let (parts, _) = get(
        server.addr,
        "/api/items",
        &[("x-forwarded-for", "203.0.113.50")],
    )
    .await;
    assert_eq!(parts.status, 200);
    let line = parts.headers["ratelimit"].to_str().unwrap();
    assert!(line.starts_with("\"default\";r=9;"), "{line}");
}

#[cfg(feature = "rate-limit-redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_from_one_toml_share_their_limit_through_redis() {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let reachable = tokio::time::timeout(std::time::Duration::from_secs(3), async {
        let host = url
            .trim_start_matches("redis://")
            .split('/')
            .next()
            .unwrap_or("");
        tokio::net::TcpStream::connect(host.rsplit('@').next().unwrap_or(host)).await
    })
    .await
    .is_ok_and(|r| r.is_ok());
    if !reachable {
        assert_ne!(
            std::env::var("TOWER_PLUGINS_REQUIRE_REDIS").as_deref(),
            Ok("1"),
            "Redis is required but {url} is not reachable"
        );
        eprintln!("SKIPPED: no Redis at {url}");
        return;
    }
    let prefix = format!(
        "tower-plugins-test:stack:{}:{}:",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let toml = format!(
        r#"
        [[plugin]]
        use = "rate_limit"
        quota = "7/min"
        backend = {{ redis = "${{REDIS_URL:-redis://127.0.0.1:6379}}", prefix = "{prefix}" }}
        "#
    );
    let stack = || PluginStack::from_toml_str(&toml).expect("valid");
    let a = spawn_axum(app::router().layer(stack().layer())).await;
    let b = spawn_axum(app::router().layer(stack().layer())).await;
    let mut ok = 0;
    for i in 0..20 {
        let server = if i % 2 == 0 { &a } else { &b };
        let (parts, _) = get(server.addr, "/", &[]).await;
        match parts.status.as_u16() {
            200 => ok += 1,
            429 => {}
            s => panic!("unexpected {s}"),
        }
    }
    assert_eq!(ok, 7, "the two servers together admit the quota once");

    // Clean up the one key both servers used.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let _: () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut conn)
        .await
        .unwrap();
}
