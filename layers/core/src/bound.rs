//! Bounds on the sizes, counts and durations a configuration sets: one check and one message
//! for every plugin, so that no size is unbounded and each refusal reads the same.

use std::ops::RangeInclusive;
use std::time::Duration;

use crate::error::{ConfigError, ProblemKind};
use crate::human::HumanDuration;

/// `value` when it is in `range`, else a problem saying the range.
///
/// # Errors
/// [`ProblemKind::InvalidValue`] naming the range and the value.
///
/// ```
/// use tower_plugins_core::count_in;
/// assert_eq!(count_in(100, 1..=10_000).unwrap(), 100);
/// let e = count_in(4_000_000_000, 1..=10_000).unwrap_err();
/// assert_eq!(e.problems()[0].message, "must be from 1 to 10000, not 4000000000");
/// ```
pub fn count_in(value: i64, range: RangeInclusive<u64>) -> Result<u64, ConfigError> {
    match u64::try_from(value) {
        Ok(v) if range.contains(&v) => Ok(v),
        _ => Err(ConfigError::new(
            ProblemKind::InvalidValue,
            "",
            format!(
                "must be from {} to {}, not {value}",
                range.start(),
                range.end()
            ),
        )),
    }
}

/// `value` when it is in `range`, else a problem saying the range in human form.
///
/// # Errors
/// [`ProblemKind::InvalidValue`] naming the range and the value.
///
/// ```
/// # use std::time::Duration;
/// use tower_plugins_core::duration_in;
/// let range = Duration::from_millis(1)..=Duration::from_secs(60);
/// assert!(duration_in(Duration::from_secs(5), range.clone()).is_ok());
/// let e = duration_in(Duration::ZERO, range).unwrap_err();
/// assert_eq!(e.problems()[0].message, "must be from 1ms to 1m, not 0s");
/// ```
pub fn duration_in(
    value: Duration,
    range: RangeInclusive<Duration>,
) -> Result<Duration, ConfigError> {
    if range.contains(&value) {
        return Ok(value);
    }
    Err(ConfigError::new(
        ProblemKind::InvalidValue,
        "",
        format!(
            "must be from {} to {}, not {}",
            HumanDuration(*range.start()),
            HumanDuration(*range.end()),
            HumanDuration(value)
        ),
    ))
}
