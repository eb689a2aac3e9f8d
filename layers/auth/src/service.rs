//! [`Auth`] and its [`ResponseFuture`]: the session of each request, the rules, and what the
//! handler asked of the session once its response is ready.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::header::SET_COOKIE;
use http::{HeaderValue, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_plugins_core::{AuthUser, BoxError, PluginBody, PluginFuture, refusal_for};
use tower_service::Service;

use crate::answer::{login_url, problem, see_other, unauthorized, unavailable};
use crate::endpoints::{login_get, login_post, logout};
use crate::keys::StoreKey;
use crate::layer::{OnStoreError, Shared};
use crate::rules::Verdict;
use crate::session::{CurrentUser, Login, Pending, Session};
use crate::store::{Record, Store, StoreError};
use crate::users::User;

/// The auth service. See the [crate docs](crate) for an example.
pub struct Auth<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: Clone> Clone for Auth<S> {
    fn clone(&self) -> Self {
        Auth {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for Auth<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S> Auth<S> {
    /// Wraps `inner` with the settings (and the shared session store) of `layer`.
    pub fn new(inner: S, layer: &crate::AuthLayer) -> Self {
        Auth {
            inner,
            shared: layer.shared(),
        }
    }

    tower_plugins_core::inner_service_accessors!();
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Auth<S>
where
    // Clone, Send and 'static for a store that answers later: the inner service is called
    // once the session is loaded.
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    ReqBody: http_body::Body + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<BoxError>,
    ResBody: Send + 'static,
{
    type Response = Response<PluginBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let sh = &self.shared;
        let path = req.uri().path();
        if path == &*sh.s.endpoints.login {
            if req.method() == http::Method::GET || req.method() == http::Method::HEAD {
                if let Some(page) = login_get(sh, &req) {
                    return ResponseFuture::ready(page);
                }
                return ResponseFuture::inner(self.inner.call(req), sh, Came::Anonymous);
            }
            return ResponseFuture::own(Box::pin(login_post(sh.clone(), req)));
        }
        if path == &*sh.s.endpoints.logout {
            return ResponseFuture::own(Box::pin(logout(sh.clone(), req)));
        }
        // Anonymous traffic stops here: one header lookup, no store, no allocation.
        let Some(key) = sh.cookie_key(req.headers()) else {
            return match sh.s.rules.verdict(&req, None) {
                Verdict::Pass => ResponseFuture::inner(self.inner.call(req), sh, Came::Anonymous),
                refused => ResponseFuture::ready(refusal(sh, &req, refused)),
            };
        };
        let now = sh.s.clock.now();
        let store = match &sh.store {
            Store::Memory(memory) => {
                return match admit(sh, &mut req, key, Ok(memory.load(&key, now))) {
                    Admit::Call(came) => ResponseFuture::inner(self.inner.call(req), sh, came),
                    Admit::Refuse(res) => ResponseFuture::ready(res),
                };
            }
            Store::Remote(store) => store.clone(),
        };
        // The inner service is called once the session is loaded: take the ready one and
        // leave a clone in its place (tower's contract for services called later).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let sh = sh.clone();
        ResponseFuture {
            state: State::Loading {
                fut: Box::pin(async move {
                    let loaded = store.load(&key, now, sh.s.timeouts).await;
                    match admit(&sh, &mut req, key, loaded) {
                        Admit::Call(came) => Loaded::Call(inner.call(req), sh, came),
                        Admit::Refuse(res) => Loaded::Refuse(res),
                    }
                }),
            },
            finishing: None,
        }
    }
}

/// What a request with a signed cookie goes on with, once its session is known.
enum Admit {
    /// To the inner service.
    Call(Came),
    /// Answered here.
    Refuse(Response<Bytes>),
}

/// Decides a request whose cookie verified, from what the store answered: the rules, the
/// CSRF check, and the session in the request's extensions.
fn admit<B>(
    sh: &Shared,
    req: &mut Request<B>,
    key: StoreKey,
    loaded: Result<Option<Record>, StoreError>,
) -> Admit {
    let record = match loaded {
        Ok(record) => record,
        Err(e) => return store_failed(sh, req, &e),
    };
    let verdict =
        sh.s.rules
            .verdict(req, record.as_ref().map(|r| &*r.user.roles));
    if verdict != Verdict::Pass {
        return Admit::Refuse(refusal(sh, req, verdict));
    }
    let Some(r) = record else {
        // A signed id with no live session: cleared, so the browser stops sending it.
        return Admit::Call(Came::Stale);
    };
    if !sh.s.csrf.allows(req, &sh.s.client_ip) {
        let why = "cross-site request refused";
        let refused = problem(StatusCode::FORBIDDEN, why);
        return Admit::Refuse(refusal_for(req.headers(), refused, why));
    }
    let ext = req.extensions_mut();
    ext.insert(AuthUser(r.user.id.clone()));
    ext.insert(CurrentUser::of(&r));
    let session = Session::new(key, r);
    ext.insert(session.clone());
    Admit::Call(Came::Live(session))
}

/// The store could not be asked: an open path goes on anonymous (its cookie kept); a
/// protected one follows `on_store_error`.
fn store_failed<B>(sh: &Shared, req: &Request<B>, e: &StoreError) -> Admit {
    sh.store_failed(e);
    match sh.s.rules.verdict(req, None) {
        Verdict::Pass => Admit::Call(Came::Anonymous),
        refused if sh.s.on_store_error == OnStoreError::Anonymous => {
            Admit::Refuse(refusal(sh, req, refused))
        }
        _ => {
            let why = "the session store is unavailable; try again";
            Admit::Refuse(refusal_for(req.headers(), unavailable(why), why))
        }
    }
}

/// The answer to a request the rules refused (a gRPC call's: `UNAUTHENTICATED` or
/// `PERMISSION_DENIED`, never a redirect).
fn refusal<B>(sh: &Shared, req: &Request<B>, verdict: Verdict) -> Response<Bytes> {
    let login = &sh.s.endpoints.login;
    const ROLE: &str = "this needs a role you do not have";
    let res = match verdict {
        Verdict::Redirect => {
            let target = req.uri().path_and_query().map(|p| p.as_str());
            let next =
                target.filter(|_| matches!(*req.method(), http::Method::GET | http::Method::HEAD));
            see_other(&login_url(login, next, false))
        }
        Verdict::Forbidden => problem(StatusCode::FORBIDDEN, ROLE),
        Verdict::Unauthorized | Verdict::Pass => unauthorized(login),
    };
    let why = if verdict == Verdict::Forbidden {
        ROLE
    } else {
        "log in first"
    };
    refusal_for(req.headers(), res, why)
}

/// The session a request came with, kept for once its response is ready.
pub(crate) enum Came {
    /// No cookie of ours.
    Anonymous,
    /// A signed id with no live session, whose cookie is cleared.
    Stale,
    /// A live session (its handle holds its key and record).
    Live(Session),
}

/// What a response asks of the store once it is ready.
enum Work {
    /// A login the application decided ([`Login`]): a new session, the request's ended.
    Login {
        old: Option<StoreKey>,
        user: Arc<User>,
    },
    /// What the handler asked of a live session.
    Session { session: Session, pending: Pending },
}

/// Applies what needs no store once the response is ready (the user in its extensions, the
/// removal cookie of a stale session), and returns what does: a [`Login`] in the response (a
/// new session, whatever the request had), else what the handler asked of its [`Session`]
/// (data only when the response is not a 5xx, as tower-sessions does).
fn finish<B>(sh: &Shared, res: &mut Response<B>, came: Came) -> Option<Work> {
    if let Some(Login(user)) = res.extensions_mut().remove::<Login>() {
        let old = match &came {
            Came::Live(s) => Some(s.0.key),
            _ => None,
        };
        return Some(Work::Login { old, user });
    }
    let session = match came {
        Came::Anonymous => return None,
        Came::Stale => {
            res.headers_mut().append(SET_COOKIE, sh.s.cookie.removal());
            return None;
        }
        Came::Live(s) => s,
    };
    let mut pending = session.take();
    if res.status().is_server_error() {
        pending.changes.clear();
    }
    if !pending.logout {
        let id = session.0.record.user.id.clone();
        res.extensions_mut().insert(AuthUser(id));
    }
    (!pending.is_empty()).then_some(Work::Session { session, pending })
}

impl Work {
    /// Does the work in the store; the `Set-Cookie` that results. A store failure keeps the
    /// handler's response: a login or a new id then sets no cookie, a logout still clears it.
    async fn run(self, sh: &Shared) -> Option<HeaderValue> {
        match self {
            Work::Login { old, user } => {
                if let Some(key) = old {
                    sh.logged(sh.store.delete(&key).await);
                }
                sh.logged(sh.create(&user, crate::store::no_data()).await)
            }
            Work::Session { session, pending } => {
                let key = session.0.key;
                if pending.logout {
                    sh.logged(sh.store.delete(&key).await);
                    return Some(sh.s.cookie.removal());
                }
                if !pending.changes.is_empty() {
                    sh.logged(sh.store.update(&key, pending.changes).await);
                }
                if !pending.rotate {
                    return None;
                }
                let now = sh.s.clock.now();
                let data = match sh.logged(sh.store.load(&key, now, sh.s.timeouts).await)? {
                    Some(r) => r.data,
                    None => session.0.record.data.clone(),
                };
                let cookie = sh.logged(sh.create(&session.0.record.user, data).await)?;
                sh.logged(sh.store.delete(&key).await);
                Some(cookie)
            }
        }
    }

    /// The user a [`Login`] logs in.
    fn login_user(&self) -> Option<Arc<str>> {
        match self {
            Work::Login { user, .. } => Some(user.id.clone()),
            Work::Session { .. } => None,
        }
    }
}

/// The store work of a response, then the response with its cookie, type-erased so that
/// [`ResponseFuture`] need not name the response body.
#[inline(never)]
fn finishing<B: Send + 'static>(
    sh: Arc<Shared>,
    work: Work,
    mut res: Response<B>,
) -> Pin<Box<dyn Future<Output = Box<dyn Any + Send>> + Send>> {
    Box::pin(async move {
        let user = work.login_user();
        if let Some(cookie) = work.run(&sh).await {
            res.headers_mut().append(SET_COOKIE, cookie);
            if let Some(id) = user {
                res.extensions_mut().insert(AuthUser(id));
            }
        }
        Box::new(res) as Box<dyn Any + Send>
    })
}

pin_project! {
    /// The response future of [`Auth`].
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
        // The store work a response asked for; then the response (its body's type erased).
        // Beside `state`, not a state of its own: the inner future stays (the plugin stack
        // keeps it until the response's body ends).
        finishing: Option<Pin<Box<dyn Future<Output = Box<dyn Any + Send>> + Send>>>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        // A store that answers later: loads the session, then calls the inner service.
        Loading { fut: Pin<Box<dyn Future<Output = Loaded<F>> + Send>> },
        Inner { #[pin] fut: F, shared: Arc<Shared>, came: Came },
        // Boxed: a response is large, and every stack slot's future is as large as the
        // largest plugin's.
        Ready { res: Option<Box<Response<Bytes>>> },
        Own { fut: Pin<Box<dyn Future<Output = Response<Bytes>> + Send>> },
    }
}

/// What the [`State::Loading`] step ends in.
enum Loaded<F> {
    Call(F, Arc<Shared>, Came),
    Refuse(Response<Bytes>),
}

impl<F> ResponseFuture<F> {
    fn inner(fut: F, shared: &Arc<Shared>, came: Came) -> Self {
        ResponseFuture {
            state: State::Inner {
                fut,
                shared: shared.clone(),
                came,
            },
            finishing: None,
        }
    }

    fn ready(res: Response<Bytes>) -> Self {
        ResponseFuture {
            state: State::Ready {
                res: Some(Box::new(res)),
            },
            finishing: None,
        }
    }

    fn own(fut: Pin<Box<dyn Future<Output = Response<Bytes>> + Send>>) -> Self {
        ResponseFuture {
            state: State::Own { fut },
            finishing: None,
        }
    }
}

impl<F, B, E> PluginFuture for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Send + 'static,
{
    type Body = PluginBody<B>;
    type Error = E;

    #[inline]
    fn poll_with<T>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        wrap: impl FnOnce(PluginBody<B>) -> T,
    ) -> Poll<Result<Response<T>, E>> {
        let this = self.project();
        let mut state = this.state;
        // The store's steps (`Loading`, `finishing`) are out of line: every stack slot's poll
        // inlines this one, and it stays as small as the memory store's path needs.
        loop {
            if let Some(fut) = this.finishing {
                let res = ready!(poll_finishing::<B>(fut, cx));
                *this.finishing = None;
                return Poll::Ready(Ok(res.map(|b| wrap(PluginBody::inner(b)))));
            }
            match state.as_mut().project() {
                StateProj::Inner { fut, shared, came } => {
                    let mut res = ready!(fut.poll(cx))?;
                    let came = std::mem::replace(came, Came::Anonymous);
                    match finish(shared, &mut res, came) {
                        None => return Poll::Ready(Ok(res.map(|b| wrap(PluginBody::inner(b))))),
                        Some(work) => *this.finishing = Some(finishing(shared.clone(), work, res)),
                    }
                }
                StateProj::Ready { res } => {
                    let res = res.take().expect("ResponseFuture polled after completion");
                    return Poll::Ready(Ok((*res).map(|b| wrap(PluginBody::full(b)))));
                }
                StateProj::Own { fut } => {
                    let res = ready!(fut.as_mut().poll(cx));
                    return Poll::Ready(Ok(res.map(|b| wrap(PluginBody::full(b)))));
                }
                StateProj::Loading { fut } => {
                    let next = ready!(poll_loading(fut, cx));
                    state.set(next);
                }
            }
        }
    }
}

impl<F> ResponseFuture<F> {
    /// The inner service's future, when the request went on to it.
    #[inline]
    fn called(self: Pin<&mut Self>) -> Option<Pin<&mut F>> {
        match self.project().state.project() {
            StateProj::Inner { fut, .. } => Some(fut),
            StateProj::Ready { .. } | StateProj::Own { .. } | StateProj::Loading { .. } => None,
        }
    }
}

/// Polls the session's load; the state the request goes on in.
#[inline(never)]
fn poll_loading<F>(
    fut: &mut Pin<Box<dyn Future<Output = Loaded<F>> + Send>>,
    cx: &mut Context<'_>,
) -> Poll<State<F>> {
    Poll::Ready(match ready!(fut.as_mut().poll(cx)) {
        Loaded::Call(fut, shared, came) => State::Inner { fut, shared, came },
        Loaded::Refuse(res) => State::Ready {
            res: Some(Box::new(res)),
        },
    })
}

/// Polls the store work after the response; the response, once it is done.
#[inline(never)]
fn poll_finishing<B: 'static>(
    fut: &mut Pin<Box<dyn Future<Output = Box<dyn Any + Send>> + Send>>,
    cx: &mut Context<'_>,
) -> Poll<Response<B>> {
    let res = ready!(fut.as_mut().poll(cx));
    let Ok(res) = res.downcast::<Response<B>>() else {
        unreachable!("the finishing step returns the response it was given")
    };
    Poll::Ready(*res)
}

tower_plugins_core::plugin_future!(ResponseFuture, kept_by_flatten: called);
