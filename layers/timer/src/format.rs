//! Formatting a duration into a header value without heap allocation before the copy into the
//! `HeaderValue`.

use std::fmt::{self, Write};
use std::time::Duration;

/// The unit of the `X-Response-Time` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[non_exhaustive]
pub enum TimeUnit {
    /// Seconds (`0.012s`).
    #[cfg_attr(feature = "serde", serde(rename = "s"))]
    Seconds,
    /// Milliseconds (`12.345ms`), the default, as express's `response-time` writes.
    #[default]
    #[cfg_attr(feature = "serde", serde(rename = "ms"))]
    Millis,
    /// Microseconds (`12345.000us`).
    #[cfg_attr(feature = "serde", serde(rename = "us"))]
    Micros,
}

impl TimeUnit {
    /// The suffix written after the number (`"s"`, `"ms"`, `"us"`).
    pub fn suffix(self) -> &'static str {
        match self {
            TimeUnit::Seconds => "s",
            TimeUnit::Millis => "ms",
            TimeUnit::Micros => "us",
        }
    }

    fn nanos(self) -> u64 {
        match self {
            TimeUnit::Seconds => 1_000_000_000,
            TimeUnit::Millis => 1_000_000,
            TimeUnit::Micros => 1_000,
        }
    }
}

impl fmt::Display for TimeUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.suffix())
    }
}

/// A small stack buffer for header values.
pub(crate) struct StackBuf {
    data: [u8; 96],
    len: usize,
}

impl StackBuf {
    pub(crate) fn new() -> Self {
        StackBuf {
            data: [0; 96],
            len: 0,
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.data[..self.len]
    }
}

impl Write for StackBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > self.data.len() {
            return Err(fmt::Error);
        }
        self.data[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Writes `d` in `unit` with `digits` decimals (rounded half up), then the suffix if asked.
///
/// Integers are written with `itoa` rather than `core::fmt`, whose padding machinery cost more
/// than the rest of the timer together.
pub(crate) fn write_duration(
    out: &mut impl Write,
    d: Duration,
    unit: TimeUnit,
    digits: u8,
    suffix: bool,
) -> fmt::Result {
    let scale = 10u64.pow(u32::from(digits));
    let unit_ns = unit.nanos();
    let nanos = d.as_nanos();
    // u64 arithmetic for any realistic duration; u128 only if it would overflow.
    let (int, frac) = match u64::try_from(nanos)
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .and_then(|n| n.checked_add(unit_ns / 2))
    {
        Some(n) => {
            let scaled = n / unit_ns;
            (scaled / scale, scaled % scale)
        }
        None => {
            let scaled =
                (nanos * u128::from(scale) + u128::from(unit_ns / 2)) / u128::from(unit_ns);
            let int = u64::try_from(scaled / u128::from(scale)).unwrap_or(u64::MAX);
            (int, (scaled % u128::from(scale)) as u64)
        }
    };
    let mut buf = itoa::Buffer::new();
    out.write_str(buf.format(int))?;
    if digits > 0 {
        out.write_char('.')?;
        let f = buf.format(frac);
        for _ in f.len()..usize::from(digits) {
            out.write_char('0')?;
        }
        out.write_str(f)?;
    }
    if suffix {
        out.write_str(unit.suffix())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(d: Duration, unit: TimeUnit, digits: u8, suffix: bool) -> String {
        let mut s = String::new();
        write_duration(&mut s, d, unit, digits, suffix).unwrap();
        s
    }

    #[test]
    fn formats_like_express_response_time() {
        let d = Duration::from_nanos(1_234_567);
        assert_eq!(f(d, TimeUnit::Millis, 3, true), "1.235ms");
        assert_eq!(f(d, TimeUnit::Millis, 0, true), "1ms");
        assert_eq!(f(d, TimeUnit::Millis, 2, false), "1.23");
        assert_eq!(f(d, TimeUnit::Micros, 1, true), "1234.6us");
        assert_eq!(f(d, TimeUnit::Seconds, 6, true), "0.001235s");
        assert_eq!(
            f(Duration::from_millis(5), TimeUnit::Millis, 3, true),
            "5.000ms"
        );
        assert_eq!(f(Duration::ZERO, TimeUnit::Millis, 3, true), "0.000ms");
        assert_eq!(
            f(Duration::from_secs(86_400), TimeUnit::Millis, 9, true),
            "86400000.000000000ms"
        );
    }

    #[test]
    fn stack_buf_refuses_overflow() {
        let mut b = StackBuf::new();
        assert!(b.write_str(&"x".repeat(96)).is_ok());
        assert!(b.write_str("y").is_err());
    }
}
