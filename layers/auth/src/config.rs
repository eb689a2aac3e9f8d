//! [`AuthConfig`]: the `use = "auth"` table of a plugin stack.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use serde::Deserialize;
use tower_plugins_core::{
    BackendConfig, ClientIpResolver, ConfigError, HumanDuration, PathSet, ProblemKind, Problems,
    Quota, StringOr, choice, count_in, duration_in, parse_method, parse_quota,
};

use crate::{AuthLayer, CookieSettings, Rule, SameSite, Secret, StaticUsers, Unauthenticated};

/// `[plugin.cookie]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CookieConfig {
    /// The cookie's name.
    pub name: String,
    /// `Secure`.
    pub secure: bool,
    /// `"strict"`, `"lax"` or `"none"`.
    pub same_site: String,
    /// `Domain`; empty for a host-only cookie.
    pub domain: String,
    /// `Path`.
    pub path: String,
}

impl Default for CookieConfig {
    fn default() -> Self {
        CookieConfig {
            name: "__Host-id".to_owned(),
            secure: true,
            same_site: "lax".to_owned(),
            domain: String::new(),
            path: "/".to_owned(),
        }
    }
}

/// `[plugin.login]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoginConfig {
    /// `GET`: the login page; `POST`: the credentials.
    pub path: String,
    /// `POST`: logs out.
    pub logout_path: String,
    /// Where a login goes without a valid `next`.
    pub after_login: String,
    /// Where a logout goes.
    pub after_logout: String,
    /// `"built-in"` or `"app"` (the application serves `GET path`).
    pub page: String,
    /// The largest login body, in bytes.
    pub max_body: i64,
    /// Threads verifying passwords at once; 0 for the machine's parallelism.
    pub max_concurrent_hashes: i64,
}

impl Default for LoginConfig {
    fn default() -> Self {
        LoginConfig {
            path: "/auth/login".to_owned(),
            logout_path: "/auth/logout".to_owned(),
            after_login: "/".to_owned(),
            after_logout: "/auth/login".to_owned(),
            page: "built-in".to_owned(),
            max_body: 8192,
            max_concurrent_hashes: 0,
        }
    }
}

/// `[plugin.throttle]`: failed logins allowed, as quotas, or `"off"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThrottleConfig {
    /// Per (user name, client network). Default `"5/15min"`.
    pub per_user: String,
    /// Per user name from anywhere. Default `"100/hour"`.
    pub per_user_any: String,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            per_user: "5/15min".to_owned(),
            per_user_any: "100/hour".to_owned(),
        }
    }
}

fn quota_or_off(p: &mut Problems, key: &str, text: &str) -> Option<Quota> {
    if text.trim() == "off" {
        return None;
    }
    p.check(key, parse_quota(text))
}

/// What `[plugin.login]` sets beyond its paths, checked.
struct LoginParts {
    page: bool,
    max_body: Option<usize>,
    hash_threads: Option<usize>,
}

impl LoginConfig {
    /// Checks the paths (each a path on this site), `page`, `max_body` and
    /// `max_concurrent_hashes`.
    fn checked(&self, p: &mut Problems) -> LoginParts {
        for (key, path) in [
            ("login.path", &self.path),
            ("login.logout_path", &self.logout_path),
            ("login.after_login", &self.after_login),
            ("login.after_logout", &self.after_logout),
        ] {
            if crate::next::safe_next(path).is_none() {
                let message = format!("{path:?} is not a path on this site");
                p.push(ProblemKind::InvalidValue, key, message);
            }
        }
        let page = p.check("login.page", choice(&self.page, &["built-in", "app"]));
        let bodies = 64..=crate::MAX_LOGIN_BODY as u64;
        let threads = 0..=crate::MAX_HASH_THREADS as u64;
        LoginParts {
            page: page != Some("app"),
            max_body: p
                .check("login.max_body", count_in(self.max_body, bodies))
                .map(|n| n as usize),
            hash_threads: (p.check(
                "login.max_concurrent_hashes",
                count_in(self.max_concurrent_hashes, threads),
            ))
            .map(|n| n as usize),
        }
    }
}

/// A `[plugin.users]` entry's table form: `bob = { password = "$argon2id$...", roles = [...] }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// The argon2id PHC hash.
    pub password: String,
    /// The user's roles.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// One `[[plugin.rules]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RuleConfig {
    /// Path patterns the rule covers.
    pub paths: Vec<String>,
    /// Methods; empty for all.
    pub methods: Vec<String>,
    /// A role the user must have; empty for none.
    pub role: String,
    /// `"auto"`, `"redirect"` or `"401"`.
    pub unauthenticated: Option<String>,
}

/// The auth plugin's configuration, as written in a plugin stack file: its keys and defaults
/// are in the [crate docs](crate).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Required: the secret cookies are signed with, or `"generate"`.
    pub secret: Option<String>,
    /// Secrets that still verify cookies.
    pub previous_secrets: Vec<String>,
    /// `"memory"` (the default) or `{ redis = "redis://...", timeout, prefix }`.
    pub store: BackendConfig,
    /// `"deny"` (the default: 503) or `"anonymous"`: protected paths when the store fails.
    pub on_store_error: Option<String>,
    /// Sessions held in memory at most.
    pub max_sessions: Option<i64>,
    /// Default `"30m"`.
    pub idle_timeout: Option<HumanDuration>,
    /// Default `"12h"`.
    pub absolute_timeout: Option<HumanDuration>,
    /// Default `"1m"`.
    pub touch_interval: Option<HumanDuration>,
    /// A persistent cookie ("remember me") instead of a session cookie.
    pub persistent: bool,
    /// Paths no rule covers.
    pub public: Vec<String>,
    /// `"origin"` (the default) or `"off"`.
    pub csrf: Option<String>,
    /// Other origins allowed to send unsafe requests.
    pub trusted_origins: Vec<String>,
    /// `[plugin.cookie]`.
    pub cookie: CookieConfig,
    /// `[plugin.login]`.
    pub login: LoginConfig,
    /// `[plugin.throttle]`.
    pub throttle: ThrottleConfig,
    /// `[plugin.users]`: name = PHC, or name = { password, roles }.
    pub users: BTreeMap<String, StringOr<UserConfig>>,
    /// `[[plugin.rules]]`.
    pub rules: Vec<RuleConfig>,
}

fn secret(p: &mut Problems, key: &str, text: &str) -> Option<Secret> {
    if text.trim() == "generate" {
        tracing::warn!(
            "auth: `secret = \"generate\"`: sessions end when the process does and are not shared \
             between instances; set a secret of your own"
        );
        return Some(Secret::generate());
    }
    p.check(key, Secret::parse(text))
}

fn duration(
    p: &mut Problems,
    key: &str,
    d: Option<HumanDuration>,
    dflt: u64,
    max: u64,
) -> Duration {
    let d = d.map_or(Duration::from_secs(dflt), HumanDuration::get);
    let range = Duration::from_secs(1)..=Duration::from_secs(max);
    p.check(key, duration_in(d, range))
        .unwrap_or(Duration::from_secs(dflt))
}

impl AuthConfig {
    /// Builds the layer; the plugin stack passes its shared client-IP resolver.
    ///
    /// # Errors
    /// Every problem at once: a missing, short, weak or repeated secret; cookie settings a
    /// browser would drop; durations out of bounds or inconsistent; invalid PHC hashes and
    /// duplicate users; bad paths, methods and rules; a rule covering the login path.
    pub fn build(self, client_ip: Arc<ClientIpResolver>) -> Result<AuthLayer, ConfigError> {
        let mut p = Problems::new();
        let (current, previous) = self.secrets(&mut p);
        let cookie = self.cookie(&mut p);
        let (idle, absolute, touch) = self.timeouts(&mut p);
        let max_sessions = (self.max_sessions)
            .and_then(|n| p.check("max_sessions", count_in(n, 1..=crate::MAX_SESSIONS as u64)));
        let public = p.check("public", PathSet::new(&self.public));
        let per_user = quota_or_off(&mut p, "throttle.per_user", &self.throttle.per_user);
        let per_user_any =
            quota_or_off(&mut p, "throttle.per_user_any", &self.throttle.per_user_any);
        let users = self.users(&mut p);
        let rules = self.rules(&mut p);
        let csrf = p.check(
            "csrf",
            choice(self.csrf.as_deref().unwrap_or("origin"), &["origin", "off"]),
        );
        let login = self.login.checked(&mut p);
        let on_store_error = p.check(
            "on_store_error",
            choice(
                self.on_store_error.as_deref().unwrap_or("deny"),
                &["deny", "anonymous"],
            ),
        );
        let store = self.store(&mut p);
        let timeouts = crate::store::Timeouts {
            idle: idle.as_secs(),
            absolute: absolute.as_secs(),
            touch: touch.as_secs(),
        };
        crate::layer::cross_checks(&mut p, timeouts, &rules, &self.login.path);
        let (Some(current), Some(cookie), Some(public), Some(users)) =
            (current, cookie, public, users)
        else {
            return Err(p.finish(()).err().unwrap_or_else(|| {
                ConfigError::new(ProblemKind::InvalidValue, "", "invalid auth configuration")
            }));
        };
        let l = &self.login;
        let mut layer = AuthLayer::new(current)
            .previous_secrets(previous)
            .cookie(cookie)
            .persistent(self.persistent)
            .timeouts(idle, absolute, touch)
            .public(public)
            .static_users(users)
            .endpoints(&l.path, &l.logout_path, &l.after_login, &l.after_logout)
            .login_page(login.page)
            .csrf(
                csrf != Some("off"),
                self.trusted_origins.iter().map(|o| o.to_ascii_lowercase()),
            )
            .throttle(per_user, per_user_any)
            .client_ip(client_ip);
        if on_store_error == Some("anonymous") {
            layer = layer.on_store_error(crate::OnStoreError::Anonymous);
        }
        #[cfg(feature = "redis")]
        if let Some(r) = store {
            layer = layer.redis(r);
        }
        #[cfg(not(feature = "redis"))]
        let () = store;
        if let Some(n) = max_sessions {
            layer = layer.max_sessions(n as usize);
        }
        if let Some(n) = login.max_body {
            layer = layer.max_body(n);
        }
        if let Some(n) = login.hash_threads {
            layer = layer.hash_threads(n);
        }
        let layer = rules.into_iter().fold(layer, AuthLayer::rule);
        p.finish(layer)
    }

    /// The Redis settings of `store = { redis = ... }`, `None` for memory.
    #[cfg(feature = "redis")]
    fn store(&self, p: &mut Problems) -> Option<tower_plugins_core::RedisSettings> {
        self.store.redis_settings(p, "store")
    }

    /// Without the `redis` feature, only `"memory"`.
    #[cfg(not(feature = "redis"))]
    fn store(&self, p: &mut Problems) {
        self.store.memory_only(p, "store", "auth-redis");
    }

    /// `secret` (required; `"generate"` makes one for this process) and `previous_secrets`.
    fn secrets(&self, p: &mut Problems) -> (Option<Secret>, Vec<Secret>) {
        let current = match &self.secret {
            Some(s) => secret(p, "secret", s),
            None => {
                let message = "sessions need a `secret`: secret = \"${SESSION_SECRET}\"";
                p.push(ProblemKind::MissingKey, "secret", message);
                None
            }
        };
        let previous = (self.previous_secrets.iter().enumerate())
            .filter_map(|(i, s)| p.check(&format!("previous_secrets[{i}]"), Secret::parse(s)))
            .collect();
        (current, previous)
    }

    /// `idle_timeout`, `absolute_timeout` and `touch_interval`, each within its bounds.
    fn timeouts(&self, p: &mut Problems) -> (Duration, Duration, Duration) {
        let idle = duration(p, "idle_timeout", self.idle_timeout, 1800, 30 * 86_400);
        let absolute = duration(
            p,
            "absolute_timeout",
            self.absolute_timeout,
            43_200,
            366 * 86_400,
        );
        let touch = (self.touch_interval).map_or(Duration::from_secs(60), HumanDuration::get);
        let touches = Duration::ZERO..=Duration::from_secs(86_400);
        let touch = p
            .check("touch_interval", duration_in(touch, touches))
            .unwrap_or(Duration::from_secs(60));
        (idle, absolute, touch)
    }

    fn cookie(&self, p: &mut Problems) -> Option<CookieSettings> {
        let c = &self.cookie;
        let same_site = c.same_site.to_ascii_lowercase();
        let same_site = match p.check(
            "cookie.same_site",
            choice(&same_site, &["strict", "lax", "none"]),
        ) {
            Some("strict") => SameSite::Strict,
            Some("none") => SameSite::None,
            _ => SameSite::Lax,
        };
        let domain = (!c.domain.is_empty()).then_some(c.domain.as_str());
        p.check(
            "cookie",
            CookieSettings::new(&c.name, c.secure, same_site, domain, &c.path),
        )
    }

    fn users(&self, p: &mut Problems) -> Option<StaticUsers> {
        if self.users.is_empty() {
            let message = "nobody can log in: list users in [plugin.users]";
            p.push(ProblemKind::MissingKey, "users", message);
        }
        let mut users = StaticUsers::new();
        let mut ok = true;
        for (name, entry) in &self.users {
            let (phc, roles) = match entry {
                StringOr::String(phc) => (phc.as_str(), &[][..]),
                StringOr::Table(t) => (t.password.as_str(), &t.roles[..]),
            };
            match users
                .clone()
                .user(name, phc, roles.iter().map(String::as_str))
            {
                Ok(u) => users = u,
                Err(e) => {
                    p.add(&format!("users.{name}"), e);
                    ok = false;
                }
            }
        }
        ok.then_some(users)
    }

    fn rules(&self, p: &mut Problems) -> Vec<Rule> {
        let mut out = Vec::new();
        for (i, rc) in self.rules.iter().enumerate() {
            let at = |k: &str| format!("rules[{i}].{k}");
            if rc.paths.is_empty() {
                p.push(
                    ProblemKind::MissingKey,
                    at("paths"),
                    "a rule needs the paths it covers",
                );
            }
            let paths = p.check(&at("paths"), PathSet::new(&rc.paths));
            let methods: Vec<Method> = (rc.methods.iter().enumerate())
                .filter_map(|(j, m)| p.check(&format!("rules[{i}].methods[{j}]"), parse_method(m)))
                .collect();
            let how = rc.unauthenticated.as_deref().unwrap_or("auto");
            let how = match p.check(
                &at("unauthenticated"),
                choice(how, &["auto", "redirect", "401"]),
            ) {
                Some("redirect") => Unauthenticated::Redirect,
                Some("401") => Unauthenticated::Unauthorized,
                _ => Unauthenticated::Auto,
            };
            if let Some(paths) = paths {
                let mut r = Rule::new(paths).methods(methods).unauthenticated(how);
                if !rc.role.is_empty() {
                    r = r.role(rc.role.as_str());
                }
                out.push(r);
            }
        }
        out
    }
}

impl tower_plugins_core::Plugin for crate::AuthLayer {
    type Config = AuthConfig;
    type Service<S> = crate::Auth<S>;
    type Future<F> = crate::ResponseFuture<F>;
    type Body<B> = tower_plugins_core::PluginBody<B>;
    type Hooks = tower_plugins_core::NoHooks;

    fn from_config(
        config: AuthConfig,
        ctx: &tower_plugins_core::PluginContext,
    ) -> Result<Self, ConfigError> {
        config.build(ctx.client_ip().clone())
    }

    fn describe(&self) -> String {
        crate::AuthLayer::describe(self)
    }

    fn hooks(&self) -> Option<tower_plugins_core::NoHooks> {
        None
    }
}
