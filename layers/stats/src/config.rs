//! [`StatsConfig`]: the `use = "stats"` table of a plugin stack.

use serde::Deserialize;
use tower_plugins_core::{ClientIpResolver, ConfigError, ProblemKind, Problems};

use crate::{LargeResponses, MetricNames, StatsLayer};

/// The stats plugin's configuration, as written in a plugin stack file: its keys and defaults are
/// in the [crate docs](crate).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct StatsConfig {
    /// A name shown on the dashboard.
    pub service: Option<String>,
    /// Route templates, for servers that do not say which route matched.
    pub routes: Vec<String>,
    /// Default: 100.
    pub max_routes: Option<i64>,
    /// The JSON and dashboard endpoint; off unless set.
    pub endpoint: Option<String>,
    /// The Prometheus endpoint; off unless set.
    pub metrics_endpoint: Option<String>,
    /// Networks whose clients may read the endpoints.
    pub allow: Option<Vec<String>>,
    /// The environment variable holding the bearer token the endpoints require.
    pub token_env: Option<String>,
    /// Registers the `large_responses` collector with this threshold.
    pub large_response_bytes: Option<u64>,
    /// Also emits the figures through the `metrics` facade, under these names.
    pub metrics_facade: Option<MetricNames>,
}

impl StatsConfig {
    /// The layer, with the stack's client-address resolution for `allow`.
    ///
    /// # Errors
    /// Every problem at once: invalid templates, CIDRs and endpoint paths, a `max_routes`
    /// of 0 (or below the templates), a token variable that is not set or empty.
    pub fn build(
        self,
        client_ip: impl Into<std::sync::Arc<ClientIpResolver>>,
    ) -> Result<StatsLayer, ConfigError> {
        let mut p = Problems::new();
        let mut layer = StatsLayer::new().client_ip(client_ip);
        if let Some(s) = self.service {
            layer = layer.service(s);
        }
        // Each fallible setter: on success the layer moves on, on failure the problem is kept
        // and the layer stays as it was, so every problem is reported at once.
        let mut set =
            |layer: &mut StatsLayer, f: &dyn Fn(StatsLayer) -> Result<StatsLayer, ConfigError>| {
                if let Some(l) = p.check("", f(layer.clone())) {
                    *layer = l;
                }
            };
        if let Some(n) = self.max_routes {
            // A negative count is refused as 0 is.
            let n = usize::try_from(n).unwrap_or(0);
            set(&mut layer, &|l| l.max_routes(n));
        }
        set(&mut layer, &|l| l.routes(&self.routes));
        if let Some(e) = &self.endpoint {
            set(&mut layer, &|l| l.endpoint(e));
        }
        if let Some(e) = &self.metrics_endpoint {
            set(&mut layer, &|l| l.metrics_endpoint(e));
        }
        if let Some(allow) = &self.allow {
            set(&mut layer, &|l| l.allow(allow));
        }
        if let Some(var) = self.token_env {
            match std::env::var(&var) {
                Ok(t) if !t.trim().is_empty() => layer = layer.token(t.trim()),
                _ => p.add(
                    "token_env",
                    ConfigError::new(
                        ProblemKind::MissingEnv,
                        "",
                        format!("the environment variable {var:?} (the stats token) is not set"),
                    )
                    .with_hint("set it to a long random string, or remove token_env"),
                ),
            }
        }
        if let Some(n) = self.large_response_bytes {
            layer = layer.collector("large_responses", LargeResponses::new(n));
        }
        p.finish(layer.metrics_facade(self.metrics_facade))
    }
}

impl tower_plugins_core::Plugin for crate::StatsLayer {
    type Config = StatsConfig;
    type Service<S> = crate::Stats<S>;
    type Future<F> = crate::ResponseFuture<F>;
    type Body<B> = crate::ResponseBody<B>;
    type Hooks = crate::StatsHooks;

    fn from_config(
        config: StatsConfig,
        ctx: &tower_plugins_core::PluginContext,
    ) -> Result<Self, ConfigError> {
        config.build(ctx.client_ip().clone())
    }

    fn describe(&self) -> String {
        crate::StatsLayer::describe(self)
    }

    fn hooks(&self) -> Option<crate::StatsHooks> {
        Some(crate::StatsHooks {
            shared: self.shared(),
        })
    }
}
