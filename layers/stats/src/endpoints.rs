//! The endpoints: `GET /admin/stats` (JSON, or the dashboard for browsers) and `GET /metrics`
//! (Prometheus text), for allowed clients only.

use bytes::Bytes;
use http::header::{
    ALLOW, AUTHORIZATION, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, WWW_AUTHENTICATE,
    X_CONTENT_TYPE_OPTIONS,
};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use tower_plugins_core::refusal_for;

use crate::layer::{Access, Shared};

/// The dashboard: one self-contained page (inline script and style, nothing fetched but the
/// snapshot from its own URL).
const DASHBOARD: &str = include_str!("dashboard.html");

/// The dashboard may run its inline script and style and fetch from its own origin; nothing
/// else.
const DASHBOARD_CSP: HeaderValue = HeaderValue::from_static(
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
     connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'",
);

enum Which {
    Stats,
    Metrics,
}

/// The answer to a request for one of the endpoints, or `None` for any other request.
pub(crate) fn answer<B>(shared: &Shared, req: &Request<B>) -> Option<Response<Bytes>> {
    let e = &shared.endpoints;
    let path = req.uri().path();
    let which = if e.stats.as_deref() == Some(path) {
        Which::Stats
    } else if e.metrics.as_deref() == Some(path) {
        Which::Metrics
    } else {
        return None;
    };
    if let Some(refusal) = check_access(&e.access, req) {
        return Some(refusal);
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut res = text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
        res.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Some(res);
    }
    let reg = &shared.registry;
    let mut res = match which {
        Which::Stats if wants_html(req) => {
            let mut res = Response::new(Bytes::from_static(DASHBOARD.as_bytes()));
            let h = res.headers_mut();
            h.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            h.insert(CONTENT_SECURITY_POLICY, DASHBOARD_CSP);
            res
        }
        Which::Stats => {
            let body = serde_json::to_vec(&reg.snapshot()).expect("a snapshot serializes");
            let mut res = Response::new(Bytes::from(body));
            res.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            res
        }
        Which::Metrics => {
            let mut res = Response::new(Bytes::from(crate::prometheus::render(reg)));
            res.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            res
        }
    };
    let h = res.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(http::header::VARY, HeaderValue::from_static("accept"));
    if req.method() == Method::HEAD {
        *res.body_mut() = Bytes::new();
    }
    Some(res)
}

fn text(status: StatusCode, body: &'static str) -> Response<Bytes> {
    let mut res = Response::new(Bytes::from_static(body.as_bytes()));
    *res.status_mut() = status;
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

/// 403 for an address not allowed, 401 for a missing or wrong token; `None` to go on.
fn check_access<B>(access: &Access, req: &Request<B>) -> Option<Response<Bytes>> {
    if access.allow.is_some() && !access.allows(access.client_ip.resolve_cached(req)) {
        let res = text(StatusCode::FORBIDDEN, "forbidden\n");
        return Some(refusal_for(req.headers(), res, "forbidden"));
    }
    if let Some(token) = &access.token {
        let given = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim());
        if !given.is_some_and(|g| same(g.as_bytes(), token.as_bytes())) {
            let mut res = text(StatusCode::UNAUTHORIZED, "a bearer token is required\n");
            res.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"stats\""),
            );
            return Some(refusal_for(
                req.headers(),
                res,
                "a bearer token is required",
            ));
        }
    }
    None
}

/// Compares in time that depends on the lengths only.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether to answer with the dashboard: for `?format=html`, or an `Accept` naming
/// `text/html` (what browsers send); JSON for `?format=json`, an `Accept` naming
/// `application/json` (what the dashboard's own requests send), and anything else.
fn wants_html<B>(req: &Request<B>) -> bool {
    let format = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("format=")));
    if format == Some("json") {
        return false;
    }
    let accepts = |kind: &str| {
        req.headers()
            .get_all(http::header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|m| m.trim().starts_with(kind)))
    };
    if accepts("application/json") {
        return false;
    }
    format == Some("html") || accepts("text/html")
}
