//! Escaping for text log lines: nothing a client sends can end a field or forge a line.

/// Appends text or bytes.
#[inline]
pub(crate) fn put(out: &mut Vec<u8>, s: impl AsRef<[u8]>) {
    out.extend_from_slice(s.as_ref());
}

/// Bytes written as they are in a text log: printable ASCII except `"` and `\`.
#[allow(clippy::manual_range_contains)]
const SAFE: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0x20;
    while b < 0x7f {
        t[b] = b != b'"' as usize && b != b'\\' as usize;
        b += 1;
    }
    t
};

/// Escapes `bytes` for a text log the way nginx does: `"`, `\`, control characters and
/// non-ASCII bytes become `\xHH`, so no value can end a field or forge a line. Runs of safe
/// bytes are copied at once.
pub(crate) fn escape_text(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut start = 0;
    let escape_at = |out: &mut Vec<u8>, start: &mut usize, j: usize| {
        let b = bytes[j];
        out.extend_from_slice(&bytes[*start..j]);
        out.extend_from_slice(&[
            b'\\',
            b'x',
            HEX[usize::from(b >> 4)],
            HEX[usize::from(b & 0xf)],
        ]);
        *start = j + 1;
    };
    // Eight bytes at a time: most values need no escaping at all.
    let mut chunks = bytes.chunks_exact(8);
    let mut i = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        if !chunk_safe(u64::from_le_bytes(word)) {
            for j in i..i + 8 {
                if !SAFE[usize::from(bytes[j])] {
                    escape_at(out, &mut start, j);
                }
            }
        }
        i += 8;
    }
    for j in i..bytes.len() {
        if !SAFE[usize::from(bytes[j])] {
            escape_at(out, &mut start, j);
        }
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Whether all eight bytes of `x` are [`SAFE`] (SWAR: no byte below 0x20, above 0x7e, or
/// equal to `"` or `\`).
#[inline]
fn chunk_safe(x: u64) -> bool {
    const L: u64 = 0x0101_0101_0101_0101;
    const H: u64 = 0x8080_8080_8080_8080;
    let below = x.wrapping_sub(L * 0x20) & !x & H;
    // `x + L * (127 - 0x7e)`: a byte above 0x7e carries into its high bit.
    let above = (x.wrapping_add(L) | x) & H;
    let q = x ^ (L * u64::from(b'"'));
    let b = x ^ (L * u64::from(b'\\'));
    let quote = q.wrapping_sub(L) & !q & H;
    let backslash = b.wrapping_sub(L) & !b & H;
    (below | above | quote | backslash) == 0
}

/// Like [`escape_text`], for fields that are not quoted: spaces are escaped too.
pub(crate) fn escape_bare(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        if b == b' ' {
            put(out, b"\\x20");
        } else {
            escape_text(out, &[b]);
        }
    }
}

pub(crate) fn opt_text(out: &mut Vec<u8>, v: Option<&[u8]>) {
    match v {
        Some(v) if !v.is_empty() => escape_text(out, v),
        _ => out.push(b'-'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for &b in bytes {
            if SAFE[usize::from(b)] {
                out.push(b);
            } else {
                out.extend_from_slice(format!("\\x{b:02X}").as_bytes());
            }
        }
        out
    }

    #[test]
    fn word_at_a_time_escaping_matches_byte_at_a_time_for_every_byte() {
        for b in 0..=255u8 {
            for len in [1, 7, 8, 9, 17] {
                for pos in 0..len {
                    let mut v = vec![b'a'; len];
                    v[pos] = b;
                    let mut out = Vec::new();
                    escape_text(&mut out, &v);
                    assert_eq!(out, reference(&v), "byte {b:#04x} at {pos} of {len}");
                }
            }
        }
    }
}
