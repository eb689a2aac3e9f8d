//! [`RequestLogConfig`]: the `use = "request_log"` table of a plugin stack.

use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;

use serde::Deserialize;
use tower_plugins_core::{
    ClientIpResolver, ConfigError, HumanDuration, PathSet, ProblemKind, Problems, count_in,
    duration_in, header_name,
};

use crate::{LogFormat, RequestLogLayer, Rotate};

/// Where lines go, as written in TOML: `"tracing"`, `"stdout"`, `"stderr"`, or
/// `{ file = "access.log", rotate = "daily" }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum SinkConfig {
    /// `"tracing"`, `"stdout"` or `"stderr"`.
    Named(String),
    /// A file, rotated `"daily"`, by size (`"100MB"`) or `"never"` (the default).
    File {
        /// The file path.
        file: String,
        /// When to start a new file.
        #[serde(default)]
        rotate: Option<String>,
    },
}

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig::Named("tracing".to_owned())
    }
}

/// The request log's configuration, as written in a plugin stack file: its keys and defaults are
/// in the [crate docs](crate).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RequestLogConfig {
    /// `common`, `combined`, `json`, or a custom template.
    pub format: String,
    /// Where lines go.
    pub sink: SinkConfig,
    /// Lines queued for the writer thread.
    pub buffer: usize,
    /// Path patterns never logged.
    pub skip: Vec<String>,
    /// Status ranges logged (`"200-299"`, `"404"`); empty for all.
    pub only_status: Vec<String>,
    /// Only requests slower than this.
    pub slower_than: Option<HumanDuration>,
    /// The fraction logged, in (0, 1].
    pub sample: Option<f64>,
    /// Extra headers to mask.
    pub redact_headers: Vec<String>,
    /// Query parameters to mask.
    pub redact_query: Vec<String>,
    /// Whether JSON lines include the query.
    pub include_query: bool,
    /// The request id header; empty for none.
    pub request_id_header: String,
    /// Whether a well-formed incoming request id is reused.
    pub trust_request_id: bool,
}

impl Default for RequestLogConfig {
    fn default() -> Self {
        RequestLogConfig {
            format: "combined".to_owned(),
            sink: SinkConfig::default(),
            buffer: 8192,
            skip: Vec::new(),
            only_status: Vec::new(),
            slower_than: None,
            sample: None,
            redact_headers: Vec::new(),
            redact_query: Vec::new(),
            include_query: false,
            request_id_header: "x-request-id".to_owned(),
            trust_request_id: true,
        }
    }
}

fn status_range(s: &str) -> Option<std::ops::RangeInclusive<u16>> {
    let valid = |n: u16| (100..=999).contains(&n);
    match s.trim().split_once('-') {
        Some((a, b)) => {
            let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
            (valid(a) && valid(b) && a <= b).then_some(a..=b)
        }
        None => {
            let t = s.trim();
            if let Some(class) = t.strip_suffix("xx") {
                let c: u16 = class.parse().ok()?;
                return (1..=9).contains(&c).then_some(c * 100..=c * 100 + 99);
            }
            let n = t.parse().ok()?;
            valid(n).then_some(n..=n)
        }
    }
}

impl RequestLogConfig {
    /// Builds the layer; the plugin stack passes its shared client-IP resolver.
    ///
    /// # Errors
    /// Every invalid value: a malformed format or unknown token, a bad sink or rotation, an
    /// unwritable file, bad path patterns, status ranges, sample rates or header names.
    pub fn build(self, client_ip: Arc<ClientIpResolver>) -> Result<RequestLogLayer, ConfigError> {
        let mut p = Problems::new();
        let format = p.check("format", LogFormat::parse(&self.format));
        let skip = p.check("skip", PathSet::new(&self.skip));
        let ranges = self.status_ranges(&mut p);
        self.check_sample(&mut p);
        let redact: Vec<HeaderName> = (self.redact_headers.iter().enumerate())
            .filter_map(|(i, h)| p.check(&format!("redact_headers[{i}]"), header_name(h)))
            .collect();
        let id_header = if self.request_id_header.is_empty() {
            None
        } else {
            p.check("request_id_header", header_name(&self.request_id_header))
        };
        let lines = i64::try_from(self.buffer).unwrap_or(i64::MAX);
        p.check(
            "buffer",
            count_in(lines, 1..=crate::MAX_BUFFER_LINES as u64),
        );
        let slower = Duration::ZERO..=Duration::from_secs(86_400);
        if let Some(t) = self.slower_than {
            p.check("slower_than", duration_in(t.get(), slower));
        }
        let rotate = match &self.sink {
            SinkConfig::File {
                rotate: Some(r), ..
            } => p.check("sink.rotate", Rotate::parse(r)),
            _ => Some(Rotate::Never),
        };
        p.finish(())?;
        let (Some(format), Some(skip), Some(rotate)) = (format, skip, rotate) else {
            return Err(ConfigError::new(
                ProblemKind::InvalidValue,
                "",
                "invalid settings",
            ));
        };

        let mut layer = RequestLogLayer::new()
            .format(format)
            .skip(skip)
            .only_status(ranges)
            .redact_headers(redact)
            .redact_query(self.redact_query)
            .include_query(self.include_query)
            .request_id_header(id_header)
            .trust_request_id(self.trust_request_id)
            .client_ip(client_ip);
        if let Some(t) = self.slower_than {
            layer = layer.slower_than(t.get());
        }
        if let Some(rate) = self.sample {
            layer = layer.sample(rate);
        }
        self.sink.open(layer, rotate, self.buffer)
    }

    /// `only_status`: statuses, ranges and classes.
    fn status_ranges(&self, p: &mut Problems) -> Vec<RangeInclusive<u16>> {
        let mut ranges = Vec::new();
        for (i, s) in self.only_status.iter().enumerate() {
            match status_range(s) {
                Some(r) => ranges.push(r),
                None => p.push(
                    ProblemKind::InvalidValue,
                    format!("only_status[{i}]"),
                    format!("{s:?} is not a status, a range such as \"400-599\", or a class such as \"5xx\""),
                ),
            }
        }
        ranges
    }

    /// `sample`: a fraction in (0, 1].
    fn check_sample(&self, p: &mut Problems) {
        if let Some(rate) = self.sample {
            if !(rate > 0.0 && rate <= 1.0) {
                let message = format!("{rate} is not a fraction in (0, 1]");
                p.push(ProblemKind::InvalidValue, "sample", message);
            }
        }
    }
}

impl SinkConfig {
    /// Sends `layer`'s lines to this sink (opening a file or starting the writer thread).
    fn open(
        self,
        layer: RequestLogLayer,
        rotate: Rotate,
        buffer: usize,
    ) -> Result<RequestLogLayer, ConfigError> {
        match self {
            SinkConfig::Named(n) => match n.as_str() {
                "tracing" => Ok(layer.to_tracing()),
                "stdout" => layer.to_stdout(buffer),
                "stderr" => layer.to_stderr(buffer),
                other => Err(ConfigError::new(
                    ProblemKind::InvalidValue,
                    "sink",
                    format!("unknown sink {other:?}"),
                )
                .with_hint("\"tracing\", \"stdout\", \"stderr\", or { file = \"access.log\" }")),
            },
            SinkConfig::File { file, .. } => layer.to_file(file, rotate, buffer),
        }
    }
}

impl tower_plugins_core::Plugin for crate::RequestLogLayer {
    type Config = RequestLogConfig;
    type Service<S> = crate::RequestLog<S>;
    type Future<F> = crate::ResponseFuture<F>;
    type Body<B> = crate::ResponseBody<B>;
    type Hooks = crate::RequestLogLayer;

    fn from_config(
        config: RequestLogConfig,
        ctx: &tower_plugins_core::PluginContext,
    ) -> Result<Self, ConfigError> {
        config.build(ctx.client_ip().clone())
    }

    fn describe(&self) -> String {
        crate::RequestLogLayer::describe(self)
    }

    fn hooks(&self) -> Option<crate::RequestLogLayer> {
        Some(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_ranges() {
        assert_eq!(status_range("400-599"), Some(400..=599));
        assert_eq!(status_range("404"), Some(404..=404));
        assert_eq!(status_range("5xx"), Some(500..=599));
        for bad in ["", "abc", "600-500", "42", "0xx", "1000"] {
            assert_eq!(status_range(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_invalid_value_is_reported() {
        let c: RequestLogConfig = toml::from_str(
            r#"
            format = "{method} {stauts}"
            skip = ["health"]
            only_status = ["2xx", "teapot"]
            sample = 1.5
            redact_headers = ["bad header"]
            request_id_header = "bad id"
            buffer = 0
            sink = { file = "/tmp/x.log", rotate = "weekly" }
            "#,
        )
        .unwrap();
        let e = c.build(Arc::new(ClientIpResolver::new())).unwrap_err();
        let keys = e.keys();
        assert_eq!(
            keys,
            [
                "format",
                "skip[0]",
                "only_status[1]",
                "sample",
                "redact_headers[0]",
                "request_id_header",
                "buffer",
                "sink.rotate"
            ],
            "{e}"
        );
        assert!(e.to_string().contains("did you mean `{status}`?"), "{e}");
    }

    #[test]
    fn the_buffer_and_slower_than_are_bounded() {
        for (text, key) in [
            ("buffer = 1000001", "buffer"),
            ("slower_than = \"2days\"", "slower_than"),
        ] {
            let c: RequestLogConfig = toml::from_str(text).unwrap();
            let e = c.build(Arc::new(ClientIpResolver::new())).unwrap_err();
            assert_eq!(e.keys(), [key], "{e}");
        }
    }

    #[test]
    fn unwritable_file_is_an_error_at_load() {
        let c: RequestLogConfig =
            toml::from_str("sink = { file = \"/nonexistent-dir/sub/access.log\" }").unwrap();
        let e = c.build(Arc::new(ClientIpResolver::new())).unwrap_err();
        assert_eq!(e.problems()[0].location.key, "sink.file");
    }
}
