use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_plugins_core::{ClientIpResolver, RequestStart};

use crate::{Collector, EndInfo, LargeResponses, Snapshot, StatsLayer};

/// Answers with the status in the `x-status` header (200 without) and a body of `x-len`
/// bytes.
fn app() -> impl Service<
    Request<Full<Bytes>>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Send,
> + Clone {
    service_fn(|req: Request<Full<Bytes>>| async move {
        let num = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<usize>().ok())
        };
        let mut res = Response::new(Full::new(Bytes::from(vec![
            b'x';
            num("x-len").unwrap_or(5)
        ])));
        *res.status_mut() = StatusCode::from_u16(num("x-status").unwrap_or(200) as u16).unwrap();
        Ok::<_, Infallible>(res)
    })
}

/// A request to `path` that arrived `ago` before now (a controlled latency).
fn req(path: &str, ago: Duration) -> Request<Full<Bytes>> {
    let mut r = Request::get(path).body(Full::default()).unwrap();
    r.extensions_mut()
        .insert(RequestStart(Instant::now() - ago));
    r.extensions_mut()
        .insert("127.0.0.1:4000".parse::<SocketAddr>().unwrap());
    r
}

async fn send<S>(svc: &S, r: Request<Full<Bytes>>) -> Response<Bytes>
where
    S: Service<
            Request<Full<Bytes>>,
            Response = Response<crate::ResponseBody<Full<Bytes>>>,
            Error = Infallible,
        > + Clone,
{
    let res = svc.clone().oneshot(r).await.unwrap();
    let (parts, body) = res.into_parts();
    Response::from_parts(parts, body.collect().await.unwrap().to_bytes())
}

fn route<'a>(snap: &'a Snapshot, name: &str) -> &'a crate::RouteSnapshot {
    snap.routes
        .iter()
        .find(|r| r.route == name)
        .unwrap_or_else(|| panic!("no route {name} in {:?}", snap.routes))
}

#[tokio::test]
async fn counts_status_classes_and_percentiles_of_known_latencies() {
    let layer = StatsLayer::new().routes(["/items/{id}"]).unwrap();
    let stats = layer.handle();
    let svc = layer.layer(app());
    for ms in 1..=100u64 {
        let r = req(&format!("/items/{ms}"), Duration::from_millis(ms));
        let status = match ms % 10 {
            0 => "500",
            5 => "404",
            _ => "200",
        };
        let r = header(header(r, "x-status", status), "content-length", "0");
        send(&svc, r).await;
    }
    let snap = stats.snapshot();
    let items = route(&snap, "/items/{id}");
    assert_eq!(items.requests, 100);
    assert_eq!(items.in_flight, 0);
    assert_eq!(
        (
            items.by_class.c2xx,
            items.by_class.c4xx,
            items.by_class.c5xx
        ),
        (80, 10, 10)
    );
    assert_eq!(items.by_status["200"], 80);
    assert_eq!(items.by_status["404"], 10);
    assert_eq!(items.errors, 10);
    assert_eq!(items.aborted, 0);
    assert_eq!(items.bytes_sent, 500);
    // Each latency is its controlled delay plus a little of the test's own time; the
    // percentiles are within a bucket (6.25%) of it.
    let near = |got: Option<f64>, want: f64| {
        let got = got.unwrap();
        assert!(
            got >= want * 0.93 && got <= want * 1.07 + 2.0,
            "{got} ms, wanted about {want} ms"
        );
    };
    near(items.latency_ms.p50, 50.0);
    near(items.latency_ms.p90, 90.0);
    near(items.latency_ms.p99, 99.0);
    near(items.latency_ms.max, 100.0);
    near(items.latency_ms.mean, 50.5);
    // Everything ended within this second or the one before.
    assert_eq!(items.rate_last_60s.len(), 60);
    assert_eq!(items.rate_last_60s.iter().sum::<u64>(), 100);
    assert_eq!(snap.overall.requests, 100);
    assert_eq!(snap.overall.route, "*");
}

#[tokio::test]
async fn raw_paths_never_become_routes() {
    let layer = StatsLayer::new().routes(["/known"]).unwrap();
    let stats = layer.handle();
    let svc = layer.layer(app());
    for i in 0..10_000 {
        send(&svc, req(&format!("/scan/{i}"), Duration::ZERO)).await;
    }
    send(&svc, req("/known", Duration::ZERO)).await;
    let snap = stats.snapshot();
    let names: Vec<&str> = snap.routes.iter().map(|r| r.route.as_str()).collect();
    assert_eq!(names, vec!["/known", "unmatched"]);
    assert_eq!(route(&snap, "unmatched").requests, 10_000);
}

#[test]
fn distinct_route_names_stay_within_max_routes() {
    // Names as axum's MatchedPath would give them: 10,000 distinct ones, cap 50.
    let layer = StatsLayer::new().max_routes(50).unwrap();
    let reg = &layer.shared().registry;
    for i in 0..10_000 {
        let r = reg.route(&format!("/r{i}"));
        r.shard()
            .requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    let snap = layer.handle().snapshot();
    assert_eq!(snap.routes_used, 50);
    assert_eq!(snap.routes.len(), 51); // 50 and `other`
    assert_eq!(snap.overflow_requests, 10_000 - 50);
    assert_eq!(route(&snap, "other").requests, 10_000 - 50);
    assert!(
        layer
            .handle()
            .prometheus()
            .contains("http_stats_routes_overflow_total 9950")
    );
}

#[tokio::test]
async fn aborted_requests_leave_nothing_in_flight() {
    let layer = StatsLayer::new().routes(["/a"]).unwrap();
    let stats = layer.handle();
    let svc = layer.layer(app());

    // The response is dropped before its body is read.
    let r = header(req("/a", Duration::ZERO), "x-len", "10000");
    let res = svc.clone().oneshot(r).await.unwrap();
    assert_eq!(stats.snapshot().overall.in_flight, 1);
    drop(res);

    // The future is dropped before the inner service answers.
    let slow = layer.layer(service_fn(|_r: Request<Full<Bytes>>| async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok::<_, Infallible>(Response::new(Full::<Bytes>::default()))
    }));
    let fut = slow.oneshot(req("/a", Duration::ZERO));
    assert!(
        tokio::time::timeout(Duration::from_millis(20), fut)
            .await
            .is_err()
    );

    let snap = stats.snapshot();
    let a = route(&snap, "/a");
    assert_eq!(a.in_flight, 0);
    assert_eq!(a.requests, 2);
    assert_eq!(a.aborted, 2);
    assert_eq!(a.by_class.c2xx, 1); // the first had a response head
    assert_eq!(a.errors, 0);
}

#[tokio::test]
async fn an_inner_error_is_an_error() {
    let layer = StatsLayer::new();
    let stats = layer.handle();
    let svc = layer.layer(service_fn(|_r: Request<Full<Bytes>>| async {
        Err::<Response<Full<Bytes>>, _>(std::io::Error::other("boom"))
    }));
    assert!(svc.oneshot(req("/x", Duration::ZERO)).await.is_err());
    let snap = stats.snapshot();
    assert_eq!(
        (
            snap.overall.requests,
            snap.overall.errors,
            snap.overall.in_flight
        ),
        (1, 1, 0)
    );
}

#[tokio::test]
async fn the_large_responses_collector_counts_bodies_over_its_threshold() {
    let layer = StatsLayer::new()
        .routes(["/large", "/small"])
        .unwrap()
        .collector("large_responses", LargeResponses::new(1000));
    let stats = layer.handle();
    let svc = layer.layer(app());
    for (path, len) in [
        ("/large", 1001),
        ("/large", 1000),
        ("/small", 10),
        ("/large", 5000),
    ] {
        send(
            &svc,
            header(req(path, Duration::ZERO), "x-len", &len.to_string()),
        )
        .await;
    }
    let snap = stats.snapshot();
    let large = &snap.collectors["large_responses"];
    assert_eq!(large["total"], 2);
    assert_eq!(large["threshold_bytes"], 1000);
    assert_eq!(large["by_route"]["/large"], 2);
    assert!(large["by_route"].get("/small").is_none());
    assert!(
        stats
            .prometheus()
            .contains("http_large_responses_total{route=\"/large\"} 2")
    );
}

#[tokio::test]
async fn collectors_see_every_hook() {
    #[derive(Default)]
    struct Seen(std::sync::Mutex<Vec<String>>);
    impl Collector for Seen {
        fn on_request(&self, r: &crate::RequestInfo<'_>) {
            self.0
                .lock()
                .unwrap()
                .push(format!("req {} {}", r.route, r.uri));
        }
        fn on_response(&self, r: &crate::ResponseInfo<'_>) {
            self.0
                .lock()
                .unwrap()
                .push(format!("res {}", r.status.as_u16()));
        }
        fn on_end(&self, e: &EndInfo<'_>) {
            self.0.lock().unwrap().push(format!(
                "end {} {:?}",
                e.body_bytes,
                e.status.map(|s| s.as_u16())
            ));
        }
        fn snapshot(&self) -> serde_json::Value {
            serde_json::json!(self.0.lock().unwrap().len())
        }
    }
    let seen = std::sync::Arc::new(Seen::default());
    let layer = StatsLayer::new().collector("seen", seen.clone());
    let svc = layer.layer(app());
    send(&svc, req("/p?q=1", Duration::ZERO)).await;
    assert_eq!(
        *seen.0.lock().unwrap(),
        vec!["req unmatched /p?q=1", "res 200", "end 5 Some(200)"]
    );
    assert_eq!(layer.handle().snapshot().collectors["seen"], 3);
}

/// `r` with the header `name: value` added.
fn header(mut r: Request<Full<Bytes>>, name: &'static str, value: &str) -> Request<Full<Bytes>> {
    r.headers_mut().append(name, value.parse().unwrap());
    r
}

fn from(peer: &str, path: &str) -> Request<Full<Bytes>> {
    let mut r = Request::get(path).body(Full::default()).unwrap();
    r.extensions_mut()
        .insert(peer.parse::<SocketAddr>().unwrap());
    r
}

#[tokio::test]
async fn endpoints_answer_loopback_clients_only_by_default() {
    let layer = StatsLayer::new()
        .endpoint("/admin/stats")
        .unwrap()
        .metrics_endpoint("/metrics")
        .unwrap();
    let svc = layer.layer(app());
    send(&svc, from("127.0.0.1:1", "/x")).await;

    let res = send(&svc, from("203.0.113.7:1", "/admin/stats")).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(!res.body().starts_with(b"{"));
    let res = send(&svc, from("203.0.113.7:1", "/metrics")).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // No peer address at all: not allowed either.
    let res = send(
        &svc,
        Request::get("/metrics").body(Full::default()).unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // A gRPC client is told in its own terms.
    let mut grpc = from("203.0.113.7:1", "/metrics");
    grpc.headers_mut()
        .insert("content-type", "application/grpc".parse().unwrap());
    let res = send(&svc, grpc).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["grpc-status"], "7");

    let res = send(&svc, from("[::1]:1", "/admin/stats")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(res.headers()["cache-control"], "no-store");
    let v: serde_json::Value = serde_json::from_slice(res.body()).unwrap();
    assert_eq!(v["overall"]["requests"], 1);
    assert_eq!(v["routes"][0]["route"], "unmatched");

    let r = header(
        from("127.0.0.1:1", "/admin/stats"),
        "accept",
        "text/html,application/xhtml+xml;q=0.9",
    );
    let res = send(&svc, r).await;
    assert_eq!(res.headers()["content-type"], "text/html; charset=utf-8");
    assert!(
        res.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    let html = std::str::from_utf8(res.body()).unwrap();
    assert!(html.contains("<canvas") && !html.contains("<script src"));

    let res = send(&svc, from("127.0.0.1:1", "/metrics")).await;
    assert_eq!(
        res.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = std::str::from_utf8(res.body()).unwrap();
    assert!(
        text.contains("http_requests_total{route=\"unmatched\",status=\"200\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("http_request_duration_seconds_bucket{route=\"unmatched\",le=\"+Inf\"} 1")
    );
    // The endpoints' own requests are not counted.
    assert_eq!(layer.handle().snapshot().overall.requests, 1);

    let mut r = from("127.0.0.1:1", "/metrics");
    *r.method_mut() = http::Method::POST;
    let res = send(&svc, r).await;
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(res.headers()["allow"], "GET, HEAD");
}

#[tokio::test]
async fn a_token_is_required_when_set() {
    let layer = StatsLayer::new()
        .metrics_endpoint("/metrics")
        .unwrap()
        .token("s3cret-token");
    let svc = layer.layer(app());
    let with_token = |peer, auth| header(from(peer, "/metrics"), "authorization", auth);
    // Any address may ask, with the token.
    let res = send(&svc, from("203.0.113.7:1", "/metrics")).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["www-authenticate"], "Bearer realm=\"stats\"");
    let r = with_token("203.0.113.7:1", "Bearer s3cret-tokeN");
    assert_eq!(send(&svc, r).await.status(), StatusCode::UNAUTHORIZED);
    let r = with_token("203.0.113.7:1", "bearer s3cret-token");
    assert_eq!(send(&svc, r).await.status(), StatusCode::OK);

    // With both, both are needed.
    let layer = layer.allow(["10.0.0.0/8"]).unwrap();
    let svc = layer.layer(app());
    let r = with_token("203.0.113.7:1", "Bearer s3cret-token");
    assert_eq!(send(&svc, r).await.status(), StatusCode::FORBIDDEN);
    let r = with_token("10.1.2.3:1", "Bearer s3cret-token");
    assert_eq!(send(&svc, r).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn allow_uses_the_trusted_proxy_resolution() {
    let layer = StatsLayer::new()
        .endpoint("/s")
        .unwrap()
        .client_ip(ClientIpResolver::new().trust(["10.0.0.1"]).unwrap());
    let svc = layer.layer(app());
    // Through the trusted proxy, for a remote client: refused.
    let r = header(from("10.0.0.1:1", "/s"), "x-forwarded-for", "198.51.100.4");
    assert_eq!(send(&svc, r).await.status(), StatusCode::FORBIDDEN);
    // A remote client claiming loopback, not through the proxy: refused.
    let r = header(from("198.51.100.4:1", "/s"), "x-forwarded-for", "127.0.0.1");
    assert_eq!(send(&svc, r).await.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn two_threads_record_into_one_registry() {
    let layer = StatsLayer::new().routes(["/t"]).unwrap();
    let stats = layer.handle();
    let svc = layer.layer(app());
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let svc = svc.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..500 {
                send(&svc, req("/t", Duration::ZERO)).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let snap = stats.snapshot();
    assert_eq!(route(&snap, "/t").requests, 2000);
    assert_eq!(route(&snap, "/t").by_status["200"], 2000);
}

/// The `metrics` facade, read through a recorder installed for the test's thread (the test
/// runtime runs every task on it).
mod facade {
    use super::*;
    use crate::MetricNames;
    use metrics::LocalRecorderGuard;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

    /// A recorder for this thread (the test runtime runs every task on it), and a layer
    /// counting `/items/{id}` that emits under `names`.
    fn recorded(
        names: impl Into<Option<MetricNames>>,
    ) -> (Snapshotter, LocalRecorderGuard<'static>, StatsLayer) {
        // Leaked: the guard must outlive the test body, and a test's recorder is small.
        let recorder: &'static DebuggingRecorder = Box::leak(Box::new(DebuggingRecorder::new()));
        let guard = metrics::set_default_local_recorder(recorder);
        let layer = StatsLayer::new()
            .routes(["/items/{id}"])
            .unwrap()
            .metrics_facade(names);
        (recorder.snapshotter(), guard, layer)
    }

    /// Every metric as (name, sorted labels, value).
    fn read(s: &Snapshotter) -> Vec<(String, Vec<(String, String)>, DebugValue)> {
        let mut v: Vec<_> = s
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(ck, _, _, value)| {
                let key = ck.key();
                let mut labels: Vec<(String, String)> = key
                    .labels()
                    .map(|l| (l.key().to_owned(), l.value().to_owned()))
                    .collect();
                labels.sort();
                (key.name().to_owned(), labels, value)
            })
            .collect();
        v.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        v
    }

    fn find<'a>(
        all: &'a [(String, Vec<(String, String)>, DebugValue)],
        name: &str,
        labels: &[(&str, &str)],
    ) -> &'a DebugValue {
        let mut want: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        want.sort();
        all.iter()
            .find(|(n, l, _)| n == name && *l == want)
            .map(|(_, _, v)| v)
            .unwrap_or_else(|| panic!("no {name} {labels:?} in {all:#?}"))
    }

    fn count(v: &DebugValue) -> u64 {
        match v {
            DebugValue::Counter(n) => *n,
            other => panic!("not a counter: {other:?}"),
        }
    }

    fn values(v: &DebugValue) -> Vec<f64> {
        match v {
            DebugValue::Histogram(xs) => xs.iter().map(|x| x.0).collect(),
            other => panic!("not a histogram: {other:?}"),
        }
    }

    fn gauge(v: &DebugValue) -> f64 {
        match v {
            DebugValue::Gauge(x) => x.0,
            other => panic!("not a gauge: {other:?}"),
        }
    }

    /// A request to `/items/7` answered with `status` and a body of `len` bytes, arrived
    /// `ago_ms` ago.
    fn item(status: &str, len: &str, ago_ms: u64) -> Request<Full<Bytes>> {
        let r = req("/items/7", Duration::from_millis(ago_ms));
        header(header(r, "x-status", status), "x-len", len)
    }

    #[tokio::test]
    async fn prometheus_names_carry_route_method_and_status() {
        let (snapshotter, _local, layer) = recorded(MetricNames::Prometheus);
        let stats = layer.handle();
        let svc = layer.layer(app());
        send(&svc, item("200", "10", 30)).await;
        send(&svc, item("200", "20", 30)).await;
        let mut post = header(item("503", "5", 30), "content-length", "4");
        *post.method_mut() = http::Method::POST;
        send(&svc, post).await;
        // Dropped before its body was read: counted with its status, and aborted.
        drop(svc.clone().oneshot(item("200", "1000", 0)).await.unwrap());
        // A method a client made up is `_OTHER`.
        let mut odd = item("204", "0", 0);
        *odd.method_mut() = http::Method::from_bytes(b"PURGE").unwrap();
        send(&svc, odd).await;

        let all = read(&snapshotter);
        let route = ("route", "/items/{id}");
        let get200 = [route, ("method", "GET"), ("status", "200")];
        assert_eq!(count(find(&all, "http_requests_total", &get200)), 3);
        let post503 = [route, ("method", "POST"), ("status", "503")];
        assert_eq!(count(find(&all, "http_requests_total", &post503)), 1);
        let other = [route, ("method", "_OTHER"), ("status", "204")];
        assert_eq!(count(find(&all, "http_requests_total", &other)), 1);

        let d = values(find(&all, "http_request_duration_seconds", &get200));
        assert_eq!(d.len(), 3);
        assert!(d.iter().filter(|s| **s >= 0.03).count() >= 2, "{d:?}");
        assert_eq!(
            values(find(&all, "http_request_duration_seconds", &post503)).len(),
            1
        );

        assert_eq!(count(find(&all, "http_requests_errors_total", &[route])), 1);
        assert_eq!(
            count(find(&all, "http_requests_aborted_total", &[route])),
            1
        );
        assert_eq!(
            count(find(&all, "http_request_body_bytes_total", &[route])),
            4
        );
        assert_eq!(
            count(find(&all, "http_response_body_bytes_total", &[route])),
            35
        );
        assert_eq!(gauge(find(&all, "http_requests_in_flight", &[route])), 0.0);

        // The facade and the layer's own figures agree.
        let snap = stats.snapshot();
        assert_eq!(snap.overall.requests, 5);
        assert_eq!(snap.overall.bytes_sent, 35);
    }

    /// A gRPC call to `/pkg.Svc/Get` answered trailers-only with `code`.
    async fn grpc_call(
        svc: &(
             impl Service<
            Request<Full<Bytes>>,
            Response = Response<crate::ResponseBody<Full<Bytes>>>,
            Error = Infallible,
        > + Clone
         ),
        code: &str,
    ) {
        let mut r = req("/pkg.Svc/Get", Duration::ZERO);
        *r.version_mut() = http::Version::HTTP_2;
        let r = header(
            header(r, "content-type", "application/grpc"),
            "x-grpc-status",
            code,
        );
        send(svc, r).await;
    }

    #[tokio::test]
    async fn grpc_calls_are_named_with_the_rpc_attributes_under_both_names() {
        let grpc_app = || {
            service_fn(|req: Request<Full<Bytes>>| async move {
                let mut res = Response::new(Full::new(Bytes::new()));
                if let Some(code) = req.headers().get("x-grpc-status") {
                    res.headers_mut().insert("grpc-status", code.clone());
                }
                Ok::<_, Infallible>(res)
            })
        };
        let (snapshotter, _local, layer) = recorded(MetricNames::Prometheus);
        let svc = layer.layer(grpc_app());
        grpc_call(&svc, "0").await;
        grpc_call(&svc, "5").await;
        grpc_call(&svc, "5").await;
        let all = read(&snapshotter);
        let rpc = |code| {
            [
                ("route", "/pkg.Svc/Get"),
                ("rpc_system", "grpc"),
                ("rpc_service", "pkg.Svc"),
                ("rpc_method", "Get"),
                ("rpc_grpc_status_code", code),
            ]
        };
        assert_eq!(count(find(&all, "rpc_server_calls_total", &rpc("5"))), 2);
        assert_eq!(count(find(&all, "rpc_server_calls_total", &rpc("0"))), 1);
        drop(_local);

        let (snapshotter, _local, layer) = recorded(MetricNames::OpenTelemetry);
        let svc = layer.layer(grpc_app());
        grpc_call(&svc, "5").await;
        let all = read(&snapshotter);
        let attrs = [
            ("rpc.system", "grpc"),
            ("rpc.service", "pkg.Svc"),
            ("rpc.method", "Get"),
            ("rpc.grpc.status_code", "5"),
        ];
        assert_eq!(
            values(find(&all, "rpc.server.call.duration", &attrs)).len(),
            1
        );
    }

    #[tokio::test]
    async fn opentelemetry_names_follow_the_semantic_conventions() {
        let (snapshotter, _local, layer) = recorded(MetricNames::OpenTelemetry);
        let svc = layer.layer(app());
        send(&svc, header(item("200", "12", 0), "content-length", "3")).await;
        send(&svc, item("502", "7", 0)).await;
        drop(svc.clone().oneshot(item("200", "1000", 0)).await.unwrap());
        let in_flight = svc.clone().oneshot(item("200", "1", 0)).await.unwrap();

        let all = read(&snapshotter);
        let base = [
            ("http.request.method", "GET"),
            ("http.route", "/items/{id}"),
            ("url.scheme", "http"),
        ];
        let with_attrs = |extra: &[(&'static str, &'static str)]| {
            let mut v = base.to_vec();
            v.extend_from_slice(extra);
            v
        };
        let ok = with_attrs(&[("http.response.status_code", "200")]);
        let bad = with_attrs(&[("http.response.status_code", "502"), ("error.type", "502")]);
        let gone = with_attrs(&[
            ("http.response.status_code", "200"),
            ("error.type", "aborted"),
        ]);

        assert_eq!(
            values(find(&all, "http.server.request.duration", &ok)).len(),
            1
        );
        assert_eq!(
            values(find(&all, "http.server.request.duration", &bad)).len(),
            1
        );
        assert_eq!(
            values(find(&all, "http.server.request.duration", &gone)).len(),
            1
        );
        assert_eq!(
            values(find(&all, "http.server.request.body.size", &ok)),
            vec![3.0]
        );
        assert_eq!(
            values(find(&all, "http.server.response.body.size", &ok)),
            vec![12.0]
        );
        assert_eq!(
            values(find(&all, "http.server.response.body.size", &bad)),
            vec![7.0]
        );
        // No Content-Length: no request size.
        assert!(values(find(&all, "http.server.request.body.size", &bad)).is_empty());
        // Active requests: by method and scheme, not route; one response still unread.
        let active = [("http.request.method", "GET"), ("url.scheme", "http")];
        assert_eq!(
            gauge(find(&all, "http.server.active_requests", &active)),
            1.0
        );
        assert!(
            !all.iter().any(|(n, ..)| n.starts_with("http_")),
            "{all:#?}"
        );
        drop(in_flight);
    }

    #[tokio::test]
    async fn label_sets_past_the_kept_handles_are_still_counted() {
        let (snapshotter, _local, layer) = recorded(MetricNames::Prometheus);
        let svc = layer.layer(app());
        // 60 distinct statuses, twice each: more label sets than a route keeps handles for.
        for _ in 0..2 {
            for code in 200..260 {
                send(&svc, item(&code.to_string(), "1", 0)).await;
            }
        }
        let all = read(&snapshotter);
        for code in 200..260 {
            let code = code.to_string();
            let labels = [
                ("route", "/items/{id}"),
                ("method", "GET"),
                ("status", &*code),
            ];
            assert_eq!(
                count(find(&all, "http_requests_total", &labels)),
                2,
                "{code}"
            );
        }
    }

    #[tokio::test]
    async fn off_by_default() {
        let (snapshotter, _local, layer) = recorded(None);
        let svc = layer.layer(app());
        send(&svc, item("200", "1", 0)).await;
        assert!(read(&snapshotter).is_empty());
    }
}

#[cfg(feature = "serde")]
mod config {
    use crate::StatsConfig;
    use tower_plugins_core::ClientIpResolver;

    fn build(toml_text: &str) -> Result<crate::StatsLayer, String> {
        let c: StatsConfig = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        c.build(ClientIpResolver::new()).map_err(|e| e.to_string())
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let e = build(
            r#"
            max_routes = 0
            routes = ["/ok", "no-slash", "/a/{}"]
            allow = ["10.0.0.0/8", "300.1.1.1"]
            endpoint = "admin"
            token_env = "TOWER_PLUGINS_STATS_TEST_UNSET_VAR"
            "#,
        )
        .unwrap_err();
        for key in [
            "max_routes",
            "routes[1]",
            "routes[2]",
            "allow[1]",
            "endpoint",
            "token_env",
        ] {
            assert!(e.contains(key), "{key} missing from: {e}");
        }
        assert!(!e.contains("routes[0]"), "{e}");
        assert!(!e.contains("allow[0]"), "{e}");
    }

    #[test]
    fn the_metrics_facade_is_named_in_config() {
        for (text, shown) in [
            ("metrics_facade = \"prometheus\"", "facade prometheus"),
            ("metrics_facade = \"opentelemetry\"", "facade opentelemetry"),
            ("metrics_facade = \"otel\"", "facade opentelemetry"),
            ("", "facade off"),
        ] {
            let l = build(text).unwrap();
            assert!(l.describe().contains(shown), "{text}: {}", l.describe());
        }
        let e = build("metrics_facade = \"statsd\"").unwrap_err();
        assert!(
            e.contains("metrics_facade") && e.contains("prometheus"),
            "{e}"
        );
    }

    #[test]
    fn a_valid_config_builds() {
        let l = build(
            r#"
            routes = ["/api/items/{id}"]
            endpoint = "/admin/stats"
            metrics_endpoint = "/metrics"
            large_response_bytes = 1000
            "#,
        )
        .unwrap();
        assert!(l.describe().contains("endpoint /admin/stats"));
        assert!(
            l.handle()
                .snapshot()
                .collectors
                .contains_key("large_responses")
        );
    }

    #[test]
    fn max_routes_is_bounded_and_the_endpoints_are_distinct() {
        for n in ["4000000000", "10001", "-1"] {
            let e = build(&format!("max_routes = {n}")).unwrap_err();
            assert!(
                e.contains("key `max_routes`") && e.contains("from 1 to 10000"),
                "{e}"
            );
        }
        assert!(build("max_routes = 10000").is_ok());
        let e = build("endpoint = \"/stats\"\nmetrics_endpoint = \"/stats\"").unwrap_err();
        assert!(
            e.contains("metrics_endpoint") && e.contains("conflicting"),
            "{e}"
        );
    }
}
