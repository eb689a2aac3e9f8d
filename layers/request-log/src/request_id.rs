//! Request ids: UUID v7, made cheaply per thread, or a well-formed incoming id reused.

use std::time::SystemTime;

use http::HeaderValue;

/// The request id of a request, in its extensions (for handlers and other plugins) and in the
/// response header.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(pub HeaderValue);

thread_local! {
    /// A per-thread wyrand generator, seeded from a fresh UUID v4 (the operating system's
    /// randomness) once per thread: request ids need uniqueness, not secrecy, and asking the
    /// operating system per request costs more than the rest of the log line.
    static RNG: std::cell::Cell<u64> = std::cell::Cell::new({
        let seed = uuid::Uuid::new_v4().as_u64_pair();
        seed.0 ^ seed.1.rotate_left(32) | 1
    });
}

fn random_bytes() -> [u8; 10] {
    RNG.with(|s| {
        let next = || {
            let x = s.get().wrapping_add(0xa076_1d64_78bd_642f);
            s.set(x);
            let m = u128::from(x) * u128::from(x ^ 0xe703_7ed1_a0b4_28db);
            ((m >> 64) as u64) ^ (m as u64)
        };
        let (a, b) = (next().to_le_bytes(), next().to_le_bytes());
        [a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], b[0], b[1]]
    })
}

impl RequestId {
    /// A new UUID v7 (time-ordered) id.
    pub fn new_v7() -> Self {
        Self::v7_at(SystemTime::now())
    }

    /// A UUID v7 for the given time.
    pub(crate) fn v7_at(t: SystemTime) -> Self {
        let ms = t
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let id = uuid::Builder::from_unix_timestamp_millis(ms, &random_bytes()).into_uuid();
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        id.hyphenated().encode_lower(&mut buf);
        // Shared from the start: the id is cloned into the extensions, the response header
        // and the log line, and a `Bytes` made from a `Vec` would allocate again on its first
        // clone.
        let bytes = bytes::Bytes::from_owner(buf);
        RequestId(HeaderValue::from_maybe_shared(bytes).unwrap_or(HeaderValue::from_static("-")))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or("-")
    }
}

/// Whether an incoming request id may be reused as it is.
pub(crate) fn valid_request_id(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    (1..=128).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b':'))
}
