//! A Redis server for tests, shared by every crate's Redis tests (included with `#[path]`):
//! the server at `REDIS_URL` (default `redis://127.0.0.1:6379`), a key prefix of the test's
//! own that is deleted at the end, and a proxy the test can cut and restore.
//! Without a server the tests say so and pass, unless `TOWER_PLUGINS_REQUIRE_REDIS=1`.
#![allow(dead_code)] // each test target uses its own part

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;

pub(crate) fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A connection for the test's own commands, or `None` (after saying why) when there is no
/// server and none is required.
pub(crate) async fn admin() -> Option<redis::aio::MultiplexedConnection> {
    let conn = async {
        let client = redis::Client::open(redis_url())?;
        client.get_multiplexed_async_connection().await
    };
    match tokio::time::timeout(Duration::from_secs(3), conn).await {
        Ok(Ok(c)) => Some(c),
        other => {
            let why = match other {
                Ok(Err(e)) => e.to_string(),
                _ => "timed out".to_owned(),
            };
            if std::env::var("TOWER_PLUGINS_REQUIRE_REDIS").as_deref() == Ok("1") {
                panic!(
                    "Redis is required (TOWER_PLUGINS_REQUIRE_REDIS=1) but {} is not reachable: {why}",
                    redis_url()
                );
            }
            eprintln!("SKIPPED: no Redis at {} ({why})", redis_url());
            None
        }
    }
}

/// A key prefix of this test run's own, and a guard deleting its keys at the end.
pub(crate) struct Prefix {
    pub(crate) prefix: String,
    conn: redis::aio::MultiplexedConnection,
}

impl Prefix {
    pub(crate) fn new(conn: &redis::aio::MultiplexedConnection, test: &str) -> Self {
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        Prefix {
            prefix: format!("tower-plugins-test:{test}:{}:{nonce}:", std::process::id()),
            conn: conn.clone(),
        }
    }

    pub(crate) async fn keys(&mut self) -> Vec<String> {
        redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query_async(&mut self.conn)
            .await
            .unwrap()
    }

    pub(crate) async fn cleanup(mut self) {
        let keys = self.keys().await;
        if !keys.is_empty() {
            let _: () = redis::cmd("DEL")
                .arg(&keys)
                .query_async(&mut self.conn)
                .await
                .unwrap();
        }
    }
}

/// A TCP forwarder to Redis on a port of the test's own, which the test can close and
/// reopen on the same port.
pub(crate) struct Proxy {
    port: u16,
    target: SocketAddr,
    tasks: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    pub(crate) async fn start(target: SocketAddr) -> Self {
        let probe = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        let p = Proxy {
            port,
            target,
            tasks: Default::default(),
        };
        p.open();
        p
    }

    pub(crate) fn open(&self) {
        let sock = TcpSocket::new_v4().unwrap();
        sock.set_reuseaddr(true).unwrap();
        sock.bind(([127, 0, 0, 1], self.port).into()).unwrap();
        let listener = sock.listen(64).unwrap();
        let target = self.target;
        let tasks = self.tasks.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                let conn = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                tasks.lock().unwrap().push(conn);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    /// Stops listening and cuts every forwarded connection.
    pub(crate) async fn close(&self) {
        let tasks: Vec<_> = self.tasks.lock().unwrap().drain(..).collect();
        for t in tasks {
            t.abort();
            let _ = t.await;
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

pub(crate) async fn redis_addr() -> SocketAddr {
    let url = redis_url();
    let hostport = url
        .trim_start_matches("redis://")
        .rsplit('@')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    tokio::net::lookup_host(hostport)
        .await
        .unwrap()
        .next()
        .unwrap()
}

/// Waits, at most 10 s, polling every 50 ms, until `recovered` says so: a plugin whose Redis
/// came back after an outage.
pub(crate) async fn until_recovered<F, Fut>(mut recovered: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !recovered().await {
        assert!(
            std::time::Instant::now() < deadline,
            "no recovery within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
