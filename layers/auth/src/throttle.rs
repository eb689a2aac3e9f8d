//! Failed logins per user name: the rate limiter's GCRA and bounded store, keyed by a keyed
//! hash of the name (with the client's network for `per_user`), charged when a login arrives
//! (so concurrent guesses cannot overrun) and refunded when it succeeds.

use std::net::IpAddr;
use std::time::Duration;

use tower_plugins_rate_limit::Limiter;

use crate::keys::Keys;

/// The two limits: per (name, client network), and per name from anywhere.
#[derive(Debug, Clone, Default)]
pub(crate) struct Throttle {
    pub(crate) per_user: Option<Limiter>,
    pub(crate) per_user_any: Option<Limiter>,
}

/// The charges one login took, to give back if it succeeds.
pub(crate) struct Charged {
    keys: [Option<[u8; 16]>; 2],
}

/// A client's network: IPv4 /24, IPv6 /64, as rate_limit groups addresses; `None` unknown.
fn network(ip: Option<IpAddr>) -> [u8; 9] {
    let mut out = [0u8; 9];
    match ip.map(|ip| ip.to_canonical()) {
        Some(IpAddr::V4(a)) => {
            out[0] = 4;
            out[1..4].copy_from_slice(&a.octets()[..3]);
        }
        Some(IpAddr::V6(a)) => {
            out[0] = 6;
            out[1..9].copy_from_slice(&a.octets()[..8]);
        }
        None => {}
    }
    out
}

impl Throttle {
    /// Charges a login of `name` from `ip`; `Err` with the wait when a limit is reached (and
    /// nothing is charged). The same for names that exist and names that do not.
    pub(crate) fn charge(
        &self,
        keys: &Keys,
        name: &str,
        ip: Option<IpAddr>,
    ) -> Result<Charged, Duration> {
        let net = network(ip);
        let limits = [
            (&self.per_user, keys.fingerprint(&[name.as_bytes(), &net])),
            (&self.per_user_any, keys.fingerprint(&[name.as_bytes()])),
        ];
        let mut charged = Charged { keys: [None, None] };
        for (i, (limiter, key)) in limits.iter().enumerate() {
            let Some(l) = limiter else { continue };
            if let Err(wait) = l.check(key) {
                self.refund(charged);
                return Err(wait);
            }
            charged.keys[i] = Some(*key);
        }
        Ok(charged)
    }

    /// Gives a successful login's charges back.
    pub(crate) fn refund(&self, charged: Charged) {
        let limiters = [&self.per_user, &self.per_user_any];
        for (limiter, key) in limiters.into_iter().zip(charged.keys) {
            if let (Some(l), Some(k)) = (limiter, key) {
                l.refund(&k);
            }
        }
    }
}
