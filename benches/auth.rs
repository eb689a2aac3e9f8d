//! The auth plugin beside tower-sessions 0.15 (MemoryStore) and axum-login 0.18 (on
//! tower-sessions 0.14, MemoryStore, a `HashMap` backend), same run.
//!
//! ```not_rust
//! cargo bench --bench auth
//! python3 scripts/performance.py ratios auth
//! ```
//!
//! Overhead is each case minus its own bare service: ours and tower-sessions wrap the bare
//! service; axum-login needs an axum `Router` (its `login_required!` is axum middleware), so
//! its bare case is the same router without the auth layers.
//!
//! - `anon_open`: no cookie, an open route. Ours: one header scan, one path match.
//!   tower-sessions and axum-login: their layers with a handler that does not touch the
//!   session (tower-sessions' is lazy; axum-login loads the session for every request).
//! - `user_protected`: a valid cookie on a protected route, the user resolved. Ours: the
//!   record loaded and `CurrentUser` in the request. tower-sessions: the handler reads
//!   `user_id` from the session. axum-login: `login_required!` and `get_user`.
//! - `anon_401` / `anon_redirect`: no cookie on a protected route (ours: rule; axum-login:
//!   `login_required!`, plain and with `login_url`).
//! - `forged_cookie`: a well-formed cookie no key signed, on an open route (tower-sessions:
//!   a random id, looked up and missed).

#[path = "support.rs"]
mod support;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use support::{axum_inner as inner, drive};
use tower::{Layer, ServiceExt, service_fn};
use tower_plugins::auth::{AuthLayer, Login, Rule, Secret, StaticUsers, Unauthenticated, User};
use tower_plugins::core::PathSet;

fn req(path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut b = Request::get(path);
    if let Some(c) = cookie {
        b = b.header("cookie", c);
    }
    b.body(Body::empty()).unwrap()
}

/// The `name=value` of a response's `Set-Cookie`.
fn cookie_of<B>(res: &Response<B>) -> String {
    let v = res.headers()["set-cookie"].to_str().unwrap();
    v.split(';').next().unwrap().to_owned()
}

fn ours(unauthenticated: Unauthenticated) -> AuthLayer {
    AuthLayer::new(Secret::parse("a benchmark secret that is long enough to use").unwrap())
        .static_users(StaticUsers::new())
        .rule(Rule::new(PathSet::new(["/p"]).unwrap()).unauthenticated(unauthenticated))
}

async fn our_cookie(l: &AuthLayer) -> String {
    let user = Arc::new(User::new("demo", [""; 0]));
    let svc = l.layer(service_fn(move |_req: Request<Body>| {
        let user = user.clone();
        async move {
            let mut res = Response::new(Body::empty());
            res.extensions_mut().insert(Login(user));
            Ok::<_, Infallible>(res)
        }
    }));
    cookie_of(&svc.oneshot(req("/sso", None)).await.unwrap())
}

/// tower-sessions: a handler that reads `user_id` (the user case), or nothing.
fn sessions_handler(
    read: bool,
) -> impl tower::Service<
    Request<Body>,
    Response = Response<Body>,
    Error = Infallible,
    Future = impl Send,
> + Clone {
    service_fn(move |req: Request<Body>| async move {
        if read {
            let session = req.extensions().get::<tower_sessions::Session>().unwrap();
            let user: Option<String> = session.get("user_id").await.unwrap();
            std::hint::black_box(user);
        }
        Ok::<_, Infallible>(Response::new(Body::from("hello, world")))
    })
}

#[derive(Clone, Debug)]
struct PeerUser {
    id: String,
    hash: Vec<u8>,
}

impl axum_login::AuthUser for PeerUser {
    type Id = String;
    fn id(&self) -> String {
        self.id.clone()
    }
    fn session_auth_hash(&self) -> &[u8] {
        &self.hash
    }
}

#[derive(Clone)]
struct Backend(Arc<HashMap<String, PeerUser>>);

#[derive(Debug)]
struct NoError;

impl std::fmt::Display for NoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no error")
    }
}

impl std::error::Error for NoError {}

impl axum_login::AuthnBackend for Backend {
    type User = PeerUser;
    type Credentials = ();
    type Error = NoError;

    async fn authenticate(&self, _: ()) -> Result<Option<PeerUser>, NoError> {
        Ok(self.0.get("demo").cloned())
    }

    async fn get_user(&self, id: &String) -> Result<Option<PeerUser>, NoError> {
        Ok(self.0.get(id).cloned())
    }
}

/// axum-login's router: `/` open, `/p` behind `login_required!` (plain, or with a login URL),
/// `/login` logging `demo` in; with `auth` off, the same routes with no auth layer.
fn login_router(auth: bool, redirect: bool) -> Router {
    use axum_login::login_required;
    let hello = || async { "hello, world" };
    let protected = Router::new().route("/p", get(hello));
    let protected = match (auth, redirect) {
        (false, _) => protected,
        (true, false) => protected.route_layer(login_required!(Backend)),
        (true, true) => protected.route_layer(login_required!(Backend, login_url = "/login")),
    };
    let router = Router::new().route("/", get(hello)).merge(protected);
    if !auth {
        return router;
    }
    let users = HashMap::from([(
        "demo".to_owned(),
        PeerUser {
            id: "demo".to_owned(),
            hash: b"hash".to_vec(),
        },
    )]);
    let backend = Backend(Arc::new(users));
    let sessions =
        tower_sessions_014::SessionManagerLayer::new(tower_sessions_014::MemoryStore::default())
            .with_secure(false);
    let auth_layer = axum_login::AuthManagerLayerBuilder::new(backend, sessions).build();
    router
        .route(
            "/login",
            get(|mut s: axum_login::AuthSession<Backend>| async move {
                let user = s.backend.0.get("demo").cloned().unwrap();
                s.login(&user).await.unwrap();
                "logged in"
            }),
        )
        .layer(auth_layer)
}

fn bench(c: &mut Criterion) {
    let rt = support::runtime();
    let mut g = support::group(c, "auth");

    let bare = inner();
    g.bench_function(BenchmarkId::new("bare", "service"), |b| {
        b.to_async(&rt).iter(|| drive(&bare, req("/", None)));
    });
    let bare_router = login_router(false, false);
    g.bench_function(BenchmarkId::new("bare", "router"), |b| {
        b.to_async(&rt).iter(|| drive(&bare_router, req("/", None)));
    });

    // Ours.
    let l = ours(Unauthenticated::Unauthorized);
    let cookie = rt.block_on(our_cookie(&l));
    let svc = l.layer(inner());
    let forged = "__Host-id=1.AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA";
    for (case, path, c) in [
        ("anon_open", "/", None),
        ("user_protected", "/p", Some(cookie.as_str())),
        ("anon_401", "/p", None),
        ("forged_cookie", "/", Some(forged)),
    ] {
        g.bench_function(BenchmarkId::new(case, "ours"), |b| {
            b.to_async(&rt).iter(|| drive(&svc, req(path, c)));
        });
    }
    let redirecting = ours(Unauthenticated::Redirect).layer(inner());
    g.bench_function(BenchmarkId::new("anon_redirect", "ours"), |b| {
        b.to_async(&rt)
            .iter(|| drive(&redirecting, req("/p", None)));
    });

    // tower-sessions 0.15.
    let store = tower_sessions::MemoryStore::default();
    let layer = tower_sessions::SessionManagerLayer::new(store).with_secure(false);
    let writer = layer
        .clone()
        .layer(service_fn(|req: Request<Body>| async move {
            let session = req.extensions().get::<tower_sessions::Session>().unwrap();
            session.insert("user_id", "demo").await.unwrap();
            Ok::<_, Infallible>(Response::new(Body::empty()))
        }));
    let ts_cookie = cookie_of(&rt.block_on(writer.oneshot(req("/", None))).unwrap());
    let untouched = layer.clone().layer(sessions_handler(false));
    let reading = layer.layer(sessions_handler(true));
    let ts_forged = "id=AAAAAAAAAAAAAAAAAAAAAA";
    g.bench_function(BenchmarkId::new("anon_open", "tower-sessions"), |b| {
        b.to_async(&rt).iter(|| drive(&untouched, req("/", None)));
    });
    g.bench_function(BenchmarkId::new("user_protected", "tower-sessions"), |b| {
        b.to_async(&rt)
            .iter(|| drive(&reading, req("/p", Some(&ts_cookie))));
    });
    g.bench_function(BenchmarkId::new("forged_cookie", "tower-sessions"), |b| {
        b.to_async(&rt)
            .iter(|| drive(&reading, req("/", Some(ts_forged))));
    });

    // axum-login 0.18.
    let plain = login_router(true, false);
    let al_cookie = cookie_of(
        &rt.block_on(plain.clone().oneshot(req("/login", None)))
            .unwrap(),
    );
    for (case, path, c) in [
        ("anon_open", "/", None),
        ("user_protected", "/p", Some(al_cookie.as_str())),
        ("anon_401", "/p", None),
    ] {
        g.bench_function(BenchmarkId::new(case, "axum-login"), |b| {
            b.to_async(&rt).iter(|| drive(&plain, req(path, c)));
        });
    }
    let redirect = login_router(true, true);
    g.bench_function(BenchmarkId::new("anon_redirect", "axum-login"), |b| {
        b.to_async(&rt).iter(|| drive(&redirect, req("/p", None)));
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
