//! Log line formats: `common`, `combined`, `json` and custom templates, with escaping.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use http::{HeaderName, HeaderValue, Method, Uri, Version};
use tower_plugins_core::{ConfigError, ProblemKind, write_json_str};

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
    /// Request headers a custom template names (redacted ones masked).
    pub request_headers: Vec<(HeaderName, Option<HeaderValue>)>,
    /// Response headers a custom template names (redacted ones masked).
    pub response_headers: Vec<(HeaderName, Option<HeaderValue>)>,
}

/// The mask written instead of a redacted value.
pub const REDACTED: &str = "[redacted]";

/// A named token of a custom format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    Literal(String),
    Timestamp,
    TimeClf,
    Method,
    Path,
    Query,
    Target,
    Route,
    Status,
    Bytes,
    DurationMs,
    DurationUs,
    ClientIp,
    User,
    RequestId,
    UserAgent,
    Referer,
    Protocol,
    Outcome,
    RequestHeader(usize),
    ResponseHeader(usize),
}

/// Every token name, as the docs table lists it.
pub(crate) const TOKENS: &[&str] = &[
    "timestamp",
    "time_clf",
    "method",
    "path",
    "query",
    "target",
    "route",
    "status",
    "bytes",
    "duration_ms",
    "duration_us",
    "client_ip",
    "user",
    "request_id",
    "user_agent",
    "referer",
    "protocol",
    "outcome",
    "req.<header>",
    "res.<header>",
];

/// A parsed custom format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    tokens: Vec<Token>,
    pub(crate) request_headers: Vec<HeaderName>,
    pub(crate) response_headers: Vec<HeaderName>,
}

impl Template {
    /// Parses a format such as `{client_ip} "{method} {path}" {status} {req.x-tenant}`.
    /// `{{` and `}}` are literal braces.
    ///
    /// # Errors
    /// An unknown token (with the nearest known one), an unclosed `{`, a lone `}`, or a header
    /// token that does not name a valid header.
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        let mut t = Template {
            tokens: Vec::new(),
            request_headers: Vec::new(),
            response_headers: Vec::new(),
        };
        let mut lit = String::new();
        let mut rest = s;
        while let Some(c) = rest.chars().next() {
            if let Some(after) = rest.strip_prefix("{{") {
                lit.push('{');
                rest = after;
                continue;
            }
            if let Some(after) = rest.strip_prefix("}}") {
                lit.push('}');
                rest = after;
                continue;
            }
            if c == '}' {
                return Err(bad(s, "a lone `}` (write `}}` for a literal brace)"));
            }
            if c != '{' {
                lit.push(c);
                rest = &rest[c.len_utf8()..];
                continue;
            }
            let Some(end) = rest.find('}') else {
                return Err(bad(s, "an unclosed `{`"));
            };
            let name = rest[1..end].trim();
            rest = &rest[end + 1..];
            if !lit.is_empty() {
                t.tokens.push(Token::Literal(std::mem::take(&mut lit)));
            }
            let token = match name {
                "timestamp" => Token::Timestamp,
                "time_clf" => Token::TimeClf,
                "method" => Token::Method,
                "path" => Token::Path,
                "query" => Token::Query,
                "target" => Token::Target,
                "route" => Token::Route,
                "status" => Token::Status,
                "bytes" => Token::Bytes,
                "duration_ms" => Token::DurationMs,
                "duration_us" => Token::DurationUs,
                "client_ip" => Token::ClientIp,
                "user" => Token::User,
                "request_id" => Token::RequestId,
                "user_agent" => Token::UserAgent,
                "referer" => Token::Referer,
                "protocol" => Token::Protocol,
                "outcome" => Token::Outcome,
                other => {
                    if let Some(h) = other.strip_prefix("req.") {
                        let h = header(s, h)?;
                        t.request_headers.push(h);
                        Token::RequestHeader(t.request_headers.len() - 1)
                    } else if let Some(h) = other.strip_prefix("res.") {
                        let h = header(s, h)?;
                        t.response_headers.push(h);
                        Token::ResponseHeader(t.response_headers.len() - 1)
                    } else {
                        let mut e = format!("unknown token `{{{other}}}`");
                        if let Some(near) = nearest(other) {
                            e.push_str(&format!("; did you mean `{{{near}}}`?"));
                        }
                        return Err(bad(s, &e));
                    }
                }
            };
            t.tokens.push(token);
        }
        if !lit.is_empty() {
            t.tokens.push(Token::Literal(lit));
        }
        Ok(t)
    }
}

fn nearest(word: &str) -> Option<&'static str> {
    tower_plugins_core::nearest(word, TOKENS.iter().copied().filter(|t| !t.contains('<')))
}

fn header(format: &str, name: &str) -> Result<HeaderName, ConfigError> {
    tower_plugins_core::header_name(name)
        .map_err(|_| bad(format, &format!("`{name}` is not a valid header name")))
}

fn bad(format: &str, why: &str) -> ConfigError {
    ConfigError::new(
        ProblemKind::InvalidValue,
        "",
        format!("invalid log format {format:?}: {why}"),
    )
    .with_hint("tokens are written {name}: see the token table in the request-log README")
}

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

/// Appends text or bytes.
#[inline]
fn put(out: &mut Vec<u8>, s: impl AsRef<[u8]>) {
    out.extend_from_slice(s.as_ref());
}

/// Bytes written as they are in a text log: printable ASCII except `"` and `\`.
#[allow(clippy::manual_range_contains)]
const SAFE: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0x20;
    while b < 0x7f {
        t[b] = b != b'"' as usize && b != b'\\' as usize;
        b += 1;
    }
    t
};

/// Escapes `bytes` for a text log the way nginx does: `"`, `\`, control characters and
/// non-ASCII bytes become `\xHH`, so no value can end a field or forge a line. Runs of safe
/// bytes are copied at once.
pub(crate) fn escape_text(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut start = 0;
    let escape_at = |out: &mut Vec<u8>, start: &mut usize, j: usize| {
        let b = bytes[j];
        out.extend_from_slice(&bytes[*start..j]);
        out.extend_from_slice(&[
            b'\\',
            b'x',
            HEX[usize::from(b >> 4)],
            HEX[usize::from(b & 0xf)],
        ]);
        *start = j + 1;
    };
    // Eight bytes at a time: most values need no escaping at all.
    let mut chunks = bytes.chunks_exact(8);
    let mut i = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        if !chunk_safe(u64::from_le_bytes(word)) {
            for j in i..i + 8 {
                if !SAFE[usize::from(bytes[j])] {
                    escape_at(out, &mut start, j);
                }
            }
        }
        i += 8;
    }
    for j in i..bytes.len() {
        if !SAFE[usize::from(bytes[j])] {
            escape_at(out, &mut start, j);
        }
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Whether all eight bytes of `x` are [`SAFE`] (SWAR: no byte below 0x20, above 0x7e, or
/// equal to `"` or `\`).
#[inline]
fn chunk_safe(x: u64) -> bool {
    const L: u64 = 0x0101_0101_0101_0101;
    const H: u64 = 0x8080_8080_8080_8080;
    let below = x.wrapping_sub(L * 0x20) & !x & H;
    // `x + L * (127 - 0x7e)`: a byte above 0x7e carries into its high bit.
    let above = (x.wrapping_add(L) | x) & H;
    let q = x ^ (L * u64::from(b'"'));
    let b = x ^ (L * u64::from(b'\\'));
    let quote = q.wrapping_sub(L) & !q & H;
    let backslash = b.wrapping_sub(L) & !b & H;
    (below | above | quote | backslash) == 0
}

/// Like [`escape_text`], for fields that are not quoted: spaces are escaped too.
fn escape_bare(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        if b == b' ' {
            put(out, b"\\x20");
        } else {
            escape_text(out, &[b]);
        }
    }
}

fn opt_text(out: &mut Vec<u8>, v: Option<&[u8]>) {
    match v {
        Some(v) if !v.is_empty() => escape_text(out, v),
        _ => out.push(b'-'),
    }
}

fn target(r: &Record) -> (&str, Option<&str>) {
    let path = r.uri.path();
    let query = r.query.as_deref().or(r.uri.query());
    (path, query)
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

/// An IP address, IPv4 without the formatting machinery.
fn write_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            let mut n = itoa::Buffer::new();
            for (i, octet) in v4.octets().iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                put(out, n.format(*octet));
            }
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
    pub(crate) path: &'a str,
    pub(crate) query: Option<&'a str>,
    pub(crate) version: Version,
    pub(crate) referer: Option<&'a HeaderValue>,
    pub(crate) user_agent: Option<&'a HeaderValue>,
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
    escape_text(out, p.path.as_bytes());
    if let Some(q) = p.query {
        out.push(b'?');
        escape_text(out, q.as_bytes());
    }
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

fn write_clf(r: &Record, out: &mut Vec<u8>, combined: bool) {
    match r.client_ip {
        Some(ip) => write_ip(out, ip),
        None => out.push(b'-'),
    }
    put(out, " - ");
    match &r.user {
        Some(u) if !u.is_empty() => escape_bare(out, u.as_bytes()),
        _ => out.push(b'-'),
    }
    put(out, " [");
    write_clf_time(out, r.time);
    put(out, "] \"");
    escape_text(out, r.method.as_str().as_bytes());
    out.push(b' ');
    let (path, query) = target(r);
    escape_text(out, path.as_bytes());
    if let Some(q) = query {
        out.push(b'?');
        escape_text(out, q.as_bytes());
    }
    out.push(b' ');
    put(out, protocol(r.version));
    put(out, "\" ");
    let mut n = itoa::Buffer::new();
    put(out, n.format(r.status));
    out.push(b' ');
    if r.bytes == 0 {
        out.push(b'-');
    } else {
        put(out, n.format(r.bytes));
    }
    if combined {
        put(out, " \"");
        opt_text(out, r.referer.as_ref().map(HeaderValue::as_bytes));
        put(out, "\" \"");
        opt_text(out, r.user_agent.as_ref().map(HeaderValue::as_bytes));
        out.push(b'"');
    }
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
            Token::Target => {
                let (path, query) = target(r);
                escape_text(out, path.as_bytes());
                if let Some(q) = query {
                    out.push(b'?');
                    escape_text(out, q.as_bytes());
                }
            }
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
mod escape_tests {
    use super::*;

    fn reference(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for &b in bytes {
            if SAFE[usize::from(b)] {
                out.push(b);
            } else {
                out.extend_from_slice(format!("\\x{b:02X}").as_bytes());
            }
        }
        out
    }

    #[test]
    fn word_at_a_time_escaping_matches_byte_at_a_time_for_every_byte() {
        for b in 0..=255u8 {
            for len in [1, 7, 8, 9, 17] {
                for pos in 0..len {
                    let mut v = vec![b'a'; len];
                    v[pos] = b;
                    let mut out = Vec::new();
                    escape_text(&mut out, &v);
                    assert_eq!(out, reference(&v), "byte {b:#04x} at {pos} of {len}");
                }
            }
        }
    }
}
