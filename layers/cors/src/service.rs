//! [`Cors`] and its [`ResponseFuture`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, CONTENT_TYPE, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_plugins_core::{PluginBody, PluginFuture, is_tchar};
use tower_service::Service;

use crate::layer::{AllowHeaders, AllowMethods, Shared};
use crate::origin::OriginRequest;

/// At most this many bytes of `Access-Control-Request-Headers` are read; a longer list is
/// refused rather than parsed.
pub(crate) const MAX_REQUEST_HEADERS_LEN: usize = 4096;
/// At most this many names in `Access-Control-Request-Headers`.
pub(crate) const MAX_REQUEST_HEADERS: usize = 64;

const ACRPN: HeaderName = HeaderName::from_static("access-control-request-private-network");
const ACAPN: HeaderName = HeaderName::from_static("access-control-allow-private-network");
const TRUE: HeaderValue = HeaderValue::from_static("true");
const STAR: HeaderValue = HeaderValue::from_static("*");
const PREFLIGHT_VARY: HeaderValue = HeaderValue::from_static(
    "origin, access-control-request-method, access-control-request-headers",
);

/// The CORS service. See the [crate docs](crate) for an example.
#[derive(Clone)]
pub struct Cors<S> {
    pub(crate) inner: S,
    pub(crate) shared: Arc<Shared>,
}

impl<S> Cors<S> {
    /// Wraps `inner` with the rules of `layer`.
    pub fn new(inner: S, layer: &crate::CorsLayer) -> Self {
        Cors {
            inner,
            shared: layer.shared.clone(),
        }
    }

    /// A new [`CorsLayer`](crate::CorsLayer), which allows no origin until told.
    pub fn layer() -> crate::CorsLayer {
        crate::CorsLayer::new()
    }

    tower_plugins_core::inner_service_accessors!();
}

impl<S: std::fmt::Debug> std::fmt::Debug for Cors<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cors").field("inner", &self.inner).finish()
    }
}

/// The request's single `Origin`: `Ok(None)` when absent, `Err(())` when repeated or not
/// text (such a request is treated as coming from an origin that is not allowed).
fn single_origin(headers: &HeaderMap) -> Result<Option<&HeaderValue>, ()> {
    let mut all = headers.get_all(ORIGIN).iter();
    match (all.next(), all.next()) {
        (None, _) => Ok(None),
        (Some(v), None) => Ok(Some(v)),
        (Some(_), Some(_)) => Err(()),
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Cors<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<PluginBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let s = &*self.shared;
        let vary = s.origins.varies();
        // A preflight needs four request headers: read them in one pass rather than hashing
        // each name.
        let scan = (req.method() == Method::OPTIONS).then(|| Scan::new(req.headers()));
        let origin = match &scan {
            Some(sc) => sc.origin(),
            None => single_origin(req.headers()),
        };
        let origin = match origin {
            Ok(None) => {
                return ResponseFuture {
                    kind: Kind::Actual {
                        fut: self.inner.call(req),
                        allow: None,
                        vary,
                    },
                };
            }
            Ok(Some(v)) => v.to_str().ok().map(|text| (v, text)),
            Err(()) => None,
        };
        let allowed = origin.filter(|(_, text)| {
            s.origins.allows(&OriginRequest {
                origin: text,
                method: req.method(),
                uri: req.uri(),
                headers: req.headers(),
            })
        });
        let acao = allowed.map(|(v, _)| if s.origins.is_any() { STAR } else { v.clone() });

        if let Some(sc) = scan.filter(|sc| sc.methods > 0) {
            return ResponseFuture {
                kind: Kind::Preflight {
                    res: Some(Box::new(preflight(s, &sc, acao))),
                },
            };
        }
        let allow = acao.map(|v| Allow {
            origin: v,
            shared: self.shared.clone(),
        });
        ResponseFuture {
            kind: Kind::Actual {
                fut: self.inner.call(req),
                allow,
                vary,
            },
        }
    }
}

/// At most this many `Access-Control-Request-Headers` lines are read.
const MAX_ACRH_LINES: usize = 8;

/// The CORS headers of an `OPTIONS` request, found in one pass.
struct Scan<'a> {
    origin: Option<&'a HeaderValue>,
    origins: usize,
    method: Option<&'a HeaderValue>,
    methods: usize,
    acrh: [Option<&'a HeaderValue>; MAX_ACRH_LINES],
    acrh_lines: usize,
    private: bool,
}

impl<'a> Scan<'a> {
    fn new(headers: &'a HeaderMap) -> Self {
        let mut sc = Scan {
            origin: None,
            origins: 0,
            method: None,
            methods: 0,
            acrh: [None; MAX_ACRH_LINES],
            acrh_lines: 0,
            private: false,
        };
        for (name, value) in headers {
            if *name == ORIGIN {
                sc.origins += 1;
                sc.origin = Some(value);
            } else if *name == ACCESS_CONTROL_REQUEST_METHOD {
                sc.methods += 1;
                sc.method = Some(value);
            } else if *name == ACCESS_CONTROL_REQUEST_HEADERS {
                if let Some(slot) = sc.acrh.get_mut(sc.acrh_lines) {
                    *slot = Some(value);
                }
                sc.acrh_lines += 1;
            } else if *name == ACRPN {
                sc.private |= value.as_bytes().eq_ignore_ascii_case(b"true");
            }
        }
        sc
    }

    fn origin(&self) -> Result<Option<&'a HeaderValue>, ()> {
        match self.origins {
            0 => Ok(None),
            1 => Ok(self.origin),
            _ => Err(()),
        }
    }
}

/// A preflight answer: the head, and the body text of a `strict` refusal.
type Answer = Response<Option<Bytes>>;

/// Why a preflight was refused (the body of a `strict` 403).
fn refusal(s: &Shared, why: &str) -> Answer {
    let mut res = if s.strict {
        let mut r = Response::new(Some(Bytes::from(format!(
            "CORS preflight refused: {why}\n"
        ))));
        *r.status_mut() = StatusCode::FORBIDDEN;
        r.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r
    } else {
        let mut r = Response::new(None);
        *r.status_mut() = s.preflight_status;
        r
    };
    res.headers_mut().insert(VARY, PREFLIGHT_VARY);
    res
}

fn is_safelisted_method(m: &[u8]) -> bool {
    matches!(m, b"GET" | b"HEAD" | b"POST")
}

/// Header names browsers never need permission for, even when they list them.
fn is_safelisted_header(name: &[u8]) -> bool {
    [&b"accept"[..], b"accept-language", b"content-language"]
        .iter()
        .any(|s| s.eq_ignore_ascii_case(name))
}

/// Whether `name` equals `lower` (already lowercase) ignoring ASCII case.
#[inline]
fn eq_lower(name: &[u8], lower: &str) -> bool {
    name.len() == lower.len()
        && name
            .iter()
            .zip(lower.as_bytes())
            .all(|(a, b)| a.to_ascii_lowercase() == *b)
}

/// Trims optional whitespace (spaces and tabs) from both ends.
fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Answers a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`).
fn preflight(s: &Shared, sc: &Scan<'_>, acao: Option<HeaderValue>) -> Answer {
    let Some(acao) = acao else {
        return refusal(s, "origin not allowed");
    };

    // The method: one token; safelisted methods never need permission.
    let (Some(method), 1) = (sc.method, sc.methods) else {
        return refusal(s, "malformed Access-Control-Request-Method");
    };
    let method_bytes = method.as_bytes();
    let method_ok = match Method::from_bytes(method_bytes) {
        Err(_) => return refusal(s, "malformed Access-Control-Request-Method"),
        Ok(m) => {
            is_safelisted_method(method_bytes)
                || match &s.methods {
                    AllowMethods::Any | AllowMethods::Mirror => true,
                    AllowMethods::List(list, _) => list.contains(&m),
                }
        }
    };
    if !method_ok {
        return refusal(s, "method not allowed");
    }

    // The headers: a bounded comma-separated list of names, read byte by byte (no
    // allocation, no Unicode trimming) and compared case-insensitively in place.
    let mut total = 0;
    let mut count = 0;
    let mut wants_authorization = false;
    let mut mirrored = String::new();
    let mirror = s.headers == AllowHeaders::Mirror;
    if sc.acrh_lines > MAX_ACRH_LINES {
        return refusal(s, "Access-Control-Request-Headers is too long");
    }
    for value in sc.acrh.iter().flatten() {
        total += value.len();
        if total > MAX_REQUEST_HEADERS_LEN {
            return refusal(s, "Access-Control-Request-Headers is too long");
        }
        for name in value
            .as_bytes()
            .split(|b| *b == b',')
            .map(trim_ows)
            .filter(|n| !n.is_empty())
        {
            count += 1;
            if count > MAX_REQUEST_HEADERS {
                return refusal(s, "malformed Access-Control-Request-Headers");
            }
            // A name equal to an allowed (valid, lowercase) name is a token by construction;
            // anything else is checked before it is judged.
            let listed = match &s.headers {
                AllowHeaders::List(list, _) => list.iter().any(|h| eq_lower(name, h.as_str())),
                AllowHeaders::Any | AllowHeaders::Mirror => false,
            };
            if !listed {
                if !name.iter().all(|b| is_tchar(*b)) {
                    return refusal(s, "malformed Access-Control-Request-Headers");
                }
                let ok = matches!(s.headers, AllowHeaders::Any | AllowHeaders::Mirror)
                    || is_safelisted_header(name);
                if !ok {
                    let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
                    return refusal(s, &format!("header `{lower}` not allowed"));
                }
                if name.eq_ignore_ascii_case(b"authorization") {
                    wants_authorization = true;
                }
            }
            if mirror {
                if !mirrored.is_empty() {
                    mirrored.push_str(", ");
                }
                mirrored.extend(name.iter().map(|b| char::from(b.to_ascii_lowercase())));
            }
        }
    }

    // Private Network Access.
    let wants_private = sc.private;
    if wants_private && !s.private_network {
        return refusal(s, "private network access not allowed");
    }

    // The headers that do not depend on the request were built once, at configuration.
    let mut res = Response::new(None);
    *res.status_mut() = s.preflight_status;
    *res.headers_mut() = s.preflight_template.clone();
    let h = res.headers_mut();
    let credentials = s.credentials && acao != STAR;
    h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, acao);
    if s.methods == AllowMethods::Mirror || (credentials && s.methods == AllowMethods::Any) {
        // Mirrored, or `*`, which means a method named "*" with credentials: name the one
        // asked for.
        h.insert(ACCESS_CONTROL_ALLOW_METHODS, method.clone());
    }
    match &s.headers {
        AllowHeaders::List(..) => {}
        AllowHeaders::Any if !credentials => {
            if wants_authorization {
                h.insert(
                    ACCESS_CONTROL_ALLOW_HEADERS,
                    HeaderValue::from_static("*, authorization"),
                );
            }
        }
        AllowHeaders::Any | AllowHeaders::Mirror => {
            if let Ok(v) = HeaderValue::from_str(&mirrored) {
                if !mirrored.is_empty() {
                    h.insert(ACCESS_CONTROL_ALLOW_HEADERS, v);
                }
            }
        }
    }
    if wants_private {
        h.insert(ACAPN, TRUE);
    }
    res
}

/// The headers of every allowed preflight answer that do not depend on the request: built
/// when the rules change, cloned per preflight (cheaper than inserting each).
pub(crate) fn preflight_template(s: &Shared) -> HeaderMap {
    let mut h = HeaderMap::with_capacity(8);
    // A placeholder replaced per request: a clone has no spare room, so inserting a new name
    // would grow the map, while replacing a value does not.
    h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, STAR);
    // With `*` origins the answer is `*`, which cannot carry credentials.
    let credentials = s.credentials && !s.origins.is_any();
    if credentials {
        h.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, TRUE);
    }
    match &s.methods {
        AllowMethods::Any if !credentials => {
            h.insert(ACCESS_CONTROL_ALLOW_METHODS, STAR);
        }
        AllowMethods::Any | AllowMethods::Mirror | AllowMethods::List(_, None) => {}
        AllowMethods::List(_, Some(v)) => {
            h.insert(ACCESS_CONTROL_ALLOW_METHODS, v.clone());
        }
    }
    match &s.headers {
        AllowHeaders::List(_, Some(v)) => {
            h.insert(ACCESS_CONTROL_ALLOW_HEADERS, v.clone());
        }
        AllowHeaders::Any if !credentials => {
            h.insert(ACCESS_CONTROL_ALLOW_HEADERS, STAR);
        }
        _ => {}
    }
    if let Some(max_age) = &s.max_age {
        h.insert(ACCESS_CONTROL_MAX_AGE, max_age.clone());
    }
    h.insert(VARY, PREFLIGHT_VARY);
    h
}

/// What an allowed actual request adds to its response.
struct Allow {
    origin: HeaderValue,
    shared: Arc<Shared>,
}

pin_project! {
    /// The response future of [`Cors`].
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Actual { #[pin] fut: F, allow: Option<Allow>, vary: bool },
        // Boxed: an answer is a whole response head, and inline it would make every CORS
        // future (and every plugin-stack slot holding one) that large.
        Preflight { res: Option<Box<Answer>> },
    }
}

impl<F, B, E> PluginFuture for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Body = PluginBody<B>;
    type Error = E;

    fn poll_with<T>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        wrap: impl FnOnce(PluginBody<B>) -> T,
    ) -> Poll<Result<Response<T>, E>> {
        match self.project().kind.project() {
            KindProj::Preflight { res } => {
                // Polled after completion: an empty answer rather than a panic.
                let res = res.take().map(|r| *r).unwrap_or_default();
                Poll::Ready(Ok(res.map(|body| {
                    wrap(match body {
                        Some(text) => PluginBody::full(text),
                        None => PluginBody::empty(),
                    })
                })))
            }
            KindProj::Actual { fut, allow, vary } => {
                let res = ready!(fut.poll(cx))?;
                let (mut parts, body) = res.into_parts();
                if let Some(allow) = allow.take() {
                    apply_actual(&mut parts.headers, allow);
                }
                if *vary {
                    append_vary(&mut parts.headers, "origin");
                }
                Poll::Ready(Ok(Response::from_parts(
                    parts,
                    wrap(PluginBody::inner(body)),
                )))
            }
        }
    }
}

tower_plugins_core::plugin_future!(ResponseFuture);

fn apply_actual(h: &mut HeaderMap, allow: Allow) {
    let s = &*allow.shared;
    let force = s.override_handler;
    if !force && h.contains_key(ACCESS_CONTROL_ALLOW_ORIGIN) {
        // The handler answered CORS itself for this response.
        return;
    }
    let credentials = s.credentials && allow.origin != STAR;
    h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allow.origin);
    if credentials && (force || !h.contains_key(ACCESS_CONTROL_ALLOW_CREDENTIALS)) {
        h.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, TRUE);
    }
    if let Some(expose) = &s.expose {
        if force || !h.contains_key(ACCESS_CONTROL_EXPOSE_HEADERS) {
            h.insert(ACCESS_CONTROL_EXPOSE_HEADERS, expose.clone());
        }
    }
}

/// Adds `name` to `Vary` unless it is listed already or `Vary: *` is set. Values the handler
/// wrote are kept.
pub(crate) fn append_vary(h: &mut HeaderMap, name: &'static str) {
    for v in h.get_all(VARY) {
        let Ok(text) = v.to_str() else { continue };
        for item in text.split(',') {
            let item = item.trim();
            if item == "*" || item.eq_ignore_ascii_case(name) {
                return;
            }
        }
    }
    h.append(VARY, HeaderValue::from_static(name));
}
