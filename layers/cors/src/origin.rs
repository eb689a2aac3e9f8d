//! Which origins are allowed: exact origins, `*.example.com` patterns, regexes, a predicate.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use http::{HeaderMap, Method, Uri};
use regex::RegexSet;
use tower_plugins_core::{ConfigError, ProblemKind};

const ORIGIN_HINT: &str = "write an origin as scheme://host[:port] with no path, such as \
     \"https://app.example.com\", a pattern such as \"https://*.example.com\" or \
     \"http://localhost:*\", \"null\", or \"*\" alone";

/// What a predicate from code sees of a request.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct OriginRequest<'a> {
    /// The `Origin` header, as sent.
    pub origin: &'a str,
    /// The request method (`OPTIONS` for a preflight).
    pub method: &'a Method,
    /// The request URI.
    pub uri: &'a Uri,
    /// The request headers.
    pub headers: &'a HeaderMap,
}

pub(crate) type Predicate = Arc<dyn Fn(&OriginRequest<'_>) -> bool + Send + Sync>;

/// An origin pattern: a scheme, a host or `*.` host suffix, and a port rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OriginPattern {
    scheme: Box<str>,
    /// `.example.com` for `*.example.com`; the whole host otherwise.
    host: Box<str>,
    wildcard_host: bool,
    port: PortRule,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortRule {
    /// No port in the pattern: the origin must have none either.
    Default,
    Exact(u16),
    Any,
}

/// The parts of a serialized origin (`scheme://host[:port]`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct OriginParts<'a> {
    pub(crate) scheme: &'a str,
    pub(crate) host: &'a str,
    pub(crate) port: Option<&'a str>,
}

/// A port as a browser serializes it: 0 to 65535 in decimal, without leading zeros.
fn port_number(p: &str) -> Option<u16> {
    let canonical = p.bytes().all(|b| b.is_ascii_digit()) && (p == "0" || !p.starts_with('0'));
    canonical.then(|| p.parse().ok()).flatten()
}

/// Splits a serialized origin. `None` for anything that is not `scheme://host[:port]`.
pub(crate) fn split_origin(s: &str) -> Option<OriginParts<'_>> {
    let (scheme, rest) = s.split_once("://")?;
    if scheme.is_empty()
        || !scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    {
        return None;
    }
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return None;
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (inner, after) = v6.split_once(']')?;
        if inner.is_empty()
            || !inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return None;
        }
        let host = &rest[..inner.len() + 2];
        match after {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?)),
        }
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    if let Some(p) = port {
        if p != "*" && port_number(p).is_none() {
            return None;
        }
    }
    Some(OriginParts { scheme, host, port })
}

fn valid_host(host: &str) -> bool {
    if host.starts_with('[') {
        return true; // checked by split_origin
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

impl OriginPattern {
    /// Parses `https://*.example.com`, `http://localhost:*`, `https://api.example.com:8443`.
    pub(crate) fn parse(s: &str) -> Result<Self, ConfigError> {
        let invalid = |why: &str| {
            ConfigError::new(
                ProblemKind::InvalidValue,
                "",
                format!("invalid origin pattern {s:?}: {why}"),
            )
            .with_hint(ORIGIN_HINT)
        };
        let lower = s.to_ascii_lowercase();
        let Some(parts) = split_origin(&lower) else {
            return Err(invalid("it is not scheme://host[:port]"));
        };
        let (host, wildcard_host) = match parts.host.strip_prefix("*.") {
            Some(rest) => (format!(".{rest}"), true),
            None => (parts.host.to_owned(), false),
        };
        let bare = host.trim_start_matches('.');
        if bare.contains('*') {
            return Err(invalid(
                "`*` may only stand for whole leading labels, as in *.example.com",
            ));
        }
        if !valid_host(bare) {
            return Err(invalid("the host is not a valid name"));
        }
        if wildcard_host && !bare.contains('.') {
            return Err(invalid(
                "a wildcard needs a registrable suffix with a dot (*.example.com, not *.com)",
            ));
        }
        let port = match parts.port {
            None => PortRule::Default,
            Some("*") => PortRule::Any,
            Some(p) => match p.parse::<u16>() {
                Ok(n) => PortRule::Exact(n),
                Err(_) => return Err(invalid("the port is not a number from 0 to 65535")),
            },
        };
        Ok(OriginPattern {
            scheme: parts.scheme.into(),
            host: host.into(),
            wildcard_host,
            port,
        })
    }

    pub(crate) fn is_exact(&self) -> bool {
        !self.wildcard_host && self.port != PortRule::Any
    }

    pub(crate) fn matches(&self, o: &OriginParts<'_>) -> bool {
        if !o.scheme.eq_ignore_ascii_case(&self.scheme) {
            return false;
        }
        // A request's port is a number (`*` is only for patterns).
        let port_ok = match (self.port, o.port.map(port_number)) {
            (PortRule::Default, None) | (PortRule::Any, None | Some(Some(_))) => true,
            (PortRule::Exact(p), Some(Some(q))) => q == p,
            _ => false,
        };
        if !port_ok {
            return false;
        }
        if self.wildcard_host {
            // `.example.com` must be a proper suffix made of whole labels: the byte before it
            // is the end of a non-empty label.
            let h = o.host;
            h.len() > self.host.len()
                && h.is_char_boundary(h.len() - self.host.len())
                && h[h.len() - self.host.len()..].eq_ignore_ascii_case(&self.host)
                && valid_host(&h[..h.len() - self.host.len()])
        } else {
            o.host.eq_ignore_ascii_case(&self.host)
        }
    }
}

impl fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme)?;
        if self.wildcard_host {
            write!(f, "*{}", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        match self.port {
            PortRule::Default => Ok(()),
            PortRule::Exact(p) => write!(f, ":{p}"),
            PortRule::Any => f.write_str(":*"),
        }
    }
}

/// Exact origins (stored lowercase): a short list is scanned, a long one hashed.
#[derive(Debug, Clone, Default)]
pub(crate) struct ExactOrigins {
    small: Vec<Box<str>>,
    large: HashSet<Box<str>>,
}

const SMALL: usize = 8;

impl ExactOrigins {
    fn insert(&mut self, origin: String) {
        let origin: Box<str> = origin.into();
        if self.large.is_empty() && self.small.len() < SMALL {
            if !self.small.contains(&origin) {
                self.small.push(origin);
            }
            return;
        }
        self.large.extend(self.small.drain(..));
        self.large.insert(origin);
    }

    #[cfg(feature = "serde")]
    pub(crate) fn is_empty(&self) -> bool {
        self.small.is_empty() && self.large.is_empty()
    }

    /// Browsers serialize origins in lowercase; others are compared case-insensitively.
    fn contains(&self, origin: &str) -> bool {
        if self.large.is_empty() {
            return self.small.iter().any(|o| o.eq_ignore_ascii_case(origin));
        }
        self.large.contains(origin)
            || (origin.bytes().any(|b| b.is_ascii_uppercase())
                && self.large.contains(origin.to_ascii_lowercase().as_str()))
    }
}

/// The origins a [`CorsLayer`](crate::CorsLayer) allows.
///
/// Exact origins are looked up in a hash set; patterns, regexes and the predicate are tried in
/// that order. `"*"` allows any origin (answered `*` without credentials); the `null` origin
/// (sandboxed iframes, `file:` pages) is allowed only when listed as `"null"`.
#[derive(Clone, Default)]
pub struct AllowOrigin {
    pub(crate) any: bool,
    pub(crate) mirror: bool,
    pub(crate) null: bool,
    pub(crate) exact: ExactOrigins,
    pub(crate) patterns: Vec<OriginPattern>,
    pub(crate) regexes: Option<RegexSet>,
    pub(crate) predicate: Option<Predicate>,
    pub(crate) source: Vec<String>,
}

impl fmt::Debug for AllowOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AllowOrigin")
            .field("origins", &self.source)
            .field("predicate", &self.predicate.is_some())
            .finish()
    }
}

impl AllowOrigin {
    /// Any origin: `Access-Control-Allow-Origin: *` (refused together with credentials).
    pub fn any() -> Self {
        AllowOrigin {
            any: true,
            source: vec!["*".to_owned()],
            ..AllowOrigin::default()
        }
    }

    /// Any origin, echoed back (`Access-Control-Allow-Origin: <the request's origin>`).
    ///
    /// Unlike `*`, this works with credentials, which makes every site able to read
    /// credentialed responses: use it only for deliberately public, per-user APIs.
    pub fn mirror() -> Self {
        AllowOrigin {
            mirror: true,
            source: vec!["mirror".to_owned()],
            ..AllowOrigin::default()
        }
    }

    /// Exact origins and `*.example.com` / `:*` patterns; `"null"` allows the null origin.
    ///
    /// # Errors
    /// Every malformed entry, keyed by its index; `*` inside a list.
    pub fn list<I, S>(origins: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out = AllowOrigin::default();
        let mut problems = tower_plugins_core::Problems::new();
        for (i, o) in origins.into_iter().enumerate() {
            let o = o.as_ref().trim();
            let key = format!("[{i}]");
            out.source.push(o.to_owned());
            if o == "*" {
                problems.push(
                    ProblemKind::InvalidValue,
                    key,
                    "`*` inside a list of origins",
                );
                continue;
            }
            if o.eq_ignore_ascii_case("null") {
                out.null = true;
                continue;
            }
            if let Some(p) = problems.check(&key, OriginPattern::parse(o)) {
                if p.is_exact() {
                    out.exact.insert(p.to_string());
                } else {
                    out.patterns.push(p);
                }
            }
        }
        problems.finish(out)
    }

    /// Adds regexes, each matched against the whole origin (they are anchored for you).
    ///
    /// # Errors
    /// Every regex that does not compile, keyed by its index.
    pub fn regexes<I, S>(mut self, regexes: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut problems = tower_plugins_core::Problems::new();
        let mut anchored = Vec::new();
        for (i, r) in regexes.into_iter().enumerate() {
            let r = r.as_ref();
            let a = format!("^(?:{r})$");
            match regex::Regex::new(&a) {
                Ok(_) => {
                    anchored.push(a);
                    self.source.push(format!("/{r}/"));
                }
                Err(e) => problems.push(
                    ProblemKind::InvalidValue,
                    format!("[{i}]"),
                    format!(
                        "invalid regex {r:?}: {}",
                        e.to_string().lines().last().unwrap_or("").trim()
                    ),
                ),
            }
        }
        problems.finish(())?;
        if !anchored.is_empty() {
            let set = RegexSet::new(&anchored).map_err(|e| {
                ConfigError::new(ProblemKind::InvalidValue, "", format!("invalid regex: {e}"))
            })?;
            self.regexes = Some(set);
        }
        Ok(self)
    }

    /// Adds a predicate from code, asked when no listed origin, pattern or regex matched.
    pub fn predicate<F>(mut self, f: F) -> Self
    where
        F: Fn(&OriginRequest<'_>) -> bool + Send + Sync + 'static,
    {
        self.predicate = Some(Arc::new(f));
        self.source.push("<predicate>".to_owned());
        self
    }

    pub(crate) fn is_any(&self) -> bool {
        self.any
    }

    /// Whether the response depends on the request's origin (so `Vary: Origin` is needed).
    pub(crate) fn varies(&self) -> bool {
        !self.any
    }

    pub(crate) fn allows(&self, req: &OriginRequest<'_>) -> bool {
        let origin = req.origin;
        if self.any || self.mirror {
            return true;
        }
        if origin == "null" {
            return self.null;
        }
        if self.exact.contains(origin) {
            return true;
        }
        if !self.patterns.is_empty() {
            if let Some(parts) = split_origin(origin) {
                if self.patterns.iter().any(|p| p.matches(&parts)) {
                    return true;
                }
            }
        }
        if let Some(set) = &self.regexes {
            if set.is_match(origin) {
                return true;
            }
        }
        match &self.predicate {
            Some(f) => f(req),
            None => false,
        }
    }

    /// Nothing is allowed (the default of a new layer). Asked by the config only.
    #[cfg(feature = "serde")]
    pub(crate) fn is_empty(&self) -> bool {
        !self.any
            && !self.mirror
            && !self.null
            && self.exact.is_empty()
            && self.patterns.is_empty()
            && self.regexes.is_none()
            && self.predicate.is_none()
    }

    pub(crate) fn describe(&self) -> String {
        if self.source.is_empty() {
            "no origin".to_owned()
        } else {
            self.source.join(" ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `list` allows a GET from `origin`.
    fn allows(list: &AllowOrigin, origin: &str) -> bool {
        list.allows(&OriginRequest {
            origin,
            method: &Method::GET,
            uri: &Uri::from_static("/"),
            headers: &HeaderMap::new(),
        })
    }

    fn req(origin: &str) -> bool {
        let list = AllowOrigin::list([
            "https://app.example.com",
            "https://*.example.org",
            "http://localhost:*",
            "https://api.example.net:8443",
        ])
        .unwrap();
        allows(&list, origin)
    }

    #[test]
    fn exact_and_case() {
        assert!(req("https://app.example.com"));
        assert!(req("https://APP.example.com"));
        assert!(!req("http://app.example.com"));
        assert!(!req("https://app.example.com:443"));
        assert!(!req("https://app.example.com/"));
    }

    #[test]
    fn long_lists_are_hashed_and_still_case_insensitive() {
        let many: Vec<String> = (0..20)
            .map(|i| format!("https://app{i}.example.com"))
            .collect();
        let l = AllowOrigin::list(&many).unwrap();
        let ok = |o: &str| allows(&l, o);
        assert!(ok("https://app0.example.com"));
        assert!(ok("https://APP19.example.com"));
        assert!(!ok("https://app20.example.com"));
    }

    #[test]
    fn wildcard_subdomains_match_by_labels() {
        assert!(req("https://a.example.org"));
        assert!(req("https://a.b.example.org"));
        assert!(!req("https://example.org"));
        assert!(!req("https://evil-example.org"));
        assert!(!req("https://example.org.evil.net"));
        assert!(!req("https://a..example.org"));
        assert!(!req("http://a.example.org"));
        assert!(!req("https://a.example.org:8443"));
    }

    #[test]
    fn ports() {
        assert!(req("http://localhost:3000"));
        assert!(req("http://localhost"));
        assert!(!req("http://localhost.evil.com:3000"));
        assert!(req("https://api.example.net:8443"));
        assert!(!req("https://api.example.net"));
        assert!(!req("https://api.example.net:8444"));
        // Ports that cannot exist, or that no browser would write, match no port rule.
        let any = AllowOrigin::list(["http://localhost:*"]).unwrap();
        for bad in ["99999", "65536", "080", "*", "", "-1", "1e3"] {
            assert!(!allows(&any, &format!("http://localhost:{bad}")), "{bad}");
        }
        assert!(allows(&any, "http://localhost:65535") && allows(&any, "http://localhost:0"));
        assert!(AllowOrigin::list(["http://localhost:65536"]).is_err());
    }

    #[test]
    fn null_and_garbage_are_not_allowed_unless_listed() {
        assert!(!req("null"));
        assert!(!req(""));
        assert!(!req("https://"));
        assert!(!req("javascript:alert(1)"));
        let l = AllowOrigin::list(["null"]).unwrap();
        assert!(allows(&l, "null"));
    }

    #[test]
    fn regexes_are_anchored() {
        let l = AllowOrigin::default()
            .regexes([r"https://pr-\d+\.preview\.example\.com"])
            .unwrap();
        let ok = |o: &str| allows(&l, o);
        assert!(ok("https://pr-42.preview.example.com"));
        assert!(!ok("https://pr-42.preview.example.com.evil.net"));
        assert!(!ok("https://evil.net/https://pr-42.preview.example.com"));
        let e = AllowOrigin::default()
            .regexes(["ok", "(unclosed"])
            .unwrap_err();
        assert_eq!(e.problems()[0].location.key, "[1]");
    }

    #[test]
    fn invalid_entries() {
        let e = AllowOrigin::list([
            "https://ok.example.com",
            "*",
            "example.com",
            "https://example.com/",
            "https://*.com",
            "https://a*.example.com",
            "https://x.example.com:99999",
        ])
        .unwrap_err();
        let keys = e.keys();
        assert_eq!(keys, ["[1]", "[2]", "[3]", "[4]", "[5]", "[6]"]);
    }

    #[test]
    fn split() {
        assert_eq!(
            split_origin("http://[::1]:8080"),
            Some(OriginParts {
                scheme: "http",
                host: "[::1]",
                port: Some("8080")
            })
        );
        assert_eq!(split_origin("http://[::1]x"), None);
        assert_eq!(split_origin("http://a:b"), None);
        assert_eq!(split_origin("1http://a"), None);
    }
}
