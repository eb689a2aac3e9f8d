//! [`RateLimitConfig`]: the `use = "rate_limit"` table of a plugin stack.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use ipnet::IpNet;
use serde::Deserialize;
use tower_plugins_core::{
    BackendConfig, ClientIpResolver, ConfigError, HumanDuration, PathSet, ProblemKind, Problems,
    Quota, count_in, duration_in, header_name, parse_cidr, parse_method, parse_quota,
};

use crate::{Count, KeySource, OnBackendError, RateLimitLayer, Rule, UnknownKey};

/// A key kind as written in TOML: `"client_ip"`, `"global"`, `"user"`, or
/// `{ header = "x-api-key" }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum KeyConfig {
    /// `"client_ip"`, `"global"` or `"user"`.
    Named(String),
    /// A request header.
    Header {
        /// The header's name.
        header: String,
    },
}

/// One `[[plugin.rules]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RuleConfig {
    /// The policy name in the `RateLimit` headers (letters, digits, `_`, `-`, `.`, `:`).
    pub name: Option<String>,
    /// Path patterns; empty for all.
    pub paths: Vec<String>,
    /// Methods; empty for all.
    pub methods: Vec<String>,
    /// `"5/min"`: required.
    pub quota: Option<String>,
    /// Requests admitted at once; default: the quota's count.
    pub burst: Option<i64>,
    /// Default: the plugin's `key`.
    pub key: Option<KeyConfig>,
    /// `"all"` (default) or `"failures"`.
    pub count: Option<String>,
    /// Default: the plugin's `shadow`.
    pub shadow: Option<bool>,
}

/// The rate limiter's configuration, as written in a plugin stack file: its keys and defaults are
/// in the [crate docs](crate).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// The `default` rule's quota.
    pub quota: Option<String>,
    /// The `default` rule's burst.
    pub burst: Option<i64>,
    /// Where the `default` rule applies.
    pub paths: Vec<String>,
    /// The methods the `default` rule applies to.
    pub methods: Vec<String>,
    /// The `default` rule's count mode.
    pub count: Option<String>,
    /// The key of rules without their own.
    pub key: KeyConfig,
    /// IPv4 grouping for `client_ip` keys.
    pub ipv4_prefix: i64,
    /// IPv6 grouping for `client_ip` keys.
    pub ipv6_prefix: i64,
    /// Requests without a usable key.
    pub unknown_key: String,
    /// Count and report, never refuse (rules may override).
    pub shadow: bool,
    /// Paths never limited.
    pub exempt_paths: Vec<String>,
    /// Client networks never limited.
    pub exempt_ips: Vec<String>,
    /// `RateLimit-Policy` and `RateLimit` headers.
    pub headers: bool,
    /// `X-RateLimit-*` headers.
    pub legacy_headers: bool,
    /// Keys kept per rule.
    pub max_keys: i64,
    /// How often full buckets are swept from memory.
    pub sweep_interval: Option<HumanDuration>,
    /// Where buckets live.
    pub backend: BackendConfig,
    /// `"allow"` or `"deny"`.
    pub on_backend_error: String,
    /// More rules.
    pub rules: Vec<RuleConfig>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            quota: None,
            burst: None,
            paths: Vec::new(),
            methods: Vec::new(),
            count: None,
            key: KeyConfig::Named("client_ip".to_owned()),
            ipv4_prefix: 32,
            ipv6_prefix: 64,
            unknown_key: "shared".to_owned(),
            shadow: false,
            exempt_paths: Vec::new(),
            exempt_ips: Vec::new(),
            headers: true,
            legacy_headers: false,
            max_keys: crate::DEFAULT_MAX_KEYS as i64,
            sweep_interval: None,
            backend: BackendConfig::default(),
            on_backend_error: "allow".to_owned(),
            rules: Vec::new(),
        }
    }
}

/// Accepts `value` if it is one of `choices`, else records a problem naming the nearest.
fn choice<'a>(p: &mut Problems, key: &str, value: &str, choices: &[&'a str]) -> Option<&'a str> {
    p.check(key, tower_plugins_core::choice(value, choices))
}

fn burst(p: &mut Problems, key: &str, b: Option<i64>) -> Option<NonZeroU32> {
    let b = b?;
    match u32::try_from(b).ok().and_then(NonZeroU32::new) {
        Some(n) => Some(n),
        None => {
            p.push(
                ProblemKind::InvalidValue,
                key,
                format!(
                    "burst must be a whole number from 1 to {}, not {b}",
                    u32::MAX
                ),
            );
            None
        }
    }
}

fn key_source(p: &mut Problems, key: &str, k: &KeyConfig, v4: u8, v6: u8) -> Option<KeySource> {
    match k {
        KeyConfig::Named(n) => match choice(p, key, n, &["client_ip", "global", "user"])? {
            "client_ip" => Some(KeySource::ClientIp {
                v4_prefix: v4,
                v6_prefix: v6,
            }),
            "global" => Some(KeySource::Global),
            _ => Some(KeySource::User),
        },
        KeyConfig::Header { header } => p
            .check(&format!("{key}.header"), header_name(header))
            .map(KeySource::Header),
    }
}

fn methods(p: &mut Problems, key: &str, list: &[String]) -> Vec<Method> {
    (list.iter().enumerate())
        .filter_map(|(i, m)| p.check(&format!("{key}[{i}]"), parse_method(m)))
        .collect()
}

fn count(p: &mut Problems, key: &str, c: Option<&str>) -> Count {
    match c.map(|c| choice(p, key, c, &["all", "failures"])) {
        Some(Some("failures")) => Count::Failures,
        _ => Count::All,
    }
}

fn valid_name(n: &str) -> bool {
    (1..=64).contains(&n.len())
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b))
}

struct RuleParts<'a> {
    key: &'a str,
    quota: &'a Option<String>,
    burst: Option<i64>,
    paths: &'a [String],
    methods: &'a [String],
    count: Option<&'a str>,
}

fn rule(p: &mut Problems, name: String, parts: RuleParts<'_>) -> Option<Rule> {
    let k = parts.key;
    let join = |s: &str| tower_plugins_core::join_key(k, s);
    let quota = match parts.quota {
        Some(q) => p.check(&join("quota"), parse_quota(q)),
        None => {
            p.push(
                ProblemKind::MissingKey,
                join("quota"),
                "a rule needs a quota, such as \"100/min\"",
            );
            None
        }
    };
    let burst = burst(p, &join("burst"), parts.burst);
    if let (Some(q), Some(b)) = (&quota, burst) {
        if q.interval().saturating_mul(b.get()) > Quota::MAX_PERIOD {
            let message = format!(
                "a burst of {b} at {q} takes {} to refill, past the 366 days a bucket may span",
                tower_plugins_core::HumanDuration(q.interval().saturating_mul(b.get()))
            );
            p.push(ProblemKind::InvalidValue, join("burst"), message);
        }
    }
    let paths = p.check(&join("paths"), PathSet::new(parts.paths));
    let methods = methods(p, &join("methods"), parts.methods);
    let count = count(p, &join("count"), parts.count);
    let mut r = Rule::new(name, quota?)
        .paths(paths?)
        .methods(methods)
        .count(count);
    if let Some(b) = burst {
        r = r.burst(b);
    }
    Some(r)
}

impl RateLimitConfig {
    /// Builds the layer; the plugin stack passes its shared client-IP resolver.
    ///
    /// # Errors
    /// Every invalid value at once: missing, zero, negative or malformed quotas and bursts,
    /// unknown key kinds and policies, bad header names, path patterns, methods, CIDRs and
    /// prefix lengths, duplicate or malformed rule names, a malformed Redis URL (or a Redis
    /// backend without the `redis` feature), and a configuration with no rule at all.
    pub fn build(self, client_ip: Arc<ClientIpResolver>) -> Result<RateLimitLayer, ConfigError> {
        let mut p = Problems::new();
        let v4 = prefix(&mut p, "ipv4_prefix", self.ipv4_prefix, 32);
        let v6 = prefix(&mut p, "ipv6_prefix", self.ipv6_prefix, 128);
        let key = key_source(&mut p, "key", &self.key, v4, v6);
        let rules = self.rules_of(&mut p, v4, v6);
        let (unknown, on_error) = self.policies(&mut p, v4, v6);
        let exempt_paths = p.check("exempt_paths", PathSet::new(&self.exempt_paths));
        let exempt_ips: Vec<IpNet> = (self.exempt_ips.iter().enumerate())
            .filter_map(|(i, s)| p.check(&format!("exempt_ips[{i}]"), parse_cidr(s)))
            .collect();
        let (max_keys, sweep) = self.memory(&mut p);
        let backend = self.backend(&mut p);
        let parts = (
            key,
            exempt_paths,
            rules.into_iter().collect::<Option<Vec<_>>>(),
        );
        let (Some(key), Some(exempt_paths), Some(rules)) = p.finish(parts)? else {
            // Every part missing above recorded its problem; finish returned them.
            return Err(ConfigError::new(
                ProblemKind::InvalidValue,
                "",
                "invalid rate limit configuration",
            ));
        };
        let mut l = RateLimitLayer::from_rules(rules)
            .key(key)
            .client_ip(client_ip)
            .exempt_paths(exempt_paths)
            .exempt_ips(exempt_ips)
            .unknown_key(unknown)
            .shadow(self.shadow)
            .headers(self.headers)
            .legacy_headers(self.legacy_headers)
            .max_keys(max_keys)
            .on_backend_error(on_error);
        if let Some(s) = sweep {
            l = l.sweep_interval(s);
        }
        #[cfg(feature = "redis")]
        if let Some(r) = backend {
            l = l.redis(r);
        }
        #[cfg(not(feature = "redis"))]
        let () = backend;
        Ok(l)
    }

    /// The `default` rule (from the top-level keys) and the `[[plugin.rules]]`, each `None`
    /// where it had a problem.
    fn rules_of(&self, p: &mut Problems, v4: u8, v6: u8) -> Vec<Option<Rule>> {
        let mut rules = Vec::new();
        let mut names = std::collections::HashSet::new();
        if self.quota.is_some() {
            names.insert("default".to_owned());
            let parts = RuleParts {
                key: "",
                quota: &self.quota,
                burst: self.burst,
                paths: &self.paths,
                methods: &self.methods,
                count: self.count.as_deref(),
            };
            rules.push(rule(p, "default".to_owned(), parts));
        } else {
            self.no_default_rule(p);
        }
        for (i, rc) in self.rules.iter().enumerate() {
            rules.push(extra_rule(p, i, rc, &mut names, v4, v6));
        }
        rules
    }

    /// Without a `quota` there is no default rule: its other keys are conflicts, and some
    /// other rule must exist.
    fn no_default_rule(&self, p: &mut Problems) {
        for (k, set) in [
            ("burst", self.burst.is_some()),
            ("paths", !self.paths.is_empty()),
            ("methods", !self.methods.is_empty()),
            ("count", self.count.is_some()),
        ] {
            if set {
                let message = format!("`{k}` belongs to the default rule, which needs a `quota`");
                p.push(ProblemKind::Conflict, k, message);
            }
        }
        if self.rules.is_empty() {
            p.push(
                ProblemKind::MissingKey,
                "quota",
                "a rate limiter needs a `quota` or at least one [[plugin.rules]] entry",
            );
        }
    }

    /// `unknown_key` and `on_backend_error`.
    fn policies(&self, p: &mut Problems, v4: u8, v6: u8) -> (UnknownKey, OnBackendError) {
        let unknown_choices = ["shared", "client_ip", "allow", "deny"];
        let unknown = match choice(p, "unknown_key", &self.unknown_key, &unknown_choices) {
            Some("client_ip") => UnknownKey::ClientIp {
                v4_prefix: v4,
                v6_prefix: v6,
            },
            Some("allow") => UnknownKey::Allow,
            Some("deny") => UnknownKey::Deny,
            _ => UnknownKey::Shared,
        };
        let on_error = match choice(
            p,
            "on_backend_error",
            &self.on_backend_error,
            &["allow", "deny"],
        ) {
            Some("deny") => OnBackendError::Deny,
            _ => OnBackendError::Allow,
        };
        (unknown, on_error)
    }

    /// The memory backend's bounds: `max_keys` and `sweep_interval`.
    fn memory(&self, p: &mut Problems) -> (usize, Option<Duration>) {
        let max_keys = p.check(
            "max_keys",
            count_in(self.max_keys, 1..=crate::MAX_KEYS as u64),
        );
        let sweeps = Duration::from_millis(1)..=Duration::from_secs(3600);
        let sweep = (self.sweep_interval.map(HumanDuration::get))
            .and_then(|d| p.check("sweep_interval", duration_in(d, sweeps)));
        (max_keys.map_or(1, |n| n as usize), sweep)
    }

    /// The Redis settings of `backend = { redis = ... }`, `None` for memory.
    #[cfg(feature = "redis")]
    fn backend(&self, p: &mut Problems) -> Option<crate::RedisSettings> {
        self.backend.redis_settings(p, "backend")
    }

    /// Without the `redis` feature, only `"memory"`.
    #[cfg(not(feature = "redis"))]
    fn backend(&self, p: &mut Problems) {
        self.backend.memory_only(p, "backend", "rate-limit-redis");
    }
}

/// A prefix length from 1 to `max`; `max` (with a problem) otherwise.
fn prefix(p: &mut Problems, key: &str, v: i64, max: u8) -> u8 {
    match u8::try_from(v).ok().filter(|v| (1..=max).contains(v)) {
        Some(v) => v,
        None => {
            let message = format!("a prefix length from 1 to {max}, not {v}");
            p.push(ProblemKind::InvalidValue, key, message);
            max
        }
    }
}

/// The rule `rules[i]`: its name checked against the `names` so far (and added), its own key
/// and shadow setting over the plugin's.
fn extra_rule(
    p: &mut Problems,
    i: usize,
    rc: &RuleConfig,
    names: &mut std::collections::HashSet<String>,
    v4: u8,
    v6: u8,
) -> Option<Rule> {
    let at = format!("rules[{i}]");
    let name = rc.name.clone().unwrap_or_else(|| format!("rule{i}"));
    if !valid_name(&name) {
        let message =
            format!("{name:?}: a rule name is 1 to 64 letters, digits, `_`, `-`, `.` or `:`");
        p.push(ProblemKind::InvalidValue, format!("{at}.name"), message);
    } else if !names.insert(name.clone()) {
        let message = format!("two rules are named {name:?}");
        p.push(ProblemKind::DuplicateName, format!("{at}.name"), message);
    }
    let parts = RuleParts {
        key: &at,
        quota: &rc.quota,
        burst: rc.burst,
        paths: &rc.paths,
        methods: &rc.methods,
        count: rc.count.as_deref(),
    };
    let mut r = rule(p, name, parts);
    if let Some(k) = &rc.key {
        let src = key_source(p, &format!("{at}.key"), k, v4, v6);
        r = r.zip(src).map(|(r, k)| r.key(k));
    }
    if let Some(s) = rc.shadow {
        r = r.map(|r| r.shadow(s));
    }
    r
}

impl TryFrom<RateLimitConfig> for RateLimitLayer {
    type Error = ConfigError;

    /// Builds the layer with the peer address as the client's address (no trusted proxy).
    fn try_from(c: RateLimitConfig) -> Result<Self, ConfigError> {
        c.build(Arc::new(ClientIpResolver::new()))
    }
}

impl tower_plugins_core::Plugin for crate::RateLimitLayer {
    type Config = RateLimitConfig;
    type Service<S> = crate::RateLimit<S>;
    type Future<F> = crate::ResponseFuture<F>;
    type Body<B> = tower_plugins_core::PluginBody<B>;
    type Hooks = crate::RateLimitHooks;

    fn from_config(
        config: RateLimitConfig,
        ctx: &tower_plugins_core::PluginContext,
    ) -> Result<Self, ConfigError> {
        config.build(ctx.client_ip().clone())
    }

    fn describe(&self) -> String {
        crate::RateLimitLayer::describe(self)
    }

    /// With the memory backend only: over Redis the decision awaits.
    fn hooks(&self) -> Option<crate::RateLimitHooks> {
        let engine = self.engine();
        #[cfg(feature = "redis")]
        if engine.redis.is_some() {
            return None;
        }
        Some(crate::RateLimitHooks {
            engine: engine.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The config's defaults are the layer's: a config with only a quota builds what
    /// `RateLimitLayer::new(quota)` builds.
    #[test]
    fn config_defaults_are_the_layer_defaults() {
        let config = RateLimitConfig {
            quota: Some("10/s".to_owned()),
            ..RateLimitConfig::default()
        };
        let from_config = RateLimitLayer::try_from(config).unwrap();
        let by_hand = RateLimitLayer::new(parse_quota("10/s").unwrap());
        assert_eq!(format!("{from_config:?}"), format!("{by_hand:?}"));
        assert_eq!(from_config.describe(), by_hand.describe());
    }
}
