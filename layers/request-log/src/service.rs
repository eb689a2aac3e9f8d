//! [`RequestLog`], its [`ResponseFuture`] and [`ResponseBody`].

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Instant, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue, Request, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_plugins_core::{
    AuthUser, Before, BodyEnd, BodyOutcome, GRPC_MESSAGE, GRPC_STATUS, GrpcCode, GuardedBody,
    Hooks, KeptFuture, OnBodyEnd, PluginFuture, RequestStart, Spares, decode_grpc_message,
};
use tower_service::Service;

use crate::format::{
    ClfParts, LogFormat, REDACTED, Record, clf_finish, clf_request_part, write_ip,
};
use crate::layer::{Shared, Sink};
use crate::request_id::{RequestId, valid_request_id};

/// The request-log service. See the [crate docs](crate) for an example.
#[derive(Clone)]
pub struct RequestLog<S> {
    pub(crate) inner: S,
    pub(crate) shared: Arc<Shared>,
}

impl<S> RequestLog<S> {
    tower_plugins_core::inner_service_accessors!();
}

impl<S: std::fmt::Debug> std::fmt::Debug for RequestLog<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestLog")
            .field("inner", &self.inner)
            .finish()
    }
}

/// What is known of a request before its response: kept in one box per request.
struct Pending {
    shared: Arc<Shared>,
    start: Instant,
    capture: Capture,
}

/// What is kept of the request until its line is written.
enum Capture {
    /// Every field, for JSON, custom templates and the tracing sink.
    Record(Box<Record>),
    /// Apache text formats to a line sink: the request's part of the line, already written,
    /// so nothing of the request is cloned and kept.
    Clf {
        part: Vec<u8>,
        at: (usize, usize),
        user: Option<std::sync::Arc<str>>,
        status: u16,
    },
}

fn capture(
    headers: &HeaderMap,
    names: &[HeaderName],
    shared: &Shared,
) -> Vec<(HeaderName, Option<HeaderValue>)> {
    names
        .iter()
        .map(|n| {
            let v = headers.get(n).map(|v| {
                if shared.is_redacted(n) || v.is_sensitive() {
                    HeaderValue::from_static(REDACTED)
                } else {
                    v.clone()
                }
            });
            (n.clone(), v)
        })
        .collect()
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequestLog<S>
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
        }
    }
}

/// What the request log keeps of a request until its line is written, and the request id
/// its response is answered with.
pub struct LogState {
    // Boxed: every stack slot's future and body are as large as the largest plugin's,
    // and are moved once per level (a box here costs less than those copies).
    pending: Option<Box<Pending>>,
    request_id: Option<(HeaderName, HeaderValue)>,
}

impl std::fmt::Debug for LogState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogState")
            .field("request_id", &self.request_id)
            .finish_non_exhaustive()
    }
}

/// The request's id, and what its line needs of it.
#[inline]
fn begin<B>(shared: &Arc<Shared>, req: &mut Request<B>) -> LogState {
    let s = &**shared;
    // One wall-clock reading serves the log line's time and the request id.
    let time = SystemTime::now();
    let request_id = request_id(s, req, time);
    // Nothing is captured for a path skipped, or for a `tracing` sink no subscriber
    // listens to at INFO (its line would be built to be thrown away).
    let unheard = matches!(s.sink, Sink::Tracing)
        && !tracing::enabled!(target: "tower_plugins::request_log", tracing::Level::INFO);
    if unheard || s.skip.matches(req.uri().path()) {
        return LogState {
            pending: None,
            request_id,
        };
    }
    let start = RequestStart::get_or_insert(req);
    let user = req.extensions().get::<AuthUser>().map(|u| u.0.clone());
    // Kept for the plugins further in (rate_limit), which then need not resolve it again.
    let ip = s.client_ip.resolve_and_keep(req);
    let who = (ip, user);
    let capture = match (&s.format, &s.sink) {
        (LogFormat::Common, Sink::Lines(_)) => clf_capture(s, req, time, who, false),
        (LogFormat::Combined, Sink::Lines(_)) => clf_capture(s, req, time, who, true),
        _ => record_capture(s, req, time, who, request_id.as_ref()),
    };
    LogState {
        pending: Some(Box::new(Pending {
            shared: shared.clone(),
            start,
            capture,
        })),
        request_id,
    }
}

impl Hooks for crate::RequestLogLayer {
    type State = LogState;

    #[inline]
    fn on_request<B>(&self, req: &mut Request<B>) -> Before<LogState> {
        Before::Continue(begin(&self.shared, req))
    }

    #[inline]
    fn on_response<B>(&self, state: &mut LogState, res: &mut Response<B>) {
        on_head(state, res);
    }

    #[inline]
    fn on_trailers(&self, state: &mut LogState, trailers: &HeaderMap) {
        trailers_into(&mut state.pending, trailers);
    }

    #[inline]
    fn on_body_end(&self, state: LogState, end: BodyEnd) {
        LogOnEnd(state.pending).on_body_end(end);
    }
}

/// The request id (a trusted, well-formed incoming one, or a new UUID v7 from `time`), put in
/// the request's extensions; with the header it is answered under.
// Always inlined: it was part of `call`, and its result is moved, not copied, there.
#[inline(always)]
fn request_id<B>(
    s: &Shared,
    req: &mut Request<B>,
    time: SystemTime,
) -> Option<(HeaderName, HeaderValue)> {
    let h = s.request_id_header.as_ref()?;
    let incoming = (req.headers().get(h)).filter(|v| s.trust_request_id && valid_request_id(v));
    let id = match incoming {
        Some(v) => RequestId(v.clone()),
        None => RequestId::v7_at(time),
    };
    req.extensions_mut().insert(id.clone());
    Some((h.clone(), id.0))
}

/// For the Apache formats to a line sink: the request's part of the line, written now.
// Always inlined: it was part of `call`, and its result is moved, not copied, there.
#[inline(always)]
fn clf_capture<B>(
    s: &Shared,
    req: &Request<B>,
    time: SystemTime,
    (client_ip, user): (Option<IpAddr>, Option<Arc<str>>),
    combined: bool,
) -> Capture {
    let redacted;
    let query = match req.uri().query() {
        Some(q) if !s.redact_query.is_empty() => {
            redacted = redact_query(q, &s.redact_query);
            Some(redacted.as_str())
        }
        q => q,
    };
    let headers = req.headers();
    let mut part = Spares::take(&SPARE_PARTS, 192);
    let parts = ClfParts {
        client_ip,
        time,
        method: req.method(),
        uri: req.uri(),
        query,
        version: req.version(),
        referer: headers.get(http::header::REFERER),
        user_agent: headers.get(http::header::USER_AGENT),
    };
    let at = clf_request_part(&parts, combined, &mut part);
    Capture::Clf {
        part,
        at,
        user,
        status: 0,
    }
}

/// For the other formats and sinks: the request's fields, kept for the end.
// Always inlined: it was part of `call`, and its result is moved, not copied, there.
#[inline(always)]
fn record_capture<B>(
    s: &Shared,
    req: &Request<B>,
    time: SystemTime,
    (client_ip, user): (Option<IpAddr>, Option<Arc<str>>),
    request_id: Option<&(HeaderName, HeaderValue)>,
) -> Capture {
    let headers = req.headers();
    Capture::Record(Box::new(Record {
        time,
        method: req.method().clone(),
        uri: req.uri().clone(),
        query: None,
        route: route(req),
        version: req.version(),
        status: 0,
        bytes: 0,
        duration: std::time::Duration::ZERO,
        client_ip,
        user,
        request_id: request_id.map(|(_, v)| v.clone()),
        user_agent: headers.get(http::header::USER_AGENT).cloned(),
        referer: headers.get(http::header::REFERER).cloned(),
        aborted: false,
        grpc_status: None,
        grpc_message: None,
        request_headers: (s.format.template())
            .map(|t| capture(headers, &t.request_headers, s))
            .unwrap_or_default(),
        response_headers: Vec::new(),
    }))
}

#[cfg(feature = "axum")]
fn route<B>(req: &Request<B>) -> Option<String> {
    req.extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str().to_owned())
}

#[cfg(not(feature = "axum"))]
fn route<B>(_: &Request<B>) -> Option<String> {
    None
}

pin_project! {
    /// The response future of [`RequestLog`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        state: LogState,
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
        let mut res = ready!(this.inner.poll(cx))?;
        on_head(this.state, &mut res);
        let guard = LogOnEnd(this.state.pending.take());
        Poll::Ready(Ok(res.map(|body| wrap(GuardedBody::new(body, guard)))))
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
        on_head(this.state, &mut res);
        Poll::Ready(Ok(res))
    }

    #[inline]
    fn inner_kept(self: Pin<&mut Self>) -> Option<Pin<&mut F>> {
        Some(self.project().inner)
    }

    #[inline]
    fn on_trailers(self: Pin<&mut Self>, trailers: &http::HeaderMap) {
        trailers_into(&mut self.project().state.pending, trailers);
    }

    #[inline]
    fn on_body_end(self: Pin<&mut Self>, end: BodyEnd) {
        LogOnEnd(self.project().state.pending.take()).on_body_end(end);
    }
}

/// What the line takes from the response head, and the request id added to it.
fn on_head<B>(state: &mut LogState, res: &mut Response<B>) {
    // Skipped paths carry their request id too; a handler's own value is kept.
    if let Some((name, id)) = state.request_id.take() {
        res.headers_mut().entry(name).or_insert(id);
    }
    let Some(p) = &mut state.pending else {
        return;
    };
    let from_response = || res.extensions().get::<AuthUser>().map(|u| u.0.clone());
    match &mut p.capture {
        Capture::Record(r) => {
            r.status = res.status().as_u16();
            // A trailers-only gRPC answer has its status in the headers (gRPC runs over
            // HTTP/2: HTTP/1 requests pay one comparison for it).
            if r.version == http::Version::HTTP_2 {
                grpc_outcome(r, res.headers());
            }
            if r.user.is_none() {
                r.user = from_response();
            }
            if let Some(t) = p.shared.format.template() {
                r.response_headers = capture(res.headers(), &t.response_headers, &p.shared);
            }
        }
        Capture::Clf { user, status, .. } => {
            *status = res.status().as_u16();
            if user.is_none() {
                *user = from_response();
            }
        }
    }
}

tower_plugins_core::plugin_future!(ResponseFuture);

/// The request log's end-of-body hook: writes the line when the body ends, fails, or is
/// dropped.
pub struct LogOnEnd(Option<Box<Pending>>);

impl std::fmt::Debug for LogOnEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogOnEnd").finish_non_exhaustive()
    }
}

/// A gRPC call's status in the response's trailers, into the record being kept.
fn trailers_into(pending: &mut Option<Box<Pending>>, trailers: &http::HeaderMap) {
    if let Some(Capture::Record(r)) = pending.as_mut().map(|p| &mut p.capture) {
        grpc_outcome(r, trailers);
    }
}

/// A gRPC call's `grpc-status` and `grpc-message`, when `h` (headers or trailers) has them.
fn grpc_outcome(r: &mut Record, h: &http::HeaderMap) {
    if let Some(v) = h.get(GRPC_STATUS) {
        r.grpc_status = GrpcCode::parse(v.as_bytes());
        r.grpc_message = (h.get(GRPC_MESSAGE)).map(|v| decode_grpc_message(v.as_bytes()));
    }
}

impl OnBodyEnd for LogOnEnd {
    fn on_trailers(&mut self, trailers: &http::HeaderMap) {
        trailers_into(&mut self.0, trailers);
    }

    fn on_body_end(self, end: BodyEnd) {
        let Some(p) = self.0 else {
            return;
        };
        let p = *p;
        let duration = p.start.elapsed();
        let aborted = end.outcome == BodyOutcome::Aborted;
        let shared = &*p.shared;
        match p.capture {
            Capture::Clf {
                part,
                at,
                user,
                status,
            } => {
                if let (true, Sink::Lines(w)) = (shared.keeps(status, duration), &shared.sink) {
                    LINE.with(|cell| {
                        let mut line = cell.borrow_mut();
                        line.clear();
                        clf_finish(&part, at, user.as_deref(), status, end.bytes, &mut line);
                        line.push(b'\n');
                        w.send(&line);
                    });
                }
                Spares::give_back(&SPARE_PARTS, part, MAX_SPARE_CAPACITY);
            }
            Capture::Record(mut r) => {
                r.duration = duration;
                r.bytes = end.bytes;
                r.aborted = aborted;
                if !shared.keeps(r.status, duration) {
                    return;
                }
                if !shared.redact_query.is_empty() {
                    r.query = r.uri.query().map(|q| redact_query(q, &shared.redact_query));
                }
                emit(shared, &r);
            }
        }
    }
}

/// `a=1&token=secret` → `a=1&token=[redacted]` for the listed parameter names, compared
/// once decoded as the application decodes them (`application/x-www-form-urlencoded`, as
/// axum's `Query` does: `tok%65n` and `to+ken` are `token` and `to ken`). The name is logged
/// as sent.
pub(crate) fn redact_query(q: &str, params: &[String]) -> String {
    q.split('&')
        .map(|pair| {
            let Some((k, _)) = pair.split_once('=') else {
                return pair.to_owned();
            };
            let decoded = form_urlencoded::parse(k.as_bytes()).next();
            match decoded {
                Some((name, _)) if params.iter().any(|p| *p == name) => format!("{k}={REDACTED}"),
                _ => pair.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn emit(shared: &Shared, r: &Record) {
    LINE.with(|cell| {
        let mut line = cell.borrow_mut();
        line.clear();
        match &shared.sink {
            Sink::Lines(w) => {
                shared.format.write(r, shared.include_query, &mut line);
                line.push(b'\n');
                w.send(&line);
            }
            Sink::Tracing => trace(shared, r, &mut line),
        }
    });
}

thread_local! {
    /// The line being formatted: reused, so formatting allocates nothing once warm.
    static LINE: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(512));
    /// Buffers of requests' parts of Apache lines, given back once their line is written, so
    /// that a request takes one instead of allocating its own.
    static SPARE_PARTS: Spares<u8> = const { Spares::new() };
}

/// The largest part buffer kept for a later request.
const MAX_SPARE_CAPACITY: usize = 4096;

/// The access-log event: the record's fields (absent ones left out: a subscriber writes
/// every character through its escaping, so nothing is sent twice or as a placeholder). The
/// subscriber formats the fields itself, so a line is built only for a template (its
/// captured headers are in no field), as the message. `buf` (empty) holds that line and
/// then the address's text, written by the log's own writer rather than the standard
/// library's formatting machinery.
fn trace(shared: &Shared, r: &Record, buf: &mut Vec<u8>) {
    fn text(v: Option<&HeaderValue>) -> Option<&str> {
        v.and_then(|v| v.to_str().ok())
    }
    let templated = shared.format.template().is_some();
    if templated {
        shared.format.write(r, shared.include_query, buf);
    }
    let line_end = buf.len();
    if let Some(ip) = r.client_ip {
        write_ip(buf, ip);
    }
    let (line, ip) = buf.split_at(line_end);
    let line = templated.then(|| String::from_utf8_lossy(line));
    let client_ip = r.client_ip.map(|_| std::str::from_utf8(ip).unwrap_or("-"));
    // Values that cannot hold a space or a quote (a method, a path, a route, an id) are
    // displayed rather than quoted: the subscriber then copies them instead of escaping
    // them character by character, and they read the same.
    tracing::info!(
        target: "tower_plugins::request_log",
        message = line.map(display),
        method = display(r.method.as_str()),
        path = display(r.uri.path()),
        route = r.route.as_deref().map(display),
        status = r.status,
        bytes = r.bytes,
        duration_us = u64::try_from(r.duration.as_micros()).unwrap_or(u64::MAX),
        client_ip = client_ip.map(display),
        user = r.user.as_deref(),
        request_id = text(r.request_id.as_ref()).map(display),
        user_agent = text(r.user_agent.as_ref()),
        referer = text(r.referer.as_ref()),
        aborted = r.aborted.then_some(true),
        grpc_status = r.grpc_status.map(GrpcCode::as_u8),
    );
}

/// The response body of [`RequestLog`]: the inner body, logged when it ends or is dropped by
/// core's [`GuardedBody`] (`size_hint` and `is_end_stream` forwarded).
pub type ResponseBody<B> = GuardedBody<B, LogOnEnd>;
