//! The client's IP address: the peer address, or what a trusted proxy says about it.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use http::{HeaderMap, HeaderName, Request};
use ipnet::IpNet;

use crate::error::{ConfigError, ProblemKind, Problems};

/// At most this many hops of a forwarding header are looked at; a longer chain falls back to
/// the peer address rather than spending time on a hostile header.
const MAX_HOPS: usize = 32;

/// Which header a trusted proxy uses to say who its client was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
#[non_exhaustive]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (the de facto standard; the default).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client;proto=https, for=proxy1`.
    Forwarded,
}

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static FORWARDED: HeaderName = http::header::FORWARDED;

impl ForwardedHeader {
    fn name(self) -> &'static HeaderName {
        match self {
            ForwardedHeader::XForwardedFor => &X_FORWARDED_FOR,
            ForwardedHeader::Forwarded => &FORWARDED,
        }
    }
}

impl fmt::Display for ForwardedHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ForwardedHeader::XForwardedFor => "x-forwarded-for",
            ForwardedHeader::Forwarded => "forwarded",
        })
    }
}

/// The `[client_ip]` section shared by every plugin that needs the client's address.
///
/// ```toml
/// [client_ip]
/// trusted_proxies = ["127.0.0.1/32", "10.0.0.0/8"]
/// header = "x-forwarded-for"   # or "forwarded"
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct ClientIpConfig {
    /// CIDRs (or single addresses) of the proxies whose forwarding header is believed.
    pub trusted_proxies: Vec<String>,
    /// The forwarding header to read from trusted proxies.
    pub header: ForwardedHeader,
}

/// A client address resolved for a request by the resolver at `by`, kept in its extensions.
#[derive(Debug, Clone, Copy)]
struct Resolved {
    by: usize,
    ip: Option<IpAddr>,
}

/// Resolves the client's IP address of a request.
///
/// The peer address comes from the request extensions: axum's `ConnectInfo<SocketAddr>` (with
/// the `axum` feature), tonic's `TcpConnectInfo` (with the `tonic` feature: what
/// `Server::builder().layer(...)` gives), or a plain [`SocketAddr`] (insert it yourself with
/// hyper). When the peer
/// is inside a trusted-proxy CIDR, the forwarding header is read from the right: the first
/// address that is not itself a trusted proxy is the client. Headers from untrusted peers are
/// ignored, so a client cannot choose its own address; a malformed header, or one longer than
/// 32 hops, falls back to the peer address.
///
/// ```
/// use std::net::SocketAddr;
/// use http::Request;
/// use tower_plugins_core::ClientIpResolver;
///
/// let resolver = ClientIpResolver::new().trust(["10.0.0.0/8"]).unwrap();
/// let mut req = Request::builder()
///     .header("x-forwarded-for", "203.0.113.9, 10.1.1.1")
///     .body(())
///     .unwrap();
/// req.extensions_mut().insert("10.0.0.2:4000".parse::<SocketAddr>().unwrap());
/// assert_eq!(resolver.resolve(&req).unwrap().to_string(), "203.0.113.9");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientIpResolver {
    trusted: Vec<IpNet>,
    /// The IPv4 networks of `trusted` as (network, mask), compared with two instructions.
    v4: Vec<(u32, u32)>,
    /// The IPv6 networks of `trusted` as (network, mask).
    v6: Vec<(u128, u128)>,
    header: ForwardedHeader,
}

impl ClientIpResolver {
    /// A resolver that trusts no proxy: the client is the peer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts the given CIDRs (a bare address means that one address).
    ///
    /// # Errors
    /// Every entry that is neither a CIDR nor an address, keyed `trusted_proxies[i]`.
    pub fn trust<I, S>(mut self, cidrs: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut problems = Problems::new();
        for (i, c) in cidrs.into_iter().enumerate() {
            let key = format!("trusted_proxies[{i}]");
            if let Some(net) = problems.check(&key, parse_cidr(c.as_ref())) {
                match net {
                    IpNet::V4(n) => self
                        .v4
                        .push((u32::from(n.network()), u32::from(n.netmask()))),
                    IpNet::V6(n) => {
                        self.v6
                            .push((u128::from(n.network()), u128::from(n.netmask())));
                    }
                }
                self.trusted.push(net);
            }
        }
        problems.finish(self)
    }

    /// Reads the given forwarding header from trusted proxies.
    #[must_use]
    pub fn header(mut self, header: ForwardedHeader) -> Self {
        self.header = header;
        self
    }

    /// The trusted proxy networks.
    pub fn trusted_proxies(&self) -> &[IpNet] {
        &self.trusted
    }

    /// The forwarding header read from trusted proxies.
    pub fn forwarded_header(&self) -> ForwardedHeader {
        self.header
    }

    /// Whether `ip` is inside a trusted-proxy network.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusts(ip.to_canonical())
    }

    /// [`is_trusted`](Self::is_trusted) for an address already in canonical form.
    #[inline]
    fn trusts(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4.iter().any(|&(net, mask)| a & mask == net)
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.v6.iter().any(|&(net, mask)| a & mask == net)
            }
        }
    }

    /// The peer address of the connection, from the request extensions.
    pub fn peer_addr<B>(req: &Request<B>) -> Option<SocketAddr> {
        #[cfg(feature = "axum")]
        if let Some(ci) = req
            .extensions()
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
        {
            return Some(ci.0);
        }
        #[cfg(feature = "tonic")]
        if let Some(a) = req
            .extensions()
            .get::<tonic::transport::server::TcpConnectInfo>()
            .and_then(tonic::transport::server::TcpConnectInfo::remote_addr)
        {
            return Some(a);
        }
        req.extensions().get::<SocketAddr>().copied()
    }

    /// [`resolve`](Self::resolve), stored in the request's extensions for the plugins further
    /// in, which find it with [`resolve_cached`](Self::resolve_cached) instead of walking the
    /// forwarding header again. Only with trusted proxies: without, resolving costs less than
    /// storing.
    pub fn resolve_and_keep<B>(&self, req: &mut Request<B>) -> Option<IpAddr> {
        if self.trusted.is_empty() {
            return self.resolve(req);
        }
        if let Some(ip) = self.kept(req) {
            return ip;
        }
        let ip = self.resolve(req);
        req.extensions_mut().insert(Resolved {
            by: self.identity(),
            ip,
        });
        ip
    }

    /// [`resolve`](Self::resolve), or the address a plugin further out resolved with this same
    /// resolver (the stack's plugins share one) and kept.
    ///
    /// ```
    /// use std::net::SocketAddr;
    /// use tower_plugins_core::ClientIpResolver;
    ///
    /// let resolver = ClientIpResolver::new().trust(["10.0.0.0/8"])?;
    /// let mut req = http::Request::builder()
    ///     .header("x-forwarded-for", "203.0.113.7")
    ///     .body(())?;
    /// req.extensions_mut().insert(SocketAddr::from(([10, 0, 0, 1], 4000)));
    /// let first = resolver.resolve_and_keep(&mut req);
    /// assert_eq!(resolver.resolve_cached(&req), first);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn resolve_cached<B>(&self, req: &Request<B>) -> Option<IpAddr> {
        if self.trusted.is_empty() {
            return self.resolve(req);
        }
        self.kept(req).unwrap_or_else(|| self.resolve(req))
    }

    /// What this resolver kept in `req`, if it did.
    fn kept<B>(&self, req: &Request<B>) -> Option<Option<IpAddr>> {
        let r = req.extensions().get::<Resolved>()?;
        (r.by == self.identity()).then_some(r.ip)
    }

    /// Which resolver this is, for as long as it lives (every plugin of a request holds it).
    fn identity(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    /// The client's address, or `None` when the request carries no peer address.
    pub fn resolve<B>(&self, req: &Request<B>) -> Option<IpAddr> {
        let peer = Self::peer_addr(req)?.ip();
        Some(self.resolve_from(peer, req.headers()))
    }

    /// The client's address given the peer address and the request headers.
    pub fn resolve_from(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        // Values of repeated header lines form one list, in order; walk it from the right.
        let mut hops = 0;
        let mut leftmost = peer;
        for value in headers.get_all(self.header.name()).iter().rev() {
            // No address contains a comma, so a plain split from the right is exact for every
            // value that can resolve; one with a comma inside quotes fails to parse and falls
            // back to the peer, as any malformed header does. Elements are read as bytes: one
            // that is not text cannot parse either.
            let mut rest = value.as_bytes();
            loop {
                let (element, before) = match rest.iter().rposition(|&b| b == b',') {
                    Some(at) => (&rest[at + 1..], Some(&rest[..at])),
                    None => (rest, None),
                };
                hops += 1;
                if hops > MAX_HOPS {
                    return peer;
                }
                let Some(ip) = self.parse_element(element.trim_ascii()) else {
                    return peer;
                };
                if !self.trusts(ip) {
                    return ip;
                }
                leftmost = ip;
                match before {
                    Some(b) => rest = b,
                    None => break,
                }
            }
        }
        leftmost
    }

    /// One element of the forwarding header, as a canonical address.
    #[inline]
    fn parse_element(&self, element: &[u8]) -> Option<IpAddr> {
        match self.header {
            ForwardedHeader::XForwardedFor => match parse_v4(element) {
                Some(v4) => Some(IpAddr::V4(v4)),
                None => std::str::from_utf8(element)
                    .ok()
                    .and_then(parse_node)
                    .map(|ip| ip.to_canonical()),
            },
            ForwardedHeader::Forwarded => std::str::from_utf8(element)
                .ok()
                .and_then(forwarded_for)
                .map(|ip| ip.to_canonical()),
        }
    }
}

impl TryFrom<ClientIpConfig> for ClientIpResolver {
    type Error = ConfigError;
    fn try_from(c: ClientIpConfig) -> Result<Self, ConfigError> {
        Ok(ClientIpResolver::new()
            .trust(&c.trusted_proxies)?
            .header(c.header))
    }
}

/// Parses a network (`"10.0.0.0/8"`, `"2001:db8::/32"`; host bits are cleared) or one
/// address (`"192.0.2.1"`), as configuration writes trusted proxies and exempt networks.
///
/// # Errors
/// A [`ConfigError`] ([`ProblemKind::InvalidValue`]) with a hint, and no key (nest it).
///
/// ```
/// use tower_plugins_core::parse_cidr;
/// assert_eq!(parse_cidr("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
/// assert_eq!(parse_cidr("192.0.2.1").unwrap().to_string(), "192.0.2.1/32");
/// assert!(parse_cidr("10.0.0.0/33").is_err());
/// ```
pub fn parse_cidr(s: &str) -> Result<IpNet, ConfigError> {
    let t = s.trim();
    if let Ok(net) = IpNet::from_str(t) {
        return Ok(net.trunc());
    }
    if let Ok(ip) = IpAddr::from_str(t) {
        return Ok(IpNet::from(ip));
    }
    Err(
        ConfigError::new(ProblemKind::InvalidValue, "", format!("invalid CIDR {s:?}")).with_hint(
            "write a network such as \"10.0.0.0/8\" or \"2001:db8::/32\", or one address",
        ),
    )
}

/// A dotted-quad IPv4 address exactly as the standard parser accepts it (four decimal
/// octets up to 255, no leading zeros), without its generality: the common case of every
/// forwarded request.
fn parse_v4(b: &[u8]) -> Option<std::net::Ipv4Addr> {
    // The smallest value an octet of `n` digits may have without a leading zero.
    const LEAST: [u64; 4] = [0, 0, 10, 100];
    if b.len() > 15 {
        return None;
    }
    let mut octets = [0u8; 4];
    let (mut i, mut val, mut digits) = (0usize, 0u64, 0usize);
    for &c in b {
        let d = c.wrapping_sub(b'0');
        if d < 10 {
            digits += 1;
            val = val * 10 + u64::from(d);
        } else if c == b'.' && i < 3 {
            if !(1..=3).contains(&digits) || val > 255 || val < LEAST[digits] {
                return None;
            }
            octets[i] = val as u8;
            i += 1;
            val = 0;
            digits = 0;
        } else {
            return None;
        }
    }
    if i != 3 || !(1..=3).contains(&digits) || val > 255 || val < LEAST[digits] {
        return None;
    }
    octets[3] = val as u8;
    Some(std::net::Ipv4Addr::from(octets))
}

/// An address as proxies write it: `203.0.113.9`, `203.0.113.9:4711`, `2001:db8::1`,
/// `[2001:db8::1]` or `[2001:db8::1]:4711`.
fn parse_node(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if let Some(v4) = parse_v4(s.as_bytes()) {
        return Some(IpAddr::V4(v4));
    }
    if s.len() > 64 {
        return None;
    }
    if let Ok(ip) = IpAddr::from_str(s) {
        return Some(ip);
    }
    if let Ok(sa) = SocketAddr::from_str(s) {
        return Some(sa.ip());
    }
    let inner = s.strip_prefix('[')?.strip_suffix(']')?;
    IpAddr::from_str(inner).ok().filter(IpAddr::is_ipv6)
}

/// The `for=` node of one RFC 7239 `Forwarded` element.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    for pair in element.split(';') {
        let (k, v) = pair.split_once('=')?;
        if k.trim().eq_ignore_ascii_case("for") {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            // `unknown` and obfuscated identifiers (`_hidden`) are not addresses.
            return parse_node(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_kept_address_serves_the_same_resolver_only() {
        let a = ClientIpResolver::new().trust(["10.0.0.0/8"]).unwrap();
        let b = ClientIpResolver::new()
            .trust(["10.0.0.0/8", "203.0.113.0/24"])
            .unwrap();
        let mut req = Request::builder()
            .header("x-forwarded-for", "198.51.100.9, 203.0.113.7")
            .body(())
            .unwrap();
        req.extensions_mut()
            .insert(SocketAddr::from(([10, 0, 0, 1], 4000)));
        let by_a = a.resolve_and_keep(&mut req);
        assert_eq!(by_a, Some("203.0.113.7".parse().unwrap()));
        assert_eq!(a.resolve_cached(&req), by_a);
        // Another resolver trusts more hops: it resolves for itself.
        assert_eq!(
            b.resolve_cached(&req),
            Some("198.51.100.9".parse().unwrap())
        );
        // Without trusted proxies nothing is kept: resolving is cheaper than storing.
        let mut plain = Request::new(());
        plain
            .extensions_mut()
            .insert(SocketAddr::from(([192, 0, 2, 1], 1)));
        ClientIpResolver::new().resolve_and_keep(&mut plain);
        assert!(plain.extensions().get::<Resolved>().is_none());
    }

    use super::*;

    #[test]
    fn the_fast_ipv4_parser_agrees_with_the_standard_one() {
        for s in [
            "203.0.113.9",
            "0.0.0.0",
            "255.255.255.255",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.5",
            "1..2.3",
            ".1.2.3",
            "1.2.3.",
            "1.2.3.04",
            "1.2.3.0",
            "10.0.0.1",
            "1234.1.1.1",
            "1.2.3.4 ",
            "a.b.c.d",
            "",
            "1.2.3.999",
            "0.00.0.0",
            "100.200.250.255",
            "255.255.255.255",
            "256.1.1.1",
            "01.1.1.1",
            "0.0.0.0",
            "1.2.3.4.5",
            "1..2.3",
            "9999999999.1.1",
            "1.2.3.4294967297",
            "1.2.3.-1",
        ] {
            assert_eq!(
                parse_v4(s.as_bytes()),
                s.parse::<std::net::Ipv4Addr>().ok(),
                "{s:?}"
            );
        }
    }

    fn req(peer: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder();
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let mut r = b.body(()).unwrap();
        r.extensions_mut()
            .insert(peer.parse::<SocketAddr>().unwrap());
        r
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_headers_are_ignored() {
        let r = ClientIpResolver::new().trust(["10.0.0.0/8"]).unwrap();
        let q = req("198.51.100.7:5000", &[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(r.resolve(&q), Some(ip("198.51.100.7")));
        // No trusted proxies at all: headers never count.
        let q = req("10.0.0.1:5000", &[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(ClientIpResolver::new().resolve(&q), Some(ip("10.0.0.1")));
    }

    #[test]
    fn rightmost_untrusted_wins_over_spoofed_left_entries() {
        let r = ClientIpResolver::new().trust(["10.0.0.0/8"]).unwrap();
        // The client wrote "6.6.6.6" itself; the trusted proxy appended the real address.
        let q = req(
            "10.0.0.2:80",
            &[("x-forwarded-for", "6.6.6.6, 203.0.113.9, 10.9.9.9")],
        );
        assert_eq!(r.resolve(&q), Some(ip("203.0.113.9")));
        // Repeated header lines are one list.
        let q = req(
            "10.0.0.2:80",
            &[
                ("x-forwarded-for", "6.6.6.6"),
                ("x-forwarded-for", "203.0.113.10"),
            ],
        );
        assert_eq!(r.resolve(&q), Some(ip("203.0.113.10")));
        // All hops trusted: the leftmost.
        let q = req("10.0.0.2:80", &[("x-forwarded-for", "10.3.3.3, 10.4.4.4")]);
        assert_eq!(r.resolve(&q), Some(ip("10.3.3.3")));
    }

    #[test]
    fn malformed_or_huge_headers_fall_back_to_peer() {
        let r = ClientIpResolver::new().trust(["10.0.0.0/8"]).unwrap();
        for bad in ["not-an-ip", "1.2.3.4, , 10.0.0.9", "999.1.1.1", "unknown"] {
            let q = req("10.0.0.2:80", &[("x-forwarded-for", bad)]);
            assert_eq!(r.resolve(&q), Some(ip("10.0.0.2")), "{bad}");
        }
        let long = vec!["10.1.1.1"; 100].join(",");
        let q = req("10.0.0.2:80", &[("x-forwarded-for", &long)]);
        assert_eq!(r.resolve(&q), Some(ip("10.0.0.2")));
        let mut q = req("10.0.0.2:80", &[]);
        q.headers_mut().insert(
            "x-forwarded-for",
            http::HeaderValue::from_bytes(b"1.2.3.4\xff").unwrap(),
        );
        assert_eq!(r.resolve(&q), Some(ip("10.0.0.2")));
    }

    #[test]
    fn ports_brackets_and_ipv6() {
        let r = ClientIpResolver::new()
            .trust(["::1/128", "127.0.0.1"])
            .unwrap();
        let q = req("[::1]:80", &[("x-forwarded-for", "[2001:db8::5]:1234")]);
        assert_eq!(r.resolve(&q), Some(ip("2001:db8::5")));
        let q = req("127.0.0.1:80", &[("x-forwarded-for", "203.0.113.1:999")]);
        assert_eq!(r.resolve(&q), Some(ip("203.0.113.1")));
        // An IPv4-mapped IPv6 peer counts as its IPv4 address.
        let q = req(
            "[::ffff:127.0.0.1]:80",
            &[("x-forwarded-for", "203.0.113.2")],
        );
        assert_eq!(r.resolve(&q), Some(ip("203.0.113.2")));
    }

    #[test]
    fn forwarded_header() {
        let r = ClientIpResolver::new()
            .trust(["10.0.0.0/8"])
            .unwrap()
            .header(ForwardedHeader::Forwarded);
        let q = req(
            "10.0.0.2:80",
            &[(
                "forwarded",
                "for=6.6.6.6, for=\"[2001:db8:cafe::17]:4711\";proto=https, For=10.1.1.1",
            )],
        );
        assert_eq!(r.resolve(&q), Some(ip("2001:db8:cafe::17")));
        let q = req("10.0.0.2:80", &[("forwarded", "for=_hidden;proto=http")]);
        assert_eq!(r.resolve(&q), Some(ip("10.0.0.2")));
        // X-Forwarded-For is not read when Forwarded is configured.
        let q = req("10.0.0.2:80", &[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(r.resolve(&q), Some(ip("10.0.0.2")));
    }

    #[test]
    fn no_peer_is_none_and_bad_cidrs_are_errors() {
        let r = ClientIpResolver::new();
        assert_eq!(r.resolve(&Request::new(())), None);
        let e = ClientIpResolver::new()
            .trust(["10.0.0.0/8", "10.0.0.0/33", "banana"])
            .unwrap_err();
        let keys: Vec<_> = e
            .problems()
            .iter()
            .map(|p| p.location.key.clone())
            .collect();
        assert_eq!(keys, ["trusted_proxies[1]", "trusted_proxies[2]"]);
    }

    #[cfg(feature = "axum")]
    #[test]
    fn axum_connect_info() {
        let mut q = Request::new(());
        q.extensions_mut().insert(axum::extract::ConnectInfo(
            "192.0.2.1:9".parse::<SocketAddr>().unwrap(),
        ));
        assert_eq!(ClientIpResolver::new().resolve(&q), Some(ip("192.0.2.1")));
    }
}

#[cfg(test)]
mod random_input {
    use super::*;

    #[test]
    fn random_forwarding_headers_never_panic_and_stay_with_trusted_hops() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet = b"0123456789abcdef.:[],; \t\"=forFOR_unknown/";
        for header in [ForwardedHeader::XForwardedFor, ForwardedHeader::Forwarded] {
            let r = ClientIpResolver::new()
                .trust(["10.0.0.0/8"])
                .unwrap()
                .header(header);
            for _ in 0..5000 {
                let len = (next() % 120) as usize;
                let v: Vec<u8> = (0..len)
                    .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                    .collect();
                let mut headers = HeaderMap::new();
                if let Ok(v) = http::HeaderValue::from_bytes(&v) {
                    headers.insert(header.name(), v);
                }
                let peer: IpAddr = "10.1.2.3".parse().unwrap();
                let got = r.resolve_from(peer, &headers);
                // Either the peer, or an address the header named.
                let text = headers
                    .get(header.name())
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).to_string())
                    .unwrap_or_default();
                assert!(
                    got == peer || text.contains(&got.to_string()) || got.is_ipv6(),
                    "{got} from {text:?}"
                );
                // An untrusted peer is never moved by any header.
                let outsider: IpAddr = "198.51.100.1".parse().unwrap();
                assert_eq!(r.resolve_from(outsider, &headers), outsider);
            }
        }
    }
}
