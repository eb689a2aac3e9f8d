//! Custom log formats: a template of literal text and `{token}`s, parsed once.

use http::HeaderName;
use tower_plugins_core::{ConfigError, ProblemKind};

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
    GrpcStatus,
    GrpcMessage,
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
    "grpc_status",
    "grpc_message",
    "req.<header>",
    "res.<header>",
];

/// A parsed custom format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub(crate) tokens: Vec<Token>,
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
                "grpc_status" => Token::GrpcStatus,
                "grpc_message" => Token::GrpcMessage,
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
