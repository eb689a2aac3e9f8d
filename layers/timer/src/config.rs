//! [`TimerConfig`]: the `use = "timer"` table of a plugin stack.

use serde::Deserialize;
use tower_plugins_core::{ConfigError, ProblemKind, Problems, TOKEN_CHARS, is_tchar};

use crate::{TimeUnit, TimerLayer};

/// The timer's configuration, as written in a plugin stack file: its keys and defaults are
/// in the [crate docs](crate#configuration).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimerConfig {
    /// The response-time header name; empty for none. Default `x-response-time`.
    pub header: String,
    /// The unit of the response-time header. Default `ms`.
    pub unit: TimeUnit,
    /// Decimal digits, 0 to 9. Default 3.
    pub digits: u8,
    /// Whether the unit suffix follows the number. Default true.
    pub suffix: bool,
    /// Whether to append a Server-Timing entry. Default true.
    pub server_timing: bool,
    /// The Server-Timing metric name (an HTTP token). Default `total`.
    pub server_timing_name: String,
    /// An optional description of the metric.
    pub server_timing_description: Option<String>,
    /// Whether handlers may add their own Server-Timing entries. Default true.
    pub handler_entries: bool,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            header: "x-response-time".to_owned(),
            unit: TimeUnit::Millis,
            digits: 3,
            suffix: true,
            server_timing: true,
            server_timing_name: "total".to_owned(),
            server_timing_description: None,
            handler_entries: true,
        }
    }
}

impl TryFrom<TimerConfig> for TimerLayer {
    type Error = ConfigError;

    fn try_from(c: TimerConfig) -> Result<Self, ConfigError> {
        let mut problems = Problems::new();
        let header = if c.header.is_empty() {
            None
        } else {
            problems.check("header", tower_plugins_core::header_name(&c.header))
        };
        if c.digits > 9 {
            problems.push(
                ProblemKind::InvalidValue,
                "digits",
                format!(
                    "{} digits is more than the 9 a nanosecond clock gives",
                    c.digits
                ),
            );
        }
        if c.server_timing_name.is_empty()
            || !c
                .server_timing_name
                .chars()
                .all(|c| u8::try_from(c).is_ok_and(is_tchar))
        {
            problems.push(
                ProblemKind::InvalidValue,
                "server_timing_name",
                format!(
                    "{:?} is not an HTTP token ({TOKEN_CHARS})",
                    c.server_timing_name
                ),
            );
        }
        if let Some(d) = &c.server_timing_description {
            if d.chars().any(|c| c.is_control() || !c.is_ascii()) {
                problems.push(
                    ProblemKind::InvalidValue,
                    "server_timing_description",
                    "a description must be printable ASCII",
                );
            }
        }
        problems.finish(())?;
        Ok(TimerLayer::new()
            .header(header)
            .unit(c.unit)
            .digits(c.digits)
            .suffix(c.suffix)
            .server_timing(c.server_timing)
            .server_timing_name(&c.server_timing_name)
            .server_timing_description(c.server_timing_description.as_deref())
            .handler_entries(c.handler_entries))
    }
}

impl tower_plugins_core::Plugin for crate::TimerLayer {
    type Config = TimerConfig;
    type Service<S> = crate::Timer<S>;
    type Future<F> = crate::ResponseFuture<F>;
    type Body<B> = crate::ResponseBody<B>;
    type Hooks = crate::TimerLayer;

    fn from_config(
        config: TimerConfig,
        _ctx: &tower_plugins_core::PluginContext,
    ) -> Result<Self, ConfigError> {
        config.try_into()
    }

    fn describe(&self) -> String {
        crate::TimerLayer::describe(self)
    }

    fn hooks(&self) -> Option<crate::TimerLayer> {
        Some(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_round_trip() {
        let c: TimerConfig = toml::from_str("").unwrap();
        assert_eq!(c, TimerConfig::default());
        let c: TimerConfig = toml::from_str("unit = \"us\"\ndigits = 0\nheader = \"\"").unwrap();
        let l = TimerLayer::try_from(c).unwrap();
        assert!(l.describe().starts_with("no response-time header"));
    }

    #[test]
    fn every_invalid_value_is_reported_at_once() {
        let c = TimerConfig {
            header: "bad header".into(),
            digits: 12,
            server_timing_name: "to tal".into(),
            server_timing_description: Some("line\nbreak".into()),
            ..TimerConfig::default()
        };
        let e = TimerLayer::try_from(c).unwrap_err();
        let keys = e.keys();
        assert_eq!(
            keys,
            [
                "header",
                "digits",
                "server_timing_name",
                "server_timing_description"
            ]
        );
    }

    #[test]
    fn unknown_units_and_keys_are_refused() {
        assert!(toml::from_str::<TimerConfig>("unit = \"minutes\"").is_err());
        assert!(toml::from_str::<TimerConfig>("headr = \"x\"").is_err());
    }
}
