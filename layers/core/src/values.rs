//! Config values every plugin reads the same way: one of a fixed set of words, and HTTP
//! methods.

use http::Method;

use crate::error::{ConfigError, ProblemKind};

/// `value` when it is one of `choices`; otherwise a problem listing them and naming the
/// nearest.
///
/// # Errors
/// [`ProblemKind::InvalidValue`] for any other word.
///
/// ```
/// use tower_plugins_core::choice;
/// assert_eq!(choice("lax", &["strict", "lax", "none"]).unwrap(), "lax");
/// let e = choice("lac", &["strict", "lax", "none"]).unwrap_err();
/// assert!(e.to_string().contains("did you mean \"lax\"?"));
/// ```
pub fn choice<'a>(value: &str, choices: &[&'a str]) -> Result<&'a str, ConfigError> {
    if let Some(c) = choices.iter().find(|c| **c == value) {
        return Ok(c);
    }
    let mut msg = format!("{value:?} is not one of {}", choices.join(", "));
    if let Some(n) = crate::nearest(value, choices.iter().copied()) {
        msg.push_str(&format!(" (did you mean {n:?}?)"));
    }
    Err(ConfigError::new(ProblemKind::InvalidValue, "", msg))
}

/// A method name as written in config: case-insensitive, an HTTP token.
///
/// # Errors
/// [`ProblemKind::InvalidValue`] for anything that is not a method token.
///
/// ```
/// assert_eq!(tower_plugins_core::parse_method(" post ").unwrap(), http::Method::POST);
/// assert!(tower_plugins_core::parse_method("GET POST").is_err());
/// ```
pub fn parse_method(m: &str) -> Result<Method, ConfigError> {
    let upper = m.trim().to_ascii_uppercase();
    Method::from_bytes(upper.as_bytes())
        .ok()
        .filter(|_| !upper.is_empty())
        .ok_or_else(|| {
            ConfigError::new(
                ProblemKind::InvalidValue,
                "",
                format!("{m:?} is not an HTTP method"),
            )
            .with_hint("write methods as tokens, such as \"GET\" or \"POST\"")
        })
}
