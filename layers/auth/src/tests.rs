use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::header::{COOKIE, LOCATION, SET_COOKIE};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{Layer, ServiceExt, service_fn};
use tower_plugins_core::{AuthUser, PathSet};

use crate::verifier::tests::cheap_hash;
use crate::{
    AuthLayer, CurrentUser, Login, ManualClock, Rule, Secret, Session, StaticUsers,
    Unauthenticated, User,
};

const SECRET: &str = "a test secret that is long enough, with many letters";

fn layer(clock: &ManualClock) -> AuthLayer {
    let users = StaticUsers::new()
        .user("alice", &cheap_hash("right"), ["admin"])
        .unwrap()
        .user("bob", &cheap_hash("hunter22"), [""; 0])
        .unwrap();
    AuthLayer::new(Secret::parse(SECRET).unwrap())
        .static_users(users)
        .hash_threads(1)
        .clock(clock.clone())
        .public(PathSet::new(["/account/help"]).unwrap())
        .rule(Rule::new(PathSet::new(["/admin/**"]).unwrap()).role("admin"))
        .rule(Rule::new(
            PathSet::new(["/account/**", "/set", "/get", "/rotate", "/bye"]).unwrap(),
        ))
        .rule(
            Rule::new(PathSet::new(["/api/**"]).unwrap())
                .unauthenticated(Unauthenticated::Unauthorized),
        )
}

/// The app: answers who it sees, and uses the session on a few paths.
async fn app(req: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let user = req
        .extensions()
        .get::<CurrentUser>()
        .map(|u| u.id.to_string());
    let session = req.extensions().get::<Session>().cloned();
    let mut body = user.clone().unwrap_or_else(|| "anonymous".to_owned());
    match (req.uri().path(), &session) {
        ("/set", Some(s)) => s.insert("theme", "dark"),
        ("/get", Some(s)) => body = s.get("theme").unwrap_or_default(),
        ("/rotate", Some(s)) => s.rotate(),
        ("/bye", Some(s)) => s.logout(),
        _ => {}
    }
    let mut res = Response::new(Full::new(Bytes::from(body)));
    if req.uri().path() == "/sso" {
        res.extensions_mut()
            .insert(Login(std::sync::Arc::new(User::new("carol", ["sso"]))));
    }
    Ok(res)
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
    user: Option<String>,
}

impl Answer {
    /// The session cookie this answer set (`name=value`), if any.
    fn cookie(&self) -> Option<String> {
        let set = self.headers.get(SET_COOKIE)?.to_str().ok()?;
        Some(set.split(';').next()?.to_owned())
    }

    fn clears_cookie(&self) -> bool {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .any(|v| v.to_str().unwrap().contains("Max-Age=0"))
    }
}

async fn send(l: &AuthLayer, req: Request<Full<Bytes>>) -> Answer {
    let mut req = req;
    req.extensions_mut()
        .insert(SocketAddr::from(([127, 0, 0, 1], 5000)));
    let res = l.layer(service_fn(app)).oneshot(req).await.unwrap();
    let user = res.extensions().get::<AuthUser>().map(|u| u.0.to_string());
    let (parts, body) = res.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        user,
    }
}

fn get(path: &str, cookie: Option<&str>) -> Request<Full<Bytes>> {
    let mut b = Request::get(path).header("sec-fetch-mode", "navigate");
    if let Some(c) = cookie {
        b = b.header(COOKIE, c);
    }
    b.body(Full::default()).unwrap()
}

fn login_form(body: &str, cookie: Option<&str>) -> Request<Full<Bytes>> {
    let mut b = Request::post("/auth/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin");
    if let Some(c) = cookie {
        b = b.header(COOKIE, c);
    }
    b.body(Full::new(Bytes::from(body.to_owned()))).unwrap()
}

async fn log_in(l: &AuthLayer, user: &str, password: &str) -> String {
    let a = send(
        l,
        login_form(&format!("username={user}&password={password}"), None),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    a.cookie().expect("a session cookie")
}

#[tokio::test]
async fn anonymous_requests_touch_nothing_and_protected_ones_are_answered_by_kind() {
    let l = layer(&ManualClock::new(1_000_000));
    let a = send(&l, get("/", None)).await;
    assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "anonymous"));
    assert!(a.headers.get(SET_COOKIE).is_none());
    assert_eq!(l.sessions(), 0, "no session before login");

    let a = send(&l, get("/account/settings?tab=1", None)).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(
        a.headers[LOCATION],
        "/auth/login?next=%2Faccount%2Fsettings%3Ftab%3D1"
    );

    let a = send(&l, get("/api/me", None)).await;
    assert_eq!(
        a.status,
        StatusCode::UNAUTHORIZED,
        "an API is never redirected"
    );
    assert_eq!(a.headers["content-type"], "application/problem+json");
    assert!(a.headers.contains_key("www-authenticate"));
    assert_eq!(
        send(&l, get("/account/help", None)).await.status,
        StatusCode::OK,
        "public"
    );
}

#[tokio::test]
async fn a_login_makes_a_session_the_next_requests_carry() {
    let l = layer(&ManualClock::new(1_000_000));
    let a = send(
        &l,
        login_form("username=alice&password=right&next=%2Faccount", None),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(a.headers[LOCATION], "/account");
    assert_eq!(
        a.user.as_deref(),
        Some("alice"),
        "the log line can show the user"
    );
    let set = a.headers[SET_COOKIE].to_str().unwrap();
    assert!(set.starts_with("__Host-id=1.") && set.contains("HttpOnly") && set.contains("Secure"));
    let cookie = a.cookie().unwrap();
    let a = send(&l, get("/account", Some(&cookie))).await;
    assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "alice"));
    assert!(a.headers.get(SET_COOKIE).is_none(), "no rolling Set-Cookie");
    assert_eq!(
        send(&l, get("/admin/x", Some(&cookie))).await.status,
        StatusCode::OK
    );
    let bob = log_in(&l, "bob", "hunter22").await;
    let a = send(&l, get("/admin/x", Some(&bob))).await;
    assert_eq!(
        a.status,
        StatusCode::FORBIDDEN,
        "a missing role is 403, never a redirect"
    );
}

#[tokio::test]
async fn wrong_passwords_and_unknown_users_get_the_same_answer() {
    let l = layer(&ManualClock::new(1_000_000));
    let wrong = send(
        &l,
        login_form("username=alice&password=nope&next=/account", None),
    )
    .await;
    let unknown = send(
        &l,
        login_form("username=mallory&password=nope&next=/account", None),
    )
    .await;
    for a in [&wrong, &unknown] {
        assert_eq!(a.status, StatusCode::SEE_OTHER);
        assert_eq!(a.headers[LOCATION], "/auth/login?error=1&next=%2Faccount");
        assert!(a.headers.get(SET_COOKIE).is_none());
    }
    let json = |body: &str| {
        Request::post("/auth/login")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap()
    };
    let a = send(&l, json(r#"{"username":"alice","password":"nope"}"#)).await;
    let b = send(&l, json(r#"{"username":"mallory","password":"nope"}"#)).await;
    assert_eq!((a.status, &a.body), (StatusCode::UNAUTHORIZED, &b.body));
    let ok = send(&l, json(r#"{"username":"alice","password":"right"}"#)).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.body, r#"{"user":"alice","roles":["admin"]}"#);
}

#[tokio::test]
async fn every_login_rotates_the_id_and_the_old_one_is_dead() {
    let l = layer(&ManualClock::new(1_000_000));
    let first = log_in(&l, "alice", "right").await;
    // A second login from the same browser (a user switch): a new id, the old record gone.
    let a = send(
        &l,
        login_form("username=bob&password=hunter22", Some(&first)),
    )
    .await;
    let second = a.cookie().unwrap();
    assert_ne!(first, second);
    let a = send(&l, get("/", Some(&first))).await;
    assert_eq!(a.body, "anonymous");
    assert!(a.clears_cookie(), "a dead id's cookie is cleared");
    assert_eq!(send(&l, get("/", Some(&second))).await.body, "bob");
    assert_eq!(l.sessions(), 1);
}

#[tokio::test]
async fn logout_is_a_post_that_ends_the_session_on_the_server() {
    let l = layer(&ManualClock::new(1_000_000));
    let cookie = log_in(&l, "alice", "right").await;
    let a = send(&l, get("/auth/logout", Some(&cookie))).await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(a.headers["allow"], "POST");
    let post = Request::post("/auth/logout")
        .header(COOKIE, &cookie)
        .header("sec-fetch-site", "same-origin")
        .body(Full::default())
        .unwrap();
    let a = send(&l, post).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert!(a.clears_cookie());
    // The cookie replayed after the logout is nobody's.
    assert_eq!(send(&l, get("/", Some(&cookie))).await.body, "anonymous");
    assert_eq!(l.sessions(), 0);
}

#[tokio::test]
async fn a_forged_or_tampered_cookie_is_anonymous_and_reaches_no_store() {
    let l = layer(&ManualClock::new(1_000_000));
    let cookie = log_in(&l, "alice", "right").await;
    let mut forged = cookie.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    for c in [
        forged.as_str(),
        "__Host-id=1.AAAA.BBBB",
        "__Host-id=\u{fffd}",
        "__Host-id=",
    ] {
        let a = send(&l, get("/account", Some(c))).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{c}");
        assert!(a.headers.get(SET_COOKIE).is_none(), "not ours: left alone");
    }
    // Several Cookie headers (HTTP/2): the one that verifies is found.
    let mut req = get("/account", Some("__Host-id=garbage"));
    req.headers_mut().append(COOKIE, cookie.parse().unwrap());
    assert_eq!(send(&l, req).await.body, "alice");
}

#[tokio::test]
async fn idle_and_absolute_timeouts_are_kept_on_the_server_and_reads_are_activity() {
    let clock = ManualClock::new(1_000_000);
    let l = layer(&clock);
    let cookie = log_in(&l, "alice", "right").await;
    // A read every 25 minutes keeps it alive for 11 h 40 min...
    for _ in 0..28 {
        clock.advance(Duration::from_secs(25 * 60));
        assert_eq!(send(&l, get("/", Some(&cookie))).await.body, "alice");
    }
    // ... and the next read, past 12 h from login, finds it ended.
    clock.advance(Duration::from_secs(25 * 60));
    assert_eq!(send(&l, get("/", Some(&cookie))).await.body, "anonymous");
    let cookie = log_in(&l, "alice", "right").await;
    clock.advance(Duration::from_secs(31 * 60));
    assert_eq!(
        send(&l, get("/", Some(&cookie))).await.body,
        "anonymous",
        "idle"
    );
}

#[tokio::test]
async fn handlers_write_session_fields_rotate_and_log_out_through_the_session() {
    let l = layer(&ManualClock::new(1_000_000));
    let cookie = log_in(&l, "alice", "right").await;
    send(&l, get("/set", Some(&cookie))).await;
    assert_eq!(send(&l, get("/get", Some(&cookie))).await.body, "dark");
    let a = send(&l, get("/rotate", Some(&cookie))).await;
    let rotated = a.cookie().unwrap();
    assert_ne!(rotated, cookie);
    assert_eq!(
        send(&l, get("/get", Some(&rotated))).await.body,
        "dark",
        "data kept"
    );
    assert_eq!(
        send(&l, get("/", Some(&cookie))).await.body,
        "anonymous",
        "old id dead"
    );
    let a = send(&l, get("/bye", Some(&rotated))).await;
    assert!(a.clears_cookie());
    assert_eq!(send(&l, get("/", Some(&rotated))).await.body, "anonymous");
}

#[tokio::test]
async fn an_application_logs_a_user_in_through_its_response() {
    let l = layer(&ManualClock::new(1_000_000));
    let a = send(&l, get("/sso", None)).await;
    let cookie = a.cookie().expect("a new session");
    assert_eq!(a.user.as_deref(), Some("carol"));
    assert_eq!(send(&l, get("/account", Some(&cookie))).await.body, "carol");
}

#[tokio::test]
async fn cross_site_unsafe_requests_with_our_cookie_are_refused() {
    let l = layer(&ManualClock::new(1_000_000));
    let cookie = log_in(&l, "alice", "right").await;
    let post = |site: &str| {
        Request::post("/account")
            .header(COOKIE, &cookie)
            .header("sec-fetch-site", site)
            .body(Full::default())
            .unwrap()
    };
    assert_eq!(
        send(&l, post("cross-site")).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(send(&l, post("same-origin")).await.status, StatusCode::OK);
    // A login posted from another site is refused too (login CSRF).
    let cross = Request::post("/auth/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", "https://evil.example")
        .header("host", "app.example")
        .body(Full::new(Bytes::from("username=alice&password=right")))
        .unwrap();
    assert_eq!(send(&l, cross).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn bad_login_bodies_get_proper_answers_without_hashing() {
    let l = layer(&ManualClock::new(1_000_000));
    let post = |ct: &str, body: Vec<u8>, uri: &str| {
        Request::post(uri)
            .header("content-type", ct)
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };
    let form = "application/x-www-form-urlencoded";
    let cases = [
        (
            post(form, vec![b'a'; 9000], "/auth/login"),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            post(
                "application/json",
                b"{\"username\":".to_vec(),
                "/auth/login",
            ),
            StatusCode::BAD_REQUEST,
        ),
        (
            post(form, b"username=alice".to_vec(), "/auth/login"),
            StatusCode::BAD_REQUEST,
        ),
        (
            post("text/plain", b"alice:right".to_vec(), "/auth/login"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            post(
                form,
                b"x=1".to_vec(),
                "/auth/login?username=alice&password=right",
            ),
            StatusCode::BAD_REQUEST,
        ),
        (
            post(
                form,
                format!("username={}&password=x", "u".repeat(300)).into_bytes(),
                "/auth/login",
            ),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (req, want) in cases {
        assert_eq!(send(&l, req).await.status, want);
    }
    assert_eq!(l.shared().verifier.counts(), (0, 0), "nothing was hashed");
}

#[tokio::test]
async fn an_unsafe_next_falls_back_to_after_login_and_the_page_keeps_a_safe_one() {
    let l = layer(&ManualClock::new(1_000_000));
    for next in [
        "%2F%2Fevil.example",
        "https://evil.example",
        "/%5Cevil",
        "javascript:alert(1)",
    ] {
        let a = send(
            &l,
            login_form(&format!("username=alice&password=right&next={next}"), None),
        )
        .await;
        assert_eq!(a.headers[LOCATION], "/", "{next}");
    }
    let page = send(&l, get("/auth/login?next=%2Faccount&error=1", None)).await;
    assert!(page.body.contains("value=\"/account\"") && page.body.contains("Wrong user name"));
    let evil = send(&l, get("/auth/login?next=//evil.example", None)).await;
    assert!(!evil.body.contains("evil.example"));
}

#[tokio::test]
async fn failed_logins_are_throttled_per_user_and_a_success_costs_nothing() {
    let l = layer(&ManualClock::new(1_000_000));
    // Four failures, a success (refunded), then one more failure: five in all, the limit.
    for _ in 0..4 {
        send(&l, login_form("username=alice&password=nope", None)).await;
    }
    assert_eq!(
        send(&l, login_form("username=alice&password=right", None))
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    send(&l, login_form("username=alice&password=nope", None)).await;
    let (verified, _) = l.shared().verifier.counts();
    let a = send(&l, login_form("username=alice&password=right", None)).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = a.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=180).contains(&retry), "{retry}");
    assert_eq!(
        l.shared().verifier.counts().0,
        verified,
        "a throttled login hashes nothing"
    );
    // Names that do not exist are throttled the same way, and other names are not.
    for _ in 0..5 {
        send(&l, login_form("username=nobody&password=x", None)).await;
    }
    assert_eq!(
        send(&l, login_form("username=nobody&password=x", None))
            .await
            .status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        send(&l, login_form("username=bob&password=hunter22", None))
            .await
            .status,
        StatusCode::SEE_OTHER
    );
}

/// A store that answers later (each call yields to the runtime first), over a memory store,
/// and can fail: everything (`DOWN`) or only writes (`WRITES_DOWN`).
#[derive(Clone)]
struct Flaky {
    inner: std::sync::Arc<crate::MemoryStore>,
    mode: std::sync::Arc<std::sync::atomic::AtomicU8>,
}

const UP: u8 = 0;
const DOWN: u8 = 1;
const WRITES_DOWN: u8 = 2;

impl Flaky {
    fn new(clock: &ManualClock) -> Self {
        let t = crate::Timeouts {
            idle: 1800,
            absolute: 43_200,
            touch: 60,
        };
        let clock = crate::clock::Clock::Manual(clock.clone());
        Flaky {
            inner: crate::MemoryStore::new(1000, t, clock),
            mode: Default::default(),
        }
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, std::sync::atomic::Ordering::Relaxed);
    }

    async fn check(&self, write: bool) -> Result<(), crate::StoreError> {
        tokio::task::yield_now().await;
        match self.mode.load(std::sync::atomic::Ordering::Relaxed) {
            DOWN => Err(crate::StoreError::new("down")),
            WRITES_DOWN if write => Err(crate::StoreError::new("read-only")),
            _ => Ok(()),
        }
    }
}

impl crate::SessionStore for Flaky {
    fn load<'a>(
        &'a self,
        key: &'a crate::StoreKey,
        now: u64,
        _: crate::Timeouts,
    ) -> crate::StoreFuture<'a, Option<crate::Record>> {
        Box::pin(async move {
            self.check(false).await?;
            Ok(self.inner.load(key, now))
        })
    }

    fn create<'a>(
        &'a self,
        key: &'a crate::StoreKey,
        r: &'a crate::Record,
        _: crate::Timeouts,
    ) -> crate::StoreFuture<'a, bool> {
        Box::pin(async move {
            self.check(true).await?;
            Ok(self.inner.create(*key, r.clone()))
        })
    }

    fn update<'a>(
        &'a self,
        key: &'a crate::StoreKey,
        changes: &'a [crate::Change],
    ) -> crate::StoreFuture<'a, ()> {
        Box::pin(async move {
            self.check(true).await?;
            self.inner.update(key, changes.to_vec());
            Ok(())
        })
    }

    fn delete<'a>(&'a self, key: &'a crate::StoreKey) -> crate::StoreFuture<'a, ()> {
        Box::pin(async move {
            self.check(true).await?;
            self.inner.delete(key);
            Ok(())
        })
    }
}

fn logout_post(cookie: &str) -> Request<Full<Bytes>> {
    Request::post("/auth/logout")
        .header(COOKIE, cookie)
        .header("sec-fetch-site", "same-origin")
        .body(Full::default())
        .unwrap()
}

#[tokio::test]
async fn a_store_that_answers_later_keeps_every_behaviour() {
    let clock = ManualClock::new(1_000_000);
    let store = Flaky::new(&clock);
    let l = layer(&clock).store(store.clone());
    let cookie = log_in(&l, "alice", "right").await;
    let a = send(&l, get("/account", Some(&cookie))).await;
    assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "alice"));
    assert_eq!(a.user.as_deref(), Some("alice"));
    assert!(a.headers.get(SET_COOKIE).is_none(), "no rolling Set-Cookie");
    send(&l, get("/set", Some(&cookie))).await;
    assert_eq!(send(&l, get("/get", Some(&cookie))).await.body, "dark");
    let rotated = send(&l, get("/rotate", Some(&cookie)))
        .await
        .cookie()
        .unwrap();
    assert_eq!(send(&l, get("/get", Some(&rotated))).await.body, "dark");
    assert_eq!(send(&l, get("/", Some(&cookie))).await.body, "anonymous");
    let sso = send(&l, get("/sso", Some(&rotated))).await;
    assert_eq!(sso.user.as_deref(), Some("carol"));
    let carol = sso.cookie().unwrap();
    assert_eq!(send(&l, get("/", Some(&carol))).await.body, "carol");
    assert_eq!(send(&l, get("/", Some(&rotated))).await.body, "anonymous");
    let a = send(&l, get("/bye", Some(&carol))).await;
    assert!(a.clears_cookie());
    assert_eq!(send(&l, get("/", Some(&carol))).await.body, "anonymous");
    let alice = log_in(&l, "alice", "right").await;
    assert!(send(&l, logout_post(&alice)).await.clears_cookie());
    assert_eq!(send(&l, get("/", Some(&alice))).await.body, "anonymous");
    assert!(store.inner.is_empty(), "every session ended in the store");
    assert_eq!(l.store_errors(), 0);
}

#[tokio::test]
async fn a_failing_store_follows_on_store_error_and_keeps_the_handlers_answers() {
    let clock = ManualClock::new(1_000_000);
    let store = Flaky::new(&clock);
    let deny = layer(&clock).store(store.clone());
    let anonymous = deny.clone().on_store_error(crate::OnStoreError::Anonymous);
    let cookie = log_in(&deny, "alice", "right").await;
    store.set(DOWN);
    // Open paths go on, anonymous, with the cookie kept for when the store is back.
    let a = send(&deny, get("/", Some(&cookie))).await;
    assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "anonymous"));
    assert!(a.headers.get(SET_COOKIE).is_none());
    let a = send(&deny, get("/account", Some(&cookie))).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.headers["retry-after"], "1");
    assert_eq!(a.headers["content-type"], "application/problem+json");
    let a = send(&anonymous, get("/account", Some(&cookie))).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "as if logged out");
    let a = send(&anonymous, get("/api/me", Some(&cookie))).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let a = send(&deny, login_form("username=bob&password=hunter22", None)).await;
    assert_eq!(
        a.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "a login needs the store"
    );
    assert!(a.headers.get(SET_COOKIE).is_none());
    assert!(
        send(&deny, logout_post("__Host-id=x"))
            .await
            .clears_cookie()
    );
    assert_eq!(deny.store_errors(), 3, "two reads and a login");

    // Writes failing after the handler answered: its answer stands, without a cookie that
    // would name no session.
    store.set(WRITES_DOWN);
    let a = send(&deny, get("/set", Some(&cookie))).await;
    assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "alice"));
    let a = send(&deny, get("/rotate", Some(&cookie))).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.cookie().is_none(), "no new id without its session");
    let a = send(&deny, get("/sso", None)).await;
    assert_eq!((a.status, a.cookie()), (StatusCode::OK, None));
    assert!(
        send(&deny, get("/bye", Some(&cookie)))
            .await
            .clears_cookie()
    );

    // Back: the session made before the outage is still there.
    store.set(UP);
    assert_eq!(
        send(&deny, get("/account", Some(&cookie))).await.body,
        "alice"
    );
}

#[tokio::test]
async fn a_refused_grpc_call_is_told_unauthenticated_or_permission_denied_never_redirected() {
    let l = layer(&ManualClock::new(1_000_000));
    let grpc = |path: &str, cookie: Option<&str>| {
        let mut r = get(path, cookie);
        r.headers_mut()
            .insert("content-type", "application/grpc".parse().unwrap());
        r
    };
    let a = send(&l, grpc("/account/pkg.Svc/Get", None)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.headers["grpc-status"], "16");
    assert!(a.headers.get(LOCATION).is_none() && a.body.is_empty());
    let bob = log_in(&l, "bob", "hunter22").await;
    let a = send(&l, grpc("/admin/pkg.Svc/Get", Some(&bob))).await;
    assert_eq!(a.headers["grpc-status"], "7");
    assert_eq!(
        a.headers["grpc-message"],
        "this needs a role you do not have"
    );
}
