//! The Redis session store against the real server at `REDIS_URL`: sessions shared by two
//! stacks, no raw id among the keys, a TTL on every key, per-field writes under concurrency,
//! a logout that stays final, and an outage under each `on_store_error`, then recovery.
//! Each test uses its own key prefix and deletes its keys.
#![cfg(feature = "redis")]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http::header::{COOKIE, SET_COOKIE};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{Layer, ServiceExt, service_fn};
use tower_plugins_auth::{
    AuthError, AuthFuture, AuthLayer, Change, CurrentUser, Login, OnStoreError, Record,
    RedisSettings, RedisStore, Rule, Secret, Session, SessionStore, StoreKey, Timeouts, User,
    UserProvider, Verifier,
};
use tower_plugins_core::PathSet;

#[path = "../../../tests/support/redis.rs"]
mod redis_server;
use redis_server::{Prefix, Proxy, admin, redis_addr, redis_url, until_recovered};

const SECRET: &str = "a redis test secret that is long enough, with many letters";

/// alice / right, without hashing (these tests are about the store).
struct OneUser;

impl UserProvider for OneUser {
    fn authenticate<'a>(&'a self, name: &'a str, pw: &'a str, _: &'a Verifier) -> AuthFuture<'a> {
        let ok = name == "alice" && pw == "right";
        Box::pin(
            async move { Ok::<_, AuthError>(ok.then(|| Arc::new(User::new("alice", ["admin"])))) },
        )
    }
}

fn layer(url: &str, prefix: &str) -> AuthLayer {
    AuthLayer::new(Secret::parse(SECRET).unwrap())
        .users(OneUser)
        .redis(
            RedisSettings::new(url)
                .unwrap()
                .prefix(prefix)
                .timeout(Duration::from_millis(200)),
        )
        .rule(Rule::new(PathSet::new(["/account/**", "/set"]).unwrap()))
}

/// Answers who it sees; `/set?k=v` writes a field, `/get?k` reads one.
async fn app(req: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let user = req
        .extensions()
        .get::<CurrentUser>()
        .map(|u| u.id.to_string());
    let mut body = user.unwrap_or_else(|| "anonymous".to_owned());
    let session = req.extensions().get::<Session>().cloned();
    let query = req.uri().query().unwrap_or("").to_owned();
    match (req.uri().path(), session) {
        ("/set", Some(s)) => {
            let (k, v) = query.split_once('=').unwrap();
            s.insert(k, v);
        }
        ("/get", Some(s)) => body = s.get(&query).unwrap_or_default(),
        _ => {}
    }
    Ok(Response::new(Full::new(Bytes::from(body))))
}

struct Answer {
    status: StatusCode,
    cookie: Option<String>,
    clears: bool,
    body: String,
}

async fn send(l: &AuthLayer, mut req: Request<Full<Bytes>>) -> Answer {
    req.extensions_mut()
        .insert(SocketAddr::from(([127, 0, 0, 1], 5000)));
    let res = l.layer(service_fn(app)).oneshot(req).await.unwrap();
    let set = res
        .headers()
        .get(SET_COOKIE)
        .map(|v| v.to_str().unwrap().to_owned());
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        cookie: (set.as_deref())
            .filter(|s| !s.contains("Max-Age=0"))
            .map(|s| s.split(';').next().unwrap().to_owned()),
        clears: set.is_some_and(|s| s.contains("Max-Age=0")),
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn get(path: &str, cookie: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header(COOKIE, cookie)
        .header("sec-fetch-mode", "navigate")
        .body(Full::default())
        .unwrap()
}

fn post(path: &str, cookie: Option<&str>, form: &str) -> Request<Full<Bytes>> {
    let mut b = Request::post(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin");
    if let Some(c) = cookie {
        b = b.header(COOKIE, c);
    }
    b.body(Full::new(Bytes::from(form.to_owned()))).unwrap()
}

async fn log_in(l: &AuthLayer) -> String {
    let a = send(
        l,
        post("/auth/login", None, "username=alice&password=right"),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    a.cookie.expect("a session cookie")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_on_one_stack_is_a_session_on_another_and_the_keys_reveal_no_id() {
    let Some(conn) = admin().await else {
        return;
    };
    let mut p = Prefix::new(&conn, "auth-shared");
    let (a, b) = (
        layer(&redis_url(), &p.prefix),
        layer(&redis_url(), &p.prefix),
    );
    let cookie = log_in(&a).await;
    assert_eq!(send(&b, get("/account", &cookie)).await.body, "alice");
    send(&b, get("/set?cart=3", &cookie)).await;
    assert_eq!(send(&a, get("/get?cart", &cookie)).await.body, "3");

    let keys = p.keys().await;
    assert_eq!(keys.len(), 1, "one hash per session: {keys:?}");
    // The key is not the cookie's id, in any spelling.
    let value = cookie.split_once('=').unwrap().1;
    let id = value.split('.').nth(1).unwrap();
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(id)
        .unwrap();
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(raw.len(), 16);
    assert!(!keys[0].contains(id) && !keys[0].contains(&hex), "{keys:?}");
    let ttl = pttl(&conn, &keys[0]).await;
    assert!((1..=1801 * 1000).contains(&ttl), "TTL {ttl} ms");

    let out = send(&b, post("/auth/logout", Some(&cookie), "")).await;
    assert!(out.clears);
    assert!(
        p.keys().await.is_empty(),
        "a logout deletes the session in Redis"
    );
    let replay = send(&a, get("/", &cookie)).await;
    assert_eq!(replay.body, "anonymous");
    assert!(replay.clears, "a dead id's cookie is cleared");
    assert_eq!((a.store_errors(), b.store_errors()), (0, 0));
    p.cleanup().await;
}

fn record(user: &str, at: u64) -> Record {
    Record {
        user: Arc::new(User::new(user, ["r"])),
        created: at,
        last_seen: at,
        data: Arc::new(BTreeMap::new()),
    }
}

/// `n` tasks each writing its own field (`{name}{i}`) of the session under `k`, at once.
fn spawn_writes(
    store: &Arc<RedisStore>,
    k: StoreKey,
    name: &str,
    n: usize,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..n)
        .map(|i| {
            let (store, field) = (store.clone(), format!("{name}{i}"));
            tokio::spawn(async move {
                let c = [Change::Insert(field, i.to_string())];
                store.update(&k, &c).await.unwrap();
            })
        })
        .collect()
}

/// The time to live of `key`, in milliseconds.
async fn pttl(conn: &redis::aio::MultiplexedConnection, key: &str) -> i64 {
    let mut conn = conn.clone();
    redis::cmd("PTTL")
        .arg(key)
        .query_async(&mut conn)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_lose_nothing_and_a_racing_logout_stays_final() {
    let Some(conn) = admin().await else { return };
    let p = Prefix::new(&conn, "auth-race");
    let store = Arc::new(RedisStore::new(
        &RedisSettings::new(&redis_url()).unwrap().prefix(&p.prefix),
    ));
    let t = Timeouts {
        idle: 1800,
        absolute: 43_200,
        touch: 60,
    };
    let k = StoreKey::from_bytes([7; 16]);
    assert!(store.create(&k, &record("alice", 1000), t).await.unwrap());
    assert!(
        !store.create(&k, &record("mallory", 1000), t).await.unwrap(),
        "taken"
    );
    for w in spawn_writes(&store, k, "k", 100) {
        w.await.unwrap();
    }
    let r = store.load(&k, 1000, t).await.unwrap().unwrap();
    assert_eq!(r.data.len(), 100, "every field kept");
    assert_eq!(&*r.user.id, "alice");

    let logout = {
        let store = store.clone();
        tokio::spawn(async move { store.delete(&k).await.unwrap() })
    };
    let late = spawn_writes(&store, k, "late", 50);
    logout.await.unwrap();
    for w in late {
        w.await.unwrap();
    }
    assert!(store.load(&k, 1000, t).await.unwrap().is_none());
    let mut p = p;
    assert!(p.keys().await.is_empty(), "no write brought it back");
    p.cleanup().await;
}

#[tokio::test]
async fn sessions_end_by_their_timeouts_in_redis_and_reads_move_the_ttl() {
    let Some(conn) = admin().await else {
        return;
    };
    let mut p = Prefix::new(&conn, "auth-expiry");
    let store = RedisStore::new(&RedisSettings::new(&redis_url()).unwrap().prefix(&p.prefix));
    let t = Timeouts {
        idle: 10,
        absolute: 25,
        touch: 0,
    };
    let k = StoreKey::from_bytes([9; 16]);
    assert!(store.create(&k, &record("alice", 1000), t).await.unwrap());
    let keys = p.keys().await;
    assert!((9_000..=11_000).contains(&pttl(&conn, &keys[0]).await));
    // Seen at 1008: alive, and its TTL now runs to 1018.
    let r = store.load(&k, 1008, t).await.unwrap().unwrap();
    assert_eq!(r.last_seen, 1008);
    assert_eq!(
        store.load(&k, 1016, t).await.unwrap().unwrap().last_seen,
        1016
    );
    // The absolute timeout (1025) ends it whatever the activity; the load deletes it.
    assert!(store.load(&k, 1024, t).await.unwrap().is_some());
    assert!((1_000..=2_000).contains(&pttl(&conn, &keys[0]).await));
    assert!(store.load(&k, 1026, t).await.unwrap().is_none());
    assert!(p.keys().await.is_empty());
    p.cleanup().await;
}

async fn outage(policy: OnStoreError, protected: StatusCode) {
    let Some(conn) = admin().await else { return };
    let p = Prefix::new(&conn, "auth-outage");
    let proxy = Proxy::start(redis_addr().await).await;
    let l = layer(&proxy.url(), &p.prefix).on_store_error(policy);
    let cookie = log_in(&l).await;
    assert_eq!(send(&l, get("/account", &cookie)).await.body, "alice");

    proxy.close().await;
    for _ in 0..3 {
        let started = Instant::now();
        let a = send(&l, get("/account", &cookie)).await;
        assert_eq!(a.status, protected);
        assert!(!a.clears, "the cookie is kept for when Redis is back");
        let a = send(&l, get("/", &cookie)).await;
        assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "anonymous"));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
    let login = send(
        &l,
        post("/auth/login", None, "username=alice&password=right"),
    )
    .await;
    assert_eq!(login.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(l.store_errors() >= 7);

    proxy.open();
    until_recovered(|| async { send(&l, get("/account", &cookie)).await.body == "alice" }).await;
    proxy.close().await;
    p.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_away_under_deny_answers_protected_paths_503_and_recovers() {
    outage(OnStoreError::Deny, StatusCode::SERVICE_UNAVAILABLE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_away_under_anonymous_treats_protected_paths_as_logged_out_and_recovers() {
    outage(OnStoreError::Anonymous, StatusCode::SEE_OTHER).await;
}

#[tokio::test]
async fn a_login_decided_by_the_application_is_stored_in_redis() {
    let Some(conn) = admin().await else { return };
    let p = Prefix::new(&conn, "auth-sso");
    let l = layer(&redis_url(), &p.prefix);
    let svc = l.layer(service_fn(|_: Request<Full<Bytes>>| async {
        let mut res = Response::new(Full::<Bytes>::default());
        res.extensions_mut()
            .insert(Login(Arc::new(User::new("carol", [""; 0]))));
        Ok::<_, Infallible>(res)
    }));
    let res = svc
        .oneshot(Request::get("/sso").body(Full::default()).unwrap())
        .await
        .unwrap();
    let set = res.headers()[SET_COOKIE].to_str().unwrap();
    let cookie = set.split(';').next().unwrap().to_owned();
    assert_eq!(send(&l, get("/account", &cookie)).await.body, "carol");
    p.cleanup().await;
}
