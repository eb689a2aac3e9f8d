//! The metric families stats reports: names and help texts, the same in `/metrics` and in the
//! `metrics` facade's Prometheus names.

/// A metric family: its name and help, the same in `/metrics` and in the `metrics` facade's
/// Prometheus names.
#[derive(Clone, Copy)]
pub(crate) struct Family {
    pub(crate) name: &'static str,
    pub(crate) help: &'static str,
}

pub(crate) const REQUESTS: Family = Family {
    name: "http_requests_total",
    help: "Requests finished, by status (\"none\" when no response was made).",
};
pub(crate) const DURATION: Family = Family {
    name: "http_request_duration_seconds",
    help: "Time from the request's arrival to the end of its response body.",
};
pub(crate) const IN_FLIGHT: Family = Family {
    name: "http_requests_in_flight",
    help: "Requests started and not finished.",
};
pub(crate) const ERRORS: Family = Family {
    name: "http_requests_errors_total",
    help: "5xx answers, inner service errors and failed response bodies.",
};
pub(crate) const ABORTED: Family = Family {
    name: "http_requests_aborted_total",
    help: "Requests dropped before their response or before the end of its body.",
};
pub(crate) const BYTES_IN: Family = Family {
    name: "http_request_body_bytes_total",
    help: "Request body bytes, from Content-Length.",
};
pub(crate) const BYTES_OUT: Family = Family {
    name: "http_response_body_bytes_total",
    help: "Response body bytes sent.",
};
pub(crate) const RPC_CALLS: Family = Family {
    name: "rpc_server_calls_total",
    help: "gRPC calls finished, by method and status code (OpenTelemetry RPC attribute names).",
};
