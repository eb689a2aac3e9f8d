//! The stack as a service: a chain of [`Slot`]s, as deep as the stack needs: nested for one
//! entry, a kept chain (`kept.rs`) from two on.
//!
//! A stack of N entries pays for N slots, not eight: the chain is exactly as deep as the stack
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

use super::kept::{
    Base, BaseFuture, Close, CloseFuture, FlatBody, KeptBody, KeptEnd, KeptSlot, KeptSlotFuture,
};
use super::next::Next;
use super::registry::Step;
use super::slot::{Composable, Slot, SlotBody, SlotFuture, enum_body, erase};
use crate::{Body, BoxError};

/// How many entries the stack composes statically; entries past it are composed with their
/// types erased inside the last slot.
#[cfg(test)]
pub(crate) const DEPTH: usize = 8;

fn rest(steps: &[Step], from: usize) -> &[Step] {
    steps.get(from..).unwrap_or(&[])
}

/// The one slot of a one-entry stack (`S1`), its future and body: the plugin wraps the body
/// (as a layer composed by hand does), and nothing is allocated.
type S1<S> = Slot<S>;
type F1<F> = SlotFuture<F>;
type B1<B> = SlotBody<B>;

/// One slot, the [last](Slot::last): every step, erased after the first.
fn d1<N: Composable>(steps: &[Step], inner: N) -> S1<N> {
    Slot::last(steps, inner, erase)
}

/// What a level of a kept chain needs of the service below it: [`Composable`], with the
/// kept chain's [`FlatBody`] and a future that ends the levels below.
pub(crate) trait KeptComposable:
    Composable<ResBody = FlatBody<Self::Inner>, Future: KeptEnd>
{
    /// The body of the service the chain wraps.
    type Inner: http_body::Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static;
}

impl<N, B> KeptComposable for N
where
    N: Composable<ResBody = FlatBody<B>, Future: KeptEnd>,
    B: http_body::Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static,
{
    type Inner = B;
}

/// A kept chain erased under a custom plugin: closed first, so that its body ends it.
fn close_erase<N: KeptComposable>(inner: N) -> Next {
    erase(Close(inner))
}

/// `k` levels of a kept chain over `inner` (`K1` to `K8`) and their futures (`KF1`..). Each
/// depth's type is the next one's inner type, so every depth costs no slot type the deepest
/// does not already have.
type K1<N> = KeptSlot<N>;
type KF1<F> = KeptSlotFuture<F>;

/// One level, the [last](Slot::last): every step, erased after the first.
fn k1<N: KeptComposable>(steps: &[Step], inner: N) -> K1<N> {
    KeptSlot(Slot::last(steps, inner, close_erase))
}

macro_rules! kept_depths {
    ($($k:ident $kf:ident = $prev_k:ident $prev_kf:ident, $d:ident > $prev:ident;)*) => {
        $(
            type $k<N> = KeptSlot<$prev_k<N>>;
            type $kf<F> = KeptSlotFuture<$prev_kf<F>>;

            /// The first of `steps` in its own level over the levels of the rest.
            fn $d<N: KeptComposable>(steps: &[Step], inner: N) -> $k<N> {
                KeptSlot(Slot::one(steps.first(), $prev(rest(steps, 1), inner), close_erase))
            }
        )*
    };
}

kept_depths! {
    K2 KF2 = K1 KF1, k2 > k1;
    K3 KF3 = K2 KF2, k3 > k2;
    K4 KF4 = K3 KF3, k4 > k3;
    K5 KF5 = K4 KF4, k5 > k4;
    K6 KF6 = K5 KF5, k6 > k5;
    K7 KF7 = K6 KF6, k7 > k6;
    K8 KF8 = K7 KF7, k8 > k7;
}

/// The chain, exactly as deep as the stack (up to eight), with its future and body. One entry
/// nests (no allocation); two or more are a kept chain, closed: its future in a box that the
/// response body keeps. From three on the service is behind a box too, so that every stack
/// service, future and response is not as large as the deepest one (they are cloned and
/// moved on every request); two levels keep their service inline.
macro_rules! chain {
    ($($d:ident = $n:literal: $k:ident $kf:ident $new:ident;)*) => {
        enum Chain<S> {
            D0(S),
            D1(S1<S>),
            D2(Close<K2<Base<S>>>),
            $($d(Box<Close<$k<Base<S>>>>),)*
        }

        impl<S: Clone> Clone for Chain<S> {
            fn clone(&self) -> Self {
                match self {
                    Chain::D0(s) => Chain::D0(s.clone()),
                    Chain::D1(s) => Chain::D1(s.clone()),
                    Chain::D2(s) => Chain::D2(s.clone()),
                    $(Chain::$d(s) => Chain::$d(s.clone()),)*
                }
            }
        }

        impl<S> Chain<S>
        where
            S: Composable,
        {
            fn new(steps: &[Step], inner: S) -> Self {
                match steps.len() {
                    0 => Chain::D0(inner),
                    1 => Chain::D1(d1(steps, inner)),
                    2 => Chain::D2(Close(k2(steps, Base(inner)))),
                    $($n => Chain::$d(Box::new(Close($new(steps, Base(inner))))),)*
                    // Past the deepest, the last level composes the rest erased.
                    _ => Chain::D8(Box::new(Close(k8(steps, Base(inner))))),
                }
            }
        }

        impl<S, B> Chain<S>
        where
            S: Service<Request<Body>, Response = Response<B>, Error = Infallible>
                + Clone
                + Send
                + 'static,
            S::Future: Send + 'static,
            B: http_body::Body<Data = Bytes> + Send + 'static,
            B::Error: Into<BoxError>,
        {
            #[inline]
            fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
                match self {
                    Chain::D0(s) => s.poll_ready(cx),
                    Chain::D1(s) => s.poll_ready(cx),
                    Chain::D2(s) => s.poll_ready(cx),
                    $(Chain::$d(s) => s.poll_ready(cx),)*
                }
            }

            #[inline]
            fn call(&mut self, req: Request<Body>) -> ChainFuture<S::Future> {
                match self {
                    Chain::D0(s) => ChainFuture::D0 { fut: s.call(req) },
                    Chain::D1(s) => ChainFuture::D1 { fut: s.call(req) },
                    Chain::D2(s) => ChainFuture::D2 { fut: s.call(req) },
                    $(Chain::$d(s) => ChainFuture::$d { fut: s.call(req) },)*
                }
            }
        }

        pin_project! {
            #[project = ChainFutureProj]
            enum ChainFuture<F> {
                D0 { #[pin] fut: F },
                D1 { #[pin] fut: F1<F> },
                D2 { fut: CloseFuture<KF2<BaseFuture<F>>> },
                $($d { fut: CloseFuture<$kf<BaseFuture<F>>> },)*
            }
        }

        impl<F, B> Future for ResponseFuture<F>
        where
            F: Future<Output = Result<Response<B>, Infallible>> + Send + 'static,
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
                    ChainFutureProj::D2 { fut } => {
                        ready!(Pin::new(fut).poll(cx))?.map(|body| ResponseBody {
                            inner: ChainBody::Kept { body },
                        })
                    }
                    $(ChainFutureProj::$d { fut } => {
                        ready!(Pin::new(fut).poll(cx))?.map(|body| ResponseBody {
                            inner: ChainBody::Kept { body },
                        })
                    })*
                };
                Poll::Ready(Ok(res))
            }
        }
    };
}

chain! {
    D3 = 3: K3 KF3 k3;
    D4 = 4: K4 KF4 k4;
    D5 = 5: K5 KF5 k5;
    D6 = 6: K6 KF6 k6;
    D7 = 7: K7 KF7 k7;
    D8 = 8: K8 KF8 k8;
}

pin_project! {
    #[project = ChainBodyProj]
    enum ChainBody<B> {
        D0 { #[pin] body: B },
        D1 { #[pin] body: B1<B> },
        Kept { #[pin] body: KeptBody<B> },
    }
}

enum_body!(ChainBody, ChainBodyProj, [D0, D1, Kept]);

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
    S::Future: Send + 'static,
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
