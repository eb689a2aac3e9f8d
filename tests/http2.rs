//! The demo stack over HTTP/2 (h2c on loopback): `:authority` instead of `Host` (the auth
//! plugin's same-origin check), several `Cookie` headers in one request, a CORS preflight,
//! the timer's and request id's headers, and the whole login flow.
#![cfg(all(
    feature = "auth",
    feature = "axum",
    feature = "timer",
    feature = "cors"
))]

mod common;

#[path = "../examples/shared/app.rs"]
mod app;

use bytes::Bytes;
use http::{Request, Version};
use http_body_util::Full;

use common::{demo_stack, send, send_h2, spawn_axum};

fn h2(method: &str, url: String, headers: &[(&str, &str)], body: &str) -> Request<Full<Bytes>> {
    let mut b = Request::builder()
        .method(method)
        .uri(url)
        .version(Version::HTTP_2);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Full::new(Bytes::from(body.to_owned()))).unwrap()
}

#[tokio::test]
async fn the_demo_over_http2_logs_in_and_out_with_authority_and_split_cookies() {
    let server = spawn_axum(app::router().layer(demo_stack().layer())).await;
    let addr = server.addr;
    let url = |path: &str| format!("http://{addr}{path}");

    let (head, _) = send_h2(addr, h2("GET", url("/"), &[], "")).await;
    assert_eq!((head.status.as_u16(), head.version), (200, Version::HTTP_2));
    assert!(head.headers.contains_key("x-response-time"));
    assert!(head.headers.contains_key("x-request-id"));

    // The login post names its origin; the server knows its own only from `:authority`.
    let form = [
        ("origin", &*format!("http://{addr}")),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    let body = "username=demo&password=demo-password&next=%2Faccount";
    let (head, _) = send_h2(addr, h2("POST", url("/auth/login"), &form, body)).await;
    assert_eq!(head.status, 303, "same-origin through :authority");
    assert_eq!(head.headers["location"], "/account");
    let set = head.headers["set-cookie"].to_str().unwrap();
    let session = set.split(';').next().unwrap().to_owned();

    // HTTP/2 clients send one `cookie` field per pair (RFC 9113 §8.2.3).
    let cookies = [
        ("cookie", "theme=dark"),
        ("cookie", &*session),
        ("cookie", "a=b"),
    ];
    let (head, body) = send_h2(addr, h2("GET", url("/api/me"), &cookies, "")).await;
    assert_eq!(head.status, 200);
    assert_eq!(&body[..], br#"{"roles":[],"user":"demo"}"#);

    let preflight = [
        ("origin", "http://localhost:5173"),
        ("access-control-request-method", "POST"),
        ("access-control-request-headers", "content-type"),
    ];
    let (head, _) = send_h2(addr, h2("OPTIONS", url("/api/items"), &preflight, "")).await;
    assert_eq!(head.status, 204);
    assert_eq!(
        head.headers["access-control-allow-origin"],
        "http://localhost:5173"
    );

    // A post from another site is refused, over HTTP/2 as over HTTP/1.1.
    let evil = [("origin", "http://evil.example"), ("cookie", &*session)];
    let (head, _) = send_h2(addr, h2("POST", url("/auth/logout"), &evil, "")).await;
    assert_eq!(head.status, 403);
    let ours = [
        ("origin", &*format!("http://{addr}")),
        ("cookie", &*session),
    ];
    let (head, _) = send_h2(addr, h2("POST", url("/auth/logout"), &ours, "")).await;
    assert_eq!(head.status, 303);
    let (head, _) = send_h2(addr, h2("GET", url("/api/me"), &cookies, "")).await;
    assert_eq!(head.status, 401, "the session ended on the server");

    // The same server still speaks HTTP/1.1.
    let req = Request::get("/").header("host", addr.to_string());
    let (head, _) = send(addr, req.body(Full::default()).unwrap()).await;
    assert_eq!(
        (head.status.as_u16(), head.version),
        (200, Version::HTTP_11)
    );
}
