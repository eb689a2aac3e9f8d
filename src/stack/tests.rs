use std::convert::Infallible;

use http::{HeaderValue, Request, Response};
use http_body_util::BodyExt;
use tower::{Layer, ServiceExt, service_fn};
use tower_service::Service;

use super::service::DEPTH;
use super::*;
use crate::Body;
use tower_plugins_core::ProblemKind;

/// A custom plugin that records the order in which requests and responses pass it.
fn tag_layer(tag: String) -> impl CustomLayer {
    from_fn(move |mut req: Request<Body>, next: Next| {
        let tag = HeaderValue::from_str(&tag).unwrap();
        req.headers_mut().append("x-seen", tag.clone());
        async move {
            let mut res = next.run(req).await;
            res.headers_mut().append("x-order", tag);
            res
        }
    })
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TagConfig {
    tag: String,
}

fn builder() -> PluginStackBuilder {
    PluginStack::builder().register("tag", |c: TagConfig, _ctx: &PluginContext| {
        Ok(tag_layer(c.tag))
    })
}

/// The app: echoes the request's `x-seen` list in the body.
fn app() -> impl Service<
    Request<Body>,
    Response = Response<Body>,
    Error = Infallible,
    Future = impl Send + 'static,
> + Clone
+ Send
+ Sync
+ 'static {
    service_fn(|req: Request<Body>| async move {
        let seen: Vec<&str> = req
            .headers()
            .get_all("x-seen")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        Ok::<_, Infallible>(Response::new(Body::from(seen.join(","))))
    })
}

async fn run(stack: &PluginStack) -> (String, Vec<String>, http::HeaderMap) {
    let svc = stack.layer().layer(app());
    let res = svc.oneshot(Request::new(Body::empty())).await.unwrap();
    let headers = res.headers().clone();
    let order = headers
        .get_all("x-order")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (String::from_utf8(body.to_vec()).unwrap(), order, headers)
}

fn tags_toml(n: usize) -> String {
    (0..n)
        .map(|i| format!("[[plugin]]\nuse = \"tag\"\nname = \"t{i}\"\ntag = \"t{i}\"\n"))
        .collect()
}

#[tokio::test]
async fn first_entry_sees_the_request_first_and_the_response_last() {
    let stack = builder().toml_str(tags_toml(3)).build().unwrap();
    let (seen, order, _) = run(&stack).await;
    assert_eq!(seen, "t0,t1,t2");
    assert_eq!(order, ["t2", "t1", "t0"]);
}

#[tokio::test]
async fn order_holds_past_the_static_depth() {
    for n in 1..=DEPTH + 5 {
        let stack = builder().toml_str(tags_toml(n)).build().unwrap();
        let (seen, order, _) = run(&stack).await;
        let expected: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
        assert_eq!(seen, expected.join(","), "{n} entries");
        let mut rev = expected.clone();
        rev.reverse();
        assert_eq!(order, rev, "{n} entries");
    }
}

#[tokio::test]
async fn timers_mix_with_custom_plugins_in_any_position() {
    let text = format!(
        "{}[[plugin]]\nuse = \"timer\"\nserver_timing_name = \"inner\"\n{}",
        tags_toml(2),
        "[[plugin]]\nuse = \"tag\"\nname = \"last\"\ntag = \"last\"\n"
    );
    let stack = builder()
        .toml_str(text)
        .plugin(
            PluginEntry::new("timer")
                .name("outer_timer")
                .set("server_timing_name", "code"),
        )
        .build()
        .unwrap();
    let (seen, order, headers) = run(&stack).await;
    assert_eq!(seen, "t0,t1,last");
    assert_eq!(order, ["last", "t1", "t0"]);
    let st: Vec<_> = headers.get_all("server-timing").iter().collect();
    assert_eq!(st.len(), 2);
    assert!(st[0].to_str().unwrap().starts_with("code;dur="), "{st:?}");
    assert!(st[1].to_str().unwrap().starts_with("inner;dur="), "{st:?}");
}

#[tokio::test]
async fn disabled_entries_are_validated_but_not_applied() {
    let text = "[[plugin]]\nuse = \"timer\"\nenabled = false\n".to_owned() + &tags_toml(1);
    let stack = builder().toml_str(text).build().unwrap();
    let (_, order, headers) = run(&stack).await;
    assert_eq!(order, ["t0"]);
    assert!(!headers.contains_key("x-response-time"));
    assert!(!stack.entries()[0].enabled);
    // Enabling it from code applies it.
    let text = "[[plugin]]\nuse = \"timer\"\nenabled = false\n";
    let stack = builder()
        .toml_str(text)
        .enabled("timer", true)
        .build()
        .unwrap();
    let (_, _, headers) = run(&stack).await;
    assert!(headers.contains_key("x-response-time"));
}

#[tokio::test]
async fn code_overrides_file_values() {
    let stack = builder()
        .toml_str("[[plugin]]\nuse = \"timer\"\nheader = \"x-file\"\n")
        .set("timer", "header", "x-code")
        .build()
        .unwrap();
    let (_, _, headers) = run(&stack).await;
    assert!(headers.contains_key("x-code"));
    assert!(!headers.contains_key("x-file"));
}

#[tokio::test]
async fn empty_stack_passes_through() {
    let stack = PluginStack::from_toml_str("").unwrap();
    let (body, order, headers) = run(&stack).await;
    assert_eq!((body.as_str(), order.len()), ("", 0));
    assert!(!headers.contains_key("x-response-time"));
}

#[test]
fn display_lists_order_names_state_and_settings() {
    let stack = builder()
        .toml_str(
            "[client_ip]\ntrusted_proxies = [\"10.0.0.0/8\"]\n\
             [[plugin]]\nuse = \"timer\"\nname = \"timing\"\ndigits = 1\n\
             [[plugin]]\nuse = \"tag\"\ntag = \"x\"\nenabled = false\n",
        )
        .build()
        .unwrap();
    let text = stack.to_string();
    assert!(text.contains("2 entries, 1 enabled"), "{text}");
    assert!(
        text.contains(" 1. timer  timing  enabled  x-response-time: 1 digits in ms"),
        "{text}"
    );
    assert!(
        text.contains(" 2. tag    tag     disabled tag = \"x\""),
        "{text}"
    );
    assert!(
        text.contains("x-forwarded-for from trusted proxies 10.0.0.0/8"),
        "{text}"
    );
}

#[test]
fn registering_a_taken_name_is_an_error() {
    let e = builder()
        .register("timer", |c: TagConfig, _ctx: &PluginContext| {
            Ok(tag_layer(c.tag))
        })
        .register("tag", |c: TagConfig, _ctx: &PluginContext| {
            Ok(tag_layer(c.tag))
        })
        .build()
        .unwrap_err();
    assert_eq!(e.problems().len(), 2);
    assert!(e.problems().iter().all(|p| p.kind == ProblemKind::Conflict));
}

#[test]
fn stack_types_are_clone_send_sync() {
    fn assert_all<T: Clone + Send + Sync + 'static>(_: &T) {}
    let stack = builder().toml_str(tags_toml(2)).build().unwrap();
    assert_all(&stack);
    assert_all(&stack.layer());
    assert_all(&stack.layer().layer(app()));
}

#[tokio::test]
async fn poll_ready_is_passed_through_every_slot() {
    for n in [0, 1, 2, 3, 5, 9] {
        let stack = builder().toml_str(tags_toml(n)).build().unwrap();
        let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        // The stack wraps infallible services; the mock's error type is boxed.
        let inner = mock.map_err(|e: crate::BoxError| -> Infallible { panic!("mock: {e}") });
        let mut svc = tower_test::mock::Spawn::new(stack.layer().layer(inner));
        handle.allow(0);
        assert!(
            svc.poll_ready::<Request<Body>>().is_pending(),
            "{n} entries"
        );
        handle.allow(1);
        assert!(svc.poll_ready::<Request<Body>>().is_ready(), "{n} entries");
        // A from_fn plugin calls the rest of the stack when its future is first polled.
        let fut = svc.call(Request::new(Body::empty()));
        let answer = async {
            let (_, send) = handle.next_request().await.unwrap();
            send.send_response(Response::new(Body::from("ok")));
        };
        let (res, ()) = tokio::join!(fut, answer);
        let res = res.unwrap();
        assert_eq!(res.headers().get_all("x-order").iter().count(), n);
    }
}

#[tokio::test]
async fn composes_with_service_builder() {
    let stack = builder()
        .toml_str("[[plugin]]\nuse = \"timer\"\n".to_owned() + &tags_toml(1))
        .build()
        .unwrap();
    let svc = tower::ServiceBuilder::new()
        .map_request(|req: Request<http_body_util::Full<bytes::Bytes>>| req)
        .layer(stack.layer())
        .service(app());
    let res = svc
        .oneshot(Request::new(http_body_util::Full::new(bytes::Bytes::new())))
        .await
        .unwrap();
    assert!(res.headers().contains_key("x-response-time"));
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "t0");
}

/// Sends `method path` (from a loopback peer) through `stack` over the echo app.
async fn send_to(stack: &PluginStack, method: &str, path: &str) -> (Response<()>, String) {
    let svc = stack.layer().layer(app());
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("origin", "https://app.example.com")
        .body(Body::empty())
        .unwrap();
    req.extensions_mut()
        .insert(std::net::SocketAddr::from(([127, 0, 0, 1], 40000)));
    let res = svc.oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (
        Response::from_parts(parts, ()),
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

fn has(res: &Response<()>, header: &str) -> bool {
    res.headers().contains_key(header)
}

#[tokio::test]
async fn when_applies_a_timer_to_some_paths_and_methods() {
    let stack = PluginStack::from_toml_str(
        "[[plugin]]\nuse = \"timer\"\n\
         when = { paths = [\"/api/**\"], except = [\"/api/health\"], methods = [\"GET\"] }\n",
    )
    .unwrap();
    assert!(has(
        &send_to(&stack, "GET", "/api/items").await.0,
        "x-response-time"
    ));
    for (method, path) in [("GET", "/"), ("GET", "/api/health"), ("POST", "/api/items")] {
        let (res, _) = send_to(&stack, method, path).await;
        assert!(!has(&res, "x-response-time"), "{method} {path}");
        assert!(!has(&res, "server-timing"), "{method} {path}");
    }
    let text = stack.to_string();
    assert!(
        text.contains("(when paths /api/**; except /api/health; methods GET)"),
        "{text}"
    );
    assert_eq!(
        stack.entries()[0].when.as_deref(),
        Some("paths /api/**; except /api/health; methods GET")
    );
}

#[tokio::test]
async fn when_skips_cors_outside_its_paths() {
    let stack = PluginStack::from_toml_str(
        "[[plugin]]\nuse = \"cors\"\nallow_origins = [\"https://app.example.com\"]\n\
         when = { except = [\"/public/**\"] }\n",
    )
    .unwrap();
    let (res, _) = send_to(&stack, "GET", "/api").await;
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let (res, _) = send_to(&stack, "GET", "/public/logo.png").await;
    assert!(!has(&res, "access-control-allow-origin"));
    assert!(!has(&res, "vary"));
}

#[tokio::test]
async fn when_limits_only_the_paths_it_names() {
    let stack = PluginStack::from_toml_str(
        "[[plugin]]\nuse = \"rate_limit\"\nquota = \"1/hour\"\n\
         when = { paths = [\"/login\"] }\n",
    )
    .unwrap();
    assert_eq!(send_to(&stack, "POST", "/login").await.0.status(), 200);
    assert_eq!(send_to(&stack, "POST", "/login").await.0.status(), 429);
    for _ in 0..3 {
        let (res, _) = send_to(&stack, "POST", "/other").await;
        assert_eq!(res.status(), 200);
        assert!(!has(&res, "ratelimit"));
    }
}

#[tokio::test]
async fn when_keeps_the_request_log_off_other_paths() {
    let stack = PluginStack::from_toml_str(
        "[[plugin]]\nuse = \"request_log\"\nwhen = { except = [\"/health\"] }\n",
    )
    .unwrap();
    assert!(has(&send_to(&stack, "GET", "/api").await.0, "x-request-id"));
    // A skipped entry does nothing at all: no line and no request id (its own `skip` key
    // still writes the id).
    assert!(!has(
        &send_to(&stack, "GET", "/health").await.0,
        "x-request-id"
    ));
}

#[tokio::test]
async fn when_keeps_other_paths_out_of_the_stats() {
    let stack = PluginStack::from_toml_str(
        "[[plugin]]\nuse = \"stats\"\nroutes = [\"/a\", \"/health\"]\nendpoint = \"/stats\"\n\
         when = { except = [\"/health\"] }\n",
    )
    .unwrap();
    send_to(&stack, "GET", "/a").await;
    send_to(&stack, "GET", "/health").await;
    let (res, body) = send_to(&stack, "GET", "/stats").await;
    assert_eq!(res.status(), 200, "{body}");
    let snap: serde_json::Value = serde_json::from_str(&body).unwrap();
    let routes = snap["routes"].as_array().unwrap();
    let count = |name: &str| {
        routes
            .iter()
            .find(|r| r["route"] == name)
            .map_or(0, |r| r["requests"].as_u64().unwrap())
    };
    assert_eq!((count("/a"), count("/health")), (1, 0), "{snap}");
}

#[tokio::test]
async fn when_applies_custom_plugins_in_static_and_erased_slots() {
    // Ten entries: the ninth and tenth are composed erased inside the last slot.
    let mut text = tags_toml(DEPTH + 2);
    for i in [0, DEPTH + 1] {
        text = text.replace(
            &format!("tag = \"t{i}\"\n"),
            &format!("tag = \"t{i}\"\nwhen = {{ paths = [\"/tagged\"] }}\n"),
        );
    }
    let stack = builder().toml_str(text).build().unwrap();
    let (_, seen) = send_to(&stack, "GET", "/tagged").await;
    let all: Vec<String> = (0..DEPTH + 2).map(|i| format!("t{i}")).collect();
    assert_eq!(seen, all.join(","));
    let (_, seen) = send_to(&stack, "GET", "/other").await;
    assert_eq!(seen, all[1..=DEPTH].join(","));
}

#[test]
fn a_bad_when_is_located_in_its_entry() {
    let e = PluginStack::from_toml_str(
        "[[plugin]]\nuse = \"timer\"\nwhen = { paths = [\"/a*\"], method = [\"GET\"] }\n",
    )
    .unwrap_err();
    let p = &e.problems()[0];
    assert_eq!(p.location.key, "when.method");
    assert_eq!(p.location.line, Some(3));
    let e = PluginStack::from_toml_str(
        "[[plugin]]\nuse = \"timer\"\n\n[[plugin]]\nuse = \"cors\"\nwhen = { paths = [\"/a*\"] }\n",
    )
    .unwrap_err();
    let p = &e.problems()[0];
    assert_eq!(
        (p.location.key.as_str(), p.location.line),
        ("when.paths[0]", Some(6))
    );
    assert_eq!(p.location.plugin.as_ref().unwrap().index, 1);
}

/// Each built-in's defaults are written twice, as its config's `Default` and its layer's: the
/// two must describe the same settings, unless the config has a required key (cors' origins,
/// rate_limit's quota), which its default leaves out on purpose.
macro_rules! defaults_agree {
    ($($variant:ident: $name:ident, $feature:literal, $layer:ty;)*) => {
        #[test]
        fn every_built_in_config_default_builds_its_layer_default() {
            $(if cfg!(feature = $feature) {
                defaults_of::<super::built_in::$name::Layer>(stringify!($name));
            })*
        }
    };
}

super::built_in::built_ins!(defaults_agree);

fn defaults_of<L>(name: &str)
where
    L: tower_plugins_core::Plugin + Default,
    L::Config: Default,
{
    let ctx = PluginContext::new(
        std::sync::Arc::new(tower_plugins_core::ClientIpResolver::new()),
        name,
        0,
    );
    match L::from_config(L::Config::default(), &ctx) {
        Ok(from_config) => assert_eq!(from_config.describe(), L::default().describe(), "{name}"),
        Err(e) => assert!(
            e.problems()
                .iter()
                .all(|p| p.kind == ProblemKind::MissingKey),
            "{name}: the default config is refused for more than a required key: {e}"
        ),
    }
}

fn timers_toml(n: usize) -> String {
    (0..n)
        .map(|i| format!("[[plugin]]\nuse = \"timer\"\nname = \"t{i}\"\n"))
        .collect()
}

/// The longest stack allowed serves requests on a thread with a tokio worker's default
/// stack (2 MiB), in a debug build whose frames are larger than a release build's.
#[test]
fn the_longest_stack_allowed_serves_on_a_worker_sized_stack() {
    let n = MAX_ENTRIES;
    let stack = builder().toml_str(tags_toml(n)).build().unwrap();
    let worker = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            rt.block_on(async {
                let (_, order, _) = run(&stack).await;
                order.len()
            })
        });
    assert_eq!(worker.unwrap().join().unwrap(), n);
}

#[test]
fn a_stack_past_the_limit_is_refused_at_the_first_entry_too_many() {
    let e = PluginStack::builder()
        .toml_str(timers_toml(MAX_ENTRIES + 3))
        .build()
        .unwrap_err();
    assert_eq!(e.problems().len(), 1, "{e}");
    let loc = &e.problems()[0].location;
    assert_eq!(loc.plugin.as_ref().map(|p| p.index), Some(MAX_ENTRIES));
    assert_eq!(loc.line, Some(3 * MAX_ENTRIES + 1), "{e}");
}

/// A stack `n` entries deep (at least two) with stats outermost (`/outer`) and innermost
/// (`/inner`), custom plugins and timers between: the stack keeps every level's future until
/// the body ends (two levels with the service inline, more behind a box), and the innermost stats of a stack past the
/// static depth is erased under a custom plugin.
fn stats_around(n: usize) -> PluginStack {
    let stats = |name: &str| {
        format!(
            "[[plugin]]\nuse = \"stats\"\nname = \"{name}\"\nroutes = [\"/a\"]\nendpoint = \"/{name}\"\n"
        )
    };
    let mut text = stats("outer");
    for i in 0..n - 2 {
        text += &match i % 2 {
            0 => format!("[[plugin]]\nuse = \"tag\"\nname = \"t{i}\"\ntag = \"t{i}\"\n"),
            _ => format!("[[plugin]]\nuse = \"timer\"\nname = \"timer{i}\"\n"),
        };
    }
    text += &stats("inner");
    builder().toml_str(text).build().unwrap()
}

/// The `route` of the stats at `endpoint`, through `svc`.
async fn stats_route<S>(svc: &S, endpoint: &str, route: &str) -> serde_json::Value
where
    S: Service<Request<Body>, Response = Response<ResponseBody<Body>>, Error = Infallible> + Clone,
{
    let mut req = Request::get(endpoint).body(Body::empty()).unwrap();
    // The endpoints answer loopback peers.
    req.extensions_mut()
        .insert(std::net::SocketAddr::from(([127, 0, 0, 1], 40000)));
    let res = svc.clone().oneshot(req).await.unwrap();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let snap: serde_json::Value = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{endpoint}: {e}: {}", String::from_utf8_lossy(&body)));
    let routes = snap["routes"].as_array().unwrap();
    (routes.iter().find(|r| r["route"] == route).cloned()).unwrap_or_else(|| panic!("{snap}"))
}

#[tokio::test]
async fn every_entry_sees_the_body_end_once_at_every_depth() {
    for n in [2, 3, 4, DEPTH, DEPTH + 2] {
        // Data and then gRPC trailers, so that the trailers reach every entry too.
        let app = service_fn(|req: Request<Body>| async move {
            let mut trailers = http::HeaderMap::new();
            trailers.insert("grpc-status", HeaderValue::from_static("5"));
            let mut frames = vec![Ok::<_, Infallible>(http_body::Frame::data(
                bytes::Bytes::from_static(b"hello"),
            ))];
            if req.version() == http::Version::HTTP_2 {
                frames.push(Ok(http_body::Frame::trailers(trailers)));
            }
            let body = http_body_util::StreamBody::new(tokio_stream::iter(frames));
            Ok::<_, Infallible>(Response::new(Body::new(body)))
        });
        let svc = stats_around(n).layer().layer(app);
        let get = || Request::get("/a").body(Body::empty()).unwrap();
        let res = svc.clone().oneshot(get()).await.unwrap();
        assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "hello");
        // Dropped before its body was read: aborted.
        drop(svc.clone().oneshot(get()).await.unwrap());
        let grpc = Request::post("/pkg.Svc/Call")
            .version(http::Version::HTTP_2)
            .header("content-type", "application/grpc")
            .body(Body::empty())
            .unwrap();
        let res = svc.clone().oneshot(grpc).await.unwrap();
        res.into_body().collect().await.unwrap();
        for endpoint in ["/outer", "/inner"] {
            let a = stats_route(&svc, endpoint, "/a").await;
            let seen = (
                &a["requests"],
                &a["aborted"],
                &a["in_flight"],
                &a["bytes_sent"],
            );
            let want = (&2.into(), &1.into(), &0.into(), &5.into());
            assert_eq!(seen, want, "{n} deep, {endpoint}: {a}");
            let call = stats_route(&svc, endpoint, "/pkg.Svc/Call").await;
            let seen = (&call["requests"], &call["by_grpc_status"]["NOT_FOUND"]);
            assert_eq!(seen, (&1.into(), &1.into()), "{n} deep, {endpoint}: {call}");
        }
    }
}

/// A run answering from its middle: the entries outside the one that answers see the answer,
/// the ones inside it and the service do not run.
#[tokio::test]
async fn a_run_answers_from_its_middle() {
    let stats = |name: &str| {
        format!(
            "[[plugin]]\nuse = \"stats\"\nname = \"{name}\"\nroutes = [\"/a\"]\nendpoint = \"/{name}\"\n"
        )
    };
    let text = stats("outer")
        + "[[plugin]]\nuse = \"timer\"\n\
           [[plugin]]\nuse = \"cors\"\nallow_origins = [\"https://app.example.com\"]\n"
        + &stats("inner");
    let stack = builder().toml_str(text).build().unwrap();
    // One level: the four entries are one run.
    assert_eq!(stack.steps.len(), 1);
    let svc = stack.layer().layer(app());
    let preflight = Request::builder()
        .method("OPTIONS")
        .uri("/a")
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "GET")
        .body(Body::empty())
        .unwrap();
    let res = svc.clone().oneshot(preflight).await.unwrap();
    assert_eq!(res.status(), 204);
    assert!(res.headers().contains_key("access-control-allow-methods"));
    // The timer is outside cors: it timed the answer.
    assert!(res.headers().contains_key("x-response-time"));
    res.into_body().collect().await.unwrap();
    let get = Request::get("/a")
        .header("origin", "https://app.example.com")
        .body(Body::empty())
        .unwrap();
    let res = svc.clone().oneshot(get).await.unwrap();
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert!(res.headers().contains_key("x-response-time"));
    res.into_body().collect().await.unwrap();
    let outer = stats_route(&svc, "/outer", "/a").await;
    assert_eq!(outer["requests"], 2, "{outer}");
    let inner = stats_route(&svc, "/inner", "/a").await;
    assert_eq!(inner["requests"], 1, "{inner}");
}

/// `when` inside a run: an entry outside it is skipped for that request, its neighbours not.
#[tokio::test]
async fn when_skips_one_entry_of_a_run() {
    let stack = PluginStack::from_toml_str(
        "[[plugin]]\nuse = \"timer\"\nheader = \"x-all\"\n\
         [[plugin]]\nuse = \"timer\"\nname = \"api\"\nheader = \"x-api\"\nwhen = { paths = [\"/api/**\"] }\n\
         [[plugin]]\nuse = \"cors\"\nallow_origins = [\"https://app.example.com\"]\n",
    )
    .unwrap();
    assert_eq!(stack.steps.len(), 1);
    let (res, _) = send_to(&stack, "GET", "/api/items").await;
    assert!(has(&res, "x-all") && has(&res, "x-api"));
    assert!(has(&res, "access-control-allow-origin"));
    let (res, _) = send_to(&stack, "GET", "/other").await;
    assert!(has(&res, "x-all") && !has(&res, "x-api"));
    assert!(has(&res, "access-control-allow-origin"));
}

/// Entries with hooks around one without (a custom plugin) make two runs, and the order
/// holds across them.
#[tokio::test]
async fn runs_split_around_an_entry_without_hooks() {
    let stack = builder()
        .toml_str(
            "[[plugin]]\nuse = \"timer\"\nheader = \"x-one\"\n\
             [[plugin]]\nuse = \"timer\"\nname = \"two\"\nheader = \"x-two\"\n\
             [[plugin]]\nuse = \"tag\"\ntag = \"mid\"\n\
             [[plugin]]\nuse = \"timer\"\nname = \"three\"\nheader = \"x-three\"\n\
             [[plugin]]\nuse = \"cors\"\nallow_origins = [\"https://app.example.com\"]\n",
        )
        .build()
        .unwrap();
    // A run, the custom entry, a run.
    assert_eq!(stack.steps.len(), 3);
    let (res, body) = send_to(&stack, "GET", "/x").await;
    for h in ["x-one", "x-two", "x-three", "access-control-allow-origin"] {
        assert!(has(&res, h), "{h}");
    }
    assert_eq!(body, "mid");
}
