//! A tonic gRPC server (tonic-health's generated service) behind a plugin stack from
//! `examples/tonic.toml`, and a client for it.
//!
//! Run the server with
//!
//! ```not_rust
//! cargo run --example tonic --features tonic
//! ```
//!
//! then, in another terminal, make eight calls (the fifth past the burst is refused):
//!
//! ```not_rust
//! cargo run --example tonic --features tonic -- call 8
//! curl -s http://127.0.0.1:50051/admin/stats
//! ```

use std::time::Duration;

use tonic::transport::{Endpoint, Server};
use tonic_health::ServingStatus;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tower_plugins::PluginStack;

const ADDR: &str = "127.0.0.1:50051";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("call") => {
            let n = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(8);
            call(n).await
        }
        _ => serve().await,
    }
}

async fn serve() -> Result<(), Box<dyn std::error::Error>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/tonic.toml");
    let stack = PluginStack::from_file(path)?;
    println!("{stack}");
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("demo.Greeter", ServingStatus::Serving)
        .await;
    println!("gRPC on http://{ADDR} (grpc.health.v1.Health); stats at http://{ADDR}/admin/stats");
    Server::builder()
        .accept_http1(true)
        // Every call goes through the stack, which sees the peer address (feature `tonic`).
        .layer(stack.layer())
        .add_service(health)
        .serve_with_shutdown(ADDR.parse()?, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

/// `n` calls, alternating a known service and an unknown one (`NOT_FOUND`).
async fn call(n: usize) -> Result<(), Box<dyn std::error::Error>> {
    let channel = Endpoint::from_shared(format!("http://{ADDR}"))?
        .timeout(Duration::from_secs(5))
        .connect()
        .await?;
    let mut client = HealthClient::new(channel);
    for i in 0..n {
        let service = if i % 4 == 3 {
            "no.such.Service"
        } else {
            "demo.Greeter"
        };
        let req = HealthCheckRequest {
            service: service.to_owned(),
        };
        match client.check(req).await {
            Ok(res) => {
                let md = res.metadata();
                let rt = md.get("x-response-time").and_then(|v| v.to_str().ok());
                let rl = md.get("ratelimit").and_then(|v| v.to_str().ok());
                println!(
                    "{service}: {:?} (x-response-time {}, ratelimit {})",
                    res.get_ref().status(),
                    rt.unwrap_or("-"),
                    rl.unwrap_or("-")
                );
            }
            Err(status) => {
                let pushback = status.metadata().get("grpc-retry-pushback-ms");
                let pushback = pushback.and_then(|v| v.to_str().ok()).unwrap_or("-");
                println!(
                    "{service}: {:?} {:?} (grpc-retry-pushback-ms {pushback})",
                    status.code(),
                    status.message()
                );
            }
        }
    }
    Ok(())
}
