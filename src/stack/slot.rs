//! A slot: one position of the stack, holding any built-in plugin's service over the rest of
//! the stack (or nothing, or a custom plugin's erased service).
//!
//! An arbitrary order of different layer types cannot be one static type without erasing the
//! type at every boundary (one boxed future per entry per request). Instead each slot is an
//! enum over every built-in's service, so any built-in can stand in any slot and the
//! configured order costs no allocation and no dynamic call. The enums and their matches are
//! generated from the table in `built_in.rs`: each arm does the same thing for its plugin.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_plugins_core::{BodyEnd, KeptFuture, PluginFuture};
use tower_service::Service;

use super::built_in::{self, built_ins};
use super::kept::{FlatBody, KeptEnd, erased};
use super::next::Next;
use super::registry::{AnyLayer, Step, into_body_response};
use super::run::{Run, RunBody, RunFuture};
use super::when::When;
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
            ) -> Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
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
            fn size_hint(&self) -> http_body::SizeHint {
                match self {
                    $($ty::$variant { body } => body.size_hint(),)+
                }
            }
        }
    };
}
pub(crate) use enum_body;

/// What composing over a service needs of it (the service a stack wraps, or the rest of the
/// stack below a slot): infallible, cloneable and shareable, with a sendable future and a
/// `Bytes` body whose errors box.
pub(crate) trait Composable:
    Service<
        Request<Body>,
        Response = Response<Self::ResBody>,
        Error = Infallible,
        Future: Send + 'static,
    > + Clone
    + Send
    + Sync
    + 'static
{
    /// The response body.
    type ResBody: http_body::Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static;
}

impl<N, B> Composable for N
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
    type ResBody = B;
}

/// One position of the stack: what it holds, and the requests it applies to (`when`; a
/// request outside it goes to the inner service directly).
pub(crate) struct Slot<N> {
    kind: SlotKind<N>,
    when: Option<Arc<When>>,
}

macro_rules! slot_kinds {
    ($($variant:ident: $name:ident, $feature:literal, $layer:ty;)*) => {
        /// What a slot holds.
        enum SlotKind<N> {
            /// Nothing: the request goes to `N` as it is.
            Pass(N),
            $($variant(built_in::$name::Service<N>),)*
            /// Consecutive entries with hooks, as one level.
            Run(Run<N>),
            /// A custom plugin, or every entry past the static depth, erased over the rest.
            Dyn(Next),
        }

        impl<N: Clone> Clone for SlotKind<N> {
            #[inline]
            fn clone(&self) -> Self {
                match self {
                    SlotKind::Pass(n) => SlotKind::Pass(n.clone()),
                    $(SlotKind::$variant(s) => SlotKind::$variant(s.clone()),)*
                    SlotKind::Run(r) => SlotKind::Run(r.clone()),
                    SlotKind::Dyn(d) => SlotKind::Dyn(d.clone()),
                }
            }
        }

        impl<N> SlotKind<N> {
            fn name(&self) -> &'static str {
                match self {
                    SlotKind::Pass(_) => "pass",
                    $(SlotKind::$variant(_) => stringify!($name),)*
                    SlotKind::Run(_) => "run",
                    SlotKind::Dyn(_) => "dyn",
                }
            }
        }

        /// A built-in's layer over `inner`; a custom one over `inner` erased by `erase`.
        fn layered<N>(layer: &AnyLayer, inner: N, erase: fn(N) -> Next) -> SlotKind<N> {
            match layer {
                $(AnyLayer::$variant(l) => SlotKind::$variant(l.layer(inner)),)*
                AnyLayer::Run(l) => SlotKind::Run(l.layer(inner)),
                AnyLayer::Custom(l) => SlotKind::Dyn(l.0.wrap(erase(inner))),
            }
        }

        /// `layer` over the erased `next`, itself erased.
        fn erase_layer(layer: &AnyLayer, next: Next) -> Next {
            match layer {
                $(AnyLayer::$variant(l) => erase(l.layer(next)),)*
                AnyLayer::Run(l) => erase(l.layer(next)),
                AnyLayer::Custom(l) => l.0.wrap(next),
            }
        }

        impl<N, B> SlotKind<N>
        where
            N: Service<Request<Body>, Response = Response<B>, Error = Infallible>
                + Clone
                + Send
                + 'static,
            B: http_body::Body<Data = Bytes> + Send + 'static,
        {
            #[inline]
            fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
                match self {
                    SlotKind::Pass(n) => n.poll_ready(cx),
                    $(SlotKind::$variant(s) => s.poll_ready(cx),)*
                    SlotKind::Run(r) => r.poll_ready(cx),
                    SlotKind::Dyn(d) => d.poll_ready(cx),
                }
            }

            /// Calls the plugin, or with `skip` the service it wraps. `N::call` has one call
            /// site: it is inlined, and two sites per slot would double the code (and the
            /// debug stack frame) with every slot of the chain.
            #[inline(always)]
            fn call(&mut self, req: Request<Body>, skip: bool) -> SlotFuture<N::Future> {
                let inner = match self {
                    SlotKind::Pass(n) => n,
                    $(SlotKind::$variant(s) if skip => s.get_mut(),
                    SlotKind::$variant(s) => return SlotFuture::$variant { fut: s.call(req) },)*
                    SlotKind::Run(r) if skip => r.get_mut(),
                    SlotKind::Run(r) => return SlotFuture::Run { fut: r.call(req) },
                    SlotKind::Dyn(d) => return SlotFuture::Dyn { fut: d.call(req) },
                };
                SlotFuture::Pass { fut: inner.call(req) }
            }
        }

        pin_project! {
            /// The response future of a [`Slot`].
            #[project = SlotFutureProj]
            pub(crate) enum SlotFuture<F> {
                Pass { #[pin] fut: F },
                $($variant { #[pin] fut: built_in::$name::Future<F> },)*
                Run { #[pin] fut: RunFuture<F> },
                Dyn { fut: Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>> },
            }
        }

        impl<F, B> SlotFuture<F>
        where
            F: Future<Output = Result<Response<B>, Infallible>>,
            B: http_body::Body<Data = Bytes> + Send + 'static,
        {
            /// Polls, wrapping the body in this slot's variant and then in `wrap`: one move of
            /// the response for both, where mapping twice would move it twice.
            #[inline(always)]
            pub(crate) fn poll_wrapped<T>(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                wrap: impl FnOnce(SlotBody<B>) -> T,
            ) -> Poll<Result<Response<T>, Infallible>> {
                let res = match self.project() {
                    SlotFutureProj::Pass { fut } => {
                        ready!(fut.poll(cx))?.map(|body| wrap(SlotBody::Pass { body }))
                    }
                    // The plugin's future builds the response around the slot's wrapping.
                    $(SlotFutureProj::$variant { fut } => ready!(PluginFuture::poll_with(
                        fut,
                        cx,
                        |body| wrap(SlotBody::$variant { body }),
                    ))?,)*
                    SlotFutureProj::Run { fut } => ready!(PluginFuture::poll_with(
                        fut,
                        cx,
                        |body| wrap(SlotBody::Run { body }),
                    ))?,
                    SlotFutureProj::Dyn { fut } => {
                        ready!(fut.as_mut().poll(cx))?.map(|body| wrap(SlotBody::Dyn { body }))
                    }
                };
                Poll::Ready(Ok(res))
            }
        }

        impl<F, B> SlotFuture<F>
        where
            F: Future<Output = Result<Response<FlatBody<B>>, Infallible>> + KeptEnd,
            B: http_body::Body<Data = Bytes> + Send + 'static,
        {
            /// Polls as a level of a kept chain: the body passes through.
            #[inline(always)]
            pub(crate) fn poll_kept(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
            ) -> Poll<Result<Response<FlatBody<B>>, Infallible>> {
                let res = match self.project() {
                    SlotFutureProj::Pass { fut } => ready!(fut.poll(cx))?,
                    $(SlotFutureProj::$variant { fut } => ready!(KeptFuture::poll_kept(fut, cx))?,)*
                    SlotFutureProj::Run { fut } => ready!(KeptFuture::poll_kept(fut, cx))?,
                    SlotFutureProj::Dyn { fut } => {
                        ready!(fut.as_mut().poll(cx))?.map(erased)
                    }
                };
                Poll::Ready(Ok(res))
            }

            /// The body's trailers, to the levels below and then to this one.
            #[inline]
            pub(crate) fn trailers_kept(self: Pin<&mut Self>, trailers: &http::HeaderMap) {
                match self.project() {
                    SlotFutureProj::Pass { fut } => fut.trailers(trailers),
                    $(SlotFutureProj::$variant { fut } => trailers_level(fut, trailers),)*
                    SlotFutureProj::Run { fut } => trailers_level(fut, trailers),
                    // What an erased level wraps was closed: its body ends it.
                    SlotFutureProj::Dyn { .. } => {}
                }
            }

            /// The body's end, to the levels below and then to this one.
            #[inline]
            pub(crate) fn end_kept(self: Pin<&mut Self>, end: BodyEnd) {
                match self.project() {
                    SlotFutureProj::Pass { fut } => fut.end(end),
                    $(SlotFutureProj::$variant { fut } => end_level(fut, end),)*
                    SlotFutureProj::Run { fut } => end_level(fut, end),
                    SlotFutureProj::Dyn { .. } => {}
                }
            }
        }

        pin_project! {
            /// The response body of a [`Slot`].
            #[project = SlotBodyProj]
            pub(crate) enum SlotBody<B> {
                Pass { #[pin] body: B },
                $($variant { #[pin] body: built_in::$name::Body<B> },)*
                Run { #[pin] body: RunBody<B> },
                Dyn { #[pin] body: Body },
            }
        }

        enum_body!(SlotBody, SlotBodyProj, [Pass, $($variant,)* Run, Dyn]);
    };
}

built_ins!(slot_kinds);

/// The body's trailers, to the levels below a kept level and then to it.
#[inline(always)]
fn trailers_level<K>(mut fut: Pin<&mut K>, trailers: &http::HeaderMap)
where
    K: KeptFuture<Inner: KeptEnd>,
{
    if let Some(inner) = fut.as_mut().inner_kept() {
        inner.trailers(trailers);
    }
    fut.on_trailers(trailers);
}

/// The body's end, to the levels below a kept level and then to it.
#[inline(always)]
fn end_level<K>(mut fut: Pin<&mut K>, end: BodyEnd)
where
    K: KeptFuture<Inner: KeptEnd>,
{
    if let Some(inner) = fut.as_mut().inner_kept() {
        inner.end(end);
    }
    fut.on_body_end(end);
}

impl<F, B> Future for SlotFuture<F>
where
    F: Future<Output = Result<Response<B>, Infallible>>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
{
    type Output = Result<Response<SlotBody<B>>, Infallible>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.poll_wrapped(cx, |body| body)
    }
}

impl<N: Clone> Clone for Slot<N> {
    #[inline]
    fn clone(&self) -> Self {
        Slot {
            kind: self.kind.clone(),
            when: self.when.clone(),
        }
    }
}

impl<N> fmt::Debug for Slot<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Slot").field(&self.kind.name()).finish()
    }
}

/// Erases a service into [`Next`].
pub(crate) fn erase<N>(n: N) -> Next
where
    N: Composable,
{
    Next::new(tower::util::MapResponse::new(n, into_body_response))
}

/// `step` over the erased `next`, erased; with `when`, a request outside it goes to `next`.
fn erase_step(step: &Step, next: Next) -> Next {
    match &step.when {
        None => erase_layer(&step.layer, next),
        Some(when) => Next::new(Scoped {
            when: when.clone(),
            layered: erase_layer(&step.layer, next.clone()),
            next,
        }),
    }
}

/// An erased entry with `when`: the layered service for requests it applies to, the rest of
/// the stack for the others.
#[derive(Clone)]
struct Scoped {
    when: Arc<When>,
    layered: Next,
    next: Next,
}

impl Service<Request<Body>> for Scoped {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = <Next as Service<Request<Body>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        ready!(self.layered.poll_ready(cx))?;
        self.next.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        if self.when.applies(&req) {
            self.layered.call(req)
        } else {
            self.next.call(req)
        }
    }
}

impl<N> Slot<N> {
    /// A slot holding `step` (or nothing) over `inner`; `erase` erases `inner` under a
    /// custom plugin.
    pub(crate) fn one(step: Option<&Step>, inner: N, erase: fn(N) -> Next) -> Self {
        match step {
            None => Slot {
                kind: SlotKind::Pass(inner),
                when: None,
            },
            Some(
                step @ Step {
                    layer: AnyLayer::Custom(_),
                    ..
                },
            ) => Slot {
                kind: SlotKind::Dyn(erase_step(step, erase(inner))),
                when: None,
            },
            Some(step) => Slot {
                kind: layered(&step.layer, inner, erase),
                when: step.when.clone(),
            },
        }
    }

    /// The last slot: one step statically, or every remaining step erased.
    pub(crate) fn last(steps: &[Step], inner: N, erase: fn(N) -> Next) -> Self {
        if steps.len() <= 1 {
            return Self::one(steps.first(), inner, erase);
        }
        let next = steps
            .iter()
            .rev()
            .fold(erase(inner), |next, step| erase_step(step, next));
        Slot {
            kind: SlotKind::Dyn(next),
            when: None,
        }
    }
}

impl<N, B> Service<Request<Body>> for Slot<N>
where
    // Clone and Send for the plugins that call the rest of the stack later (the rate
    // limiter, after asking Redis); every stack service is both (see `PluginStackLayer`).
    N: Service<Request<Body>, Response = Response<B>, Error = Infallible> + Clone + Send + 'static,
    // Send and 'static for the plugins that finish a response after awaiting a store (auth).
    B: http_body::Body<Data = Bytes> + Send + 'static,
{
    type Response = Response<SlotBody<B>>;
    type Error = Infallible;
    type Future = SlotFuture<N::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.kind.poll_ready(cx)
    }

    #[inline(always)]
    fn call(&mut self, req: Request<Body>) -> Self::Future {
        // A request outside `when` skips the plugin; every built-in's poll_ready only
        // delegates, so the service it wraps is ready.
        let skip = self.when.as_ref().is_some_and(|w| !w.applies(&req));
        self.kind.call(req, skip)
    }
}
