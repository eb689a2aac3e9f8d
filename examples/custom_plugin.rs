//! A custom plugin registered from code, configured from the same TOML file as the built-ins.
//!
//! The `maintenance` plugin answers `503 Service Unavailable` with `Retry-After`. It is an async
//! function of its config, the request and the rest of the stack ([`tower_plugins::Next`]),
//! registered with `register_fn`; its config table is a serde struct. The entry's `when`
//! gives the paths it applies to; every other request goes past it. (A plugin that calls the
//! rest of the stack does `next.run(req).await`; any tower layer over `Next` works too, with
//! `register`.)
//!
//! Run with
//!
//! ```not_rust
//! cargo run --example custom_plugin
//! ```
//!
//! then `curl -i http://127.0.0.1:3003/admin/users` (503) and `curl -i http://127.0.0.1:3003/`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::response::IntoResponse;
use axum::{Router, routing::get};
use http::{Request, StatusCode, header::RETRY_AFTER};
use serde::Deserialize;
use tower_plugins::core::HumanDuration;
use tower_plugins::{Body, Next, PluginStack};

/// The plugin's table in the stack file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Maintenance {
    /// How long clients should wait (`Retry-After`), such as "10m".
    retry_after: HumanDuration,
    /// The message in the 503 body.
    message: String,
}

/// The plugin: every request it sees is answered 503. Which requests it sees is the entry's
/// `when` (a stack key every entry has).
async fn maintenance(cfg: Arc<Maintenance>, _req: Request<Body>, _next: Next) -> impl IntoResponse {
    let retry_after = cfg.retry_after.get().as_secs().max(1).to_string();
    let body = format!("{}\n", cfg.message);
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(RETRY_AFTER, retry_after)],
        body,
    )
}

const STACK: &str = r#"
[[plugin]]
use = "timer"

[[plugin]]
use = "maintenance"
when = { paths = ["/admin/**"] }
retry_after = "10m"
message = "the admin area is down for maintenance"
"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let stack = PluginStack::builder()
        .register_fn("maintenance", maintenance)
        .toml_str(STACK)
        .build()?;
    println!("{stack}");

    let app = Router::new()
        .route("/", get(|| async { "open\n" }))
        .route("/admin/users", get(|| async { "users\n" }))
        .layer(stack.layer());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3003").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
