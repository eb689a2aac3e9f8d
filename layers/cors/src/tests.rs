use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body as _;
use http_body_util::{BodyExt, Full};
use tower::{Layer, ServiceExt, service_fn};

use crate::{AllowOrigin, CorsLayer};

const APP: &str = "https://app.example.com";

/// The handler marks its responses and can set headers of its own through `x-set-*` request
/// headers (`x-set-vary: accept-encoding` makes it answer `Vary: accept-encoding`).
async fn handler(req: Request<()>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut res = Response::new(Full::new(Bytes::from_static(b"from the handler")));
    res.headers_mut()
        .insert("x-handler", HeaderValue::from_static("yes"));
    for (name, value) in req.headers() {
        if let Some(target) = name.as_str().strip_prefix("x-set-") {
            res.headers_mut().append(
                http::HeaderName::from_bytes(target.as_bytes()).unwrap(),
                value.clone(),
            );
        }
    }
    Ok(res)
}

fn base() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::list([APP, "https://*.example.org"]).unwrap())
        .allow_methods([Method::GET, Method::PUT, Method::DELETE])
        .allow_headers(["content-type", "x-custom"])
        .unwrap()
        .expose_headers(["x-total"])
        .unwrap()
        .max_age(Duration::from_secs(600))
}

async fn send(
    layer: CorsLayer,
    method: Method,
    headers: &[(&str, &str)],
) -> Response<tower_plugins_core::PluginBody<Full<Bytes>>> {
    let mut b = Request::builder().method(method).uri("/items");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    layer
        .layer(service_fn(handler))
        .oneshot(b.body(()).unwrap())
        .await
        .unwrap()
}

fn h<'a, B>(res: &'a Response<B>, name: &str) -> Option<&'a str> {
    res.headers().get(name).map(|v| v.to_str().unwrap())
}

fn vary<B>(res: &Response<B>) -> Vec<String> {
    res.headers()
        .get_all("vary")
        .iter()
        .flat_map(|v| v.to_str().unwrap().split(',').map(|s| s.trim().to_owned()))
        .collect()
}

fn preflight_headers<'a>(origin: &'a str, method: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("origin", origin),
        ("access-control-request-method", method),
    ]
}

/// The Fetch standard's CORS checks, one row each: request, then what the browser needs to
/// see for the request to pass (or to fail).
#[tokio::test]
async fn conformance_table() {
    struct Row {
        what: &'static str,
        method: Method,
        headers: Vec<(&'static str, &'static str)>,
        status: u16,
        handler: bool,
        acao: Option<&'static str>,
    }
    /// Rows checked against a layer that allows credentials, with what the browser needs to
    /// see: (what, method, headers, ACAO, ACAC, exposed headers).
    type CredRow = (
        &'static str,
        Method,
        Vec<(&'static str, &'static str)>,
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
    );
    let credential_rows: [CredRow; 4] = [
        (
            "credentialed GET: the origin echoed, never *, and credentials allowed",
            Method::GET,
            vec![("origin", APP)],
            Some(APP),
            Some("true"),
            Some("x-total"),
        ),
        (
            "credentialed preflight",
            Method::OPTIONS,
            preflight_headers(APP, "PUT"),
            Some(APP),
            Some("true"),
            None,
        ),
        (
            "credentials are not granted to an origin not allowed",
            Method::GET,
            vec![("origin", "https://evil.example")],
            None,
            None,
            None,
        ),
        (
            "exposed headers only on actual responses, not on preflights",
            Method::OPTIONS,
            preflight_headers("https://x.example.org", "GET"),
            Some("https://x.example.org"),
            Some("true"),
            None,
        ),
    ];
    for (what, method, headers, acao, acac, expose) in credential_rows {
        let res = send(base().allow_credentials(true), method, &headers).await;
        assert_eq!(h(&res, "access-control-allow-origin"), acao, "{what}");
        assert_eq!(h(&res, "access-control-allow-credentials"), acac, "{what}");
        assert_eq!(h(&res, "access-control-expose-headers"), expose, "{what}");
    }
    let rows = [
        Row {
            what: "simple GET from an allowed origin",
            method: Method::GET,
            headers: vec![("origin", APP)],
            status: 200,
            handler: true,
            acao: Some(APP),
        },
        Row {
            what: "simple GET from another origin: no ACAO, the browser refuses to expose it",
            method: Method::GET,
            headers: vec![("origin", "https://evil.example")],
            status: 200,
            handler: true,
            acao: None,
        },
        Row {
            what: "same-origin or non-browser request without Origin",
            method: Method::GET,
            headers: vec![],
            status: 200,
            handler: true,
            acao: None,
        },
        Row {
            what: "wildcard subdomain by labels",
            method: Method::GET,
            headers: vec![("origin", "https://a.b.example.org")],
            status: 200,
            handler: true,
            acao: Some("https://a.b.example.org"),
        },
        Row {
            what: "suffix lookalike is not a subdomain",
            method: Method::GET,
            headers: vec![("origin", "https://evil-example.org")],
            status: 200,
            handler: true,
            acao: None,
        },
        Row {
            what: "OPTIONS without Access-Control-Request-Method is not a preflight",
            method: Method::OPTIONS,
            headers: vec![("origin", APP)],
            status: 200,
            handler: true,
            acao: Some(APP),
        },
        Row {
            what: "OPTIONS with Access-Control-Request-Method but no Origin is not a preflight",
            method: Method::OPTIONS,
            headers: vec![("access-control-request-method", "PUT")],
            status: 200,
            handler: true,
            acao: None,
        },
        Row {
            what: "preflight for an allowed method",
            method: Method::OPTIONS,
            headers: preflight_headers(APP, "PUT"),
            status: 204,
            handler: false,
            acao: Some(APP),
        },
        Row {
            what: "preflight for a safelisted method not in the list",
            method: Method::OPTIONS,
            headers: preflight_headers(APP, "POST"),
            status: 204,
            handler: false,
            acao: Some(APP),
        },
        Row {
            what: "preflight for a method not allowed",
            method: Method::OPTIONS,
            headers: preflight_headers(APP, "PATCH"),
            status: 204,
            handler: false,
            acao: None,
        },
        Row {
            what: "methods are case-sensitive (put is not PUT)",
            method: Method::OPTIONS,
            headers: preflight_headers(APP, "put"),
            status: 204,
            handler: false,
            acao: None,
        },
        Row {
            what: "preflight from an origin not allowed",
            method: Method::OPTIONS,
            headers: preflight_headers("https://evil.example", "PUT"),
            status: 204,
            handler: false,
            acao: None,
        },
        Row {
            what: "preflight asking for allowed headers, any case",
            method: Method::OPTIONS,
            headers: vec![
                ("origin", APP),
                ("access-control-request-method", "PUT"),
                ("access-control-request-headers", "Content-Type, X-Custom"),
            ],
            status: 204,
            handler: false,
            acao: Some(APP),
        },
        Row {
            what: "preflight asking for a header not allowed",
            method: Method::OPTIONS,
            headers: vec![
                ("origin", APP),
                ("access-control-request-method", "PUT"),
                ("access-control-request-headers", "content-type, x-secret"),
            ],
            status: 204,
            handler: false,
            acao: None,
        },
        Row {
            what: "safelisted request headers need no permission",
            method: Method::OPTIONS,
            headers: vec![
                ("origin", APP),
                ("access-control-request-method", "PUT"),
                ("access-control-request-headers", "accept, accept-language"),
            ],
            status: 204,
            handler: false,
            acao: Some(APP),
        },
        Row {
            what: "private network access not allowed by default",
            method: Method::OPTIONS,
            headers: vec![
                ("origin", APP),
                ("access-control-request-method", "GET"),
                ("access-control-request-private-network", "true"),
            ],
            status: 204,
            handler: false,
            acao: None,
        },
        Row {
            what: "the null origin is not matched by patterns",
            method: Method::GET,
            headers: vec![("origin", "null")],
            status: 200,
            handler: true,
            acao: None,
        },
    ];
    for row in rows {
        let res = send(base(), row.method.clone(), &row.headers).await;
        assert_eq!(res.status().as_u16(), row.status, "{}", row.what);
        assert_eq!(h(&res, "x-handler").is_some(), row.handler, "{}", row.what);
        assert_eq!(
            h(&res, "access-control-allow-origin"),
            row.acao,
            "{}",
            row.what
        );
        if row.acao.is_none() {
            for name in [
                "access-control-allow-credentials",
                "access-control-allow-methods",
                "access-control-allow-headers",
                "access-control-expose-headers",
                "access-control-max-age",
            ] {
                assert!(h(&res, name).is_none(), "{}: {name} set", row.what);
            }
        }
        assert!(
            vary(&res).iter().any(|v| v == "origin"),
            "{}: vary",
            row.what
        );
    }
}

#[tokio::test]
async fn allowed_preflight_carries_every_header() {
    let res = send(
        base(),
        Method::OPTIONS,
        &[
            ("origin", APP),
            ("access-control-request-method", "DELETE"),
            ("access-control-request-headers", "x-custom"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        h(&res, "access-control-allow-methods"),
        Some("GET, PUT, DELETE")
    );
    assert_eq!(
        h(&res, "access-control-allow-headers"),
        Some("content-type, x-custom")
    );
    assert_eq!(h(&res, "access-control-max-age"), Some("600"));
    assert!(h(&res, "access-control-allow-credentials").is_none());
    assert_eq!(
        vary(&res),
        [
            "origin",
            "access-control-request-method",
            "access-control-request-headers"
        ]
    );
    assert_eq!(res.body().size_hint().exact(), Some(0));
}

#[tokio::test]
async fn strict_answers_refused_preflights_403_with_the_reason() {
    let res = send(
        base().strict(true),
        Method::OPTIONS,
        &[
            ("origin", APP),
            ("access-control-request-method", "PUT"),
            ("access-control-request-headers", "x-secret"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        body,
        "CORS preflight refused: header `x-secret` not allowed\n"
    );
}

#[tokio::test]
async fn actual_requests_expose_and_keep_content_length() {
    let res = send(base(), Method::GET, &[("origin", APP)]).await;
    assert_eq!(h(&res, "access-control-expose-headers"), Some("x-total"));
    assert_eq!(res.body().size_hint().exact(), Some(16));
    assert!(h(&res, "access-control-max-age").is_none());
}

#[tokio::test]
async fn credentials_echo_the_origin() {
    let layer = base().allow_credentials(true);
    layer.check().unwrap();
    let res = send(layer.clone(), Method::GET, &[("origin", APP)]).await;
    assert_eq!(h(&res, "access-control-allow-origin"), Some(APP));
    assert_eq!(h(&res, "access-control-allow-credentials"), Some("true"));
    let res = send(layer, Method::OPTIONS, &preflight_headers(APP, "PUT")).await;
    assert_eq!(h(&res, "access-control-allow-credentials"), Some("true"));
}

#[tokio::test]
async fn any_origin_is_a_star_without_vary() {
    let layer = CorsLayer::new().allow_origin(AllowOrigin::any());
    let res = send(layer.clone(), Method::GET, &[("origin", "https://x.test")]).await;
    assert_eq!(h(&res, "access-control-allow-origin"), Some("*"));
    assert!(vary(&res).is_empty());
    // A null origin reading a public resource is fine with `*`.
    let res = send(layer, Method::GET, &[("origin", "null")]).await;
    assert_eq!(h(&res, "access-control-allow-origin"), Some("*"));
}

#[tokio::test]
async fn any_headers_name_authorization_and_mirror_echoes() {
    let layer = base().allow_any_header();
    let res = send(
        layer,
        Method::OPTIONS,
        &[
            ("origin", APP),
            ("access-control-request-method", "PUT"),
            (
                "access-control-request-headers",
                "authorization, x-anything",
            ),
        ],
    )
    .await;
    assert_eq!(
        h(&res, "access-control-allow-headers"),
        Some("*, authorization")
    );

    let layer = base().mirror_request_headers().allow_credentials(true);
    let res = send(
        layer,
        Method::OPTIONS,
        &[
            ("origin", APP),
            ("access-control-request-method", "PUT"),
            ("access-control-request-headers", "X-One"),
            ("access-control-request-headers", "x-two"),
        ],
    )
    .await;
    assert_eq!(
        h(&res, "access-control-allow-headers"),
        Some("x-one, x-two")
    );
}

#[tokio::test]
async fn private_network_when_allowed() {
    let res = send(
        base().allow_private_network(true),
        Method::OPTIONS,
        &[
            ("origin", APP),
            ("access-control-request-method", "GET"),
            ("access-control-request-private-network", "true"),
        ],
    )
    .await;
    assert_eq!(
        h(&res, "access-control-allow-private-network"),
        Some("true")
    );
    // Not asked: not sent.
    let res = send(
        base().allow_private_network(true),
        Method::OPTIONS,
        &preflight_headers(APP, "GET"),
    )
    .await;
    assert!(h(&res, "access-control-allow-private-network").is_none());
}

#[tokio::test]
async fn vary_is_appended_never_replaced() {
    let res = send(
        base(),
        Method::GET,
        &[("origin", APP), ("x-set-vary", "accept-encoding")],
    )
    .await;
    assert_eq!(vary(&res), ["accept-encoding", "origin"]);
    let res = send(
        base(),
        Method::GET,
        &[("origin", APP), ("x-set-vary", "Origin")],
    )
    .await;
    assert_eq!(vary(&res), ["Origin"]);
    let res = send(base(), Method::GET, &[("origin", APP), ("x-set-vary", "*")]).await;
    assert_eq!(vary(&res), ["*"]);
}

#[tokio::test]
async fn handler_cors_headers_are_kept_unless_overridden() {
    let handler_set = [
        ("origin", APP),
        (
            "x-set-access-control-allow-origin",
            "https://handler.example",
        ),
    ];
    let res = send(base(), Method::GET, &handler_set).await;
    assert_eq!(
        h(&res, "access-control-allow-origin"),
        Some("https://handler.example")
    );
    assert!(h(&res, "access-control-expose-headers").is_none());
    let res = send(base().override_handler(true), Method::GET, &handler_set).await;
    assert_eq!(h(&res, "access-control-allow-origin"), Some(APP));

    // The handler set only the exposed headers: kept, and the rest added.
    let res = send(
        base(),
        Method::GET,
        &[
            ("origin", APP),
            ("x-set-access-control-expose-headers", "x-mine"),
        ],
    )
    .await;
    assert_eq!(h(&res, "access-control-expose-headers"), Some("x-mine"));
    assert_eq!(h(&res, "access-control-allow-origin"), Some(APP));
}

#[tokio::test]
async fn hostile_headers_are_refused_not_fatal() {
    // Repeated Origin.
    let res = send(base(), Method::GET, &[("origin", APP), ("origin", APP)]).await;
    assert!(h(&res, "access-control-allow-origin").is_none());
    // Binary Origin.
    let mut req = Request::get("/").body(()).unwrap();
    req.headers_mut().insert(
        "origin",
        HeaderValue::from_bytes(b"https://app.example.com\xff").unwrap(),
    );
    let res = base()
        .layer(service_fn(handler))
        .oneshot(req)
        .await
        .unwrap();
    assert!(h(&res, "access-control-allow-origin").is_none());
    // A huge header list, a non-token name, two methods.
    let huge = vec!["x-custom"; 1000].join(",");
    for headers in [
        vec![
            ("origin", APP),
            ("access-control-request-method", "PUT"),
            ("access-control-request-headers", huge.as_str()),
        ],
        vec![
            ("origin", APP),
            ("access-control-request-method", "PUT"),
            ("access-control-request-headers", "x custom"),
        ],
        vec![
            ("origin", APP),
            ("access-control-request-method", "PUT"),
            ("access-control-request-method", "GET"),
        ],
        vec![("origin", APP), ("access-control-request-method", "P U T")],
    ] {
        let res = send(base().strict(true), Method::OPTIONS, &headers).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn presets_match_tower_http() {
    let res = send(
        CorsLayer::permissive(),
        Method::OPTIONS,
        &[
            ("origin", "https://anyone.test"),
            ("access-control-request-method", "PATCH"),
            ("access-control-request-headers", "x-anything"),
        ],
    )
    .await;
    assert_eq!(h(&res, "access-control-allow-origin"), Some("*"));
    assert_eq!(h(&res, "access-control-allow-methods"), Some("*"));
    assert_eq!(h(&res, "access-control-allow-headers"), Some("*"));
    CorsLayer::permissive().check().unwrap();

    let very = CorsLayer::very_permissive();
    very.check().unwrap();
    let res = send(
        very,
        Method::OPTIONS,
        &[
            ("origin", "https://anyone.test"),
            ("access-control-request-method", "PATCH"),
            ("access-control-request-headers", "X-Anything"),
        ],
    )
    .await;
    assert_eq!(
        h(&res, "access-control-allow-origin"),
        Some("https://anyone.test")
    );
    assert_eq!(h(&res, "access-control-allow-methods"), Some("PATCH"));
    assert_eq!(h(&res, "access-control-allow-headers"), Some("x-anything"));
    assert_eq!(h(&res, "access-control-allow-credentials"), Some("true"));
}

#[tokio::test]
async fn a_new_layer_allows_nothing() {
    let res = send(CorsLayer::new(), Method::GET, &[("origin", APP)]).await;
    assert!(h(&res, "access-control-allow-origin").is_none());
}

#[test]
fn credentials_with_any_star_is_refused_by_check() {
    let l = CorsLayer::new()
        .allow_origin(AllowOrigin::any())
        .allow_any_method()
        .allow_any_header()
        .expose_any_header()
        .allow_credentials(true);
    let e = l.check().unwrap_err();
    let keys = e.keys();
    assert_eq!(
        keys,
        [
            "allow_origins",
            "allow_methods",
            "allow_headers",
            "expose_headers"
        ]
    );
}

#[test]
fn layer_and_service_are_clone_send_sync() {
    fn assert_all<T: Clone + Send + Sync + 'static>() {}
    assert_all::<CorsLayer>();
    assert_all::<crate::Cors<tower::util::BoxCloneSyncService<Request<()>, Response<()>, ()>>>();
}

#[cfg(feature = "serde")]
mod config {
    use super::*;
    use crate::CorsConfig;
    use tower_plugins_core::ProblemKind;

    fn build(text: &str) -> Result<CorsLayer, tower_plugins_core::ConfigError> {
        let c: CorsConfig = toml::from_str(text).map_err(|e| {
            tower_plugins_core::ConfigError::new(ProblemKind::InvalidValue, "", e.to_string())
        })?;
        CorsLayer::try_from(c)
    }

    #[test]
    fn full_config_builds() {
        let l = build(
            r#"
            allow_origins = ["https://app.example.com", "https://*.example.org", "null"]
            allow_origin_regex = ['https://pr-\d+\.preview\.example\.com']
            allow_methods = ["GET", "PUT"]
            allow_headers = "mirror"
            expose_headers = ["x-total"]
            allow_credentials = true
            max_age = "10m"
            allow_private_network = true
            preflight_status = 200
            strict = true
            "#,
        )
        .unwrap();
        let d = l.describe();
        assert!(
            d.contains("headers mirror") && d.contains("max-age 600s"),
            "{d}"
        );
    }

    #[test]
    fn every_invalid_setting_is_reported() {
        let e = build(
            r#"
            allow_origins = ["https://ok.example", "*", "ftp//bad"]
            allow_origin_regex = ["(open"]
            allow_methods = ["GET", "BAD METHOD"]
            allow_headers = ["content-type", "bad header"]
            expose_headers = ["*", "x-a"]
            preflight_status = 404
            max_age = "2days"
            "#,
        )
        .unwrap_err();
        let keys = e.keys();
        assert_eq!(
            keys,
            [
                "allow_origins[1]",
                "allow_origins[2]",
                "allow_methods[1]",
                "allow_headers[1]",
                "expose_headers[0]",
                "preflight_status",
                "max_age"
            ],
            "{e}"
        );
    }

    #[test]
    fn credentials_with_wildcards_are_conflicts() {
        let e = build("allow_origins = \"*\"\nallow_credentials = true\nallow_headers = \"*\"")
            .unwrap_err();
        assert!(
            e.problems().iter().all(|p| p.kind == ProblemKind::Conflict),
            "{e}"
        );
        assert_eq!(e.problems().len(), 2);
        assert!(e.problems()[0].hint.is_some());
    }

    #[test]
    fn no_origin_at_all_is_an_error() {
        let e = build("allow_methods = [\"GET\"]").unwrap_err();
        assert_eq!(e.problems()[0].kind, ProblemKind::MissingKey);
        assert_eq!(e.problems()[0].location.key, "allow_origins");
    }

    #[test]
    fn regex_errors_are_located() {
        let e = build("allow_origins = []\nallow_origin_regex = [\"ok\", \"(open\"]").unwrap_err();
        assert_eq!(e.problems()[0].location.key, "allow_origin_regex[1]");
    }
}

/// A small deterministic generator, so the hostile-input test needs no extra crate and fails
/// the same way every time.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Bytes a header value may hold (visible ASCII, tab, and obs-text), biased towards the
    /// characters that matter to the parsers.
    fn value(&mut self, max: usize) -> Vec<u8> {
        const INTERESTING: &[u8] = b",;:/*.- \t\"[]=null";
        let len = (self.next() % max as u64) as usize;
        (0..len)
            .map(|_| match self.next() % 4 {
                0 => INTERESTING[(self.next() % INTERESTING.len() as u64) as usize],
                1 => 0x80 + (self.next() % 0x80) as u8,
                _ => 0x21 + (self.next() % 0x5e) as u8,
            })
            .collect()
    }
}

#[tokio::test]
async fn random_hostile_headers_never_panic_and_never_grant_unlisted_origins() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let layers = [
        base(),
        base().strict(true),
        base().mirror_request_headers(),
        CorsLayer::permissive(),
    ];
    for i in 0..3000 {
        let layer = layers[i % layers.len()].clone();
        let mut req = Request::builder()
            .method(if i % 2 == 0 {
                Method::OPTIONS
            } else {
                Method::GET
            })
            .uri("/x")
            .body(())
            .unwrap();
        for name in [
            "origin",
            "access-control-request-method",
            "access-control-request-headers",
            "access-control-request-private-network",
        ] {
            for _ in 0..(rng.next() % 3) {
                if let Ok(v) = HeaderValue::from_bytes(&rng.value(200)) {
                    req.headers_mut().append(name, v);
                }
            }
        }
        let origin = req.headers().get("origin").cloned();
        let permissive = i % layers.len() == 3;
        let res = layer.layer(service_fn(handler)).oneshot(req).await.unwrap();
        if let Some(acao) = res.headers().get("access-control-allow-origin") {
            // Only the listed origins (or `*` for the permissive layer) are ever granted.
            let granted = acao.to_str().unwrap();
            assert!(
                permissive && granted == "*" || granted == APP || granted.ends_with(".example.org"),
                "granted {granted:?} to {origin:?}"
            );
        }
    }
}
