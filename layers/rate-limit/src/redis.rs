//! The Redis backend: one atomic script call per request, shared by every instance.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tower_plugins_core::{RedisConnection, RedisSettings};

use crate::key::Key;

/// GCRA over every rule that applies to a request, atomically, on the Redis server's clock.
///
/// `ARGV[1]` is `check` or `refund`, `ARGV[2]` the deadline (microseconds on the server's
/// clock; `0` for none); then, per key, the interval `t`, the tolerance `tau` (microseconds)
/// and whether the rule refuses (`1`) or only reports (`0`). A check that runs past its
/// deadline (queued while Redis stalled, after the caller gave up) charges nothing and
/// answers `{-1}`. A check charges nothing unless every refusing rule admits the request. It
/// answers `{0, d1, d2, ...}` with, per key, the time until the bucket is full again
/// (admitted) or its negation (a shadow rule over its limit), or `{i, d}` when rule `i`
/// refuses and its bucket is full in `d`. Every answer ends with the server's clock, from
/// which the caller sets the next deadline. A key lives exactly as long as its bucket is not
/// full.
const SCRIPT: &str = r"
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000000 + tonumber(now[2])
local n = #KEYS
local deadline = tonumber(ARGV[2])
if ARGV[1] == 'refund' then
  for i = 1, n do
    local t = tonumber(ARGV[3 + (i - 1) * 3])
    local tat = tonumber(redis.call('GET', KEYS[i]))
    if tat then
      local new = tat - t
      if new > now then
        redis.call('SET', KEYS[i], new, 'PX', math.ceil((new - now) / 1000))
      else
        redis.call('DEL', KEYS[i])
      end
    end
  end
  return {0, now}
end
if deadline > 0 and now > deadline then
  return {-1, now}
end
local tats = {}
for i = 1, n do
  local b = 3 + (i - 1) * 3
  local tau = tonumber(ARGV[b + 1])
  local tat = tonumber(redis.call('GET', KEYS[i])) or now
  if tat < now then tat = now end
  tats[i] = tat
  if ARGV[b + 2] == '1' and now < tat - tau then
    return {i, tat - now, now}
  end
end
local out = {0}
for i = 1, n do
  local b = 3 + (i - 1) * 3
  local t = tonumber(ARGV[b])
  local tau = tonumber(ARGV[b + 1])
  if now >= tats[i] - tau then
    local new = tats[i] + t
    redis.call('SET', KEYS[i], new, 'PX', math.ceil((new - now) / 1000))
    out[i + 1] = new - now
  else
    out[i + 1] = now - tats[i]
  end
end
out[n + 2] = now
return out
";

/// The prefix of every key unless the settings name another.
const DEFAULT_PREFIX: &str = "tower-plugins:rl:";

/// The connection and the script, shared by every clone. It knows nothing of rules: callers
/// give it the keys and figures of one call.
#[derive(Clone)]
pub(crate) struct RedisBackend {
    inner: Arc<Inner>,
}

struct Inner {
    prefix: String,
    timeout: Duration,
    /// The connection, its timeout, and its failures counted and logged (core's).
    conn: RedisConnection,
    script: redis::Script,
    /// The server's clock minus ours ([`mono_micros`]), from the last answer; `i64::MIN`
    /// until the first. An estimate low by at most a round trip, so a deadline set from it
    /// never falls after the moment the caller gives up.
    offset: AtomicI64,
}

/// Microseconds on a monotonic clock of this process.
fn mono_micros() -> i64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    i64::try_from(start.elapsed().as_micros()).unwrap_or(i64::MAX)
}

/// One key of a script call: the Redis key, the rule's interval and tolerance, and whether
/// the rule refuses (or only reports).
pub(crate) struct ScriptKey {
    key: Vec<u8>,
    t_us: u64,
    tau_us: u64,
    refuses: bool,
}

impl RedisBackend {
    pub(crate) fn new(settings: &RedisSettings) -> Self {
        RedisBackend {
            inner: Arc::new(Inner {
                prefix: settings.prefix_or(DEFAULT_PREFIX).to_owned(),
                timeout: settings.call_timeout(),
                conn: settings.connect("rate_limit"),
                script: redis::Script::new(SCRIPT),
                offset: AtomicI64::new(i64::MIN),
            }),
        }
    }

    /// The key of `rule`'s bucket for `key`, with the figures of a call (nanoseconds).
    pub(crate) fn key(&self, rule: &str, key: &Key, t: u64, tau: u64, refuses: bool) -> ScriptKey {
        ScriptKey {
            key: self.inner.key_bytes(rule, key),
            t_us: micros(t),
            tau_us: micros_floor(tau),
            refuses,
        }
    }

    /// Runs the script's `check` over `keys`; `None` (counted and logged) on any failure.
    pub(crate) async fn check(&self, keys: &[ScriptKey], policy: &'static str) -> Option<Vec<i64>> {
        self.inner.run("check", keys, policy).await
    }

    /// Gives back one unit per key, without making the response wait.
    pub(crate) fn refund(&self, keys: Vec<ScriptKey>, policy: &'static str) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let inner = self.inner.clone();
        rt.spawn(async move {
            let _ = inner.run("refund", &keys, policy).await;
        });
    }

    /// Calls that failed or timed out.
    pub(crate) fn errors(&self) -> u64 {
        self.inner.conn.errors()
    }
}

/// Nanoseconds to microseconds, rounded up (an interval is never shortened).
fn micros(ns: u64) -> u64 {
    ns.div_ceil(1000).max(1)
}

/// Nanoseconds to microseconds, rounded down (a tolerance is never lengthened).
fn micros_floor(ns: u64) -> u64 {
    ns / 1000
}

impl Inner {
    /// A check's deadline on the server's clock: now plus the timeout; `0` (none) for a
    /// refund, or before the first answer.
    fn deadline(&self, op: &str) -> i64 {
        let offset = self.offset.load(Ordering::Relaxed);
        if op != "check" || offset == i64::MIN {
            return 0;
        }
        let timeout = i64::try_from(self.timeout.as_micros()).unwrap_or(i64::MAX);
        mono_micros()
            .saturating_add(offset)
            .saturating_add(timeout)
            .max(1)
    }

    /// Learns the server's clock from the last element of `reply`, and returns the rest;
    /// `None` for a check past its deadline.
    fn take_clock(&self, mut reply: Vec<i64>) -> Option<Vec<i64>> {
        // No clock: a malformed answer, which the caller counts as such.
        let Some(now) = reply.pop() else {
            return Some(reply);
        };
        self.offset
            .store(now.saturating_sub(mono_micros()), Ordering::Relaxed);
        (reply.first() != Some(&-1)).then_some(reply)
    }

    fn key_bytes(&self, rule: &str, key: &Key) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.prefix.len() + rule.len() + 24);
        out.extend_from_slice(self.prefix.as_bytes());
        out.extend_from_slice(rule.as_bytes());
        out.push(b':');
        key.write_redis(&mut out);
        out
    }

    /// Runs the script's `op` over `keys` within the timeout, returning its answer without the
    /// server's clock; `None` (counted and logged) on any failure, and for a check that reached
    /// Redis after its deadline. A check carries the deadline (when the server's clock is
    /// known) so that, queued while Redis stalls, it charges nothing once this call has given
    /// up on it; a refund has none (giving back late loses nothing).
    async fn run(&self, op: &str, keys: &[ScriptKey], policy: &'static str) -> Option<Vec<i64>> {
        let mut inv = self.script.prepare_invoke();
        inv.arg(op).arg(self.deadline(op));
        for k in keys {
            inv.key(&k.key[..])
                .arg(k.t_us)
                .arg(k.tau_us)
                .arg(u8::from(k.refuses));
        }
        let reply = self.conn.invoke(&inv, policy).await?;
        let reply = self.take_clock(reply);
        if reply.is_none() {
            self.conn
                .failed("the call reached Redis after its deadline", policy);
        }
        reply
    }
}
