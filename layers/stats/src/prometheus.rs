//! `GET /metrics`: the Prometheus text exposition format (version 0.0.4).

use std::fmt::Write as _;

use crate::registry::Registry;
use crate::route::PROM_BOUNDS_US;

/// Writes `s` as the inside of a label value: `\`, `"` and newlines escaped.
pub(crate) fn escape_label(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn sample(
    out: &mut String,
    name: &str,
    route: &str,
    extra: Option<(&str, &str)>,
    v: impl std::fmt::Display,
) {
    out.push_str(name);
    out.push_str("{route=\"");
    escape_label(out, route);
    out.push('"');
    if let Some((k, val)) = extra {
        let _ = write!(out, ",{k}=\"{val}\"");
    }
    let _ = writeln!(out, "}} {v}");
}

/// Every figure of `reg` as Prometheus text.
pub(crate) fn render(reg: &Registry) -> String {
    let totals = reg.totals();
    let mut out = String::with_capacity(1024 + totals.len() * 2048);

    family(
        &mut out,
        "http_requests_total",
        "counter",
        "Requests finished, by route and status (\"none\" when no response was made).",
    );
    for (route, t) in &totals {
        for (code, n) in &t.statuses {
            sample(
                &mut out,
                "http_requests_total",
                route,
                Some(("status", &code.to_string())),
                n,
            );
        }
        let counted: u64 = t.statuses.iter().map(|(_, n)| n).sum();
        let none = t.requests.saturating_sub(counted);
        if none > 0 {
            sample(
                &mut out,
                "http_requests_total",
                route,
                Some(("status", "none")),
                none,
            );
        }
    }

    family(
        &mut out,
        "http_request_duration_seconds",
        "histogram",
        "Time from the request's arrival to the end of its response body.",
    );
    for (route, t) in &totals {
        let mut cumulative = 0;
        for (i, bound) in PROM_BOUNDS_US.iter().enumerate() {
            cumulative += t.prom[i];
            let le = format!("{}", *bound as f64 / 1e6);
            sample(
                &mut out,
                "http_request_duration_seconds_bucket",
                route,
                Some(("le", &le)),
                cumulative,
            );
        }
        cumulative += t.prom[PROM_BOUNDS_US.len()];
        sample(
            &mut out,
            "http_request_duration_seconds_bucket",
            route,
            Some(("le", "+Inf")),
            cumulative,
        );
        sample(
            &mut out,
            "http_request_duration_seconds_sum",
            route,
            None,
            t.latency_sum_us as f64 / 1e6,
        );
        sample(
            &mut out,
            "http_request_duration_seconds_count",
            route,
            None,
            cumulative,
        );
    }

    family(
        &mut out,
        "http_requests_in_flight",
        "gauge",
        "Requests started and not finished.",
    );
    for (route, t) in &totals {
        sample(
            &mut out,
            "http_requests_in_flight",
            route,
            None,
            t.in_flight,
        );
    }
    family(
        &mut out,
        "http_requests_errors_total",
        "counter",
        "5xx answers, inner service errors and failed response bodies.",
    );
    for (route, t) in &totals {
        sample(
            &mut out,
            "http_requests_errors_total",
            route,
            None,
            t.errors,
        );
    }
    family(
        &mut out,
        "http_requests_aborted_total",
        "counter",
        "Requests dropped before their response or before the end of its body.",
    );
    for (route, t) in &totals {
        sample(
            &mut out,
            "http_requests_aborted_total",
            route,
            None,
            t.aborted,
        );
    }
    family(
        &mut out,
        "http_request_body_bytes_total",
        "counter",
        "Request body bytes, from Content-Length.",
    );
    for (route, t) in &totals {
        sample(
            &mut out,
            "http_request_body_bytes_total",
            route,
            None,
            t.bytes_in,
        );
    }
    family(
        &mut out,
        "http_response_body_bytes_total",
        "counter",
        "Response body bytes sent.",
    );
    for (route, t) in &totals {
        sample(
            &mut out,
            "http_response_body_bytes_total",
            route,
            None,
            t.bytes_out,
        );
    }

    let overflow = crate::registry::overflow(&totals);
    family(
        &mut out,
        "http_stats_routes_overflow_total",
        "counter",
        "Requests counted under route=\"other\" because max_routes was reached.",
    );
    let _ = writeln!(out, "http_stats_routes_overflow_total {overflow}");
    family(
        &mut out,
        "http_stats_uptime_seconds",
        "gauge",
        "Seconds since the stats layer was built.",
    );
    let _ = writeln!(
        out,
        "http_stats_uptime_seconds {}",
        reg.start.elapsed().as_secs_f64()
    );

    for (_, c) in &reg.collectors {
        c.prometheus(&mut out);
    }
    out
}
