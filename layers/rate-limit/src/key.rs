//! What a limit is counted per: the client's address, a header, the user, everyone, or a
//! function from code.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use http::{Extensions, HeaderMap, HeaderName, Method, Uri};
use tower_plugins_core::AuthUser;

/// Keys longer than this many bytes (a header value, a user name, a key from code) are not
/// used: the request follows the [`UnknownKey`] policy instead, so a client cannot make the
/// limiter store huge keys.
pub const MAX_KEY_LEN: usize = 256;

/// A bucket's key, compact: an address prefix is stored inline, text on the heap.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Key {
    /// The one bucket of a `global` rule.
    Global,
    /// The shared bucket of requests without a usable key.
    Unknown,
    /// An IPv4 address or network, as an integer (aligned, and hashed in one write).
    V4(u32),
    /// An IPv6 address or network, high half first (8-byte aligned keeps the key at 24
    /// bytes, where a `u128` would take 32).
    V6([u64; 2]),
    Text(Box<[u8]>),
}

impl Key {
    /// The key as Redis key text (after the rule's prefix).
    #[cfg(feature = "redis")]
    pub(crate) fn write_redis(&self, out: &mut Vec<u8>) {
        use std::io::Write as _;
        match self {
            Key::Global => out.extend_from_slice(b"global"),
            Key::Unknown => out.extend_from_slice(b"unknown"),
            Key::V4(a) => {
                let _ = write!(out, "ip:{}", std::net::Ipv4Addr::from(*a));
            }
            Key::V6(a) => {
                let bits = (u128::from(a[0]) << 64) | u128::from(a[1]);
                let _ = write!(out, "ip:{}", std::net::Ipv6Addr::from(bits));
            }
            Key::Text(t) => {
                out.extend_from_slice(b"k:");
                out.extend_from_slice(t);
            }
        }
    }

    /// The heap bytes this key owns beyond its inline size.
    pub(crate) fn heap_len(&self) -> usize {
        match self {
            Key::Text(t) => t.len(),
            _ => 0,
        }
    }
}

/// A key returned by a key function from code (see [`KeySource::function`]).
///
/// ```
/// use tower_plugins_rate_limit::RateKey;
///
/// let by_tenant = RateKey::from("tenant-42");
/// let by_ip = RateKey::from("192.0.2.7".parse::<std::net::IpAddr>().unwrap());
/// assert_ne!(by_tenant, by_ip);
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct RateKey(pub(crate) Key);

impl RateKey {
    /// A key from bytes. Keys longer than [`MAX_KEY_LEN`] bytes are not used (the request
    /// follows the [`UnknownKey`] policy).
    pub fn new(bytes: impl AsRef<[u8]>) -> Self {
        RateKey(Key::Text(bytes.as_ref().into()))
    }
}

impl From<&str> for RateKey {
    fn from(s: &str) -> Self {
        RateKey::new(s)
    }
}

impl From<String> for RateKey {
    fn from(s: String) -> Self {
        RateKey(Key::Text(s.into_bytes().into_boxed_slice()))
    }
}

impl From<u64> for RateKey {
    fn from(n: u64) -> Self {
        RateKey::new(n.to_be_bytes())
    }
}

impl From<IpAddr> for RateKey {
    /// The whole address (no prefix grouping).
    fn from(ip: IpAddr) -> Self {
        RateKey(ip_key(ip, 32, 128))
    }
}

/// A text key, unless it is empty or longer than [`MAX_KEY_LEN`].
fn text_key(bytes: &[u8]) -> Option<Key> {
    (!bytes.is_empty() && bytes.len() <= MAX_KEY_LEN).then(|| Key::Text(bytes.into()))
}

/// Groups an address by prefix: IPv4-mapped IPv6 addresses count as IPv4.
pub(crate) fn ip_key(ip: IpAddr, v4_prefix: u8, v6_prefix: u8) -> Key {
    match ip.to_canonical() {
        IpAddr::V4(a) => {
            let bits = u32::from(a) & mask32(v4_prefix);
            Key::V4(bits)
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a) & mask128(v6_prefix);
            Key::V6([(bits >> 64) as u64, bits as u64])
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        p if p >= 32 => u32::MAX,
        p => u32::MAX << (32 - u32::from(p)),
    }
}

fn mask128(prefix: u8) -> u128 {
    match prefix {
        0 => 0,
        p if p >= 128 => u128::MAX,
        p => u128::MAX << (128 - u32::from(p)),
    }
}

/// What a key function from code sees of a request.
#[derive(Debug)]
pub struct KeyRequest<'a> {
    pub(crate) method: &'a Method,
    pub(crate) uri: &'a Uri,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) extensions: &'a Extensions,
    pub(crate) client_ip: Option<IpAddr>,
}

impl<'a> KeyRequest<'a> {
    /// The request method.
    pub fn method(&self) -> &'a Method {
        self.method
    }

    /// The request URI.
    pub fn uri(&self) -> &'a Uri {
        self.uri
    }

    /// The request headers.
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// The request extensions (what outer layers stored, such as the auth plugin's user).
    pub fn extensions(&self) -> &'a Extensions {
        self.extensions
    }

    /// The client's address as the stack's trusted-proxy rules resolve it, or `None` when the
    /// request carries no peer address.
    pub fn client_ip(&self) -> Option<IpAddr> {
        self.client_ip
    }
}

type KeyFn = Arc<dyn Fn(&KeyRequest<'_>) -> Option<RateKey> + Send + Sync>;

/// What a rule counts requests per.
#[derive(Clone)]
#[non_exhaustive]
pub enum KeySource {
    /// The client's address, resolved through the trusted proxies of the stack's
    /// `[client_ip]` section (forwarding headers from anyone else are ignored). IPv6 addresses
    /// are grouped by prefix (a /64 by default), since one client usually holds a whole /64.
    ClientIp {
        /// IPv4 addresses are grouped by this prefix length (32: each address alone).
        v4_prefix: u8,
        /// IPv6 addresses are grouped by this prefix length (64 by default).
        v6_prefix: u8,
    },
    /// One bucket for every request.
    Global,
    /// The value of a request header (such as `x-api-key`).
    Header(HeaderName),
    /// The user the auth plugin authenticated ([`AuthUser`]).
    User,
    /// A function from code.
    Function(KeyFn),
}

impl KeySource {
    /// The client's address, IPv4 addresses alone and IPv6 addresses grouped by /64.
    pub fn client_ip() -> Self {
        KeySource::ClientIp {
            v4_prefix: 32,
            v6_prefix: 64,
        }
    }

    /// A key function from code; `None` means the request has no usable key.
    ///
    /// ```
    /// use tower_plugins_rate_limit::{KeySource, RateKey};
    ///
    /// let by_tenant = KeySource::function(|req| {
    ///     req.uri().path().split('/').nth(2).map(RateKey::from)
    /// });
    /// # let _ = by_tenant;
    /// ```
    pub fn function<F>(f: F) -> Self
    where
        F: Fn(&KeyRequest<'_>) -> Option<RateKey> + Send + Sync + 'static,
    {
        KeySource::Function(Arc::new(f))
    }

    /// Whether this source reads the client's address.
    pub(crate) fn needs_ip(&self) -> bool {
        matches!(self, KeySource::ClientIp { .. } | KeySource::Function(_))
    }

    /// The key of a request, or `None` when it has no usable one.
    pub(crate) fn extract(&self, req: &KeyRequest<'_>) -> Option<Key> {
        match self {
            KeySource::ClientIp {
                v4_prefix,
                v6_prefix,
            } => req.client_ip.map(|ip| ip_key(ip, *v4_prefix, *v6_prefix)),
            KeySource::Global => Some(Key::Global),
            KeySource::Header(name) => {
                let mut values = req.headers.get_all(name).iter();
                let v = values.next()?;
                if values.next().is_some() {
                    return None;
                }
                text_key(v.as_bytes())
            }
            KeySource::User => text_key(req.extensions.get::<AuthUser>()?.0.as_bytes()),
            KeySource::Function(f) => match f(req)?.0 {
                Key::Text(t) if t.is_empty() || t.len() > MAX_KEY_LEN => None,
                key => Some(key),
            },
        }
    }
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::ClientIp {
                v4_prefix,
                v6_prefix,
            } => write!(f, "ClientIp(/{v4_prefix}, /{v6_prefix})"),
            KeySource::Global => f.write_str("Global"),
            KeySource::Header(h) => write!(f, "Header({h})"),
            KeySource::User => f.write_str("User"),
            KeySource::Function(_) => f.write_str("Function"),
        }
    }
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::ClientIp { .. } => f.write_str("client_ip"),
            KeySource::Global => f.write_str("global"),
            KeySource::Header(h) => write!(f, "header {h}"),
            KeySource::User => f.write_str("user"),
            KeySource::Function(_) => f.write_str("function"),
        }
    }
}

/// What happens to a request for which a rule finds no usable key (no peer address, a
/// missing or oversized header, no authenticated user, a key function answering `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum UnknownKey {
    /// All such requests share one bucket per rule (the default): limited, never failed.
    #[default]
    Shared,
    /// Counted per client address instead (for a `user` or header rule: anonymous clients
    /// are limited per address), grouped by these prefix lengths as
    /// [`KeySource::ClientIp`] groups them. Without an address either, the shared bucket.
    ClientIp {
        /// IPv4 grouping (32: each address alone).
        v4_prefix: u8,
        /// IPv6 grouping (64 by default).
        v6_prefix: u8,
    },
    /// The rule does not apply to the request.
    Allow,
    /// The request is refused with 429, as if over the limit.
    Deny,
}

impl UnknownKey {
    /// Per client address, IPv4 addresses alone and IPv6 addresses grouped by /64.
    pub fn client_ip() -> Self {
        UnknownKey::ClientIp {
            v4_prefix: 32,
            v6_prefix: 64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req_with<'a>(
        headers: &'a HeaderMap,
        ext: &'a Extensions,
        ip: Option<IpAddr>,
    ) -> KeyRequest<'a> {
        static M: Method = Method::GET;
        KeyRequest {
            method: &M,
            uri: Box::leak(Box::new(Uri::from_static("/"))),
            headers,
            extensions: ext,
            client_ip: ip,
        }
    }

    #[test]
    fn ipv6_addresses_group_by_prefix_and_mapped_v4_is_v4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ip_key(a, 32, 64), ip_key(b, 32, 64));
        assert_ne!(ip_key(a, 32, 64), ip_key(c, 32, 64));
        assert_ne!(ip_key(a, 32, 128), ip_key(b, 32, 128));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(ip_key(mapped, 32, 64), ip_key(v4, 32, 64));
        let v4b: IpAddr = "192.0.2.200".parse().unwrap();
        assert_eq!(ip_key(v4, 24, 64), ip_key(v4b, 24, 64));
        assert_ne!(ip_key(v4, 32, 64), ip_key(v4b, 32, 64));
    }

    #[test]
    fn header_keys_refuse_repeated_empty_and_huge_values() {
        let ext = Extensions::new();
        let src = KeySource::Header(HeaderName::from_static("x-api-key"));
        let mut h = HeaderMap::new();
        assert_eq!(src.extract(&req_with(&h, &ext, None)), None);
        h.insert("x-api-key", "abc".parse().unwrap());
        assert_eq!(
            src.extract(&req_with(&h, &ext, None)),
            Some(Key::Text(b"abc"[..].into()))
        );
        h.append("x-api-key", "def".parse().unwrap());
        assert_eq!(src.extract(&req_with(&h, &ext, None)), None);
        h.insert("x-api-key", "k".repeat(MAX_KEY_LEN + 1).parse().unwrap());
        assert_eq!(src.extract(&req_with(&h, &ext, None)), None);
        h.insert("x-api-key", "".parse().unwrap());
        assert_eq!(src.extract(&req_with(&h, &ext, None)), None);
    }

    #[test]
    fn user_keys_come_from_the_auth_extension() {
        let h = HeaderMap::new();
        let mut ext = Extensions::new();
        assert_eq!(KeySource::User.extract(&req_with(&h, &ext, None)), None);
        ext.insert(AuthUser("alice".into()));
        assert_eq!(
            KeySource::User.extract(&req_with(&h, &ext, None)),
            Some(Key::Text(b"alice"[..].into()))
        );
    }
}
