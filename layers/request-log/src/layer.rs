//! [`RequestLogLayer`]: format, sink, filters and request ids, shared by every clone.

use std::fmt;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::HeaderName;
use tower_layer::Layer;
use tower_plugins_core::{ClientIpResolver, ConfigError, PathSet, ProblemKind};

use crate::format::LogFormat;
use crate::service::RequestLog;
use crate::sink::{Rotate, RotatingFile, Target, Writer};

/// Where the lines go.
#[derive(Clone)]
pub(crate) enum Sink {
    /// One `INFO` event per request, target `tower_plugins::request_log`.
    Tracing,
    /// Lines to a writer thread.
    Lines(Writer),
}

/// Keeps an exact fraction of lines, deterministically (no random numbers): a fixed-point
/// accumulator crosses an integer once every `1 / rate` lines.
#[derive(Debug)]
pub(crate) struct Sampler {
    step: u64,
    acc: AtomicU64,
}

impl Sampler {
    pub(crate) fn new(rate: f64) -> Self {
        Sampler {
            step: (rate.clamp(0.0, 1.0) * (1u64 << 32) as f64) as u64,
            acc: AtomicU64::new(0),
        }
    }

    pub(crate) fn keep(&self) -> bool {
        let prev = self.acc.fetch_add(self.step, Ordering::Relaxed);
        (prev.wrapping_add(self.step) >> 32) != (prev >> 32)
    }
}

/// A copy samples from the start again.
impl Clone for Sampler {
    fn clone(&self) -> Self {
        Sampler {
            step: self.step,
            acc: AtomicU64::new(0),
        }
    }
}

#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) format: LogFormat,
    pub(crate) sink: Sink,
    pub(crate) skip: PathSet,
    pub(crate) only_status: Vec<RangeInclusive<u16>>,
    pub(crate) slower_than: Option<Duration>,
    pub(crate) sample: Option<Sampler>,
    pub(crate) redact_headers: Vec<HeaderName>,
    pub(crate) redact_query: Vec<String>,
    pub(crate) include_query: bool,
    pub(crate) request_id_header: Option<HeaderName>,
    pub(crate) trust_request_id: bool,
    pub(crate) client_ip: Arc<ClientIpResolver>,
}

impl Shared {
    /// Whether a finished request is written, by status and duration, then sampling.
    pub(crate) fn keeps(&self, status: u16, duration: Duration) -> bool {
        if !self.only_status.is_empty() && !self.only_status.iter().any(|s| s.contains(&status)) {
            return false;
        }
        if self.slower_than.is_some_and(|t| duration < t) {
            return false;
        }
        self.sample.as_ref().is_none_or(Sampler::keep)
    }

    pub(crate) fn is_redacted(&self, name: &HeaderName) -> bool {
        self.redact_headers.contains(name)
    }
}

/// Access logs for a tower service. See the [crate docs](crate) for an example.
///
/// Defaults: `tracing` (one `INFO` event per request; `combined` lines for the line sinks), request ids in
/// `X-Request-Id` (a well-formed incoming one is reused), `Authorization`, `Cookie`, `Set-Cookie`
/// and `Proxy-Authorization` redacted, every request logged.
#[derive(Clone)]
#[must_use]
pub struct RequestLogLayer {
    pub(crate) shared: Arc<Shared>,
}

impl Default for RequestLogLayer {
    fn default() -> Self {
        RequestLogLayer {
            shared: Arc::new(Shared {
                format: LogFormat::Combined,
                sink: Sink::Tracing,
                skip: PathSet::default(),
                only_status: Vec::new(),
                slower_than: None,
                sample: None,
                redact_headers: default_redacted(),
                redact_query: Vec::new(),
                include_query: false,
                request_id_header: Some(HeaderName::from_static("x-request-id")),
                trust_request_id: true,
                client_ip: Arc::new(ClientIpResolver::new()),
            }),
        }
    }
}

pub(crate) fn default_redacted() -> Vec<HeaderName> {
    vec![
        http::header::AUTHORIZATION,
        http::header::COOKIE,
        http::header::SET_COOKIE,
        http::header::PROXY_AUTHORIZATION,
    ]
}

impl RequestLogLayer {
    /// A layer with the default settings.
    pub fn new() -> Self {
        Self::default()
    }

    fn map(mut self, f: impl FnOnce(&mut Shared)) -> Self {
        // A clone of a layer keeps its settings (and shares the writer thread) until changed.
        f(Arc::make_mut(&mut self.shared));
        self
    }

    /// The line format. Default: [`LogFormat::Combined`].
    pub fn format(self, format: LogFormat) -> Self {
        self.map(|s| s.format = format)
    }

    /// Log through `tracing`: one `INFO` event per request (target
    /// `tower_plugins::request_log`) whose fields are the request's record, formatted by the
    /// subscriber; with a template, its line is the message. The default. See the crate docs
    /// for the fields.
    pub fn to_tracing(self) -> Self {
        self.map(|s| s.sink = Sink::Tracing)
    }

    /// Log to standard output, from a writer thread that holds at most `buffer` lines.
    ///
    /// # Errors
    /// When the thread cannot be started.
    pub fn to_stdout(self, buffer: usize) -> Result<Self, ConfigError> {
        let w = spawn(Target::Stdout, buffer)?;
        Ok(self.map(|s| s.sink = Sink::Lines(w)))
    }

    /// Log to standard error, like [`to_stdout`](Self::to_stdout).
    ///
    /// # Errors
    /// When the thread cannot be started.
    pub fn to_stderr(self, buffer: usize) -> Result<Self, ConfigError> {
        let w = spawn(Target::Stderr, buffer)?;
        Ok(self.map(|s| s.sink = Sink::Lines(w)))
    }

    /// Log to a file (appended to, created if missing), rotated as asked.
    ///
    /// # Errors
    /// When the file cannot be opened for writing: an unwritable path fails at load, not at
    /// the first request.
    pub fn to_file(
        self,
        path: impl Into<PathBuf>,
        rotate: Rotate,
        buffer: usize,
    ) -> Result<Self, ConfigError> {
        let path = path.into();
        let file = RotatingFile::open(path.clone(), rotate).map_err(|e| {
            ConfigError::new(
                ProblemKind::InvalidValue,
                "sink.file",
                format!("cannot write to {}: {e}", path.display()),
            )
        })?;
        let w = spawn(Target::File(file), buffer)?;
        Ok(self.map(|s| s.sink = Sink::Lines(w)))
    }

    /// Log to any writer (a socket, a pipe, a buffer in tests), from a writer thread.
    ///
    /// # Errors
    /// When the thread cannot be started.
    pub fn to_writer<W: std::io::Write + Send + 'static>(
        self,
        writer: W,
        buffer: usize,
    ) -> Result<Self, ConfigError> {
        let w = spawn(Target::Writer(Box::new(writer)), buffer)?;
        Ok(self.map(|s| s.sink = Sink::Lines(w)))
    }

    /// Paths that are never logged (health checks). Default: none.
    pub fn skip(self, paths: PathSet) -> Self {
        self.map(|s| s.skip = paths)
    }

    /// Only these statuses are logged. Default: all.
    pub fn only_status<I: IntoIterator<Item = RangeInclusive<u16>>>(self, ranges: I) -> Self {
        let r: Vec<_> = ranges.into_iter().collect();
        self.map(|s| s.only_status = r)
    }

    /// Only requests slower than this are logged. Default: all.
    pub fn slower_than(self, d: Duration) -> Self {
        self.map(|s| s.slower_than = Some(d))
    }

    /// Only this fraction of the requests that pass the other filters is logged, exactly
    /// (deterministic, no randomness). Default: 1.
    pub fn sample(self, rate: f64) -> Self {
        self.map(|s| s.sample = (rate < 1.0).then(|| Sampler::new(rate)))
    }

    /// Headers whose values are masked when a format names them. Default: `authorization`,
    /// `cookie`, `set-cookie`, `proxy-authorization`; the given ones are added.
    pub fn redact_headers<I: IntoIterator<Item = HeaderName>>(self, names: I) -> Self {
        let extra: Vec<_> = names.into_iter().collect();
        self.map(|s| {
            for n in extra {
                if !s.redact_headers.contains(&n) {
                    s.redact_headers.push(n);
                }
            }
        })
    }

    /// Query parameters whose values are masked (`token=[redacted]`). Default: none.
    pub fn redact_query<I: IntoIterator<Item = S>, S: Into<String>>(self, params: I) -> Self {
        let p: Vec<String> = params.into_iter().map(Into::into).collect();
        self.map(|s| s.redact_query = p)
    }

    /// Whether the JSON format includes the query string. Default: false (text formats always
    /// write the request line, query included, as Apache and nginx do).
    pub fn include_query(self, yes: bool) -> Self {
        self.map(|s| s.include_query = yes)
    }

    /// The request id header, or `None` for no request ids. Default: `x-request-id`.
    pub fn request_id_header(self, name: Option<HeaderName>) -> Self {
        self.map(|s| s.request_id_header = name)
    }

    /// Whether a well-formed incoming request id (1 to 128 of `A-Z a-z 0-9 - _ . :`) is
    /// reused. Default: true. Others are replaced by a new UUID v7.
    pub fn trust_request_id(self, yes: bool) -> Self {
        self.map(|s| s.trust_request_id = yes)
    }

    /// The client-IP resolver (the plugin stack passes its shared one). Default: the peer.
    pub fn client_ip(self, resolver: Arc<ClientIpResolver>) -> Self {
        self.map(|s| s.client_ip = resolver)
    }

    /// Lines dropped so far because the writer thread could not keep up (reported in the log
    /// itself as well).
    pub fn dropped_lines(&self) -> u64 {
        match &self.shared.sink {
            Sink::Lines(w) => w.dropped(),
            Sink::Tracing => 0,
        }
    }

    /// A one-line summary of the effective settings, as the plugin stack prints it.
    pub fn describe(&self) -> String {
        let s = &self.shared;
        let format = match &s.format {
            LogFormat::Common => "common".to_owned(),
            LogFormat::Combined => "combined".to_owned(),
            LogFormat::Json => "json".to_owned(),
            LogFormat::Custom(_) => "custom format".to_owned(),
        };
        let sink = match &s.sink {
            Sink::Tracing => "to tracing",
            Sink::Lines(_) => "to a writer thread",
        };
        let mut out = format!("{format} {sink}");
        if !s.skip.is_empty() {
            let p: Vec<_> = s.skip.patterns().iter().map(|p| p.as_str()).collect();
            out.push_str(&format!("; skip {}", p.join(" ")));
        }
        if let Some(t) = s.slower_than {
            out.push_str(&format!("; slower than {t:?}"));
        }
        match &s.request_id_header {
            Some(h) => out.push_str(&format!("; request id in {h}")),
            None => out.push_str("; no request ids"),
        }
        out
    }
}

fn spawn(target: Target, buffer: usize) -> Result<Writer, ConfigError> {
    Writer::spawn(target, buffer).map_err(|e| {
        ConfigError::new(
            ProblemKind::Io,
            "sink",
            format!("cannot start the log writer thread: {e}"),
        )
    })
}

impl fmt::Debug for RequestLogLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestLogLayer")
            .field("settings", &self.describe())
            .finish()
    }
}

impl<S> Layer<S> for RequestLogLayer {
    type Service = RequestLog<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestLog {
            inner,
            shared: self.shared.clone(),
        }
    }
}
