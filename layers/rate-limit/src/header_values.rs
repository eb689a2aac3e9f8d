//! The `RateLimit-Policy` and `RateLimit` values of one rule: made once per (remaining, reset)
//! pair, then referred to.
//!
//! An admitted request's `RateLimit` value depends only on the rule, the units left and the
//! whole seconds until the bucket is full again; both figures are bounded by the rule (at
//! most `burst` units, at most the time to refill the whole burst). Formatting the value,
//! validating it and copying it into a fresh allocation cost more than the rest of the
//! decision, so each rule keeps a table of finished values: a row per remaining count, made
//! the first time that count is reported, holding a value for every reset. Rows and texts are
//! `'static` (made once per process, like the policy values), so a request carries two
//! references to its values until its response is written, and copying a value out touches
//! no reference count that other cores would fight over.
//!
//! A rule whose table would exceed [`MAX_CELLS`] (long windows with large bursts, such as
//! `1000/hour`) formats each value instead, exactly as before.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};

use http::{HeaderMap, HeaderName, HeaderValue};

/// The IETF draft's headers, and the legacy ones.
pub(crate) const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
pub(crate) const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
pub(crate) const X_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
pub(crate) const X_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
pub(crate) const X_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// The most values one rule keeps: 16,384 cells of roughly 60 bytes, about 1 MB if every
/// pair occurs (the demo's rule, 20 at once refilled one a second, has 441).
pub(crate) const MAX_CELLS: u64 = 1 << 14;

/// A rule's `RateLimit-Policy` and `RateLimit` values for one response.
#[derive(Debug)]
pub(crate) enum Line {
    /// From the rule's table.
    Table(&'static HeaderValue, &'static HeaderValue),
    /// Formatted for this response (past the table): the text, in the one allocation the
    /// value then keeps.
    Formatted(&'static HeaderValue, Box<str>),
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
            Line::Formatted(policy, text) => (
                policy.clone(),
                // `Bytes` takes over the exact-size allocation of the text without a copy.
                HeaderValue::from_maybe_shared(bytes::Bytes::from(String::from(text)))
                    .expect("an sf-string item with integer parameters is a valid header value"),
            ),
        }
    }
}

/// The `RateLimit-Policy` and `RateLimit` values of one rule.
pub(crate) struct Lines {
    /// `"name";q=BURST;w=WINDOW`.
    policy: &'static HeaderValue,
    /// The rule's `"name"` item, quoted.
    item: Box<str>,
    /// The largest reset a value in the table carries, in whole seconds.
    max_reset: u64,
    /// One row per remaining count (`0..=burst`); empty when the table would be too large.
    rows: Box<[OnceLock<&'static [HeaderValue]>]>,
}

impl Lines {
    /// The values of a rule whose item is `item` (already an sf-string), holding up to
    /// `burst` units and full again at most `max_reset` whole seconds after any request,
    /// whose policy window is `window` seconds.
    pub(crate) fn new(item: String, burst: u32, max_reset: u64, window: u64) -> Self {
        let cells = (u64::from(burst) + 1).saturating_mul(max_reset.saturating_add(1));
        let rows = if cells <= MAX_CELLS {
            (0..=burst).map(|_| OnceLock::new()).collect()
        } else {
            Box::default()
        };
        Lines {
            policy: &static_values(std::iter::once(format!("{item};q={burst};w={window}")))[0],
            item: item.into(),
            max_reset,
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
    pub(crate) fn get(&self, remaining: u32, reset_secs: u64) -> Line {
        if reset_secs <= self.max_reset {
            if let Some(row) = self.rows.get(remaining as usize) {
                // `reset_secs <= max_reset`, and every row holds `max_reset + 1` values.
                let row = row.get_or_init(|| self.row(remaining));
                return Line::Table(self.policy, &row[reset_secs as usize]);
            }
        }
        // Past the table: formatted into its own allocation, which the value will keep.
        Line::Formatted(
            self.policy,
            self.text(remaining, reset_secs).into_boxed_str(),
        )
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

    /// Every value for `remaining`, one per reset from 0 to `max_reset`.
    fn row(&self, remaining: u32) -> &'static [HeaderValue] {
        static_values((0..=self.max_reset).map(|t| self.text(remaining, t)))
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

    #[test]
    fn table_values_equal_formatted_ones() {
        let lines = Lines::new("\"api\"".into(), 20, 20, 20);
        assert_eq!(lines.rows.len(), 21);
        assert_eq!(lines.policy(), "\"api\";q=20;w=20");
        for (r, t) in [(0, 0), (19, 1), (20, 20), (7, 13)] {
            assert!(matches!(lines.get(r, t), Line::Table(..)));
            assert_eq!(line(&lines, r, t), format!("\"api\";r={r};t={t}"));
        }
        // Outside the table (a Redis server's clock may report more): formatted.
        assert!(matches!(lines.get(21, 3), Line::Formatted(..)));
        assert_eq!(line(&lines, 21, 3), "\"api\";r=21;t=3");
        assert_eq!(line(&lines, 3, 99), "\"api\";r=3;t=99");
    }

    #[test]
    fn rows_are_made_once_per_process() {
        let a = Lines::new("\"shared\"".into(), 5, 5, 5);
        let b = Lines::new("\"shared\"".into(), 5, 5, 5);
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
        let lines = Lines::new("\"hourly\"".into(), 1000, 3600, 3600);
        assert!(lines.rows.is_empty());
        assert_eq!(line(&lines, 999, 3600), "\"hourly\";r=999;t=3600");
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
