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

/// Implements `http_body::Body` (`Bytes` data, boxed errors) for a pin-projected enum whose
/// every variant holds one body in a pinned `body` field.
macro_rules! enum_body {
    ($ty:ident, $proj:ident, [$($variant:ident),+ $(,)?]) => {
        impl<B> http_body::Body for $ty<B>
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
                    $($proj::$variant { body } => body.poll_frame(cx).map_err(Into::into),)+
                }
            }

            #[inline]
            fn is_end_stream(&self) -> bool {
                match self {
                    $($ty::$variant { body } => body.is_end_stream(),)+
                }
            }

            #[inline]
            fn size_hint(&self) -> SizeHint {
                match self {
                    $($ty::$variant { body } => body.size_hint(),)+
                }
            }
        }
    };
}

/// How many entries the stack composes statically; entries past it are composed with their
/// types erased inside the last slot.
pub const DEPTH: usize = 8;

/// Names a built-in plugin's response future and body for the slot enums: the plugin's own
/// types when its feature is on, [`Off`] otherwise.
macro_rules! slot_types {
    ($feature:literal, $future:ident = $f:ty, $body:ident = $b:ty) => {
        #[cfg(feature = $feature)]
        type $future<F> = $f;
        #[cfg(feature = $feature)]
        type $body<B> = $b;
        #[cfg(not(feature = $feature))]
        type $future<F> = Off<F>;
        #[cfg(not(feature = $feature))]
        type $body<B> = Off<B>;
    };
}

slot_types!(
    "timer",
    TimerFuture = tower_plugins_timer::ResponseFuture<F>,
    TimerBody = tower_plugins_timer::ResponseBody<B>
);
slot_types!(
    "cors",
    CorsFuture = tower_plugins_cors::ResponseFuture<F>,
    CorsBody = tower_plugins_core::PluginBody<B>
);
slot_types!(
    "rate-limit",
    RateFuture = tower_plugins_rate_limit::ResponseFuture<F>,
    RateBody = tower_plugins_core::PluginBody<B>
);
slot_types!(
    "stats",
    StatsFuture = tower_plugins_stats::ResponseFuture<F>,
    StatsBody = tower_plugins_stats::ResponseBody<B>
);
slot_types!(
    "request-log",
    LogFuture = tower_plugins_request_log::ResponseFuture<F>,
    LogBody = tower_plugins_request_log::ResponseBody<B>
);

/// The future and body of a plugin whose feature is off: a type with no value, so its slot
/// variants exist (pin-project-lite cannot `cfg` them away) but are never built.
#[allow(dead_code, unreachable_pub)]
#[derive(Debug)]
#[doc(hidden)]
pub struct Off<T>(Infallible, std::marker::PhantomData<fn() -> T>);

impl<F, B> Future for Off<F>
where
    F: Future<Output = Result<Response<B>, Infallible>>,
{
    type Output = Result<Response<Off<B>>, Infallible>;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        match self.0 {}
    }
}

impl<F> Off<F> {
    /// The disabled plugin's `poll_with`: never called, as no `Off` value exists.
    #[allow(dead_code)]
    fn poll_with<T, B>(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: impl FnOnce(Off<B>) -> T,
    ) -> Poll<Result<Response<T>, Infallible>> {
        match self.0 {}
    }
}

impl<B> http_body::Body for Off<B> {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.0 {}
    }
}

/// One position of the stack.
pub struct Slot<N> {
    kind: SlotKind<N>,
}

enum SlotKind<N> {
    Pass(N),
    #[cfg(feature = "timer")]
    Timer(tower_plugins_timer::Timer<N>),
    #[cfg(feature = "cors")]
    Cors(tower_plugins_cors::Cors<N>),
    #[cfg(feature = "request-log")]
    RequestLog(tower_plugins_request_log::RequestLog<N>),
    #[cfg(feature = "rate-limit")]
    RateLimit(tower_plugins_rate_limit::RateLimit<N>),
    #[cfg(feature = "stats")]
    Stats(tower_plugins_stats::Stats<N>),
    Dyn(Next),
}

impl<N: Clone> Clone for Slot<N> {
    fn clone(&self) -> Self {
        Slot {
            kind: match &self.kind {
                SlotKind::Pass(n) => SlotKind::Pass(n.clone()),
                #[cfg(feature = "timer")]
                SlotKind::Timer(t) => SlotKind::Timer(t.clone()),
                #[cfg(feature = "cors")]
                SlotKind::Cors(c) => SlotKind::Cors(c.clone()),
                #[cfg(feature = "request-log")]
                SlotKind::RequestLog(l) => SlotKind::RequestLog(l.clone()),
                #[cfg(feature = "rate-limit")]
                SlotKind::RateLimit(l) => SlotKind::RateLimit(l.clone()),
                #[cfg(feature = "stats")]
                SlotKind::Stats(l) => SlotKind::Stats(l.clone()),
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
            #[cfg(feature = "cors")]
            SlotKind::Cors(_) => "cors",
            #[cfg(feature = "request-log")]
            SlotKind::RequestLog(_) => "request_log",
            #[cfg(feature = "rate-limit")]
            SlotKind::RateLimit(_) => "rate_limit",
            #[cfg(feature = "stats")]
            SlotKind::Stats(_) => "stats",
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
        #[cfg(feature = "cors")]
        Step::Cors(l) => erase(l.layer(next)),
        #[cfg(feature = "request-log")]
        Step::RequestLog(l) => erase(l.layer(next)),
        #[cfg(feature = "rate-limit")]
        Step::RateLimit(l) => erase(l.layer(next)),
        #[cfg(feature = "stats")]
        Step::Stats(l) => erase(l.layer(next)),
        Step::Dyn(DynLayer(l)) => l.wrap(next),
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
            #[cfg(feature = "cors")]
            Some(Step::Cors(l)) => SlotKind::Cors(l.layer(inner)),
            #[cfg(feature = "request-log")]
            Some(Step::RequestLog(l)) => SlotKind::RequestLog(l.layer(inner)),
            #[cfg(feature = "rate-limit")]
            Some(Step::RateLimit(l)) => SlotKind::RateLimit(l.layer(inner)),
            #[cfg(feature = "stats")]
            Some(Step::Stats(l)) => SlotKind::Stats(l.layer(inner)),
            Some(Step::Dyn(DynLayer(l))) => SlotKind::Dyn(l.wrap(erase(inner))),
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
    // Clone and Send for the plugins that call the rest of the stack later (the rate
    // limiter, after asking Redis); every stack service is both (see `PluginStackLayer`).
    N: Service<Request<Body>, Response = Response<B>, Error = Infallible> + Clone + Send + 'static,
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
            #[cfg(feature = "cors")]
            SlotKind::Cors(c) => c.poll_ready(cx),
            #[cfg(feature = "request-log")]
            SlotKind::RequestLog(l) => l.poll_ready(cx),
            #[cfg(feature = "rate-limit")]
            SlotKind::RateLimit(l) => l.poll_ready(cx),
            #[cfg(feature = "stats")]
            SlotKind::Stats(l) => l.poll_ready(cx),
            SlotKind::Dyn(d) => d.poll_ready(cx),
        }
    }

    #[inline(always)]
    fn call(&mut self, req: Request<Body>) -> Self::Future {
        match &mut self.kind {
            SlotKind::Pass(n) => SlotFuture::Pass { fut: n.call(req) },
            #[cfg(feature = "timer")]
            SlotKind::Timer(t) => SlotFuture::Timer { fut: t.call(req) },
            #[cfg(feature = "cors")]
            SlotKind::Cors(c) => SlotFuture::Cors { fut: c.call(req) },
            #[cfg(feature = "request-log")]
            SlotKind::RequestLog(l) => SlotFuture::RequestLog { fut: l.call(req) },
            #[cfg(feature = "rate-limit")]
            SlotKind::RateLimit(l) => SlotFuture::RateLimit { fut: l.call(req) },
            #[cfg(feature = "stats")]
            SlotKind::Stats(l) => SlotFuture::Stats { fut: l.call(req) },
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
        Timer { #[pin] fut: TimerFuture<F> },
        Cors { #[pin] fut: CorsFuture<F> },
        RequestLog { #[pin] fut: LogFuture<F> },
        RateLimit { #[pin] fut: RateFuture<F> },
        Stats { #[pin] fut: StatsFuture<F> },
        Dyn { fut: Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>> },
    }
}

impl<F, B> SlotFuture<F>
where
    F: Future<Output = Result<Response<B>, Infallible>>,
    B: http_body::Body<Data = Bytes>,
{
    /// Polls, wrapping the body in this slot's variant and then in `wrap`: one move of the
    /// response for both, where mapping twice would move it twice.
    #[inline(always)]
    fn poll_wrapped<T>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        wrap: impl FnOnce(SlotBody<B>) -> T,
    ) -> Poll<Result<Response<T>, Infallible>> {
        let res = match self.project() {
            SlotFutureProj::Pass { fut } => {
                ready!(fut.poll(cx))?.map(|body| wrap(SlotBody::Pass { body }))
            }
            // The plugins' own futures build the response around the slot's wrapping: one move.
            SlotFutureProj::Timer { fut } => {
                ready!(fut.poll_with(cx, |body| wrap(SlotBody::Timer { body })))?
            }
            SlotFutureProj::Cors { fut } => {
                ready!(fut.poll_with(cx, |body| wrap(SlotBody::Cors { body })))?
            }
            SlotFutureProj::RequestLog { fut } => {
                ready!(fut.poll_with(cx, |body| wrap(SlotBody::RequestLog { body })))?
            }
            SlotFutureProj::RateLimit { fut } => {
                ready!(fut.poll_with(cx, |body| wrap(SlotBody::RateLimit { body })))?
            }
            SlotFutureProj::Stats { fut } => {
                ready!(fut.poll_with(cx, |body| wrap(SlotBody::Stats { body })))?
            }
            SlotFutureProj::Dyn { fut } => {
                ready!(fut.as_mut().poll(cx))?.map(|body| wrap(SlotBody::Dyn { body }))
            }
        };
        Poll::Ready(Ok(res))
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
        self.poll_wrapped(cx, |body| body)
    }
}

pin_project! {
    /// The response body of a [`Slot`].
    #[project = SlotBodyProj]
    #[allow(missing_docs)]
    pub enum SlotBody<B> {
        Pass { #[pin] body: B },
        Timer { #[pin] body: TimerBody<B> },
        Cors { #[pin] body: CorsBody<B> },
        RequestLog { #[pin] body: LogBody<B> },
        RateLimit { #[pin] body: RateBody<B> },
        Stats { #[pin] body: StatsBody<B> },
        Dyn { #[pin] body: Body },
    }
}

enum_body!(
    SlotBody,
    SlotBodyProj,
    [Pass, Timer, Cors, RequestLog, RateLimit, Stats, Dyn]
);

type C2<S> = Slot<Slot<S>>;
type C4<S> = C2<C2<S>>;
type C8<S> = C4<C4<S>>;
type F2<F> = SlotFuture<SlotFuture<F>>;
type F4<F> = F2<F2<F>>;
type F8<F> = F4<F4<F>>;
type B2<B> = SlotBody<SlotBody<B>>;
type B4<B> = B2<B2<B>>;
type B8<B> = B4<B4<B>>;

fn rest(steps: &[Step], from: usize) -> &[Step] {
    steps.get(from..).unwrap_or(&[])
}

/// The chain of slots, as deep as the stack needs: a stack of one entry pays for one slot,
/// not for [`DEPTH`].
enum Chain<S> {
    D0(S),
    D1(Slot<S>),
    D2(C2<S>),
    // Deep chains live behind a box so that every stack service is not as large as the
    // deepest one (it is cloned and moved on every request under axum).
    D4(Box<C4<S>>),
    D8(Box<C8<S>>),
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
    /// Two slots holding the first two of `steps` (or fewer) over `inner`.
    fn two(steps: &[Step], inner: N) -> C2<N> {
        Slot::one(steps.first(), Slot::one(steps.get(1), inner))
    }

    /// Two slots; the second takes every step after the first.
    fn two_tail(steps: &[Step], inner: N) -> C2<N> {
        Slot::one(steps.first(), Slot::tail(rest(steps, 1), inner))
    }

    fn four(steps: &[Step], inner: N) -> C4<N> {
        Slot::two(steps, Slot::two(rest(steps, 2), inner))
    }

    fn four_tail(steps: &[Step], inner: N) -> C4<N> {
        Slot::two(steps, Slot::two_tail(rest(steps, 2), inner))
    }

    fn eight_tail(steps: &[Step], inner: N) -> C8<N> {
        Slot::four(steps, Slot::four_tail(rest(steps, 4), inner))
    }
}

impl<S, B> Chain<S>
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
    fn new(steps: &[Step], inner: S) -> Self {
        match steps.len() {
            0 => Chain::D0(inner),
            1 => Chain::D1(Slot::tail(steps, inner)),
            2 => Chain::D2(Slot::two_tail(steps, inner)),
            3 | 4 => Chain::D4(Box::new(Slot::four_tail(steps, inner))),
            _ => Chain::D8(Box::new(Slot::eight_tail(steps, inner))),
        }
    }
}

pin_project! {
    #[project = ChainFutureProj]
    enum ChainFuture<F> {
        D0 { #[pin] fut: F },
        D1 { #[pin] fut: SlotFuture<F> },
        D2 { #[pin] fut: F2<F> },
        D4 { fut: Pin<Box<F4<F>>> },
        // Boxed so that every stack's future is not as large as the deepest one: a stack of
        // five to eight entries pays one allocation instead of every stack paying the copies.
        D8 { fut: Pin<Box<F8<F>>> },
    }
}

pin_project! {
    #[project = ChainBodyProj]
    enum ChainBody<B> {
        D0 { #[pin] body: B },
        D1 { #[pin] body: SlotBody<B> },
        D2 { #[pin] body: B2<B> },
        // Boxed for the same reason as the deep futures: the body moves with the response,
        // and an inline eight-slot body would make every stack's response that large.
        D4 { #[pin] body: Pin<Box<B4<B>>> },
        D8 { #[pin] body: Pin<Box<B8<B>>> },
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
    B: http_body::Body<Data = Bytes>,
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

enum_body!(ChainBody, ChainBodyProj, [D0, D1, D2, D4, D8]);
