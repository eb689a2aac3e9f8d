//! Latency buckets: log-linear, eight per power of two, in microseconds.
//!
//! A value `v` below 8 µs has a bucket of its own; above, each power of two is split in eight
//! equal buckets, so a bucket is at most 12.5% wide and the midpoint reported for a percentile
//! is within 6.25% of every value in it. Values from 2^32 µs (71 minutes) up share the last
//! bucket. Recording is one atomic add; percentiles are read from the sum of the shards.

/// Buckets per histogram.
pub(crate) const BUCKETS: usize = 241;

/// The bucket of `us` microseconds.
#[inline]
pub(crate) fn bucket(us: u64) -> usize {
    if us < 8 {
        return us as usize;
    }
    let exp = 63 - us.leading_zeros() as usize; // 3..=63
    if exp >= 32 {
        return BUCKETS - 1;
    }
    (exp - 2) * 8 + ((us >> (exp - 3)) & 7) as usize
}

/// The smallest value of bucket `i` and the first value past it.
pub(crate) fn bounds(i: usize) -> (u64, u64) {
    if i < 8 {
        return (i as u64, i as u64 + 1);
    }
    let exp = i / 8 + 2;
    let sub = (i % 8) as u64;
    let width = 1u64 << (exp - 3);
    let low = (1u64 << exp) + sub * width;
    (low, low + width)
}

/// The value reported for bucket `i`: its midpoint (its value, below 8 µs).
fn representative(i: usize) -> f64 {
    let (low, high) = bounds(i);
    if high - low == 1 {
        low as f64
    } else {
        (low + high) as f64 / 2.0
    }
}

/// The `q` quantile (0 < q <= 1) of the values counted in `counts`, in microseconds, never
/// above `max` (the largest value seen). `None` without values.
pub(crate) fn quantile(counts: &[u64], q: f64, max: u64) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    // The rank of the value wanted, 1-based: the smallest value with at least q of all values
    // at or below it.
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for (i, &c) in counts.iter().enumerate() {
        seen += c;
        if seen >= rank {
            return Some(representative(i).min(max as f64));
        }
    }
    Some(max as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_lands_in_the_bucket_that_bounds_it() {
        let mut v = 0u64;
        while v < (1 << 33) {
            let i = bucket(v);
            assert!(i < BUCKETS, "{v}");
            if v < (1 << 32) {
                let (low, high) = bounds(i);
                assert!(low <= v && v < high, "{v} in {i}: {low}..{high}");
                // At most 12.5% wide.
                assert!((high - low) * 8 <= low.max(8), "{v}: {low}..{high}");
            }
            v = v + 1 + v / 7;
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
        // Adjacent buckets meet.
        for i in 0..BUCKETS - 2 {
            assert_eq!(bounds(i).1, bounds(i + 1).0, "{i}");
        }
    }

    #[test]
    fn quantiles_of_known_values() {
        let mut counts = vec![0u64; BUCKETS];
        // 1..=100 ms, one each.
        for ms in 1..=100u64 {
            counts[bucket(ms * 1000)] += 1;
        }
        let p50 = quantile(&counts, 0.5, 100_000).unwrap();
        let p99 = quantile(&counts, 0.99, 100_000).unwrap();
        assert!((p50 - 50_000.0).abs() / 50_000.0 < 0.0625, "{p50}");
        assert!((p99 - 99_000.0).abs() / 99_000.0 < 0.0625, "{p99}");
        assert_eq!(quantile(&counts, 1.0, 100_000), Some(100_000.0));
        assert_eq!(quantile(&vec![0; BUCKETS], 0.5, 0), None);
        // Small values are exact.
        let mut small = vec![0u64; BUCKETS];
        small[bucket(3)] += 1;
        assert_eq!(quantile(&small, 0.5, 3), Some(3.0));
    }
}
