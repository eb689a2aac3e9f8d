//! gRPC over HTTP/2 through a plugin stack from TOML, with a real tonic server (tonic-health's
//! generated service) and a real tonic client on loopback: the stack's headers reach the
//! client as metadata, a spent quota is `RESOURCE_EXHAUSTED` with its pushback, the peer
//! address comes from tonic's connection info (two client addresses, two buckets), and a
//! handler's `NOT_FOUND` reaches the client untouched.
#![cfg(all(
    feature = "tonic",
    feature = "rate-limit",
    feature = "stats",
    feature = "timer",
    feature = "request-log"
))]

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::Code;
use tonic::transport::{Channel, Endpoint, Server};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

const STACK: &str = r#"
[[plugin]]
use = "stats"

[[plugin]]
use = "rate_limit"
quota = "3/min"

[[plugin]]
use = "timer"
"#;

/// A tonic server with tonic-health's service behind the stack from `toml` (HTTP/1 accepted
/// too, for the stats endpoint); dropping the sender stops it.
async fn serve(toml: &str) -> (SocketAddr, oneshot::Sender<()>) {
    let stack = tower_plugins::PluginStack::from_toml_str(toml).unwrap();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        Server::builder()
            .accept_http1(true)
            .layer(stack.layer())
            .add_service(health)
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    (addr, stop)
}

async fn client(addr: SocketAddr, from: &str) -> HealthClient<Channel> {
    let local: IpAddr = from.parse().unwrap();
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .local_address(Some(local))
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5))
        .connect()
        .await
        .unwrap();
    HealthClient::new(channel)
}

fn check(service: &str) -> HealthCheckRequest {
    HealthCheckRequest {
        service: service.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_quota_is_resource_exhausted_and_the_stacks_headers_are_metadata() {
    let (addr, _stop) = serve(STACK).await;
    let mut c = client(addr, "127.0.0.1").await;
    let ok = c.check(check("")).await.unwrap();
    let md = ok.metadata();
    assert!(md.contains_key("x-response-time"), "{md:?}");
    assert!(md.contains_key("ratelimit"), "{md:?}");

    // The handler's own error passes through untouched.
    let missing = c.check(check("no.such.Service")).await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    c.check(check("")).await.unwrap();
    let spent = c.check(check("")).await.unwrap_err();
    assert_eq!(spent.code(), Code::ResourceExhausted, "{spent:?}");
    assert!(spent.message().contains("exceeded"), "{spent:?}");
    let md = spent.metadata();
    let pushback: u64 = md
        .get("grpc-retry-pushback-ms")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .expect("a pushback");
    assert!((1..=20_000).contains(&pushback), "{pushback}");
    assert!(md.contains_key("retry-after") && md.contains_key("ratelimit"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_client_addresses_get_two_buckets_under_server_builder_layer() {
    let (addr, _stop) = serve(STACK).await;
    let mut one = client(addr, "127.0.0.1").await;
    for _ in 0..3 {
        one.check(check("")).await.unwrap();
    }
    let spent = one.check(check("")).await.unwrap_err();
    assert_eq!(spent.code(), Code::ResourceExhausted);
    // Another address on the loopback network: its own bucket, read from tonic's
    // `TcpConnectInfo` with no shim.
    let mut two = client(addr, "127.0.0.2").await;
    two.check(check("")).await.unwrap();
}

/// The log lines a test's stack wrote, once `n` are there (the writer is a thread).
async fn lines(path: &std::path::Path, n: usize) -> Vec<serde_json::Value> {
    for _ in 0..200 {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<_> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if lines.len() >= n {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("fewer than {n} log lines in {}", path.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_and_the_log_see_each_method_and_its_grpc_status() {
    let dir = std::env::temp_dir().join(format!("tower-plugins-grpc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("access.log");
    let toml = format!(
        r#"
[[plugin]]
use = "request_log"
format = "json"
sink = {{ file = "{}" }}

[[plugin]]
use = "stats"
endpoint = "/admin/stats"

[[plugin]]
use = "timer"
"#,
        log.display()
    );
    let (addr, _stop) = serve(&toml).await;
    let mut c = client(addr, "127.0.0.1").await;
    c.check(check("")).await.unwrap();
    c.check(check("")).await.unwrap();
    let missing = c.check(check("no.such.Service")).await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    let lines = lines(&log, 3).await;
    let last = &lines[2];
    assert_eq!(last["path"], "/grpc.health.v1.Health/Check");
    assert_eq!(last["status"], 200);
    assert_eq!(last["grpc_status"], 5, "{last}");
    assert_eq!(last["grpc_message"], "service not registered");
    assert_eq!(last["protocol"], "HTTP/2.0");
    assert_eq!(lines[0]["grpc_status"], 0);

    let (head, body) = common::get(addr, "/admin/stats", &[]).await;
    assert_eq!(head.status, 200);
    let snap: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let route = (snap["routes"].as_array().unwrap().iter())
        .find(|r| r["route"] == "/grpc.health.v1.Health/Check")
        .unwrap_or_else(|| panic!("no per-method route: {snap}"));
    assert_eq!(route["requests"], 3);
    assert_eq!(route["errors"], 1, "NOT_FOUND is an error: {route}");
    assert_eq!(route["by_grpc_status"]["OK"], 2);
    assert_eq!(route["by_grpc_status"]["NOT_FOUND"], 1);
    assert_eq!(route["by_class"]["2xx"], 3);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_around_one_service_keeps_its_name_for_add_service() {
    use tower::Layer;
    let stack = tower_plugins::PluginStack::from_toml_str(STACK).unwrap();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        Server::builder()
            .add_service(stack.layer().layer(health))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    let mut c = client(addr, "127.0.0.1").await;
    let ok = c.check(check("")).await.unwrap();
    assert!(ok.metadata().contains_key("ratelimit"));
    for _ in 0..2 {
        c.check(check("")).await.unwrap();
    }
    let spent = c.check(check("")).await.unwrap_err();
    assert_eq!(spent.code(), Code::ResourceExhausted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_the_client_cancels_is_counted_and_logged_once_as_aborted() {
    let dir = std::env::temp_dir().join(format!("tower-plugins-grpc-watch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("access.log");
    let toml = format!(
        r#"
[[plugin]]
use = "request_log"
format = "json"
sink = {{ file = "{}" }}

[[plugin]]
use = "stats"
endpoint = "/admin/stats"
"#,
        log.display()
    );
    let (addr, _stop) = serve(&toml).await;
    let mut c = client(addr, "127.0.0.1").await;
    let mut watch = c.watch(check("")).await.unwrap().into_inner();
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(first.status, 1, "SERVING");
    drop(watch);

    let lines = lines(&log, 1).await;
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["path"], "/grpc.health.v1.Health/Watch");
    assert_eq!(lines[0]["outcome"], "aborted");
    let mut tries = 0;
    let route = loop {
        tries += 1;
        assert!(tries < 200, "the aborted stream was never counted");
        let (_, body) = common::get(addr, "/admin/stats", &[]).await;
        let snap: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let found = (snap["routes"].as_array().unwrap().iter())
            .find(|r| r["route"] == "/grpc.health.v1.Health/Watch")
            .cloned();
        if let Some(r) = found.filter(|r| r["requests"] == 1) {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(route["aborted"], 1);
    assert_eq!(route["in_flight"], 0, "nothing leaks");
    assert_eq!(
        route["errors"], 0,
        "a cancelled call is not the server's error"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
