//! [`RateLimit`] and its [`ResponseFuture`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_plugins_core::{Before, Hooks, PluginBody, PluginFuture};
use tower_service::Service;

use crate::answer::{Report, Verdict};
#[cfg(feature = "redis")]
use crate::decide::decide_remote;
use crate::decide::{RemoteCheck, decide_memory};
use crate::engine::Engine;
#[cfg(feature = "redis")]
use crate::engine::matched;

/// The rate-limiting service. See the [crate docs](crate) for an example.
pub struct RateLimit<S> {
    pub(crate) inner: S,
    pub(crate) engine: Arc<Engine>,
}

impl<S: Clone> Clone for RateLimit<S> {
    fn clone(&self) -> Self {
        RateLimit {
            inner: self.inner.clone(),
            engine: self.engine.clone(),
        }
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for RateLimit<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimit")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S> RateLimit<S> {
    /// Wraps `inner` with the rules (and the shared buckets) of `layer`.
    pub fn new(inner: S, layer: &crate::RateLimitLayer) -> Self {
        RateLimit {
            inner,
            engine: layer.engine().clone(),
        }
    }

    tower_plugins_core::inner_service_accessors!();
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RateLimit<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    ReqBody: Send + 'static,
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
        #[cfg(feature = "redis")]
        if let Some(redis) = &self.engine.redis {
            let rules = matched(&self.engine, &req);
            if rules.is_empty() {
                return ResponseFuture::inner(self.inner.call(req), Report::default());
            }
            let grpc = tower_plugins_core::grpc_content_type(req.headers()).cloned();
            let check = decide_remote(&self.engine, redis, rules, grpc);
            // The inner service is called once the verdict is in: take the ready one and
            // leave a clone in its place (tower's contract for services called later).
            let clone = self.inner.clone();
            let mut inner = std::mem::replace(&mut self.inner, clone);
            return ResponseFuture {
                state: State::Remote {
                    check,
                    call: Some(Box::new(move || inner.call(req))),
                },
                report: Report::default(),
            };
        }
        match decide_memory(&self.engine, &req) {
            Verdict::Admit(report) => ResponseFuture::inner(self.inner.call(req), report),
            Verdict::Refuse(res) => ResponseFuture {
                state: State::Refuse {
                    res: Some(Box::new(res)),
                },
                report: Report::default(),
            },
        }
    }
}

/// The rate limiter as [`Hooks`], with the memory backend (over Redis its decision awaits,
/// and it stays a tower layer): what [`RateLimit`] does, for the plugin stack to run beside
/// its neighbours' hooks in one level.
#[derive(Clone)]
pub struct RateLimitHooks {
    pub(crate) engine: Arc<Engine>,
}

impl std::fmt::Debug for RateLimitHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitHooks").finish_non_exhaustive()
    }
}

/// What an admitted request's response gets: its `RateLimit` headers.
pub struct RateLimitState(Report);

impl std::fmt::Debug for RateLimitState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitState").finish_non_exhaustive()
    }
}

impl Hooks for RateLimitHooks {
    type State = RateLimitState;

    #[inline]
    fn on_request<B>(&self, req: &mut Request<B>) -> Before<RateLimitState> {
        match decide_memory(&self.engine, req) {
            Verdict::Admit(report) => Before::Continue(RateLimitState(report)),
            Verdict::Refuse(res) => Before::Answer(res),
        }
    }

    #[inline]
    fn on_response<B>(&self, state: &mut RateLimitState, res: &mut Response<B>) {
        let status = res.status();
        state.0.apply(status, res.headers_mut());
    }
}

pin_project! {
    /// The response future of [`RateLimit`].
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
        report: Report,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Inner { #[pin] fut: F },
        Refuse { res: Option<Box<Response<Bytes>>> },
        Remote { check: RemoteCheck, call: Option<Box<dyn FnOnce() -> F + Send>> },
    }
}

impl<F> ResponseFuture<F> {
    fn inner(fut: F, report: Report) -> Self {
        ResponseFuture {
            state: State::Inner { fut },
            report,
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
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Inner { fut } => {
                    let mut res = ready!(fut.poll(cx))?;
                    let status = res.status();
                    this.report.apply(status, res.headers_mut());
                    return Poll::Ready(Ok(res.map(|b| wrap(PluginBody::inner(b)))));
                }
                StateProj::Refuse { res } => {
                    let res = res.take().expect("ResponseFuture polled after completion");
                    return Poll::Ready(Ok((*res).map(|b| wrap(PluginBody::full(b)))));
                }
                StateProj::Remote { check, call } => match ready!(check.as_mut().poll(cx)) {
                    Verdict::Admit(report) => {
                        *this.report = report;
                        let call = call.take().expect("ResponseFuture polled after completion");
                        this.state.set(State::Inner { fut: call() });
                    }
                    Verdict::Refuse(res) => {
                        this.state.set(State::Refuse {
                            res: Some(Box::new(res)),
                        });
                    }
                },
            }
        }
    }
}

impl<F> ResponseFuture<F> {
    /// The inner service's future, when the request was admitted and sent on.
    #[inline]
    fn called(self: Pin<&mut Self>) -> Option<Pin<&mut F>> {
        match self.project().state.project() {
            StateProj::Inner { fut } => Some(fut),
            StateProj::Refuse { .. } | StateProj::Remote { .. } => None,
        }
    }
}

tower_plugins_core::plugin_future!(ResponseFuture, kept_by_flatten: called);
