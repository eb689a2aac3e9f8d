//! [`ServerTiming`]: entries a handler adds to the `Server-Timing` header.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tower_plugins_core::{is_tchar, write_quoted};

/// A handle, found in the request extensions, through which a handler adds its own
/// `Server-Timing` entries (`db;dur=12.5;desc="users"`).
///
/// The timer writes them, in the order they were recorded, before its own `total` entry. Names
/// are HTTP tokens: other characters are dropped. Descriptions are written as quoted strings;
/// control characters are dropped. At most 32 entries are kept per response.
///
/// With axum, take it as `Extension<ServerTiming>`:
///
/// ```
/// use std::time::Duration;
/// use tower_plugins_timer::ServerTiming;
///
/// async fn handler(axum_like: http::Request<()>) {
///     if let Some(st) = axum_like.extensions().get::<ServerTiming>() {
///         st.record("db", Duration::from_micros(12_500));
///         st.record_with_description("cache", Duration::ZERO, "miss");
///     }
/// }
/// ```
#[derive(Debug, Clone, Default)]
pub struct ServerTiming {
    entries: Arc<Mutex<Vec<Entry>>>,
}

#[derive(Debug)]
struct Entry {
    name: String,
    dur: Option<Duration>,
    desc: Option<String>,
}

const MAX_ENTRIES: usize = 32;
const MAX_LEN: usize = 128;

impl ServerTiming {
    /// Adds `name;dur=<ms>`.
    pub fn record(&self, name: &str, dur: Duration) {
        self.push(name, Some(dur), None);
    }

    /// Adds `name;dur=<ms>;desc="<description>"`.
    pub fn record_with_description(&self, name: &str, dur: Duration, description: &str) {
        self.push(name, Some(dur), Some(description));
    }

    /// Adds an entry without a duration: `name;desc="<description>"`, or just `name`.
    pub fn mark(&self, name: &str, description: Option<&str>) {
        self.push(name, None, description);
    }

    fn push(&self, name: &str, dur: Option<Duration>, desc: Option<&str>) {
        let name: String = name
            .chars()
            .filter(|c| u8::try_from(*c).is_ok_and(is_tchar))
            .take(MAX_LEN)
            .collect();
        if name.is_empty() {
            return;
        }
        let desc = desc.map(|d| {
            d.chars()
                .filter(|c| !c.is_control())
                .take(MAX_LEN)
                .collect::<String>()
        });
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() < MAX_ENTRIES {
            entries.push(Entry { name, dur, desc });
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.lock().map(|e| e.is_empty()).unwrap_or(true)
    }

    /// Writes the entries as a comma-separated list (with a trailing `, ` when not empty).
    pub(crate) fn write_entries(&self, out: &mut String) -> fmt::Result {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        for e in entries.iter() {
            out.push_str(&e.name);
            if let Some(d) = e.dur {
                out.push_str(";dur=");
                out.push_str(crate::format::Decimal::new(d, crate::TimeUnit::Millis, 3).as_str());
            }
            if let Some(desc) = &e.desc {
                out.push_str(";desc=");
                write_quoted(out, desc)?;
            }
            out.push_str(", ");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_sanitized_and_bounded() {
        let st = ServerTiming::default();
        st.record("db", Duration::from_micros(12_500));
        st.record_with_description("ca che\n", Duration::ZERO, "say \"hi\"\r\n");
        st.mark("miss", None);
        st.mark("\u{1F600}", Some("x")); // no token characters left: ignored
        let mut out = String::new();
        st.write_entries(&mut out).unwrap();
        assert_eq!(
            out,
            "db;dur=12.500, cache;dur=0.000;desc=\"say \\\"hi\\\"\", miss, "
        );
        for i in 0..100 {
            st.mark(&format!("m{i}"), None);
        }
        assert_eq!(st.entries.lock().unwrap().len(), MAX_ENTRIES);
    }
}
