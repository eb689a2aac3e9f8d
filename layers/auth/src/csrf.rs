//! Cross-site request forgery: the Fetch-Metadata and `Origin` check of tower-http 0.7's
//! `CsrfLayer` (and Go's `CrossOriginProtection`), on unsafe requests that carry our cookie
//! and on every login and logout post.

use std::sync::Arc;

use http::{Method, Request};
use tower_plugins_core::ClientIpResolver;

/// Which origins may send unsafe requests besides the request's own.
#[derive(Debug, Clone, Default)]
pub(crate) struct Csrf {
    pub(crate) on: bool,
    /// Serialized origins (`https://app.example.com`), lowercase.
    pub(crate) trusted: Vec<Box<str>>,
}

impl Csrf {
    /// Whether `req` may go on: a safe method; `Sec-Fetch-Site: same-origin` or `none` (any
    /// other value is refused); else an `Origin` that is trusted or the request's own (any
    /// other is refused); else no browser sent it (neither header), which goes on. The
    /// request's own origin is its `Host`, or `X-Forwarded-Host` from a trusted proxy.
    pub(crate) fn allows<B>(&self, req: &Request<B>, client_ip: &Arc<ClientIpResolver>) -> bool {
        if !self.on || matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
            return true;
        }
        let h = req.headers();
        if let Some(site) = h.get("sec-fetch-site") {
            return matches!(site.as_bytes(), b"same-origin" | b"none");
        }
        let Some(origin) = h.get(http::header::ORIGIN).and_then(|o| o.to_str().ok()) else {
            return true;
        };
        if self.trusted.iter().any(|t| t.eq_ignore_ascii_case(origin)) {
            return true;
        }
        let Some(host) = own_host(req, client_ip) else {
            return false;
        };
        origin
            .split_once("://")
            .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host))
    }
}

fn own_host<'a, B>(req: &'a Request<B>, client_ip: &ClientIpResolver) -> Option<&'a str> {
    let h = req.headers();
    let from_proxy = ClientIpResolver::peer_addr(req).is_some_and(|p| client_ip.is_trusted(p.ip()));
    let forwarded = from_proxy
        .then(|| h.get("x-forwarded-host")?.to_str().ok())
        .flatten()
        .and_then(|v| v.split(',').next_back())
        .map(str::trim);
    forwarded
        .or_else(|| h.get(http::header::HOST)?.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn req(method: Method, headers: &[(&str, &str)], peer: [u8; 4]) -> Request<()> {
        let mut b = Request::builder().method(method).uri("/x");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let mut r = b.body(()).unwrap();
        r.extensions_mut().insert(SocketAddr::from((peer, 1000)));
        r
    }

    #[test]
    fn the_csrf_matrix() {
        let proxies = Arc::new(ClientIpResolver::new().trust(["10.0.0.1"]).unwrap());
        let csrf = Csrf {
            on: true,
            trusted: vec!["https://app.example.com".into()],
        };
        let me = [127, 0, 0, 1];
        let proxy = [10, 0, 0, 1];
        let cases: &[(Method, &[(&str, &str)], [u8; 4], bool)] = &[
            (Method::GET, &[("sec-fetch-site", "cross-site")], me, true),
            (Method::POST, &[("sec-fetch-site", "same-origin")], me, true),
            (Method::POST, &[("sec-fetch-site", "none")], me, true),
            (Method::POST, &[("sec-fetch-site", "same-site")], me, false),
            (
                Method::POST,
                &[
                    ("sec-fetch-site", "cross-site"),
                    ("origin", "https://app.example.com"),
                ],
                me,
                false,
            ),
            (
                Method::POST,
                &[
                    ("origin", "https://app.example.com"),
                    ("host", "api.example.com"),
                ],
                me,
                true,
            ),
            (
                Method::POST,
                &[
                    ("origin", "http://localhost:3000"),
                    ("host", "localhost:3000"),
                ],
                me,
                true,
            ),
            (
                Method::POST,
                &[
                    ("origin", "http://evil.example"),
                    ("host", "localhost:3000"),
                ],
                me,
                false,
            ),
            (
                Method::POST,
                &[("origin", "null"), ("host", "localhost:3000")],
                me,
                false,
            ),
            (Method::DELETE, &[], me, true),
            // A forwarded host counts from a trusted proxy only.
            (
                Method::POST,
                &[
                    ("origin", "https://shop.example"),
                    ("host", "internal:8080"),
                    ("x-forwarded-host", "shop.example"),
                ],
                proxy,
                true,
            ),
            (
                Method::POST,
                &[
                    ("origin", "https://evil.example"),
                    ("host", "internal:8080"),
                    ("x-forwarded-host", "evil.example"),
                ],
                me,
                false,
            ),
        ];
        for (m, h, peer, allowed) in cases {
            assert_eq!(
                csrf.allows(&req(m.clone(), h, *peer), &proxies),
                *allowed,
                "{m} {h:?}"
            );
        }
    }
}
