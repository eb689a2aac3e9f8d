//! The auth plugin in the demo stack, over real loopback sockets: the login flow a browser
//! and an API client go through.
#![cfg(all(feature = "auth", feature = "axum", feature = "timer"))]

mod common;

#[path = "../examples/shared/app.rs"]
mod app;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;

use common::{demo_stack, get, send, spawn_axum};

fn post(
    addr: std::net::SocketAddr,
    path: &str,
    body: &str,
    cookie: Option<&str>,
) -> Request<Full<Bytes>> {
    let mut b = Request::post(path)
        .header("host", addr.to_string())
        .header("origin", format!("http://{addr}"))
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        b = b.header("cookie", c);
    }
    b.body(Full::new(Bytes::from(body.to_owned()))).unwrap()
}

#[tokio::test]
async fn the_demo_logs_a_user_in_and_out() {
    let server = spawn_axum(app::router().layer(demo_stack().layer())).await;
    let addr = server.addr;
    let nav = [("sec-fetch-mode", "navigate")];

    let (head, _) = get(addr, "/account", &nav).await;
    assert_eq!(head.status, 303);
    assert_eq!(head.headers["location"], "/auth/login?next=%2Faccount");
    let (head, body) = get(addr, "/api/me", &[]).await;
    assert_eq!(head.status, 401);
    assert!(String::from_utf8_lossy(&body).contains("log in first"));
    let (head, body) = get(addr, "/auth/login?next=%2Faccount", &nav).await;
    assert_eq!(head.status, 200);
    assert!(String::from_utf8_lossy(&body).contains("name=\"password\""));

    let (head, _) = send(
        addr,
        post(
            addr,
            "/auth/login",
            "username=demo&password=wrong&next=%2Faccount",
            None,
        ),
    )
    .await;
    assert_eq!(
        head.headers["location"],
        "/auth/login?error=1&next=%2Faccount"
    );
    let (head, _) = send(
        addr,
        post(
            addr,
            "/auth/login",
            "username=demo&password=demo-password&next=%2Faccount",
            None,
        ),
    )
    .await;
    assert_eq!(head.status, 303);
    assert_eq!(head.headers["location"], "/account");
    let set = head.headers["set-cookie"].to_str().unwrap();
    let cookie = set.split(';').next().unwrap().to_owned();

    let (head, body) = get(addr, "/account", &[("cookie", &cookie)]).await;
    assert_eq!(head.status, 200);
    assert!(String::from_utf8_lossy(&body).contains("Signed in as demo"));
    let (_, body) = get(addr, "/api/me", &[("cookie", &cookie)]).await;
    assert_eq!(&body[..], br#"{"roles":[],"user":"demo"}"#);

    let (head, _) = send(addr, post(addr, "/auth/logout", "", Some(&cookie))).await;
    assert_eq!(head.status, 303);
    let (head, _) = get(addr, "/api/me", &[("cookie", &cookie)]).await;
    assert_eq!(head.status, 401, "the session ended on the server");
}
