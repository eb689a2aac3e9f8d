//! The `RateLimit-Policy` and `RateLimit` values of one rule: made once per (remaining, reset)
//! pair, then referred to.
//!
//! An admitted request's `RateLimit` value depends only on the rule, the units left and the
//! whole seconds until the bucket is full again. Formatting the value, validating it and
//! copying it into a fresh allocation cost more than the rest of the decision, so each rule
//! keeps a table of finished values: a row per remaining count, made the first time that
//! count is reported. The two figures are tied: with `remaining` units left the bucket is
//! full again in more than `burst - remaining - 1` intervals and at most `burst - remaining`,
//! so a row holds only the resets of one interval (three for a rate of one a second or
//! faster, six for `1000/hour`), not every reset up to the whole window. Rows and texts are
//! `'static` (made once per process, like the policy values), so a request carries two
//! references to its values until its response is written, and copying a value out touches
//! no reference count that other cores would fight over.
//!
//! A rule whose table would exceed [`MAX_CELLS`] (bursts of thousands at a rate of one a
//! second or faster, or of hundreds over intervals of a minute), and any pair outside its row
//! (a bucket in Redis written under other rules, say), format the value instead, into core's
//! per-thread buffer: no allocation of its own.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::engine::NANOS_PER_SEC;

/// The IETF draft's headers, and the legacy ones.
pub(crate) const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
pub(crate) const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
pub(crate) const X_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
pub(crate) const X_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
pub(crate) const X_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// The most values one rule keeps: 16,384 cells of roughly 60 bytes, about 1 MB if every
/// pair occurs (the demo's rule, 20 at once refilled one a second, has 63).
pub(crate) const MAX_CELLS: u64 = 1 << 14;

/// A rule's `RateLimit-Policy` and `RateLimit` values for one response.
#[derive(Debug)]
pub(crate) enum Line {
    /// From the rule's table.
    Table(&'static HeaderValue, &'static HeaderValue),
    /// Past the table: the policy, and the rule's item and figures to format.
    Formatted {
        policy: &'static HeaderValue,
        item: &'static HeaderValue,
        remaining: u32,
        reset: u64,
    },
}

impl Line {
    /// Appends both fields to `headers`.
    #[inline]
    pub(crate) fn append_to(self, headers: &mut HeaderMap) {
        let (policy, line) = self.values();
        headers.append(RATELIMIT_POLICY, policy);
        headers.append(RATELIMIT, line);
    }

    /// The `RateLimit-Policy` and `RateLimit` values.
    #[inline]
    pub(crate) fn values(self) -> (HeaderValue, HeaderValue) {
        match self {
            Line::Table(policy, line) => (policy.clone(), line.clone()),
            Line::Formatted {
                policy,
                item,
                remaining,
                reset,
            } => (
                policy.clone(),
                with_parts(
                    item,
                    remaining,
                    reset,
                    tower_plugins_core::header_value_from_parts,
                )
                .expect("an sf-string item with integer parameters is a valid header value"),
            ),
        }
    }
}

/// `ITEM;r=REMAINING;t=RESET`, in its parts, handed to `f`.
fn with_parts<T>(
    item: &HeaderValue,
    remaining: u32,
    reset: u64,
    f: impl FnOnce(&[&[u8]]) -> T,
) -> T {
    let (mut r, mut t) = (itoa::Buffer::new(), itoa::Buffer::new());
    f(&[
        item.as_bytes(),
        b";r=",
        r.format(remaining).as_bytes(),
        b";t=",
        t.format(reset).as_bytes(),
    ])
}

/// The `RateLimit-Policy` and `RateLimit` values of one rule.
pub(crate) struct Lines {
    /// `"name";q=BURST;w=WINDOW`.
    policy: &'static HeaderValue,
    /// The rule's `"name"` item, quoted.
    item: &'static HeaderValue,
    /// The rule's burst.
    burst: u32,
    /// Nanoseconds between two units.
    t: u64,
    /// The resets a row holds: every one its remaining count can be reported with.
    width: u64,
    /// One row per remaining count (`0..=burst`); empty when the table would be too large.
    rows: Box<[OnceLock<&'static [HeaderValue]>]>,
}

impl Lines {
    /// The values of a rule whose item is `item` (already an sf-string), holding up to
    /// `burst` units refilled one every `t` nanoseconds, whose policy window is `window`
    /// seconds.
    pub(crate) fn new(item: String, burst: u32, t: u64, window: u64) -> Self {
        // With `r` units left, the bucket is full again in more than `(burst - r - 1) * t`
        // and at most `(burst - r) * t` nanoseconds: whole seconds from that first figure,
        // rounded down, to one interval more, rounded up.
        let width = t.div_ceil(NANOS_PER_SEC).saturating_add(2);
        let cells = (u64::from(burst) + 1).saturating_mul(width);
        let rows = if cells <= MAX_CELLS {
            (0..=burst).map(|_| OnceLock::new()).collect()
        } else {
            Box::default()
        };
        let policy = format!("{item};q={burst};w={window}");
        Lines {
            policy: &static_values(std::iter::once(policy))[0],
            item: &static_values(std::iter::once(item))[0],
            burst,
            t,
            width,
            rows,
        }
    }

    /// `RateLimit-Policy`: `"name";q=BURST;w=WINDOW`.
    #[cfg(test)]
    pub(crate) fn policy(&self) -> &'static HeaderValue {
        self.policy
    }

    /// The policy and `"name";r=REMAINING;t=RESET`.
    #[inline]
    pub(crate) fn get(&self, remaining: u32, reset: u64) -> Line {
        if let Some(row) = self.rows.get(remaining as usize) {
            let first = self.first_reset(remaining);
            if let Some(i) = reset.checked_sub(first).filter(|&i| i < self.width) {
                let row = row.get_or_init(|| self.row(remaining, first));
                return Line::Table(self.policy, &row[i as usize]);
            }
        }
        Line::Formatted {
            policy: self.policy,
            item: self.item,
            remaining,
            reset,
        }
    }

    /// The least reset a row holds: the whole seconds, rounded down, of the least time to
    /// refill with `remaining` units left.
    #[inline]
    fn first_reset(&self, remaining: u32) -> u64 {
        let intervals = u64::from(self.burst.saturating_sub(remaining).saturating_sub(1));
        intervals.saturating_mul(self.t) / NANOS_PER_SEC
    }

    /// Every value for `remaining`, one per reset from `first` on.
    fn row(&self, remaining: u32, first: u64) -> &'static [HeaderValue] {
        static_values((first..first + self.width).map(|reset| {
            let text = with_parts(self.item, remaining, reset, |parts| parts.concat());
            String::from_utf8(text).expect("an sf-string and digits are ASCII")
        }))
    }
}

/// `n` as a header value: from a table made once per process for the figures legacy
/// headers and `Retry-After` usually carry (below 4,096), formatted otherwise.
pub(crate) fn int_value(n: u64) -> HeaderValue {
    const SMALL: u64 = 4096;
    static TABLE: OnceLock<&'static [HeaderValue]> = OnceLock::new();
    if n >= SMALL {
        return HeaderValue::from(n);
    }
    TABLE.get_or_init(|| static_values((0..SMALL).map(|i| i.to_string())))[n as usize].clone()
}

/// Header values for `texts`, cut from one `'static` copy of them all, made once per process
/// for each distinct list of texts. The lists are bounded by the rules a process configures
/// (their names, bursts and windows), never by its requests.
fn static_values(texts: impl Iterator<Item = String>) -> &'static [HeaderValue] {
    /// Per joined text, the values made from it, each with where its texts were cut.
    type Made = HashMap<&'static str, Vec<(Box<[usize]>, &'static [HeaderValue])>>;
    static MADE: Mutex<Option<Made>> = Mutex::new(None);
    let texts: Vec<String> = texts.collect();
    let cuts: Box<[usize]> = texts.iter().map(String::len).collect();
    let joined = texts.concat();
    let mut made = MADE.lock().unwrap_or_else(PoisonError::into_inner);
    let made = made.get_or_insert_with(HashMap::new);
    if let Some(lists) = made.get(joined.as_str()) {
        if let Some((_, values)) = lists.iter().find(|(c, _)| *c == cuts) {
            return values;
        }
    }
    let all: &'static str = match made.get_key_value(joined.as_str()) {
        Some((all, _)) => all,
        None => Box::leak(joined.into_boxed_str()),
    };
    let mut at = 0;
    let values: &'static [HeaderValue] = Box::leak(
        cuts.iter()
            .map(|&len| {
                let value = HeaderValue::from_static(&all[at..at + len]);
                at += len;
                value
            })
            .collect(),
    );
    made.entry(all).or_default().push((cuts, values));
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(lines: &Lines, r: u32, t: u64) -> String {
        let (policy, line) = lines.get(r, t).values();
        assert_eq!(policy, lines.policy());
        line.to_str().unwrap().to_owned()
    }

    const SEC: u64 = NANOS_PER_SEC;

    #[test]
    fn table_values_equal_formatted_ones() {
        let lines = Lines::new("\"api\"".into(), 20, SEC, 20);
        assert_eq!((lines.rows.len(), lines.width), (21, 3));
        assert_eq!(lines.policy(), "\"api\";q=20;w=20");
        for (r, t) in [(20, 0), (19, 1), (0, 20), (7, 13)] {
            assert!(matches!(lines.get(r, t), Line::Table(..)), "{r} {t}");
            assert_eq!(line(&lines, r, t), format!("\"api\";r={r};t={t}"));
        }
        // Outside the table (a Redis server's clock may report more): formatted.
        assert!(matches!(lines.get(21, 3), Line::Formatted { .. }));
        assert_eq!(line(&lines, 21, 3), "\"api\";r=21;t=3");
        assert_eq!(line(&lines, 3, 99), "\"api\";r=3;t=99");
    }

    /// Every (remaining, reset) pair a bucket can report, as `Compiled::remaining` and
    /// `Report::admit` derive them from the time until it is full again, is in the table.
    #[test]
    fn every_reported_pair_is_in_the_table() {
        for (burst, t) in [
            (20, SEC),
            (100, SEC * 6 / 10),
            (1000, SEC * 36 / 10),
            (7, SEC * 13 / 10),
            (5000, SEC / 1000),
        ] {
            let lines = Lines::new("\"r\"".into(), burst, t, 1);
            let whole = u64::from(burst) * t;
            let steps = (0..=2000).map(|i| whole * i / 2000);
            let edges =
                (0..=u64::from(burst)).flat_map(|k| [k * t, k * t + 1, (k * t).saturating_sub(1)]);
            for full_in in steps.chain(edges).filter(|&f| f <= whole) {
                let remaining = ((whole - full_in) / t).min(u64::from(burst)) as u32;
                let reset = full_in.div_ceil(SEC);
                assert!(
                    matches!(lines.get(remaining, reset), Line::Table(..)),
                    "burst {burst}, t {t}: {remaining} left, full in {full_in} ns"
                );
                assert_eq!(
                    line(&lines, remaining, reset),
                    format!("\"r\";r={remaining};t={reset}")
                );
            }
        }
    }

    #[test]
    fn rows_are_made_once_per_process() {
        let a = Lines::new("\"shared\"".into(), 5, SEC, 5);
        let b = Lines::new("\"shared\"".into(), 5, SEC, 5);
        let (Line::Table(_, x), Line::Table(_, y)) = (a.get(2, 3), b.get(2, 3)) else {
            panic!("both in the table");
        };
        assert!(
            std::ptr::eq(x, y),
            "a rebuilt layer reuses the rows, it does not leak more"
        );
        assert!(std::ptr::eq(a.policy(), b.policy()));
    }

    #[test]
    fn large_tables_are_not_kept() {
        let hourly = Lines::new("\"hourly\"".into(), 1000, 3600 * SEC / 1000, 3600);
        assert_eq!(hourly.rows.len(), 1001, "1000/hour is six resets a row");
        let large = Lines::new("\"large\"".into(), 10_000, SEC, 10_000);
        assert!(large.rows.is_empty());
        assert!(matches!(large.get(9_999, 1), Line::Formatted { .. }));
        assert_eq!(line(&large, 9_999, 1), "\"large\";r=9999;t=1");
    }

    #[test]
    fn int_values_match_their_numbers() {
        for n in [0, 7, 10, 99, 4095, 4096, 86_400] {
            assert_eq!(int_value(n), n.to_string().as_str());
        }
    }

    #[test]
    fn texts_are_kept_once() {
        let texts = || ["\"x\";q=1;w=1", "2"].map(String::from).into_iter();
        let (a, b) = (static_values(texts()), static_values(texts()));
        assert!(std::ptr::eq(a, b));
        assert!(std::ptr::eq(a[0].as_bytes(), b[0].as_bytes()));
        // The same text cut elsewhere is another list, over the same copy.
        let c = static_values(["\"x\";q=1;w=", "12"].map(String::from).into_iter());
        assert_eq!(
            (c[0].as_bytes(), c[1].as_bytes()),
            (&b"\"x\";q=1;w="[..], &b"12"[..])
        );
        assert!(std::ptr::eq(
            a[0].as_bytes().as_ptr(),
            c[0].as_bytes().as_ptr()
        ));
    }
}
