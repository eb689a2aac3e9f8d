//! Log line formats: `common`, `combined`, `json` and custom templates, written from a
//! [`Record`].

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use http::{HeaderName, HeaderValue, Method, Uri, Version};
use tower_plugins_core::{ConfigError, GrpcCode, write_json_str};

use crate::escape::{escape_bare, escape_text, opt_text, put};
use crate::template::{Template, Token};

/// What one access-log line is made of.
#[derive(Debug, Clone)]
pub struct Record {
    /// When the request arrived.
    pub time: SystemTime,
    /// The request method.
    pub method: Method,
    /// The request target (path and query).
    pub uri: Uri,
    /// The query with redacted parameters masked, when there is a query.
    pub query: Option<String>,
    /// The route template (axum's `MatchedPath`), when known.
    pub route: Option<String>,
    /// The HTTP version.
    pub version: Version,
    /// The response status.
    pub status: u16,
    /// Body bytes sent.
    pub bytes: u64,
    /// From arrival to the end of the body (or to the abort).
    pub duration: Duration,
    /// The client's address (through trusted proxies).
    pub client_ip: Option<IpAddr>,
    /// The authenticated user, when a plugin set one.
    pub user: Option<std::sync::Arc<str>>,
    /// The request id.
    pub request_id: Option<HeaderValue>,
    /// `User-Agent`.
    pub user_agent: Option<HeaderValue>,
    /// `Referer`.
    pub referer: Option<HeaderValue>,
    /// Whether the client went away before the body ended.
    pub aborted: bool,
    /// A gRPC call's `grpc-status` (from the trailers, or the headers of a trailers-only
    /// answer).
    pub grpc_status: Option<GrpcCode>,
    /// A gRPC call's `grpc-message`, decoded.
    pub grpc_message: Option<String>,
    /// Request headers a custom template names (redacted ones masked).
    pub request_headers: Vec<(HeaderName, Option<HeaderValue>)>,
    /// Response headers a custom template names (redacted ones masked).
    pub response_headers: Vec<(HeaderName, Option<HeaderValue>)>,
}

/// The mask written instead of a redacted value.
pub const REDACTED: &str = "[redacted]";

/// How each request becomes a line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogFormat {
    /// The Common Log Format: `host ident user [time] "request" status bytes`.
    Common,
    /// The Combined Log Format: common plus `"referer" "user-agent"`.
    Combined,
    /// One JSON object per line.
    Json,
    /// A custom template.
    Custom(Template),
}

impl LogFormat {
    /// Parses `"common"`, `"combined"`, `"json"`, or a custom template.
    ///
    /// # Errors
    /// A malformed template.
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        match s {
            "common" => Ok(LogFormat::Common),
            "combined" => Ok(LogFormat::Combined),
            "json" => Ok(LogFormat::Json),
            t => Template::parse(t).map(LogFormat::Custom),
        }
    }

    pub(crate) fn template(&self) -> Option<&Template> {
        match self {
            LogFormat::Custom(t) => Some(t),
            _ => None,
        }
    }

    /// Writes the line for `r` (without the trailing newline) into `out`. The line is always
    /// valid UTF-8 (text formats are printable ASCII; JSON replaces invalid bytes).
    pub fn write(&self, r: &Record, include_query: bool, out: &mut Vec<u8>) {
        match self {
            LogFormat::Common => write_clf(r, out, false),
            LogFormat::Combined => write_clf(r, out, true),
            LogFormat::Json => write_json(r, include_query, out),
            LogFormat::Custom(t) => write_template(t, r, out),
        }
    }
}

fn target(r: &Record) -> (&str, Option<&str>) {
    let path = r.uri.path();
    let query = r.query.as_deref().or(r.uri.query());
    (path, query)
}

/// The request target as the client sent it (escaped), with `query` (redacted) in place of
/// the URI's: an HTTP/1 absolute-form target keeps its `scheme://authority`, and a CONNECT's
/// authority-form target is its authority. HTTP/2 and HTTP/3 always carry the scheme and
/// authority as pseudo-headers, so there the target is the path, as Apache logs it.
pub(crate) fn write_target(out: &mut Vec<u8>, uri: &Uri, version: Version, query: Option<&str>) {
    let http1 = version <= Version::HTTP_11;
    match (uri.scheme_str(), uri.authority()) {
        (Some(scheme), Some(authority)) if http1 => {
            escape_text(out, scheme.as_bytes());
            put(out, "://");
            escape_text(out, authority.as_str().as_bytes());
        }
        // Authority-form (CONNECT): no path to follow.
        (None, Some(authority)) => {
            return escape_text(out, authority.as_str().as_bytes());
        }
        _ => {}
    }
    escape_text(out, uri.path().as_bytes());
    if let Some(q) = query {
        out.push(b'?');
        escape_text(out, q.as_bytes());
    }
}

fn protocol(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

thread_local! {
    /// The last second formatted on this thread, and its text: a busy server formats each
    /// second once per thread instead of once per line.
    static CLF_TIME: std::cell::RefCell<(u64, String)> = const {
        std::cell::RefCell::new((u64::MAX, String::new()))
    };
}

/// `10/Oct/2000:13:55:36 +0000` (UTC).
fn write_clf_time(out: &mut Vec<u8>, t: SystemTime) {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    CLF_TIME.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.0 != secs {
            // humantime gives `2000-10-10T13:55:36Z`; reorder its fields.
            let s = humantime::format_rfc3339_seconds(t).to_string();
            let b = s.as_bytes();
            cache.1.clear();
            if b.len() < 19 {
                cache.1.push('-');
            } else {
                let month = usize::from((b[5] - b'0') * 10 + (b[6] - b'0')).clamp(1, 12);
                let _ = write!(
                    cache.1,
                    "{}/{}/{}:{} +0000",
                    &s[8..10],
                    MONTHS[month - 1],
                    &s[0..4],
                    &s[11..19]
                );
            }
            cache.0 = secs;
        }
        put(out, &cache.1);
    });
}

/// An IP address, IPv4 without the formatting machinery: its digits into a stack buffer,
/// copied once.
pub(crate) fn write_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            let mut text = [0u8; 15];
            let mut len = 0;
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    text[len] = b'.';
                    len += 1;
                }
                if octet >= 100 {
                    text[len] = b'0' + octet / 100;
                    len += 1;
                }
                if octet >= 10 {
                    text[len] = b'0' + octet / 10 % 10;
                    len += 1;
                }
                text[len] = b'0' + octet % 10;
                len += 1;
            }
            put(out, &text[..len]);
        }
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

/// The request's part of an Apache line, written when the request arrives so that nothing of
/// the request needs to be kept: `ip - ` then ` [time] "request line" ` then, for combined,
/// ` "referer" "user-agent"`. Returns where the user and the status go.
pub(crate) struct ClfParts<'a> {
    pub(crate) client_ip: Option<IpAddr>,
    pub(crate) time: SystemTime,
    pub(crate) method: &'a Method,
    pub(crate) uri: &'a Uri,
    pub(crate) query: Option<&'a str>,
    pub(crate) version: Version,
    pub(crate) referer: Option<&'a HeaderValue>,
    pub(crate) user_agent: Option<&'a HeaderValue>,
}

impl<'a> ClfParts<'a> {
    /// The request's part of a record.
    fn of(r: &'a Record) -> Self {
        let (_, query) = target(r);
        ClfParts {
            client_ip: r.client_ip,
            time: r.time,
            method: &r.method,
            uri: &r.uri,
            query,
            version: r.version,
            referer: r.referer.as_ref(),
            user_agent: r.user_agent.as_ref(),
        }
    }
}

pub(crate) fn clf_request_part(
    p: &ClfParts<'_>,
    combined: bool,
    out: &mut Vec<u8>,
) -> (usize, usize) {
    match p.client_ip {
        Some(ip) => write_ip(out, ip),
        None => out.push(b'-'),
    }
    put(out, " - ");
    let user_at = out.len();
    put(out, " [");
    write_clf_time(out, p.time);
    put(out, "] \"");
    escape_text(out, p.method.as_str().as_bytes());
    out.push(b' ');
    write_target(out, p.uri, p.version, p.query);
    out.push(b' ');
    put(out, protocol(p.version));
    put(out, "\" ");
    let status_at = out.len();
    if combined {
        put(out, " \"");
        opt_text(out, p.referer.map(HeaderValue::as_bytes));
        put(out, "\" \"");
        opt_text(out, p.user_agent.map(HeaderValue::as_bytes));
        out.push(b'"');
    }
    (user_at, status_at)
}

/// Completes a line from [`clf_request_part`] with the user, status and bytes.
pub(crate) fn clf_finish(
    part: &[u8],
    (user_at, status_at): (usize, usize),
    user: Option<&str>,
    status: u16,
    bytes: u64,
    out: &mut Vec<u8>,
) {
    put(out, &part[..user_at]);
    match user {
        Some(u) if !u.is_empty() => escape_bare(out, u.as_bytes()),
        _ => out.push(b'-'),
    }
    put(out, &part[user_at..status_at]);
    let mut n = itoa::Buffer::new();
    put(out, n.format(status));
    out.push(b' ');
    if bytes == 0 {
        out.push(b'-');
    } else {
        put(out, n.format(bytes));
    }
    put(out, &part[status_at..]);
}

/// A whole Apache line from a record, through the same two parts as the split writer (the
/// request's part in a buffer of its own: this path already allocates per line).
fn write_clf(r: &Record, out: &mut Vec<u8>, combined: bool) {
    let mut part = Vec::with_capacity(192);
    let at = clf_request_part(&ClfParts::of(r), combined, &mut part);
    clf_finish(&part, at, r.user.as_deref(), r.status, r.bytes, out);
}

fn json_opt(out: &mut Vec<u8>, key: &str, v: Option<&[u8]>) {
    put(out, ",\"");
    put(out, key);
    put(out, "\":");
    match v {
        Some(v) => write_json_str(out, v),
        None => put(out, "null"),
    }
}

fn write_json(r: &Record, include_query: bool, out: &mut Vec<u8>) {
    put(out, "{\"timestamp\":\"");
    let _ = write!(out, "{}", humantime::format_rfc3339_millis(r.time));
    put(out, "\",\"method\":");
    write_json_str(out, r.method.as_str().as_bytes());
    put(out, ",\"path\":");
    write_json_str(out, r.uri.path().as_bytes());
    json_opt(out, "route", r.route.as_deref().map(str::as_bytes));
    if include_query {
        let (_, q) = target(r);
        json_opt(out, "query", q.map(str::as_bytes));
    }
    let mut n = itoa::Buffer::new();
    put(out, ",\"status\":");
    put(out, n.format(r.status));
    put(out, ",\"bytes\":");
    put(out, n.format(r.bytes));
    if let Some(code) = r.grpc_status {
        put(out, ",\"grpc_status\":");
        put(out, n.format(code.as_u8()));
        json_opt(
            out,
            "grpc_message",
            r.grpc_message.as_deref().map(str::as_bytes),
        );
    }
    put(out, ",\"duration_ms\":");
    let us = r.duration.as_micros();
    let _ = write!(out, "{}.{:03}", us / 1000, us % 1000);
    put(out, ",\"client_ip\":");
    match r.client_ip {
        Some(ip) => {
            out.push(b'"');
            write_ip(out, ip);
            out.push(b'"');
        }
        None => put(out, "null"),
    }
    json_opt(out, "user", r.user.as_deref().map(str::as_bytes));
    json_opt(
        out,
        "request_id",
        r.request_id.as_ref().map(HeaderValue::as_bytes),
    );
    json_opt(
        out,
        "user_agent",
        r.user_agent.as_ref().map(HeaderValue::as_bytes),
    );
    json_opt(
        out,
        "referer",
        r.referer.as_ref().map(HeaderValue::as_bytes),
    );
    put(out, ",\"protocol\":\"");
    put(out, protocol(r.version));
    put(out, "\",\"outcome\":\"");
    put(out, if r.aborted { "aborted" } else { "completed" });
    put(out, "\"}");
}

fn write_template(t: &Template, r: &Record, out: &mut Vec<u8>) {
    let mut n = itoa::Buffer::new();
    for token in &t.tokens {
        match token {
            Token::Literal(s) => put(out, s),
            Token::Timestamp => {
                let _ = write!(out, "{}", humantime::format_rfc3339_millis(r.time));
            }
            Token::TimeClf => write_clf_time(out, r.time),
            Token::Method => escape_text(out, r.method.as_str().as_bytes()),
            Token::Path => escape_text(out, r.uri.path().as_bytes()),
            Token::Query => opt_text(out, target(r).1.map(str::as_bytes)),
            Token::Target => write_target(out, &r.uri, r.version, target(r).1),
            Token::Route => opt_text(out, r.route.as_deref().map(str::as_bytes)),
            Token::Status => put(out, n.format(r.status)),
            Token::Bytes => put(out, n.format(r.bytes)),
            Token::DurationMs => {
                let us = r.duration.as_micros();
                let _ = write!(out, "{}.{:03}", us / 1000, us % 1000);
            }
            Token::DurationUs => put(out, n.format(r.duration.as_micros())),
            Token::ClientIp => match r.client_ip {
                Some(ip) => write_ip(out, ip),
                None => out.push(b'-'),
            },
            Token::User => opt_text(out, r.user.as_deref().map(str::as_bytes)),
            Token::RequestId => opt_text(out, r.request_id.as_ref().map(HeaderValue::as_bytes)),
            Token::UserAgent => opt_text(out, r.user_agent.as_ref().map(HeaderValue::as_bytes)),
            Token::Referer => opt_text(out, r.referer.as_ref().map(HeaderValue::as_bytes)),
            Token::Protocol => put(out, protocol(r.version)),
            Token::Outcome => put(out, if r.aborted { "aborted" } else { "completed" }),
            Token::GrpcStatus => match r.grpc_status {
                Some(code) => put(out, n.format(code.as_u8())),
                None => out.push(b'-'),
            },
            Token::GrpcMessage => {
                opt_text(out, r.grpc_message.as_deref().map(str::as_bytes));
            }
            Token::RequestHeader(i) => opt_text(
                out,
                r.request_headers
                    .get(*i)
                    .and_then(|(_, v)| v.as_ref())
                    .map(HeaderValue::as_bytes),
            ),
            Token::ResponseHeader(i) => opt_text(
                out,
                r.response_headers
                    .get(*i)
                    .and_then(|(_, v)| v.as_ref())
                    .map(HeaderValue::as_bytes),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_addresses_are_written_as_std_displays_them() {
        let mut ips: Vec<IpAddr> = (0..=255u8)
            .flat_map(|n| {
                [
                    [n, 0, 9, 255],
                    [1, n, 10, 99],
                    [100, 200, n, 1],
                    [255, 5, 50, n],
                ]
            })
            .map(IpAddr::from)
            .collect();
        ips.push("2001:db8::1".parse().unwrap());
        for ip in ips {
            let mut out = b"x".to_vec();
            write_ip(&mut out, ip);
            assert_eq!(out, format!("x{ip}").into_bytes());
        }
    }

    fn record(user: Option<&str>, bytes: u64) -> Record {
        Record {
            time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            method: Method::POST,
            uri: "/api/items?page=2".parse().unwrap(),
            query: None,
            route: None,
            version: Version::HTTP_11,
            status: 201,
            bytes,
            duration: Duration::ZERO,
            client_ip: Some(IpAddr::from([192, 0, 2, 7])),
            user: user.map(Into::into),
            request_id: None,
            user_agent: Some(HeaderValue::from_static("curl/8")),
            referer: None,
            aborted: false,
            grpc_status: None,
            grpc_message: None,
            request_headers: Vec::new(),
            response_headers: Vec::new(),
        }
    }

    /// A line written whole from a record and one written in two parts (the request's when it
    /// arrives, the rest at the end) are the same bytes.
    #[test]
    fn whole_and_split_apache_lines_agree() {
        for (user, bytes, combined) in [
            (None, 0, false),
            (Some("ada lovelace"), 512, true),
            (Some(""), 7, true),
        ] {
            let r = record(user, bytes);
            let mut whole = b"prefix ".to_vec();
            write_clf(&r, &mut whole, combined);
            let mut part = Vec::new();
            let at = clf_request_part(&ClfParts::of(&r), combined, &mut part);
            let mut split = b"prefix ".to_vec();
            clf_finish(&part, at, user, r.status, bytes, &mut split);
            assert_eq!(
                String::from_utf8_lossy(&whole),
                String::from_utf8_lossy(&split)
            );
        }
        let mut line = Vec::new();
        write_clf(&record(Some("ada lovelace"), 512), &mut line, true);
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "192.0.2.7 - ada\\x20lovelace [14/Nov/2023:22:13:20 +0000] \
             \"POST /api/items?page=2 HTTP/1.1\" 201 512 \"-\" \"curl/8\""
        );
    }
}
