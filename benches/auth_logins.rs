//! Logins against a real loopback server: the wall time of one login at OWASP's minimum argon2
//! parameters, and the latency of `GET /` while 100 logins arrive at once (the hashing pool
//! must not starve the runtime; logins past the pool's queue are answered 503 at once).
//!
//! ```not_rust
//! cargo bench --bench auth_logins
//! ```

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tower_plugins::PluginStack;

const STACK: &str = r#"
[[plugin]]
use = "auth"
secret = "a benchmark secret that is long enough to use"
throttle = { per_user = "off", per_user_any = "off" }

[plugin.users]
# demo-password, at OWASP's minimum: m=19456 KiB, t=2, p=1
demo = "$argon2id$v=19$m=19456,t=2,p=1$R+1ymIQMHZU30UArzKqxFg$0QqdGCSzcRe1SUu3p0BJTrpKie8PFuqV8AI9Z0fpk/E"
"#;

async fn send(addr: SocketAddr, req: Request<Full<Bytes>>) -> u16 {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let res = sender.send_request(req).await.unwrap();
    let status = res.status().as_u16();
    res.into_body().collect().await.unwrap();
    status
}

fn login(addr: SocketAddr) -> Request<Full<Bytes>> {
    Request::post("/auth/login")
        .header("host", addr.to_string())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from_static(
            b"username=demo&password=demo-password",
        )))
        .unwrap()
}

fn home(addr: SocketAddr) -> Request<Full<Bytes>> {
    Request::get("/")
        .header("host", addr.to_string())
        .body(Full::default())
        .unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    // The server's runtime, on the machine's two cores, as a real one would be.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let stack = PluginStack::from_toml_str(STACK).expect("a valid config");
        let app = Router::new()
            .route("/", get(|| async { "home" }))
            .layer(stack.layer());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });

        // One login at a time: the wall time of a login (an argon2id verify dominates it).
        send(addr, login(addr)).await;
        let mut one = Vec::new();
        for _ in 0..20 {
            let t = Instant::now();
            assert_eq!(send(addr, login(addr)).await, 303);
            one.push(t.elapsed());
        }
        one.sort();
        println!(
            "one login: p50 {:?}, p99 {:?}",
            percentile(&one, 0.5),
            percentile(&one, 0.99)
        );

        // Quiet `GET /` first, then the same while 100 logins arrive at once.
        let mut quiet = Vec::new();
        for _ in 0..200 {
            let t = Instant::now();
            send(addr, home(addr)).await;
            quiet.push(t.elapsed());
        }
        quiet.sort();
        let logins: Vec<_> = (0..100)
            .map(|_| tokio::spawn(send(addr, login(addr))))
            .collect();
        let mut busy = Vec::new();
        let until = Instant::now() + Duration::from_millis(400);
        while Instant::now() < until {
            let t = Instant::now();
            send(addr, home(addr)).await;
            busy.push(t.elapsed());
        }
        let mut statuses = std::collections::BTreeMap::new();
        for l in logins {
            *statuses.entry(l.await.unwrap()).or_insert(0) += 1;
        }
        busy.sort();
        println!(
            "GET / quiet: p50 {:?}, p99 {:?}; during 100 logins: p50 {:?}, p99 {:?} ({} requests)",
            percentile(&quiet, 0.5),
            percentile(&quiet, 0.99),
            percentile(&busy, 0.5),
            percentile(&busy, 0.99),
            busy.len()
        );
        println!("the 100 logins were answered: {statuses:?} (503: past the pool's queue)");
    });
}
