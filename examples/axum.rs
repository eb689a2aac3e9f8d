//! A plugin stack on an axum `Router`, from TOML written inline.
//!
//! Run with
//!
//! ```not_rust
//! cargo run --example axum
//! ```
//!
//! then `curl -i http://127.0.0.1:3001/`.

use std::net::SocketAddr;

use axum::{Router, routing::get};
use tower_plugins::PluginStack;

const STACK: &str = r#"
[[plugin]]
use = "timer"
digits = 1
server_timing_description = "axum example"
"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A ConfigError lists every problem with its line and column; nothing is served.
    let stack = PluginStack::from_toml_str(STACK)?;
    println!("{stack}");

    let app = Router::new()
        .route("/", get(|| async { "hello from axum\n" }))
        // `Router::layer` wraps every route; the stack sees requests after routing, so axum's
        // `MatchedPath` is available to plugins that label by route.
        .layer(stack.layer());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3001").await?;
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
