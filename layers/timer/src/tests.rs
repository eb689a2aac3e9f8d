use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use http_body::Body as _;
use http_body_util::{BodyExt, Full};
use tower::{Layer, ServiceExt, service_fn};
use tower_plugins_core::{BodyOutcome, RequestStart};

use crate::{ServerTiming, TimeUnit, TimerLayer, Timings};

fn parse_ms(v: &HeaderValue) -> f64 {
    v.to_str().unwrap().trim_end_matches("ms").parse().unwrap()
}

#[tokio::test]
async fn headers_reflect_handler_time() {
    let svc = TimerLayer::new().layer(service_fn(|_req: Request<()>| async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("ok"))))
    }));
    let res = svc.oneshot(Request::new(())).await.unwrap();
    let rt = &res.headers()["x-response-time"];
    assert!(parse_ms(rt) >= 20.0, "{rt:?}");
    let st = res.headers()["server-timing"].to_str().unwrap();
    let dur: f64 = st.strip_prefix("total;dur=").unwrap().parse().unwrap();
    assert!(dur >= 20.0, "{st}");
    // Three decimals, as express writes.
    assert_eq!(rt.to_str().unwrap().split('.').nth(1).unwrap().len(), 5);
}

#[tokio::test]
async fn configurable_format() {
    let layer = TimerLayer::new()
        .header(Some(http::HeaderName::from_static("x-elapsed")))
        .unit(TimeUnit::Micros)
        .digits(0)
        .suffix(false)
        .server_timing(false);
    let svc = layer.layer(service_fn(|_req: Request<()>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
    }));
    let res = svc.oneshot(Request::new(())).await.unwrap();
    let v = res.headers()["x-elapsed"].to_str().unwrap();
    assert!(v.bytes().all(|b| b.is_ascii_digit()), "{v}");
    assert!(!res.headers().contains_key("x-response-time"));
    assert!(!res.headers().contains_key("server-timing"));
}

#[tokio::test]
async fn handler_headers_are_kept_and_entries_added() {
    let svc = TimerLayer::new().layer(service_fn(|req: Request<()>| async move {
        let st = req.extensions().get::<ServerTiming>().unwrap();
        st.record_with_description("db", Duration::from_millis(3), "users");
        let mut res = Response::new(Full::new(Bytes::new()));
        res.headers_mut()
            .insert("x-response-time", HeaderValue::from_static("handler"));
        res.headers_mut()
            .insert("server-timing", HeaderValue::from_static("cdn;dur=1"));
        Ok::<_, Infallible>(res)
    }));
    let res = svc.oneshot(Request::new(())).await.unwrap();
    assert_eq!(res.headers()["x-response-time"], "handler");
    let st: Vec<_> = res
        .headers()
        .get_all("server-timing")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(st.len(), 2);
    assert_eq!(st[0], "cdn;dur=1");
    assert!(
        st[1].starts_with("db;dur=3.000;desc=\"users\", total;dur="),
        "{}",
        st[1]
    );
}

#[tokio::test]
async fn start_instant_is_shared_with_other_plugins() {
    let outer_start = std::time::Instant::now() - Duration::from_millis(50);
    let svc = TimerLayer::new().layer(service_fn(move |req: Request<()>| async move {
        // The handler sees the instant an outer plugin stored, not a second reading.
        assert_eq!(RequestStart::get(&req), Some(outer_start));
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
    }));
    let mut req = Request::new(());
    req.extensions_mut().insert(RequestStart(outer_start));
    let res = svc.oneshot(req).await.unwrap();
    assert!(parse_ms(&res.headers()["x-response-time"]) >= 50.0);
}

#[tokio::test]
async fn on_complete_sees_head_end_and_bytes() {
    let seen: Arc<Mutex<Vec<Timings>>> = Arc::default();
    let s = seen.clone();
    let layer = TimerLayer::new().on_complete(move |t| s.lock().unwrap().push(*t));
    let svc = layer.layer(service_fn(|_req: Request<()>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("twelve bytes"))))
    }));
    let res = svc.clone().oneshot(Request::new(())).await.unwrap();
    assert_eq!(res.body().size_hint().exact(), Some(12));
    res.into_body().collect().await.unwrap();
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].outcome, BodyOutcome::Completed);
        assert_eq!(seen[0].bytes, 12);
        assert!(seen[0].end >= seen[0].head);
    }
    // A response dropped before its body was read is reported as aborted.
    let res = svc.oneshot(Request::new(())).await.unwrap();
    drop(res);
    assert_eq!(seen.lock().unwrap()[1].outcome, BodyOutcome::Aborted);
}

#[tokio::test]
async fn on_complete_measures_the_head_without_headers_to_write() {
    let seen: Arc<Mutex<Vec<Timings>>> = Arc::default();
    let s = seen.clone();
    let layer = (TimerLayer::new().header(None).server_timing(false))
        .on_complete(move |t| s.lock().unwrap().push(*t));
    let svc = layer.layer(service_fn(|_req: Request<()>| async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("hi"))))
    }));
    let res = svc.oneshot(Request::new(())).await.unwrap();
    assert!(res.headers().is_empty());
    res.into_body().collect().await.unwrap();
    let t = seen.lock().unwrap()[0];
    assert!(t.head >= Duration::from_millis(20), "{t:?}");
    assert!(t.end >= t.head, "{t:?}");
}

#[tokio::test]
async fn errors_pass_through_unchanged() {
    let svc = TimerLayer::new().layer(service_fn(|_req: Request<()>| async {
        Err::<Response<Full<Bytes>>, _>("boom")
    }));
    assert_eq!(svc.oneshot(Request::new(())).await.unwrap_err(), "boom");
}

#[test]
fn layer_and_service_are_clone_send_sync() {
    fn assert_all<T: Clone + Send + Sync + 'static>() {}
    assert_all::<TimerLayer>();
    assert_all::<crate::Timer<tower::util::BoxCloneSyncService<Request<()>, Response<()>, ()>>>();
}

#[tokio::test]
async fn poll_ready_is_passed_through() {
    let (mut svc, mut handle) =
        tower_test::mock::spawn_layer::<Request<()>, Response<Full<Bytes>>, _>(TimerLayer::new());
    handle.allow(0);
    assert!(svc.poll_ready().is_pending());
    handle.allow(1);
    assert!(svc.poll_ready().is_ready());
    let fut = svc.call(Request::new(()));
    let (_, send) = handle.next_request().await.unwrap();
    send.send_response(Response::new(Full::new(Bytes::new())));
    assert!(fut.await.unwrap().headers().contains_key("x-response-time"));
}

/// A gRPC-like streaming body: one message, then its trailers 30 ms later.
struct Streaming {
    step: u8,
    wait: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl http_body::Body for Streaming {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        use std::task::Poll;
        self.step += 1;
        match self.step {
            1 => Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from_static(b"msg"))))),
            2 => {
                if self.wait.as_mut().poll(cx).is_pending() {
                    self.step -= 1;
                    return Poll::Pending;
                }
                let mut t = http::HeaderMap::new();
                t.insert("grpc-status", HeaderValue::from_static("0"));
                Poll::Ready(Some(Ok(http_body::Frame::trailers(t))))
            }
            _ => Poll::Ready(None),
        }
    }
}

#[tokio::test]
async fn a_streaming_response_is_timed_to_its_trailers() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let layer = TimerLayer::new().on_complete(move |t| s.lock().unwrap().push(*t));
    let svc = layer.layer(service_fn(|_req: Request<()>| async {
        let wait = Box::pin(tokio::time::sleep(Duration::from_millis(30)));
        Ok::<_, Infallible>(Response::new(Streaming { step: 0, wait }))
    }));
    let res = svc.oneshot(Request::new(())).await.unwrap();
    let collected = res.into_body().collect().await.unwrap();
    assert_eq!(
        collected.trailers().unwrap()["grpc-status"],
        "0",
        "trailers pass"
    );
    let t = seen.lock().unwrap()[0];
    assert_eq!(t.outcome, BodyOutcome::Completed);
    assert!(
        t.end >= Duration::from_millis(30),
        "{:?} ends after the trailers",
        t.end
    );
    assert!(t.head < t.end);
}
