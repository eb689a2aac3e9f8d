//! [`RedisConnection`]: how every plugin that keeps state in Redis reaches it (rate_limit's
//! buckets, and auth's sessions next). One lazily made, self-reconnecting connection per
//! plugin, every call bounded by a timeout, failures counted and logged at most once a second.

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
