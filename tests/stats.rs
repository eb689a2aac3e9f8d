//! The stats plugin on real loopback servers: the demo's stack and routes, an aborted
//! download, and the endpoints' access rules.
#![cfg(feature = "stats")]

mod common;

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use bytes::Bytes;
use http_body::Frame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower_plugins::PluginStack;

use common::{LIMIT, demo_stack, get, spawn_axum};

#[path = "../examples/shared/app.rs"]
mod app;

async fn json(addr: std::net::SocketAddr, path: &str) -> serde_json::Value {
    let (parts, body) = get(addr, path, &[("accept", "application/json")]).await;
    assert_eq!(parts.status, 200, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

fn route<'a>(snap: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    snap["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["route"] == name)
        .unwrap_or_else(|| panic!("no route {name} in {snap}"))
}

#[tokio::test]
async fn the_demo_counts_its_routes_and_large_responses() {
    let server = spawn_axum(app::router().layer(demo_stack().layer())).await;
    let addr = server.addr;
    for _ in 0..3 {
        get(addr, "/api/items", &[]).await;
    }
    for _ in 0..2 {
        let (parts, body) = get(addr, "/large", &[]).await;
        assert_eq!(parts.status, 200);
        assert!(body.len() > 1000);
    }
    get(addr, "/health", &[]).await;
    let (parts, _) = get(addr, "/no/such/page", &[]).await;
    assert_eq!(parts.status, 404);

    let snap = json(addr, "/admin/stats").await;
    assert_eq!(snap["service"], "demo");
    // axum's route templates, with the 404 under one constant label.
    assert_eq!(route(&snap, "/api/items")["requests"], 3);
    assert_eq!(route(&snap, "/large")["requests"], 2);
    assert_eq!(route(&snap, "/health")["by_status"]["200"], 1);
    assert_eq!(route(&snap, "unmatched")["by_class"]["4xx"], 1);
    assert_eq!(snap["overall"]["requests"], 7);
    assert_eq!(snap["overall"]["in_flight"], 0);
    // The custom collector counted exactly the responses over 1,000 bytes.
    assert_eq!(snap["collectors"]["large_responses"]["total"], 2);
    assert_eq!(
        snap["collectors"]["large_responses"]["by_route"]["/large"],
        2
    );
    let sent = route(&snap, "/large")["bytes_sent"].as_u64().unwrap();
    assert!(sent > 2000, "{sent}");

    let (parts, body) = get(addr, "/metrics", &[]).await;
    assert_eq!(parts.status, 200);
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(
        text.contains("http_requests_total{route=\"/api/items\",status=\"200\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("http_large_responses_total{route=\"/large\"} 2"),
        "{text}"
    );
}

#[tokio::test]
async fn a_client_from_elsewhere_gets_403_not_the_data() {
    let server = spawn_axum(app::router().layer(demo_stack().layer())).await;
    // The demo trusts 127.0.0.1 as a proxy: a forwarded remote client is not loopback.
    let (parts, body) = get(
        server.addr,
        "/admin/stats",
        &[("x-forwarded-for", "198.51.100.20")],
    )
    .await;
    assert_eq!(parts.status, 403);
    assert!(!body.starts_with(b"{"));
    let (parts, _) = get(
        server.addr,
        "/metrics",
        &[("x-forwarded-for", "198.51.100.20")],
    )
    .await;
    assert_eq!(parts.status, 403);
}

/// A body that never ends: 16 KB every 5 ms.
struct Endless(Pin<Box<tokio::time::Sleep>>);

impl http_body::Body for Endless {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        ready!(self.0.as_mut().poll(cx));
        self.0 = Box::pin(tokio::time::sleep(Duration::from_millis(5)));
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b'x'; 16 * 1024])))))
    }
}

#[tokio::test]
async fn a_client_that_drops_the_body_midway_is_counted_as_aborted() {
    let stack = PluginStack::from_toml_str(
        r#"
        [[plugin]]
        use = "stats"
        endpoint = "/admin/stats"
        "#,
    )
    .unwrap();
    let app = Router::new()
        .route(
            "/download",
            axum::routing::get(|| async {
                axum::body::Body::new(Endless(Box::pin(tokio::time::sleep(Duration::ZERO))))
            }),
        )
        .layer(stack.layer());
    let server = spawn_axum(app).await;

    let mut sock = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    sock.write_all(b"GET /download HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0;
    while got < 40 * 1024 {
        got += tokio::time::timeout(LIMIT, sock.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
    }
    // Mid-body, the download is in flight.
    let snap = json(server.addr, "/admin/stats").await;
    assert_eq!(route(&snap, "/download")["in_flight"], 1, "{snap}");
    drop(sock);

    // The server notices at its next write; poll until it has.
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let snap = json(server.addr, "/admin/stats").await;
        let d = route(&snap, "/download");
        if d["aborted"] == 1 {
            assert_eq!(d["in_flight"], 0, "{snap}");
            assert_eq!(d["requests"], 1, "{snap}");
            assert_eq!(d["by_status"]["200"], 1, "{snap}");
            assert!(d["bytes_sent"].as_u64().unwrap() >= 40 * 1024, "{snap}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not counted as aborted: {snap}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
