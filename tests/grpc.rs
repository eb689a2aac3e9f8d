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

/// A test's access log in a folder of its own (removed at the end), and the stack that
/// writes it: request_log (JSON lines), stats with its endpoint, then the test's `rest`.
struct Logged {
    dir: std::path::PathBuf,
    log: std::path::PathBuf,
}

impl Logged {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("tower-plugins-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("access.log");
        Logged { dir, log }
    }

    fn stack(&self, rest: &str) -> String {
        format!(
            "[[plugin]]\nuse = \"request_log\"\nformat = \"json\"\nsink = {{ file = {:?} }}\n\n\
             [[plugin]]\nuse = \"stats\"\nendpoint = \"/admin/stats\"\nmetrics_endpoint = \"/metrics\"\n\n{rest}",
            self.log.display().to_string()
        )
    }

    /// The lines written, once `n` are there (the writer is a thread).
    async fn lines(&self, n: usize) -> Vec<serde_json::Value> {
        for _ in 0..200 {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let lines: Vec<_> = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            if lines.len() >= n {
                return lines;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        panic!(
            "fewer than {n} log lines in {}:\n{text}",
            self.log.display()
        );
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The stats of `route` once `requests` of its calls are counted (bodies end after answers).
async fn route_stats(addr: SocketAddr, route: &str, requests: u64) -> serde_json::Value {
    for _ in 0..200 {
        let (_, body) = common::get(addr, "/admin/stats", &[]).await;
        let snap: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let found = (snap["routes"].as_array().unwrap().iter())
            .find(|r| r["route"] == route && r["requests"] == requests)
            .cloned();
        if let Some(r) = found {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{route} never counted {requests} calls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_and_the_log_see_each_method_and_its_grpc_status() {
    let logged = Logged::new("grpc-codes");
    let (addr, _stop) = serve(&logged.stack("[[plugin]]\nuse = \"timer\"\n")).await;
    let mut c = client(addr, "127.0.0.1").await;
    c.check(check("")).await.unwrap();
    c.check(check("")).await.unwrap();
    let missing = c.check(check("no.such.Service")).await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    let lines = logged.lines(3).await;
    let last = &lines[2];
    assert_eq!(last["path"], "/grpc.health.v1.Health/Check");
    assert_eq!(last["status"], 200);
    assert_eq!(last["grpc_status"], 5, "{last}");
    assert_eq!(last["grpc_message"], "service not registered");
    assert_eq!(last["protocol"], "HTTP/2.0");
    assert_eq!(lines[0]["grpc_status"], 0);

    let route = route_stats(addr, "/grpc.health.v1.Health/Check", 3).await;
    assert_eq!(route["errors"], 1, "NOT_FOUND is an error: {route}");
    assert_eq!(route["by_grpc_status"]["OK"], 2);
    assert_eq!(route["by_grpc_status"]["NOT_FOUND"], 1);
    assert_eq!(route["by_class"]["2xx"], 3);

    let (_, metrics) = common::get(addr, "/metrics", &[]).await;
    let metrics = String::from_utf8(metrics.to_vec()).unwrap();
    let line = "rpc_server_calls_total{route=\"/grpc.health.v1.Health/Check\",rpc_system=\"grpc\",\
                rpc_service=\"grpc.health.v1.Health\",rpc_method=\"Check\",rpc_grpc_status_code=\"5\"} 1";
    assert!(metrics.lines().any(|l| l == line), "{metrics}");
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
    let logged = Logged::new("grpc-watch");
    let (addr, _stop) = serve(&logged.stack("")).await;
    let mut c = client(addr, "127.0.0.1").await;
    let mut watch = c.watch(check("")).await.unwrap().into_inner();
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(first.status, 1, "SERVING");
    drop(watch);

    let lines = logged.lines(1).await;
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["path"], "/grpc.health.v1.Health/Watch");
    assert_eq!(lines[0]["outcome"], "aborted");
    let route = route_stats(addr, "/grpc.health.v1.Health/Watch", 1).await;
    assert_eq!(route["aborted"], 1);
    assert_eq!(route["in_flight"], 0, "nothing leaks");
    assert_eq!(
        route["errors"], 0,
        "a cancelled call is not the server's error"
    );
}

/// Sends `body` as a gRPC call to `path` over a fresh HTTP/2 connection with `headers`; with
/// `reset`, drops the request midway instead (a stream reset). The answer's head, if any.
async fn raw_call(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    reset: bool,
) -> Option<http::response::Parts> {
    use http_body_util::BodyExt;
    let mut sender = common::h2_connection(addr).await;
    let mut b = http::Request::post(format!("http://{addr}{path}"));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    // A gRPC message that says 100 bytes follow, and only 3 do: with `reset`, the stream is
    // dropped before the rest.
    let (mut tx, body) = http_body_util::channel::Channel::<bytes::Bytes>::new(1);
    let req = b.body(body).unwrap();
    let sent = tokio::spawn(async move { sender.send_request(req).await });
    tx.send_data(bytes::Bytes::from_static(&[0, 0, 0, 0, 100, 1, 2, 3]))
        .await
        .unwrap();
    if reset {
        // Let the head and the first bytes reach the server, then reset the stream.
        tokio::time::sleep(Duration::from_millis(200)).await;
        sent.abort();
        return None;
    }
    drop(tx);
    let res = tokio::time::timeout(Duration::from_secs(5), sent)
        .await
        .ok()?
        .ok()?
        .ok()?;
    let (parts, body) = res.into_parts();
    let _ = tokio::time::timeout(Duration::from_secs(5), body.collect()).await;
    Some(parts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_calls_and_resets_are_answered_or_counted_once_never_a_panic() {
    let logged = Logged::new("grpc-bad");
    let rest =
        "[[plugin]]\nuse = \"rate_limit\"\nquota = \"1000/min\"\n\n[[plugin]]\nuse = \"timer\"\n";
    let (addr, _stop) = serve(&logged.stack(rest)).await;
    let path = "/grpc.health.v1.Health/Check";
    let grpc = ("content-type", "application/grpc");
    for headers in [
        vec![grpc, ("grpc-timeout", "soon")],
        vec![grpc, ("grpc-timeout", "99999999999999999999H")],
        vec![
            ("content-type", "application/grpc+unheard-of"),
            ("te", "trailers"),
        ],
    ] {
        let head = raw_call(addr, path, &headers, false)
            .await
            .expect("an answer");
        assert_eq!(head.status, 200, "{headers:?}");
    }
    raw_call(addr, path, &[grpc], true).await;

    let lines = logged.lines(4).await;
    assert_eq!(lines.len(), 4, "one line per call, the reset one included");
    assert!(lines.iter().all(|l| l["path"] == path));
    // Each failed: tonic answers INTERNAL for a message cut short (the reset one too, when
    // it answers before the reset lands; otherwise that call is aborted).
    for l in &lines {
        let failed = l["outcome"] == "aborted" || l["grpc_status"].as_u64().is_some_and(|c| c != 0);
        assert!(failed, "{l}");
    }
    let route = route_stats(addr, path, 4).await;
    assert_eq!(route["in_flight"], 0, "nothing leaks: {route}");
    let errors = route["errors"].as_u64().unwrap() + route["aborted"].as_u64().unwrap();
    assert_eq!(errors, 4, "every failed call counted once: {route}");
    // The server still answers a well-formed call.
    let mut c = client(addr, "127.0.0.1").await;
    c.check(check("")).await.unwrap();
}

/// A client's retry policy as gRPC's specifies it: a `RESOURCE_EXHAUSTED` answer with
/// `grpc-retry-pushback-ms` is retried once that long has passed.
async fn check_with_retry(
    c: &mut HealthClient<Channel>,
) -> Result<
    (
        tonic::Response<tonic_health::pb::HealthCheckResponse>,
        Duration,
    ),
    tonic::Status,
> {
    let mut waited = Duration::ZERO;
    for _ in 0..3 {
        match c.check(check("")).await {
            Ok(res) => return Ok((res, waited)),
            Err(status) if status.code() == Code::ResourceExhausted => {
                let pushback = (status.metadata().get("grpc-retry-pushback-ms"))
                    .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                    .ok_or_else(|| status.clone())?;
                let wait = Duration::from_millis(pushback);
                tokio::time::sleep(wait).await;
                waited += wait;
            }
            Err(status) => return Err(status),
        }
    }
    Err(tonic::Status::resource_exhausted(
        "still limited after three tries",
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_waits_the_pushback_is_admitted() {
    let (addr, _stop) =
        serve("[[plugin]]\nuse = \"rate_limit\"\nquota = \"10/s\"\nburst = 2\n").await;
    let mut c = client(addr, "127.0.0.1").await;
    c.check(check("")).await.unwrap();
    c.check(check("")).await.unwrap();
    let (res, waited) = check_with_retry(&mut c).await.unwrap();
    assert!(res.metadata().contains_key("ratelimit"));
    assert!(
        (Duration::from_millis(1)..=Duration::from_millis(200)).contains(&waited),
        "one refill of a 10/s quota is 100 ms: waited {waited:?}"
    );
}
