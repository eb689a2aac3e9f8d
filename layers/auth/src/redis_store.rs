//! [`RedisStore`]: sessions in Redis, shared by every instance with the same secret and
//! prefix. One hash per session, one script call (one round trip) per operation.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use tower_plugins_core::{RedisConnection, RedisSettings};

use crate::keys::StoreKey;
use crate::store::{Change, Record, SessionStore, StoreError, StoreFuture, Timeouts};
use crate::users::User;

/// The prefix of every key unless the settings name another.
pub(crate) const DEFAULT_PREFIX: &str = "tower-plugins:s:";

/// What the connection logs a failure with: what the layer does about it.
const POLICY: &str = "auth: on_store_error";

/// `KEYS[1]` the session; `ARGV`: now, idle, absolute, touch (seconds). The record as
/// `HGETALL` gives it, with `s` moved to now when a touch is due, or nil when there is none
/// or it has ended (it is then deleted). Fields: `u` the user, `c` created, `s` last seen,
/// `r:<role>` each role, `d:<name>` each data value.
const LOAD: &str = r"
local h = redis.call('HGETALL', KEYS[1])
if #h == 0 then return false end
local c, s, si
for i = 1, #h, 2 do
  if h[i] == 'c' then c = tonumber(h[i + 1]) elseif h[i] == 's' then s = tonumber(h[i + 1]); si = i + 1 end
end
local now, idle, abs, touch = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if not c or not s or now > math.min(s + idle, c + abs) then
  redis.call('DEL', KEYS[1])
  return false
end
if now - s >= touch then
  redis.call('HSET', KEYS[1], 's', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], (math.min(now + idle, c + abs) - now + 1) * 1000)
  h[si] = ARGV[1]
end
return h
";

/// `KEYS[1]` the session; `ARGV[1]` its time to live (ms), then field, value pairs. `0`
/// (and nothing written) when the key exists.
const CREATE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
for i = 2, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
";

/// `KEYS[1]` the session; `ARGV`: `i`, name, value (insert) or `r`, name (remove), repeated.
/// Nothing when the session is gone: a late write never brings it back (a bare `HSET` would,
/// with no TTL). The TTL is the session's, unchanged.
const UPDATE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local i = 1
while i <= #ARGV do
  if ARGV[i] == 'i' then
    redis.call('HSET', KEYS[1], 'd:' .. ARGV[i + 1], ARGV[i + 2])
    i = i + 3
  else
    redis.call('HDEL', KEYS[1], 'd:' .. ARGV[i + 1])
    i = i + 2
  end
end
return 1
";

const DELETE: &str = "return redis.call('DEL', KEYS[1])";

/// Sessions in Redis (feature `redis`): a hash per session under the prefix and the hex of
/// its [`StoreKey`] (never the cookie's id), with a TTL at the end of its life that each
/// recorded activity moves. Every operation is one atomic script call within the settings'
/// timeout; a failure is a [`StoreError`], counted and logged at most once a second.
pub struct RedisStore {
    conn: RedisConnection,
    prefix: String,
    load: redis::Script,
    create: redis::Script,
    update: redis::Script,
    delete: redis::Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("conn", &self.conn)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store on `settings` (default prefix `tower-plugins:s:`); connects on first use.
    pub fn new(settings: &RedisSettings) -> Self {
        RedisStore {
            conn: settings.connect("auth"),
            prefix: settings.prefix_or(DEFAULT_PREFIX).to_owned(),
            load: redis::Script::new(LOAD),
            create: redis::Script::new(CREATE),
            update: redis::Script::new(UPDATE),
            delete: redis::Script::new(DELETE),
        }
    }

    /// Calls that failed or timed out so far.
    pub fn errors(&self) -> u64 {
        self.conn.errors()
    }

    /// The Redis key of `key`: the prefix, then 32 hex digits.
    fn key(&self, key: &StoreKey) -> String {
        let mut out = String::with_capacity(self.prefix.len() + 32);
        out.push_str(&self.prefix);
        for b in key.as_bytes() {
            let _ = write!(out, "{b:02x}");
        }
        out
    }

    async fn call<T: redis::FromRedisValue>(
        &self,
        inv: &redis::ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        (self.conn.invoke(inv, POLICY).await).ok_or_else(|| {
            StoreError::new("the Redis call failed (logged under tower_plugins::redis)")
        })
    }
}

/// A record from the fields `LOAD` answers with; `None` when `u` is missing.
fn record(fields: Vec<String>) -> Option<Record> {
    let (mut user, mut created, mut seen) = (None, 0, 0);
    let (mut roles, mut data) = (Vec::new(), BTreeMap::new());
    let mut it = fields.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        match k.as_bytes() {
            b"u" => user = Some(v),
            b"c" => created = v.parse().unwrap_or(0),
            b"s" => seen = v.parse().unwrap_or(0),
            _ if k.starts_with("r:") => roles.push(k[2..].to_owned()),
            _ if k.starts_with("d:") => {
                data.insert(k[2..].to_owned(), v);
            }
            _ => {}
        }
    }
    Some(Record {
        user: Arc::new(User::new(user?, roles)),
        created,
        last_seen: seen,
        data: Arc::new(data),
    })
}

impl SessionStore for RedisStore {
    fn load<'a>(
        &'a self,
        key: &'a StoreKey,
        now: u64,
        t: Timeouts,
    ) -> StoreFuture<'a, Option<Record>> {
        Box::pin(async move {
            let mut inv = self.load.prepare_invoke();
            inv.key(self.key(key))
                .arg(now)
                .arg(t.idle)
                .arg(t.absolute)
                .arg(t.touch);
            let fields: Option<Vec<String>> = self.call(&inv).await?;
            Ok(fields.and_then(record))
        })
    }

    fn create<'a>(
        &'a self,
        key: &'a StoreKey,
        r: &'a Record,
        t: Timeouts,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let now = r.last_seen;
            let ttl_ms = (t.ends_at(r).saturating_sub(now) + 1).saturating_mul(1000);
            let mut inv = self.create.prepare_invoke();
            inv.key(self.key(key)).arg(ttl_ms);
            inv.arg("u").arg(&*r.user.id);
            inv.arg("c").arg(r.created).arg("s").arg(r.last_seen);
            for role in r.user.roles.iter() {
                inv.arg(format!("r:{role}")).arg("");
            }
            for (k, v) in r.data.iter() {
                inv.arg(format!("d:{k}")).arg(v);
            }
            Ok(self.call::<i64>(&inv).await? == 1)
        })
    }

    fn update<'a>(&'a self, key: &'a StoreKey, changes: &'a [Change]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut inv = self.update.prepare_invoke();
            inv.key(self.key(key));
            for c in changes {
                match c {
                    Change::Insert(k, v) => inv.arg("i").arg(k).arg(v),
                    Change::Remove(k) => inv.arg("r").arg(k),
                };
            }
            self.call::<i64>(&inv).await.map(drop)
        })
    }

    fn delete<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut inv = self.delete.prepare_invoke();
            inv.key(self.key(key));
            self.call::<i64>(&inv).await.map(drop)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_from_its_fields_and_a_partial_one_is_none() {
        let fields = [
            "u", "alice", "c", "10", "s", "20", "r:admin", "", "d:cart", "3",
        ];
        let r = record(fields.iter().map(|s| (*s).to_owned()).collect()).unwrap();
        assert_eq!(&*r.user.id, "alice");
        assert_eq!(&*r.user.roles[0], "admin");
        assert_eq!((r.created, r.last_seen), (10, 20));
        assert_eq!(r.data.get("cart").map(String::as_str), Some("3"));
        assert!(record(vec!["c".into(), "10".into()]).is_none());
    }

    #[test]
    fn keys_name_the_store_key_in_hex_under_the_prefix() {
        let s = RedisStore::new(&RedisSettings::new("redis://127.0.0.1:1").unwrap());
        let k = s.key(&StoreKey([0xab; 16]));
        assert_eq!(k, format!("{DEFAULT_PREFIX}{}", "ab".repeat(16)));
    }
}
