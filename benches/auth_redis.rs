//! What the Redis session store adds per request on loopback (p50 to p99.9), and what a
//! session costs in Redis, against the server at `REDIS_URL` (default
//! `redis://127.0.0.1:6379`).
//!
//! ```not_rust
//! cargo bench --bench auth_redis --features auth-redis
//! ```
//!
//! Criterion reports means and medians; tails need every sample, so this bench times each
//! request itself: a logged-in request on a protected route with the memory store, then with
//! Redis (one round trip: the load), then one that writes a session field (two: the load and
//! the write), 2,000 of each per round, ten interleaved rounds after a warm-up.

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_plugins::auth::{AuthLayer, Login, RedisSettings, Rule, Secret, Session, User};
use tower_plugins::core::PathSet;

#[path = "support.rs"]
mod support;

const ROUNDS: usize = 10;
const PER_ROUND: usize = 2_000;

/// `/write` sets a session field, `/login` logs `bench` in; anything else answers.
async fn app(req: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut res = Response::new(Full::new(Bytes::from_static(b"hello, world")));
    match req.uri().path() {
        "/write" => {
            let s = req.extensions().get::<Session>().expect("logged in");
            s.insert("seen", "1");
        }
        "/login" => {
            let user = Arc::new(User::new("bench", ["r"]));
            res.extensions_mut().insert(Login(user));
        }
        _ => {}
    }
    Ok(res)
}

fn layer() -> AuthLayer {
    let secret = Secret::parse("a bench secret that is long enough to sign with").unwrap();
    AuthLayer::new(secret).rule(Rule::new(PathSet::new(["/account", "/write"]).unwrap()))
}

fn req(path: &str, cookie: &str) -> Request<Full<Bytes>> {
    let mut b = Request::get(path);
    if !cookie.is_empty() {
        b = b.header(http::header::COOKIE, cookie);
    }
    b.body(Full::default()).unwrap()
}

/// One request through `svc`, timed; the session cookie it set, if any.
async fn time_one<S, B>(svc: &mut S, path: &str, cookie: &str) -> (Duration, Option<String>)
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>, Error = Infallible>,
{
    let start = Instant::now();
    let res = svc
        .ready()
        .await
        .unwrap()
        .call(req(path, cookie))
        .await
        .unwrap();
    let took = start.elapsed();
    assert_eq!(res.status(), 200, "{path}");
    let set = res.headers().get(http::header::SET_COOKIE);
    let set = set.map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned());
    black_box(res);
    (took, set)
}

fn main() {
    if !support::selected("auth_redis") {
        return;
    }
    support::runtime().block_on(async {
        let Some((url, mut admin)) = support::redis_admin("auth_redis").await else {
            return;
        };
        let prefix = format!("tower-plugins-bench:s:{}:", std::process::id());
        let settings = RedisSettings::new(&url).unwrap().prefix(prefix.clone());
        let mut memory = layer().layer(service_fn(app));
        let mut redis = layer().redis(settings.clone()).layer(service_fn(app));
        let m_cookie = time_one(&mut memory, "/login", "").await.1.unwrap();
        let r_cookie = time_one(&mut redis, "/login", "").await.1.unwrap();
        for _ in 0..2_000 {
            time_one(&mut memory, "/account", &m_cookie).await;
            time_one(&mut redis, "/account", &r_cookie).await;
        }
        let (mut m, mut r, mut w, mut ping) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            // The bare round trip, for scale: a PING on a multiplexed connection.
            for _ in 0..PER_ROUND {
                let start = Instant::now();
                let _: String = redis::cmd("PING").query_async(&mut admin).await.unwrap();
                ping.push(start.elapsed());
            }
            for _ in 0..PER_ROUND {
                m.push(time_one(&mut memory, "/account", &m_cookie).await.0);
            }
            for _ in 0..PER_ROUND {
                r.push(time_one(&mut redis, "/account", &r_cookie).await.0);
            }
            for _ in 0..PER_ROUND {
                w.push(time_one(&mut redis, "/write", &r_cookie).await.0);
            }
        }
        for v in [&mut m, &mut r, &mut w, &mut ping] {
            v.sort();
        }
        println!(
            "auth_redis: {} logged-in requests each, one at a time, loopback Redis at {url}",
            m.len()
        );
        println!("read (the session loaded):");
        support::print_percentiles(&[("memory", &m), ("redis", &r), ("PING alone", &ping)]);
        println!("write (loaded, then one field written after the response):");
        support::print_percentiles(&[("memory read", &m), ("redis write", &w)]);
        per_session(&mut admin, &settings, &prefix).await;
    });
}

/// What a session costs in Redis: 10,000 logins, then `MEMORY USAGE` of a sample and the
/// server's own `used_memory` growth; then the keys are deleted.
async fn per_session(
    admin: &mut redis::aio::MultiplexedConnection,
    settings: &RedisSettings,
    prefix: &str,
) {
    let used = |info: String| -> i64 {
        info.lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    let mut svc = layer().redis(settings.clone()).layer(service_fn(app));
    let before: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(admin)
        .await
        .unwrap();
    for _ in 0..10_000 {
        time_one(&mut svc, "/login", "").await;
    }
    let after: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(admin)
        .await
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(admin)
        .await
        .unwrap();
    let mut usage = 0i64;
    let sample = &keys[..keys.len().min(100)];
    for k in sample {
        let u: i64 = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(k)
            .query_async(admin)
            .await
            .unwrap();
        usage += u;
    }
    println!(
        "redis memory per session: MEMORY USAGE {} bytes (mean of {}), used_memory growth {} bytes per session over 10,000",
        usage / sample.len().max(1) as i64,
        sample.len(),
        (used(after) - used(before)) / 10_000,
    );
    for chunk in keys.chunks(1000) {
        let _: () = redis::cmd("DEL")
            .arg(chunk)
            .query_async(admin)
            .await
            .unwrap();
    }
}
