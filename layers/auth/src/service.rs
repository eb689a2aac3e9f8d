//! [`Auth`] and its [`ResponseFuture`]: the session of each request, the rules, and what the
//! handler asked of the session once its response is ready.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::header::SET_COOKIE;
use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_plugins_core::{AuthUser, BoxError, PluginBody, PluginFuture};
use tower_service::Service;

use crate::answer::{login_url, problem, see_other, unauthorized};
use crate::endpoints::{login_get, login_post, logout};
use crate::layer::Shared;
use crate::rules::Verdict;
use crate::session::{CurrentUser, Login, Session};

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
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ReqBody: http_body::Body + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<BoxError>,
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
            return ResponseFuture::ready(logout(sh, &req));
        }
        // Anonymous traffic stops here: one header lookup, no store, no allocation.
        let Some(key) = sh.cookie_key(req.headers()) else {
            return match sh.s.rules.verdict(&req, None) {
                Verdict::Pass => ResponseFuture::inner(self.inner.call(req), sh, Came::Anonymous),
                refused => ResponseFuture::ready(refusal(sh, &req, refused)),
            };
        };
        let now = sh.s.clock.now();
        let record = sh.store.load(&key, now, sh.s.touch_every);
        let verdict =
            sh.s.rules
                .verdict(&req, record.as_ref().map(|r| &*r.user.roles));
        if verdict != Verdict::Pass {
            return ResponseFuture::ready(refusal(sh, &req, verdict));
        }
        let came = match record {
            // A signed id with no live session: cleared, so the browser stops sending it.
            None => Came::Stale,
            Some(r) => {
                if !sh.s.csrf.allows(&req, &sh.s.client_ip) {
                    let refused = problem(StatusCode::FORBIDDEN, "cross-site request refused");
                    return ResponseFuture::ready(refused);
                }
                let ext = req.extensions_mut();
                ext.insert(AuthUser(r.user.id.clone()));
                ext.insert(CurrentUser::of(&r));
                let session = Session::new(key, r);
                ext.insert(session.clone());
                Came::Live(session)
            }
        };
        let sh = sh.clone();
        ResponseFuture::inner(self.inner.call(req), &sh, came)
    }
}

/// The answer to a request the rules refused.
fn refusal<B>(sh: &Shared, req: &Request<B>, verdict: Verdict) -> Response<Bytes> {
    let login = &sh.s.endpoints.login;
    match verdict {
        Verdict::Redirect => {
            let target = req.uri().path_and_query().map(|p| p.as_str());
            let next =
                target.filter(|_| matches!(*req.method(), http::Method::GET | http::Method::HEAD));
            see_other(&login_url(login, next, false))
        }
        Verdict::Forbidden => problem(StatusCode::FORBIDDEN, "this needs a role you do not have"),
        Verdict::Unauthorized | Verdict::Pass => unauthorized(login),
    }
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

/// Applies what the handler asked once its response is ready: a [`Login`] in the response
/// (a new session, whatever the request had), else what it asked of its [`Session`]; and
/// sets the cookie that results.
fn finish<B>(sh: &Shared, res: &mut Response<B>, came: Came) {
    let old = match &came {
        Came::Live(s) => Some(s.0.key),
        _ => None,
    };
    if let Some(Login(user)) = res.extensions_mut().remove::<Login>() {
        if let Some(key) = old {
            sh.store.delete(&key);
        }
        let id = user.id.clone();
        let cookie = sh.create(&user, crate::store::no_data());
        res.headers_mut().append(SET_COOKIE, cookie);
        res.extensions_mut().insert(AuthUser(id));
        return;
    }
    let session = match came {
        Came::Anonymous => return,
        Came::Stale => {
            res.headers_mut().append(SET_COOKIE, sh.s.cookie.removal());
            return;
        }
        Came::Live(s) => s,
    };
    let (key, record) = (session.0.key, &session.0.record);
    let pending = session.take();
    if pending.logout {
        sh.store.delete(&key);
        res.headers_mut().append(SET_COOKIE, sh.s.cookie.removal());
        return;
    }
    if !pending.changes.is_empty() && !res.status().is_server_error() {
        sh.store.update(&key, pending.changes);
    }
    if pending.rotate {
        let now = sh.s.clock.now();
        let data = (sh.store.load(&key, now, u64::MAX)).map_or(record.data.clone(), |r| r.data);
        sh.store.delete(&key);
        res.headers_mut()
            .append(SET_COOKIE, sh.create(&record.user, data));
    }
    res.extensions_mut()
        .insert(AuthUser(record.user.id.clone()));
}

pin_project! {
    /// The response future of [`Auth`].
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Inner { #[pin] fut: F, shared: Arc<Shared>, came: Came },
        // Boxed: a response is large, and every stack slot's future is as large as the
        // largest plugin's.
        Ready { res: Option<Box<Response<Bytes>>> },
        Own { fut: Pin<Box<dyn Future<Output = Response<Bytes>> + Send>> },
    }
}

impl<F> ResponseFuture<F> {
    fn inner(fut: F, shared: &Arc<Shared>, came: Came) -> Self {
        ResponseFuture {
            state: State::Inner {
                fut,
                shared: shared.clone(),
                came,
            },
        }
    }

    fn ready(res: Response<Bytes>) -> Self {
        ResponseFuture {
            state: State::Ready {
                res: Some(Box::new(res)),
            },
        }
    }

    fn own(fut: Pin<Box<dyn Future<Output = Response<Bytes>> + Send>>) -> Self {
        ResponseFuture {
            state: State::Own { fut },
        }
    }
}

impl<F, B, E> PluginFuture for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Body = PluginBody<B>;
    type Error = E;

    #[inline]
    fn poll_with<T>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        wrap: impl FnOnce(PluginBody<B>) -> T,
    ) -> Poll<Result<Response<T>, E>> {
        match self.project().state.project() {
            StateProj::Inner { fut, shared, came } => {
                let mut res = ready!(fut.poll(cx))?;
                finish(shared, &mut res, std::mem::replace(came, Came::Anonymous));
                Poll::Ready(Ok(res.map(|b| wrap(PluginBody::inner(b)))))
            }
            StateProj::Ready { res } => {
                let res = res.take().expect("ResponseFuture polled after completion");
                Poll::Ready(Ok((*res).map(|b| wrap(PluginBody::full(b)))))
            }
            StateProj::Own { fut } => {
                let res = ready!(fut.as_mut().poll(cx));
                Poll::Ready(Ok(res.map(|b| wrap(PluginBody::full(b)))))
            }
        }
    }
}

tower_plugins_core::plugin_future!(ResponseFuture);
