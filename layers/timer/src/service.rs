//! [`Timer`], its [`ResponseFuture`] and [`ResponseBody`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use http::{HeaderName, HeaderValue, Request, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_plugins_core::{
    Before, BodyEnd, GuardedBody, Hooks, KeptFuture, OnBodyEnd, PluginFuture, RequestStart,
    header_value_from_parts,
};
use tower_service::Service;

use crate::ServerTiming;
use crate::format::{Decimal, TimeUnit};
use crate::layer::{OnComplete, Shared, Timings};

/// The timer service. See the [crate docs](crate) for an example.
#[derive(Clone)]
pub struct Timer<S> {
    pub(crate) inner: S,
    pub(crate) shared: Arc<Shared>,
}

impl<S> Timer<S> {
    /// Wraps `inner` with the settings of `layer`.
    pub fn new(inner: S, layer: &crate::TimerLayer) -> Self {
        Timer {
            inner,
            shared: layer.shared.clone(),
        }
    }

    /// A [`TimerLayer`](crate::TimerLayer) with the default settings.
    pub fn layer() -> crate::TimerLayer {
        crate::TimerLayer::new()
    }

    tower_plugins_core::inner_service_accessors!();
}

impl<S: std::fmt::Debug> std::fmt::Debug for Timer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timer").field("inner", &self.inner).finish()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Timer<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body,
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
        let state = begin(&self.shared, &mut req);
        ResponseFuture {
            inner: self.inner.call(req),
            state,
            shared: self.shared.clone(),
        }
    }
}

/// What the timer keeps of a request: when it started, and the handler's Server-Timing
/// entries.
#[derive(Debug)]
pub struct TimerState {
    start: Instant,
    // The time to the response head, kept for `on_complete` until the body ends (in
    // nanoseconds: 584 years fit, in half a `Duration`).
    head_nanos: u64,
    entries: Option<ServerTiming>,
}

/// The request's start (shared with every plugin, measured once), and a place for the
/// handler's Server-Timing entries when it may add them.
#[inline]
fn begin<B>(shared: &Shared, req: &mut Request<B>) -> TimerState {
    let start = RequestStart::get_or_insert(req);
    let entries = if shared.server_timing && shared.handler_entries {
        let st = ServerTiming::default();
        req.extensions_mut().insert(st.clone());
        Some(st)
    } else {
        None
    };
    TimerState {
        start,
        head_nanos: 0,
        entries,
    }
}

/// The response head: its timing headers written, the time to it kept.
#[inline]
fn respond(shared: &Shared, state: &mut TimerState, headers: &mut http::HeaderMap) -> Duration {
    let head = on_head(shared, state.start, state.entries.as_ref(), headers);
    state.head_nanos = u64::try_from(head.as_nanos()).unwrap_or(u64::MAX);
    head
}

impl Hooks for crate::TimerLayer {
    type State = TimerState;

    #[inline]
    fn on_request<B>(&self, req: &mut Request<B>) -> Before<TimerState> {
        Before::Continue(begin(&self.shared, req))
    }

    #[inline]
    fn on_response<B>(&self, state: &mut TimerState, res: &mut Response<B>) {
        respond(&self.shared, state, res.headers_mut());
    }

    #[inline]
    fn on_body_end(&self, state: TimerState, end: BodyEnd) {
        finish(&self.shared, &state, end);
    }
}

/// The body's end: the timings to `on_complete`, when there is one.
#[inline]
fn finish(shared: &Shared, state: &TimerState, end: BodyEnd) {
    if let Some(f) = &shared.on_complete {
        report(f, state.start, Duration::from_nanos(state.head_nanos), end);
    }
}

pin_project! {
    /// The response future of [`Timer`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        state: TimerState,
        shared: Arc<Shared>,
    }
}

impl<F, B, E> PluginFuture for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
{
    type Body = ResponseBody<B>;
    type Error = E;

    fn poll_with<T>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        wrap: impl FnOnce(ResponseBody<B>) -> T,
    ) -> Poll<Result<Response<T>, E>> {
        let this = self.project();
        let res = ready!(this.inner.poll(cx))?;
        let (mut parts, body) = res.into_parts();
        let head = respond(this.shared, this.state, &mut parts.headers);
        // Without `on_complete` there is nothing to report at the body's end.
        let body = match &this.shared.on_complete {
            Some(f) => GuardedBody::new(
                body,
                TimerEnd {
                    start: this.state.start,
                    head,
                    on_complete: f.clone(),
                },
            ),
            None => GuardedBody::unguarded(body),
        };
        Poll::Ready(Ok(Response::from_parts(parts, wrap(body))))
    }
}

impl<F, B, E> KeptFuture for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Inner = F;
    type Body = B;
    type Error = E;

    #[inline]
    fn poll_kept(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Response<B>, E>> {
        let this = self.project();
        let mut res = ready!(this.inner.poll(cx))?;
        respond(this.shared, this.state, res.headers_mut());
        Poll::Ready(Ok(res))
    }

    #[inline]
    fn inner_kept(self: Pin<&mut Self>) -> Option<Pin<&mut F>> {
        Some(self.project().inner)
    }

    #[inline]
    fn on_body_end(self: Pin<&mut Self>, end: BodyEnd) {
        let this = self.project();
        finish(this.shared, this.state, end);
    }
}

/// The time to the response head, its timing headers written. Without a header to write the
/// clock is read only for `on_complete` (a timer that does neither does nothing).
#[inline]
fn on_head(
    shared: &Shared,
    start: Instant,
    entries: Option<&ServerTiming>,
    headers: &mut http::HeaderMap,
) -> Duration {
    match shared.response_time.is_some() || shared.server_timing {
        true => write_head(shared, start, entries, headers),
        false if shared.on_complete.is_some() => start.elapsed(),
        false => Duration::ZERO,
    }
}

/// Writes the response's timing headers; the time to the response head. Out of line: the
/// inlined version measured 100 to 150 instructions more per request (callgrind), with
/// `http`'s hash of the header names no longer folded.
#[inline(never)]
fn write_head(
    shared: &Shared,
    start: Instant,
    entries: Option<&ServerTiming>,
    headers: &mut http::HeaderMap,
) -> Duration {
    let head = start.elapsed();
    // Server-Timing's duration, and (with the default unit and digits) X-Response-Time's.
    let default_unit = (shared.unit, shared.digits) == (TimeUnit::Millis, 3);
    let ms = (shared.server_timing || (default_unit && shared.response_time.is_some()))
        .then(|| Decimal::new(head, TimeUnit::Millis, 3));
    if let Some(name) = &shared.response_time {
        // A value the handler set is kept (as express's response-time does). One lookup:
        // the name is hashed once for the check and the insert.
        if let http::header::Entry::Vacant(slot) = headers.entry(name.clone()) {
            let number = match ms {
                Some(ms) if default_unit => ms,
                _ => Decimal::new(head, shared.unit, shared.digits),
            };
            let suffix = match shared.suffix {
                true => shared.unit.suffix().as_bytes(),
                false => b"",
            };
            if let Some(v) = header_value_from_parts(&[number.as_bytes(), suffix]) {
                slot.insert(v);
            }
        }
    }
    // `ms` is always there with Server-Timing on.
    if let Some(ms) = ms.as_ref().filter(|_| shared.server_timing) {
        if let Some(v) = server_timing_value(shared, ms, entries) {
            // Appended as a further field line: what the handler set is kept.
            headers.append(SERVER_TIMING, v);
        }
    }
    head
}

tower_plugins_core::plugin_future!(ResponseFuture);

/// `total;dur=12.345` (with the handler's entries before it, when it added any).
fn server_timing_value(
    shared: &Shared,
    ms: &Decimal,
    entries: Option<&ServerTiming>,
) -> Option<HeaderValue> {
    let ours = [&*shared.st_head, ms.as_bytes(), &shared.st_tail];
    match entries.filter(|e| !e.is_empty()) {
        // The common case: only our entry, copied once, into the value.
        None => header_value_from_parts(&ours),
        Some(entries) => {
            let mut out = String::with_capacity(64);
            entries.write_entries(&mut out).ok()?;
            let mut out = out.into_bytes();
            for part in ours {
                out.extend_from_slice(part);
            }
            HeaderValue::from_maybe_shared(bytes::Bytes::from(out)).ok()
        }
    }
}

const SERVER_TIMING: HeaderName = HeaderName::from_static("server-timing");

/// The timer's end-of-body hook (only with `on_complete`): reports the timings to it.
pub struct TimerEnd {
    start: Instant,
    head: Duration,
    on_complete: OnComplete,
}

impl std::fmt::Debug for TimerEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimerEnd")
            .field("head", &self.head)
            .finish_non_exhaustive()
    }
}

impl OnBodyEnd for TimerEnd {
    #[inline]
    fn on_body_end(self, end: BodyEnd) {
        report(&self.on_complete, self.start, self.head, end);
    }
}

/// Reports a finished response's timings to `on_complete`.
fn report(on_complete: &OnComplete, start: Instant, head: Duration, end: BodyEnd) {
    on_complete(&Timings {
        start,
        head,
        end: start.elapsed(),
        outcome: end.outcome,
        bytes: end.bytes,
    });
}

/// The response body of [`Timer`]: the inner body, measured to its end by core's
/// [`GuardedBody`] (`size_hint` and `is_end_stream` forwarded).
pub type ResponseBody<B> = GuardedBody<B, TimerEnd>;
