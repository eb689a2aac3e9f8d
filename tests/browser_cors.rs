//! CORS in a real browser: headless Chromium loads a page from one loopback origin whose
//! script calls `fetch()` against servers on other ports wrapped by the cors plugin, and
//! reports what the browser allowed and refused.
//!
//! Needs Debian's `chromium` (`.ci/run` installs it). Without it the test says it was skipped,
//! unless `TOWER_PLUGINS_REQUIRE_BROWSER=1`, which makes a missing browser a failure.
#![cfg(feature = "cors")]

mod common;

use std::net::SocketAddr;

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::Html;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use tokio::sync::mpsc;
use tower_plugins::PluginStack;

use common::{Server, browse_for, chromium, serve_axum, spawn_axum};

/// The API under test: what a page on another origin may call.
fn api(stack_toml: &str) -> Router {
    let stack = PluginStack::from_toml_str(stack_toml).expect("valid CORS config");
    Router::new()
        .route(
            "/simple",
            get(|| async { ([("x-exposed", "yes"), ("x-hidden", "secret")], "simple") }),
        )
        .route(
            "/json",
            post(|Json(v): Json<serde_json::Value>| async move {
                let n = v["n"].as_i64().unwrap_or(0);
                Json(serde_json::json!({ "n": n + 1 }))
            })
            .delete(|| async { "deleted" }),
        )
        .route(
            "/custom",
            put(|headers: HeaderMap| async move {
                headers
                    .get("x-custom")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("missing")
                    .to_owned()
            }),
        )
        .route(
            "/login",
            get(|| async {
                (
                    [(header::SET_COOKIE, "sid=abc; Path=/; HttpOnly")],
                    "logged in",
                )
            }),
        )
        .route(
            "/whoami",
            get(|headers: HeaderMap| async move {
                headers
                    .get(header::COOKIE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("no cookie")
                    .to_owned()
            }),
        )
        .layer(stack.layer())
}

const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>cors test</title></head><body>
<pre id="out">running</pre>
<script>
const B = "__B__", C = "__C__";
const results = {};
async function attempt(name, fn) {
  try { results[name] = await fn(); } catch (e) { results[name] = "error: " + e.name; }
}
(async () => {
  await attempt("simple_get", async () => {
    const r = await fetch(B + "/simple");
    return { status: r.status, body: await r.text(),
             exposed: r.headers.get("x-exposed"), hidden: r.headers.get("x-hidden") };
  });
  await attempt("json_post", async () => {
    const r = await fetch(B + "/json", { method: "POST",
      headers: { "content-type": "application/json" }, body: JSON.stringify({ n: 41 }) });
    return { status: r.status, body: await r.json() };
  });
  await attempt("custom_header", async () => {
    const r = await fetch(B + "/custom", { method: "PUT", headers: { "x-custom": "hello" } });
    return { status: r.status, body: await r.text() };
  });
  await attempt("credentials", async () => {
    await fetch(B + "/login", { credentials: "include" });
    const r = await fetch(B + "/whoami", { credentials: "include" });
    return { status: r.status, body: await r.text() };
  });
  await attempt("disallowed_method", async () => {
    const r = await fetch(B + "/json", { method: "DELETE" });
    return { status: r.status };
  });
  await attempt("disallowed_header", async () => {
    const r = await fetch(B + "/simple", { headers: { "x-secret": "1" } });
    return { status: r.status };
  });
  await attempt("disallowed_origin", async () => {
    const r = await fetch(C + "/simple");
    return { status: r.status };
  });
  document.getElementById("out").textContent = JSON.stringify(results);
  await fetch("/results", { method: "POST",
    headers: { "content-type": "application/json" }, body: JSON.stringify(results) });
})();
</script></body></html>"#;

/// Serves the test page on `listener`; the page posts its results to `/results`.
fn serve_page(
    listener: tokio::net::TcpListener,
    b: SocketAddr,
    c: SocketAddr,
) -> (Server, mpsc::Receiver<serde_json::Value>) {
    let (tx, rx) = mpsc::channel::<serde_json::Value>(1);
    let page = PAGE
        .replace("__B__", &format!("http://{b}"))
        .replace("__C__", &format!("http://{c}"));
    let app = Router::new()
        .route("/", get(move || async move { Html(page) }))
        .route(
            "/results",
            post(
                |State(tx): State<mpsc::Sender<serde_json::Value>>,
                 Json(v): Json<serde_json::Value>| async move {
                    let _ = tx.send(v).await;
                    "thanks"
                },
            ),
        )
        .with_state(tx);
    (serve_axum(listener, app), rx)
}

#[tokio::test]
async fn chromium_allows_and_refuses_what_the_rules_say() {
    let Some(browser) = chromium() else {
        return;
    };

    // The page's origin must be known before the APIs that allow it are built: bind its
    // listener first and keep it.
    let page_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let page_origin = format!("http://{}", page_listener.local_addr().unwrap());

    let b = spawn_axum(api(&format!(
        r#"
        [[plugin]]
        use = "cors"
        allow_origins = ["{page_origin}"]
        allow_methods = ["GET", "POST", "PUT"]
        allow_headers = ["content-type", "x-custom"]
        expose_headers = ["x-exposed"]
        allow_credentials = true
        max_age = "1m"
        "#
    )))
    .await;
    let c = spawn_axum(api(
        "[[plugin]]\nuse = \"cors\"\nallow_origins = [\"https://example.com\"]\n",
    ))
    .await;

    let (page, mut results) = serve_page(page_listener, b.addr, c.addr);

    let url = format!("http://{}/", page.addr);
    let r = browse_for(&browser, &url, "cors", &mut results).await;
    eprintln!("browser results: {r}");

    // Allowed: a simple GET, with the exposed header readable and the other one not.
    assert_eq!(r["simple_get"]["status"], 200, "{r}");
    assert_eq!(r["simple_get"]["body"], "simple", "{r}");
    assert_eq!(r["simple_get"]["exposed"], "yes", "{r}");
    assert!(r["simple_get"]["hidden"].is_null(), "{r}");
    // Allowed after a preflight: a JSON POST and a PUT with a custom header.
    assert_eq!(r["json_post"]["body"]["n"], 42, "{r}");
    assert_eq!(r["custom_header"]["body"], "hello", "{r}");
    // Credentials: the cookie set on the first call came back on the second.
    assert_eq!(r["credentials"]["body"], "sid=abc", "{r}");
    // Refused by the browser: a method, a header and an origin the rules do not allow.
    assert_eq!(r["disallowed_method"], "error: TypeError", "{r}");
    assert_eq!(r["disallowed_header"], "error: TypeError", "{r}");
    assert_eq!(r["disallowed_origin"], "error: TypeError", "{r}");
}
