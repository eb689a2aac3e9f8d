//! [`StatsLayer`]: the settings, and the registry built from them.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use ipnet::IpNet;
use tower_layer::Layer;
use tower_plugins_core::{
    ClientIpResolver, ConfigError, ProblemKind, Problems, count_in, parse_cidr,
};

use crate::registry::{Registry, Snapshot};
use crate::route::Route;
use crate::template::Template;
use crate::{Collector, MetricNames, Stats};

/// The default cap on distinct routes.
pub const DEFAULT_MAX_ROUTES: usize = 100;

/// The most routes `max_routes` may ask for: each route recorded holds its counters per
/// thread shard, and every route is a block of the Prometheus text.
pub const MAX_ROUTES: usize = 10_000;

/// Who may read the endpoints.
#[derive(Clone)]
pub(crate) struct Access {
    /// Networks allowed; `None` lets any address through (a token is then required).
    pub(crate) allow: Option<Vec<IpNet>>,
    pub(crate) token: Option<Arc<str>>,
    pub(crate) client_ip: Arc<ClientIpResolver>,
}

impl Access {
    pub(crate) fn allows(&self, ip: Option<IpAddr>) -> bool {
        match &self.allow {
            None => true,
            Some(nets) => ip.is_some_and(|ip| {
                let ip = ip.to_canonical();
                nets.iter().any(|n| n.contains(&ip))
            }),
        }
    }
}

#[derive(Clone)]
struct Settings {
    service: Option<String>,
    max_routes: usize,
    templates: Vec<Template>,
    endpoint: Option<String>,
    metrics_endpoint: Option<String>,
    allow: Option<Vec<IpNet>>,
    token: Option<Arc<str>>,
    client_ip: Arc<ClientIpResolver>,
    collectors: Vec<(Box<str>, Arc<dyn Collector>)>,
    metric_names: Option<MetricNames>,
}

/// The parts of a registry that answer requests to the endpoints.
pub(crate) struct Endpoints {
    pub(crate) stats: Option<Box<str>>,
    pub(crate) metrics: Option<Box<str>>,
    pub(crate) access: Access,
}

/// What a service reads on every request: built once per layer and kept for the life of
/// the process.
pub(crate) struct Shared {
    pub(crate) registry: Registry,
    pub(crate) endpoints: Endpoints,
    /// The names of the `metrics` facade, when the figures are emitted through it.
    pub(crate) facade: Option<MetricNames>,
}

/// Records per-route request stats and serves them. See the [crate docs](crate).
///
/// Every clone of the layer, and every service it makes, records into one registry, made when
/// the layer first wraps a service (or is asked for a [`StatsHandle`]) and kept for the life
/// of the process, as a metrics recorder is: build layers at startup, not per request. A
/// setter called after that starts a fresh registry.
#[derive(Clone)]
#[must_use]
pub struct StatsLayer {
    settings: Arc<Settings>,
    shared: Arc<OnceLock<&'static Shared>>,
}

impl std::fmt::Debug for StatsLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsLayer")
            .field("max_routes", &self.settings.max_routes)
            .field("endpoint", &self.settings.endpoint)
            .field("metrics_endpoint", &self.settings.metrics_endpoint)
            .finish_non_exhaustive()
    }
}

impl Default for StatsLayer {
    fn default() -> Self {
        Self::new()
    }
}

fn loopback() -> Vec<IpNet> {
    vec![
        "127.0.0.0/8".parse().expect("a valid network"),
        "::1/128".parse().expect("a valid network"),
    ]
}

impl StatsLayer {
    /// Refuses an endpoint path the other endpoint already has (one of them would never be
    /// served).
    fn distinct_from(
        &self,
        what: &str,
        path: &str,
        other: Option<&str>,
    ) -> Result<(), ConfigError> {
        if other != Some(path) {
            return Ok(());
        }
        Err(ConfigError::new(
            ProblemKind::Conflict,
            what,
            format!("`endpoint` and `metrics_endpoint` are both {path:?}"),
        )
        .with_hint("serve the JSON and Prometheus text at two paths, such as /stats and /metrics"))
    }
}

fn check_path(what: &str, path: &str) -> Result<Box<str>, ConfigError> {
    if !path.starts_with('/') || path.contains(['?', '#']) {
        return Err(ConfigError::new(
            ProblemKind::InvalidValue,
            what,
            format!("invalid endpoint path {path:?}"),
        )
        .with_hint("write a path such as \"/admin/stats\""));
    }
    Ok(path.into())
}

impl StatsLayer {
    /// Stats for every route, up to [`DEFAULT_MAX_ROUTES`] of them, with no endpoint.
    pub fn new() -> Self {
        StatsLayer {
            settings: Arc::new(Settings {
                service: None,
                max_routes: DEFAULT_MAX_ROUTES,
                templates: Vec::new(),
                endpoint: None,
                metrics_endpoint: None,
                allow: None,
                token: None,
                client_ip: Arc::new(ClientIpResolver::new()),
                collectors: Vec::new(),
                metric_names: None,
            }),
            shared: Arc::default(),
        }
    }

    fn map(self, f: impl FnOnce(&mut Settings)) -> Self {
        let mut s = (*self.settings).clone();
        f(&mut s);
        StatsLayer {
            settings: Arc::new(s),
            shared: Arc::default(),
        }
    }

    /// A name for the service, shown on the dashboard.
    pub fn service(self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.map(|s| s.service = Some(name))
    }

    /// The most distinct routes recorded (templates included); requests to more are counted
    /// under one `other` route, and the overflow is counted.
    ///
    /// # Errors
    /// A [`ConfigError`] for 0, more than [`MAX_ROUTES`], or fewer than the route templates
    /// already given.
    pub fn max_routes(self, max: usize) -> Result<Self, ConfigError> {
        let templates = self.settings.templates.len();
        let least = templates.max(1) as u64;
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        let max = count_in(max, least..=MAX_ROUTES as u64).map_err(|e| {
            e.nest("max_routes")
                .with_hint(format!("there are {templates} route templates"))
        })? as usize;
        Ok(self.map(|s| s.max_routes = max))
    }

    /// Route templates in axum's syntax (`/api/items/{id}`, `/files/{*path}`) for servers
    /// that do not say which route matched: a request is counted under the first template
    /// its path matches, else under `unmatched`. axum's `MatchedPath`, when present (the
    /// `axum` feature, with the layer inside the router), takes precedence.
    ///
    /// # Errors
    /// Every invalid template, keyed `routes[i]`.
    pub fn routes<I, S>(self, templates: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut problems = Problems::new();
        let mut parsed = Vec::new();
        for (i, t) in templates.into_iter().enumerate() {
            if let Some(t) = problems.check(&format!("routes[{i}]"), Template::parse(t.as_ref())) {
                parsed.push(t);
            }
        }
        if parsed.len() > self.settings.max_routes {
            problems.push(
                ProblemKind::Conflict,
                "routes",
                format!(
                    "{} route templates but max_routes is {}",
                    parsed.len(),
                    self.settings.max_routes
                ),
            );
        }
        problems.finish(())?;
        Ok(self.map(|s| s.templates = parsed))
    }

    /// Serves the JSON snapshot at `path` (`GET`), or the dashboard when the client asks for
    /// `text/html`. Off unless set.
    ///
    /// # Errors
    /// A [`ConfigError`] for a path that does not start with `/`, or that is the
    /// [`metrics_endpoint`](Self::metrics_endpoint)'s.
    pub fn endpoint(self, path: &str) -> Result<Self, ConfigError> {
        let p = check_path("endpoint", path)?;
        self.distinct_from("endpoint", &p, self.settings.metrics_endpoint.as_deref())?;
        Ok(self.map(|s| s.endpoint = Some(p.into())))
    }

    /// Serves Prometheus text at `path`. Off unless set.
    ///
    /// # Errors
    /// A [`ConfigError`] for a path that does not start with `/`, or that is the
    /// [`endpoint`](Self::endpoint)'s.
    pub fn metrics_endpoint(self, path: &str) -> Result<Self, ConfigError> {
        let p = check_path("metrics_endpoint", path)?;
        self.distinct_from("metrics_endpoint", &p, self.settings.endpoint.as_deref())?;
        Ok(self.map(|s| s.metrics_endpoint = Some(p.into())))
    }

    /// The networks whose clients may read the endpoints (through the client-address
    /// resolution of [`client_ip`](Self::client_ip)). Default: loopback only, unless a
    /// [`token`](Self::token) is set, which then suffices alone. An empty list allows
    /// every address (set a token then).
    ///
    /// # Errors
    /// Every invalid CIDR, keyed `allow[i]`.
    pub fn allow<I, S>(self, cidrs: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut problems = Problems::new();
        let mut nets = Vec::new();
        for (i, c) in cidrs.into_iter().enumerate() {
            if let Some(n) = problems.check(&format!("allow[{i}]"), parse_cidr(c.as_ref())) {
                nets.push(n);
            }
        }
        problems.finish(())?;
        Ok(self.map(|s| s.allow = Some(nets)))
    }

    /// Requires `Authorization: Bearer <token>` on the endpoints (401 without it).
    pub fn token(self, token: impl Into<String>) -> Self {
        let t: Arc<str> = token.into().into();
        self.map(|s| s.token = Some(t))
    }

    /// How the client's address is found for [`allow`](Self::allow) (the stack passes its
    /// `[client_ip]` section). Default: the peer address.
    pub fn client_ip(self, resolver: impl Into<Arc<ClientIpResolver>>) -> Self {
        let resolver = resolver.into();
        self.map(|s| s.client_ip = resolver)
    }

    /// Registers a custom collector under `name` (its figures appear under
    /// `collectors.<name>`). A later one with the same name replaces it.
    pub fn collector(self, name: impl Into<String>, collector: impl Collector) -> Self {
        let name: Box<str> = name.into().into();
        let c: Arc<dyn Collector> = Arc::new(collector);
        self.map(|s| {
            s.collectors.retain(|(n, _)| *n != name);
            s.collectors.push((name, c));
        })
    }

    /// Also emits the figures through the [`metrics`] facade under `names` (`None`: not,
    /// the default), so that whatever recorder the application installed (a Prometheus,
    /// OpenTelemetry or StatsD exporter) receives them. Handles are registered the first time
    /// a route needs them and kept, so install the recorder before the first request: a
    /// handle registered with no recorder installed stays a no-op.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use http::{Request, Response};
    /// use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    /// use tower::{Layer, ServiceExt, service_fn};
    /// use tower_plugins_stats::{MetricNames, StatsLayer};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // Any recorder: here metrics-util's, for this thread.
    /// let recorder = DebuggingRecorder::new();
    /// let snapshotter = recorder.snapshotter();
    /// let _guard = metrics::set_default_local_recorder(&recorder);
    ///
    /// let layer = StatsLayer::new()
    ///     .routes(["/items/{id}"])?
    ///     .metrics_facade(MetricNames::Prometheus);
    /// let svc = layer.layer(service_fn(|_req: Request<String>| async {
    ///     Ok::<_, Infallible>(Response::new(String::from("ok")))
    /// }));
    /// let res = svc.oneshot(Request::get("/items/7").body(String::new())?).await?;
    /// http_body_util::BodyExt::collect(res.into_body()).await?;
    ///
    /// let total = snapshotter.snapshot().into_vec().into_iter().find_map(|(key, _, _, value)| {
    ///     (key.key().name() == "http_requests_total").then_some(value)
    /// });
    /// assert_eq!(total, Some(DebugValue::Counter(1)));
    /// # Ok(()) }
    /// ```
    pub fn metrics_facade(self, names: impl Into<Option<MetricNames>>) -> Self {
        let names = names.into();
        self.map(|s| s.metric_names = names)
    }

    pub(crate) fn shared(&self) -> &'static Shared {
        self.shared.get_or_init(|| {
            let s = &*self.settings;
            let allow = match (&s.allow, &s.token) {
                (Some(nets), _) if nets.is_empty() => None,
                (Some(nets), _) => Some(nets.clone()),
                (None, Some(_)) => None,
                (None, None) => Some(loopback()),
            };
            let templates = s
                .templates
                .iter()
                .map(|t| (t.clone(), Route::new(&t.text)))
                .collect::<Vec<_>>();
            let registry = Registry::new(
                s.service.as_deref(),
                s.max_routes,
                templates,
                s.collectors.clone(),
            );
            if let Some(names) = s.metric_names {
                names.describe();
            }
            Box::leak(Box::new(Shared {
                facade: s.metric_names,
                registry,
                endpoints: Endpoints {
                    stats: s.endpoint.as_deref().map(Into::into),
                    metrics: s.metrics_endpoint.as_deref().map(Into::into),
                    access: Access {
                        allow,
                        token: s.token.clone(),
                        client_ip: s.client_ip.clone(),
                    },
                },
            }))
        })
    }

    /// A handle on the figures, to read them from code.
    pub fn handle(&self) -> StatsHandle {
        StatsHandle {
            shared: self.shared(),
        }
    }

    /// One line per setting, for the stack's `describe`.
    pub fn describe(&self) -> String {
        let s = &*self.settings;
        format!(
            "stats: max_routes {}, {} templates, {} collectors, endpoint {}, metrics {}, \
             metrics facade {}",
            s.max_routes,
            s.templates.len(),
            s.collectors.len(),
            s.endpoint.as_deref().unwrap_or("off"),
            s.metrics_endpoint.as_deref().unwrap_or("off"),
            match s.metric_names {
                None => "off",
                Some(MetricNames::Prometheus) => "prometheus",
                Some(MetricNames::OpenTelemetry) => "opentelemetry",
            },
        )
    }
}

impl<S> Layer<S> for StatsLayer {
    type Service = Stats<S>;

    fn layer(&self, inner: S) -> Stats<S> {
        Stats {
            inner,
            shared: self.shared(),
        }
    }
}

/// Reads the figures of a [`StatsLayer`] from code.
#[derive(Clone, Copy)]
pub struct StatsHandle {
    shared: &'static Shared,
}

impl std::fmt::Debug for StatsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsHandle").finish_non_exhaustive()
    }
}

impl StatsHandle {
    /// Every route's figures now.
    pub fn snapshot(&self) -> Snapshot {
        self.shared.registry.snapshot()
    }

    /// The figures as Prometheus text.
    pub fn prometheus(&self) -> String {
        crate::prometheus::render(&self.shared.registry)
    }
}
