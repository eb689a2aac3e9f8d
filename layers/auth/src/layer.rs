//! [`AuthLayer`]: the settings, built into the state every service of the layer shares.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tower_layer::Layer;
use tower_plugins_core::{ClientIpResolver, ConfigError, PathSet, ProblemKind, Problems, Quota};
use tower_plugins_rate_limit::Limiter;

use crate::clock::{Clock, ManualClock};
use crate::cookie::CookieSettings;
use crate::csrf::Csrf;
use crate::keys::{Keys, Secret};
use crate::rules::{Rule, Rules};
use crate::service::Auth;
use crate::store::{MemoryStore, SessionStore, Store, StoreError, Timeouts};
use crate::throttle::Throttle;
use crate::users::{StaticUsers, UserProvider};
use crate::verifier::Verifier;

/// What a protected request gets when the store cannot be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnStoreError {
    /// `503 Service Unavailable` with `Retry-After: 1` (the default).
    #[default]
    Deny,
    /// Goes on as anonymous (open paths always do).
    Anonymous,
}

/// The login and logout endpoints.
#[derive(Debug, Clone)]
pub(crate) struct Endpoints {
    pub(crate) login: Box<str>,
    pub(crate) logout: Box<str>,
    pub(crate) after_login: Box<str>,
    pub(crate) after_logout: Box<str>,
    /// `GET login` serves the built-in page (else the application's route).
    pub(crate) page: bool,
    pub(crate) max_body: usize,
}

/// Everything the layer is built from.
#[derive(Clone)]
pub(crate) struct Settings {
    secret: Secret,
    previous: Vec<Secret>,
    pub(crate) cookie: CookieSettings,
    pub(crate) persistent: bool,
    max_sessions: usize,
    pub(crate) timeouts: Timeouts,
    store: StoreChoice,
    pub(crate) rules: Rules,
    pub(crate) endpoints: Endpoints,
    users: Option<Arc<dyn UserProvider>>,
    strongest: Option<String>,
    hash_threads: usize,
    pub(crate) csrf: Csrf,
    /// Failed logins allowed per (user name, client network), and per user name.
    throttle: (Option<Quota>, Option<Quota>),
    pub(crate) client_ip: Arc<ClientIpResolver>,
    pub(crate) clock: Clock,
    pub(crate) on_store_error: OnStoreError,
}

/// Where the layer keeps sessions.
#[derive(Clone)]
enum StoreChoice {
    Memory,
    #[cfg(feature = "redis")]
    Redis(tower_plugins_core::RedisSettings),
    Custom(Arc<dyn SessionStore>),
}

/// The state every service of one layer shares: keys, store, verifier.
pub(crate) struct Shared {
    pub(crate) s: Settings,
    pub(crate) keys: Keys,
    pub(crate) store: Store,
    pub(crate) users: Arc<dyn UserProvider>,
    pub(crate) verifier: Verifier,
    pub(crate) throttle: Throttle,
    /// Store calls that failed, and the second of the last warning about one.
    store_errors: AtomicU64,
    last_warning: AtomicU64,
}

impl Shared {
    /// Counts a failed store call, and logs it at most once a second.
    pub(crate) fn store_failed(&self, e: &StoreError) {
        self.store_errors.fetch_add(1, Ordering::Relaxed);
        let sec = Clock::System.now();
        if self.last_warning.swap(sec, Ordering::Relaxed) != sec {
            tracing::warn!(error = %e, policy = ?self.s.on_store_error, "auth: session store call failed");
        }
    }
}

/// Cookie sessions, login and logout endpoints and `login_required` rules, as a tower layer.
/// The options and their defaults are in the [crate docs](crate).
#[derive(Clone)]
pub struct AuthLayer {
    settings: Arc<Settings>,
    shared: Arc<OnceLock<Arc<Shared>>>,
}

impl std::fmt::Debug for AuthLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Default for AuthLayer {
    /// Sessions signed with a secret generated for this process (they end with it and are not
    /// shared between instances): for tests and examples. Anything else: [`AuthLayer::new`].
    fn default() -> Self {
        AuthLayer::new(Secret::generate())
    }
}

impl AuthLayer {
    /// Sessions signed with `secret`, kept in memory, no rule and no user yet.
    pub fn new(secret: Secret) -> Self {
        AuthLayer {
            settings: Arc::new(Settings {
                secret,
                previous: Vec::new(),
                cookie: CookieSettings::default(),
                persistent: false,
                max_sessions: crate::DEFAULT_MAX_SESSIONS,
                timeouts: Timeouts {
                    idle: 30 * 60,
                    absolute: 12 * 3600,
                    touch: 60,
                },
                store: StoreChoice::Memory,
                rules: Rules::default(),
                endpoints: Endpoints {
                    login: "/auth/login".into(),
                    logout: "/auth/logout".into(),
                    after_login: "/".into(),
                    after_logout: "/auth/login".into(),
                    page: true,
                    max_body: 8192,
                },
                users: None,
                strongest: None,
                hash_threads: 0,
                csrf: Csrf {
                    on: true,
                    trusted: Vec::new(),
                },
                throttle: (
                    Some(Quota::new(5, Duration::from_secs(15 * 60)).expect("a valid quota")),
                    Some(Quota::new(100, Duration::from_secs(3600)).expect("a valid quota")),
                ),
                client_ip: Arc::new(ClientIpResolver::new()),
                clock: Clock::System,
                on_store_error: OnStoreError::Deny,
            }),
            shared: Arc::new(OnceLock::new()),
        }
    }

    fn map(mut self, f: impl FnOnce(&mut Settings)) -> Self {
        f(Arc::make_mut(&mut self.settings));
        // Settings changed: the state is built again on the next `layer`.
        self.shared = Arc::new(OnceLock::new());
        self
    }

    /// Secrets that still verify cookies but sign none: keep the old one here for at least
    /// `absolute_timeout` after rotating, and nobody is logged out.
    pub fn previous_secrets(self, secrets: impl IntoIterator<Item = Secret>) -> Self {
        let p = secrets.into_iter().collect();
        self.map(|s| s.previous = p)
    }

    /// How the cookie is written (default: `__Host-id`, `Secure`, `HttpOnly`, `SameSite=Lax`).
    pub fn cookie(self, cookie: CookieSettings) -> Self {
        self.map(|s| s.cookie = cookie)
    }

    /// A persistent cookie (`Max-Age` = `absolute_timeout`) instead of a session cookie.
    pub fn persistent(self, on: bool) -> Self {
        self.map(|s| s.persistent = on)
    }

    /// The most sessions the memory store holds (default 100,000; at most
    /// [`MAX_SESSIONS`](crate::MAX_SESSIONS)).
    pub fn max_sessions(self, n: usize) -> Self {
        let n = n.clamp(1, crate::MAX_SESSIONS);
        self.map(|s| s.max_sessions = n)
    }

    /// The idle and absolute timeouts (defaults 30 min and 12 h) and how often a read
    /// records activity (default 1 min). Whole seconds; see [`check`](Self::check).
    pub fn timeouts(self, idle: Duration, absolute: Duration, touch_every: Duration) -> Self {
        self.map(|s| {
            s.timeouts = Timeouts {
                idle: idle.as_secs().max(1),
                absolute: absolute.as_secs().max(1),
                touch: touch_every.as_secs(),
            };
        })
    }

    /// Keeps sessions in `store` instead of memory (`max_sessions` is then the store's
    /// business).
    pub fn store(self, store: impl SessionStore) -> Self {
        let store: Arc<dyn SessionStore> = Arc::new(store);
        self.map(|s| s.store = StoreChoice::Custom(store))
    }

    /// Keeps sessions in Redis, shared by every instance that has the same secret and
    /// prefix (default prefix `tower-plugins:s:`).
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn redis(self, settings: tower_plugins_core::RedisSettings) -> Self {
        self.map(|s| s.store = StoreChoice::Redis(settings))
    }

    /// Paths no rule covers (they beat every rule).
    pub fn public(self, paths: PathSet) -> Self {
        self.map(|s| s.rules.public = paths)
    }

    /// Adds a rule; the first that applies to a request decides.
    pub fn rule(self, rule: Rule) -> Self {
        self.map(|s| s.rules.rules.push(rule))
    }

    /// The login path (default `/auth/login`), logout path (`/auth/logout`), and where a
    /// login without a valid `next` (`/`) and a logout (`/auth/login`) go.
    pub fn endpoints(
        self,
        login: &str,
        logout: &str,
        after_login: &str,
        after_logout: &str,
    ) -> Self {
        let e = Endpoints {
            login: login.into(),
            logout: logout.into(),
            after_login: after_login.into(),
            after_logout: after_logout.into(),
            ..self.settings.endpoints.clone()
        };
        self.map(|s| s.endpoints = e)
    }

    /// `GET login` serves the built-in page (default) or goes to the application.
    pub fn login_page(self, built_in: bool) -> Self {
        self.map(|s| s.endpoints.page = built_in)
    }

    /// The largest login body read (default 8 KiB; larger is 413).
    pub fn max_body(self, bytes: usize) -> Self {
        self.map(|s| s.endpoints.max_body = bytes.clamp(64, crate::MAX_LOGIN_BODY))
    }

    /// Who may log in.
    pub fn users(self, users: impl UserProvider) -> Self {
        let u: Arc<dyn UserProvider> = Arc::new(users);
        self.map(|s| s.users = Some(u))
    }

    /// Users from a table of PHC hashes; the unknown-user verify costs what the strongest of
    /// them does.
    pub fn static_users(self, users: StaticUsers) -> Self {
        let strongest = strongest(&users);
        let u: Arc<dyn UserProvider> = Arc::new(users);
        self.map(|s| {
            s.users = Some(u);
            s.strongest = strongest;
        })
    }

    /// Threads verifying passwords at once (default 0: the machine's parallelism).
    pub fn hash_threads(self, n: usize) -> Self {
        self.map(|s| s.hash_threads = n.min(crate::MAX_HASH_THREADS))
    }

    /// The cross-site check of unsafe requests (default on), and the other origins it lets
    /// through.
    pub fn csrf(
        self,
        on: bool,
        trusted_origins: impl IntoIterator<Item = impl Into<Box<str>>>,
    ) -> Self {
        let trusted = trusted_origins.into_iter().map(Into::into).collect();
        self.map(|s| s.csrf = Csrf { on, trusted })
    }

    /// Failed logins allowed per (user name, client network: IPv4 /24, IPv6 /64), and per
    /// user name from anywhere (defaults `5/15min` and `100/hour`; `None` for no limit). A
    /// login is charged when it arrives and refunded when it succeeds; past a limit it is 429
    /// with `Retry-After`, and no password is hashed.
    pub fn throttle(self, per_user: Option<Quota>, per_user_any: Option<Quota>) -> Self {
        self.map(|s| s.throttle = (per_user, per_user_any))
    }

    /// The client-address resolution (its trusted proxies are the ones whose
    /// `X-Forwarded-Host` counts).
    pub fn client_ip(self, r: impl Into<Arc<ClientIpResolver>>) -> Self {
        let r = r.into();
        self.map(|s| s.client_ip = r)
    }

    /// What a protected request gets when the store cannot be asked.
    pub fn on_store_error(self, policy: OnStoreError) -> Self {
        self.map(|s| s.on_store_error = policy)
    }

    /// A manual clock, for tests of timeouts.
    pub fn clock(self, clock: ManualClock) -> Self {
        self.map(|s| s.clock = Clock::Manual(clock))
    }

    /// The checks across settings that no single setter can make.
    ///
    /// # Errors
    /// `idle_timeout` longer than `absolute_timeout`; `touch_interval` not shorter than
    /// `idle_timeout`; a `public` path or rule covering the login path (a redirect loop); no
    /// users; a previous secret equal to the current one.
    pub fn check(&self) -> Result<(), ConfigError> {
        let s = &self.settings;
        let mut p = Problems::new();
        cross_checks(&mut p, s.timeouts, &s.rules.rules, &s.endpoints.login);
        if s.users.is_none() {
            p.push(
                ProblemKind::MissingKey,
                "users",
                "nobody can log in: give [plugin.users] or a UserProvider",
            );
        }
        if s.previous.iter().any(|old| old.bytes() == s.secret.bytes()) {
            p.push(
                ProblemKind::InvalidValue,
                "previous_secrets",
                "a previous secret is the current one",
            );
        }
        p.finish(())
    }

    /// One line describing the settings (never the secret or any hash).
    pub fn describe(&self) -> String {
        let s = &self.settings;
        let store = match &s.store {
            StoreChoice::Memory => format!("memory (max {})", s.max_sessions),
            #[cfg(feature = "redis")]
            StoreChoice::Redis(r) => format!(
                "redis (prefix {:?})",
                r.prefix_or(crate::redis_store::DEFAULT_PREFIX)
            ),
            StoreChoice::Custom(_) => "custom".to_owned(),
        };
        format!(
            "auth: cookie {}, store {store}, idle {}s, absolute {}s, {} rules, login {}",
            s.cookie.name(),
            s.timeouts.idle,
            s.timeouts.absolute,
            s.rules.rules.len(),
            s.endpoints.login
        )
    }

    /// The state shared by every service of this layer, built once.
    pub(crate) fn shared(&self) -> Arc<Shared> {
        self.shared
            .get_or_init(|| Arc::new(build(&self.settings)))
            .clone()
    }

    /// Session store calls that failed or timed out (each counted once).
    pub fn store_errors(&self) -> u64 {
        self.shared().store_errors.load(Ordering::Relaxed)
    }

    /// Sessions held in memory now (0 with another store).
    pub fn sessions(&self) -> usize {
        self.memory_store().map_or(0, |m| m.len())
    }

    /// The memory store every service of this layer shares (its counts, `sweep()` for
    /// tests); `None` with another store.
    pub fn memory_store(&self) -> Option<Arc<MemoryStore>> {
        match &self.shared().store {
            Store::Memory(m) => Some(m.clone()),
            Store::Remote(_) => None,
        }
    }
}

/// The checks across timeouts and rules: idle no longer than absolute, touches more often than
/// the idle timeout, and no rule covering the login path (a redirect loop).
pub(crate) fn cross_checks(p: &mut Problems, t: Timeouts, rules: &[Rule], login: &str) {
    if t.idle > t.absolute {
        p.push(
            ProblemKind::Conflict,
            "idle_timeout",
            "the idle timeout is longer than the absolute timeout",
        );
    }
    if t.touch >= t.idle {
        p.push(
            ProblemKind::Conflict,
            "touch_interval",
            "the touch interval must be shorter than the idle timeout",
        );
    }
    if let Some(i) = rules.iter().position(|r| r.paths.matches(login)) {
        let message = format!("the rule covers the login path {login:?}: a redirect loop");
        p.push(ProblemKind::Conflict, format!("rules[{i}].paths"), message);
    }
}

fn strongest(users: &StaticUsers) -> Option<String> {
    use argon2::password_hash::PasswordHash;
    let cost = |phc: &str| {
        let h = PasswordHash::new(phc).ok()?;
        let p = argon2::Params::try_from(&h).ok()?;
        Some(u64::from(p.m_cost()) * u64::from(p.t_cost()) * u64::from(p.p_cost()))
    };
    users.hashes().max_by_key(|h| cost(h)).map(str::to_owned)
}

fn build(s: &Settings) -> Shared {
    let mut s = s.clone();
    if s.persistent {
        s.cookie.max_age = Some(Duration::from_secs(s.timeouts.absolute));
    }
    let store = match &s.store {
        StoreChoice::Memory => Store::Memory(MemoryStore::new(
            s.max_sessions,
            s.timeouts,
            s.clock.clone(),
        )),
        #[cfg(feature = "redis")]
        StoreChoice::Redis(r) => Store::Remote(Arc::new(crate::RedisStore::new(r))),
        StoreChoice::Custom(c) => Store::Remote(c.clone()),
    };
    let users = s
        .users
        .clone()
        .unwrap_or_else(|| Arc::new(StaticUsers::new()));
    let throttle = Throttle {
        per_user: s.throttle.0.map(Limiter::new),
        per_user_any: s.throttle.1.map(Limiter::new),
    };
    Shared {
        keys: Keys::new(&s.secret, &s.previous),
        store,
        users,
        verifier: Verifier::new(s.hash_threads, s.strongest.as_deref()),
        throttle,
        store_errors: AtomicU64::new(0),
        last_warning: AtomicU64::new(0),
        s,
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Auth<S> {
        Auth::new(inner, self)
    }
}
