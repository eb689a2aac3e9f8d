//! A kept chain: the stack's slots from two entries on, where no level wraps the body.
//!
//! Every level's future passes the body of the level below through as it is (or answers with
//! its own), and keeps in itself what it has to do when the body ends
//! ([`KeptFuture`](tower_plugins_core::KeptFuture)). The chain's future is boxed, and once the
//! response is ready the box moves into the response body, which counts the body once and ends
//! every level, innermost first. So a level's response is the same size at every depth, the
//! body is matched once per frame instead of once per level, and the one box is the future's.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use pin_project_lite::pin_project;
use tower_plugins_core::{BodyEnd, GuardedBody, OnBodyEnd, PluginBody};
use tower_service::Service;

use super::slot::{Slot, SlotFuture, enum_body};
use crate::{Body, BoxError};

pin_project! {
    /// What the levels of a kept chain wrap: the wrapped service's body, or an erased level's
    /// (a custom plugin's).
    #[project = InnermostProj]
    pub(crate) enum Innermost<B> {
        Service { #[pin] body: B },
        Erased { #[pin] body: Body },
    }
}

enum_body!(Innermost, InnermostProj, [Service, Erased]);

/// The one body every level of a kept chain passes: what the levels wrap, or a plugin's own
/// answer.
pub(crate) type FlatBody<B> = PluginBody<Innermost<B>>;

/// An erased level's response body, as the levels around it pass it.
#[inline]
pub(crate) fn erased<B>(body: Body) -> FlatBody<B> {
    PluginBody::inner(Innermost::Erased { body })
}

/// A kept chain's future after its response: ends every level, innermost first.
pub(crate) trait KeptEnd {
    /// The body's trailers went by.
    fn trailers(self: Pin<&mut Self>, trailers: &HeaderMap);
    /// The body ended.
    fn end(self: Pin<&mut Self>, end: BodyEnd);
}

/// The service a kept chain wraps, its body passed on as the chain's (`Innermost::Service`).
#[derive(Clone)]
pub(crate) struct Base<S>(pub(crate) S);

impl<S, B> Service<Request<Body>> for Base<S>
where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible>,
{
    type Response = Response<FlatBody<B>>;
    type Error = Infallible;
    type Future = BaseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, req: Request<Body>) -> Self::Future {
        BaseFuture {
            fut: self.0.call(req),
        }
    }
}

pin_project! {
    /// The future of [`Base`].
    pub(crate) struct BaseFuture<F> {
        #[pin]
        fut: F,
    }
}

impl<F, B> Future for BaseFuture<F>
where
    F: Future<Output = Result<Response<B>, Infallible>>,
{
    type Output = Result<Response<FlatBody<B>>, Infallible>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let res = ready!(self.project().fut.poll(cx))?;
        Poll::Ready(Ok(
            res.map(|body| PluginBody::inner(Innermost::Service { body }))
        ))
    }
}

impl<F> KeptEnd for BaseFuture<F> {
    #[inline]
    fn trailers(self: Pin<&mut Self>, _: &HeaderMap) {}
    #[inline]
    fn end(self: Pin<&mut Self>, _: BodyEnd) {}
}

/// One level of a kept chain: a [`Slot`] whose future passes the body through.
pub(crate) struct KeptSlot<N>(pub(crate) Slot<N>);

impl<N: Clone> Clone for KeptSlot<N> {
    #[inline]
    fn clone(&self) -> Self {
        KeptSlot(self.0.clone())
    }
}

impl<N, B> Service<Request<Body>> for KeptSlot<N>
where
    N: Service<Request<Body>, Response = Response<FlatBody<B>>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    N::Future: KeptEnd,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<FlatBody<B>>;
    type Error = Infallible;
    type Future = KeptSlotFuture<N::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    #[inline(always)]
    fn call(&mut self, req: Request<Body>) -> Self::Future {
        KeptSlotFuture {
            inner: self.0.call(req),
        }
    }
}

pin_project! {
    /// The future of a [`KeptSlot`].
    pub(crate) struct KeptSlotFuture<F> {
        #[pin]
        inner: SlotFuture<F>,
    }
}

impl<F, B> Future for KeptSlotFuture<F>
where
    F: Future<Output = Result<Response<FlatBody<B>>, Infallible>> + KeptEnd,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Output = Result<Response<FlatBody<B>>, Infallible>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().inner.poll_kept(cx)
    }
}

impl<F, B> KeptEnd for KeptSlotFuture<F>
where
    F: Future<Output = Result<Response<FlatBody<B>>, Infallible>> + KeptEnd,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    #[inline]
    fn trailers(self: Pin<&mut Self>, trailers: &HeaderMap) {
        self.project().inner.trailers_kept(trailers);
    }

    #[inline]
    fn end(self: Pin<&mut Self>, end: BodyEnd) {
        self.project().inner.end_kept(end);
    }
}

/// A kept chain as a plain service: its future in a box, which the response body keeps and
/// ends.
#[derive(Clone)]
pub(crate) struct Close<N>(pub(crate) N);

impl<N, B> Service<Request<Body>> for Close<N>
where
    N: Service<Request<Body>, Response = Response<FlatBody<B>>, Error = Infallible>,
    N::Future: KeptEnd + Send + 'static,
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Response = Response<KeptBody<B>>;
    type Error = Infallible;
    type Future = CloseFuture<N::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, req: Request<Body>) -> Self::Future {
        CloseFuture {
            fut: Some(Box::pin(self.0.call(req))),
        }
    }
}

/// The future of [`Close`].
pub(crate) struct CloseFuture<F> {
    fut: Option<Pin<Box<F>>>,
}

impl<F, B> Future for CloseFuture<F>
where
    F: Future<Output = Result<Response<FlatBody<B>>, Infallible>> + KeptEnd + Send + 'static,
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Output = Result<Response<KeptBody<B>>, Infallible>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let fut = this
            .fut
            .as_mut()
            .expect("CloseFuture polled after completion");
        let res = ready!(fut.as_mut().poll(cx))?;
        let kept = Kept(this.fut.take().expect("checked above"));
        Poll::Ready(Ok(res.map(|body| GuardedBody::new(body, kept))))
    }
}

/// A kept chain's response body: the flat body, counted once, ending every level.
pub(crate) type KeptBody<B> = GuardedBody<FlatBody<B>, Kept>;

/// The kept chain, as the body's end-of-body hook.
pub(crate) struct Kept(Pin<Box<dyn KeptEnd + Send>>);

impl OnBodyEnd for Kept {
    #[inline]
    fn on_trailers(&mut self, trailers: &HeaderMap) {
        self.0.as_mut().trailers(trailers);
    }

    #[inline]
    fn on_body_end(mut self, end: BodyEnd) {
        self.0.as_mut().end(end);
    }
}
