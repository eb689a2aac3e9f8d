//! The stack as a service: a chain of nested [`Slot`]s, as deep as the stack needs.
//!
//! A stack of one entry pays for one slot, not eight: the chain is 0, 1, 2, 4 or 8 slots deep
//! (entries past the eighth are composed erased inside the last slot).

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
use tower_layer::Layer;
use tower_service::Service;

use super::registry::Step;
use super::slot::{Composable, Slot, SlotBody, SlotFuture, enum_body};
use crate::{Body, BoxError};

/// How many entries the stack composes statically; entries past it are composed with their
/// types erased inside the last slot.
#[cfg(test)]
pub(crate) const DEPTH: usize = 8;

/// Two nested slots, their future and their body; then four, then eight.
type TwoSlots<S> = Slot<Slot<S>>;
type FourSlots<S> = TwoSlots<TwoSlots<S>>;
type EightSlots<S> = FourSlots<FourSlots<S>>;
type TwoFutures<F> = SlotFuture<SlotFuture<F>>;
type FourFutures<F> = TwoFutures<TwoFutures<F>>;
type EightFutures<F> = FourFutures<FourFutures<F>>;
type TwoBodies<B> = SlotBody<SlotBody<B>>;
type FourBodies<B> = TwoBodies<TwoBodies<B>>;
type EightBodies<B> = FourBodies<FourBodies<B>>;

fn rest(steps: &[Step], from: usize) -> &[Step] {
    steps.get(from..).unwrap_or(&[])
}

/// The chain of slots, as deep as the stack needs.
enum Chain<S> {
    D0(S),
    D1(Slot<S>),
    D2(TwoSlots<S>),
    // Deep chains live behind a box so that every stack service is not as large as the
    // deepest one (it is cloned and moved on every request under axum).
    D4(Box<FourSlots<S>>),
    D8(Box<EightSlots<S>>),
}

impl<S: Clone> Clone for Chain<S> {
    fn clone(&self) -> Self {
        match self {
            Chain::D0(s) => Chain::D0(s.clone()),
            Chain::D1(s) => Chain::D1(s.clone()),
            Chain::D2(s) => Chain::D2(s.clone()),
            Chain::D4(s) => Chain::D4(s.clone()),
            Chain::D8(s) => Chain::D8(s.clone()),
        }
    }
}

impl<N> Slot<N>
where
    N: Composable,
{
    /// Two slots holding the first two of `steps` (or fewer) over `inner`.
    fn two(steps: &[Step], inner: N) -> TwoSlots<N> {
        Slot::one(steps.first(), Slot::one(steps.get(1), inner))
    }

    /// Two slots, the second being the [last](Slot::last): it takes every step after the
    /// first.
    fn two_last(steps: &[Step], inner: N) -> TwoSlots<N> {
        Slot::one(steps.first(), Slot::last(rest(steps, 1), inner))
    }

    fn four(steps: &[Step], inner: N) -> FourSlots<N> {
        Slot::two(steps, Slot::two(rest(steps, 2), inner))
    }

    fn four_last(steps: &[Step], inner: N) -> FourSlots<N> {
        Slot::two(steps, Slot::two_last(rest(steps, 2), inner))
    }

    fn eight_last(steps: &[Step], inner: N) -> EightSlots<N> {
        Slot::four(steps, Slot::four_last(rest(steps, 4), inner))
    }
}

impl<S> Chain<S>
where
    S: Composable,
{
    fn new(steps: &[Step], inner: S) -> Self {
        match steps.len() {
            0 => Chain::D0(inner),
            1 => Chain::D1(Slot::last(steps, inner)),
            2 => Chain::D2(Slot::two_last(steps, inner)),
            3 | 4 => Chain::D4(Box::new(Slot::four_last(steps, inner))),
            _ => Chain::D8(Box::new(Slot::eight_last(steps, inner))),
        }
    }
}

pin_project! {
    #[project = ChainFutureProj]
    enum ChainFuture<F> {
        D0 { #[pin] fut: F },
        D1 { #[pin] fut: SlotFuture<F> },
        D2 { #[pin] fut: TwoFutures<F> },
        D4 { fut: Pin<Box<FourFutures<F>>> },
        // Boxed so that every stack's future is not as large as the deepest one: a stack of
        // five to eight entries pays one allocation instead of every stack paying the copies.
        D8 { fut: Pin<Box<EightFutures<F>>> },
    }
}

pin_project! {
    #[project = ChainBodyProj]
    enum ChainBody<B> {
        D0 { #[pin] body: B },
        D1 { #[pin] body: SlotBody<B> },
        D2 { #[pin] body: TwoBodies<B> },
        // Boxed for the same reason as the deep futures: the body moves with the response,
        // and an inline eight-slot body would make every stack's response that large.
        D4 { #[pin] body: Pin<Box<FourBodies<B>>> },
        D8 { #[pin] body: Pin<Box<EightBodies<B>>> },
    }
}

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
        PluginStackService {
            inner: Chain::new(&self.steps, inner),
        }
    }
}

/// The service produced by [`PluginStackLayer`].
pub struct PluginStackService<S> {
    inner: Chain<S>,
}

/// A stack around a tonic service keeps its name, so that
/// `Server::builder().add_service(stack.layer().layer(svc))` routes to it (the stack then
/// sees only that service's calls: stats and admin endpoints are not reachable through it;
/// `Server::builder().layer(stack.layer())` sees every call).
#[cfg(feature = "tonic")]
impl<S: tonic::server::NamedService> tonic::server::NamedService for PluginStackService<S> {
    const NAME: &'static str = S::NAME;
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
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible> + Clone + Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    ReqBody: http_body::Body<Data = Bytes> + Send + 'static,
    ReqBody::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody<B>>;
    type Error = Infallible;
    type Future = ResponseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        match &mut self.inner {
            Chain::D0(s) => s.poll_ready(cx),
            Chain::D1(s) => s.poll_ready(cx),
            Chain::D2(s) => s.poll_ready(cx),
            Chain::D4(s) => s.poll_ready(cx),
            Chain::D8(s) => s.poll_ready(cx),
        }
    }

    #[inline]
    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        // `Body::new` reuses a body that already is a `Body` (axum's) without boxing again.
        let req = req.map(Body::new);
        let inner = match &mut self.inner {
            Chain::D0(s) => ChainFuture::D0 { fut: s.call(req) },
            Chain::D1(s) => ChainFuture::D1 { fut: s.call(req) },
            Chain::D2(s) => ChainFuture::D2 { fut: s.call(req) },
            Chain::D4(s) => ChainFuture::D4 {
                fut: Box::pin(s.call(req)),
            },
            Chain::D8(s) => ChainFuture::D8 {
                fut: Box::pin(s.call(req)),
            },
        };
        ResponseFuture { inner }
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
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Output = Result<Response<ResponseBody<B>>, Infallible>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let res = match self.project().inner.project() {
            ChainFutureProj::D0 { fut } => ready!(fut.poll(cx))?.map(|body| ResponseBody {
                inner: ChainBody::D0 { body },
            }),
            ChainFutureProj::D1 { fut } => ready!(fut.poll_wrapped(cx, |body| ResponseBody {
                inner: ChainBody::D1 { body },
            }))?,
            ChainFutureProj::D2 { fut } => ready!(fut.poll_wrapped(cx, |body| ResponseBody {
                inner: ChainBody::D2 { body },
            }))?,
            ChainFutureProj::D4 { fut } => {
                ready!(fut.as_mut().poll(cx))?.map(|body| ResponseBody {
                    inner: ChainBody::D4 {
                        body: Box::pin(body),
                    },
                })
            }
            ChainFutureProj::D8 { fut } => {
                ready!(fut.as_mut().poll(cx))?.map(|body| ResponseBody {
                    inner: ChainBody::D8 {
                        body: Box::pin(body),
                    },
                })
            }
        };
        Poll::Ready(Ok(res))
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
    B: http_body::Body<Data = Bytes> + Send + 'static,
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

enum_body!(ChainBody, ChainBodyProj, [D0, D1, D2, D4, D8]);
