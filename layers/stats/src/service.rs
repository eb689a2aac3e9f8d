//! [`Stats`], its [`ResponseFuture`] and the body guard that records a finished request.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_plugins_core::{
    AnswerBody, Before, BodyEnd, BodyOutcome, GRPC_STATUS, GrpcCode, GuardedBody, Hooks,
    KeptFuture, OnBodyEnd, PluginBody, PluginFuture, RequestStart, grpc_content_type,
};
use tower_service::Service;

use crate::collector::{EndInfo, RequestInfo, ResponseInfo};
use crate::facade::{self, Labels};
use crate::layer::Shared;
use crate::route::Route;

/// The stats service. See the [crate docs](crate).
pub struct Stats<S> {
    pub(crate) inner: S,
    pub(crate) shared: &'static Shared,
}

impl<S: Clone> Clone for Stats<S> {
    fn clone(&self) -> Self {
        Stats {
            inner: self.inner.clone(),
            shared: self.shared,
        }
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for Stats<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stats")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S> Stats<S> {
    /// Wraps `inner`, recording into the registry of `layer`.
    pub fn new(inner: S, layer: &crate::StatsLayer) -> Self {
        tower_layer::Layer::layer(layer, inner)
    }

    tower_plugins_core::inner_service_accessors!();
}

/// A request being recorded: everything its end needs.
pub(crate) struct Recording {
    shared: &'static Shared,
    route: &'static Route,
    start: Instant,
    bytes_in: u64,
    labels: Labels,
    /// A gRPC call: its `grpc-status` is its outcome.
    grpc: bool,
}

impl Recording {
    /// Calls the collectors on the response head; a trailers-only gRPC answer's status.
    #[inline]
    fn on_head(&self, status: StatusCode, headers: &http::HeaderMap) -> Option<GrpcCode> {
        let collectors = &self.shared.registry.collectors;
        if !collectors.is_empty() {
            let info = ResponseInfo {
                route: &self.route.name,
                status,
                headers,
            };
            for (_, c) in collectors {
                c.on_response(&info);
            }
        }
        (self.grpc.then(|| headers.get(GRPC_STATUS)).flatten())
            .and_then(|v| GrpcCode::parse(v.as_bytes()))
    }

    /// Records the end of the request; a gRPC call's `grpc` code, if it had one.
    fn finish(
        self,
        status: Option<StatusCode>,
        bytes_out: u64,
        outcome: BodyOutcome,
        grpc: Option<GrpcCode>,
    ) {
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(self.start);
        let reg = &self.shared.registry;
        let shard = self.route.shard();
        shard.in_flight.fetch_sub(1, Relaxed);
        shard.requests.fetch_add(1, Relaxed);
        if let Some(s) = status {
            shard.count_status(s.as_u16());
        }
        if let Some(code) = grpc {
            shard.grpc[usize::from(code.as_u8())].fetch_add(1, Relaxed);
        }
        // A gRPC call that completed without a status is as broken as one that failed.
        let grpc_error = self.grpc
            && outcome == BodyOutcome::Completed
            && grpc.is_none_or(|c| c != GrpcCode::Ok);
        let error = status.is_some_and(|s| s.is_server_error())
            || outcome == BodyOutcome::Failed
            || (status.is_none() && outcome != BodyOutcome::Aborted)
            || grpc_error;
        if error {
            shard.errors.fetch_add(1, Relaxed);
        }
        if outcome == BodyOutcome::Aborted {
            shard.aborted.fetch_add(1, Relaxed);
        }
        if self.bytes_in > 0 {
            shard.bytes_in.fetch_add(self.bytes_in, Relaxed);
        }
        if bytes_out > 0 {
            shard.bytes_out.fetch_add(bytes_out, Relaxed);
        }
        shard.count_latency(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX));
        shard.count_second(reg.second(now));
        if let Some(names) = self.shared.facade {
            let end = facade::End {
                status,
                outcome,
                error,
                elapsed,
                bytes_in: self.bytes_in,
                bytes_out,
                grpc,
            };
            names.end(self.route.metrics(), &self.route.name, self.labels, &end);
        }
        if !reg.collectors.is_empty() {
            let end = EndInfo {
                route: &self.route.name,
                status,
                elapsed,
                body_bytes: bytes_out,
                outcome,
            };
            for (_, c) in &reg.collectors {
                c.on_end(&end);
            }
        }
    }
}

/// The record a request's future holds: dropped before its end (a request dropped before
/// its response), it records the request as aborted.
pub struct Pending(Option<Finish>);

impl Pending {
    /// The response head is here.
    #[inline]
    fn on_head(&mut self, status: StatusCode, headers: &http::HeaderMap) {
        if let Some(f) = &mut self.0 {
            f.on_head(status, headers);
        }
    }

    /// The response's trailers went by.
    #[inline]
    fn on_trailers(&mut self, trailers: &http::HeaderMap) {
        if let Some(f) = &mut self.0 {
            f.on_trailers(trailers);
        }
    }

    /// The body ended: the request is recorded.
    #[inline]
    fn end(&mut self, end: BodyEnd) {
        if let Some(f) = self.0.take() {
            f.on_body_end(end);
        }
    }
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Pending").field(&self.0).finish()
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f.on_body_end(BodyEnd {
                outcome: BodyOutcome::Aborted,
                bytes: 0,
            });
        }
    }
}

/// The [`OnBodyEnd`] of a response: records the request when its body ends.
pub struct Finish {
    rec: Recording,
    /// The response's status, once its head is here.
    status: Option<StatusCode>,
    /// A gRPC call's `grpc-status`: in the headers of a trailers-only answer, else in the
    /// trailers.
    grpc: Option<GrpcCode>,
}

impl std::fmt::Debug for Finish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Finish")
            .field("route", &&*self.rec.route.name)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl OnBodyEnd for Finish {
    #[inline]
    fn on_body_end(self, end: BodyEnd) {
        let grpc = self.grpc.filter(|_| self.rec.grpc);
        self.rec.finish(self.status, end.bytes, end.outcome, grpc);
    }

    #[inline]
    fn on_trailers(&mut self, trailers: &http::HeaderMap) {
        if let Some(v) = trailers.get(GRPC_STATUS) {
            self.grpc = GrpcCode::parse(v.as_bytes());
        }
    }
}

impl Finish {
    /// The response head is here: its status, and the collectors called on it.
    #[inline]
    fn on_head(&mut self, status: StatusCode, headers: &http::HeaderMap) {
        self.status = Some(status);
        self.grpc = self.rec.on_head(status, headers);
    }
}

/// The response body: the inner body under a guard that records the request once it ends
/// (core's [`GuardedBody`], `size_hint` and `is_end_stream` forwarded), or an answer of the
/// endpoints.
pub type ResponseBody<B> = PluginBody<GuardedBody<B, Finish>>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Stats<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: http_body::Body,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        match begin(self.shared, &mut req) {
            Before::Continue(pending) => ResponseFuture {
                state: State::Inner {
                    fut: self.inner.call(req),
                },
                pending,
            },
            Before::Answer(answer) => ResponseFuture {
                state: State::Answer {
                    res: Some(Box::new(answer)),
                },
                pending: Pending(None),
            },
        }
    }
}

/// The endpoints' answer, or the request's record started.
#[inline]
fn begin<B>(shared: &'static Shared, req: &mut Request<B>) -> Before<Pending> {
    if let Some(answer) = crate::endpoints::answer(shared, req) {
        return Before::Answer(answer);
    }
    let start = RequestStart::get_or_insert(req);
    // gRPC runs over HTTP/2: HTTP/1 requests pay one comparison for it.
    let grpc = req.version() == http::Version::HTTP_2 && grpc_content_type(req.headers()).is_some();
    let route = match grpc {
        // Per method (`/package.Service/Method`), bounded by `max_routes` as any name.
        true => shared.registry.route(req.uri().path()),
        false => shared.registry.route_for(req),
    };
    route.shard().in_flight.fetch_add(1, Relaxed);
    let labels = match shared.facade {
        Some(names) => {
            let labels = Labels::of(req);
            names
                .active(route.metrics(), &route.name, labels)
                .increment(1.0);
            labels
        }
        None => Labels::default(),
    };
    let bytes_in = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    if !shared.registry.collectors.is_empty() {
        let info = RequestInfo {
            route: &route.name,
            method: req.method(),
            uri: req.uri(),
            headers: req.headers(),
        };
        for (_, c) in &shared.registry.collectors {
            c.on_request(&info);
        }
    }
    Before::Continue(Pending(Some(Finish {
        rec: Recording {
            shared,
            route,
            start,
            bytes_in,
            labels,
            grpc,
        },
        status: None,
        grpc: None,
    })))
}

/// The stats plugin as [`Hooks`]: what [`Stats`] does, for the plugin stack to run beside its
/// neighbours' hooks in one level.
#[derive(Clone, Copy)]
pub struct StatsHooks {
    pub(crate) shared: &'static Shared,
}

impl std::fmt::Debug for StatsHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsHooks").finish_non_exhaustive()
    }
}

impl Hooks for StatsHooks {
    type State = Pending;

    #[inline]
    fn on_request<B>(&self, req: &mut Request<B>) -> Before<Pending> {
        begin(self.shared, req)
    }

    #[inline]
    fn on_response<B>(&self, pending: &mut Pending, res: &mut Response<B>) {
        pending.on_head(res.status(), res.headers());
    }

    #[inline]
    fn on_trailers(&self, pending: &mut Pending, trailers: &http::HeaderMap) {
        pending.on_trailers(trailers);
    }

    #[inline]
    fn on_body_end(&self, mut pending: Pending, end: BodyEnd) {
        pending.end(end);
    }
}

pin_project! {
    /// The response future of [`Stats`].
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
        pending: Pending,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Inner { #[pin] fut: F },
        Answer { res: Option<Box<Response<Bytes>>> },
    }
}

impl<F, B, E> PluginFuture for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: http_body::Body,
{
    type Body = ResponseBody<B>;
    type Error = E;

    #[inline]
    fn poll_with<T>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        wrap: impl FnOnce(ResponseBody<B>) -> T,
    ) -> Poll<Result<Response<T>, E>> {
        let this = self.project();
        match this.state.project() {
            StateProj::Inner { fut } => {
                let res = ready!(poll_inner(fut, cx, this.pending))?;
                let mut guard =
                    (this.pending.0.take()).expect("ResponseFuture polled after completion");
                guard.on_head(res.status(), res.headers());
                Poll::Ready(Ok(
                    res.map(|b| wrap(PluginBody::inner(GuardedBody::new(b, guard))))
                ))
            }
            StateProj::Answer { res } => {
                let res = res.take().expect("ResponseFuture polled after completion");
                Poll::Ready(Ok((*res).map(|b| wrap(PluginBody::full(b)))))
            }
        }
    }
}

impl<F, B, E> KeptFuture for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: AnswerBody,
{
    type Inner = F;
    type Body = B;
    type Error = E;

    #[inline]
    fn poll_kept(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Response<B>, E>> {
        let this = self.project();
        match this.state.project() {
            StateProj::Inner { fut } => {
                let res = ready!(poll_inner(fut, cx, this.pending))?;
                // The record stays until the body ends.
                this.pending.on_head(res.status(), res.headers());
                Poll::Ready(Ok(res))
            }
            StateProj::Answer { res } => {
                let res = res.take().expect("ResponseFuture polled after completion");
                Poll::Ready(Ok((*res).map(B::answer)))
            }
        }
    }

    #[inline]
    fn inner_kept(self: Pin<&mut Self>) -> Option<Pin<&mut F>> {
        match self.project().state.project() {
            StateProj::Inner { fut } => Some(fut),
            StateProj::Answer { .. } => None,
        }
    }

    #[inline]
    fn on_trailers(self: Pin<&mut Self>, trailers: &http::HeaderMap) {
        self.project().pending.on_trailers(trailers);
    }

    #[inline]
    fn on_body_end(self: Pin<&mut Self>, end: BodyEnd) {
        self.project().pending.end(end);
    }
}

/// Polls the inner future; an error is recorded as failed.
#[inline]
fn poll_inner<F, B, E>(
    fut: Pin<&mut F>,
    cx: &mut Context<'_>,
    pending: &mut Pending,
) -> Poll<Result<Response<B>, E>>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    let res = ready!(fut.poll(cx));
    if res.is_err() {
        if let Some(f) = pending.0.take() {
            f.rec.finish(None, 0, BodyOutcome::Failed, None);
        }
    }
    Poll::Ready(res)
}

tower_plugins_core::plugin_future!(ResponseFuture);
