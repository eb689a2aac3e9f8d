//! The plugin kinds a stack knows: built-in ones and those registered from code.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use serde::de::DeserializeOwned;
use tower_layer::Layer;
use tower_plugins_core::{
    ConfigError, ConfigProblem, Plugin, PluginContext, ProblemKind, join_key,
};
use tower_service::Service;

use super::built_in::{self, BUILT_IN, built_ins};
use super::next::Next;
use super::run::RunLayer;
use super::when::When;
use crate::{Body, BoxError};

/// A built, enabled stack entry: its layer, and the requests it applies to.
#[derive(Clone)]
pub(crate) struct Step {
    pub(crate) layer: AnyLayer,
    pub(crate) when: Option<Arc<When>>,
}

macro_rules! any_layer {
    ($($variant:ident: $name:ident, $feature:literal, $layer:ty;)*) => {
        /// A built entry's layer: a built-in's, or a custom one.
        #[derive(Clone)]
        pub(crate) enum AnyLayer {
            $($variant(built_in::$name::Layer),)*
            Custom(DynLayer),
            /// Consecutive entries with hooks, composed as one (`run.rs`).
            Run(RunLayer),
        }

        impl Registry {
            /// A registry of every built-in compiled in.
            pub(crate) fn with_built_ins() -> Self {
                let mut r = Registry::default();
                $(if cfg!(feature = $feature) {
                    r.built_in(stringify!($name), AnyLayer::$variant);
                })*
                r
            }
        }
    };
}

built_ins!(any_layer);

/// A layer a custom plugin may return: any tower layer over [`Next`] whose service takes
/// `Request<Body>`, answers a `Response` with a `Bytes` body, and does not fail (implemented
/// for every such layer).
pub trait CustomLayer: Send + Sync + 'static {
    /// Wraps `next` in this layer, with the result's types erased.
    fn wrap(&self, next: Next) -> Next;
}

impl<L, B> CustomLayer for L
where
    L: Layer<Next> + Send + Sync + 'static,
    L::Service: Service<Request<Body>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    <L::Service as Service<Request<Body>>>::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    fn wrap(&self, next: Next) -> Next {
        Next::new(tower::util::MapResponse::new(
            self.layer(next),
            into_body_response,
        ))
    }
}

/// A type-erased layer over [`Next`].
#[derive(Clone)]
pub(crate) struct DynLayer(pub(crate) Arc<dyn CustomLayer>);

pub(crate) fn into_body_response<B>(res: Response<B>) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    res.map(Body::new)
}

/// The outcome of a factory: a layer and its one-line summary.
pub(crate) struct Built {
    pub(crate) layer: AnyLayer,
    pub(crate) summary: String,
}

pub(crate) type Factory =
    Arc<dyn Fn(toml::Table, &PluginContext) -> Result<Built, ConfigError> + Send + Sync>;

/// Plugin kinds by name.
#[derive(Clone, Default)]
pub(crate) struct Registry {
    kinds: BTreeMap<String, Factory>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.kinds.keys()).finish()
    }
}

impl Registry {
    /// Registers a built-in kind: its table deserializes as its config, which it validates
    /// into a layer.
    fn built_in<L>(&mut self, name: &str, any: fn(L) -> AnyLayer)
    where
        L: Plugin,
        L::Config: DeserializeOwned,
    {
        let factory: Factory = Arc::new(move |table, ctx| {
            let layer = L::from_config(deserialize(table)?, ctx)?;
            Ok(Built {
                summary: layer.describe(),
                layer: any(layer),
            })
        });
        self.kinds.insert(name.to_owned(), factory);
    }

    pub(crate) fn is_built_in(name: &str) -> bool {
        BUILT_IN.iter().any(|(n, _)| *n == name)
    }

    pub(crate) fn insert(&mut self, name: String, f: Factory) {
        self.kinds.insert(name, f);
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Factory> {
        self.kinds.get(name)
    }

    /// The problem for an unknown `use = "name"`: the known names and the nearest one.
    pub(crate) fn unknown(&self, name: &str) -> ConfigProblem {
        if let Some((_, feature)) = BUILT_IN.iter().find(|(n, _)| *n == name) {
            return ConfigProblem::new(
                ProblemKind::UnknownPlugin,
                "use",
                format!("plugin `{name}` is not compiled in"),
            )
            .with_hint(format!("enable the `{feature}` feature of tower-plugins"));
        }
        let known: Vec<&str> = self.kinds.keys().map(String::as_str).collect();
        let mut hint = String::new();
        if let Some(best) = nearest(name, known.iter().copied()) {
            hint.push_str(&format!("did you mean `{best}`? "));
        }
        hint.push_str(&format!("known plugins: {}", known.join(", ")));
        ConfigProblem::new(
            ProblemKind::UnknownPlugin,
            "use",
            format!("unknown plugin `{name}`"),
        )
        .with_hint(hint)
    }
}

pub(crate) use tower_plugins_core::nearest;

/// Deserializes a plugin table, turning serde's error into a located problem.
pub(crate) fn deserialize<C: DeserializeOwned>(table: toml::Table) -> Result<C, ConfigError> {
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let path = path_string(e.path());
        let message = e.inner().message().trim().to_owned();
        classify(&path, &message).into()
    })
}

fn path_string(p: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in p.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => out = join_key(&out, key),
            Segment::Enum { variant } => out = join_key(&out, variant),
            Segment::Unknown => out = join_key(&out, "?"),
        }
    }
    out
}

/// Maps serde's standard messages to a problem kind, with a "did you mean" hint for unknown
/// keys and variants.
fn classify(path: &str, message: &str) -> ConfigProblem {
    let backticked: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let field = backticked.first().copied().unwrap_or(rest);
        // serde_path_to_error reports the path of the table for an unknown key: add the key.
        let key = if path.rsplit('.').next() == Some(field) {
            path.to_owned()
        } else {
            join_key(path, field)
        };
        let expected = &backticked[1.min(backticked.len())..];
        let mut p = ConfigProblem::new(
            ProblemKind::UnknownKey,
            key,
            format!("unknown key `{field}`"),
        );
        let mut hint = String::new();
        if let Some(best) = nearest(field, expected.iter().copied()) {
            hint.push_str(&format!("did you mean `{best}`? "));
        }
        if expected.is_empty() {
            hint.push_str("this table takes no keys");
        } else {
            hint.push_str(&format!("known keys: {}", expected.join(", ")));
        }
        p = p.with_hint(hint);
        return p;
    }
    if message.starts_with("missing field ") {
        let field = backticked.first().copied().unwrap_or("?");
        return ConfigProblem::new(
            ProblemKind::MissingKey,
            join_key(path, field),
            format!("missing required key `{field}`"),
        );
    }
    if message.starts_with("invalid type") {
        return ConfigProblem::new(ProblemKind::WrongType, path, message);
    }
    if message.starts_with("unknown variant ") {
        let given = backticked.first().copied().unwrap_or("?");
        let expected = &backticked[1.min(backticked.len())..];
        let mut hint = String::new();
        if let Some(best) = nearest(given, expected.iter().copied()) {
            hint.push_str(&format!("did you mean `{best}`? "));
        }
        hint.push_str(&format!("one of: {}", expected.join(", ")));
        return ConfigProblem::new(
            ProblemKind::InvalidValue,
            path,
            format!("unknown value `{given}`"),
        )
        .with_hint(hint);
    }
    // Core's serde impls (durations, quotas) append their hint after "; hint: ".
    match message.split_once("; hint: ") {
        Some((m, h)) => ConfigProblem::new(ProblemKind::InvalidValue, path, m).with_hint(h),
        None => ConfigProblem::new(ProblemKind::InvalidValue, path, message),
    }
}

/// Builds the factory of a custom plugin registered from code.
pub(crate) fn custom_factory<C, L, F>(f: F) -> Factory
where
    C: DeserializeOwned + 'static,
    F: Fn(C, &PluginContext) -> Result<L, ConfigError> + Send + Sync + 'static,
    L: CustomLayer,
{
    Arc::new(move |table, ctx| {
        let summary = summarize(&table);
        let cfg: C = deserialize(table)?;
        let layer = f(cfg, ctx)?;
        Ok(Built {
            layer: AnyLayer::Custom(DynLayer(Arc::new(layer))),
            summary,
        })
    })
}

/// An inline view of a custom plugin's table, with secret-looking values hidden.
fn summarize(table: &toml::Table) -> String {
    let parts: Vec<String> = table
        .iter()
        .map(|(k, v)| {
            let lower = k.to_ascii_lowercase();
            let secret = ["secret", "password", "token", "key", "credential"]
                .iter()
                .any(|s| lower.contains(s));
            if secret {
                format!("{k} = \"***\"")
            } else {
                format!("{k} = {v}")
            }
        })
        .collect();
    if parts.is_empty() {
        "default settings".to_owned()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct C {
        greeting: String,
        #[serde(default)]
        times: u32,
        #[serde(default)]
        inner: Vec<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        wait: tower_plugins_core::HumanDuration,
    }

    fn err(text: &str) -> ConfigProblem {
        let t: toml::Table = text.parse().unwrap();
        deserialize::<C>(t).unwrap_err().into_problems().remove(0)
    }

    #[test]
    fn serde_errors_become_kinds_with_paths() {
        let p = err("greting = \"hi\"");
        assert_eq!(p.kind, ProblemKind::UnknownKey);
        assert_eq!(p.location.key, "greting");
        assert!(
            p.hint
                .as_deref()
                .unwrap()
                .starts_with("did you mean `greeting`?")
        );

        let p = err("times = 3");
        assert_eq!(
            (p.kind, p.location.key.as_str()),
            (ProblemKind::MissingKey, "greeting")
        );

        let p = err("greeting = 5");
        assert_eq!(
            (p.kind, p.location.key.as_str()),
            (ProblemKind::WrongType, "greeting")
        );

        let p = err("greeting = \"x\"\ninner = [{ wait = \"1s\" }, { wait = \"soon\" }]");
        assert_eq!(p.kind, ProblemKind::InvalidValue);
        assert_eq!(p.location.key, "inner[1].wait");
        assert!(p.hint.is_some());

        let p = err("greeting = \"x\"\ninner = [{ wiat = \"1s\" }]");
        assert_eq!(p.location.key, "inner[0].wiat");
    }

    #[test]
    fn unknown_plugin_hint_lists_known_names() {
        let r = Registry::with_built_ins();
        let p = r.unknown("timr");
        assert!(p.hint.unwrap().contains("did you mean `timer`?"));
    }

    #[test]
    fn summaries_hide_secrets() {
        let t: toml::Table = "secret_key = \"abc\"\nlevel = 3".parse().unwrap();
        let s = summarize(&t);
        assert!(
            s.contains("secret_key = \"***\"") && s.contains("level = 3"),
            "{s}"
        );
        assert!(!s.contains("abc"));
    }
}
