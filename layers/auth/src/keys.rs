//! The secret, the keys derived from it, and the signed session id a cookie carries.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tower_plugins_core::{ConfigError, ProblemKind};

type HmacSha256 = Hmac<Sha256>;

/// Bytes of a session id (128 bits from the OS's random source).
pub(crate) const ID_LEN: usize = 16;

/// Bytes of a cookie's tag: a truncated HMAC-SHA256.
const TAG_LEN: usize = 16;

/// The length of a cookie value: `1.` + 22 base64url characters of id + `.` + 22 of tag.
const VALUE_LEN: usize = 2 + 22 + 1 + 22;

const SECRET_HINT: &str = "generate one with `openssl rand -base64 32` and pass it through the \
    environment: secret = \"${SESSION_SECRET}\"";

/// A session id: 128 random bits. Never stored as such (the store key is a keyed hash of it)
/// and never logged.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Id(pub(crate) [u8; ID_LEN]);

impl Id {
    /// A new id from the OS's random source.
    pub(crate) fn random() -> Self {
        let mut id = [0; ID_LEN];
        getrandom::fill(&mut id).expect("the OS random source is available");
        Id(id)
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Id(..)")
    }
}

/// The key a session is stored under: HMAC of its id, so that a dump of the store yields no
/// usable cookie. 16 bytes, uniformly distributed.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StoreKey(pub(crate) [u8; 16]);

impl StoreKey {
    /// The key of these 16 bytes (for tests of a store; the layer makes keys from cookies).
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        StoreKey(bytes)
    }

    /// Its 16 bytes (a custom store's key; they name no cookie).
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The first 4 bytes are enough to tell two apart in a log, and reveal nothing.
        write!(
            f,
            "StoreKey({:02x}{:02x}{:02x}{:02x}..)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

/// A secret the session keys are derived from: at least 32 bytes.
#[derive(Clone)]
pub struct Secret(Box<[u8]>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// Reads a secret: 32 or more bytes written in base64 (standard or URL-safe, padded or
    /// not) or in hex, or a passphrase of at least 32 characters with at least 12 different
    /// ones.
    ///
    /// # Errors
    /// [`ProblemKind::InvalidValue`] for anything shorter or weaker, with a hint on making one.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let t = text.trim();
        let decoded = [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
            .iter()
            .find_map(|e| e.decode(t).ok())
            .filter(|b| b.len() >= 32 && t.len() >= 43);
        if let Some(bytes) = decoded.or_else(|| hex(t).filter(|b| b.len() >= 32)) {
            return Ok(Secret(bytes.into()));
        }
        let distinct = {
            let mut seen: Vec<char> = t.chars().collect();
            seen.sort_unstable();
            seen.dedup();
            seen.len()
        };
        if t.chars().count() >= 32 && distinct >= 12 {
            return Ok(Secret(t.as_bytes().into()));
        }
        let why = if t.chars().count() < 32 {
            "is shorter than 32 bytes"
        } else {
            "repeats too few characters to be random"
        };
        Err(
            ConfigError::new(ProblemKind::InvalidValue, "", format!("the secret {why}"))
                .with_hint(SECRET_HINT),
        )
    }

    /// A random secret for this process only: sessions do not survive a restart and are not
    /// shared between instances.
    pub fn generate() -> Self {
        let mut b = [0; 32];
        getrandom::fill(&mut b).expect("the OS random source is available");
        Secret(b.into())
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

fn hex(t: &str) -> Option<Vec<u8>> {
    if t.len() % 2 != 0 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..t.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&t[i..i + 2], 16).ok())
        .collect()
}

/// The keys of one secret: to sign cookies, to key the store, and to fingerprint names.
#[derive(Clone)]
struct KeySet {
    sign: HmacSha256,
    fingerprint: HmacSha256,
}

impl KeySet {
    fn derive(secret: &Secret) -> Self {
        let hk = hkdf::Hkdf::<Sha256>::new(Some(b"tower-plugins-auth v1"), secret.bytes());
        let key = |info: &[u8]| {
            let mut k = [0; 32];
            hk.expand(info, &mut k)
                .expect("32 bytes is a valid HKDF-SHA256 length");
            HmacSha256::new_from_slice(&k).expect("HMAC takes a key of any length")
        };
        KeySet {
            sign: key(b"cookie signature"),
            fingerprint: key(b"fingerprint"),
        }
    }

    /// HMAC-SHA256 over the cookie's name and the id: the first half is the cookie's tag,
    /// the second the store key, so one verify costs one HMAC and a store dump holds nothing
    /// a cookie is made of.
    fn mac(&self, name: &str, id: &Id) -> [u8; 32] {
        let mut mac = self.sign.clone();
        mac.update(name.as_bytes());
        mac.update(&[0]);
        mac.update(&id.0);
        mac.finalize().into_bytes().into()
    }
}

/// The current secret's keys, then every previous secret's (they verify, never sign).
#[derive(Clone)]
pub(crate) struct Keys {
    sets: Box<[KeySet]>,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keys({} secrets)", self.sets.len())
    }
}

/// A cookie's id, verified, which secret verified it (0: the current one), and the key its
/// session is stored under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verified {
    pub(crate) id: Id,
    pub(crate) secret: usize,
    pub(crate) store_key: StoreKey,
}

impl Keys {
    pub(crate) fn new(current: &Secret, previous: &[Secret]) -> Self {
        let sets = std::iter::once(current).chain(previous).map(KeySet::derive);
        Keys {
            sets: sets.collect(),
        }
    }

    /// The cookie value for `id` under the cookie `name`, signed with the current secret.
    pub(crate) fn sign(&self, name: &str, id: &Id) -> String {
        let mut out = String::with_capacity(VALUE_LEN);
        out.push_str("1.");
        URL_SAFE_NO_PAD.encode_string(id.0, &mut out);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(&self.sets[0].mac(name, id)[..TAG_LEN], &mut out);
        out
    }

    /// The id a cookie value carries, if some secret signed it for `name`. Anything else
    /// (truncated, padded, another version, a bad tag) is `None`, compared in constant time.
    pub(crate) fn verify(&self, name: &str, value: &[u8]) -> Option<Verified> {
        if value.len() != VALUE_LEN || !value.starts_with(b"1.") || value[24] != b'.' {
            return None;
        }
        let mut id = [0; ID_LEN];
        let mut tag = [0; TAG_LEN];
        let decode = |src: &[u8], dst: &mut [u8]| {
            URL_SAFE_NO_PAD.decode_slice(src, dst).ok() == Some(dst.len())
        };
        if !decode(&value[2..24], &mut id) || !decode(&value[25..], &mut tag) {
            return None;
        }
        let id = Id(id);
        // Every secret is tried, so that the time taken does not say which one signed it.
        let mut found = None;
        for (i, set) in self.sets.iter().enumerate() {
            let mac = set.mac(name, &id);
            if bool::from(mac[..TAG_LEN].ct_eq(&tag)) && found.is_none() {
                let store_key = StoreKey(mac[TAG_LEN..].try_into().expect("16 bytes"));
                found = Some(Verified {
                    id,
                    secret: i,
                    store_key,
                });
            }
        }
        found
    }

    /// A keyed hash of `parts` (a user name, a network): what the login throttle is keyed by,
    /// so that no name is kept in memory.
    pub(crate) fn fingerprint(&self, parts: &[&[u8]]) -> [u8; 16] {
        let mut mac = self.sets[0].fingerprint.clone();
        for p in parts {
            mac.update(&(p.len() as u64).to_be_bytes());
            mac.update(p);
        }
        let mut k = [0; 16];
        k.copy_from_slice(&mac.finalize().into_bytes()[..16]);
        k
    }

    /// The store key of a new session's `id` under the cookie `name` (current secret).
    pub(crate) fn store_key(&self, name: &str, id: &Id) -> StoreKey {
        StoreKey(
            self.sets[0].mac(name, id)[TAG_LEN..]
                .try_into()
                .expect("16 bytes"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> Secret {
        Secret::parse(s).unwrap()
    }

    const A: &str = "kQ1uX0m3Qm9GzvS0tQmB2h1y3kq0a5m0b5n8c0d2e4f=";
    const B: &str = "the quick brown fox jumps over the lazy dog, twice";

    #[test]
    fn secrets_are_long_and_random_enough() {
        assert!(Secret::parse(A).is_ok());
        assert!(Secret::parse(B).is_ok());
        assert!(Secret::parse(&"ab".repeat(32)).is_ok(), "64 hex digits");
        for weak in [
            "",
            "changeme",
            "unsafe-default-key",
            &"a".repeat(40),
            &"abcd".repeat(10),
        ] {
            let e = Secret::parse(weak).unwrap_err();
            assert!(e.problems()[0].hint.is_some(), "{weak}");
        }
    }

    #[test]
    fn a_signed_id_round_trips_and_every_one_byte_tamper_is_refused() {
        let keys = Keys::new(&secret(A), &[]);
        let id = Id::random();
        let value = keys.sign("__Host-id", &id);
        assert_eq!(value.len(), VALUE_LEN);
        let ok = keys.verify("__Host-id", value.as_bytes()).unwrap();
        assert_eq!((ok.id, ok.secret), (id, 0));
        assert_eq!(ok.store_key, keys.store_key("__Host-id", &id));
        assert!(
            !value.contains(&URL_SAFE_NO_PAD.encode(ok.store_key.0)),
            "not in the cookie"
        );
        assert_eq!(
            keys.verify("other-name", value.as_bytes()),
            None,
            "bound to the name"
        );
        for i in 0..value.len() {
            for delta in [1u8, 0x20, 0x80] {
                let mut v = value.clone().into_bytes();
                v[i] ^= delta;
                assert_eq!(keys.verify("__Host-id", &v), None, "byte {i} ^ {delta:#x}");
            }
        }
        for cut in 0..value.len() {
            assert_eq!(keys.verify("__Host-id", &value.as_bytes()[..cut]), None);
        }
        let longer = format!("{value}A");
        assert_eq!(keys.verify("__Host-id", longer.as_bytes()), None);
    }

    #[test]
    fn previous_secrets_verify_but_never_sign() {
        let old = Keys::new(&secret(B), &[]);
        let id = Id::random();
        let value = old.sign("s", &id);
        let rotated = Keys::new(&secret(A), &[secret(B)]);
        let v = rotated.verify("s", value.as_bytes()).unwrap();
        assert_eq!(v.secret, 1);
        // The store key follows the secret that verified the cookie, so rotating keeps it.
        assert_eq!(v.store_key, old.store_key("s", &id));
        assert_ne!(rotated.sign("s", &id), value);
        assert_eq!(
            Keys::new(&secret(A), &[]).verify("s", value.as_bytes()),
            None
        );
    }
}
