//! [`Cors`] and its [`ResponseFuture`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS,
    ORIGIN, VARY,
};
use http::{HeaderMap, HeaderValue, Method, Request, Response};
use pin_project_lite::pin_project;
use tower_plugins_core::{Before, Hooks, PluginBody, PluginFuture};
use tower_service::Service;

use crate::layer::Shared;
use crate::origin::OriginRequest;
use crate::preflight::{Answer, STAR, Scan, TRUE, preflight};

/// The CORS service. See the [crate docs](crate) for an example.
#[derive(Clone)]
pub struct Cors<S> {
    pub(crate) inner: S,
    pub(crate) shared: Arc<Shared>,
}

impl<S> Cors<S> {
    /// Wraps `inner` with the rules of `layer`.
    pub fn new(inner: S, layer: &crate::CorsLayer) -> Self {
        Cors {
            inner,
            shared: layer.shared.clone(),
        }
    }

    /// A new [`CorsLayer`](crate::CorsLayer), which allows no origin until told.
    pub fn layer() -> crate::CorsLayer {
        crate::CorsLayer::new()
    }

    tower_plugins_core::inner_service_accessors!();
}

impl<S: std::fmt::Debug> std::fmt::Debug for Cors<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cors").field("inner", &self.inner).finish()
    }
}

/// The request's single `Origin`: `Ok(None)` when absent, `Err(())` when repeated or not
/// text (such a request is treated as coming from an origin that is not allowed).
fn single_origin(headers: &HeaderMap) -> Result<Option<&HeaderValue>, ()> {
    let mut all = headers.get_all(ORIGIN).iter();
    match (all.next(), all.next()) {
        (None, _) => Ok(None),
        (Some(v), None) => Ok(Some(v)),
        (Some(_), Some(_)) => Err(()),
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Cors<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<PluginBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let kind = match decide(&self.shared, &req) {
            Decision::Actual { acao, vary } => Kind::Actual {
                fut: self.inner.call(req),
                allow: acao.map(|origin| Allow {
                    origin,
                    shared: self.shared.clone(),
                }),
                vary,
            },
            // Boxed in the future: an answer is a whole response head, and inline it would
            // make every CORS future (and every plugin-stack slot holding one) that large.
            Decision::Preflight(res) => Kind::Preflight {
                res: Some(Box::new(res)),
            },
        };
        ResponseFuture { kind }
    }
}

/// What a request gets: the preflight's answer, or what its response gets.
enum Decision {
    /// An actual request: its response's `Access-Control-Allow-Origin` when its origin is
    /// allowed, and whether `Vary: Origin` is added.
    Actual {
        acao: Option<HeaderValue>,
        vary: bool,
    },
    /// A preflight's answer.
    Preflight(Answer),
}

#[inline]
fn decide<B>(s: &Shared, req: &Request<B>) -> Decision {
    let vary = s.origins.varies();
    // A preflight needs four request headers: read them in one pass rather than hashing
    // each name.
    let scan = (req.method() == Method::OPTIONS).then(|| Scan::new(req.headers()));
    let origin = match &scan {
        Some(sc) => sc.origin(),
        None => single_origin(req.headers()),
    };
    let origin = match origin {
        Ok(None) => return Decision::Actual { acao: None, vary },
        Ok(Some(v)) => v.to_str().ok().map(|text| (v, text)),
        Err(()) => None,
    };
    let allowed = origin.filter(|(_, text)| {
        s.origins.allows(&OriginRequest {
            origin: text,
            method: req.method(),
            uri: req.uri(),
            headers: req.headers(),
        })
    });
    let acao = allowed.map(|(v, _)| if s.origins.is_any() { STAR } else { v.clone() });
    match scan.filter(|sc| sc.methods > 0) {
        Some(sc) => Decision::Preflight(preflight(s, &sc, acao)),
        None => Decision::Actual { acao, vary },
    }
}

/// What CORS keeps of an actual request for its response.
#[derive(Debug)]
pub struct CorsState {
    acao: Option<HeaderValue>,
    vary: bool,
}

impl Hooks for crate::CorsLayer {
    type State = CorsState;

    #[inline]
    fn on_request<B>(&self, req: &mut Request<B>) -> Before<CorsState> {
        match decide(&self.shared, req) {
            Decision::Actual { acao, vary } => Before::Continue(CorsState { acao, vary }),
            Decision::Preflight(res) => Before::Answer(res.map(Option::unwrap_or_default)),
        }
    }

    #[inline]
    fn on_response<B>(&self, state: &mut CorsState, res: &mut Response<B>) {
        respond(
            &self.shared,
            res.headers_mut(),
            state.acao.take(),
            state.vary,
        );
    }
}

/// An actual request's response head: its CORS headers when allowed, `Vary: Origin` when
/// the answer depends on the origin.
#[inline]
fn respond(s: &Shared, h: &mut HeaderMap, acao: Option<HeaderValue>, vary: bool) {
    if let Some(origin) = acao {
        apply_actual(s, h, origin);
    }
    if vary {
        append_vary(h, "origin");
    }
}

/// What an allowed actual request adds to its response.
struct Allow {
    origin: HeaderValue,
    shared: Arc<Shared>,
}

pin_project! {
    /// The response future of [`Cors`].
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Actual { #[pin] fut: F, allow: Option<Allow>, vary: bool },
        Preflight { res: Option<Box<Answer>> },
    }
}

impl<F, B, E> PluginFuture for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Body = PluginBody<B>;
    type Error = E;

    fn poll_with<T>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        wrap: impl FnOnce(PluginBody<B>) -> T,
    ) -> Poll<Result<Response<T>, E>> {
        match self.project().kind.project() {
            KindProj::Preflight { res } => {
                // Polled after completion: an empty answer rather than a panic.
                let res = res.take().map(|r| *r).unwrap_or_default();
                Poll::Ready(Ok(res.map(|body| {
                    wrap(match body {
                        Some(text) => PluginBody::full(text),
                        None => PluginBody::empty(),
                    })
                })))
            }
            KindProj::Actual { fut, allow, vary } => {
                let res = ready!(fut.poll(cx))?;
                let (mut parts, body) = res.into_parts();
                match allow.take() {
                    Some(a) => respond(&a.shared, &mut parts.headers, Some(a.origin), *vary),
                    None if *vary => append_vary(&mut parts.headers, "origin"),
                    None => {}
                }
                Poll::Ready(Ok(Response::from_parts(
                    parts,
                    wrap(PluginBody::inner(body)),
                )))
            }
        }
    }
}

impl<F> ResponseFuture<F> {
    /// The inner service's future, when the request went on to it (not for a preflight).
    #[inline]
    fn called(self: Pin<&mut Self>) -> Option<Pin<&mut F>> {
        match self.project().kind.project() {
            KindProj::Actual { fut, .. } => Some(fut),
            KindProj::Preflight { .. } => None,
        }
    }
}

tower_plugins_core::plugin_future!(ResponseFuture, kept_by_flatten: called);

fn apply_actual(s: &Shared, h: &mut HeaderMap, origin: HeaderValue) {
    let force = s.override_handler;
    if !force && h.contains_key(ACCESS_CONTROL_ALLOW_ORIGIN) {
        // The handler answered CORS itself for this response.
        return;
    }
    let credentials = s.credentials && origin != STAR;
    h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    if credentials && (force || !h.contains_key(ACCESS_CONTROL_ALLOW_CREDENTIALS)) {
        h.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, TRUE);
    }
    if let Some(expose) = &s.expose {
        if force || !h.contains_key(ACCESS_CONTROL_EXPOSE_HEADERS) {
            h.insert(ACCESS_CONTROL_EXPOSE_HEADERS, expose.clone());
        }
    }
}

/// Adds `name` to `Vary` unless it is listed already or `Vary: *` is set. Values the handler
/// wrote are kept.
pub(crate) fn append_vary(h: &mut HeaderMap, name: &'static str) {
    for v in h.get_all(VARY) {
        let Ok(text) = v.to_str() else { continue };
        for item in text.split(',') {
            let item = item.trim();
            if item == "*" || item.eq_ignore_ascii_case(name) {
                return;
            }
        }
    }
    h.append(VARY, HeaderValue::from_static(name));
}
