//! The session cookie: finding it in every `Cookie` header, and writing `Set-Cookie`.
//!
//! Only one cookie name is ever looked for and only two values are ever written, so this is
//! a scan and a format of a few lines rather than a cookie jar per request.

use std::time::Duration;

use http::HeaderValue;
use http::header::{COOKIE, HeaderMap};
use tower_plugins_core::{ConfigError, ProblemKind, Problems};

/// The longest cookie value looked at: a signed id is 47 bytes; anything much longer is not
/// ours and is skipped without decoding.
const MAX_VALUE: usize = 256;

/// `SameSite`, as a browser reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SameSite {
    /// Sent on same-site requests only.
    Strict,
    /// Also on top-level navigations from other sites (the default).
    Lax,
    /// On every request (needs `Secure`).
    None,
}

impl SameSite {
    fn as_str(self) -> &'static str {
        match self {
            SameSite::Strict => "Strict",
            SameSite::Lax => "Lax",
            SameSite::None => "None",
        }
    }
}

/// How the session cookie is written.
#[derive(Debug, Clone)]
pub struct CookieSettings {
    pub(crate) name: Box<str>,
    pub(crate) secure: bool,
    pub(crate) same_site: SameSite,
    pub(crate) domain: Option<Box<str>>,
    pub(crate) path: Box<str>,
    /// `Max-Age` of a persistent ("remember me") cookie; a session cookie when `None`.
    pub(crate) max_age: Option<Duration>,
}

impl Default for CookieSettings {
    /// `__Host-id`, `Secure`, `HttpOnly`, `SameSite=Lax`, `Path=/`, no `Domain`, a session
    /// cookie (gone when the browser closes; the session's end is kept on the server).
    fn default() -> Self {
        CookieSettings {
            name: "__Host-id".into(),
            secure: true,
            same_site: SameSite::Lax,
            domain: None,
            path: "/".into(),
            max_age: None,
        }
    }
}

impl CookieSettings {
    /// Sets the cookie's name, `Secure`, `SameSite`, `Domain` and `Path`.
    ///
    /// # Errors
    /// Every rule a browser would otherwise enforce by silently dropping the cookie: a name
    /// that is not a token; `__Host-` without `Secure`, with a domain, or with a path other
    /// than `/`; `__Secure-` without `Secure`; `SameSite=None` without `Secure`; a path that
    /// does not start with `/`.
    pub fn new(
        name: &str,
        secure: bool,
        same_site: SameSite,
        domain: Option<&str>,
        path: &str,
    ) -> Result<Self, ConfigError> {
        let mut p = Problems::new();
        let mut bad = |key: &str, why: &str| p.push(ProblemKind::InvalidValue, key, why);
        if name.is_empty() || !name.bytes().all(tower_plugins_core::is_tchar) {
            bad("name", "a cookie name is a non-empty HTTP token");
        }
        if name.starts_with("__Host-") {
            if !secure {
                bad(
                    "secure",
                    "a `__Host-` cookie must be `Secure`, or browsers drop it",
                );
            }
            if domain.is_some() {
                bad(
                    "domain",
                    "a `__Host-` cookie has no `Domain`, or browsers drop it",
                );
            }
            if path != "/" {
                bad(
                    "path",
                    "a `__Host-` cookie has `Path=/`, or browsers drop it",
                );
            }
        }
        if name.starts_with("__Secure-") && !secure {
            bad(
                "secure",
                "a `__Secure-` cookie must be `Secure`, or browsers drop it",
            );
        }
        if same_site == SameSite::None && !secure {
            bad(
                "same_site",
                "`SameSite=None` needs `Secure`, or browsers drop the cookie",
            );
        }
        let attr_ok = |v: &str| v.bytes().all(|b| b.is_ascii_graphic() && b != b';');
        if !path.starts_with('/') || !attr_ok(path) {
            bad(
                "path",
                "a cookie path starts with `/` and has no spaces or `;`",
            );
        }
        if domain.is_some_and(|d| d.is_empty() || !attr_ok(d)) {
            bad("domain", "a cookie domain is a host name");
        }
        p.finish(CookieSettings {
            name: name.into(),
            secure,
            same_site,
            domain: domain.map(Into::into),
            path: path.into(),
            max_age: None,
        })
    }

    /// The cookie's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every value the request sends under the session cookie's name, across every `Cookie`
    /// header (HTTP/2 sends one per cookie), skipping values too long to be ours.
    pub(crate) fn values<'a>(&'a self, headers: &'a HeaderMap) -> impl Iterator<Item = &'a [u8]> {
        let name = self.name.as_bytes();
        headers
            .get_all(COOKIE)
            .iter()
            .flat_map(|v| v.as_bytes().split(|b| *b == b';'))
            .filter_map(move |pair| {
                let pair = trim(pair);
                let value = pair.strip_prefix(name)?.strip_prefix(b"=")?;
                let value = trim(value);
                let value = value
                    .strip_prefix(b"\"")
                    .and_then(|v| v.strip_suffix(b"\""))
                    .unwrap_or(value);
                (value.len() <= MAX_VALUE).then_some(value)
            })
    }

    /// `Set-Cookie` carrying `value`.
    pub(crate) fn set(&self, value: &str) -> HeaderValue {
        self.header(value, self.max_age)
    }

    /// `Set-Cookie` removing the cookie (same attributes, so that a `__Host-` removal is not
    /// itself dropped).
    pub(crate) fn removal(&self) -> HeaderValue {
        self.header("", Some(Duration::ZERO))
    }

    fn header(&self, value: &str, max_age: Option<Duration>) -> HeaderValue {
        let mut s = String::with_capacity(128);
        s.push_str(&self.name);
        s.push('=');
        s.push_str(value);
        s.push_str("; Path=");
        s.push_str(&self.path);
        if let Some(d) = &self.domain {
            s.push_str("; Domain=");
            s.push_str(d);
        }
        if let Some(age) = max_age {
            s.push_str("; Max-Age=");
            s.push_str(itoa::Buffer::new().format(age.as_secs()));
        }
        s.push_str("; HttpOnly; SameSite=");
        s.push_str(self.same_site.as_str());
        if self.secure {
            s.push_str("; Secure");
        }
        let mut v = HeaderValue::try_from(s).expect("every part was checked to be visible ASCII");
        v.set_sensitive(true);
        v
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !matches!(c, b' ' | b'\t'))
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !matches!(c, b' ' | b'\t'))
        .map_or(start, |e| e + 1);
    &b[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cookie_header_is_read_and_other_names_are_not() {
        let c = CookieSettings::default();
        let mut h = HeaderMap::new();
        h.append(
            COOKIE,
            "a=1; __Host-idx=2; __Host-id=first".parse().unwrap(),
        );
        h.append(COOKIE, "__Host-id=\"second\"".parse().unwrap());
        h.append(
            COOKIE,
            format!("__Host-id={}", "x".repeat(300)).parse().unwrap(),
        );
        h.append(COOKIE, "garbage;;; =;__Host-id".parse().unwrap());
        let got: Vec<&[u8]> = c.values(&h).collect();
        assert_eq!(got, [b"first".as_slice(), b"second"]);
    }

    #[test]
    fn set_and_removal_keep_the_attributes() {
        let c = CookieSettings::default();
        assert_eq!(
            c.set("v").to_str().unwrap(),
            "__Host-id=v; Path=/; HttpOnly; SameSite=Lax; Secure"
        );
        assert_eq!(
            c.removal().to_str().unwrap(),
            "__Host-id=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax; Secure"
        );
        assert!(c.set("v").is_sensitive());
    }

    #[test]
    fn browser_rules_are_checked_at_load() {
        let e = CookieSettings::new(
            "__Host-id",
            false,
            SameSite::None,
            Some("example.com"),
            "/app",
        )
        .unwrap_err();
        assert_eq!(e.keys(), ["secure", "domain", "path", "same_site"]);
        assert!(CookieSettings::new("sid", false, SameSite::Lax, None, "/").is_ok());
        assert!(CookieSettings::new("bad name", true, SameSite::Lax, None, "/").is_err());
    }
}
