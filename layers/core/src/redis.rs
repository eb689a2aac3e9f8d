//! [`RedisSettings`] and [`RedisConnection`]: how every plugin that keeps state in Redis
//! reaches it (rate_limit's buckets, auth's sessions). One lazily made, self-reconnecting
//! connection per plugin, every call bounded by a timeout, failures counted and logged at most
//! once a second.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::error::{ConfigError, ProblemKind};

/// Parses a Redis URL (`redis://`, `rediss://` or `redis+unix://`); nothing connects yet.
///
/// # Errors
/// [`ProblemKind::InvalidValue`] with a hint, for a malformed URL.
///
/// ```
/// assert!(tower_plugins_core::redis_client("redis://127.0.0.1:6379").is_ok());
/// assert!(tower_plugins_core::redis_client("http://nope").is_err());
/// ```
pub fn redis_client(url: &str) -> Result<redis::Client, ConfigError> {
    redis::Client::open(url).map_err(|e| {
        ConfigError::new(
            ProblemKind::InvalidValue,
            "",
            format!("{url:?} is not a Redis URL: {e}"),
        )
        .with_hint("write it as \"redis://host:port\" (or \"redis://:password@host:port/db\")")
    })
}

/// Where and how to reach Redis: the server, the timeout of every call, and the prefix of
/// every key (each plugin has its own default).
///
/// ```
/// use std::time::Duration;
/// use tower_plugins_core::RedisSettings;
///
/// let redis = RedisSettings::new("redis://127.0.0.1:6379")?
///     .timeout(Duration::from_millis(50))
///     .prefix("myapp:rl:");
/// assert_eq!(redis.prefix_or("tower-plugins:rl:"), "myapp:rl:");
/// assert!(RedisSettings::new("http://nope").is_err());
/// # Ok::<(), tower_plugins_core::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct RedisSettings {
    client: redis::Client,
    timeout: Duration,
    prefix: Option<String>,
}

impl RedisSettings {
    /// The timeouts allowed: 1 ms to 60 s. A configured timeout outside is refused; one set
    /// from code is brought within.
    pub const TIMEOUTS: std::ops::RangeInclusive<Duration> =
        Duration::from_millis(1)..=Duration::from_secs(60);

    /// Parses the URL (`redis://`, `rediss://` or `redis+unix://`); connects on first use.
    ///
    /// # Errors
    /// A [`ConfigError`] ([`ProblemKind::InvalidValue`]) when the URL is malformed.
    pub fn new(url: &str) -> Result<Self, ConfigError> {
        Ok(RedisSettings {
            client: redis_client(url)?,
            timeout: Duration::from_millis(100),
            prefix: None,
        })
    }

    /// The most a request waits for Redis (connecting included) before the plugin's failure
    /// policy applies, within [`TIMEOUTS`](Self::TIMEOUTS). Default: 100 ms.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.clamp(*Self::TIMEOUTS.start(), *Self::TIMEOUTS.end());
        self
    }

    /// The prefix of every key. Default: the plugin's own (`tower-plugins:rl:` for
    /// rate_limit, `tower-plugins:s:` for auth).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// The prefix set, or the plugin's `default`.
    pub fn prefix_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.prefix.as_deref().unwrap_or(default)
    }

    /// The timeout of every call.
    pub fn call_timeout(&self) -> Duration {
        self.timeout
    }

    /// A connection for the plugin `what`, made on its first call.
    pub fn connect(&self, what: &'static str) -> RedisConnection {
        RedisConnection::new(self.client.clone(), self.timeout, what)
    }
}

/// A connection to Redis, made on the first call (building a layer does no I/O), that
/// reconnects by itself. Every call is bounded by `timeout`, connecting included; a call that
/// fails or times out is counted and logged (at most once a second, naming `what`).
pub struct RedisConnection {
    client: redis::Client,
    timeout: Duration,
    what: &'static str,
    conn: OnceLock<Option<ConnectionManager>>,
    last_warning: AtomicU64,
    errors: AtomicU64,
}

impl std::fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConnection")
            .field("what", &self.what)
            .field("timeout", &self.timeout)
            .field("errors", &self.errors())
            .finish_non_exhaustive()
    }
}

impl RedisConnection {
    /// A connection to `client` for the plugin `what` (`"rate_limit"`), with calls bounded by
    /// `timeout`.
    pub fn new(client: redis::Client, timeout: Duration, what: &'static str) -> Self {
        RedisConnection {
            client,
            timeout,
            what,
            conn: OnceLock::new(),
            last_warning: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    /// The timeout of every call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Calls that failed or timed out so far.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    fn connection(&self) -> Option<ConnectionManager> {
        self.conn
            .get_or_init(|| {
                let t = self.timeout;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(t))
                    .set_response_timeout(Some(t))
                    .set_number_of_retries(2)
                    .set_min_delay(Duration::from_millis(10))
                    .set_max_delay(Duration::from_millis(500));
                match ConnectionManager::new_lazy_with_config(self.client.clone(), config) {
                    Ok(c) => Some(c),
                    Err(e) => {
                        tracing::error!(error = %e, plugin = self.what, "cannot create the Redis connection");
                        None
                    }
                }
            })
            .clone()
    }

    /// Runs `inv` within the timeout. `None` on any failure, which is counted and logged
    /// (with `policy`, what the caller does about it).
    pub async fn invoke<T: redis::FromRedisValue>(
        &self,
        inv: &redis::ScriptInvocation<'_>,
        policy: &'static str,
    ) -> Option<T> {
        let why = match self.connection() {
            Some(mut conn) => {
                match tokio::time::timeout(self.timeout, inv.invoke_async(&mut conn)).await {
                    Ok(Ok(reply)) => return Some(reply),
                    Ok(Err(e)) => e.to_string(),
                    Err(_) => format!("no answer within {:?}", self.timeout),
                }
            }
            None => "no connection".to_owned(),
        };
        self.failed(&why, policy);
        None
    }

    /// Counts a failed call and logs it, at most once a second.
    pub fn failed(&self, why: &str, policy: &'static str) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let sec = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if self.last_warning.swap(sec, Ordering::Relaxed) != sec {
            tracing::warn!(
                target: "tower_plugins::redis",
                error = %why,
                plugin = self.what,
                policy,
                "Redis backend unavailable"
            );
        }
    }
}
