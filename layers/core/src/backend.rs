//! [`BackendConfig`]: where a plugin keeps its state, as a stack file writes it
//! (`"memory"` or a Redis table), shared by rate_limit's `backend` and auth's `store`.

use serde::Deserialize;

use crate::{HumanDuration, ProblemKind, Problems, StringOr, choice};

/// Where a plugin keeps its state, as written in TOML: `"memory"` or
/// `{ redis = "redis://127.0.0.1:6379", timeout = "100ms", prefix = "myapp:" }` (an unknown
/// key in the table is an error, as in every other table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendConfig {
    /// `"memory"`.
    Named(String),
    /// Redis.
    Redis {
        /// The server's URL.
        redis: String,
        /// The most a request waits for Redis. Default: `"100ms"`.
        timeout: Option<HumanDuration>,
        /// The key prefix; each plugin has its own default.
        prefix: Option<String>,
    },
}

/// The Redis table, read with unknown keys refused (an untagged enum would ignore them).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RedisTable {
    redis: String,
    #[serde(default)]
    timeout: Option<HumanDuration>,
    #[serde(default)]
    prefix: Option<String>,
}

impl<'de> Deserialize<'de> for BackendConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match StringOr::<RedisTable>::deserialize(d)? {
            StringOr::String(name) => BackendConfig::Named(name),
            StringOr::Table(t) => BackendConfig::Redis {
                redis: t.redis,
                timeout: t.timeout,
                prefix: t.prefix,
            },
        })
    }
}

impl Default for BackendConfig {
    fn default() -> Self {
        BackendConfig::Named("memory".to_owned())
    }
}

impl BackendConfig {
    /// The Redis settings of a Redis table (`None` for `"memory"`), its problems recorded
    /// under `key`: a name other than `"memory"`, a malformed URL, a timeout out of
    /// [`RedisSettings::TIMEOUTS`](crate::RedisSettings::TIMEOUTS).
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn redis_settings(&self, p: &mut Problems, key: &str) -> Option<crate::RedisSettings> {
        let BackendConfig::Redis {
            redis: url,
            timeout,
            prefix,
        } = self
        else {
            self.memory_only(p, key, "");
            return None;
        };
        let timeout = timeout.map(|t| {
            let range = crate::RedisSettings::TIMEOUTS;
            p.check(
                &format!("{key}.timeout"),
                crate::duration_in(t.get(), range),
            )
        });
        let mut r = p.check(&format!("{key}.redis"), crate::RedisSettings::new(url))?;
        if let Some(t) = timeout {
            r = r.timeout(t?);
        }
        if let Some(pre) = prefix {
            r = r.prefix(pre.clone());
        }
        Some(r)
    }

    /// For a build without Redis: `"memory"` is the one choice, and a Redis table is a
    /// problem naming `feature`, the Cargo feature that adds it.
    pub fn memory_only(&self, p: &mut Problems, key: &str, feature: &str) {
        match self {
            BackendConfig::Named(n) => {
                p.check(key, choice(n, &["memory"]));
            }
            BackendConfig::Redis { .. } => p.push(
                ProblemKind::InvalidValue,
                format!("{key}.redis"),
                format!("this build has no Redis support here: enable the `{feature}` feature"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct C {
        store: BackendConfig,
    }

    #[test]
    fn memory_only_refuses_other_names_and_redis_tables() {
        let c: C = toml::from_str("store = \"memroy\"").unwrap();
        let mut p = Problems::new();
        c.store.memory_only(&mut p, "store", "auth-redis");
        let e = p.finish(()).unwrap_err();
        assert_eq!(e.keys(), ["store"]);
        let c: C = toml::from_str("store = { redis = \"redis://h\" }").unwrap();
        let mut p = Problems::new();
        c.store.memory_only(&mut p, "store", "auth-redis");
        let e = p.finish(()).unwrap_err().to_string();
        assert!(
            e.contains("store.redis") && e.contains("`auth-redis`"),
            "{e}"
        );
    }

    #[test]
    fn an_unknown_key_in_the_redis_table_is_named() {
        let e = toml::from_str::<C>("store = { redis = \"redis://h\", prefx = \"p\" }")
            .err()
            .unwrap();
        assert!(e.message().contains("unknown field `prefx`"), "{e}");
    }
}
