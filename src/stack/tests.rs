use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{HeaderValue, Request, Response};
use http_body_util::BodyExt;
use tower::{Layer, ServiceExt, service_fn};
use tower_service::Service;

use super::service::DEPTH;
use super::*;
use crate::Body;

/// A custom plugin that records the order in which requests and responses pass it.
#[derive(Clone)]
struct TagLayer(String);

#[derive(Clone)]
struct Tag<S> {
    inner: S,
    tag: String,
}

impl<S> Layer<S> for TagLayer {
    type Service = Tag<S>;
    fn layer(&self, inner: S) -> Tag<S> {
        Tag {
            inner,
            tag: self.0.clone(),
        }
    }
}

impl<S> Service<Request<Body>> for Tag<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        let tag = self.tag.clone();
        req.headers_mut()
            .append("x-seen", HeaderValue::from_str(&tag).unwrap());
        let fut = self.inner.call(req);
        Box::pin(async move {
            let mut res = fut.await?;
            res.headers_mut()
                .append("x-order", HeaderValue::from_str(&tag).unwrap());
            Ok(res)
        })
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TagConfig {
    tag: String,
}

fn builder() -> PluginStackBuilder {
    PluginStack::builder().register("tag", |c: TagConfig, _ctx: &PluginContext| {
        Ok(TagLayer(c.tag))
    })
}

/// The app: echoes the request's `x-seen` list in the body.
fn app() -> impl Service<
    Request<Body>,
    Response = Response<Body>,
    Error = Infallible,
    Future = impl Send + 'static,
> + Clone
+ Send
+ Sync
+ 'static {
    service_fn(|req: Request<Body>| async move {
        let seen: Vec<&str> = req
            .headers()
            .get_all("x-seen")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        Ok::<_, Infallible>(Response::new(Body::from(seen.join(","))))
    })
}

async fn run(stack: &PluginStack) -> (String, Vec<String>, http::HeaderMap) {
    let svc = stack.layer().layer(app());
    let res = svc.oneshot(Request::new(Body::empty())).await.unwrap();
    let headers = res.headers().clone();
    let order = headers
        .get_all("x-order")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (String::from_utf8(body.to_vec()).unwrap(), order, headers)
}

fn tags_toml(n: usize) -> String {
    (0..n)
        .map(|i| format!("[[plugin]]\nuse = \"tag\"\nname = \"t{i}\"\ntag = \"t{i}\"\n"))
        .collect()
}

#[tokio::test]
async fn first_entry_sees_the_request_first_and_the_response_last() {
    let stack = builder().toml_str(tags_toml(3)).build().unwrap();
    let (seen, order, _) = run(&stack).await;
    assert_eq!(seen, "t0,t1,t2");
    assert_eq!(order, ["t2", "t1", "t0"]);
}

#[tokio::test]
async fn order_holds_past_the_static_depth() {
    for n in 1..=DEPTH + 5 {
        let stack = builder().toml_str(tags_toml(n)).build().unwrap();
        let (seen, order, _) = run(&stack).await;
        let expected: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
        assert_eq!(seen, expected.join(","), "{n} entries");
        let mut rev = expected.clone();
        rev.reverse();
        assert_eq!(order, rev, "{n} entries");
    }
}

#[tokio::test]
async fn timers_mix_with_custom_plugins_in_any_position() {
    let text = format!(
        "{}[[plugin]]\nuse = \"timer\"\nserver_timing_name = \"inner\"\n{}",
        tags_toml(2),
        "[[plugin]]\nuse = \"tag\"\nname = \"last\"\ntag = \"last\"\n"
    );
    let stack = builder()
        .toml_str(text)
        .plugin(
            PluginEntry::new("timer")
                .name("outer_timer")
                .set("server_timing_name", "code"),
        )
        .build()
        .unwrap();
    let (seen, order, headers) = run(&stack).await;
    assert_eq!(seen, "t0,t1,last");
    assert_eq!(order, ["last", "t1", "t0"]);
    let st: Vec<_> = headers.get_all("server-timing").iter().collect();
    assert_eq!(st.len(), 2);
    assert!(st[0].to_str().unwrap().starts_with("code;dur="), "{st:?}");
    assert!(st[1].to_str().unwrap().starts_with("inner;dur="), "{st:?}");
}

#[tokio::test]
async fn disabled_entries_are_validated_but_not_applied() {
    let text = "[[plugin]]\nuse = \"timer\"\nenabled = false\n".to_owned() + &tags_toml(1);
    let stack = builder().toml_str(text).build().unwrap();
    let (_, order, headers) = run(&stack).await;
    assert_eq!(order, ["t0"]);
    assert!(!headers.contains_key("x-response-time"));
    assert!(!stack.entries()[0].enabled);
    // Enabling it from code applies it.
    let text = "[[plugin]]\nuse = \"timer\"\nenabled = false\n";
    let stack = builder()
        .toml_str(text)
        .enabled("timer", true)
        .build()
        .unwrap();
    let (_, _, headers) = run(&stack).await;
    assert!(headers.contains_key("x-response-time"));
}

#[tokio::test]
async fn code_overrides_file_values() {
    let stack = builder()
        .toml_str("[[plugin]]\nuse = \"timer\"\nheader = \"x-file\"\n")
        .set("timer", "header", "x-code")
        .build()
        .unwrap();
    let (_, _, headers) = run(&stack).await;
    assert!(headers.contains_key("x-code"));
    assert!(!headers.contains_key("x-file"));
}

#[tokio::test]
async fn empty_stack_passes_through() {
    let stack = PluginStack::from_toml_str("").unwrap();
    let (body, order, headers) = run(&stack).await;
    assert_eq!((body.as_str(), order.len()), ("", 0));
    assert!(!headers.contains_key("x-response-time"));
}

#[test]
fn display_lists_order_names_state_and_settings() {
    let stack = builder()
        .toml_str(
            "[client_ip]\ntrusted_proxies = [\"10.0.0.0/8\"]\n\
             [[plugin]]\nuse = \"timer\"\nname = \"timing\"\ndigits = 1\n\
             [[plugin]]\nuse = \"tag\"\ntag = \"x\"\nenabled = false\n",
        )
        .build()
        .unwrap();
    let text = stack.to_string();
    assert!(text.contains("2 entries, 1 enabled"), "{text}");
    assert!(
        text.contains(" 1. timer  timing  enabled  x-response-time: 1 digits in ms"),
        "{text}"
    );
    assert!(
        text.contains(" 2. tag    tag     disabled tag = \"x\""),
        "{text}"
    );
    assert!(
        text.contains("x-forwarded-for from trusted proxies 10.0.0.0/8"),
        "{text}"
    );
}

#[test]
fn registering_a_taken_name_is_an_error() {
    let e = builder()
        .register("timer", |c: TagConfig, _ctx: &PluginContext| {
            Ok(TagLayer(c.tag))
        })
        .register("tag", |c: TagConfig, _ctx: &PluginContext| {
            Ok(TagLayer(c.tag))
        })
        .build()
        .unwrap_err();
    assert_eq!(e.problems().len(), 2);
    assert!(e.problems().iter().all(|p| p.kind == ProblemKind::Conflict));
}

#[test]
fn stack_types_are_clone_send_sync() {
    fn assert_all<T: Clone + Send + Sync + 'static>(_: &T) {}
    let stack = builder().toml_str(tags_toml(2)).build().unwrap();
    assert_all(&stack);
    assert_all(&stack.layer());
    assert_all(&stack.layer().layer(app()));
}

#[tokio::test]
async fn poll_ready_is_passed_through_every_slot() {
    for n in [0, 1, 2, 3, 5, 9] {
        let stack = builder().toml_str(tags_toml(n)).build().unwrap();
        let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        // The stack wraps infallible services; the mock's error type is boxed.
        let inner = mock.map_err(|e: crate::BoxError| -> Infallible { panic!("mock: {e}") });
        let mut svc = tower_test::mock::Spawn::new(stack.layer().layer(inner));
        handle.allow(0);
        assert!(
            svc.poll_ready::<Request<Body>>().is_pending(),
            "{n} entries"
        );
        handle.allow(1);
        assert!(svc.poll_ready::<Request<Body>>().is_ready(), "{n} entries");
        let fut = svc.call(Request::new(Body::empty()));
        let (_, send) = handle.next_request().await.unwrap();
        send.send_response(Response::new(Body::from("ok")));
        let res = fut.await.unwrap();
        assert_eq!(res.headers().get_all("x-order").iter().count(), n);
    }
}

#[tokio::test]
async fn composes_with_service_builder() {
    let stack = builder()
        .toml_str("[[plugin]]\nuse = \"timer\"\n".to_owned() + &tags_toml(1))
        .build()
        .unwrap();
    let svc = tower::ServiceBuilder::new()
        .map_request(|req: Request<http_body_util::Full<bytes::Bytes>>| req)
        .layer(stack.layer())
        .service(app());
    let res = svc
        .oneshot(Request::new(http_body_util::Full::new(bytes::Bytes::new())))
        .await
        .unwrap();
    assert!(res.headers().contains_key("x-response-time"));
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "t0");
}
