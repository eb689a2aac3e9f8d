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

#[cfg(feature = "auth-redis")]
#[path = "support/redis.rs"]
mod redis_server;

/// The demo's stack with its sessions in Redis under `prefix`, and a fixed secret.
#[cfg(feature = "auth-redis")]
fn demo_on_redis(prefix: &str) -> tower_plugins::PluginStack {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/plugins.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let store = format!(
        "secret = \"a shared secret every instance of the app is given\"\n\
         store = {{ redis = \"{}\", prefix = \"{prefix}\" }}",
        redis_server::redis_url()
    );
    let text = text.replace("secret = \"${SESSION_SECRET:-generate}\"", &store);
    tower_plugins::PluginStack::from_toml_str(&text).expect("the demo config on Redis is valid")
}

/// Two instances of the demo sharing Redis: a login on one is a session on the other, and a
/// logout on the other ends it for both.
#[cfg(feature = "auth-redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_redis_share_sessions() {
    let Some(conn) = redis_server::admin().await else {
        return;
    };
    let prefix = redis_server::Prefix::new(&conn, "demo-sessions");
    let one = spawn_axum(app::router().layer(demo_on_redis(&prefix.prefix).layer())).await;
    let two = spawn_axum(app::router().layer(demo_on_redis(&prefix.prefix).layer())).await;
    let form = "username=demo&password=demo-password";
    let (head, _) = send(one.addr, post(one.addr, "/auth/login", form, None)).await;
    assert_eq!(head.status, 303);
    let set = head.headers["set-cookie"].to_str().unwrap();
    let cookie = set.split(';').next().unwrap().to_owned();

    let (head, body) = get(two.addr, "/api/me", &[("cookie", &cookie)]).await;
    assert_eq!(head.status, 200);
    assert_eq!(&body[..], br#"{"roles":[],"user":"demo"}"#);
    let (head, _) = send(two.addr, post(two.addr, "/auth/logout", "", Some(&cookie))).await;
    assert_eq!(head.status, 303);
    let (head, _) = get(one.addr, "/api/me", &[("cookie", &cookie)]).await;
    assert_eq!(head.status, 401, "logged out everywhere");
    prefix.cleanup().await;
}
