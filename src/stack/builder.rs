//! [`PluginStackBuilder`]: files, strings and code merged into a [`PluginStack`], in named
//! phases (read the sources, add code entries, apply overrides, resolve the client IP, check
//! names, build the entries), every problem located in one place (`Gather::report`).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum_core::response::IntoResponse;
use http::Request;
use serde::de::DeserializeOwned;
use tower_plugins_core::{
    ClientIpConfig, ClientIpResolver, ConfigError, ConfigProblem, PluginContext, PluginRef,
    ProblemKind, join_key,
};

use super::from_fn::from_fn;
use super::next::Next;
use super::registry::{self, CustomLayer, Registry, Step, custom_factory, nearest};
use super::source::{Origin, Source, expand_env, line_col};
use super::when::When;
use super::{EntryInfo, PluginEntry, PluginStack};
use crate::Body;

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
        // Problems of code are located when the stack is built.
        if Registry::is_built_in(name) || self.registry.get(name).is_some() {
            let p = ConfigProblem::new(
                ProblemKind::Conflict,
                "",
                format!("plugin name `{name}` is already taken"),
            )
            .with_hint("register custom plugins under a name of their own");
            self.problems.push(p);
        } else if name.is_empty() {
            let p = ConfigProblem::new(ProblemKind::InvalidValue, "", "empty plugin name");
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
        let mut g = Gather::default();
        for p in self.problems {
            g.report(At::Code, p);
        }
        for pending in self.sources {
            g.read_source(pending, &*self.env);
        }
        g.add_code_entries(self.code_entries);
        g.apply_overrides(self.overrides, self.enabled_overrides);
        g.check_bounds();
        let client_ip = Arc::new(g.client_ip(self.client_ip));
        g.check_names();
        let (entries, steps) = g.build_entries(&self.registry, &client_ip);
        match ConfigError::from_problems(g.problems) {
            Some(e) => Err(e),
            None => Ok(PluginStack {
                entries,
                // Consecutive entries with hooks are composed as one level.
                steps: super::run::runs(steps).into(),
                client_ip,
            }),
        }
    }
}

/// The most entries a stack may have (files and code together, enabled or not).
pub const MAX_ENTRIES: usize = 128;

/// The most items a list in a stack's configuration may have.
pub const MAX_LIST_ITEMS: usize = 10_000;

/// The longest string value in a stack's configuration, in bytes.
pub const MAX_STRING_BYTES: usize = 64 * 1024;

/// Records a problem for every list or string in `value` (at key `path`) past its bound.
fn oversized(value: &toml::Value, path: &str, out: &mut Vec<ConfigProblem>) {
    let problem = |what: String| {
        ConfigProblem::new(ProblemKind::InvalidValue, path, what)
            .with_hint("a configuration value this large is almost certainly a mistake")
    };
    match value {
        toml::Value::String(s) if s.len() > MAX_STRING_BYTES => out.push(problem(format!(
            "the string is {} bytes long; at most {MAX_STRING_BYTES} are allowed",
            s.len()
        ))),
        toml::Value::Array(items) if items.len() > MAX_LIST_ITEMS => out.push(problem(format!(
            "the list has {} items; at most {MAX_LIST_ITEMS} are allowed",
            items.len()
        ))),
        toml::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                oversized(v, &format!("{path}[{i}]"), out);
            }
        }
        toml::Value::Table(t) => {
            for (k, v) in t {
                oversized(v, &join_key(path, k), out);
            }
        }
        _ => {}
    }
}

/// Where a problem's key is relative to.
#[derive(Clone, Copy)]
enum At {
    /// A value set from code (no file, no line).
    Code,
    /// The top of the source at this index: the key is an absolute path in it.
    Source(usize),
    /// The entry at this index: the key is relative to its table.
    Entry(usize),
}

/// What `build` gathers, phase by phase: the parsed sources, the entries before they are built,
/// the `[client_ip]` table, and every problem, located.
#[derive(Default)]
struct Gather {
    sources: Vec<Source>,
    raw: Vec<RawEntry>,
    client_ip_table: toml::Table,
    client_ip_source: Option<usize>,
    problems: Vec<ConfigProblem>,
}

impl Gather {
    /// Records `p`, filling its file, line, column and plugin entry from `at`. This is the one
    /// place a problem is located.
    fn report(&mut self, at: At, mut p: ConfigProblem) {
        let key = std::mem::take(&mut p.location.key);
        match at {
            At::Code => Origin::Code.apply(&mut p.location),
            At::Source(si) => self.sources[si].locate(&mut p.location, &key),
            At::Entry(i) => {
                let e = &self.raw[i];
                let top = key.split(['.', '[']).next().unwrap_or("");
                if e.code_keys.contains(top) {
                    Origin::Code.apply(&mut p.location);
                } else {
                    self.sources[e.source].locate(&mut p.location, &join_key(&e.path, &key));
                }
                p.location.plugin = Some(PluginRef {
                    index: i,
                    kind: e.kind.clone().unwrap_or_default(),
                    name: e.instance_name().unwrap_or_default(),
                });
            }
        }
        p.location.key = key;
        self.problems.push(p);
    }

    fn report_all(&mut self, at: At, err: ConfigError) {
        for p in err.into_problems() {
            self.report(at, p);
        }
    }

    /// Phase 1: reads and parses one source, expands `${VAR}`, and takes its `[client_ip]`
    /// table and `[[plugin]]` entries.
    fn read_source(&mut self, pending: PendingSource, env: &dyn Fn(&str) -> Option<String>) {
        let (origin, text) = match pending {
            PendingSource::File(path) => match read_text(&path) {
                Ok(t) => (Origin::File(path), t),
                Err(e) => {
                    let e = e.map_locations(|l| l.file = Some(path.clone()));
                    return self.problems.extend(e.into_problems());
                }
            },
            PendingSource::Str(t) => (Origin::Str, t),
        };
        let (src, table) = match Source::parse(origin, text) {
            Ok(x) => x,
            Err(e) => return self.problems.extend(e.into_problems()),
        };
        let si = self.sources.len();
        self.sources.push(src);
        let mut doc = toml::Value::Table(table);
        let mut env_problems = Vec::new();
        expand_env(&mut doc, "", env, &mut env_problems);
        // An entry with a value that could not be expanded is not built: its other errors
        // would only echo this one.
        // Keyed by the string's path (`plugin[3].x[0]`) and by its entry's (`plugin[3]`).
        let poisoned: HashSet<String> = (env_problems.iter())
            .flat_map(|p| {
                let key = &p.location.key;
                let entry = key.split('.').next().unwrap_or_default();
                [key.clone(), entry.to_owned()]
            })
            .collect();
        for p in env_problems {
            self.report(At::Source(si), p);
        }
        if let toml::Value::Table(table) = doc {
            for (key, value) in table {
                self.top_level(si, &key, value, &poisoned);
            }
        }
    }

    /// One top-level key of source `si`: `[client_ip]`, `[[plugin]]`, or a problem.
    fn top_level(&mut self, si: usize, key: &str, value: toml::Value, poisoned: &HashSet<String>) {
        match (key, value) {
            ("client_ip", toml::Value::Table(t)) => {
                self.client_ip_table.extend(t);
                self.client_ip_source = Some(si);
            }
            ("plugin", toml::Value::Array(items)) => {
                for (i, item) in items.into_iter().enumerate() {
                    self.plugin_item(si, format!("plugin[{i}]"), item, poisoned);
                }
            }
            ("client_ip" | "plugin", other) => {
                let (what, hint) = if key == "plugin" {
                    (
                        "an array of tables",
                        "write entries as [[plugin]] (double brackets)",
                    )
                } else {
                    ("a table", "write it as a [client_ip] table")
                };
                let message = format!("`{key}` must be {what}, found {}", other.type_str());
                let p = ConfigProblem::new(ProblemKind::WrongType, key, message).with_hint(hint);
                self.report(At::Source(si), p);
            }
            (other, _) => {
                let mut hint = String::new();
                if let Some(best) = nearest(other, ["client_ip", "plugin"].into_iter()) {
                    hint.push_str(&format!("did you mean `{best}`? "));
                }
                hint.push_str("a stack file has a [client_ip] table and [[plugin]] entries");
                let message = format!("unknown key `{other}`");
                let p = ConfigProblem::new(ProblemKind::UnknownKey, other, message).with_hint(hint);
                self.report(At::Source(si), p);
            }
        }
    }

    /// One element of a source's `plugin` array, at `path`.
    fn plugin_item(
        &mut self,
        si: usize,
        path: String,
        item: toml::Value,
        poisoned: &HashSet<String>,
    ) {
        let toml::Value::Table(t) = item else {
            let message = format!("a plugin entry must be a table, found {}", item.type_str());
            let p = ConfigProblem::new(ProblemKind::WrongType, path, message)
                .with_hint("write each entry as a [[plugin]] table");
            return self.report(At::Source(si), p);
        };
        let skip = poisoned.contains(&path);
        let enabled_unset = poisoned.contains(&join_key(&path, "enabled"));
        let (mut entry, problems) = raw_entry(t, si, path, enabled_unset);
        entry.skip_build = skip;
        for p in problems {
            self.report(At::Source(si), p);
        }
        self.raw.push(entry);
    }

    /// Phase 2: entries from code come after the files'.
    fn add_code_entries(&mut self, code_entries: Vec<PluginEntry>) {
        let code_source = self.sources.len();
        self.sources.push(Source::code());
        for entry in code_entries {
            let code_keys = entry.table.keys().cloned().collect();
            self.raw.push(RawEntry {
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
    }

    /// Phase 3: overrides from code, by instance name.
    fn apply_overrides(
        &mut self,
        overrides: Vec<(String, String, toml::Value)>,
        enabled: Vec<(String, bool)>,
    ) {
        for (instance, key, value) in overrides {
            match self.instance(&instance) {
                Some(e) => {
                    e.table.insert(key.clone(), value);
                    e.code_keys.insert(key);
                }
                None => self.no_instance("set", &instance),
            }
        }
        for (instance, on) in enabled {
            match self.instance(&instance) {
                Some(e) => e.enabled = on,
                None => self.no_instance("enabled", &instance),
            }
        }
    }

    fn instance(&mut self, name: &str) -> Option<&mut RawEntry> {
        self.raw
            .iter_mut()
            .find(|e| e.instance_name().as_deref() == Some(name))
    }

    fn no_instance(&mut self, call: &str, instance: &str) {
        let p = ConfigProblem::new(
            ProblemKind::InvalidValue,
            "",
            format!("`{call}` names no instance `{instance}`"),
        )
        .with_hint("name the instance by its `name`, or by its `use` when it has no name");
        self.report(At::Code, p);
    }

    /// Phase 3b: at most [`MAX_ENTRIES`] entries, and no list or string past its bound
    /// ([`MAX_LIST_ITEMS`], [`MAX_STRING_BYTES`]). Each entry past the static depth adds a
    /// level of nesting to every request's poll, so an unbounded count would overflow a
    /// worker thread's stack on the first request instead of failing here. Entries past the
    /// limit, and entries with an oversized value, are not built.
    fn check_bounds(&mut self) {
        if self.raw.len() > MAX_ENTRIES {
            let message = format!(
                "the stack has {} entries; at most {MAX_ENTRIES} are allowed",
                self.raw.len()
            );
            let p = ConfigProblem::new(ProblemKind::InvalidValue, "", message)
                .with_hint("merge entries, or scope one entry with `when` instead of repeating it");
            self.report(At::Entry(MAX_ENTRIES), p);
            self.raw.truncate(MAX_ENTRIES);
        }
        for i in 0..self.raw.len() {
            let mut problems = Vec::new();
            for (key, value) in &self.raw[i].table {
                oversized(value, key, &mut problems);
            }
            self.raw[i].skip_build |= !problems.is_empty();
            problems
                .into_iter()
                .for_each(|p| self.report(At::Entry(i), p));
        }
        let mut problems = Vec::new();
        for (key, value) in &self.client_ip_table {
            oversized(value, &join_key("client_ip", key), &mut problems);
        }
        if let Some(si) = self.client_ip_source.filter(|_| !problems.is_empty()) {
            self.client_ip_table.clear();
            problems
                .into_iter()
                .for_each(|p| self.report(At::Source(si), p));
        }
    }

    /// Phase 4: the shared client-IP resolver, from code or from the `[client_ip]` tables.
    fn client_ip(&mut self, from_code: Option<ClientIpResolver>) -> ClientIpResolver {
        if let Some(r) = from_code {
            return r;
        }
        let table = std::mem::take(&mut self.client_ip_table);
        let res = registry::deserialize::<ClientIpConfig>(table)
            .and_then(ClientIpResolver::try_from)
            .map_err(|e| e.nest("client_ip"));
        res.unwrap_or_else(|e| {
            match self.client_ip_source {
                Some(si) => self.report_all(At::Source(si), e),
                None => self.problems.extend(e.into_problems()),
            }
            ClientIpResolver::new()
        })
    }

    /// Phase 5: instance names are unique.
    fn check_names(&mut self) {
        let mut seen: HashMap<String, usize> = HashMap::new();
        for i in 0..self.raw.len() {
            let e = &self.raw[i];
            let Some(name) = e.instance_name() else {
                continue;
            };
            let Some(first) = seen.get(&name) else {
                seen.insert(name, i);
                continue;
            };
            let key = if e.name.is_some() { "name" } else { "use" };
            let p = ConfigProblem::new(
                ProblemKind::DuplicateName,
                key,
                format!("instance name `{name}` is also used by plugin[{first}]"),
            )
            .with_hint("give each instance a unique `name = \"...\"`");
            self.report(At::Entry(i), p);
        }
    }

    /// Phase 6: builds every entry, enabled or not, so that a disabled entry is valid when
    /// enabled; the enabled ones become steps.
    fn build_entries(
        &mut self,
        registry: &Registry,
        client_ip: &Arc<ClientIpResolver>,
    ) -> (Vec<EntryInfo>, Vec<Step>) {
        let mut entries = Vec::new();
        let mut steps = Vec::new();
        for i in 0..self.raw.len() {
            let e = &self.raw[i];
            let (Some(kind), false) = (e.kind.clone(), e.skip_build) else {
                continue;
            };
            let Some(factory) = registry.get(&kind) else {
                self.report(At::Entry(i), registry.unknown(&kind));
                continue;
            };
            let name = e.instance_name().unwrap_or_default();
            let ctx = PluginContext::new(client_ip.clone(), name.clone(), i);
            let (enabled, mut table) = (e.enabled, e.table.clone());
            let when = table.remove("when").map(When::parse).transpose();
            let (when, built) = match (when, factory(table, &ctx)) {
                (Ok(when), Ok(built)) => (when.flatten().map(Arc::new), built),
                (when, built) => {
                    let errors = [when.err(), built.err()];
                    errors
                        .into_iter()
                        .flatten()
                        .for_each(|e| self.report_all(At::Entry(i), e));
                    continue;
                }
            };
            entries.push(EntryInfo {
                index: i,
                custom: !Registry::is_built_in(&kind),
                kind,
                name,
                enabled,
                summary: built.summary,
                when: when.as_ref().map(|w| w.describe()),
            });
            if enabled {
                steps.push(Step {
                    layer: built.layer,
                    when,
                });
            }
        }
        (entries, steps)
    }
}

impl RawEntry {
    /// The instance name: `name`, or the `use` name when it has none.
    fn instance_name(&self) -> Option<String> {
        self.name.clone().or_else(|| self.kind.clone())
    }
}

/// Splits a `[[plugin]]` table into its stack keys (`use`, `name`, `enabled`) and the
/// plugin's own table.
/// A stack file's text; an I/O error or the first byte that is not UTF-8 (located) is a
/// problem.
fn read_text(path: &Path) -> Result<String, ConfigError> {
    let bytes = std::fs::read(path)
        .map_err(|e| ConfigError::new(ProblemKind::Io, "", format!("cannot read the file: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let (line, column) = line_col(e.as_bytes(), at);
        let byte = e.as_bytes()[at];
        let mut p = ConfigProblem::new(
            ProblemKind::Syntax,
            "",
            format!("the file is not UTF-8 text (byte 0x{byte:02x})"),
        )
        .with_hint("TOML files are UTF-8; save the file as UTF-8");
        p.location.line = Some(line);
        p.location.column = Some(column);
        p.into()
    })
}

/// The entry at `path`; `enabled_unset` when its `enabled` is a `${VAR}` already reported as
/// unset (its text is not echoed as a second problem).
fn raw_entry(
    mut t: toml::Table,
    source: usize,
    path: String,
    enabled_unset: bool,
) -> (RawEntry, Vec<ConfigProblem>) {
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
        Some(_) if enabled_unset => true,
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
