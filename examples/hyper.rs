//! A plugin stack on a plain hyper 1 server (hyper-util), with no axum in the service.
//!
//! Run with
//!
//! ```not_rust
//! cargo run --example hyper
//! ```
//!
//! then `curl -i http://127.0.0.1:3002/`.

use std::convert::Infallible;
use std::net::SocketAddr;

use http::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tower::{ServiceBuilder, service_fn};
use tower_plugins::{Body, PluginStack};

async fn hello(req: Request<Body>) -> Result<Response<Body>, Infallible> {
    // The peer address the server put in the extensions, as plugins see it.
    let peer = req
        .extensions()
        .get::<SocketAddr>()
        .map_or_else(|| "unknown".to_owned(), ToString::to_string);
    Ok(Response::new(Body::from(format!(
        "hello from hyper, {peer}\n"
    ))))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let stack = PluginStack::from_toml_str("[[plugin]]\nuse = \"timer\"\n")?;
    println!("{stack}");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3002").await?;
    println!("listening on http://{}", listener.local_addr()?);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        // The stack layer composes with ServiceBuilder like any tower layer. The peer address
        // goes into the request extensions, where plugins that need the client IP find it.
        let svc = ServiceBuilder::new()
            .map_request(move |mut req: Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(peer);
                req
            })
            .layer(stack.layer())
            .service(service_fn(hello));
        tokio::spawn(async move {
            let conn = auto::Builder::new(TokioExecutor::new());
            if let Err(e) = conn
                .serve_connection(TokioIo::new(tcp), TowerToHyperService::new(svc))
                .await
            {
                eprintln!("connection from {peer}: {e}");
            }
        });
    }
}
