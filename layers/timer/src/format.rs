//! Formatting a duration into a header value without heap allocation before the copy into the
//! `HeaderValue`.

use std::fmt;
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

/// A duration as the decimal number of a header value (`12.345`), written on the stack from
/// its last digit back: no `core::fmt`, no bounds to check per character.
#[derive(Clone, Copy)]
pub(crate) struct Decimal {
    /// Up to 20 integer digits (`u64`), the point and 9 decimals.
    buf: [u8; 32],
    start: usize,
}

impl Decimal {
    /// `d` in `unit` with `digits` decimals (at most 9), rounded half up.
    #[inline]
    pub(crate) fn new(d: Duration, unit: TimeUnit, digits: u8) -> Self {
        let digits = digits.min(9);
        let (mut int, mut frac) = scaled(d, unit, digits);
        let mut buf = [b'0'; 32];
        let mut i = buf.len();
        if digits > 0 {
            for _ in 0..digits {
                i -= 1;
                buf[i] = b'0' + (frac % 10) as u8;
                frac /= 10;
            }
            i -= 1;
            buf[i] = b'.';
        }
        loop {
            i -= 1;
            buf[i] = b'0' + (int % 10) as u8;
            int /= 10;
            if int == 0 {
                break;
            }
        }
        Decimal { buf, start: i }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only ASCII digits and a point were written.
        std::str::from_utf8(self.as_bytes()).unwrap_or("0")
    }
}

/// `d` in `unit`, scaled by `10^digits` and rounded half up, split at the point.
#[inline]
fn scaled(d: Duration, unit: TimeUnit, digits: u8) -> (u64, u64) {
    // The default (and Server-Timing's): microseconds, with constant divisors.
    if let (TimeUnit::Millis, 3, Ok(nanos)) = (unit, digits, u64::try_from(d.as_nanos())) {
        let micros = nanos / 1000 + u64::from(nanos % 1000 >= 500);
        return (micros / 1000, micros % 1000);
    }
    let scale = 10u64.pow(u32::from(digits));
    let unit_ns = unit.nanos();
    let nanos = d.as_nanos();
    // u64 arithmetic for any realistic duration; u128 only if it would overflow.
    match u64::try_from(nanos)
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The number and, with `suffix`, the unit, as the timer writes `X-Response-Time`.
    fn f(d: Duration, unit: TimeUnit, digits: u8, suffix: bool) -> String {
        let unit_suffix = if suffix { unit.suffix() } else { "" };
        format!("{}{unit_suffix}", Decimal::new(d, unit, digits).as_str())
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
    fn milliseconds_round_half_up_at_every_boundary() {
        for n in [
            0,
            499,
            500,
            999,
            999_499,
            999_500,
            1_234_567,
            u64::MAX / 2,
            u64::MAX,
        ] {
            let micros = (u128::from(n) + 500) / 1000;
            let want = format!("{}.{:03}", micros / 1000, micros % 1000);
            assert_eq!(
                f(Duration::from_nanos(n), TimeUnit::Millis, 3, false),
                want,
                "{n}"
            );
        }
    }

    #[test]
    fn the_longest_durations_fit() {
        assert_eq!(
            f(Duration::MAX, TimeUnit::Seconds, 9, false),
            "18446744073709551615.999999999"
        );
        // Past u64 in the unit, the integer part saturates.
        let micros = f(Duration::MAX, TimeUnit::Micros, 9, true);
        assert!(micros.starts_with("18446744073709551615."), "{micros}");
        assert_eq!(micros.len(), "18446744073709551615.000000000us".len());
    }
}
