//! [`CorsLayer`]: the rules, validated and turned into header values once.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method, StatusCode};
use tower_layer::Layer;
use tower_plugins_core::{ConfigError, ProblemKind, Problems};

use crate::origin::{AllowOrigin, OriginRequest};
use crate::service::Cors;

/// Which request headers a preflight may ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AllowHeaders {
    /// These names (a short list is scanned faster than a set is hashed); the header value
    /// is precomputed.
    List(Vec<HeaderName>, Option<HeaderValue>),
    /// Any header: answered `*` (plus `authorization`, which `*` does not cover, when asked).
    Any,
    /// Any header, answered with the names the preflight asked for.
    Mirror,
}

/// Which methods a preflight may ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AllowMethods {
    List(Vec<Method>, Option<HeaderValue>),
    Any,
    /// Any method, answered by echoing the one the preflight asked for.
    Mirror,
}

#[derive(Debug, Clone)]
pub(crate) struct Shared {
    pub(crate) origins: AllowOrigin,
    pub(crate) credentials: bool,
    pub(crate) methods: AllowMethods,
    pub(crate) headers: AllowHeaders,
    /// `None`: no header; precomputed otherwise (`*` or the list).
    pub(crate) expose: Option<HeaderValue>,
    pub(crate) expose_any: bool,
    pub(crate) max_age: Option<HeaderValue>,
    pub(crate) private_network: bool,
    pub(crate) preflight_status: StatusCode,
    pub(crate) strict: bool,
    pub(crate) override_handler: bool,
    /// Rebuilt by every setter: the request-independent headers of an allowed preflight.
    pub(crate) preflight_template: http::HeaderMap,
}

/// Fetch-standard CORS for a tower service. See the [crate docs](crate) for an example.
///
/// A new layer allows no origin; every setter's default is given in its docs. Setters that take
/// names or origins from strings are fallible (they return `Result`), so that a bad value is an
/// error at startup, never a panic; combinations the Fetch standard forbids (credentials with
/// any `*`) are refused by [`CorsLayer::check`], which [`TryFrom<CorsConfig>`](crate::CorsConfig)
/// and the plugin stack call for you.
#[derive(Clone)]
#[must_use]
pub struct CorsLayer {
    pub(crate) shared: Arc<Shared>,
}

impl Default for CorsLayer {
    fn default() -> Self {
        CorsLayer {
            shared: Arc::new(Shared {
                origins: AllowOrigin::default(),
                credentials: false,
                methods: methods_list(&[Method::GET, Method::HEAD, Method::POST]),
                headers: AllowHeaders::List(Vec::new(), None),
                expose: None,
                expose_any: false,
                max_age: None,
                private_network: false,
                preflight_status: StatusCode::NO_CONTENT,
                strict: false,
                override_handler: false,
                preflight_template: http::HeaderMap::new(),
            }),
        }
        .map(|_| {})
    }
}

fn methods_list(methods: &[Method]) -> AllowMethods {
    let value = join(methods.iter().map(Method::as_str));
    AllowMethods::List(methods.to_vec(), value)
}

/// `a, b, c` as a header value, or `None` when empty.
fn join<'a>(items: impl Iterator<Item = &'a str>) -> Option<HeaderValue> {
    let s = items.collect::<Vec<_>>().join(", ");
    if s.is_empty() {
        None
    } else {
        HeaderValue::from_str(&s).ok()
    }
}

fn parse_names<I, S>(names: I, what: &str) -> Result<Vec<HeaderName>, ConfigError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut problems = Problems::new();
    let mut out = Vec::new();
    for (i, n) in names.into_iter().enumerate() {
        let n = n.as_ref().trim();
        if n == "*" {
            problems.push(
                ProblemKind::InvalidValue,
                format!("[{i}]"),
                format!("`*` inside a list of {what}"),
            );
            continue;
        }
        if let Some(h) = problems.check(&format!("[{i}]"), tower_plugins_core::header_name(n)) {
            if !out.contains(&h) {
                out.push(h);
            }
        }
    }
    problems.finish(out)
}

impl CorsLayer {
    /// A layer that allows no origin, with methods `GET, HEAD, POST`, no extra request
    /// headers, no exposed headers, no credentials, no max age, preflights answered `204`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Public, credential-less access for everyone: any origin (`*`), any method, any request
    /// header, every response header exposed (as tower-http's `CorsLayer::permissive`).
    pub fn permissive() -> Self {
        Self::new()
            .allow_origin(AllowOrigin::any())
            .allow_any_method()
            .allow_any_header()
            .expose_any_header()
    }

    /// Everything, with credentials, for every origin: the origin, method and headers of each
    /// request are echoed back (as tower-http's `CorsLayer::very_permissive`). Any site can
    /// then read any credentialed response: for development only.
    pub fn very_permissive() -> Self {
        Self::new()
            .allow_origin(AllowOrigin::mirror())
            .mirror_request_method()
            .mirror_request_headers()
            .allow_credentials(true)
    }

    fn map(mut self, f: impl FnOnce(&mut Shared)) -> Self {
        let s = Arc::make_mut(&mut self.shared);
        f(s);
        s.preflight_template = crate::preflight::preflight_template(s);
        self
    }

    /// The allowed origins. Multiple calls override previous ones.
    ///
    /// ```
    /// use tower_plugins_cors::{AllowOrigin, CorsLayer};
    /// let layer = CorsLayer::new()
    ///     .allow_origin(AllowOrigin::list(["https://app.example.com", "https://*.example.org"])?);
    /// # Ok::<(), tower_plugins_core::ConfigError>(())
    /// ```
    pub fn allow_origin(self, origins: AllowOrigin) -> Self {
        self.map(|s| s.origins = origins)
    }

    /// Adds a predicate to the allowed origins, asked when nothing listed matched.
    ///
    /// ```
    /// use tower_plugins_cors::CorsLayer;
    /// let layer = CorsLayer::new().allow_origin_fn(|r| r.origin.ends_with(".internal.test"));
    /// ```
    pub fn allow_origin_fn<F>(self, f: F) -> Self
    where
        F: Fn(&OriginRequest<'_>) -> bool + Send + Sync + 'static,
    {
        self.map(|s| s.origins = std::mem::take(&mut s.origins).predicate(f))
    }

    /// Whether credentialed requests are allowed (`Access-Control-Allow-Credentials: true`).
    /// Default: false.
    pub fn allow_credentials(self, yes: bool) -> Self {
        self.map(|s| s.credentials = yes)
    }

    /// The methods a preflight may ask for. `GET`, `HEAD` and `POST` need no preflight
    /// permission in browsers and are always accepted. Default: `GET, HEAD, POST`.
    pub fn allow_methods<I: IntoIterator<Item = Method>>(self, methods: I) -> Self {
        let m: Vec<Method> = methods.into_iter().collect();
        self.map(|s| s.methods = methods_list(&m))
    }

    /// Any method (`Access-Control-Allow-Methods: *`; refused together with credentials).
    pub fn allow_any_method(self) -> Self {
        self.map(|s| s.methods = AllowMethods::Any)
    }

    /// Any method, answered by echoing the one the preflight asked for (works with
    /// credentials).
    pub fn mirror_request_method(self) -> Self {
        self.map(|s| s.methods = AllowMethods::Mirror)
    }

    /// The request headers a preflight may ask for. Default: none beyond the CORS-safelisted
    /// `accept`, `accept-language` and `content-language`.
    ///
    /// # Errors
    /// An invalid header name or `*` in the list.
    pub fn allow_headers<I, S>(self, names: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let names = parse_names(names, "headers")?;
        let value = join(names.iter().map(HeaderName::as_str));
        Ok(self.map(|s| s.headers = AllowHeaders::List(names, value)))
    }

    /// Any request header, answered `*` (and `authorization` by name when asked, since the
    /// wildcard does not cover it). Refused together with credentials.
    pub fn allow_any_header(self) -> Self {
        self.map(|s| s.headers = AllowHeaders::Any)
    }

    /// Any request header, answered by echoing what the preflight asked for (works with
    /// credentials; adds `Vary: Access-Control-Request-Headers`).
    pub fn mirror_request_headers(self) -> Self {
        self.map(|s| s.headers = AllowHeaders::Mirror)
    }

    /// The response headers a page may read (`Access-Control-Expose-Headers`). Default: none.
    ///
    /// # Errors
    /// An invalid header name or `*` in the list.
    pub fn expose_headers<I, S>(self, names: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let names = parse_names(names, "exposed headers")?;
        let value = join(names.iter().map(HeaderName::as_str));
        Ok(self.map(|s| {
            s.expose = value;
            s.expose_any = false;
        }))
    }

    /// Every response header may be read (`Access-Control-Expose-Headers: *`; refused
    /// together with credentials).
    pub fn expose_any_header(self) -> Self {
        self.map(|s| {
            s.expose = Some(HeaderValue::from_static("*"));
            s.expose_any = true;
        })
    }

    /// How long browsers may cache a preflight answer (`Access-Control-Max-Age`, whole
    /// seconds). Default: not sent (browsers use 5 seconds).
    pub fn max_age(self, max_age: Duration) -> Self {
        self.map(|s| s.max_age = Some(HeaderValue::from(max_age.as_secs())))
    }

    /// Whether to answer `Access-Control-Allow-Private-Network: true` to preflights that ask
    /// for it (Private Network Access). Default: false.
    pub fn allow_private_network(self, yes: bool) -> Self {
        self.map(|s| s.private_network = yes)
    }

    /// The status of an allowed preflight answer, 200 to 299. Default: 204.
    ///
    /// # Errors
    /// A status outside 200..=299, which browsers treat as a failed preflight.
    pub fn preflight_status(self, status: StatusCode) -> Result<Self, ConfigError> {
        if !status.is_success() {
            return Err(ConfigError::new(
                ProblemKind::InvalidValue,
                "preflight_status",
                format!(
                    "{} is not a 2xx status; browsers fail such a preflight",
                    status.as_u16()
                ),
            ));
        }
        Ok(self.map(|s| s.preflight_status = status))
    }

    /// Whether a disallowed preflight is answered `403 Forbidden` (with a short text body)
    /// instead of a CORS-less `preflight_status`. Either way the browser refuses the request;
    /// 403 makes it visible in logs. Default: false.
    pub fn strict(self, yes: bool) -> Self {
        self.map(|s| s.strict = yes)
    }

    /// Whether CORS headers the handler set are replaced. By default they are kept: when the
    /// handler set `Access-Control-Allow-Origin`, it owns the CORS headers of that response;
    /// otherwise each header it set is kept and the others are added. Default: false.
    pub fn override_handler(self, yes: bool) -> Self {
        self.map(|s| s.override_handler = yes)
    }

    /// Checks the combinations the Fetch standard forbids: credentials with `*` origins,
    /// methods, headers or exposed headers (browsers treat `*` literally, or refuse, when
    /// credentials are included).
    ///
    /// # Errors
    /// Every forbidden combination.
    pub fn check(&self) -> Result<(), ConfigError> {
        let s = &self.shared;
        let mut problems = Problems::new();
        if s.credentials {
            let hint = "with credentials, list what you allow: browsers do not honour `*` \
                        in credentialed requests";
            let mut conflict = |key: &str, what: &str| {
                problems.push(
                    ProblemKind::Conflict,
                    key,
                    format!("allow_credentials = true cannot be combined with `*` {what}"),
                );
            };
            if s.origins.is_any() {
                conflict("allow_origins", "origins");
            }
            if s.methods == AllowMethods::Any {
                conflict("allow_methods", "methods");
            }
            if s.headers == AllowHeaders::Any {
                conflict("allow_headers", "headers");
            }
            if s.expose_any {
                conflict("expose_headers", "exposed headers");
            }
            return problems.finish(()).map_err(|e| e.with_hint(hint));
        }
        problems.finish(())
    }

    /// A one-line summary of the effective rules, as the plugin stack prints it.
    pub fn describe(&self) -> String {
        let s = &self.shared;
        let methods = match &s.methods {
            AllowMethods::Any => "*".to_owned(),
            AllowMethods::Mirror => "mirror".to_owned(),
            AllowMethods::List(_, v) => v
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .unwrap_or("none")
                .to_owned(),
        };
        let headers = match &s.headers {
            AllowHeaders::Any => "*".to_owned(),
            AllowHeaders::Mirror => "mirror".to_owned(),
            AllowHeaders::List(_, v) => v
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .unwrap_or("safelisted only")
                .to_owned(),
        };
        let mut out = format!(
            "origins {}; methods {methods}; headers {headers}",
            s.origins.describe()
        );
        if let Some(e) = s.expose.as_ref().and_then(|v| v.to_str().ok()) {
            out.push_str(&format!("; expose {e}"));
        }
        if s.credentials {
            out.push_str("; credentials");
        }
        if let Some(m) = s.max_age.as_ref().and_then(|v| v.to_str().ok()) {
            out.push_str(&format!("; max-age {m}s"));
        }
        if s.private_network {
            out.push_str("; private network");
        }
        if s.strict {
            out.push_str("; strict");
        }
        if s.override_handler {
            out.push_str("; overrides handler headers");
        }
        if s.preflight_status != StatusCode::NO_CONTENT {
            out.push_str(&format!("; preflight {}", s.preflight_status.as_u16()));
        }
        out
    }
}

impl fmt::Debug for CorsLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CorsLayer")
            .field("rules", &self.describe())
            .finish()
    }
}

impl<S> Layer<S> for CorsLayer {
    type Service = Cors<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Cors {
            inner,
            shared: self.shared.clone(),
        }
    }
}
