//! [`header_value`]: header values a plugin formats per request, without an allocation each.

use std::cell::RefCell;

use bytes::BytesMut;
use http::HeaderValue;

/// The bytes of a thread's values are cut from one buffer of this size at a time.
const CHUNK: usize = 4096;

/// Values longer than this are allocated on their own (they would waste a chunk's tail).
const MAX_SHARED: usize = 256;

thread_local! {
    /// The unused rest of this thread's current chunk.
    static ARENA: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// A header value of `bytes` (visible ASCII, spaces and tabs, as `HeaderValue::from_bytes`
/// requires), cut from a per-thread buffer shared by the values made before it: one
/// allocation for many values instead of one each. A chunk is freed when the last value cut
/// from it is dropped, so a value kept long keeps its 4 KiB chunk alive.
///
/// ```
/// let v = tower_plugins_core::header_value(b"12.345ms").unwrap();
/// assert_eq!(v, "12.345ms");
/// assert!(tower_plugins_core::header_value(b"bad\nvalue").is_none());
/// ```
pub fn header_value(bytes: &[u8]) -> Option<HeaderValue> {
    header_value_from_parts(&[bytes])
}

/// Like [`header_value`], for a value made of `parts` (copied once, into the shared buffer,
/// rather than joined first).
///
/// ```
/// let v = tower_plugins_core::header_value_from_parts(&[b"total;dur=", b"1.250"]).unwrap();
/// assert_eq!(v, "total;dur=1.250");
/// ```
pub fn header_value_from_parts(parts: &[&[u8]]) -> Option<HeaderValue> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    if len > MAX_SHARED {
        return HeaderValue::from_bytes(&parts.concat()).ok();
    }
    let cut = ARENA.try_with(|arena| {
        let mut arena = arena.try_borrow_mut().ok()?;
        if arena.capacity() < len {
            *arena = BytesMut::with_capacity(CHUNK);
        }
        for part in parts {
            arena.extend_from_slice(part);
        }
        Some(arena.split().freeze())
    });
    match cut.ok().flatten() {
        Some(shared) => HeaderValue::from_maybe_shared(shared).ok(),
        // The thread is ending (or a value is being made while one is): on its own.
        None => HeaderValue::from_bytes(&parts.concat()).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_share_chunks_and_outlive_them() {
        let values: Vec<HeaderValue> = (0..2000)
            .map(|i| header_value(format!("total;dur={i}.5").as_bytes()).unwrap())
            .collect();
        for (i, v) in values.iter().enumerate() {
            assert_eq!(v.to_str().unwrap(), format!("total;dur={i}.5"));
        }
        let long = "x".repeat(1000);
        assert_eq!(header_value(long.as_bytes()).unwrap(), long.as_str());
        assert!(header_value(b"a\x00b").is_none());
        assert!(header_value_from_parts(&[b"a", b"\n"]).is_none());
        let long = [long.as_bytes(), b"!"];
        assert_eq!(header_value_from_parts(&long).unwrap().len(), 1001);
        // A refused value wastes its bytes, not the next value.
        assert_eq!(header_value(b"next").unwrap(), "next");
    }
}
