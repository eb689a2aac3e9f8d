//! [`header_name`]: header names from configuration, stored once for the process.

use std::sync::Mutex;

use http::HeaderName;

use crate::{ConfigError, ProblemKind, TOKEN_CHARS};

/// The distinct names parsed so far, each stored once for the process.
static NAMES: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

/// How many distinct names are stored; names past it are kept as parsed.
const MAX_NAMES: usize = 256;

/// Parses a header name from configuration (surrounding spaces trimmed).
///
/// Each distinct name is stored once for the process (up to 256 of them, about their length
/// each): the name a plugin writes on every response is then a static one, whose clone is a
/// copy, where a parsed name's clone shares a reference count between every thread that
/// writes it.
///
/// # Errors
/// A [`ConfigError`] ([`ProblemKind::InvalidValue`]) naming the text, with no key (nest it).
///
/// ```
/// assert_eq!(tower_plugins_core::header_name(" X-Request-Id ").unwrap(), "x-request-id");
/// assert!(tower_plugins_core::header_name("bad header").is_err());
/// ```
pub fn header_name(s: &str) -> Result<HeaderName, ConfigError> {
    let name = HeaderName::from_bytes(s.trim().as_bytes()).map_err(|_| {
        ConfigError::new(
            ProblemKind::InvalidValue,
            "",
            format!("{s:?} is not a valid header name"),
        )
        .with_hint(format!(
            "header names are {TOKEN_CHARS}, such as \"x-request-id\""
        ))
    })?;
    Ok(stored(name))
}

/// `name` as the static name stored for its text, stored first if it is new and there is
/// room; else `name` itself.
fn stored(name: HeaderName) -> HeaderName {
    let Ok(mut names) = NAMES.lock() else {
        return name;
    };
    let text = match names.iter().find(|n| **n == name.as_str()) {
        Some(text) => *text,
        None if names.len() < MAX_NAMES => {
            let text: &'static str = Box::leak(name.as_str().into());
            names.push(text);
            text
        }
        None => return name,
    };
    // The text is a valid name already, lowercased by `from_bytes`: this cannot panic.
    HeaderName::from_static(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stored_once_and_bounded() {
        let a = header_name("X-Stored-Once").unwrap();
        let b = header_name("x-stored-once").unwrap();
        assert_eq!((a.as_str(), b.as_str()), ("x-stored-once", "x-stored-once"));
        let stored = |text: &str| NAMES.lock().unwrap().iter().filter(|n| **n == text).count();
        assert_eq!(stored("x-stored-once"), 1);

        for i in 0..MAX_NAMES + 10 {
            let text = format!("x-bound-{i}");
            assert_eq!(header_name(&text).unwrap().as_str(), text);
        }
        assert_eq!(NAMES.lock().unwrap().len(), MAX_NAMES);
        assert_eq!(
            header_name("content-type").unwrap(),
            http::header::CONTENT_TYPE
        );
    }
}
