//! [`TimerLayer`]: the configuration, shared by every clone.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::HeaderName;
use tower_layer::Layer;
use tower_plugins_core::{BodyOutcome, is_tchar, write_quoted};

use crate::format::TimeUnit;
use crate::service::Timer;

/// What the timer measured for one request, handed to [`TimerLayer::on_complete`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    /// When the request entered the first plugin that measures time (see
    /// [`RequestStart`](tower_plugins_core::RequestStart)).
    pub start: Instant,
    /// Time from the start to the response head.
    pub head: Duration,
    /// Time from the start to the end of the response body (or to the moment it was dropped).
    pub end: Duration,
    /// How the body finished.
    pub outcome: BodyOutcome,
    /// Bytes of body sent.
    pub bytes: u64,
}

pub(crate) type OnComplete = Arc<dyn Fn(&Timings) + Send + Sync>;

#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) response_time: Option<HeaderName>,
    pub(crate) unit: TimeUnit,
    pub(crate) digits: u8,
    pub(crate) suffix: bool,
    pub(crate) server_timing: bool,
    pub(crate) metric: String,
    pub(crate) description: Option<String>,
    pub(crate) handler_entries: bool,
    pub(crate) on_complete: Option<OnComplete>,
    /// The Server-Timing value around its duration (`total;dur=` and `;desc="..."`), written
    /// once here rather than per response.
    pub(crate) st_head: Box<[u8]>,
    pub(crate) st_tail: Box<[u8]>,
}

impl Shared {
    /// Rewrites the parts derived from the settings.
    fn derive(&mut self) {
        self.st_head = format!("{};dur=", self.metric).into_bytes().into();
        let mut tail = String::new();
        if let Some(d) = &self.description {
            tail.push_str(";desc=");
            // Writing to a String does not fail.
            let _ = write_quoted(&mut tail, d);
        }
        self.st_tail = tail.into_bytes().into();
    }
}

/// Measures each request and writes `X-Response-Time` and `Server-Timing` on the response.
///
/// See the [crate docs](crate) for an example. Defaults (as express's `response-time`, plus
/// Server-Timing): header `x-response-time`, milliseconds, 3 digits, with the unit suffix
/// (`12.345ms`); `Server-Timing: total;dur=12.345`; handler entries enabled.
#[derive(Clone)]
#[must_use]
pub struct TimerLayer {
    pub(crate) shared: Arc<Shared>,
}

impl Default for TimerLayer {
    fn default() -> Self {
        let mut shared = Shared {
            response_time: Some(HeaderName::from_static("x-response-time")),
            unit: TimeUnit::Millis,
            digits: 3,
            suffix: true,
            server_timing: true,
            metric: "total".to_owned(),
            description: None,
            handler_entries: true,
            on_complete: None,
            st_head: Box::default(),
            st_tail: Box::default(),
        };
        shared.derive();
        TimerLayer {
            shared: Arc::new(shared),
        }
    }
}

impl TimerLayer {
    /// A timer with the default settings.
    pub fn new() -> Self {
        Self::default()
    }

    fn map(mut self, f: impl FnOnce(&mut Shared)) -> Self {
        let shared = Arc::make_mut(&mut self.shared);
        f(shared);
        shared.derive();
        self
    }

    /// The response-time header name, or `None` to write no response-time header.
    /// Default: `x-response-time`.
    ///
    /// ```
    /// use http::HeaderName;
    /// use tower_plugins_timer::TimerLayer;
    /// let layer = TimerLayer::new().header(Some(HeaderName::from_static("x-elapsed")));
    /// ```
    pub fn header(self, name: Option<HeaderName>) -> Self {
        self.map(|s| s.response_time = name)
    }

    /// The unit of the response-time header. Default: milliseconds.
    pub fn unit(self, unit: TimeUnit) -> Self {
        self.map(|s| s.unit = unit)
    }

    /// Decimal digits of the response-time header, at most 9 (larger values are capped).
    /// Default: 3.
    pub fn digits(self, digits: u8) -> Self {
        self.map(|s| s.digits = digits.min(9))
    }

    /// Whether the unit suffix follows the number (`12.345ms` or `12.345`). Default: true.
    pub fn suffix(self, suffix: bool) -> Self {
        self.map(|s| s.suffix = suffix)
    }

    /// Whether to append a `Server-Timing` entry. Default: true.
    pub fn server_timing(self, enabled: bool) -> Self {
        self.map(|s| s.server_timing = enabled)
    }

    /// The Server-Timing metric name. Characters outside an HTTP token are dropped; an empty
    /// result keeps the previous name. Default: `total`.
    pub fn server_timing_name(self, name: &str) -> Self {
        let clean: String = name
            .chars()
            .filter(|c| u8::try_from(*c).is_ok_and(is_tchar))
            .collect();
        self.map(|s| {
            if !clean.is_empty() {
                s.metric = clean;
            }
        })
    }

    /// A description for the Server-Timing metric (`desc="..."`). Default: none.
    pub fn server_timing_description(self, description: Option<&str>) -> Self {
        let d = description.map(str::to_owned);
        self.map(|s| s.description = d)
    }

    /// Whether handlers may add their own entries through the [`ServerTiming`](crate::ServerTiming)
    /// request extension. Turning it off saves one small allocation per request. Default: true.
    pub fn handler_entries(self, enabled: bool) -> Self {
        self.map(|s| s.handler_entries = enabled)
    }

    /// Calls `f` once per request with the head and end-of-body timings, when the body ends or
    /// is dropped. Multiple calls override previous ones.
    ///
    /// ```
    /// use tower_plugins_timer::TimerLayer;
    /// let layer = TimerLayer::new().on_complete(|t| {
    ///     println!("head after {:?}, body done after {:?} ({:?})", t.head, t.end, t.outcome);
    /// });
    /// ```
    pub fn on_complete<F>(self, f: F) -> Self
    where
        F: Fn(&Timings) + Send + Sync + 'static,
    {
        self.map(|s| s.on_complete = Some(Arc::new(f)))
    }

    /// A one-line summary of the effective settings, as the plugin stack prints it.
    pub fn describe(&self) -> String {
        let s = &self.shared;
        let mut parts = Vec::new();
        match &s.response_time {
            Some(h) => parts.push(format!(
                "{h}: {} digits in {}{}",
                s.digits,
                s.unit,
                if s.suffix {
                    " with suffix"
                } else {
                    " without suffix"
                }
            )),
            None => parts.push("no response-time header".to_owned()),
        }
        if s.server_timing {
            let mut st = format!("server-timing: {}", s.metric);
            if let Some(d) = &s.description {
                st.push_str(&format!(" ({d:?})"));
            }
            if s.handler_entries {
                st.push_str(" + handler entries");
            }
            parts.push(st);
        } else {
            parts.push("no server-timing".to_owned());
        }
        parts.join(", ")
    }
}

impl fmt::Debug for TimerLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerLayer")
            .field("settings", &self.describe())
            .field("on_complete", &self.shared.on_complete.is_some())
            .finish()
    }
}

impl<S> Layer<S> for TimerLayer {
    type Service = Timer<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Timer {
            inner,
            shared: self.shared.clone(),
        }
    }
}
