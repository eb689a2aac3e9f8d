use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use tower::{Layer, Service, ServiceExt};
use tower_plugins_core::{AuthUser, ClientIpResolver, PathSet, parse_quota};

use crate::{Count, KeySource, ManualClock, RateKey, RateLimitLayer, Rule, UnknownKey};

#[path = "../tests/support/mod.rs"]
mod support;
use support::{Svc, inner, req_from, status_of};

fn q(s: &str) -> tower_plugins_core::Quota {
    parse_quota(s).unwrap()
}

async fn admitted(layer: &RateLimitLayer, peer: &str, path: &str, n: usize) -> usize {
    let mut ok = 0;
    for _ in 0..n {
        if status_of(layer, req_from(peer, path)).await.0 != StatusCode::TOO_MANY_REQUESTS {
            ok += 1;
        }
    }
    ok
}

fn header<'a>(h: &'a http::HeaderMap, name: &str) -> Vec<&'a str> {
    h.get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clones_share_one_quota_exactly_under_concurrency() {
    let clock = ManualClock::new();
    let layer = RateLimitLayer::new(q("10/s"))
        .burst(std::num::NonZeroU32::new(25).unwrap())
        .clock(clock.clone());
    // 8 clones of the service (one per connection, as axum makes them), 200 concurrent tasks.
    let services: Vec<_> = (0..8).map(|_| layer.layer(inner())).collect();
    let round = |services: Vec<crate::RateLimit<Svc>>| async move {
        let mut tasks = Vec::new();
        for i in 0..200 {
            let svc = services[i % services.len()].clone();
            tasks.push(tokio::spawn(async move {
                svc.oneshot(req_from("192.0.2.1", "/"))
                    .await
                    .unwrap()
                    .status()
            }));
        }
        let mut ok = 0;
        for t in tasks {
            if t.await.unwrap() == StatusCode::OK {
                ok += 1;
            }
        }
        ok
    };
    assert_eq!(round(services.clone()).await, 25, "exactly the burst");
    assert_eq!(
        round(services.clone()).await,
        0,
        "nothing until time passes"
    );
    clock.advance(Duration::from_millis(1000));
    assert_eq!(
        round(services.clone()).await,
        10,
        "then the refill rate: 10 per second"
    );
    clock.advance(Duration::from_millis(350));
    assert_eq!(round(services).await, 3);
}

#[tokio::test]
async fn admitted_requests_carry_the_ietf_headers() {
    let clock = ManualClock::new();
    let layer = RateLimitLayer::new(q("100/min"))
        .burst(std::num::NonZeroU32::new(20).unwrap())
        .clock(clock.clone());
    let (s, h) = status_of(&layer, req_from("192.0.2.1", "/")).await;
    assert_eq!(s, StatusCode::OK);
    // 20 units, one every 0.6 s: the window to refill the burst is 12 s.
    assert_eq!(header(&h, "ratelimit-policy"), ["\"default\";q=20;w=12"]);
    // One used: full again 0.6 s later, rounded up.
    assert_eq!(header(&h, "ratelimit"), ["\"default\";r=19;t=1"]);
    assert!(h.get("x-ratelimit-limit").is_none());
    for _ in 0..4 {
        status_of(&layer, req_from("192.0.2.1", "/")).await;
    }
    let (_, h) = status_of(&layer, req_from("192.0.2.1", "/")).await;
    assert_eq!(header(&h, "ratelimit"), ["\"default\";r=14;t=4"]);
}

#[tokio::test]
async fn a_refused_grpc_call_is_resource_exhausted_trailers_only_with_its_pushback() {
    let clock = ManualClock::new();
    let layer = RateLimitLayer::new(q("1/10s")).clock(clock.clone());
    let grpc = |ct: &str| {
        let mut r = req_from("192.0.2.1", "/pkg.Svc/Call");
        r.headers_mut().insert("content-type", ct.parse().unwrap());
        r
    };
    assert_eq!(
        status_of(&layer, grpc("application/grpc")).await.0,
        StatusCode::OK
    );
    clock.advance(Duration::from_millis(7_500));
    let res = layer
        .layer(inner())
        .oneshot(grpc("application/grpc+proto"))
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "a gRPC client reads only trailers-only"
    );
    let h = res.headers().clone();
    assert_eq!(header(&h, "grpc-status"), ["8"]);
    assert_eq!(header(&h, "grpc-retry-pushback-ms"), ["2500"]);
    assert_eq!(header(&h, "retry-after"), ["3"]);
    assert_eq!(header(&h, "content-type"), ["application/grpc+proto"]);
    assert_eq!(
        header(&h, "grpc-message"),
        ["rate limit \"default\" exceeded; retry in 3 s"]
    );
    assert_eq!(header(&h, "ratelimit"), ["\"default\";r=0;t=3"]);
    assert!(
        res.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .is_empty()
    );
}

#[tokio::test]
async fn refusals_are_429_problem_json_with_retry_after_rounded_up() {
    let clock = ManualClock::new();
    let layer = RateLimitLayer::new(q("1/10s"))
        .clock(clock.clone())
        .legacy_headers(true);
    assert_eq!(
        status_of(&layer, req_from("192.0.2.1", "/")).await.0,
        StatusCode::OK
    );
    clock.advance(Duration::from_millis(9_900));
    let res = layer
        .layer(inner())
        .oneshot(req_from("192.0.2.1", "/"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let h = res.headers().clone();
    // 0.1 s left: never rounded down to 0.
    assert_eq!(header(&h, "retry-after"), ["1"]);
    assert_eq!(header(&h, "content-type"), ["application/problem+json"]);
    assert_eq!(header(&h, "ratelimit"), ["\"default\";r=0;t=1"]);
    assert_eq!(header(&h, "x-ratelimit-remaining"), ["0"]);
    assert_eq!(header(&h, "x-ratelimit-limit"), ["1"]);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["type"], "about:blank");
    assert_eq!(v["status"], 429);
    assert_eq!(v["title"], "Too Many Requests");
    assert_eq!(v["policy"], "default");
    assert_eq!(v["retry_after"], 1);
    assert_eq!(v["detail"], "rate limit \"default\" exceeded; retry in 1 s");
    assert_eq!(layer.stats().limited, 1);
}

#[tokio::test]
async fn on_reject_replaces_the_body_and_keeps_the_headers() {
    let layer = RateLimitLayer::new(q("1/min")).on_reject(|r| {
        let mut res = Response::new(Bytes::from(format!("slow down: {}", r.policy)));
        *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        res
    });
    status_of(&layer, req_from("192.0.2.1", "/")).await;
    let res = layer
        .layer(inner())
        .oneshot(req_from("192.0.2.1", "/"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers().contains_key("retry-after"));
    assert!(res.headers().contains_key("ratelimit"));
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"slow down: default");
}

#[tokio::test]
async fn forged_forwarding_headers_from_untrusted_peers_do_not_change_the_key() {
    let layer = RateLimitLayer::new(q("3/min"));
    let mut ok = 0;
    for i in 0..10 {
        let mut r = req_from("198.51.100.7", "/");
        r.headers_mut()
            .insert("x-forwarded-for", format!("203.0.113.{i}").parse().unwrap());
        r.headers_mut()
            .insert("forwarded", format!("for=203.0.113.{i}").parse().unwrap());
        if status_of(&layer, r).await.0 == StatusCode::OK {
            ok += 1;
        }
    }
    assert_eq!(ok, 3, "one bucket: the peer's");

    // Behind a trusted proxy the header names the client; a malformed one falls back to the
    // proxy's own address.
    let trusted = ClientIpResolver::new().trust(["10.0.0.0/8"]).unwrap();
    let layer = RateLimitLayer::new(q("1/min")).client_ip(trusted);
    let via_proxy = |xff: &str| {
        let mut r = req_from("10.0.0.1", "/");
        r.headers_mut()
            .insert("x-forwarded-for", xff.parse().unwrap());
        r
    };
    assert_eq!(
        status_of(&layer, via_proxy("203.0.113.1")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        status_of(&layer, via_proxy("203.0.113.2")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        status_of(&layer, via_proxy("203.0.113.1")).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        status_of(&layer, via_proxy("not an address")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        status_of(&layer, via_proxy("garbage, 10.0.0.9")).await.0,
        StatusCode::TOO_MANY_REQUESTS,
        "the proxy's own bucket, already used"
    );
}

#[tokio::test]
async fn a_request_without_a_peer_address_is_limited_in_the_shared_bucket_not_failed() {
    let layer = RateLimitLayer::new(q("2/min"));
    let bare = || Request::builder().uri("/").body(()).unwrap();
    assert_eq!(status_of(&layer, bare()).await.0, StatusCode::OK);
    assert_eq!(status_of(&layer, bare()).await.0, StatusCode::OK);
    assert_eq!(
        status_of(&layer, bare()).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Clients with an address are not affected by the shared bucket.
    assert_eq!(
        status_of(&layer, req_from("192.0.2.1", "/")).await.0,
        StatusCode::OK
    );

    let allow = RateLimitLayer::new(q("1/min")).unknown_key(UnknownKey::Allow);
    for _ in 0..5 {
        assert_eq!(status_of(&allow, bare()).await.0, StatusCode::OK);
    }
    let deny = RateLimitLayer::new(q("1/min")).unknown_key(UnknownKey::Deny);
    assert_eq!(
        status_of(&deny, bare()).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn rules_apply_by_path_and_method_and_a_refused_request_costs_nothing() {
    let layer = RateLimitLayer::from_rules([
        Rule::new("login", q("2/min"))
            .paths(PathSet::new(["/login"]).unwrap())
            .methods([Method::POST]),
        Rule::new("api", q("5/min")).paths(PathSet::new(["/api/**", "/login"]).unwrap()),
    ]);
    let post = |path: &str| {
        let mut r = req_from("192.0.2.1", path);
        *r.method_mut() = Method::POST;
        r
    };
    // GET /login: only the api rule applies.
    let (s, h) = status_of(&layer, req_from("192.0.2.1", "/login")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(header(&h, "ratelimit"), ["\"api\";r=4;t=12"]);
    // POST /login: both rules, both reported.
    let (_, h) = status_of(&layer, post("/login")).await;
    assert_eq!(
        header(&h, "ratelimit"),
        ["\"login\";r=1;t=30", "\"api\";r=3;t=24"]
    );
    assert_eq!(
        header(&h, "ratelimit-policy"),
        ["\"login\";q=2;w=60", "\"api\";q=5;w=60"]
    );
    assert_eq!(status_of(&layer, post("/login")).await.0, StatusCode::OK);
    // The login rule refuses; the api rule's unit is given back.
    let (s, h) = status_of(&layer, post("/login")).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&h, "ratelimit"), ["\"login\";r=0;t=60"]);
    let (_, h) = status_of(&layer, req_from("192.0.2.1", "/api/x")).await;
    assert_eq!(header(&h, "ratelimit"), ["\"api\";r=1;t=48"]);
    // Unlimited paths get no headers.
    let (s, h) = status_of(&layer, req_from("192.0.2.1", "/other")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(h.get("ratelimit").is_none());
}

#[tokio::test]
async fn failures_rules_count_only_error_answers() {
    let layer = RateLimitLayer::from_rules([Rule::new("login", q("3/min")).count(Count::Failures)]);
    for _ in 0..10 {
        assert_eq!(
            status_of(&layer, req_from("192.0.2.1", "/login")).await.0,
            StatusCode::OK
        );
    }
    for _ in 0..3 {
        let s = status_of(&layer, req_from("192.0.2.1", "/login?status=401"))
            .await
            .0;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    // Three failures used the quota: even a would-be success is refused now.
    let s = status_of(&layer, req_from("192.0.2.1", "/login")).await.0;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn shadow_rules_count_and_report_but_never_refuse() {
    let layer = RateLimitLayer::new(q("2/min")).shadow(true);
    assert_eq!(admitted(&layer, "192.0.2.1", "/", 6).await, 6);
    assert_eq!(layer.stats().shadow_limited, 4);
    assert_eq!(layer.stats().limited, 0);
}

#[tokio::test]
async fn exempt_paths_and_networks_are_never_limited() {
    let layer = RateLimitLayer::new(q("1/min"))
        .exempt_paths(PathSet::new(["/health"]).unwrap())
        .exempt_ips(["10.0.0.0/8".parse().unwrap()]);
    assert_eq!(admitted(&layer, "192.0.2.1", "/health", 5).await, 5);
    assert_eq!(admitted(&layer, "10.1.2.3", "/", 5).await, 5);
    assert_eq!(admitted(&layer, "192.0.2.1", "/", 5).await, 1);
    let (_, h) = status_of(&layer, req_from("192.0.2.1", "/health")).await;
    assert!(h.get("ratelimit").is_none());
}

#[tokio::test]
async fn header_user_and_function_keys() {
    let by_header = RateLimitLayer::new(q("1/min")).key(KeySource::Header(
        http::HeaderName::from_static("x-api-key"),
    ));
    let with_key = |k: &str| {
        let mut r = req_from("192.0.2.1", "/");
        r.headers_mut().insert("x-api-key", k.parse().unwrap());
        r
    };
    assert_eq!(status_of(&by_header, with_key("a")).await.0, StatusCode::OK);
    assert_eq!(status_of(&by_header, with_key("b")).await.0, StatusCode::OK);
    assert_eq!(
        status_of(&by_header, with_key("a")).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );

    let by_user = RateLimitLayer::new(q("1/min"))
        .key(KeySource::User)
        .unknown_key(UnknownKey::client_ip());
    let as_user = |u: &str, peer: &str| {
        let mut r = req_from(peer, "/");
        r.extensions_mut().insert(AuthUser(Arc::from(u)));
        r
    };
    assert_eq!(
        status_of(&by_user, as_user("alice", "192.0.2.1")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        status_of(&by_user, as_user("alice", "192.0.2.2")).await.0,
        StatusCode::TOO_MANY_REQUESTS,
        "the user's bucket, whatever the address"
    );
    // Anonymous requests fall back to their address.
    assert_eq!(
        status_of(&by_user, req_from("192.0.2.1", "/")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        status_of(&by_user, req_from("192.0.2.2", "/")).await.0,
        StatusCode::OK
    );

    let by_fn = RateLimitLayer::new(q("1/min")).key(KeySource::function(|r| {
        r.uri().path().split('/').nth(1).map(RateKey::from)
    }));
    assert_eq!(
        status_of(&by_fn, req_from("192.0.2.1", "/t1/a")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        status_of(&by_fn, req_from("192.0.2.1", "/t2/a")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        status_of(&by_fn, req_from("192.0.2.9", "/t1/b")).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn keys_are_evicted_when_time_passes_and_capped_by_max_keys() {
    let clock = ManualClock::new();
    let layer = RateLimitLayer::new(q("10/s")).clock(clock.clone());
    let mut svc = layer.layer(inner());
    for i in 0..5_000u32 {
        let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i);
        let r = req_from(&ip.to_string(), "/");
        svc.ready().await.unwrap().call(r).await.unwrap();
    }
    assert_eq!(layer.stats().keys, 5_000);
    let full = layer.memory_bytes();
    clock.advance(Duration::from_millis(200));
    assert_eq!(layer.sweep(), 5_000, "each bucket refilled after 0.1 s");
    assert_eq!(layer.stats().keys, 0);
    assert!(layer.memory_bytes() * 10 < full);

    let capped = RateLimitLayer::new(q("10/s"))
        .max_keys(1_000)
        .clock(clock.clone());
    let mut svc = capped.layer(inner());
    for i in 0..20_000u32 {
        let ip = std::net::Ipv4Addr::from(0x0b00_0000 + i);
        svc.ready()
            .await
            .unwrap()
            .call(req_from(&ip.to_string(), "/"))
            .await
            .unwrap();
    }
    let stats = capped.stats();
    assert!(stats.keys <= 1_000, "{} keys", stats.keys);
    assert!(stats.evicted_full >= 19_000, "{stats:?}");
}

#[tokio::test]
async fn the_sweeper_thread_evicts_without_being_asked() {
    let clock = ManualClock::new();
    let layer = RateLimitLayer::new(q("10/s"))
        .clock(clock.clone())
        .sweep_interval(Duration::from_millis(20));
    assert_eq!(admitted(&layer, "192.0.2.1", "/", 1).await, 1);
    assert_eq!(admitted(&layer, "192.0.2.2", "/", 1).await, 1);
    assert_eq!(layer.stats().keys, 2);
    clock.advance(Duration::from_secs(1));
    for _ in 0..200 {
        if layer.stats().keys == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the sweeper did not run within 2 s: {:?}", layer.stats());
}

#[test]
fn layer_and_service_are_clone_send_sync() {
    fn assert_all<T: Clone + Send + Sync + 'static>() {}
    assert_all::<RateLimitLayer>();
    assert_all::<crate::RateLimit<Svc>>();
    fn assert_send<T: Send>() {}
    assert_send::<crate::ResponseFuture<<Svc as Service<Request<()>>>::Future>>();
}

#[cfg(feature = "serde")]
/// A quota and burst from code past the bounds a configuration is checked against are
/// brought within them: the burst is lowered to what refills in 366 days, and the figures
/// stay exact (the arithmetic overflowed and admitted 415 of 1,000 with `w=18446744074`).
#[tokio::test]
async fn a_burst_from_code_past_its_span_is_lowered_to_fit() {
    let layer = RateLimitLayer::new(q("10/365d"))
        .burst(std::num::NonZeroU32::new(1000).unwrap())
        .clock(ManualClock::new());
    let (s, h) = status_of(&layer, req_from("192.0.2.1", "/")).await;
    assert_eq!(s, StatusCode::OK);
    // One every 36.5 days: ten of them refill within 366 days, not a thousand.
    assert_eq!(
        header(&h, "ratelimit-policy"),
        ["\"default\";q=10;w=31536000"]
    );
    assert_eq!(header(&h, "ratelimit"), ["\"default\";r=9;t=3153600"]);
    assert_eq!(admitted(&layer, "192.0.2.1", "/", 20).await, 9);
}

mod config {
    use super::*;
    use crate::RateLimitConfig;
    use tower_plugins_core::{ConfigError, ProblemKind};

    fn build(text: &str) -> Result<RateLimitLayer, ConfigError> {
        let c: RateLimitConfig = toml::from_str(text).expect("valid TOML for the struct");
        RateLimitLayer::try_from(c)
    }

    fn problems(text: &str) -> Vec<(ProblemKind, String)> {
        build(text)
            .expect_err("invalid")
            .problems()
            .iter()
            .map(|p| (p.kind, p.location.key.clone()))
            .collect()
    }

    #[test]
    fn a_full_config_builds() {
        let l = build(
            r#"
            quota = "100/min"
            burst = 20
            paths = ["/api/**"]
            key = { header = "x-api-key" }
            unknown_key = "client_ip"
            exempt_paths = ["/health"]
            exempt_ips = ["10.0.0.0/8", "192.0.2.1"]
            legacy_headers = true
            max_keys = 5000
            on_backend_error = "deny"

            [[rules]]
            name = "login"
            paths = ["/login"]
            methods = ["post"]
            quota = "5/min"
            count = "failures"
            key = "client_ip"
            "#,
        )
        .unwrap();
        let names: Vec<&str> = l.rules().iter().map(Rule::name).collect();
        assert_eq!(names, ["default", "login"]);
    }

    #[tokio::test]
    async fn the_default_rule_covers_its_paths_only() {
        let l = build("quota = \"1/min\"\npaths = [\"/api/**\"]").unwrap();
        assert_eq!(admitted(&l, "192.0.2.1", "/api/items", 3).await, 1);
        assert_eq!(admitted(&l, "192.0.2.1", "/", 3).await, 3);
    }

    #[test]
    fn every_bad_value_is_reported_with_its_key() {
        let p = problems(
            r#"
            quota = "0/min"
            burst = -1
            key = "client_pi"
            ipv6_prefix = 129
            unknown_key = "sometimes"
            exempt_ips = ["10.0.0.0/33"]
            exempt_paths = ["health"]
            max_keys = 0
            on_backend_error = "maybe"
            backend = "disk"

            [[rules]]
            name = "bad name!"
            quota = "ten/min"
            methods = ["GET POST"]

            [[rules]]
            paths = ["/x"]

            [[rules]]
            name = "r"
            quota = "1/s"
            key = { header = "bad header" }

            [[rules]]
            name = "r"
            quota = "1/s"
            count = "some"
            "#,
        );
        let keys: Vec<&str> = p.iter().map(|(_, k)| k.as_str()).collect();
        for k in [
            "quota",
            "burst",
            "key",
            "ipv6_prefix",
            "unknown_key",
            "exempt_ips[0]",
            "exempt_paths",
            "max_keys",
            "on_backend_error",
            "backend",
            "rules[0].name",
            "rules[0].quota",
            "rules[0].methods[0]",
            "rules[1].quota",
            "rules[2].key.header",
            "rules[3].name",
            "rules[3].count",
        ] {
            assert!(
                keys.iter().any(|x| x.starts_with(k)),
                "{k} missing from {keys:?}"
            );
        }
        assert!(p.contains(&(ProblemKind::MissingKey, "rules[1].quota".to_owned())));
        assert!(p.contains(&(ProblemKind::DuplicateName, "rules[3].name".to_owned())));
    }

    #[test]
    fn no_rule_at_all_is_an_error() {
        assert_eq!(
            problems(""),
            [(ProblemKind::MissingKey, "quota".to_owned())]
        );
        let p = problems("burst = 5");
        assert!(p.contains(&(ProblemKind::Conflict, "burst".to_owned())));
    }

    #[cfg(feature = "redis")]
    #[test]
    fn a_malformed_redis_url_is_an_error_at_load() {
        let p = problems("quota = \"1/s\"\nbackend = { redis = \"http://localhost\" }");
        assert_eq!(p, [(ProblemKind::InvalidValue, "backend.redis".to_owned())]);
        let l = build(
            "quota = \"1/s\"\nbackend = { redis = \"redis://127.0.0.1:6379\", timeout = \"20ms\" }",
        );
        assert!(l.is_ok());
    }

    #[test]
    fn sizes_and_spans_past_their_bounds_are_refused() {
        for (text, key) in [
            ("quota = \"1/s\"\nmax_keys = 4000000000", "max_keys"),
            ("quota = \"1/s\"\nmax_keys = 10000001", "max_keys"),
            ("quota = \"1/600y\"", "quota"),
            ("quota = \"4294967296/s\"", "quota"),
            ("quota = \"1/365d\"\nburst = 1000", "burst"),
            ("quota = \"1/s\"\nsweep_interval = \"2h\"", "sweep_interval"),
        ] {
            assert_eq!(
                problems(text),
                [(ProblemKind::InvalidValue, key.to_owned())],
                "{text}"
            );
        }
        assert!(build("quota = \"1/s\"\nmax_keys = 10000000").is_ok());
        assert!(build("quota = \"1000/366d\"\nburst = 1000").is_ok());
    }

    #[test]
    fn a_misspelt_key_in_the_backend_table_is_refused() {
        let text = "quota = \"1/s\"\nbackend = { redis = \"redis://127.0.0.1\", timout = \"5s\" }";
        let e = toml::from_str::<RateLimitConfig>(text).unwrap_err();
        assert!(e.message().contains("unknown field `timout`"), "{e}");
    }

    #[cfg(feature = "redis")]
    #[test]
    fn a_redis_timeout_outside_its_range_is_refused() {
        for t in ["0s", "2m"] {
            let text = format!(
                "quota = \"1/s\"\nbackend = {{ redis = \"redis://127.0.0.1\", timeout = \"{t}\" }}"
            );
            let p = problems(&text);
            assert_eq!(
                p,
                [(ProblemKind::InvalidValue, "backend.timeout".to_owned())],
                "{t}"
            );
        }
    }
}
