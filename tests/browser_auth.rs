//! The auth plugin in a real browser: headless Chromium loads a test page from the app's own
//! origin that drives an iframe through the login flow, calls the API with `fetch()`, and
//! opens a page of another site (`localhost` is another site than `127.0.0.1`) whose form
//! posts to the app; the page reports what it saw, and the app what reached its handler.
//!
//! Needs Debian's `chromium` (`.ci/run` installs it). Without it the test says it was skipped,
//! unless `TOWER_PLUGINS_REQUIRE_BROWSER=1`, which makes a missing browser a failure.
#![cfg(all(feature = "auth", feature = "axum"))]

mod common;

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::response::Html;
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::sync::mpsc;
use tower_plugins::PluginStack;
use tower_plugins::auth::CurrentUser;

use common::{browse_for, chromium, serve_axum, spawn_axum};

const STACK: &str = r#"
[[plugin]]
use = "auth"
secret = "a browser test secret, long enough and varied enough"

[plugin.users]
# demo-password
demo = "$argon2id$v=19$m=19456,t=2,p=1$R+1ymIQMHZU30UArzKqxFg$0QqdGCSzcRe1SUu3p0BJTrpKie8PFuqV8AI9Z0fpk/E"

[[plugin.rules]]
paths = ["/account"]

[[plugin.rules]]
paths = ["/api/**"]
unauthenticated = "401"
"#;

const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>auth test</title></head><body>
<iframe id="f" name="f"></iframe>
<script>
const EVIL = "__EVIL__";
const results = {};
const frame = document.getElementById("f");
const next = () => new Promise(r => { frame.onload = () => r(frame.contentWindow); });
const load = (url) => { const p = next(); frame.src = url; return p; };
async function logIn(w) {
  const d = w.document;
  d.querySelector("input[name=username]").value = "demo";
  d.querySelector("input[name=password]").value = "demo-password";
  const p = next();
  d.querySelector("form").submit();
  return p;
}
function where(w) { try { return w.location.pathname + w.location.search; } catch (e) { return "another origin"; } }
(async () => {
  try {
    let w = await load("/account");
    results.redirected_to = where(w);
    w = await logIn(w);
    results.after_login = where(w);
    results.account_text = w.document.body.textContent;
    results.document_cookie = document.cookie;
    let r = await fetch("/api/me");
    results.me_status = r.status;
    results.me = await r.text();
    r = await fetch("/api/transfer", { method: "POST" });
    results.same_origin_post = r.status;
    w = await load(EVIL + "/evil");
    w = await next();
    results.cross_site_landed = where(w);
    w = await load("/auth/login?next=//evil.example");
    w = await logIn(w);
    results.evil_next_landed = where(w);
    r = await fetch("/auth/logout", { method: "POST" });
    results.logout_status = r.status;
    r = await fetch("/api/me");
    results.me_after_logout = r.status;
  } catch (e) {
    results.error = String(e);
  }
  await fetch("/results", { method: "POST",
    headers: { "content-type": "application/json" }, body: JSON.stringify(results) });
})();
</script></body></html>"#;

/// A page of another site whose form posts to the app as soon as it loads.
const EVIL_PAGE: &str = r#"<!doctype html><html><body>
<form method="post" action="__APP__/api/transfer"><input name="to" value="mallory"></form>
<script>window.addEventListener("load", () => setTimeout(() => document.forms[0].submit(), 0));</script>
</body></html>"#;

#[derive(Clone)]
struct App {
    results: mpsc::Sender<serde_json::Value>,
    transfers: Arc<Mutex<Vec<String>>>,
    page: Arc<String>,
}

#[tokio::test]
async fn chromium_logs_in_through_the_form_and_cross_site_posts_do_not_act() {
    let Some(browser) = chromium() else {
        return;
    };
    let app_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app_addr = app_listener.local_addr().unwrap();
    // The other site: `localhost`, a different site from `127.0.0.1` for SameSite.
    let evil =
        spawn_axum(Router::new().route(
            "/evil",
            get(move || async move {
                Html(EVIL_PAGE.replace("__APP__", &format!("http://{app_addr}")))
            }),
        ))
        .await;
    let evil_origin = format!("http://localhost:{}", evil.addr.port());

    let (tx, mut results) = mpsc::channel(1);
    let state = App {
        results: tx,
        transfers: Arc::default(),
        page: Arc::new(PAGE.replace("__EVIL__", &evil_origin)),
    };
    let transfers = state.transfers.clone();
    let stack = PluginStack::from_toml_str(STACK).expect("a valid auth config");
    let app = Router::new()
        .route("/", get(|| async { "home" }))
        .route(
            "/test",
            get(|State(s): State<App>| async move { Html((*s.page).clone()) }),
        )
        .route(
            "/account",
            get(|user: CurrentUser| async move { format!("Signed in as {}", user.id) }),
        )
        .route(
            "/api/me",
            get(|user: CurrentUser| async move { Json(serde_json::json!({ "user": &*user.id })) }),
        )
        .route(
            "/api/transfer",
            post(|State(s): State<App>, user: CurrentUser| async move {
                s.transfers.lock().unwrap().push(user.id.to_string());
                "done"
            }),
        )
        .route(
            "/results",
            post(
                |State(s): State<App>, Json(v): Json<serde_json::Value>| async move {
                    let _ = s.results.send(v).await;
                    "thanks"
                },
            ),
        )
        .with_state(state)
        .layer(stack.layer());
    let server = serve_axum(app_listener, app);

    let url = format!("http://{}/test", server.addr);
    let r = browse_for(&browser, &url, "auth", &mut results).await;
    eprintln!("browser results: {r}");

    assert!(r.get("error").is_none(), "{r}");
    assert_eq!(r["redirected_to"], "/auth/login?next=%2Faccount", "{r}");
    assert_eq!(r["after_login"], "/account", "{r}");
    assert_eq!(r["account_text"], "Signed in as demo", "{r}");
    assert_eq!(
        r["document_cookie"], "",
        "the session cookie is HttpOnly: {r}"
    );
    assert_eq!(r["me_status"], 200, "{r}");
    assert_eq!(r["same_origin_post"], 200, "{r}");
    assert_eq!(
        r["evil_next_landed"], "/",
        "an unsafe next goes to after_login: {r}"
    );
    assert_eq!(r["me_after_logout"], 401, "{r}");
    // Only the page's own post reached the handler: the other site's form carried no
    // session (SameSite=Lax) or was refused.
    assert_eq!(*transfers.lock().unwrap(), ["demo"], "{r}");
}
