//! [`CorsConfig`]: the `use = "cors"` table of a plugin stack.

use std::fmt;

use http::{Method, StatusCode};
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use tower_plugins_core::{ConfigError, HumanDuration, ProblemKind, Problems, duration_in};

use crate::{AllowOrigin, CorsLayer};

/// A setting written either as one string (`"*"`, `"mirror"`) or as a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OneOrMany {
    /// A single word.
    One(String),
    /// A list.
    Many(Vec<String>),
}

impl Default for OneOrMany {
    fn default() -> Self {
        OneOrMany::Many(Vec::new())
    }
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(OneOrMany::Many(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// The CORS plugin's configuration, as written in a plugin stack file: its keys and defaults are
/// in the [crate docs](crate).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorsConfig {
    /// Exact origins, `*.` patterns, `:*` ports, `"null"`; or `"*"` / `"mirror"` alone.
    pub allow_origins: OneOrMany,
    /// Regexes matched against the whole origin.
    pub allow_origin_regex: Vec<String>,
    /// Methods a preflight may ask for, `["*"]`, or `"mirror"`. Default `GET, HEAD, POST`.
    pub allow_methods: OneOrMany,
    /// Request headers a preflight may ask for, `"*"`, or `"mirror"`.
    pub allow_headers: OneOrMany,
    /// Response headers pages may read, or `["*"]`.
    pub expose_headers: OneOrMany,
    /// Whether credentialed requests are allowed.
    pub allow_credentials: bool,
    /// How long browsers may cache a preflight answer.
    pub max_age: Option<HumanDuration>,
    /// Whether Private Network Access preflights are allowed.
    pub allow_private_network: bool,
    /// The status of an allowed preflight, 200 to 299. Default 204.
    pub preflight_status: u16,
    /// Answer disallowed preflights 403.
    pub strict: bool,
    /// Replace CORS headers the handler set.
    pub override_handler: bool,
    /// What grpc-web in a browser needs: its request headers allowed and the gRPC status
    /// headers exposed ([`GRPC_WEB_ALLOW_HEADERS`](crate::GRPC_WEB_ALLOW_HEADERS),
    /// [`GRPC_WEB_EXPOSE_HEADERS`](crate::GRPC_WEB_EXPOSE_HEADERS)), added to the lists.
    pub grpc_web: bool,
}

impl Default for CorsConfig {
    fn default() -> Self {
        CorsConfig {
            allow_origins: OneOrMany::default(),
            allow_origin_regex: Vec::new(),
            allow_methods: OneOrMany::Many(vec!["GET".into(), "HEAD".into(), "POST".into()]),
            allow_headers: OneOrMany::default(),
            expose_headers: OneOrMany::default(),
            allow_credentials: false,
            max_age: None,
            allow_private_network: false,
            preflight_status: 204,
            strict: false,
            override_handler: false,
            grpc_web: false,
        }
    }
}

/// `["*"]` and `"*"` both mean the wildcard.
fn is_star(v: &OneOrMany) -> bool {
    match v {
        OneOrMany::One(s) => s.trim() == "*",
        OneOrMany::Many(l) => l.len() == 1 && l[0].trim() == "*",
    }
}

fn list(v: &OneOrMany) -> Vec<String> {
    match v {
        OneOrMany::One(s) => vec![s.clone()],
        OneOrMany::Many(l) => l.clone(),
    }
}

impl TryFrom<CorsConfig> for CorsLayer {
    type Error = ConfigError;

    fn try_from(c: CorsConfig) -> Result<Self, ConfigError> {
        let mut p = Problems::new();
        let mut layer = CorsLayer::new();
        if let Some(origins) = origins(&c, &mut p) {
            layer = layer.allow_origin(origins);
        }
        layer = methods(&c, &mut p, layer);
        layer = headers(&c, &mut p, layer);
        layer = preflight_status(&c, &mut p, layer);
        // Browsers cap the preflight cache (Firefox at 24 h, Chromium at 2 h): a longer
        // max_age is a mistake, not a wish.
        let ages = std::time::Duration::ZERO..=std::time::Duration::from_secs(86_400);
        if let Some(max_age) = c
            .max_age
            .and_then(|a| p.check("max_age", duration_in(a.get(), ages)))
        {
            layer = layer.max_age(max_age);
        }
        layer = layer
            .allow_credentials(c.allow_credentials)
            .allow_private_network(c.allow_private_network)
            .strict(c.strict)
            .override_handler(c.override_handler);
        if let Err(e) = layer.check() {
            p.add("", e);
        }
        p.finish(layer)
    }
}

/// `allow_origins` (`*`, `mirror` or a list) and `allow_origin_regex`; allowing nothing is a
/// missing key.
fn origins(c: &CorsConfig, p: &mut Problems) -> Option<AllowOrigin> {
    let origins = match &c.allow_origins {
        o if is_star(o) => AllowOrigin::any(),
        OneOrMany::One(s) if s.trim() == "mirror" => AllowOrigin::mirror(),
        o => p.check("allow_origins", AllowOrigin::list(list(o)))?,
    };
    let origins = if c.allow_origin_regex.is_empty() {
        origins
    } else {
        p.check("allow_origin_regex", origins.regexes(&c.allow_origin_regex))?
    };
    if origins.is_empty() {
        p.push(
            ProblemKind::MissingKey,
            "allow_origins",
            "no origin is allowed: set allow_origins or allow_origin_regex",
        );
    }
    Some(origins)
}

/// `allow_methods`: `*`, `mirror` or a list of methods (case-sensitive, as methods are;
/// browsers upper-case only the standard ones).
fn methods(c: &CorsConfig, p: &mut Problems, layer: CorsLayer) -> CorsLayer {
    if is_star(&c.allow_methods) {
        return layer.allow_any_method();
    }
    if c.allow_methods == OneOrMany::One("mirror".to_owned()) {
        return layer.mirror_request_method();
    }
    let mut methods = Vec::new();
    for (i, m) in list(&c.allow_methods).iter().enumerate() {
        let (m, key) = (m.trim(), format!("allow_methods[{i}]"));
        if m == "*" {
            p.push(
                ProblemKind::InvalidValue,
                key,
                "`*` inside a list of methods",
            );
            continue;
        }
        match Method::from_bytes(m.as_bytes()) {
            Ok(method) => methods.push(method),
            Err(_) => {
                let message = format!("{m:?} is not a valid method");
                p.push(ProblemKind::InvalidValue, key, message);
            }
        }
    }
    layer.allow_methods(methods)
}

/// `allow_headers` (`*`, `mirror` or a list) and `expose_headers` (`*` or a list), with
/// grpc-web's added to the lists when `grpc_web` is on.
fn headers(c: &CorsConfig, p: &mut Problems, mut layer: CorsLayer) -> CorsLayer {
    let with_grpc_web = |mut l: Vec<String>, extra: &[&str]| {
        if c.grpc_web {
            l.extend(extra.iter().map(|h| (*h).to_owned()));
        }
        l
    };
    match &c.allow_headers {
        h if is_star(h) => layer = layer.allow_any_header(),
        OneOrMany::One(s) if s.trim() == "mirror" => layer = layer.mirror_request_headers(),
        h => {
            let names = with_grpc_web(list(h), crate::GRPC_WEB_ALLOW_HEADERS);
            if let Some(l) = p.check("allow_headers", layer.clone().allow_headers(names)) {
                layer = l;
            }
        }
    }
    if is_star(&c.expose_headers) {
        return layer.expose_any_header();
    }
    let names = with_grpc_web(list(&c.expose_headers), crate::GRPC_WEB_EXPOSE_HEADERS);
    let exposed = layer.clone().expose_headers(names);
    p.check("expose_headers", exposed).unwrap_or(layer)
}

/// `preflight_status`: an HTTP status the layer accepts for allowed preflights.
fn preflight_status(c: &CorsConfig, p: &mut Problems, layer: CorsLayer) -> CorsLayer {
    match StatusCode::from_u16(c.preflight_status) {
        Ok(status) => p
            .check("", layer.clone().preflight_status(status))
            .unwrap_or(layer),
        Err(_) => {
            let message = format!("{} is not an HTTP status", c.preflight_status);
            p.push(ProblemKind::InvalidValue, "preflight_status", message);
            layer
        }
    }
}

impl tower_plugins_core::Plugin for crate::CorsLayer {
    type Config = CorsConfig;
    type Service<S> = crate::Cors<S>;
    type Future<F> = crate::ResponseFuture<F>;
    type Body<B> = tower_plugins_core::PluginBody<B>;
    type Hooks = crate::CorsLayer;

    fn from_config(
        config: CorsConfig,
        _ctx: &tower_plugins_core::PluginContext,
    ) -> Result<Self, ConfigError> {
        config.try_into()
    }

    fn describe(&self) -> String {
        crate::CorsLayer::describe(self)
    }

    fn hooks(&self) -> Option<crate::CorsLayer> {
        Some(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The config's defaults are the layer's: a config with only its origins builds what
    /// `CorsLayer::new().allow_origin(...)` builds.
    #[test]
    fn config_defaults_are_the_layer_defaults() {
        let config = CorsConfig {
            allow_origins: OneOrMany::One("https://app.example.com".to_owned()),
            ..CorsConfig::default()
        };
        let from_config = CorsLayer::try_from(config).unwrap();
        let by_hand =
            CorsLayer::new().allow_origin(AllowOrigin::list(["https://app.example.com"]).unwrap());
        assert_eq!(from_config.describe(), by_hand.describe());
    }

    /// `grpc_web = true`: a grpc-web preflight is allowed and the answer's gRPC status
    /// headers are exposed, beside the configured ones.
    #[tokio::test]
    async fn the_grpc_web_preset_allows_its_preflight_and_exposes_the_status() {
        use tower::{Layer, ServiceExt, service_fn};
        let config: CorsConfig = toml::from_str(
            r#"
allow_origins = ["https://app.example.com"]
expose_headers = ["x-total"]
grpc_web = true
"#,
        )
        .unwrap();
        let layer = CorsLayer::try_from(config).unwrap();
        let svc = layer.layer(service_fn(|_: http::Request<()>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Empty::<
                bytes::Bytes,
            >::new()))
        }));
        let preflight = http::Request::options("/pkg.Svc/Call")
            .header("origin", "https://app.example.com")
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,x-grpc-web,x-user-agent",
            )
            .body(())
            .unwrap();
        let res = svc.clone().oneshot(preflight).await.unwrap();
        let allowed = res.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap();
        assert!(
            allowed.contains("x-grpc-web") && allowed.contains("x-user-agent"),
            "{allowed}"
        );
        let call = http::Request::post("/pkg.Svc/Call")
            .header("origin", "https://app.example.com")
            .header("content-type", "application/grpc-web+proto")
            .body(())
            .unwrap();
        let res = svc.oneshot(call).await.unwrap();
        let exposed = res.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap();
        assert_eq!(
            exposed,
            "x-total, grpc-status, grpc-message, grpc-status-details-bin"
        );
    }
}
