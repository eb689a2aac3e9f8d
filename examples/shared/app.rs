//! The demo application, shared by the `demo` example and the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use tower_plugins::timer::ServerTiming;

/// An item of the demo's in-memory list.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Item {
    pub id: u64,
    pub name: String,
}

#[derive(Debug, Deserialize)]
pub struct NewItem {
    pub name: String,
}

#[derive(Clone, Default)]
struct Items(Arc<Mutex<Vec<Item>>>);

/// The longest `/slow?ms=N` sleeps, so a typo cannot hold a connection for hours.
pub const MAX_SLOW_MS: u64 = 10_000;

/// The demo routes.
pub fn router() -> Router {
    let items = Items::default();
    items.0.lock().unwrap().extend([
        Item {
            id: 1,
            name: "apple".into(),
        },
        Item {
            id: 2,
            name: "pear".into(),
        },
    ]);
    Router::new()
        .route("/", get(index))
        .route("/api/items", get(list_items).post(create_item))
        .route("/large", get(large))
        .route("/slow", get(slow))
        .route("/profile", get(profile))
        .route("/health", get(|| async { "ok" }))
        .merge(account_routes())
        .with_state(items)
}

/// `/account` and `/api/me`, which the demo's auth rules protect.
#[cfg(feature = "auth")]
fn account_routes() -> Router<Items> {
    Router::new()
        .route("/account", get(account))
        .route("/api/me", get(me))
}

#[cfg(not(feature = "auth"))]
fn account_routes() -> Router<Items> {
    Router::new()
}

#[cfg(feature = "auth")]
async fn account(user: tower_plugins::auth::CurrentUser) -> Html<String> {
    let mut name = String::new();
    for c in user.id.chars() {
        match c {
            '<' => name.push_str("&lt;"),
            '>' => name.push_str("&gt;"),
            '&' => name.push_str("&amp;"),
            '"' => name.push_str("&quot;"),
            c => name.push(c),
        }
    }
    Html(format!(
        "<!doctype html><html><head><title>Account</title></head><body>\
         <h1>Signed in as {name}</h1>\
         <form method=\"post\" action=\"/auth/logout\"><button>Log out</button></form>\
         </body></html>"
    ))
}

#[cfg(feature = "auth")]
async fn me(user: tower_plugins::auth::CurrentUser) -> Json<serde_json::Value> {
    Json(
        serde_json::json!({ "user": &*user.id, "roles": user.roles.iter().map(|r| &**r).collect::<Vec<_>>() }),
    )
}

async fn index() -> &'static str {
    "tower-plugins demo: try /api/items, /large, /slow?ms=250, /profile, /account, /api/me, /health\n"
}

async fn list_items(State(items): State<Items>) -> Json<Vec<Item>> {
    Json(items.0.lock().unwrap().clone())
}

async fn create_item(State(items): State<Items>, Json(new): Json<NewItem>) -> impl IntoResponse {
    let name = new.name.trim();
    if name.is_empty() || name.len() > 200 {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(serde_json::json!({ "error": "name must be 1 to 200 characters" })),
        )
            .into_response();
    }
    let mut list = items.0.lock().unwrap();
    if list.len() >= 1000 {
        return (
            StatusCode::INSUFFICIENT_STORAGE,
            Json(serde_json::json!({ "error": "the demo keeps at most 1000 items" })),
        )
            .into_response();
    }
    let item = Item {
        id: list.iter().map(|i| i.id).max().unwrap_or(0) + 1,
        name: name.to_owned(),
    };
    list.push(item.clone());
    (StatusCode::CREATED, Json(item)).into_response()
}

/// A JSON body of a little over 2,000 bytes.
async fn large() -> Json<serde_json::Value> {
    let rows: Vec<_> = (0..50)
        .map(|i| serde_json::json!({ "row": i, "text": "lorem ipsum dolor sit amet" }))
        .collect();
    Json(serde_json::json!({ "rows": rows }))
}

#[derive(Debug, Deserialize)]
struct SlowQuery {
    ms: Option<u64>,
}

async fn slow(
    Query(q): Query<SlowQuery>,
    timing: Option<Extension<ServerTiming>>,
) -> impl IntoResponse {
    let ms = q.ms.unwrap_or(100).min(MAX_SLOW_MS);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_millis(ms)).await;
    if let Some(Extension(t)) = timing {
        t.record_with_description("sleep", started.elapsed(), "asked for");
    }
    format!("slept {ms} ms\n")
}

async fn profile() -> Html<&'static str> {
    Html(
        "<!doctype html><html><head><title>Profile</title></head>\
         <body><h1>Your profile</h1><p>This page is for signed-in users once the auth \
         plugin protects it.</p></body></html>",
    )
}
