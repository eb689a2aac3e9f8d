//! `login_required` by path rule: which requests need a user (or a role), and how a request
//! without one is answered.

use std::sync::Arc;

use http::{HeaderMap, Method, Request};
use tower_plugins_core::PathSet;

/// How a request that needs a user, and has none, is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Unauthenticated {
    /// A browser navigation is redirected to the login page; anything else gets 401.
    #[default]
    Auto,
    /// Always a 303 to the login page.
    Redirect,
    /// Always 401 `application/problem+json` with `WWW-Authenticate`.
    Unauthorized,
}

/// One rule: requests to these paths (and methods) need a logged-in user, and the role when
/// one is given.
///
/// ```
/// use tower_plugins_auth::{Rule, Unauthenticated};
/// use tower_plugins_core::PathSet;
/// let api = Rule::new(PathSet::new(["/api/**"])?).unauthenticated(Unauthenticated::Unauthorized);
/// let admin = Rule::new(PathSet::new(["/admin/**"])?).role("admin");
/// # Ok::<(), tower_plugins_core::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Rule {
    pub(crate) paths: PathSet,
    pub(crate) methods: Vec<Method>,
    pub(crate) role: Option<Arc<str>>,
    pub(crate) unauthenticated: Unauthenticated,
}

impl Rule {
    /// Requests to `paths`, any method, need a user.
    pub fn new(paths: PathSet) -> Self {
        Rule {
            paths,
            methods: Vec::new(),
            role: None,
            unauthenticated: Unauthenticated::Auto,
        }
    }

    /// Only these methods (default: all).
    pub fn methods(mut self, methods: impl IntoIterator<Item = Method>) -> Self {
        self.methods = methods.into_iter().collect();
        self
    }

    /// The user must also have `role`; without it the answer is 403, never a redirect.
    pub fn role(mut self, role: impl Into<Arc<str>>) -> Self {
        self.role = Some(role.into());
        self
    }

    /// How a request without a user is answered (default: [`Unauthenticated::Auto`]).
    pub fn unauthenticated(mut self, how: Unauthenticated) -> Self {
        self.unauthenticated = how;
        self
    }

    fn applies<B>(&self, req: &Request<B>) -> bool {
        (self.methods.is_empty() || self.methods.contains(req.method()))
            && self.paths.matches(req.uri().path())
    }
}

/// What the rules say of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Pass,
    Redirect,
    Unauthorized,
    Forbidden,
}

/// The rules in order, and the paths none of them covers.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rules {
    pub(crate) public: PathSet,
    pub(crate) rules: Vec<Rule>,
}

impl Rules {
    /// The first rule that applies (public paths beat every rule), or `None`.
    pub(crate) fn matching<B>(&self, req: &Request<B>) -> Option<&Rule> {
        if self.rules.is_empty() || self.public.matches(req.uri().path()) {
            return None;
        }
        self.rules.iter().find(|r| r.applies(req))
    }

    /// The verdict for `req` given the user's roles (`None`: anonymous).
    pub(crate) fn verdict<B>(&self, req: &Request<B>, roles: Option<&[Arc<str>]>) -> Verdict {
        let Some(rule) = self.matching(req) else {
            return Verdict::Pass;
        };
        match (roles, &rule.role) {
            (Some(_), None) => Verdict::Pass,
            (Some(have), Some(need)) if have.contains(need) => Verdict::Pass,
            (Some(_), Some(_)) => Verdict::Forbidden,
            (None, _) => match rule.unauthenticated {
                Unauthenticated::Redirect => Verdict::Redirect,
                Unauthenticated::Unauthorized => Verdict::Unauthorized,
                Unauthenticated::Auto if is_navigation(req.method(), req.headers()) => {
                    Verdict::Redirect
                }
                Unauthenticated::Auto => Verdict::Unauthorized,
            },
        }
    }
}

/// A browser loading a page: GET or HEAD, `Sec-Fetch-Mode: navigate` (or, from a browser
/// without Fetch Metadata, an `Accept` naming `text/html`), and no `X-Requested-With`.
fn is_navigation(method: &Method, h: &HeaderMap) -> bool {
    if !matches!(*method, Method::GET | Method::HEAD) || h.contains_key("x-requested-with") {
        return false;
    }
    match h.get("sec-fetch-mode") {
        Some(mode) => mode == "navigate",
        None => h.get(http::header::ACCEPT).is_some_and(|a| {
            a.as_bytes()
                .windows(9)
                .any(|w| w.eq_ignore_ascii_case(b"text/html"))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: Method, path: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    fn rules() -> Rules {
        Rules {
            public: PathSet::new(["/account/help"]).unwrap(),
            rules: vec![
                Rule::new(PathSet::new(["/admin/**"]).unwrap()).role("admin"),
                Rule::new(PathSet::new(["/account/**"]).unwrap()),
                Rule::new(PathSet::new(["/api/**"]).unwrap())
                    .unauthenticated(Unauthenticated::Unauthorized),
            ],
        }
    }

    #[test]
    fn the_auto_matrix() {
        let r = rules();
        let nav = [("sec-fetch-mode", "navigate"), ("accept", "text/html")];
        let cases: &[(Method, &[(&str, &str)], Verdict)] = &[
            (Method::GET, &nav, Verdict::Redirect),
            (
                Method::HEAD,
                &[("sec-fetch-mode", "navigate")],
                Verdict::Redirect,
            ),
            (
                Method::GET,
                &[("sec-fetch-mode", "cors"), ("accept", "text/html")],
                Verdict::Unauthorized,
            ),
            (
                Method::GET,
                &[("accept", "text/html,application/xhtml+xml")],
                Verdict::Redirect,
            ),
            (
                Method::GET,
                &[("accept", "application/json")],
                Verdict::Unauthorized,
            ),
            (Method::GET, &[], Verdict::Unauthorized),
            (
                Method::GET,
                &[
                    ("sec-fetch-mode", "navigate"),
                    ("x-requested-with", "XMLHttpRequest"),
                ],
                Verdict::Unauthorized,
            ),
            (Method::POST, &nav, Verdict::Unauthorized),
        ];
        for (m, h, want) in cases {
            assert_eq!(
                r.verdict(&req(m.clone(), "/account", h), None),
                *want,
                "{m} {h:?}"
            );
        }
    }

    #[test]
    fn roles_public_paths_and_the_first_match() {
        let r = rules();
        let admin: &[Arc<str>] = &["admin".into()];
        let none: &[Arc<str>] = &[];
        let get = |p: &str| req(Method::GET, p, &[("sec-fetch-mode", "navigate")]);
        assert_eq!(r.verdict(&get("/admin/users"), Some(admin)), Verdict::Pass);
        assert_eq!(
            r.verdict(&get("/admin/users"), Some(none)),
            Verdict::Forbidden
        );
        assert_eq!(r.verdict(&get("/account"), Some(none)), Verdict::Pass);
        assert_eq!(
            r.verdict(&get("/account/help"), None),
            Verdict::Pass,
            "public"
        );
        assert_eq!(
            r.verdict(&get("/api/me"), None),
            Verdict::Unauthorized,
            "never a redirect"
        );
        assert_eq!(r.verdict(&get("/"), None), Verdict::Pass, "no rule");
    }
}
