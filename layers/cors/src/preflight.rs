//! Preflight requests: the one-pass scan of an `OPTIONS` request's CORS headers, the answer
//! (allowed or refused), and its request-independent template.

use std::borrow::Cow;

use bytes::Bytes;
use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS,
    ACCESS_CONTROL_REQUEST_METHOD, CONTENT_TYPE, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode};
use tower_plugins_core::is_tchar;

use crate::layer::{AllowHeaders, AllowMethods, Shared};

/// At most this many bytes of `Access-Control-Request-Headers` are read; a longer list is
/// refused rather than parsed.
pub(crate) const MAX_REQUEST_HEADERS_LEN: usize = 4096;
/// At most this many names in `Access-Control-Request-Headers`.
pub(crate) const MAX_REQUEST_HEADERS: usize = 64;

const ACRPN: HeaderName = HeaderName::from_static("access-control-request-private-network");
const ACAPN: HeaderName = HeaderName::from_static("access-control-allow-private-network");
pub(crate) const TRUE: HeaderValue = HeaderValue::from_static("true");
pub(crate) const STAR: HeaderValue = HeaderValue::from_static("*");
const PREFLIGHT_VARY: HeaderValue = HeaderValue::from_static(
    "origin, access-control-request-method, access-control-request-headers",
);

/// At most this many `Access-Control-Request-Headers` lines are read.
const MAX_ACRH_LINES: usize = 8;

/// The CORS headers of an `OPTIONS` request, found in one pass.
pub(crate) struct Scan<'a> {
    origin: Option<&'a HeaderValue>,
    origins: usize,
    method: Option<&'a HeaderValue>,
    pub(crate) methods: usize,
    acrh: [Option<&'a HeaderValue>; MAX_ACRH_LINES],
    acrh_lines: usize,
    private: bool,
}

impl<'a> Scan<'a> {
    pub(crate) fn new(headers: &'a HeaderMap) -> Self {
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

    pub(crate) fn origin(&self) -> Result<Option<&'a HeaderValue>, ()> {
        match self.origins {
            0 => Ok(None),
            1 => Ok(self.origin),
            _ => Err(()),
        }
    }
}

/// A preflight answer: the head, and the body text of a `strict` refusal.
pub(crate) type Answer = Response<Option<Bytes>>;

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
pub(crate) fn preflight(s: &Shared, sc: &Scan<'_>, acao: Option<HeaderValue>) -> Answer {
    let Some(acao) = acao else {
        return refusal(s, "origin not allowed");
    };
    let method = match requested_method(s, sc) {
        Ok(m) => m,
        Err(why) => return refusal(s, why),
    };
    let asked = match requested_headers(s, sc) {
        Ok(asked) => asked,
        Err(why) => return refusal(s, &why),
    };
    // Private Network Access.
    if sc.private && !s.private_network {
        return refusal(s, "private network access not allowed");
    }
    allowed(s, acao, method, &asked, sc.private)
}

/// The method asked for, if it is one token that the rules allow (safelisted methods never
/// need permission).
fn requested_method<'a>(s: &Shared, sc: &Scan<'a>) -> Result<&'a HeaderValue, &'static str> {
    let (Some(method), 1) = (sc.method, sc.methods) else {
        return Err("malformed Access-Control-Request-Method");
    };
    let bytes = method.as_bytes();
    let m = Method::from_bytes(bytes).map_err(|_| "malformed Access-Control-Request-Method")?;
    let ok = is_safelisted_method(bytes)
        || match &s.methods {
            AllowMethods::Any | AllowMethods::Mirror => true,
            AllowMethods::List(list, _) => list.contains(&m),
        };
    if ok {
        Ok(method)
    } else {
        Err("method not allowed")
    }
}

/// What the allowed request headers ask of the answer.
#[derive(Default)]
struct Asked {
    /// `authorization` was asked for (a `*` does not cover it).
    authorization: bool,
    /// The names, lowercase and comma-separated, for a mirroring rule.
    mirrored: String,
}

/// Reads `Access-Control-Request-Headers`: a bounded comma-separated list of names, read
/// byte by byte (no allocation, no Unicode trimming) and compared case-insensitively in place.
fn requested_headers(s: &Shared, sc: &Scan<'_>) -> Result<Asked, Cow<'static, str>> {
    const TOO_LONG: &str = "Access-Control-Request-Headers is too long";
    if sc.acrh_lines > MAX_ACRH_LINES {
        return Err(TOO_LONG.into());
    }
    let mirror = s.headers == AllowHeaders::Mirror;
    let (mut total, mut count, mut asked) = (0, 0, Asked::default());
    for value in sc.acrh.iter().flatten() {
        total += value.len();
        if total > MAX_REQUEST_HEADERS_LEN {
            return Err(TOO_LONG.into());
        }
        let names = value.as_bytes().split(|b| *b == b',').map(trim_ows);
        for name in names.filter(|n| !n.is_empty()) {
            count += 1;
            if count > MAX_REQUEST_HEADERS {
                return Err("malformed Access-Control-Request-Headers".into());
            }
            asked.authorization |= requested_header(s, name)?;
            if mirror {
                if !asked.mirrored.is_empty() {
                    asked.mirrored.push_str(", ");
                }
                let lower = name.iter().map(|b| char::from(b.to_ascii_lowercase()));
                asked.mirrored.extend(lower);
            }
        }
    }
    Ok(asked)
}

/// Judges one requested name; `Ok(true)` when it is an `authorization` that a listed rule
/// does not name.
fn requested_header(s: &Shared, name: &[u8]) -> Result<bool, Cow<'static, str>> {
    // A name equal to an allowed (valid, lowercase) name is a token by construction;
    // anything else is checked before it is judged.
    if let AllowHeaders::List(list, _) = &s.headers {
        if list.iter().any(|h| eq_lower(name, h.as_str())) {
            return Ok(false);
        }
    }
    if !name.iter().all(|b| is_tchar(*b)) {
        return Err("malformed Access-Control-Request-Headers".into());
    }
    let any = matches!(s.headers, AllowHeaders::Any | AllowHeaders::Mirror);
    if !any && !is_safelisted_header(name) {
        let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
        return Err(format!("header `{lower}` not allowed").into());
    }
    Ok(name.eq_ignore_ascii_case(b"authorization"))
}

/// The answer to an allowed preflight: the template built at configuration, with what
/// depends on the request.
fn allowed(
    s: &Shared,
    acao: HeaderValue,
    method: &HeaderValue,
    asked: &Asked,
    private: bool,
) -> Answer {
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
            if asked.authorization {
                h.insert(
                    ACCESS_CONTROL_ALLOW_HEADERS,
                    HeaderValue::from_static("*, authorization"),
                );
            }
        }
        AllowHeaders::Any | AllowHeaders::Mirror => {
            if let Ok(v) = HeaderValue::from_str(&asked.mirrored) {
                if !asked.mirrored.is_empty() {
                    h.insert(ACCESS_CONTROL_ALLOW_HEADERS, v);
                }
            }
        }
    }
    if private {
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
