//! The tower-plugins demo server: the demo app wrapped in the plugin stack from a TOML file.
//!
//! Run with
//!
//! ```not_rust
//! cargo run --release --example demo [-- --config examples/plugins.toml --listen 127.0.0.1:3000]
//! ```
//!
//! then `curl -i http://127.0.0.1:3000/`.

#[path = "shared/app.rs"]
mod app;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use tower_plugins::PluginStack;

struct Args {
    config: PathBuf,
    listen: SocketAddr,
}

fn parse_args() -> Result<Args, String> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut args = Args {
        config: manifest.join("examples/plugins.toml"),
        listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
            None => (a.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--config" | "-c" => args.config = PathBuf::from(value()?),
            "--listen" | "-l" => {
                let v = value()?;
                args.listen = v.parse().map_err(|_| {
                    format!("--listen: {v:?} is not an address such as 127.0.0.1:3000")
                })?;
            }
            "--help" | "-h" => {
                return Err("usage: demo [--config FILE] [--listen ADDR]".to_owned());
            }
            other => return Err(format!("unknown argument {other:?}; try --help")),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> ExitCode {
    // The plugins' warnings (a generated session secret, an unreachable Redis) on stderr.
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(std::io::stderr)
        .init();
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let stack = match PluginStack::from_file(&args.config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "error: the plugin stack in {} is invalid:\n{e}",
                args.config.display()
            );
            return ExitCode::from(1);
        }
    };
    println!("{stack}");

    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", args.listen);
            return ExitCode::from(1);
        }
    };
    let addr = listener.local_addr().unwrap_or(args.listen);
    println!();
    println!("demo listening on http://{addr} (Ctrl-C to stop); try:");
    for (what, cmd) in [
        ("timing headers", format!("curl -i http://{addr}/")),
        ("JSON list", format!("curl -i http://{addr}/api/items")),
        (
            "JSON create",
            format!(
                "curl -i -X POST -H 'content-type: application/json' -d '{{\"name\":\"plum\"}}' http://{addr}/api/items"
            ),
        ),
        (
            "rate limit (21st is a 429)",
            format!(
                "for i in $(seq 21); do curl -s -o /dev/null -w '%{{http_code}} ' http://{addr}/api/items; done"
            ),
        ),
        ("a 2 KB body", format!("curl -i http://{addr}/large")),
        (
            "handler Server-Timing entry",
            format!("curl -i 'http://{addr}/slow?ms=250'"),
        ),
        ("a page", format!("curl -i http://{addr}/profile")),
        ("health", format!("curl -i http://{addr}/health")),
        (
            "stats dashboard (browser)",
            format!("http://{addr}/admin/stats"),
        ),
        (
            "stats as JSON",
            format!("curl -s http://{addr}/admin/stats"),
        ),
        ("Prometheus", format!("curl -s http://{addr}/metrics")),
    ] {
        println!("  {what:<28} {cmd}");
    }

    let app = app::router().layer(stack.layer());
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    });
    if let Err(e) = server.await {
        eprintln!("error: server failed: {e}");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
