//! Human-readable durations (`"250ms"`, `"10m"`) and quotas (`"100/min"`, `"5/s"`).

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

use crate::error::{ConfigError, ProblemKind};

const DURATION_HINT: &str =
    "write a number and a unit, such as \"250ms\", \"30s\", \"10m\", \"1h\" or \"1h 30m\"";
const QUOTA_HINT: &str =
    "write COUNT/PERIOD, such as \"100/min\", \"5/s\", \"1000/hour\" or \"10/30s\"";

/// Parses a human duration: `"250ms"`, `"30s"`, `"10m"` (minutes), `"1h 30m"`, `"2days"`.
///
/// Units: `ns`, `us`, `ms`, `s`/`sec`, `m`/`min`, `h`/`hr`, `d`/`day`, `w`/`week` (and their
/// plurals). A bare number is refused because its unit would be a guess.
///
/// # Errors
/// A [`ConfigError`] (kind [`ProblemKind::InvalidValue`]) with a hint.
///
/// ```
/// # use std::time::Duration;
/// use tower_plugins_core::parse_duration;
/// assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
/// assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
/// assert!(parse_duration("10").is_err());
/// ```
pub fn parse_duration(s: &str) -> Result<Duration, ConfigError> {
    let t = s.trim();
    let invalid = |why: String| {
        ConfigError::new(
            ProblemKind::InvalidValue,
            "",
            format!("invalid duration {s:?}: {why}"),
        )
        .with_hint(DURATION_HINT)
    };
    if t.is_empty() {
        return Err(invalid("it is empty".into()));
    }
    if t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(invalid("it has no unit".into()));
    }
    humantime::parse_duration(t).map_err(|e| invalid(e.to_string().to_lowercase()))
}

/// A duration written in human form, for serde configs (`max_age = "10m"`).
///
/// Deserializes from a string with [`parse_duration`]; displays in the same form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// The duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

impl From<Duration> for HumanDuration {
    fn from(d: Duration) -> Self {
        HumanDuration(d)
    }
}

impl From<HumanDuration> for Duration {
    fn from(d: HumanDuration) -> Self {
        d.0
    }
}

impl FromStr for HumanDuration {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_duration(s).map(HumanDuration)
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_zero() {
            return f.write_str("0s");
        }
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

/// A rate: `count` events per `period`, such as `100/min`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    count: NonZeroU32,
    period: Duration,
}

impl Quota {
    /// The longest period a quota may have: 366 days. Rate arithmetic in nanoseconds stays
    /// far from overflow, and a limit that resets less than once a year is not a rate.
    pub const MAX_PERIOD: Duration = Duration::from_secs(366 * 86_400);

    /// The shortest time between two events a quota may ask for: one microsecond (at most a
    /// million events per second), the resolution the Redis backend counts in.
    pub const MIN_INTERVAL: Duration = Duration::from_micros(1);

    /// `count` events per `period`.
    ///
    /// # Errors
    /// When `count` or `period` is zero, `period` is longer than [`Quota::MAX_PERIOD`], or
    /// `period / count` is shorter than [`Quota::MIN_INTERVAL`].
    pub fn new(count: u32, period: Duration) -> Result<Self, ConfigError> {
        let Some(count) = NonZeroU32::new(count) else {
            return Err(ConfigError::new(
                ProblemKind::InvalidValue,
                "",
                "a quota's count must be at least 1",
            )
            .with_hint(QUOTA_HINT));
        };
        if period.is_zero() {
            return Err(ConfigError::new(
                ProblemKind::InvalidValue,
                "",
                "a quota's period must be longer than zero",
            )
            .with_hint(QUOTA_HINT));
        }
        let too = |what: String| {
            Err(ConfigError::new(ProblemKind::InvalidValue, "", what).with_hint(QUOTA_HINT))
        };
        if period > Self::MAX_PERIOD {
            return too("a quota's period must be at most 366 days".to_owned());
        }
        if period / count.get() < Self::MIN_INTERVAL {
            return too(format!(
                "{count} per {} is more than one per microsecond (1000000/s), the fastest rate",
                HumanDuration(period)
            ));
        }
        Ok(Quota { count, period })
    }

    /// `count` events per second.
    pub fn per_second(count: NonZeroU32) -> Self {
        Quota {
            count,
            period: Duration::from_secs(1),
        }
    }

    /// `count` events per minute.
    pub fn per_minute(count: NonZeroU32) -> Self {
        Quota {
            count,
            period: Duration::from_secs(60),
        }
    }

    /// How many events the quota allows per period.
    pub fn count(&self) -> NonZeroU32 {
        self.count
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// The time between two events at a steady rate (`period / count`).
    pub fn interval(&self) -> Duration {
        self.period / self.count.get()
    }
}

/// Parses a quota: `"100/min"`, `"5/s"`, `"1000/hour"`, `"10/30s"`, `"100/1m"`.
///
/// After the slash comes a unit (`s`, `sec`, `second`, `m`, `min`, `minute`, `h`, `hr`, `hour`,
/// `d`, `day`) meaning one of it, or a duration as [`parse_duration`] reads it.
///
/// # Errors
/// A [`ConfigError`] (kind [`ProblemKind::InvalidValue`]) for a malformed text, a zero or
/// negative count, or a zero period.
///
/// ```
/// # use std::time::Duration;
/// use tower_plugins_core::parse_quota;
/// let q = parse_quota("100/min").unwrap();
/// assert_eq!(q.count().get(), 100);
/// assert_eq!(q.period(), Duration::from_secs(60));
/// assert!(parse_quota("0/s").is_err());
/// ```
pub fn parse_quota(s: &str) -> Result<Quota, ConfigError> {
    let invalid = |why: &str| {
        ConfigError::new(
            ProblemKind::InvalidValue,
            "",
            format!("invalid quota {s:?}: {why}"),
        )
        .with_hint(QUOTA_HINT)
    };
    let Some((count, period)) = s.trim().split_once('/') else {
        return Err(invalid("it has no `/`"));
    };
    let count = count.trim();
    let period = period.trim();
    if count.starts_with('-') {
        return Err(invalid("the count is negative"));
    }
    let count: u64 = count
        .parse()
        .map_err(|_| invalid("the count is not a whole number"))?;
    let Ok(count) = u32::try_from(count) else {
        return Err(invalid(&format!("the count is larger than {}", u32::MAX)));
    };
    let unit = match period.to_ascii_lowercase().as_str() {
        "s" | "sec" | "secs" | "second" | "seconds" => Some(1),
        "m" | "min" | "mins" | "minute" | "minutes" => Some(60),
        "h" | "hr" | "hrs" | "hour" | "hours" => Some(3600),
        "d" | "day" | "days" => Some(86_400),
        _ => None,
    };
    let period = match unit {
        Some(secs) => Duration::from_secs(secs),
        None => {
            parse_duration(period).map_err(|_| invalid(&format!("unknown period `{period}`")))?
        }
    };
    Quota::new(count, period).map_err(|e| {
        let why = e.problems()[0].message.clone();
        invalid(&why)
    })
}

impl FromStr for Quota {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_quota(s)
    }
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.period.as_secs() {
            1 if self.period.subsec_nanos() == 0 => "s".to_owned(),
            60 if self.period.subsec_nanos() == 0 => "min".to_owned(),
            3600 if self.period.subsec_nanos() == 0 => "hour".to_owned(),
            86_400 if self.period.subsec_nanos() == 0 => "day".to_owned(),
            _ => HumanDuration(self.period).to_string().replace(' ', ""),
        };
        write!(f, "{}/{}", self.count, unit)
    }
}

#[cfg(feature = "serde")]
mod serde_impls {
    use super::{HumanDuration, Quota, parse_duration, parse_quota};
    use serde::de::{self, Deserialize, Deserializer, Visitor};
    use std::fmt;

    struct StrVisitor(&'static str);

    impl Visitor<'_> for StrVisitor {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }
    }

    fn first_message(e: &crate::ConfigError) -> String {
        let p = &e.problems()[0];
        match &p.hint {
            Some(h) => format!("{}; hint: {h}", p.message),
            None => p.message.clone(),
        }
    }

    impl<'de> Deserialize<'de> for HumanDuration {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let s = d.deserialize_str(StrVisitor("a duration such as \"250ms\" or \"10m\""))?;
            parse_duration(&s)
                .map(HumanDuration)
                .map_err(|e| de::Error::custom(first_message(&e)))
        }
    }

    impl<'de> Deserialize<'de> for Quota {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let s = d.deserialize_str(StrVisitor("a quota such as \"100/min\""))?;
            parse_quota(&s).map_err(|e| de::Error::custom(first_message(&e)))
        }
    }

    impl serde::Serialize for HumanDuration {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(self)
        }
    }

    impl serde::Serialize for Quota {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(self)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration(" 30s ").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("1h 30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(
            parse_duration("2days").unwrap(),
            Duration::from_secs(172_800)
        );
        for bad in ["", "10", "1.5", "ten minutes", "10 parsecs", "-5s"] {
            let e = parse_duration(bad).unwrap_err();
            assert_eq!(e.problems()[0].kind, ProblemKind::InvalidValue, "{bad}");
            assert!(e.problems()[0].hint.is_some());
        }
    }

    #[test]
    fn quotas() {
        let q = parse_quota("100/min").unwrap();
        assert_eq!(
            (q.count().get(), q.period()),
            (100, Duration::from_secs(60))
        );
        let q = parse_quota("5/s").unwrap();
        assert_eq!(q.interval(), Duration::from_millis(200));
        assert_eq!(
            parse_quota("10/30s").unwrap().period(),
            Duration::from_secs(30)
        );
        assert_eq!(
            parse_quota("1000 / Hour").unwrap().period(),
            Duration::from_secs(3600)
        );
        assert_eq!(parse_quota("100/1m").unwrap().to_string(), "100/min");
        assert_eq!(parse_quota("7/30s").unwrap().to_string(), "7/30s");
        for bad in [
            "100",
            "0/s",
            "-1/s",
            "x/s",
            "5/fortnight",
            "5/0s",
            "99999999999/s",
        ] {
            let e = parse_quota(bad).unwrap_err();
            assert!(e.to_string().contains("invalid quota"), "{bad}: {e}");
        }
    }

    #[test]
    fn quotas_past_their_bounds_say_which_bound() {
        for (bad, why) in [
            ("1/600y", "at most 366 days"),
            ("1/367d", "at most 366 days"),
            ("4294967296/s", "larger than 4294967295"),
            ("1000001/s", "more than one per microsecond"),
            ("4294967295/1h", "more than one per microsecond"),
        ] {
            let e = parse_quota(bad).unwrap_err();
            assert!(e.to_string().contains(why), "{bad}: {e}");
        }
        for good in ["1/366d", "1000000/s", "4294967295/2h"] {
            assert!(parse_quota(good).is_ok(), "{good}");
        }
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_forms() {
        #[derive(serde::Deserialize)]
        struct C {
            d: HumanDuration,
            q: Quota,
        }
        let c: C = toml::from_str("d = \"2s\"\nq = \"3/s\"").unwrap();
        assert_eq!(c.d.get(), Duration::from_secs(2));
        assert_eq!(c.q.count().get(), 3);
        let e = toml::from_str::<C>("d = \"2 parsecs\"\nq = \"3/s\"")
            .err()
            .unwrap();
        assert!(e.message().contains("invalid duration"), "{e}");
        let e = toml::from_str::<C>("d = 2\nq = \"3/s\"").err().unwrap();
        assert!(e.message().contains("invalid type"), "{e}");
    }
}
