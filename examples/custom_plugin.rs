//! A custom plugin registered from code, configured from the same TOML file as the built-ins.
//!
//! The `maintenance` plugin answers `503 Service Unavailable` with `Retry-After` for the paths
//! it is given, and lets everything else through. Its config table is a serde struct; its
//! layer is an ordinary tower layer over [`tower_plugins::Next`].
//!
//! Run with
//!
//! ```not_rust
//! cargo run --example custom_plugin
//! ```
//!
//! then `curl -i http://127.0.0.1:3003/admin/users` (503) and `curl -i http://127.0.0.1:3003/`.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::{Router, routing::get};
use http::{HeaderValue, Request, Response, StatusCode};
use serde::Deserialize;
use tower::{Layer, Service};
use tower_plugins::core::{HumanDuration, PathSet};
use tower_plugins::{Body, ConfigError, PluginContext, PluginStack};

/// The plugin's table in the stack file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MaintenanceConfig {
    /// Path patterns under maintenance (`/admin/**`).
    paths: Vec<String>,
    /// How long clients should wait (`Retry-After`), such as "10m".
    retry_after: HumanDuration,
    /// The message in the 503 body.
    #[serde(default = "default_message")]
    message: String,
}

fn default_message() -> String {
    "down for maintenance".to_owned()
}

#[derive(Clone)]
struct MaintenanceLayer(Arc<Settings>);

struct Settings {
    paths: PathSet,
    retry_after: HeaderValue,
    message: String,
}

impl MaintenanceLayer {
    /// Validates the config; every problem is a ConfigError the stack locates in the file.
    fn try_new(c: MaintenanceConfig, _ctx: &PluginContext) -> Result<Self, ConfigError> {
        let paths = PathSet::new(&c.paths).map_err(|e| e.nest("paths"))?;
        let retry_after = HeaderValue::from(c.retry_after.get().as_secs().max(1));
        Ok(MaintenanceLayer(Arc::new(Settings {
            paths,
            retry_after,
            message: c.message,
        })))
    }
}

impl<S> Layer<S> for MaintenanceLayer {
    type Service = Maintenance<S>;
    fn layer(&self, inner: S) -> Maintenance<S> {
        Maintenance {
            inner,
            settings: self.0.clone(),
        }
    }
}

#[derive(Clone)]
struct Maintenance<S> {
    inner: S,
    settings: Arc<Settings>,
}

impl<S> Service<Request<Body>> for Maintenance<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        if self.settings.paths.matches(req.uri().path()) {
            let mut res = Response::new(Body::from(format!("{}\n", self.settings.message)));
            *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            res.headers_mut()
                .insert(http::header::RETRY_AFTER, self.settings.retry_after.clone());
            return Box::pin(async move { Ok(res) });
        }
        Box::pin(self.inner.call(req))
    }
}

const STACK: &str = r#"
[[plugin]]
use = "timer"

[[plugin]]
use = "maintenance"
paths = ["/admin/**"]
retry_after = "10m"
message = "the admin area is down for maintenance"
"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let stack = PluginStack::builder()
        .register("maintenance", MaintenanceLayer::try_new)
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
