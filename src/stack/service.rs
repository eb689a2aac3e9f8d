//! The stack as a service: a fixed depth of static slots, each holding any built-in plugin.
//!
//! An arbitrary order of different layer types cannot be written as one static type without
//! erasing the type at every boundary (one boxed future per entry per request). Instead the
//! stack is [`DEPTH`] nested [`Slot`]s; each slot is an enum over every built-in plugin's
//! service (or a pass-through), so the configured order is honoured with no allocation and no
//! dynamic call. Only a custom plugin (whose type is unknown here) erases the service below it,
//! and entries past the static depth are composed erased inside the last slot.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Frame, SizeHint};
use pin_project_lite::pin_project;
use tower::util::BoxCloneSyncService;
use tower_layer::Layer;
use tower_service::Service;

use super::registry::{DynLayer, Next, Step, into_body_response};
use crate::{Body, BoxError};

/// How many entries the stack composes statically; entries past it are composed with their
/// types erased inside the last slot.
pub const DEPTH: usize = 8;

/// One position of the stack.
pub struct Slot<N> {
    kind: SlotKind<N>,
}

enum SlotKind<N> {
    Pass(N),
    #[cfg(feature = "timer")]
    Timer(tower_plugins_timer::Timer<N>),
    Dyn(Next),
}

impl<N: Clone> Clone for Slot<N> {
    fn clone(&self) -> Self {
        Slot {
            kind: match &self.kind {
                SlotKind::Pass(n) => SlotKind::Pass(n.clone()),
                #[cfg(feature = "timer")]
                SlotKind::Timer(t) => SlotKind::Timer(t.clone()),
                SlotKind::Dyn(d) => SlotKind::Dyn(d.clone()),
            },
        }
    }
}

impl<N> fmt::Debug for Slot<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = match &self.kind {
            SlotKind::Pass(_) => "pass",
            #[cfg(feature = "timer")]
            SlotKind::Timer(_) => "timer",
            SlotKind::Dyn(_) => "dyn",
        };
        f.debug_tuple("Slot").field(&k).finish()
    }
}

/// Erases a service into [`Next`].
fn erase<N, B>(n: N) -> Next
where
    N: Service<Request<Body>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    N::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    BoxCloneSyncService::new(tower::util::MapResponse::new(n, into_body_response))
}

fn apply_dyn(step: &Step, next: Next) -> Next {
    match step {
        #[cfg(feature = "timer")]
        Step::Timer(l) => erase(l.layer(next)),
        Step::Dyn(DynLayer(f)) => f(next),
    }
}

impl<N, B> Slot<N>
where
    N: Service<Request<Body>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    N::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    /// A slot holding `step` (or nothing) over `inner`.
    fn one(step: Option<&Step>, inner: N) -> Self {
        let kind = match step {
            None => SlotKind::Pass(inner),
            #[cfg(feature = "timer")]
            Some(Step::Timer(l)) => SlotKind::Timer(l.layer(inner)),
            Some(Step::Dyn(DynLayer(f))) => SlotKind::Dyn(f(erase(inner))),
        };
        Slot { kind }
    }

    /// The last slot: one step statically, or every remaining step erased.
    fn tail(steps: &[Step], inner: N) -> Self {
        if steps.len() <= 1 {
            return Self::one(steps.first(), inner);
        }
        let next = steps
            .iter()
            .rev()
            .fold(erase(inner), |next, step| apply_dyn(step, next));
        Slot {
            kind: SlotKind::Dyn(next),
        }
    }
}

impl<N, B> Service<Request<Body>> for Slot<N>
where
    N: Service<Request<Body>, Response = Response<B>, Error = Infallible>,
    B: http_body::Body<Data = Bytes>,
{
    type Response = Response<SlotBody<B>>;
    type Error = Infallible;
    type Future = SlotFuture<N::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        match &mut self.kind {
            SlotKind::Pass(n) => n.poll_ready(cx),
            #[cfg(feature = "timer")]
            SlotKind::Timer(t) => t.poll_ready(cx),
            SlotKind::Dyn(d) => d.poll_ready(cx),
        }
    }

    #[inline]
    fn call(&mut self, req: Request<Body>) -> Self::Future {
        match &mut self.kind {
            SlotKind::Pass(n) => SlotFuture::Pass { fut: n.call(req) },
            #[cfg(feature = "timer")]
            SlotKind::Timer(t) => SlotFuture::Timer { fut: t.call(req) },
            SlotKind::Dyn(d) => SlotFuture::Dyn { fut: d.call(req) },
        }
    }
}

pin_project! {
    /// The response future of a [`Slot`].
    #[project = SlotFutureProj]
    #[allow(missing_docs)]
    pub enum SlotFuture<F> {
        Pass { #[pin] fut: F },
        #[cfg(feature = "timer")]
        Timer { #[pin] fut: tower_plugins_timer::ResponseFuture<F> },
        Dyn { fut: Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>> },
    }
}

impl<F, B> Future for SlotFuture<F>
where
    F: Future<Output = Result<Response<B>, Infallible>>,
    B: http_body::Body<Data = Bytes>,
{
    type Output = Result<Response<SlotBody<B>>, Infallible>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let res = match self.project() {
            SlotFutureProj::Pass { fut } => {
                ready!(fut.poll(cx))?.map(|body| SlotBody::Pass { body })
            }
            #[cfg(feature = "timer")]
            SlotFutureProj::Timer { fut } => {
                ready!(fut.poll(cx))?.map(|body| SlotBody::Timer { body })
            }
            SlotFutureProj::Dyn { fut } => {
                ready!(fut.as_mut().poll(cx))?.map(|body| SlotBody::Dyn { body })
            }
        };
        Poll::Ready(Ok(res))
    }
}

pin_project! {
    /// The response body of a [`Slot`].
    #[project = SlotBodyProj]
    #[allow(missing_docs)]
    pub enum SlotBody<B> {
        Pass { #[pin] body: B },
        #[cfg(feature = "timer")]
        Timer { #[pin] body: tower_plugins_timer::ResponseBody<B> },
        Dyn { #[pin] body: Body },
    }
}

impl<B> http_body::Body for SlotBody<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    #[inline]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project() {
            SlotBodyProj::Pass { body } => body.poll_frame(cx).map_err(Into::into),
            #[cfg(feature = "timer")]
            SlotBodyProj::Timer { body } => body.poll_frame(cx).map_err(Into::into),
            SlotBodyProj::Dyn { body } => body.poll_frame(cx).map_err(Into::into),
        }
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        match self {
            SlotBody::Pass { body } => body.is_end_stream(),
            #[cfg(feature = "timer")]
            SlotBody::Timer { body } => body.is_end_stream(),
            SlotBody::Dyn { body } => body.is_end_stream(),
        }
    }

    #[inline]
    fn size_hint(&self) -> SizeHint {
        match self {
            SlotBody::Pass { body } => body.size_hint(),
            #[cfg(feature = "timer")]
            SlotBody::Timer { body } => body.size_hint(),
            SlotBody::Dyn { body } => body.size_hint(),
        }
    }
}

type Chain<S> = Slot<Slot<Slot<Slot<Slot<Slot<Slot<Slot<S>>>>>>>>;
type ChainBody<B> =
    SlotBody<SlotBody<SlotBody<SlotBody<SlotBody<SlotBody<SlotBody<SlotBody<B>>>>>>>>;
type ChainFuture<F> = SlotFuture<
    SlotFuture<SlotFuture<SlotFuture<SlotFuture<SlotFuture<SlotFuture<SlotFuture<F>>>>>>>,
>;

/// The tower [`Layer`] of a [`PluginStack`](crate::PluginStack): wraps a service in every
/// enabled plugin, in the configured order (the first entry sees the request first).
///
/// The wrapped service takes `Request<Body>` ([`Body`](crate::Body) is the boxed body axum
/// uses, so an axum `Router` fits as it is) and must not fail (`Error = Infallible`, as axum
/// routers, tonic routes and `service_fn`s that answer every request with a response are).
/// The layered service accepts any request body.
#[derive(Clone)]
pub struct PluginStackLayer {
    pub(crate) steps: Arc<[Step]>,
}

impl fmt::Debug for PluginStackLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginStackLayer")
            .field("steps", &self.steps.len())
            .finish()
    }
}

impl<S, B> Layer<S> for PluginStackLayer
where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Service = PluginStackService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        let s = &self.steps;
        let l7 = Slot::tail(s.get(7..).unwrap_or(&[]), inner);
        let l6 = Slot::one(s.get(6), l7);
        let l5 = Slot::one(s.get(5), l6);
        let l4 = Slot::one(s.get(4), l5);
        let l3 = Slot::one(s.get(3), l4);
        let l2 = Slot::one(s.get(2), l3);
        let l1 = Slot::one(s.get(1), l2);
        let l0 = Slot::one(s.first(), l1);
        PluginStackService { inner: l0 }
    }
}

/// The service produced by [`PluginStackLayer`].
pub struct PluginStackService<S> {
    inner: Chain<S>,
}

impl<S: Clone> Clone for PluginStackService<S> {
    fn clone(&self) -> Self {
        PluginStackService {
            inner: self.inner.clone(),
        }
    }
}

impl<S> fmt::Debug for PluginStackService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginStackService").finish_non_exhaustive()
    }
}

impl<S, B, ReqBody> Service<Request<ReqBody>> for PluginStackService<S>
where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible>,
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
    ReqBody: http_body::Body<Data = Bytes> + Send + 'static,
    ReqBody::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody<B>>;
    type Error = Infallible;
    type Future = ResponseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        // `Body::new` reuses a body that already is a `Body` (axum's) without boxing again.
        ResponseFuture {
            inner: self.inner.call(req.map(Body::new)),
        }
    }
}

pin_project! {
    /// The response future of [`PluginStackService`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: ChainFuture<F>,
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, B> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, Infallible>>,
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Output = Result<Response<ResponseBody<B>>, Infallible>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let res = ready!(self.project().inner.poll(cx))?;
        Poll::Ready(Ok(res.map(|inner| ResponseBody { inner })))
    }
}

pin_project! {
    /// The response body of [`PluginStackService`]: the inner body as every plugin wrapped it.
    /// `size_hint` and `is_end_stream` are forwarded; errors are boxed.
    pub struct ResponseBody<B> {
        #[pin]
        inner: ChainBody<B>,
    }
}

impl<B> fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody").finish_non_exhaustive()
    }
}

impl<B> http_body::Body for ResponseBody<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    #[inline]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.project().inner.poll_frame(cx)
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    #[inline]
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
