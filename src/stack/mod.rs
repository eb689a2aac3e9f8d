//! [`PluginStack`]: plugins composed in a configured order, from TOML and code, and the
//! tower types of the composed service.
//!
//! The stack's nouns:
//! - an **entry** is one `[[plugin]]` table (or a [`PluginEntry`] from code): a plugin kind,
//!   an instance name, `enabled`, `when` and the plugin's own keys;
//! - a **step** is a built, enabled entry: its layer and the requests it applies to;
//! - a **slot** is one position of the composed service: an enum holding any built-in
//!   plugin's service (or a pass-through, or an erased custom one) over the next slot;
//! - the **chain** is the nested slots, 0, 1, 2, 4 or 8 deep as the stack needs; steps past
//!   the eighth are composed erased inside the last slot.

mod built_in;
mod from_fn;
mod next;
mod registry;
mod service;
mod slot;
mod source;
mod when;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum_core::response::IntoResponse;
use http::Request;
use serde::de::DeserializeOwned;
use tower_layer::Layer;
use tower_plugins_core::{
    ClientIpConfig, ClientIpResolver, ConfigError, ConfigProblem, Location, PluginRef, ProblemKind,
    join_key,
};

pub use from_fn::{FromFn, FromFnFuture, FromFnLayer, from_fn};
pub use next::Next;
pub use registry::CustomLayer;
pub use service::{PluginStackLayer, PluginStackService, ResponseBody, ResponseFuture};
pub use tower_plugins_core::PluginContext;

use registry::{Registry, Step, custom_factory, nearest};
use source::{Origin, Source, expand_env};
use when::When;

use crate::Body;

/// Plugins composed in a configured order.
///
/// Built from a TOML file, a string, or code (see [`PluginStackBuilder`]); turned into a tower
/// layer with [`layer`](PluginStack::layer). `Display` prints the effective stack.
///
/// The file is an ordered array, outermost first: the first entry sees the request first and
/// the response last, as with `tower::ServiceBuilder`.
///
/// ```toml
/// [client_ip]                  # shared by every plugin that needs the client's address
/// trusted_proxies = ["127.0.0.1/32"]
///
/// [[plugin]]
/// use = "timer"                # a built-in name or a name registered from code
/// name = "timing"              # optional instance name (default: the `use` name), unique
/// enabled = true               # optional, default true; "${VAR:-true}" works too
/// digits = 1                   # the plugin's own keys
/// ```
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::convert::Infallible;
/// use http::{Request, Response};
/// use tower::{Layer, ServiceExt, service_fn};
/// use tower_plugins::{Body, PluginStack};
///
/// let stack = PluginStack::from_toml_str(r#"
///     [[plugin]]
///     use = "timer"
///     digits = 1
/// "#).unwrap();
/// let svc = stack.layer().layer(service_fn(|_req: Request<Body>| async {
///     Ok::<_, Infallible>(Response::new(Body::from("hello")))
/// }));
/// let res = svc.oneshot(Request::new(Body::empty())).await.unwrap();
/// assert!(res.headers().contains_key("x-response-time"));
/// # }
/// ```
#[derive(Clone)]
pub struct PluginStack {
    entries: Vec<EntryInfo>,
    steps: Arc<[Step]>,
    client_ip: Arc<ClientIpResolver>,
}

/// One entry of a built stack, as [`PluginStack::entries`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EntryInfo {
    /// Position, outermost first.
    pub index: usize,
    /// The plugin kind (`use`).
    pub kind: String,
    /// The instance name.
    pub name: String,
    /// Whether it is enabled (disabled entries are validated but not applied).
    pub enabled: bool,
    /// Whether the kind was registered from code.
    pub custom: bool,
    /// A one-line summary of the effective settings.
    pub summary: String,
    /// The requests it applies to, when its `when` table restricts them.
    pub when: Option<String>,
}

impl PluginStack {
    /// A builder, for code sources and custom plugins.
    pub fn builder() -> PluginStackBuilder {
        PluginStackBuilder::new()
    }

    /// Reads a stack file.
    ///
    /// # Errors
    /// Every problem of the file, each located (see [`ConfigError`]).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        Self::builder().file(path).build()
    }

    /// Reads a stack from TOML text.
    ///
    /// # Errors
    /// Every problem of the text, each located.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        Self::builder().toml_str(text).build()
    }

    /// The tower layer that applies the enabled plugins in order.
    pub fn layer(&self) -> PluginStackLayer {
        PluginStackLayer {
            steps: self.steps.clone(),
        }
    }

    /// The entries, outermost first, enabled or not.
    pub fn entries(&self) -> &[EntryInfo] {
        &self.entries
    }

    /// The shared client-IP resolver.
    pub fn client_ip(&self) -> &Arc<ClientIpResolver> {
        &self.client_ip
    }

    /// The effective stack, as `Display` prints it.
    pub fn describe(&self) -> String {
        self.to_string()
    }
}

impl<S> Layer<S> for PluginStack
where
    PluginStackLayer: Layer<S>,
{
    type Service = <PluginStackLayer as Layer<S>>::Service;

    fn layer(&self, inner: S) -> Self::Service {
        PluginStack::layer(self).layer(inner)
    }
}

impl fmt::Display for PluginStack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let enabled = self.entries.iter().filter(|e| e.enabled).count();
        let n = self.entries.len();
        writeln!(
            f,
            "plugin stack: {n} {}, {enabled} enabled (outermost first: the first sees the request first)",
            if n == 1 { "entry" } else { "entries" },
        )?;
        let kw = self.entries.iter().map(|e| e.kind.len()).max().unwrap_or(0);
        let nw = self.entries.iter().map(|e| e.name.len()).max().unwrap_or(0);
        for e in &self.entries {
            write!(
                f,
                "  {:>2}. {:<kw$}  {:<nw$}  {:<8} {}",
                e.index + 1,
                e.kind,
                e.name,
                if e.enabled { "enabled" } else { "disabled" },
                e.summary,
            )?;
            match &e.when {
                Some(when) => writeln!(f, " (when {when})")?,
                None => writeln!(f)?,
            }
        }
        let ip = &self.client_ip;
        if ip.trusted_proxies().is_empty() {
            write!(f, "  client ip: the peer address (no trusted proxies)")
        } else {
            let nets: Vec<String> = ip.trusted_proxies().iter().map(|n| n.to_string()).collect();
            write!(
                f,
                "  client ip: {} from trusted proxies {}",
                ip.forwarded_header(),
                nets.join(", ")
            )
        }
    }
}

impl fmt::Debug for PluginStack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginStack")
            .field("entries", &self.entries)
            .field("client_ip", &self.client_ip)
            .finish()
    }
}

/// A plugin entry added from code, as it would be written in a file.
///
/// ```
/// use tower_plugins::PluginEntry;
/// let entry = PluginEntry::new("timer").name("timing").set("digits", 1);
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct PluginEntry {
    kind: String,
    name: Option<String>,
    enabled: bool,
    table: toml::Table,
}

impl PluginEntry {
    /// An entry of the plugin `kind` (`use = "kind"`), enabled, with default settings.
    pub fn new(kind: impl Into<String>) -> Self {
        PluginEntry {
            kind: kind.into(),
            name: None,
            enabled: true,
            table: toml::Table::new(),
        }
    }

    /// The instance name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Whether the entry is enabled. Default: true.
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Sets one of the plugin's keys.
    pub fn set(mut self, key: impl Into<String>, value: impl Into<toml::Value>) -> Self {
        self.table.insert(key.into(), value.into());
        self
    }

    /// Sets the plugin's keys from a table.
    pub fn table(mut self, table: toml::Table) -> Self {
        self.table.extend(table);
        self
    }
}

enum PendingSource {
    File(PathBuf),
    Str(String),
}

type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Builds a [`PluginStack`] from files, strings and code.
///
/// Sources merge in this order, later ones winning:
/// 1. TOML sources ([`file`](Self::file), [`toml_str`](Self::toml_str)), in the order given:
///    their `[[plugin]]` entries are concatenated; keys of a later `[client_ip]` replace
///    earlier ones;
/// 2. entries from code ([`plugin`](Self::plugin)), appended after (inside) the file's;
/// 3. overrides from code ([`set`](Self::set), [`enabled`](Self::enabled),
///    [`client_ip`](Self::client_ip)), applied to the named instances.
///
/// `${VAR}` and `${VAR:-default}` in TOML strings expand from the environment; `$${` is a
/// literal `${`. Every problem is collected and returned together from [`build`](Self::build).
#[must_use]
pub struct PluginStackBuilder {
    registry: Registry,
    sources: Vec<PendingSource>,
    code_entries: Vec<PluginEntry>,
    overrides: Vec<(String, String, toml::Value)>,
    enabled_overrides: Vec<(String, bool)>,
    client_ip: Option<ClientIpResolver>,
    env: EnvLookup,
    problems: Vec<ConfigProblem>,
}

impl fmt::Debug for PluginStackBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginStackBuilder")
            .field("registry", &self.registry)
            .field("sources", &self.sources.len())
            .field("code_entries", &self.code_entries)
            .finish_non_exhaustive()
    }
}

impl Default for PluginStackBuilder {
    fn default() -> Self {
        Self::new()
    }
}

/// A raw entry gathered from the sources, before it is built.
struct RawEntry {
    kind: Option<String>,
    name: Option<String>,
    enabled: bool,
    table: toml::Table,
    source: usize,
    path: String,
    code_keys: HashSet<String>,
    skip_build: bool,
}

impl PluginStackBuilder {
    /// A builder with the built-in plugins and no source.
    pub fn new() -> Self {
        PluginStackBuilder {
            registry: Registry::with_built_ins(),
            sources: Vec::new(),
            code_entries: Vec::new(),
            overrides: Vec::new(),
            enabled_overrides: Vec::new(),
            client_ip: None,
            env: Arc::new(|name| std::env::var(name).ok()),
            problems: Vec::new(),
        }
    }

    /// Adds a TOML file source.
    pub fn file(mut self, path: impl AsRef<Path>) -> Self {
        self.sources
            .push(PendingSource::File(path.as_ref().to_path_buf()));
        self
    }

    /// Adds a TOML text source.
    pub fn toml_str(mut self, text: impl Into<String>) -> Self {
        self.sources.push(PendingSource::Str(text.into()));
        self
    }

    /// Appends an entry from code, after (inside) the entries of the TOML sources.
    pub fn plugin(mut self, entry: PluginEntry) -> Self {
        self.code_entries.push(entry);
        self
    }

    /// Sets `key` of the instance named `instance` (code wins over files).
    pub fn set(
        mut self,
        instance: impl Into<String>,
        key: impl Into<String>,
        value: impl Into<toml::Value>,
    ) -> Self {
        self.overrides
            .push((instance.into(), key.into(), value.into()));
        self
    }

    /// Enables or disables the instance named `instance`.
    pub fn enabled(mut self, instance: impl Into<String>, enabled: bool) -> Self {
        self.enabled_overrides.push((instance.into(), enabled));
        self
    }

    /// Replaces the `[client_ip]` settings of the files.
    pub fn client_ip(mut self, resolver: ClientIpResolver) -> Self {
        self.client_ip = Some(resolver);
        self
    }

    /// Looks up `${VAR}` references with `lookup` instead of the process environment (for
    /// tests, or a secrets manager).
    pub fn env_lookup<F>(mut self, lookup: F) -> Self
    where
        F: Fn(&str) -> Option<String> + Send + Sync + 'static,
    {
        self.env = Arc::new(lookup);
        self
    }

    /// Registers a custom plugin kind under `name`, usable as `use = "name"`.
    ///
    /// `factory` receives the entry's table deserialized as `C` (every key except `use`,
    /// `name` and `enabled`; use `#[serde(deny_unknown_fields)]` to refuse typos) and the
    /// [`PluginContext`], and returns any tower layer over [`Next`] whose service takes
    /// `Request<Body>`, answers a `Response` with a `Bytes` body, and does not fail.
    ///
    /// Registering a built-in name, or one name twice, is reported by [`build`](Self::build).
    ///
    /// ```
    /// use tower_plugins::PluginStack;
    /// use tower_http::set_header::SetResponseHeaderLayer;
    /// # use http::{HeaderName, HeaderValue};
    ///
    /// #[derive(serde::Deserialize)]
    /// #[serde(deny_unknown_fields)]
    /// struct PoweredBy { value: String }
    ///
    /// let stack = PluginStack::builder()
    ///     .register("powered_by", |cfg: PoweredBy, _ctx| {
    ///         let value = HeaderValue::from_str(&cfg.value).map_err(|_| {
    ///             tower_plugins::ConfigError::new(
    ///                 tower_plugins::ProblemKind::InvalidValue, "value", "not a header value")
    ///         })?;
    ///         Ok(SetResponseHeaderLayer::if_not_present(
    ///             HeaderName::from_static("x-powered-by"), value))
    ///     })
    ///     .toml_str("[[plugin]]\nuse = \"powered_by\"\nvalue = \"tower-plugins\"")
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(stack.entries()[0].kind, "powered_by");
    /// ```
    pub fn register<C, L, F>(mut self, name: &str, factory: F) -> Self
    where
        C: DeserializeOwned + 'static,
        F: Fn(C, &PluginContext) -> Result<L, ConfigError> + Send + Sync + 'static,
        L: CustomLayer,
    {
        let mut loc = Location::default();
        Origin::Code.apply(&mut loc);
        if Registry::is_built_in(name) || self.registry.get(name).is_some() {
            let mut p = ConfigProblem::new(
                ProblemKind::Conflict,
                "",
                format!("plugin name `{name}` is already taken"),
            )
            .with_hint("register custom plugins under a name of their own");
            p.location = loc;
            self.problems.push(p);
        } else if name.is_empty() {
            let mut p = ConfigProblem::new(ProblemKind::InvalidValue, "", "empty plugin name");
            p.location = loc;
            self.problems.push(p);
        } else {
            self.registry
                .insert(name.to_owned(), custom_factory::<C, L, F>(factory));
        }
        self
    }

    /// Registers a custom plugin written as an async function, with a typed config: each
    /// request calls `f(config, request, next)` (see [`from_fn`]). The entry's table
    /// deserializes as `C`; for checks beyond serde's, use [`register`](Self::register) with a
    /// factory that returns [`from_fn`]'s layer.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::sync::Arc;
    /// use http::{Request, Response, StatusCode};
    /// use tower::{Layer, ServiceExt, service_fn};
    /// use tower_plugins::{Body, Next, PluginStack};
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Closed { message: String }
    ///
    /// let stack = PluginStack::builder()
    ///     .register_fn("closed", |cfg: Arc<Closed>, req: Request<Body>, next: Next| async move {
    ///         if req.uri().path().starts_with("/admin") {
    ///             return (StatusCode::SERVICE_UNAVAILABLE, cfg.message.clone()).into_response();
    ///         }
    ///         next.run(req).await
    ///     })
    ///     .toml_str("[[plugin]]\nuse = \"closed\"\nmessage = \"back soon\"")
    ///     .build()
    ///     .unwrap();
    /// # use axum_core::response::IntoResponse;
    /// let app = service_fn(|_req: Request<Body>| async {
    ///     Ok::<_, std::convert::Infallible>(Response::new(Body::from("hello")))
    /// });
    /// let req = Request::get("/admin/users").body(Body::empty()).unwrap();
    /// let res = stack.layer().layer(app).oneshot(req).await.unwrap();
    /// assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    /// # }
    /// ```
    pub fn register_fn<C, F, Fut>(self, name: &str, f: F) -> Self
    where
        C: DeserializeOwned + Send + Sync + 'static,
        F: Fn(Arc<C>, Request<Body>, Next) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoResponse,
    {
        let f = Arc::new(f);
        self.register(name, move |config: C, _: &PluginContext| {
            let (config, f) = (Arc::new(config), f.clone());
            Ok(from_fn(move |req, next| f(config.clone(), req, next)))
        })
    }

    /// Reads, merges, validates and builds every entry.
    ///
    /// # Errors
    /// Every problem found, each with its location: file, plugin entry, key, line and column.
    pub fn build(self) -> Result<PluginStack, ConfigError> {
        let mut problems = self.problems;
        let mut sources: Vec<Source> = Vec::new();
        let mut raw: Vec<RawEntry> = Vec::new();
        let mut client_ip_table = toml::Table::new();
        let mut client_ip_source: Option<usize> = None;

        for pending in self.sources {
            let (origin, text) = match pending {
                PendingSource::File(path) => match std::fs::read_to_string(&path) {
                    Ok(t) => (Origin::File(path), t),
                    Err(e) => {
                        let mut p = ConfigProblem::new(
                            ProblemKind::Io,
                            "",
                            format!("cannot read the file: {e}"),
                        );
                        p.location.file = Some(path);
                        problems.push(p);
                        continue;
                    }
                },
                PendingSource::Str(t) => (Origin::Str, t),
            };
            let (src, table) = match Source::parse(origin, text) {
                Ok(x) => x,
                Err(e) => {
                    problems.extend(e.into_problems());
                    continue;
                }
            };
            let si = sources.len();
            sources.push(src);
            let src = &sources[si];
            let mut located = |mut p: ConfigProblem| {
                let key = p.location.key.clone();
                src.locate(&mut p.location, &key);
                problems.push(p);
            };

            let mut doc = toml::Value::Table(table);
            let mut env_problems = Vec::new();
            expand_env(&mut doc, "", &*self.env, &mut env_problems);
            // An entry with a value that could not be expanded is not built: its other
            // errors would only echo this one.
            let poisoned: Vec<String> = env_problems
                .iter()
                .map(|p| p.location.key.clone())
                .collect();
            env_problems.into_iter().for_each(&mut located);
            let toml::Value::Table(table) = doc else {
                continue;
            };

            for (key, value) in table {
                match (key.as_str(), value) {
                    ("client_ip", toml::Value::Table(t)) => {
                        client_ip_table.extend(t);
                        client_ip_source = Some(si);
                    }
                    ("plugin", toml::Value::Array(items)) => {
                        for (i, item) in items.into_iter().enumerate() {
                            let path = format!("plugin[{i}]");
                            match item {
                                toml::Value::Table(t) => {
                                    let prefix = format!("{path}.");
                                    let skip = poisoned.iter().any(|k| k.starts_with(&prefix));
                                    let (mut entry, ps) = raw_entry(t, si, path);
                                    entry.skip_build = skip;
                                    ps.into_iter().for_each(&mut located);
                                    raw.push(entry);
                                }
                                other => located(
                                    ConfigProblem::new(
                                        ProblemKind::WrongType,
                                        path,
                                        format!(
                                            "a plugin entry must be a table, found {}",
                                            other.type_str()
                                        ),
                                    )
                                    .with_hint("write each entry as a [[plugin]] table"),
                                ),
                            }
                        }
                    }
                    ("client_ip" | "plugin", other) => located(
                        ConfigProblem::new(
                            ProblemKind::WrongType,
                            key.as_str(),
                            format!(
                                "`{key}` must be {}, found {}",
                                if key == "plugin" {
                                    "an array of tables"
                                } else {
                                    "a table"
                                },
                                other.type_str()
                            ),
                        )
                        .with_hint(if key == "plugin" {
                            "write entries as [[plugin]] (double brackets)"
                        } else {
                            "write it as a [client_ip] table"
                        }),
                    ),
                    (other, _) => {
                        let mut hint = String::new();
                        if let Some(best) = nearest(other, ["client_ip", "plugin"].into_iter()) {
                            hint.push_str(&format!("did you mean `{best}`? "));
                        }
                        hint.push_str(
                            "a stack file has a [client_ip] table and [[plugin]] entries",
                        );
                        located(
                            ConfigProblem::new(
                                ProblemKind::UnknownKey,
                                other,
                                format!("unknown key `{other}`"),
                            )
                            .with_hint(hint),
                        );
                    }
                }
            }
        }

        // Entries from code come after the files'.
        let code_source = sources.len();
        sources.push(Source::code());
        for entry in self.code_entries {
            let code_keys = entry.table.keys().cloned().collect();
            raw.push(RawEntry {
                kind: Some(entry.kind),
                name: entry.name,
                enabled: entry.enabled,
                table: entry.table,
                source: code_source,
                path: String::new(),
                code_keys,
                skip_build: false,
            });
        }

        let instance_name = |e: &RawEntry| e.name.clone().or_else(|| e.kind.clone());

        // Overrides from code, by instance name.
        let code_problem = |kind, msg: String, hint: &str| {
            let mut p = ConfigProblem::new(kind, "", msg).with_hint(hint);
            Origin::Code.apply(&mut p.location);
            p
        };
        for (instance, key, value) in self.overrides {
            match raw
                .iter_mut()
                .find(|e| instance_name(e).as_deref() == Some(instance.as_str()))
            {
                Some(e) => {
                    e.table.insert(key.clone(), value);
                    e.code_keys.insert(key);
                }
                None => problems.push(code_problem(
                    ProblemKind::InvalidValue,
                    format!("`set` names no instance `{instance}`"),
                    "name the instance by its `name`, or by its `use` when it has no name",
                )),
            }
        }
        for (instance, enabled) in self.enabled_overrides {
            match raw
                .iter_mut()
                .find(|e| instance_name(e).as_deref() == Some(instance.as_str()))
            {
                Some(e) => e.enabled = enabled,
                None => problems.push(code_problem(
                    ProblemKind::InvalidValue,
                    format!("`enabled` names no instance `{instance}`"),
                    "name the instance by its `name`, or by its `use` when it has no name",
                )),
            }
        }

        // The shared client-IP resolver.
        let client_ip = match self.client_ip {
            Some(r) => r,
            None => {
                let res = registry::deserialize::<ClientIpConfig>(client_ip_table)
                    .and_then(ClientIpResolver::try_from)
                    .map_err(|e| e.nest("client_ip"));
                match res {
                    Ok(r) => r,
                    Err(e) => {
                        for mut p in e.into_problems() {
                            let key = p.location.key.clone();
                            if let Some(si) = client_ip_source {
                                sources[si].locate(&mut p.location, &key);
                            }
                            problems.push(p);
                        }
                        ClientIpResolver::new()
                    }
                }
            }
        };
        let client_ip = Arc::new(client_ip);

        // Instance names are unique.
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (i, e) in raw.iter().enumerate() {
            let Some(name) = instance_name(e) else {
                continue;
            };
            if let Some(first) = seen.get(&name) {
                let key = if e.name.is_some() { "name" } else { "use" };
                let mut p = ConfigProblem::new(
                    ProblemKind::DuplicateName,
                    key,
                    format!("instance name `{name}` is also used by plugin[{first}]"),
                )
                .with_hint("give each instance a unique `name = \"...\"`");
                locate_entry(&sources, e, i, &mut p);
                problems.push(p);
            } else {
                seen.insert(name, i);
            }
        }

        // Build every entry, enabled or not, so that a disabled entry is valid when enabled.
        let mut entries = Vec::new();
        let mut steps = Vec::new();
        for (i, e) in raw.into_iter().enumerate() {
            let Some(kind) = e.kind.clone() else {
                continue;
            };
            if e.skip_build {
                continue;
            }
            let name = instance_name(&e).unwrap_or_default();
            let Some(factory) = self.registry.get(&kind) else {
                let mut p = self.registry.unknown(&kind);
                locate_entry(&sources, &e, i, &mut p);
                problems.push(p);
                continue;
            };
            let ctx = PluginContext::new(client_ip.clone(), name.clone(), i);
            let mut table = e.table.clone();
            let when = match table.remove("when").map(When::parse).transpose() {
                Ok(w) => w.flatten().map(Arc::new),
                Err(err) => {
                    for mut p in err.into_problems() {
                        locate_entry(&sources, &e, i, &mut p);
                        problems.push(p);
                    }
                    None
                }
            };
            match factory(table, &ctx) {
                Ok(built) => {
                    entries.push(EntryInfo {
                        index: i,
                        kind: kind.clone(),
                        name,
                        enabled: e.enabled,
                        custom: !Registry::is_built_in(&kind),
                        summary: built.summary,
                        when: when.as_ref().map(|w| w.describe()),
                    });
                    if e.enabled {
                        steps.push(Step {
                            layer: built.layer,
                            when,
                        });
                    }
                }
                Err(err) => {
                    for mut p in err.into_problems() {
                        locate_entry(&sources, &e, i, &mut p);
                        problems.push(p);
                    }
                }
            }
        }

        match ConfigError::from_problems(problems) {
            Some(e) => Err(e),
            None => Ok(PluginStack {
                entries,
                steps: steps.into(),
                client_ip,
            }),
        }
    }
}

/// Splits a `[[plugin]]` table into its stack keys (`use`, `name`, `enabled`) and the
/// plugin's own table.
fn raw_entry(mut t: toml::Table, source: usize, path: String) -> (RawEntry, Vec<ConfigProblem>) {
    let mut problems = Vec::new();
    let mut string_key = |t: &mut toml::Table, key: &str, required: bool| match t.remove(key) {
        Some(toml::Value::String(s)) if !s.trim().is_empty() => Some(s),
        Some(toml::Value::String(_)) => {
            problems.push(ConfigProblem::new(
                ProblemKind::InvalidValue,
                join_key(&path, key),
                format!("`{key}` is empty"),
            ));
            None
        }
        Some(other) => {
            problems.push(ConfigProblem::new(
                ProblemKind::WrongType,
                join_key(&path, key),
                format!("`{key}` must be a string, found {}", other.type_str()),
            ));
            None
        }
        None if required => {
            problems.push(
                ConfigProblem::new(
                    ProblemKind::MissingKey,
                    join_key(&path, key),
                    "missing required key `use`",
                )
                .with_hint("every [[plugin]] entry names its plugin: use = \"timer\""),
            );
            None
        }
        None => None,
    };
    let kind = string_key(&mut t, "use", true);
    let name = string_key(&mut t, "name", false);
    let enabled = match t.remove("enabled") {
        None => true,
        Some(toml::Value::Boolean(b)) => b,
        // After `${VAR}` expansion a flag may arrive as text.
        Some(toml::Value::String(s)) if s.trim() == "true" => true,
        Some(toml::Value::String(s)) if s.trim() == "false" => false,
        Some(other) => {
            problems.push(
                ConfigProblem::new(
                    ProblemKind::WrongType,
                    join_key(&path, "enabled"),
                    format!("`enabled` must be true or false, found {other}"),
                )
                .with_hint("write enabled = true, enabled = false, or \"${VAR:-true}\""),
            );
            true
        }
    };
    (
        RawEntry {
            kind,
            name,
            enabled,
            table: t,
            source,
            path,
            code_keys: HashSet::new(),
            skip_build: false,
        },
        problems,
    )
}

/// Fills the location of a problem found in entry `index`: its plugin, file, line and column.
/// Keys set from code are located in code.
fn locate_entry(sources: &[Source], e: &RawEntry, index: usize, p: &mut ConfigProblem) {
    let key = p.location.key.clone();
    let top = key.split(['.', '[']).next().unwrap_or("");
    if e.code_keys.contains(top) {
        Origin::Code.apply(&mut p.location);
    } else {
        sources[e.source].locate(&mut p.location, &join_key(&e.path, &key));
    }
    p.location.plugin = Some(PluginRef {
        index,
        kind: e.kind.clone().unwrap_or_default(),
        name: e
            .name
            .clone()
            .or_else(|| e.kind.clone())
            .unwrap_or_default(),
    });
}

#[cfg(test)]
mod tests;
