//! gRPC-shaped refusals: a plugin that refuses a gRPC call answers as a gRPC client reads it.
//!
//! A gRPC client reads an HTTP error's body as gRPC frames (tonic turns a problem+json `{`
//! into "invalid compression flag"), so a refusal of a gRPC call is a *trailers-only*
//! response instead: HTTP 200, `grpc-status` and `grpc-message` in the headers, no body.
//! Plain HTTP requests keep their answers; the check is one header comparison, made only
//! when a plugin refuses.

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};

/// `grpc-status`.
pub const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
/// `grpc-message`.
pub const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
/// `grpc-retry-pushback-ms`: how long a client's retry policy waits before trying again.
pub const GRPC_RETRY_PUSHBACK_MS: HeaderName = HeaderName::from_static("grpc-retry-pushback-ms");

/// The gRPC status codes (`grpc-status`), as the gRPC specification numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GrpcCode {
    /// 0.
    Ok = 0,
    /// 1: the caller went away.
    Cancelled = 1,
    /// 2.
    Unknown = 2,
    /// 3.
    InvalidArgument = 3,
    /// 4.
    DeadlineExceeded = 4,
    /// 5.
    NotFound = 5,
    /// 6.
    AlreadyExists = 6,
    /// 7: a rule refuses the caller.
    PermissionDenied = 7,
    /// 8: a quota is spent.
    ResourceExhausted = 8,
    /// 9.
    FailedPrecondition = 9,
    /// 10: the call stopped midway.
    Aborted = 10,
    /// 11.
    OutOfRange = 11,
    /// 12.
    Unimplemented = 12,
    /// 13.
    Internal = 13,
    /// 14: try again later.
    Unavailable = 14,
    /// 15.
    DataLoss = 15,
    /// 16: the caller must authenticate.
    Unauthenticated = 16,
}

impl GrpcCode {
    /// The code a refusal answered with HTTP `status` becomes: 429 `RESOURCE_EXHAUSTED`,
    /// 503 `UNAVAILABLE`, 401 (or a redirect to a login page) `UNAUTHENTICATED`, 403
    /// `PERMISSION_DENIED`, 413 `RESOURCE_EXHAUSTED`, other 4xx `INVALID_ARGUMENT`, the rest
    /// `UNKNOWN`.
    pub fn of_refusal(status: StatusCode) -> Self {
        match status.as_u16() {
            429 | 413 => GrpcCode::ResourceExhausted,
            503 => GrpcCode::Unavailable,
            401 | 303 | 302 | 307 => GrpcCode::Unauthenticated,
            403 => GrpcCode::PermissionDenied,
            400..=499 => GrpcCode::InvalidArgument,
            _ => GrpcCode::Unknown,
        }
    }

    /// The code a `grpc-status` value names; `None` for anything else.
    pub fn parse(value: &[u8]) -> Option<Self> {
        Self::from_u8(std::str::from_utf8(value).ok()?.parse().ok()?)
    }

    /// The code numbered `n`; `None` past 16.
    pub fn from_u8(n: u8) -> Option<Self> {
        ALL.get(usize::from(n)).copied()
    }

    /// Its number.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// Its name as the specification writes it (`RESOURCE_EXHAUSTED`).
    pub fn name(self) -> &'static str {
        NAMES[self as usize]
    }
}

const ALL: [GrpcCode; 17] = [
    GrpcCode::Ok,
    GrpcCode::Cancelled,
    GrpcCode::Unknown,
    GrpcCode::InvalidArgument,
    GrpcCode::DeadlineExceeded,
    GrpcCode::NotFound,
    GrpcCode::AlreadyExists,
    GrpcCode::PermissionDenied,
    GrpcCode::ResourceExhausted,
    GrpcCode::FailedPrecondition,
    GrpcCode::Aborted,
    GrpcCode::OutOfRange,
    GrpcCode::Unimplemented,
    GrpcCode::Internal,
    GrpcCode::Unavailable,
    GrpcCode::DataLoss,
    GrpcCode::Unauthenticated,
];

const NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// The request's `content-type` when it is a gRPC call: `application/grpc` or
/// `application/grpc-web`, alone, with a `+suffix` (`+proto`, `+json`, `-text`) or
/// parameters.
///
/// ```
/// use http::HeaderMap;
/// let mut h = HeaderMap::new();
/// h.insert("content-type", "application/grpc+proto".parse().unwrap());
/// assert!(tower_plugins_core::grpc_content_type(&h).is_some());
/// h.insert("content-type", "application/json".parse().unwrap());
/// assert!(tower_plugins_core::grpc_content_type(&h).is_none());
/// ```
pub fn grpc_content_type(headers: &HeaderMap) -> Option<&HeaderValue> {
    let v = headers.get(CONTENT_TYPE)?;
    let b = v.as_bytes();
    let rest = b
        .get(..16)
        .filter(|p| p.eq_ignore_ascii_case(b"application/grpc"))
        .map(|_| &b[16..])?;
    matches!(rest.first(), None | Some(b'+' | b'-' | b';' | b' ')).then_some(v)
}

/// A refusal as the gRPC call whose `content-type` is `ct` (see [`grpc_content_type`]) reads
/// it: trailers-only, HTTP 200, the HTTP status as a [`GrpcCode`] ([`GrpcCode::of_refusal`])
/// and `message` as the `grpc-message`. Headers such as `Retry-After` and `RateLimit` stay;
/// the body and a `Location` go. A response that already carries `grpc-status` is returned as it is.
///
/// ```
/// use bytes::Bytes;
/// use http::{HeaderMap, Response, StatusCode};
/// let mut req = HeaderMap::new();
/// req.insert("content-type", "application/grpc".parse().unwrap());
/// let mut res = Response::new(Bytes::from_static(b"{\"title\":\"Too Many Requests\"}"));
/// *res.status_mut() = StatusCode::TOO_MANY_REQUESTS;
/// let ct = tower_plugins_core::grpc_content_type(&req).unwrap();
/// let res = tower_plugins_core::grpc_refusal(ct, res, "slow down: 50%");
/// assert_eq!(res.status(), 200);
/// assert_eq!(res.headers()["grpc-status"], "8");
/// assert_eq!(res.headers()["grpc-message"], "slow down: 50%25");
/// assert!(res.body().is_empty());
/// ```
pub fn grpc_refusal(ct: &HeaderValue, mut res: Response<Bytes>, message: &str) -> Response<Bytes> {
    if res.headers().contains_key(GRPC_STATUS) {
        return res;
    }
    let code = GrpcCode::of_refusal(res.status());
    *res.status_mut() = StatusCode::OK;
    *res.body_mut() = Bytes::new();
    let h = res.headers_mut();
    h.remove(CONTENT_LENGTH);
    // A gRPC client follows no redirect (to a login page, say).
    h.remove(LOCATION);
    h.insert(CONTENT_TYPE, ct.clone());
    h.insert(GRPC_STATUS, HeaderValue::from(u16::from(code.as_u8())));
    if let Ok(m) = HeaderValue::from_maybe_shared(Bytes::from(percent_encode(message))) {
        h.insert(GRPC_MESSAGE, m);
    }
    res
}

/// [`grpc_refusal`] when the request whose headers are `request` is a gRPC call; `res` as
/// it is otherwise.
pub fn refusal_for(request: &HeaderMap, res: Response<Bytes>, message: &str) -> Response<Bytes> {
    match grpc_content_type(request) {
        Some(ct) => grpc_refusal(ct, res, message),
        None => res,
    }
}

/// `grpc-message`'s encoding: bytes outside printable ASCII, and `%`, as `%XX`.
fn percent_encode(message: &str) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Vec::with_capacity(message.len());
    for &b in message.as_bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
    out
}

/// A `grpc-message` as text: `%XX` sequences decoded (bytes that are not UTF-8 replaced).
///
/// ```
/// assert_eq!(tower_plugins_core::decode_grpc_message(b"service%20not%20found"), "service not found");
/// ```
pub fn decode_grpc_message(value: &[u8]) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        let pair = value
            .get(i + 1..i + 3)
            .and_then(|p| Some(hex(p[0])? << 4 | hex(p[1])?));
        match (value[i], pair) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(ct: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, ct.parse().unwrap());
        h
    }

    #[test]
    fn grpc_content_types_are_told_from_others() {
        for ct in [
            "application/grpc",
            "application/grpc+proto",
            "Application/GRPC+json",
            "application/grpc-web",
            "application/grpc-web-text+proto",
            "application/grpc; charset=utf-8",
        ] {
            assert!(grpc_content_type(&headers(ct)).is_some(), "{ct}");
        }
        for ct in [
            "application/grpcx",
            "application/json",
            "text/grpc",
            "application/gr",
        ] {
            assert!(grpc_content_type(&headers(ct)).is_none(), "{ct}");
        }
        assert!(grpc_content_type(&HeaderMap::new()).is_none());
    }

    #[test]
    fn a_refusal_of_a_grpc_call_is_trailers_only_and_keeps_its_headers() {
        let mut res = Response::new(Bytes::from_static(b"{}"));
        *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        res.headers_mut()
            .insert("retry-after", HeaderValue::from_static("1"));
        res.headers_mut()
            .insert(CONTENT_LENGTH, HeaderValue::from_static("2"));
        let res = refusal_for(&headers("application/grpc-web+proto"), res, "naïve\n");
        assert_eq!(res.status(), 200);
        let h = res.headers();
        assert_eq!(h[CONTENT_TYPE], "application/grpc-web+proto");
        assert_eq!(h[GRPC_STATUS], "14");
        assert_eq!(h[GRPC_MESSAGE], "na%C3%AFve%0A");
        assert_eq!(h["retry-after"], "1");
        assert!(h.get(CONTENT_LENGTH).is_none() && res.body().is_empty());
        let plain = Response::new(Bytes::from_static(b"{}"));
        let plain = refusal_for(&headers("application/json"), plain, "x");
        assert_eq!(&plain.body()[..], b"{}", "plain HTTP keeps its answer");
    }

    #[test]
    fn messages_round_trip_through_their_encoding() {
        for m in ["plain", "50% off", "naïve\nline", "%zz %4", ""] {
            assert_eq!(decode_grpc_message(&percent_encode(m)), m);
        }
        assert_eq!(
            decode_grpc_message(b"%zz%4"),
            "%zz%4",
            "malformed escapes stay"
        );
    }

    #[test]
    fn codes_parse_and_name_as_the_specification_does() {
        assert_eq!(GrpcCode::parse(b"8"), Some(GrpcCode::ResourceExhausted));
        assert_eq!(GrpcCode::parse(b"17"), None);
        assert_eq!(GrpcCode::parse(b"x"), None);
        assert_eq!(GrpcCode::NotFound.name(), "NOT_FOUND");
        assert_eq!(
            GrpcCode::of_refusal(StatusCode::FORBIDDEN),
            GrpcCode::PermissionDenied
        );
        for (i, c) in ALL.iter().enumerate() {
            assert_eq!(c.as_u8() as usize, i);
        }
    }
}
