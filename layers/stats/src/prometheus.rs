//! `GET /metrics`: the Prometheus text exposition format (version 0.0.4).

use std::fmt::Write as _;

use crate::metric_names::{
    ABORTED, BYTES_IN, BYTES_OUT, DURATION, ERRORS, Family, IN_FLIGHT, REQUESTS, RPC_CALLS,
};
use crate::registry::{Registry, Totals};
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

fn family(out: &mut String, f: Family, kind: &str) {
    let _ = writeln!(
        out,
        "# HELP {} {}\n# TYPE {} {kind}",
        f.name, f.help, f.name
    );
}

/// One sample of `name` + `suffix` for `route`, with one more label if any.
fn sample(
    out: &mut String,
    (name, suffix): (&str, &str),
    route: &str,
    extra: Option<(&str, &str)>,
    v: impl std::fmt::Display,
) {
    out.push_str(name);
    out.push_str(suffix);
    out.push_str("{route=\"");
    escape_label(out, route);
    out.push('"');
    if let Some((k, val)) = extra {
        let _ = write!(out, ",{k}=\"{val}\"");
    }
    let _ = writeln!(out, "}} {v}");
}

/// gRPC calls per method and code, labelled as the OpenTelemetry RPC semantic conventions
/// name them (`rpc_system`, `rpc_service`, `rpc_method`, `rpc_grpc_status_code`); nothing
/// without gRPC calls.
fn rpc_calls(out: &mut String, totals: &[(&str, Totals)]) {
    let mut header = false;
    for (route, t) in totals {
        let Some((service, method)) = route.strip_prefix('/').and_then(|r| r.split_once('/'))
        else {
            continue;
        };
        for (code, n) in t.grpc.iter().enumerate().filter(|(_, n)| **n > 0) {
            if !header {
                family(out, RPC_CALLS, "counter");
                header = true;
            }
            out.push_str(RPC_CALLS.name);
            out.push_str("{route=\"");
            escape_label(out, route);
            out.push_str("\",rpc_system=\"grpc\",rpc_service=\"");
            escape_label(out, service);
            out.push_str("\",rpc_method=\"");
            escape_label(out, method);
            let _ = writeln!(out, "\",rpc_grpc_status_code=\"{code}\"}} {n}");
        }
    }
}

/// Every figure of `reg` as Prometheus text.
pub(crate) fn render(reg: &Registry) -> String {
    let totals = reg.totals();
    let mut out = String::with_capacity(1024 + totals.len() * 2048);

    family(&mut out, REQUESTS, "counter");
    for (route, t) in &totals {
        for (code, n) in &t.statuses {
            let code = code.to_string();
            sample(
                &mut out,
                (REQUESTS.name, ""),
                route,
                Some(("status", &code)),
                n,
            );
        }
        let counted: u64 = t.statuses.iter().map(|(_, n)| n).sum();
        let none = t.requests.saturating_sub(counted);
        if none > 0 {
            let status = Some(("status", "none"));
            sample(&mut out, (REQUESTS.name, ""), route, status, none);
        }
    }

    family(&mut out, DURATION, "histogram");
    for (route, t) in &totals {
        let mut cumulative = 0;
        for (i, bound) in PROM_BOUNDS_US.iter().enumerate() {
            cumulative += t.prom[i];
            let le = format!("{}", *bound as f64 / 1e6);
            let le = Some(("le", le.as_str()));
            sample(&mut out, (DURATION.name, "_bucket"), route, le, cumulative);
        }
        cumulative += t.prom[PROM_BOUNDS_US.len()];
        let le = Some(("le", "+Inf"));
        sample(&mut out, (DURATION.name, "_bucket"), route, le, cumulative);
        let sum = t.latency_sum_us as f64 / 1e6;
        sample(&mut out, (DURATION.name, "_sum"), route, None, sum);
        sample(&mut out, (DURATION.name, "_count"), route, None, cumulative);
    }

    // The figures with one sample per route.
    let per_route: [(Family, &str, fn(&Totals) -> i128); 5] = [
        (IN_FLIGHT, "gauge", |t| t.in_flight.into()),
        (ERRORS, "counter", |t| t.errors.into()),
        (ABORTED, "counter", |t| t.aborted.into()),
        (BYTES_IN, "counter", |t| t.bytes_in.into()),
        (BYTES_OUT, "counter", |t| t.bytes_out.into()),
    ];
    for (f, kind, value) in per_route {
        family(&mut out, f, kind);
        for (route, t) in &totals {
            sample(&mut out, (f.name, ""), route, None, value(t));
        }
    }

    rpc_calls(&mut out, &totals);

    let overflow = crate::registry::overflow(&totals);
    let f = Family {
        name: "http_stats_routes_overflow_total",
        help: "Requests counted under route=\"other\" because max_routes was reached.",
    };
    family(&mut out, f, "counter");
    let _ = writeln!(out, "{} {overflow}", f.name);
    let f = Family {
        name: "http_stats_uptime_seconds",
        help: "Seconds since the stats layer was built.",
    };
    family(&mut out, f, "gauge");
    let _ = writeln!(out, "{} {}", f.name, reg.start.elapsed().as_secs_f64());

    for (_, c) in &reg.collectors {
        c.prometheus(&mut out);
    }
    out
}
