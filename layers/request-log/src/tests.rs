use std::convert::Infallible;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full};
use tower::{Layer, ServiceExt, service_fn};

use crate::{LogFormat, RequestId, RequestLogLayer, Template};

/// A writer the tests can read back.
#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buf {
    /// The lines written so far, waiting (bounded) until there are at least `n`.
    async fn lines(&self, n: usize) -> Vec<String> {
        for _ in 0..400 {
            let text = String::from_utf8_lossy(&self.0.lock().unwrap()).to_string();
            let lines: Vec<String> = text.lines().map(str::to_owned).collect();
            if lines.len() >= n {
                return lines;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("fewer than {n} lines after 2 s");
    }
}

async fn handler(req: Request<()>) -> Result<Response<Full<Bytes>>, Infallible> {
    let status = req
        .uri()
        .query()
        .and_then(|q| q.strip_prefix("status="))
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let mut res = Response::new(Full::new(Bytes::from_static(b"twelve bytes")));
    *res.status_mut() = http::StatusCode::from_u16(status).unwrap();
    if let Some(id) = req.extensions().get::<RequestId>() {
        res.headers_mut().insert("x-seen-id", id.0.clone());
    }
    res.headers_mut()
        .insert("content-type", HeaderValue::from_static("text/plain"));
    Ok(res)
}

async fn run(
    layer: &RequestLogLayer,
    req: Request<()>,
) -> Response<crate::ResponseBody<Full<Bytes>>> {
    layer.layer(service_fn(handler)).oneshot(req).await.unwrap()
}

async fn run_to_end(layer: &RequestLogLayer, req: Request<()>) -> http::HeaderMap {
    let res = run(layer, req).await;
    let headers = res.headers().clone();
    res.into_body().collect().await.unwrap();
    headers
}

fn with_peer(mut req: Request<()>) -> Request<()> {
    req.extensions_mut()
        .insert("203.0.113.9:5555".parse::<std::net::SocketAddr>().unwrap());
    req
}

/// The regular expression log tools use for the Combined Log Format.
const COMBINED_RE: &str =
    r#"^(\S+) (\S+) (\S+) \[([^\]]+)\] "([^"]*)" (\d{3}) (\d+|-) "([^"]*)" "([^"]*)"$"#;
const COMMON_RE: &str = r#"^(\S+) (\S+) (\S+) \[([^\]]+)\] "([^"]*)" (\d{3}) (\d+|-)$"#;

#[tokio::test]
async fn combined_and_common_lines_parse_as_apache_writes_them() {
    let buf = Buf::default();
    let layer = RequestLogLayer::new().to_writer(buf.clone(), 64).unwrap();
    let req = Request::get("/api/items?page=2")
        .header("user-agent", "curl/8.0")
        .header("referer", "https://example.com/")
        .body(())
        .unwrap();
    run_to_end(&layer, with_peer(req)).await;
    let line = &buf.lines(1).await[0];
    let re = regex::Regex::new(COMBINED_RE).unwrap();
    let c = re
        .captures(line)
        .unwrap_or_else(|| panic!("not combined: {line}"));
    assert_eq!(&c[1], "203.0.113.9");
    assert_eq!((&c[2], &c[3]), ("-", "-"));
    let t = regex::Regex::new(r"^\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} \+0000$").unwrap();
    assert!(t.is_match(&c[4]), "{}", &c[4]);
    assert_eq!(&c[5], "GET /api/items?page=2 HTTP/1.1");
    assert_eq!((&c[6], &c[7]), ("200", "12"));
    assert_eq!((&c[8], &c[9]), ("https://example.com/", "curl/8.0"));

    let buf = Buf::default();
    let layer = RequestLogLayer::new()
        .format(LogFormat::Common)
        .to_writer(buf.clone(), 64)
        .unwrap();
    run_to_end(&layer, Request::get("/x?status=204").body(()).unwrap()).await;
    let line = &buf.lines(1).await[0];
    let c = regex::Regex::new(COMMON_RE)
        .unwrap()
        .captures(line)
        .unwrap_or_else(|| panic!("not common: {line}"));
    assert_eq!(&c[1], "-", "no peer address: `-`");
    assert_eq!(&c[6], "204");
}

#[tokio::test]
async fn json_lines_are_valid_json_with_every_field() {
    let buf = Buf::default();
    let layer = RequestLogLayer::new()
        .format(LogFormat::Json)
        .include_query(true)
        .to_writer(buf.clone(), 64)
        .unwrap();
    let req = Request::get("/api?q=1")
        .header("user-agent", "ua")
        .body(())
        .unwrap();
    let headers = run_to_end(&layer, with_peer(req)).await;
    let v: serde_json::Value = serde_json::from_str(&buf.lines(1).await[0]).unwrap();
    assert_eq!(v["method"], "GET");
    assert_eq!(v["path"], "/api");
    assert_eq!(v["query"], "q=1");
    assert_eq!(v["status"], 200);
    assert_eq!(v["bytes"], 12);
    assert!(v["duration_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(v["client_ip"], "203.0.113.9");
    assert_eq!(v["user_agent"], "ua");
    assert!(v["referer"].is_null() && v["user"].is_null() && v["route"].is_null());
    assert_eq!(v["protocol"], "HTTP/1.1");
    assert_eq!(v["outcome"], "completed");
    assert_eq!(v["request_id"], headers["x-request-id"].to_str().unwrap());
    humantime::parse_rfc3339(v["timestamp"].as_str().unwrap()).unwrap();
}

#[tokio::test]
async fn hostile_values_cannot_break_a_line() {
    // Header values cannot carry CR, LF or other controls (http refuses them), but they can
    // carry quotes, tabs, backslashes and non-UTF-8 bytes; user names from plugins can carry
    // anything, newlines included.
    let combined = regex::Regex::new(COMBINED_RE).unwrap();
    let evil_ua = HeaderValue::from_bytes(b"x\" \"forged\" 200 1\t\xff\\").unwrap();
    for format in [LogFormat::Combined, LogFormat::Json] {
        let buf = Buf::default();
        let layer = RequestLogLayer::new()
            .format(format.clone())
            .to_writer(buf.clone(), 64)
            .unwrap();
        let mut req = Request::get("/a%22b/\"quoted\"").body(()).unwrap();
        req.extensions_mut().insert(tower_plugins_core::AuthUser(
            "eve\n127.0.0.1 - admin [forged] \"GET / HTTP/1.1\" 200 1\x07".into(),
        ));
        req.headers_mut().insert("user-agent", evil_ua.clone());
        req.headers_mut().insert("referer", evil_ua.clone());
        run_to_end(&layer, req).await;
        let lines = buf.lines(1).await;
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line = &lines[0];
        assert!(
            line.bytes().all(|b| (0x20..0x7f).contains(&b) || b >= 0x80),
            "{line}"
        );
        match format {
            LogFormat::Json => {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                assert!(
                    v["user_agent"]
                        .as_str()
                        .unwrap()
                        .starts_with("x\" \"forged")
                );
                assert!(v["user"].as_str().unwrap().starts_with("eve\n127.0.0.1"));
            }
            _ => {
                let c = combined.captures(line).unwrap();
                assert_eq!(&c[6], "200");
                assert!(c[9].starts_with("x\\x22 \\x22forged"), "{}", &c[9]);
                assert!(c[3].starts_with("eve\\x0A127.0.0.1\\x20-"), "{}", &c[3]);
            }
        }
    }
}

#[tokio::test]
async fn custom_templates_with_headers_and_redaction() {
    let t = Template::parse(
        "{method} {target} {status} {bytes} {req.x-tenant} {req.authorization} {res.content-type} {{literal}}",
    )
    .unwrap();
    let buf = Buf::default();
    let layer = RequestLogLayer::new()
        .format(LogFormat::Custom(t))
        .redact_query(["token"])
        .to_writer(buf.clone(), 64)
        .unwrap();
    let req = Request::get("/p?token=s3cr3t&page=1")
        .header("x-tenant", "acme")
        .header("authorization", "Bearer s3cr3t")
        .body(())
        .unwrap();
    run_to_end(&layer, req).await;
    let line = &buf.lines(1).await[0];
    assert_eq!(
        line,
        "GET /p?token=[redacted]&page=1 200 12 acme [redacted] text/plain {literal}"
    );
    assert!(!line.contains("s3cr3t"));
    for bad in ["{nope}", "{method", "a } b", "{req.bad header}"] {
        assert!(Template::parse(bad).is_err(), "{bad}");
    }
}

/// `tok%65n` is `token` to the application (axum's `Query` decodes names): it is redacted too,
/// in every format.
#[tokio::test]
async fn redaction_compares_names_as_the_application_decodes_them() {
    let t = Template::parse("{target}").unwrap();
    for format in [LogFormat::Common, LogFormat::Json, LogFormat::Custom(t)] {
        let buf = Buf::default();
        let layer = RequestLogLayer::new()
            .format(format)
            .redact_query(["token", "api key"])
            .include_query(true)
            .to_writer(buf.clone(), 64)
            .unwrap();
        let req = Request::get("/?tok%65n=S1&api+key=S2&api%20key=S3&page=1")
            .body(())
            .unwrap();
        run_to_end(&layer, req).await;
        let line = &buf.lines(1).await[0];
        assert!(
            !["S1", "S2", "S3"].iter().any(|v| line.contains(v)),
            "{line}"
        );
        assert!(
            line.contains("tok%65n=[redacted]") && line.contains("page=1"),
            "{line}"
        );
    }
}

/// The request line is logged as received, as Apache does: a CONNECT's authority and an
/// absolute-form target whole (they were logged as `"CONNECT  HTTP/1.1"` and as the path).
#[tokio::test]
async fn request_lines_keep_the_target_as_received() {
    let connect = Request::connect("example.com:443").body(()).unwrap();
    let absolute = Request::get("http://example.com/a?b=1").body(()).unwrap();
    let asterisk = Request::options("*").body(()).unwrap();
    let mut h2 = Request::get("https://example.com/a?b=1").body(()).unwrap();
    *h2.version_mut() = http::Version::HTTP_2;
    for (req, line) in [
        (connect, "\"CONNECT example.com:443 HTTP/1.1\""),
        (absolute, "\"GET http://example.com/a?b=1 HTTP/1.1\""),
        (asterisk, "\"OPTIONS * HTTP/1.1\""),
        (h2, "\"GET /a?b=1 HTTP/2.0\""),
    ] {
        let buf = Buf::default();
        let layer = RequestLogLayer::new()
            .format(LogFormat::Common)
            .to_writer(buf.clone(), 64)
            .unwrap();
        run_to_end(&layer, req).await;
        let got = &buf.lines(1).await[0];
        assert!(got.contains(line), "{got}");
    }
}

#[tokio::test]
async fn request_ids_are_reused_only_when_well_formed() {
    let layer = RequestLogLayer::new()
        .to_writer(std::io::sink(), 64)
        .unwrap();
    let h = run_to_end(
        &layer,
        Request::get("/")
            .header("x-request-id", "abc-123")
            .body(())
            .unwrap(),
    )
    .await;
    assert_eq!(h["x-request-id"], "abc-123");
    assert_eq!(h["x-seen-id"], "abc-123", "handed to the handler");
    for hostile in ["a b", "../../etc", &"x".repeat(200), ""] {
        let h = run_to_end(
            &layer,
            Request::get("/")
                .header("x-request-id", hostile)
                .body(())
                .unwrap(),
        )
        .await;
        let id = h["x-request-id"].to_str().unwrap();
        assert_eq!(id.len(), 36, "a UUID replaces {hostile:?}");
        assert_eq!(&id[14..15], "7", "version 7");
    }
    let untrusting = RequestLogLayer::new()
        .trust_request_id(false)
        .to_writer(std::io::sink(), 64)
        .unwrap();
    let h = run_to_end(
        &untrusting,
        Request::get("/")
            .header("x-request-id", "abc-123")
            .body(())
            .unwrap(),
    )
    .await;
    assert_ne!(h["x-request-id"], "abc-123");
}

#[tokio::test]
async fn filters_skip_status_slowness_and_exact_sampling() {
    let buf = Buf::default();
    let layer = RequestLogLayer::new()
        .format(LogFormat::Custom(
            Template::parse("{path} {status}").unwrap(),
        ))
        .skip(tower_plugins_core::PathSet::new(["/health"]).unwrap())
        .only_status([400..=599])
        .to_writer(buf.clone(), 64)
        .unwrap();
    for path in [
        "/health?status=500",
        "/a?status=200",
        "/b?status=404",
        "/c?status=503",
    ] {
        run_to_end(&layer, Request::get(path).body(()).unwrap()).await;
    }
    assert_eq!(buf.lines(2).await, ["/b 404", "/c 503"]);

    let buf = Buf::default();
    let layer = RequestLogLayer::new()
        .format(LogFormat::Custom(Template::parse("{path}").unwrap()))
        .sample(0.25)
        .to_writer(buf.clone(), 4096)
        .unwrap();
    for _ in 0..1000 {
        run_to_end(&layer, Request::get("/s").body(()).unwrap()).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(buf.lines(250).await.len(), 250);

    let buf = Buf::default();
    let layer = RequestLogLayer::new()
        .slower_than(Duration::from_secs(3600))
        .to_writer(buf.clone(), 64)
        .unwrap();
    run_to_end(&layer, Request::get("/fast").body(()).unwrap()).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(buf.0.lock().unwrap().is_empty());
}

#[tokio::test]
async fn aborted_requests_are_logged_as_aborted() {
    let buf = Buf::default();
    let layer = RequestLogLayer::new()
        .format(LogFormat::Json)
        .to_writer(buf.clone(), 64)
        .unwrap();
    let res = run(&layer, Request::get("/gone").body(()).unwrap()).await;
    drop(res);
    let v: serde_json::Value = serde_json::from_str(&buf.lines(1).await[0]).unwrap();
    assert_eq!(v["outcome"], "aborted");
    assert_eq!(v["bytes"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_sink_loses_nothing_under_concurrency_and_counts_drops_when_overloaded() {
    let dir = std::env::temp_dir().join(format!("rl-concurrency-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("access.log");
    let layer = RequestLogLayer::new()
        .to_file(&path, crate::Rotate::Never, 100_000)
        .unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|t| {
            let layer = layer.clone();
            tokio::spawn(async move {
                for i in 0..250 {
                    run_to_end(
                        &layer,
                        Request::get(format!("/t{t}/r{i}")).body(()).unwrap(),
                    )
                    .await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let mut lines = 0;
    for _ in 0..400 {
        lines = std::fs::read_to_string(&path).unwrap().lines().count();
        if lines == 4000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(lines, 4000);
    assert_eq!(layer.dropped_lines(), 0);
    std::fs::remove_dir_all(&dir).unwrap();

    // A writer that cannot keep up: lines are dropped, counted, and the count is logged.
    #[derive(Clone, Default)]
    struct Slow(Buf);
    impl Write for Slow {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            std::thread::sleep(Duration::from_millis(2));
            self.0.write(b)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let slow = Slow::default();
    let layer = RequestLogLayer::new()
        .format(LogFormat::Custom(Template::parse("{path}").unwrap()))
        .to_writer(slow.clone(), 4)
        .unwrap();
    for i in 0..300 {
        run_to_end(&layer, Request::get(format!("/{i}")).body(()).unwrap()).await;
    }
    // Every line is either written or counted as dropped; wait (bounded) for the queued ones.
    let count = |text: &str| {
        let written = text.lines().filter(|l| l.starts_with('/')).count() as u64;
        let reported: u64 = text
            .lines()
            .filter_map(|l| l.strip_prefix("request_log: "))
            .filter_map(|l| l.split(' ').next()?.parse::<u64>().ok())
            .sum();
        (written, reported)
    };
    let mut last = (0, 0, String::new());
    for _ in 0..600 {
        let text = String::from_utf8_lossy(&slow.0.0.lock().unwrap()).to_string();
        let (written, reported) = count(&text);
        last = (written, reported, text);
        if written + reported + layer.dropped_lines() == 300 && reported > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (written, reported, text) = last;
    assert!(reported > 0, "drops are reported in the log: {text}");
    assert!(written < 300, "some lines were dropped");
    assert_eq!(written + reported + layer.dropped_lines(), 300, "{text}");
}

/// A fmt subscriber for this thread listening up to `max`, writing into the buffer returned.
fn capture_events(max: tracing::Level) -> (Buf, tracing::subscriber::DefaultGuard) {
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(max)
        .finish();
    (buf, tracing::subscriber::set_default(subscriber))
}

#[tokio::test]
async fn tracing_sink_emits_one_info_event_with_fields() {
    let (buf, _guard) = capture_events(tracing::Level::INFO);
    let layer = RequestLogLayer::new();
    let req = Request::get("/traced?q=1")
        .header("user-agent", "curl/8 (x86_64)")
        .body(())
        .unwrap();
    let headers = run_to_end(&layer, with_peer(req)).await;
    let text = String::from_utf8_lossy(&buf.0.lock().unwrap()).to_string();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains(" INFO tower_plugins::request_log: "),
        "{text}"
    );
    let id = headers["x-request-id"].to_str().unwrap();
    for field in [
        "method=GET ",
        "path=/traced ",
        "status=200 ",
        "bytes=12 ",
        "duration_us=",
        "client_ip=203.0.113.9 ",
        &format!("request_id={id} "),
        // A value that may hold spaces is quoted.
        "user_agent=\"curl/8 (x86_64)\"",
    ] {
        assert!(text.contains(field), "{field} in {text}");
    }
    // Absent values are left out, not written as placeholders; no line is repeated as the
    // message (the subscriber formats the fields).
    for absent in [
        "route=",
        "user=",
        "referer=",
        "grpc_status=",
        "aborted=",
        "\"-\"",
        "HTTP/1.1",
    ] {
        assert!(!text.contains(absent), "{absent} in {text}");
    }
}

#[tokio::test]
async fn a_template_is_the_tracing_events_message() {
    let (buf, _guard) = capture_events(tracing::Level::INFO);
    let t = Template::parse("{method} {path} -> {status} ua={req.user-agent}").unwrap();
    let layer = RequestLogLayer::new().format(LogFormat::Custom(t));
    let req = Request::get("/t")
        .header("user-agent", "probe")
        .body(())
        .unwrap();
    run_to_end(&layer, with_peer(req)).await;
    let text = String::from_utf8_lossy(&buf.0.lock().unwrap()).to_string();
    assert!(
        text.contains("request_log: GET /t -> 200 ua=probe method=GET"),
        "{text}"
    );
    assert!(
        text.contains("status=200"),
        "the fields are there too: {text}"
    );
}

#[tokio::test]
async fn a_tracing_sink_nobody_listens_to_logs_nothing_and_the_request_keeps_its_id() {
    // Listening at WARN only: the access log's INFO events are not wanted.
    let (buf, _guard) = capture_events(tracing::Level::WARN);
    let layer = RequestLogLayer::new();
    let req = with_peer(Request::get("/quiet").body(()).unwrap());
    let headers = run_to_end(&layer, req).await;
    assert!(headers.contains_key("x-request-id"), "ids are still given");
    assert!(buf.0.lock().unwrap().is_empty(), "no line, and none built");
}

#[test]
fn layer_and_service_are_clone_send_sync() {
    fn assert_all<T: Clone + Send + Sync + 'static>() {}
    assert_all::<RequestLogLayer>();
    assert_all::<crate::RequestLog<tower::util::BoxCloneSyncService<Request<()>, Response<()>, ()>>>(
    );
}
