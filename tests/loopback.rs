//! The stack built from TOML, driving the demo axum app and a plain hyper server over real
//! loopback sockets.
#![cfg(feature = "timer")]

mod common;

#[path = "../examples/shared/app.rs"]
mod app;

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use tower::{Layer, service_fn};
use tower_plugins::{Body, Next, PluginContext, PluginStack, from_fn};

use common::{demo_stack, get, get_over, send, spawn_axum, spawn_hyper};

fn response_time_ms(parts: &http::response::Parts) -> f64 {
    let v = parts.headers["x-response-time"].to_str().unwrap();
    let number = v.strip_suffix("ms").expect("a ms suffix");
    let (_, decimals) = number.split_once('.').expect("decimals");
    assert_eq!(decimals.len(), 3, "{v}");
    number.parse().unwrap()
}

#[tokio::test]
async fn demo_app_answers_with_timing_headers() {
    let server = spawn_axum(app::router().layer(demo_stack().layer())).await;

    let (parts, body) = get(server.addr, "/", &[]).await;
    assert_eq!(parts.status, 200);
    assert!(body.starts_with(b"tower-plugins demo"));
    response_time_ms(&parts);
    let st = parts.headers["server-timing"].to_str().unwrap();
    assert!(
        st.starts_with("total;dur=") && st.ends_with(";desc=\"demo\""),
        "{st}"
    );

    // A known-length body keeps its Content-Length through the stack (size_hint forwarded).
    let (parts, body) = get(server.addr, "/large", &[]).await;
    assert!(body.len() > 2000, "{}", body.len());
    assert_eq!(
        parts.headers["content-length"],
        body.len().to_string().as_str()
    );
    assert!(!parts.headers.contains_key("transfer-encoding"));
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["rows"].as_array().unwrap().len(), 50);

    let (parts, _) = get(server.addr, "/health", &[]).await;
    assert_eq!(parts.status, 200);
    let (parts, body) = get(server.addr, "/profile", &[]).await;
    assert_eq!(parts.status, 200);
    assert!(String::from_utf8_lossy(&body).contains("<h1>Your profile</h1>"));
}

#[tokio::test]
async fn slow_route_time_and_handler_entries() {
    let server = spawn_axum(app::router().layer(demo_stack().layer())).await;
    let (parts, body) = get(server.addr, "/slow?ms=60", &[]).await;
    assert_eq!(body, "slept 60 ms\n");
    assert!(response_time_ms(&parts) >= 60.0);
    let st = parts.headers["server-timing"].to_str().unwrap();
    let (sleep, total) = st.split_once(", ").unwrap();
    assert!(sleep.starts_with("sleep;dur="), "{st}");
    let total_ms: f64 = total
        .strip_prefix("total;dur=")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(total_ms >= 60.0, "{st}");
}

#[tokio::test]
async fn json_post_through_the_stack() {
    let server = spawn_axum(app::router().layer(demo_stack().layer())).await;
    let req = Request::post("/api/items")
        .header("host", "x")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(r#"{"name":"plum"}"#)))
        .unwrap();
    let (parts, body) = send(server.addr, req).await;
    assert_eq!(parts.status, 201);
    let item: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(item["name"], "plum");
    let (_, body) = get(server.addr, "/api/items", &[]).await;
    let list: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 3);
    assert!(parts.headers.contains_key("x-response-time"));
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NoConfig {}

/// The stack with a custom plugin that reports the client IP the shared resolver sees.
fn hyper_stack(client_ip: &str) -> PluginStack {
    PluginStack::builder()
        .register("show_ip", |_: NoConfig, ctx: &PluginContext| {
            let resolver = ctx.client_ip().clone();
            Ok(from_fn(move |req: Request<Body>, next: Next| {
                let ip = resolver
                    .resolve(&req)
                    .map_or("none".to_owned(), |ip| ip.to_string());
                async move {
                    let mut res = next.run(req).await;
                    res.headers_mut().insert("x-client-ip", ip.parse().unwrap());
                    res
                }
            }))
        })
        .toml_str(format!(
            "{client_ip}\n[[plugin]]\nuse = \"timer\"\n\n[[plugin]]\nuse = \"show_ip\"\n"
        ))
        .build()
        .unwrap()
}

async fn hello(_req: Request<Body>) -> Result<Response<Body>, Infallible> {
    Ok(Response::new(Body::from("hello from hyper")))
}

#[tokio::test]
async fn plain_hyper_server_with_trusted_and_untrusted_proxies() {
    for h2 in [false, true] {
        // No trusted proxy: a forged X-Forwarded-For is ignored; the peer is the client.
        let stack = hyper_stack("");
        let server = spawn_hyper(move || stack.layer().layer(service_fn(hello))).await;
        let forged = [("x-forwarded-for", "203.0.113.66")];
        let (parts, body) = get_over(h2, server.addr, "/", &forged).await;
        assert_eq!(body, "hello from hyper");
        response_time_ms(&parts);
        assert_eq!(parts.headers["x-client-ip"], "127.0.0.1", "h2: {h2}");

        // Loopback trusted as a proxy: the rightmost untrusted address is the client.
        let stack = hyper_stack("[client_ip]\ntrusted_proxies = [\"127.0.0.1/32\"]");
        let server = spawn_hyper(move || stack.layer().layer(service_fn(hello))).await;
        let xff = [("x-forwarded-for", "6.6.6.6, 203.0.113.7")];
        let (parts, _) = get_over(h2, server.addr, "/", &xff).await;
        assert_eq!(parts.headers["x-client-ip"], "203.0.113.7", "h2: {h2}");
        // A malformed header from the trusted proxy falls back to the peer.
        let bad = [("x-forwarded-for", "garbage")];
        let (parts, _) = get_over(h2, server.addr, "/", &bad).await;
        assert_eq!(parts.headers["x-client-ip"], "127.0.0.1", "h2: {h2}");
    }
}

#[tokio::test]
async fn hostile_requests_get_responses() {
    let server = spawn_axum(app::router().layer(demo_stack().layer())).await;
    let huge = "9".repeat(7000);
    let xff = format!("{huge}, 1.2.3.4");
    let (parts, _) = get(
        server.addr,
        "/",
        &[
            ("x-forwarded-for", xff.as_str()),
            ("forwarded", "for=\"[::1"),
        ],
    )
    .await;
    assert_eq!(parts.status, 200);
    let (parts, _) = get(server.addr, "/nope/../../etc/passwd", &[]).await;
    assert_eq!(parts.status, 404);
    assert!(parts.headers.contains_key("x-response-time"));
}

#[cfg(feature = "cors")]
#[tokio::test]
async fn demo_cors_over_a_real_socket() {
    let server = spawn_axum(app::router().layer(demo_stack().layer())).await;
    let dev = "http://localhost:5173";
    let preflight = Request::options("/api/items")
        .header("host", "x")
        .header("origin", dev)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (parts, body) = send(server.addr, preflight).await;
    assert_eq!(parts.status, 204);
    assert!(body.is_empty());
    assert_eq!(parts.headers["access-control-allow-origin"], dev);
    assert_eq!(parts.headers["access-control-allow-methods"], "GET, POST");
    assert_eq!(
        parts.headers["access-control-allow-headers"],
        "content-type"
    );
    assert_eq!(parts.headers["access-control-max-age"], "600");

    let (parts, _) = get(server.addr, "/api/items", &[("origin", dev)]).await;
    assert_eq!(parts.headers["access-control-allow-origin"], dev);
    assert_eq!(
        parts.headers["access-control-expose-headers"],
        "x-response-time, server-timing"
    );
    assert!(parts.headers.contains_key("x-response-time"));

    let (parts, _) = get(
        server.addr,
        "/api/items",
        &[("origin", "https://evil.example")],
    )
    .await;
    assert!(!parts.headers.contains_key("access-control-allow-origin"));
    assert_eq!(parts.headers["vary"], "origin");
}

/// The stack around the whole router (before routing) rather than `Router::layer` (per route):
/// requests that match no route are measured and answered with CORS too.
#[cfg(feature = "cors")]
#[tokio::test]
async fn stack_around_the_whole_router() {
    use std::net::SocketAddr;
    // `axum::serve` wants axum's own response body: box the stack's once.
    let app = tower::ServiceExt::<axum::extract::Request>::map_response(
        demo_stack().layer().layer(app::router()),
        |res: Response<tower_plugins::stack::ResponseBody<Body>>| res.map(Body::new),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let make = axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<
        SocketAddr,
    >(app);
    let server = tokio::spawn(async move { axum::serve(listener, make).await.unwrap() });

    let (parts, _) = get(
        addr,
        "/no/such/route",
        &[("origin", "http://localhost:8080")],
    )
    .await;
    assert_eq!(parts.status, 404);
    assert!(parts.headers.contains_key("x-response-time"));
    assert_eq!(
        parts.headers["access-control-allow-origin"],
        "http://localhost:8080"
    );
    server.abort();
}

/// The request log over a real socket: the client's address, the bytes actually sent, and
/// the request id handed back.
#[cfg(feature = "request-log")]
#[tokio::test]
async fn request_log_writes_combined_lines_for_real_connections() {
    let dir = std::env::temp_dir().join(format!("tp-loopback-log-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("access.log");
    let stack = PluginStack::from_toml_str(&format!(
        "[[plugin]]\nuse = \"request_log\"\nformat = \"combined\"\nsink = {{ file = {:?} }}\n\
         [[plugin]]\nuse = \"timer\"\n",
        path.display().to_string()
    ))
    .unwrap();
    let server = spawn_axum(app::router().layer(stack.layer())).await;
    let (parts, body) = get(
        server.addr,
        "/large",
        &[("user-agent", "loopback-test/1.0")],
    )
    .await;
    assert!(parts.headers.contains_key("x-request-id"));
    let mut text = String::new();
    for _ in 0..200 {
        text = std::fs::read_to_string(&path).unwrap_or_default();
        if !text.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    std::fs::remove_dir_all(&dir).unwrap();
    let line = text.lines().next().expect("a line");
    assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
    assert!(
        line.contains(&format!(
            "\"GET /large HTTP/1.1\" 200 {} \"-\" \"loopback-test/1.0\"",
            body.len()
        )),
        "{line}"
    );
}

#[tokio::test]
async fn when_restricts_entries_to_their_routes_over_a_socket() {
    let stack = PluginStack::from_toml_str(
        "[[plugin]]\nuse = \"request_log\"\nwhen = { except = [\"/health\"] }\n\
         [[plugin]]\nuse = \"timer\"\nwhen = { paths = [\"/api/**\"], methods = [\"GET\"] }\n\
         [[plugin]]\nuse = \"rate_limit\"\nquota = \"2/hour\"\nwhen = { paths = [\"/profile\"] }\n",
    )
    .unwrap();
    let server = spawn_axum(app::router().layer(stack.layer())).await;
    let (parts, _) = get(server.addr, "/api/items", &[]).await;
    response_time_ms(&parts);
    assert!(parts.headers.contains_key("x-request-id"));
    assert!(!parts.headers.contains_key("ratelimit"));
    let (parts, body) = get(server.addr, "/health", &[]).await;
    assert_eq!(body, "ok");
    for skipped in ["x-request-id", "x-response-time", "ratelimit"] {
        assert!(!parts.headers.contains_key(skipped), "{skipped}");
    }
    let statuses: Vec<u16> = statuses_of(server.addr, "/profile", 3).await;
    assert_eq!(statuses, [200, 200, 429]);
}

async fn statuses_of(addr: std::net::SocketAddr, path: &str, n: usize) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(get(addr, path, &[]).await.0.status.as_u16());
    }
    out
}
