//! [`PluginStack`]: plugins composed in a configured order, from TOML and code, and the
//! tower types of the composed service.
//!
//! The stack's nouns:
//! - an **entry** is one `[[plugin]]` table (or a [`PluginEntry`] from code): a plugin kind,
//!   an instance name, `enabled`, `when` and the plugin's own keys;
//! - a **step** is a built, enabled entry: its layer and the requests it applies to;
//! - a **slot** is one position of the composed service: an enum holding any built-in
//!   plugin's service (or a pass-through, or an erased custom one) over the next slot;
//! - the **chain** is the slots, exactly as deep as the stack; from two entries on it is a
//!   **kept chain** (every level passes the body through and the stack keeps their futures
//!   until the body ends); steps past the eighth are composed erased inside the last slot.

mod builder;
mod built_in;
mod from_fn;
mod kept;
mod next;
mod registry;
mod run;
mod service;
mod slot;
mod source;
mod when;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use tower_layer::Layer;
use tower_plugins_core::{ClientIpResolver, ConfigError};

pub use builder::{MAX_ENTRIES, MAX_LIST_ITEMS, MAX_STRING_BYTES, PluginStackBuilder};
pub use from_fn::{FromFn, FromFnFuture, FromFnLayer, from_fn};
pub use next::Next;
pub use registry::CustomLayer;
pub use service::{PluginStackLayer, PluginStackService, ResponseBody, ResponseFuture};
pub use tower_plugins_core::PluginContext;

use registry::Step;

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

#[cfg(test)]
mod tests;
