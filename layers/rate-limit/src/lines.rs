//! `RateLimit` header values of one rule: made once per (remaining, reset) pair, then copied.
//!
//! An admitted request's `RateLimit` value depends only on the rule, the units left and the
//! whole seconds until the bucket is full again; both figures are bounded by the rule (at
//! most `burst` units, at most the time to refill the whole burst). Formatting the value,
//! validating it and copying it into a fresh allocation cost more than the rest of the
//! decision, so each rule keeps a table of finished values: a row per remaining count, made
//! the first time that count is reported, holding a value for every reset. The texts are
//! static (interned once per process, like the policy headers), so copying a value out of
//! the table touches no reference count that other cores would fight over.
//!
//! A rule whose table would exceed [`MAX_CELLS`] (long windows with large bursts, such as
//! `1000/hour`) formats each value instead, exactly as before.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock, PoisonError};

use http::HeaderValue;

/// The most values one rule keeps: 16,384 cells of roughly 60 bytes, about 1 MB if every
/// pair occurs (the demo's rule, 20 at once refilled one a second, has 441).
pub(crate) const MAX_CELLS: u64 = 1 << 14;

/// The `RateLimit` values of one rule.
pub(crate) struct Lines {
    /// The rule's `"name"` item, quoted.
    item: Box<str>,
    /// The largest reset a value in the table carries, in whole seconds.
    max_reset: u64,
    /// One row per remaining count (`0..=burst`); empty when the table would be too large.
    rows: Box<[OnceLock<Box<[HeaderValue]>>]>,
}

impl Lines {
    /// The values of a rule whose item is `item` (already an sf-string), holding up to
    /// `burst` units and full again at most `max_reset` whole seconds after any request.
    pub(crate) fn new(item: String, burst: u32, max_reset: u64) -> Self {
        let cells = (u64::from(burst) + 1).saturating_mul(max_reset.saturating_add(1));
        let rows = if cells <= MAX_CELLS {
            (0..=burst).map(|_| OnceLock::new()).collect()
        } else {
            Box::default()
        };
        Lines {
            item: item.into(),
            max_reset,
            rows,
        }
    }

    /// `"name";r=REMAINING;t=RESET`.
    #[inline]
    pub(crate) fn get(&self, remaining: u32, reset_secs: u64) -> HeaderValue {
        if reset_secs <= self.max_reset {
            if let Some(row) = self.rows.get(remaining as usize) {
                // `reset_secs <= max_reset`, and every row holds `max_reset + 1` values.
                return row.get_or_init(|| self.row(remaining))[reset_secs as usize].clone();
            }
        }
        // Past the table: formatted once into its own allocation, which the value keeps.
        HeaderValue::from_maybe_shared(bytes::Bytes::from(self.text(remaining, reset_secs)))
            .expect("an sf-string item with integer parameters is a valid header value")
    }

    fn text(&self, remaining: u32, reset_secs: u64) -> String {
        let (mut r, mut t) = (itoa::Buffer::new(), itoa::Buffer::new());
        [
            &*self.item,
            ";r=",
            r.format(remaining),
            ";t=",
            t.format(reset_secs),
        ]
        .concat()
    }

    /// Every value for `remaining`, one per reset from 0 to `max_reset`, cut from one
    /// interned text.
    fn row(&self, remaining: u32) -> Box<[HeaderValue]> {
        static_values((0..=self.max_reset).map(|t| self.text(remaining, t)))
    }
}

/// `n` as a header value: from a table made once per process for the figures legacy
/// headers and `Retry-After` usually carry (below 4,096), formatted otherwise.
pub(crate) fn int_value(n: u64) -> HeaderValue {
    const SMALL: u64 = 4096;
    static TABLE: OnceLock<Box<[HeaderValue]>> = OnceLock::new();
    if n >= SMALL {
        return HeaderValue::from(n);
    }
    TABLE.get_or_init(|| static_values((0..SMALL).map(|i| i.to_string())))[n as usize].clone()
}

/// Header values for `texts`, cut from one interned copy of them all.
fn static_values(texts: impl Iterator<Item = String>) -> Box<[HeaderValue]> {
    let texts: Vec<String> = texts.collect();
    let all = intern(texts.concat());
    let mut at = 0;
    texts
        .iter()
        .map(|t| {
            let value = HeaderValue::from_static(&all[at..at + t.len()]);
            at += t.len();
            value
        })
        .collect()
}

/// A `'static` copy of `s`, made once per distinct text. The texts are bounded by the rules
/// a process configures (their names, bursts and windows), never by its requests.
pub(crate) fn intern(s: String) -> &'static str {
    static TEXTS: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let mut texts = TEXTS.lock().unwrap_or_else(PoisonError::into_inner);
    let texts = texts.get_or_insert_with(HashSet::new);
    if let Some(t) = texts.get(s.as_str()) {
        return t;
    }
    let t: &'static str = Box::leak(s.into_boxed_str());
    texts.insert(t);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_values_equal_formatted_ones() {
        let lines = Lines::new("\"api\"".into(), 20, 20);
        assert_eq!(lines.rows.len(), 21);
        for (r, t) in [(0, 0), (19, 1), (20, 20), (7, 13)] {
            assert_eq!(lines.get(r, t), format!("\"api\";r={r};t={t}").as_str());
        }
        // Outside the table (a Redis server's clock may report more): formatted.
        assert_eq!(lines.get(21, 3), "\"api\";r=21;t=3");
        assert_eq!(lines.get(3, 99), "\"api\";r=3;t=99");
    }

    #[test]
    fn large_tables_are_not_kept() {
        let lines = Lines::new("\"hourly\"".into(), 1000, 3600);
        assert!(lines.rows.is_empty());
        assert_eq!(lines.get(999, 3600), "\"hourly\";r=999;t=3600");
    }

    #[test]
    fn int_values_match_their_numbers() {
        for n in [0, 7, 10, 99, 4095, 4096, 86_400] {
            assert_eq!(int_value(n), n.to_string().as_str());
        }
    }

    #[test]
    fn interned_texts_are_shared() {
        let a = intern("\"x\";q=1;w=1".to_owned());
        let b = intern("\"x\";q=1;w=1".to_owned());
        assert!(std::ptr::eq(a, b));
    }
}
