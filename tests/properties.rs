//! Property tests for every parser that sees user or network input: forwarding headers, path
//! patterns, durations and quotas (with the GCRA figures they lead to), CORS origins,
//! request-log templates and escaping, the stack's config loader, and auth's cookies and
//! `next`.
//!
//! Each property runs 64 cases by default so that CI stays fast; `PROPTEST_CASES=10000 cargo
//! test --test properties` runs a longer search.
#![cfg(all(
    feature = "timer",
    feature = "cors",
    feature = "request-log",
    feature = "rate-limit",
    feature = "stats",
    feature = "auth"
))]

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue, Request, Response};
use proptest::prelude::*;
use tower::{Layer, ServiceExt, service_fn};
use tower_plugins::core::{
    ClientIpResolver, ForwardedHeader, HumanDuration, PathPattern, Quota, parse_duration,
    parse_quota,
};
use tower_plugins::{Body, PluginStack};

/// 64 cases, unless `PROPTEST_CASES` asks for more.
fn cases() -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = 64;
    }
    c
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

// ---------------------------------------------------------------- forwarding headers

fn ipv4() -> impl Strategy<Value = Ipv4Addr> {
    // A small space, so that trusted and untrusted addresses both come up often.
    (0u8..4, 0u8..4).prop_map(|(a, b)| Ipv4Addr::new(10, a, 0, b))
}

/// The resolver's answer by the rule it documents: from the right, the first hop that is not a
/// trusted proxy; the leftmost when every hop is trusted; the peer when the peer is not trusted.
fn expected_client(
    peer: Ipv4Addr,
    hops: &[Ipv4Addr],
    trusted: &dyn Fn(Ipv4Addr) -> bool,
) -> Ipv4Addr {
    if !trusted(peer) {
        return peer;
    }
    hops.iter()
        .rev()
        .find(|h| !trusted(**h))
        .or(hops.first())
        .copied()
        .unwrap_or(peer)
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn forwarding_headers_resolve_to_the_rightmost_untrusted_hop(
        peer in ipv4(),
        hops in prop::collection::vec(ipv4(), 0..6),
        forwarded in any::<bool>(),
    ) {
        // 10.0.x.0 and 10.1.x.x are proxies.
        let resolver = ClientIpResolver::new()
            .trust(["10.0.0.0/30", "10.1.0.0/16"])
            .unwrap()
            .header(if forwarded { ForwardedHeader::Forwarded } else { ForwardedHeader::XForwardedFor });
        let trusted = |ip: Ipv4Addr| resolver.is_trusted(IpAddr::V4(ip));
        let mut headers = HeaderMap::new();
        if !hops.is_empty() {
            let (name, value) = if forwarded {
                let v: Vec<String> = hops.iter().map(|h| format!("for={h};proto=https")).collect();
                ("forwarded", v.join(", "))
            } else {
                let v: Vec<String> = hops.iter().map(Ipv4Addr::to_string).collect();
                ("x-forwarded-for", v.join(", "))
            };
            headers.insert(name, HeaderValue::from_str(&value).unwrap());
        }
        let got = resolver.resolve_from(IpAddr::V4(peer), &headers);
        prop_assert_eq!(got, IpAddr::V4(expected_client(peer, &hops, &trusted)));
    }

    #[test]
    fn any_forwarding_header_bytes_resolve_without_panicking_and_never_past_an_untrusted_peer(
        value in prop::collection::vec(any::<u8>(), 0..200),
        trusted_peer in any::<bool>(),
    ) {
        let resolver = ClientIpResolver::new().trust(["127.0.0.1"]).unwrap();
        let peer: IpAddr = if trusted_peer { [127, 0, 0, 1].into() } else { [192, 0, 2, 7].into() };
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_bytes(&value) {
            headers.append("x-forwarded-for", v.clone());
            headers.append("x-forwarded-for", v);
        }
        let got = resolver.resolve_from(peer, &headers);
        if !trusted_peer {
            prop_assert_eq!(got, peer);
        }
    }
}

// ---------------------------------------------------------------- path patterns

/// The documented meaning of a pattern, by plain recursion (exponential, fine for the small
/// inputs here): `*` one non-empty segment, `**` any number of segments.
fn reference_match(pattern: &[&str], path: &[&str]) -> bool {
    match (pattern.first(), path.first()) {
        (None, None) => true,
        (Some(&"**"), _) => {
            reference_match(&pattern[1..], path)
                || (!path.is_empty() && reference_match(pattern, &path[1..]))
        }
        (Some(&"*"), Some(s)) => !s.is_empty() && reference_match(&pattern[1..], &path[1..]),
        (Some(l), Some(s)) => l == s && reference_match(&pattern[1..], &path[1..]),
        _ => false,
    }
}

fn segment() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["a", "b", "", "ab"])
}

fn pattern_segment() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["a", "b", "*", "**", "ab"])
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn path_patterns_match_as_documented(
        pattern in prop::collection::vec(pattern_segment(), 1..6),
        path in prop::collection::vec(segment(), 1..8),
    ) {
        let text = format!("/{}", pattern.join("/"));
        let Ok(compiled) = PathPattern::new(&text) else {
            // `***` after joining, or similar: refused, which is fine.
            return Ok(());
        };
        let path_text = format!("/{}", path.join("/"));
        prop_assert_eq!(compiled.matches(&path_text), reference_match(&pattern, &path), "{} vs {}", text, path_text);
    }

    #[test]
    fn any_pattern_text_compiles_or_is_refused_and_any_path_matches_or_not(
        pattern in "\\PC{0,40}",
        path in "\\PC{0,60}",
    ) {
        if let Ok(p) = PathPattern::new(&pattern) {
            let _ = p.matches(&path);
        }
    }

    #[test]
    fn many_double_stars_match_long_paths_in_polynomial_time(
        stars in 1usize..40,
        segments in 100usize..2000,
    ) {
        let pattern = format!("{}/z", "/**/a".repeat(stars));
        let p = PathPattern::new(&pattern).unwrap();
        let path = "/a".repeat(segments);
        let started = Instant::now();
        prop_assert!(!p.matches(&path));
        prop_assert!(started.elapsed() < Duration::from_secs(1));
    }
}

// ---------------------------------------------------------------- durations and quotas

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn durations_round_trip(nanos in 0u64..(366 * 86_400 * 1_000_000_000)) {
        let d = Duration::from_nanos(nanos);
        let text = HumanDuration(d).to_string();
        prop_assert_eq!(parse_duration(&text).unwrap(), d, "{}", text);
    }

    #[test]
    fn quotas_round_trip_or_are_refused_within_their_bounds(count in 1u32.., secs in 1u64..(400 * 86_400)) {
        let period = Duration::from_secs(secs);
        match Quota::new(count, period) {
            Ok(q) => {
                prop_assert!(period <= Quota::MAX_PERIOD && q.interval() >= Quota::MIN_INTERVAL);
                prop_assert_eq!(parse_quota(&q.to_string()).unwrap(), q);
            }
            Err(_) => prop_assert!(period > Quota::MAX_PERIOD || period / count < Quota::MIN_INTERVAL),
        }
    }

    #[test]
    fn any_quota_or_duration_text_parses_or_is_refused(text in "\\PC{0,30}") {
        let _ = parse_quota(&text);
        let _ = parse_duration(&text);
    }
}

/// The `r` and `t` of a `RateLimit` value, and the `q` and `w` of its policy.
fn figures(h: &HeaderMap, name: &str, keys: [&str; 2]) -> Option<[u64; 2]> {
    let v = h.get(name)?.to_str().ok()?;
    let get = |k: &str| {
        v.split(';')
            .find_map(|p| p.strip_prefix(k)?.strip_prefix('=')?.parse().ok())
    };
    Some([get(keys[0])?, get(keys[1])?])
}

proptest! {
    #![proptest_config(cases())]

    /// Whatever the quota, burst and arrival times: `r` never above the burst, `t` never past
    /// the window, a refusal's `Retry-After` within it too, and no more admitted in total
    /// than the burst plus what the elapsed time refills.
    #[test]
    fn gcra_figures_stay_within_the_burst_and_the_window(
        count in 1u32..2000,
        secs in prop::sample::select(vec![1u64, 60, 3600, 86_400, 365 * 86_400]),
        burst in prop::option::of(1u32..5000),
        steps in prop::collection::vec((0u64..5000, 1usize..4), 1..20),
    ) {
        let Ok(quota) = Quota::new(count, Duration::from_secs(secs)) else { return Ok(()) };
        let clock = tower_plugins::rate_limit::ManualClock::new();
        let mut layer = tower_plugins::rate_limit::RateLimitLayer::new(quota).clock(clock.clone());
        if let Some(b) = burst.and_then(std::num::NonZeroU32::new) {
            layer = layer.burst(b);
        }
        let svc = layer.layer(service_fn(|_req: Request<Body>| async {
            Ok::<_, Infallible>(Response::new(Body::empty()))
        }));
        let rt = runtime();
        let (mut admitted, mut elapsed_ms) = (0u64, 0u64);
        let mut policy = None;
        for (advance_ms, n) in steps {
            clock.advance(Duration::from_millis(advance_ms));
            elapsed_ms += advance_ms;
            for _ in 0..n {
                let mut req = Request::new(Body::empty());
                req.extensions_mut().insert(SocketAddr::from(([192, 0, 2, 1], 4000)));
                let res = rt.block_on(svc.clone().oneshot(req)).unwrap();
                let [q, w] = figures(res.headers(), "ratelimit-policy", ["q", "w"]).unwrap();
                prop_assert!(*policy.get_or_insert([q, w]) == [q, w]);
                if res.status().is_success() {
                    admitted += 1;
                    let [r, t] = figures(res.headers(), "ratelimit", ["r", "t"]).unwrap();
                    prop_assert!(r < q && t <= w, "r={} t={} q={} w={}", r, t, q, w);
                } else {
                    let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
                    prop_assert!((1..=w).contains(&retry), "retry-after {} w={}", retry, w);
                }
            }
        }
        let [q, w] = policy.unwrap();
        let refilled = (elapsed_ms as u128 * q as u128 / (w as u128 * 1000)) as u64;
        prop_assert!(admitted <= q + refilled + 1, "admitted {} q={} w={} after {}ms", admitted, q, w, elapsed_ms);
    }
}

// ---------------------------------------------------------------- CORS origins

fn label() -> impl Strategy<Value = String> {
    "[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?"
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn label_patterns_allow_subdomains_and_nothing_else(
        labels in prop::collection::vec(label(), 1..4),
        other in label(),
        port in prop::option::of(any::<u16>()),
    ) {
        let cors = tower_plugins::cors::CorsLayer::new().allow_origin(
            tower_plugins::cors::AllowOrigin::list(["https://*.example.com", "http://localhost:*"]).unwrap(),
        );
        let rt = runtime();
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        let sub = format!("https://{}.example.com", labels.join("."));
        let cases = [
            (sub.clone(), true),
            (format!("https://{other}example.com"), false),
            (format!("https://example.com.{other}"), false),
            ("https://example.com".to_owned(), false),
            (format!("{sub}{port}"), port.is_empty()),
            (format!("http://localhost{port}"), true),
            (format!("http://{other}.localhost{port}"), false),
        ];
        for (origin, allowed) in cases {
            let acao = cors_answer(&cors, &rt, HeaderValue::from_str(&origin).unwrap());
            let echoed = acao.as_deref() == Some(origin.as_bytes());
            prop_assert_eq!(echoed, allowed, "{}", origin);
        }
    }

    /// Any Origin bytes: no panic, and an allowed origin is echoed exactly as sent.
    #[test]
    fn any_origin_bytes_are_refused_or_echoed_exactly(
        origin in prop::collection::vec(any::<u8>(), 0..80),
        patterns in prop::collection::vec("\\PC{0,30}", 0..4),
    ) {
        let _ = tower_plugins::cors::AllowOrigin::list(&patterns);
        let Ok(value) = HeaderValue::from_bytes(&origin) else { return Ok(()) };
        let cors = tower_plugins::cors::CorsLayer::new().allow_origin(
            tower_plugins::cors::AllowOrigin::list(["https://*.example.com", "http://localhost:*", "null"]).unwrap(),
        );
        if let Some(acao) = cors_answer(&cors, &runtime(), value) {
            prop_assert_eq!(acao, origin);
        }
    }
}

/// The `Access-Control-Allow-Origin` of a simple GET with `origin`.
fn cors_answer(
    cors: &tower_plugins::cors::CorsLayer,
    rt: &tokio::runtime::Runtime,
    origin: HeaderValue,
) -> Option<Vec<u8>> {
    let svc = cors.layer(service_fn(|_req: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(Body::empty()))
    }));
    let req = Request::get("/")
        .header("origin", origin)
        .body(Body::empty())
        .unwrap();
    let res = rt.block_on(svc.oneshot(req)).unwrap();
    res.headers()
        .get("access-control-allow-origin")
        .map(|v| v.as_bytes().to_vec())
}

// ---------------------------------------------------------------- request-log lines

#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    /// What the writer thread wrote, once it holds a whole line (it drains every 5 ms).
    fn line(&self) -> Vec<u8> {
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            let got = self.0.lock().unwrap().clone();
            if got.ends_with(b"\n") || Instant::now() > until {
                return got;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

const EVERY_TOKEN: &str = "{timestamp} {time_clf} {method} {path} {query} {target} {route} \
     {status} {bytes} {duration_ms} {duration_us} {client_ip} {user} {request_id} {user_agent} \
     {referer} {protocol} {outcome} {req.x-tenant} {res.x-echo} {req.authorization}";

fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..60)
}

proptest! {
    #![proptest_config(cases())]

    /// For any bytes a client can put in a request, a text line is one line of printable
    /// ASCII, and a JSON line is one valid JSON object.
    #[test]
    fn log_lines_are_one_line_of_printable_ascii_for_any_input(
        method in "[!#$%&'*+.^_`|~0-9A-Za-z-]{1,10}",
        target in "/[!-~]{0,40}",
        ua in header_bytes(),
        referer in header_bytes(),
        tenant in header_bytes(),
        format in 0usize..4,
    ) {
        let Ok(uri) = target.parse::<http::Uri>() else { return Ok(()) };
        let format = match format {
            0 => tower_plugins::request_log::LogFormat::Common,
            1 => tower_plugins::request_log::LogFormat::Combined,
            2 => tower_plugins::request_log::LogFormat::Json,
            _ => tower_plugins::request_log::LogFormat::parse(EVERY_TOKEN).unwrap(),
        };
        let json = matches!(format, tower_plugins::request_log::LogFormat::Json);
        let lines = Lines::default();
        let layer = tower_plugins::request_log::RequestLogLayer::new()
            .format(format)
            .include_query(true)
            .to_writer(lines.clone(), 16)
            .unwrap();
        let echo = HeaderValue::from_bytes(&tenant).ok();
        let svc = layer.layer(service_fn(move |_req: Request<Body>| {
            let echo = echo.clone();
            async move {
                let mut res = Response::new(Body::from("ok"));
                if let Some(v) = echo {
                    res.headers_mut().insert("x-echo", v);
                }
                Ok::<_, Infallible>(res)
            }
        }));
        let mut req = Request::builder()
            .method(http::Method::from_bytes(method.as_bytes()).unwrap())
            .uri(uri)
            .body(Body::empty())
            .unwrap();
        for (name, value) in [("user-agent", &ua), ("referer", &referer), ("x-tenant", &tenant)] {
            if let Ok(v) = HeaderValue::from_bytes(value) {
                req.headers_mut().insert(name, v);
            }
        }
        let rt = runtime();
        rt.block_on(async {
            let res = svc.oneshot(req).await.unwrap();
            http_body_util::BodyExt::collect(res.into_body()).await.unwrap();
        });
        let line = lines.line();
        prop_assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
        let body = &line[..line.len() - 1];
        if json {
            let v: serde_json::Value = serde_json::from_slice(body).unwrap();
            prop_assert!(v.is_object());
            prop_assert!(!body.contains(&b'\r'));
        } else {
            prop_assert!(body.iter().all(|b| (0x20..=0x7e).contains(b)), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn any_template_text_parses_or_is_refused(text in "\\PC{0,60}") {
        let _ = tower_plugins::request_log::LogFormat::parse(&text);
    }
}

// ---------------------------------------------------------------- the config loader

const DEMO: &str = include_str!("../examples/plugins.toml");

#[derive(Debug, Clone)]
enum Mutation {
    DeleteByte(usize),
    InsertByte(usize, u8),
    ReplaceLine(usize, String),
    DuplicateLine(usize),
    DeleteLine(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let line_text = prop::sample::select(vec![
        "[[plugin]]",
        "use = \"timer\"",
        "use = \"nope\"",
        "quota = \"0/s\"",
        "burst = -5",
        "max_routes = 99999999999",
        "max_keys = 4000000000",
        "[client_ip]",
        "x = [[[[1]]]]",
        "enabled = \"${UNSET}\"",
        "paths = [\"no-slash\"]",
        "digits = 99",
        "= 3",
        "[[plugin.rules]]",
        "allow_origins = \"http://localhost:99999\"",
        "sink = { file = \"/nonexistent/x.log\" }",
        "when = { paths = [\"/a\"] }",
        "format = \"{nope}\"",
        "\"\u{e9}\" = 1",
        "a.b.c.d = 1",
    ]);
    prop_oneof![
        any::<prop::sample::Index>().prop_map(|i| Mutation::DeleteByte(i.index(DEMO.len()))),
        (any::<prop::sample::Index>(), any::<u8>())
            .prop_map(|(i, b)| Mutation::InsertByte(i.index(DEMO.len()), b)),
        (any::<prop::sample::Index>(), line_text)
            .prop_map(|(i, l)| Mutation::ReplaceLine(i.index(DEMO.lines().count()), l.to_owned())),
        any::<prop::sample::Index>()
            .prop_map(|i| Mutation::DuplicateLine(i.index(DEMO.lines().count()))),
        any::<prop::sample::Index>()
            .prop_map(|i| Mutation::DeleteLine(i.index(DEMO.lines().count()))),
    ]
}

fn apply(text: &mut Vec<u8>, m: &Mutation) {
    let mut lines: Vec<Vec<u8>> = text.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
    let at = |i: usize| i.min(lines.len() - 1);
    match m {
        Mutation::DeleteByte(i) if *i < text.len() => {
            text.remove(*i);
            return;
        }
        Mutation::DeleteByte(_) => return,
        Mutation::InsertByte(i, b) => return text.insert((*i).min(text.len()), *b),
        Mutation::ReplaceLine(i, l) => {
            let i = at(*i);
            lines[i] = l.as_bytes().to_vec();
        }
        Mutation::DuplicateLine(i) => {
            let i = at(*i);
            lines.insert(i, lines[i].clone());
        }
        Mutation::DeleteLine(i) => {
            let i = at(*i);
            lines.remove(i);
        }
    }
    *text = lines.join(&b'\n');
}

proptest! {
    #![proptest_config(cases())]

    /// Any mutation of the demo's config: a stack or an error whose every problem has a line
    /// and a column, within a second, never a panic.
    #[test]
    fn any_mutation_of_the_demo_config_is_a_stack_or_a_located_error(
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let mut text = DEMO.as_bytes().to_vec();
        for m in &mutations {
            apply(&mut text, m);
        }
        let dir = std::env::temp_dir().join(format!("tower-plugins-prop-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("plugins.toml");
        std::fs::write(&path, &text).unwrap();
        let started = Instant::now();
        let built = PluginStack::builder().file(&path).env_lookup(|_| None).build();
        prop_assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
        if let Err(e) = built {
            for p in e.problems() {
                prop_assert!(p.location.file.is_some(), "no file: {}", p);
                prop_assert!(p.location.line.is_some() && p.location.column.is_some(), "no line: {}\n{}", p, String::from_utf8_lossy(&text));
            }
        }
    }
}

// ---------------------------------------------------------------- auth: cookies and next

fn auth_layer() -> tower_plugins::auth::AuthLayer {
    use tower_plugins::auth::{AuthLayer, Rule, Secret, StaticUsers};
    AuthLayer::new(Secret::parse("a property test secret, long and varied enough").unwrap())
        .static_users(StaticUsers::new())
        .rule(Rule::new(
            tower_plugins::core::PathSet::new(["/p"]).unwrap(),
        ))
}

proptest! {
    #![proptest_config(cases())]

    /// Any bytes in any number of `Cookie` headers: never a panic, never a session (no key
    /// signed them), never a store lookup's `Set-Cookie`.
    #[test]
    fn any_cookie_bytes_are_anonymous(values in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..120), 0..4)) {
        let layer = auth_layer();
        let svc = layer.layer(service_fn(|_req: Request<Body>| async {
            Ok::<_, Infallible>(Response::new(Body::from("reached")))
        }));
        let mut req = Request::get("/p").header("accept", "application/json").body(Body::empty()).unwrap();
        for v in &values {
            let mut v = v.clone();
            v.splice(0..0, b"__Host-id=1.".iter().copied());
            if let Ok(h) = HeaderValue::from_bytes(&v) {
                req.headers_mut().append("cookie", h);
            }
        }
        let res = runtime().block_on(svc.oneshot(req)).unwrap();
        prop_assert_eq!(res.status(), http::StatusCode::UNAUTHORIZED);
        prop_assert!(res.headers().get("set-cookie").is_none());
    }

    /// Any `next` the login page is given: it keeps it only when it is a path on this site.
    #[test]
    fn the_login_page_keeps_only_a_local_next(next in "\\PC{0,40}") {
        let layer = auth_layer();
        let svc = layer.layer(service_fn(|_req: Request<Body>| async {
            Ok::<_, Infallible>(Response::new(Body::empty()))
        }));
        let query: String = form_urlencoded_pair("next", &next);
        let req = Request::get(format!("/auth/login?{query}")).body(Body::empty()).unwrap();
        let res = runtime().block_on(svc.oneshot(req)).unwrap();
        let body = runtime().block_on(http_body_util::BodyExt::collect(res.into_body())).unwrap().to_bytes();
        let page = String::from_utf8_lossy(&body);
        if let Some(at) = page.find("name=\"next\" value=\"") {
            let kept = &page[at + 19..];
            let kept = &kept[..kept.find('"').unwrap()];
            prop_assert!(kept.starts_with('/') && !kept.starts_with("//"), "{}", kept);
            prop_assert!(!kept.contains('\\') && !kept.chars().any(char::is_control), "{}", kept);
        }
    }
}

/// `name=value`, percent-encoded as a form would send it.
fn form_urlencoded_pair(name: &str, value: &str) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    format!("{}={}", enc(name), enc(value))
}
