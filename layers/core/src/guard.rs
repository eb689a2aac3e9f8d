//! [`GuardedBody`]: run accounting exactly once, when a body ends or is dropped.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Buf;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

/// How a response body finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BodyOutcome {
    /// Every frame was produced (or the body said it was at its end).
    Completed,
    /// The inner body returned an error.
    Failed,
    /// The body was dropped before its end: the client went away or the server gave up.
    Aborted,
}

/// What is known when a body finishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyEnd {
    /// How it finished.
    pub outcome: BodyOutcome,
    /// Bytes of data frames produced before the end.
    pub bytes: u64,
}

/// Called once when a [`GuardedBody`] finishes. Closures `FnOnce(BodyEnd)` implement it.
pub trait OnBodyEnd {
    /// The body finished.
    fn on_body_end(self, end: BodyEnd);

    /// The body's trailers went by (before its end): where a gRPC call's `grpc-status` is.
    /// Nothing by default.
    #[inline]
    fn on_trailers(&mut self, trailers: &http::HeaderMap) {
        let _ = trailers;
    }
}

impl<F: FnOnce(BodyEnd)> OnBodyEnd for F {
    #[inline]
    fn on_body_end(self, end: BodyEnd) {
        self(end);
    }
}

/// An [`OnBodyEnd`] that does nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopOnEnd;

impl OnBodyEnd for NoopOnEnd {
    #[inline]
    fn on_body_end(self, _: BodyEnd) {}
}

pin_project! {
    /// A body wrapper that calls its [`OnBodyEnd`] exactly once: when the inner body yields its
    /// last frame (or reports `is_end_stream`), when it fails, or, if neither happened, when the
    /// wrapper is dropped (an aborted request).
    ///
    /// Servers such as hyper stop polling as soon as `is_end_stream()` is true, so the guard
    /// checks it after every frame and in `Drop`: a completed body is never reported as aborted.
    /// `size_hint` and `is_end_stream` are forwarded unchanged.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::sync::{Arc, Mutex};
    /// use http_body_util::{BodyExt, Full};
    /// use tower_plugins_core::{BodyOutcome, GuardedBody};
    ///
    /// let seen = Arc::new(Mutex::new(None));
    /// let s = seen.clone();
    /// let body = GuardedBody::new(Full::new(bytes::Bytes::from("12345")), move |end| {
    ///     *s.lock().unwrap() = Some(end);
    /// });
    /// body.collect().await.unwrap();
    /// let end = seen.lock().unwrap().unwrap();
    /// assert_eq!((end.outcome, end.bytes), (BodyOutcome::Completed, 5));
    /// # }
    /// ```
    pub struct GuardedBody<B, G: OnBodyEnd> {
        #[pin]
        inner: B,
        guard: Option<G>,
        bytes: u64,
    }

    impl<B, G: OnBodyEnd> PinnedDrop for GuardedBody<B, G> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(g) = this.guard.take() {
                // Drop cannot ask the inner body whether it ended (it is pinned and may be
                // gone); a body that ended already fired in poll_frame.
                g.on_body_end(BodyEnd { outcome: BodyOutcome::Aborted, bytes: *this.bytes });
            }
        }
    }
}

impl<B: Body, G: OnBodyEnd> GuardedBody<B, G> {
    /// Wraps `inner`; `guard` runs once when it finishes. A body that is empty from the start
    /// (`is_end_stream()` already true) completes immediately.
    pub fn new(inner: B, guard: G) -> Self {
        let mut guard = Some(guard);
        if inner.is_end_stream() {
            if let Some(g) = guard.take() {
                g.on_body_end(BodyEnd {
                    outcome: BodyOutcome::Completed,
                    bytes: 0,
                });
            }
        }
        GuardedBody {
            inner,
            guard,
            bytes: 0,
        }
    }
}

impl<B, G: OnBodyEnd> GuardedBody<B, G> {
    /// Wraps `inner` with no guard: frames pass through uncounted (for a plugin whose
    /// accounting is off for this response, so its body type stays the same).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use http_body_util::{BodyExt, Full};
    /// use tower_plugins_core::{GuardedBody, NoopOnEnd};
    ///
    /// let body: GuardedBody<_, NoopOnEnd> = GuardedBody::unguarded(Full::new(bytes::Bytes::from("hi")));
    /// assert_eq!(body.collect().await.unwrap().to_bytes(), "hi");
    /// # }
    /// ```
    pub fn unguarded(inner: B) -> Self {
        GuardedBody {
            inner,
            guard: None,
            bytes: 0,
        }
    }

    /// The inner body.
    pub fn get_ref(&self) -> &B {
        &self.inner
    }
}

impl<B, G> Body for GuardedBody<B, G>
where
    B: Body,
    G: OnBodyEnd,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let mut this = self.project();
        if this.guard.is_none() {
            // Unguarded, or already reported: nothing left to count.
            return this.inner.poll_frame(cx);
        }
        let res = std::task::ready!(this.inner.as_mut().poll_frame(cx));
        let outcome = match &res {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    *this.bytes += data.remaining() as u64;
                } else if let (Some(t), Some(g)) = (frame.trailers_ref(), this.guard.as_mut()) {
                    g.on_trailers(t);
                }
                this.inner.is_end_stream().then_some(BodyOutcome::Completed)
            }
            Some(Err(_)) => Some(BodyOutcome::Failed),
            None => Some(BodyOutcome::Completed),
        };
        if let Some(outcome) = outcome {
            if let Some(g) = this.guard.take() {
                g.on_body_end(BodyEnd {
                    outcome,
                    bytes: *this.bytes,
                });
            }
        }
        Poll::Ready(res)
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    #[inline]
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B: fmt::Debug, G: OnBodyEnd> fmt::Debug for GuardedBody<B, G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardedBody")
            .field("inner", &self.inner)
            .field("finished", &self.guard.is_none())
            .field("bytes", &self.bytes)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty, Full};
    use std::sync::{Arc, Mutex};

    fn recorder() -> (Arc<Mutex<Vec<BodyEnd>>>, impl FnOnce(BodyEnd) + Send) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        (seen, move |e| s.lock().unwrap().push(e))
    }

    #[tokio::test]
    async fn completes_once_with_byte_count() {
        let (seen, g) = recorder();
        let mut b = GuardedBody::new(Full::new(Bytes::from_static(b"hello")), g);
        assert_eq!(b.size_hint().exact(), Some(5));
        let f = b.frame().await.unwrap().unwrap();
        assert_eq!(f.into_data().unwrap(), "hello");
        // Full reports end of stream after its one frame: done before anyone polls again.
        assert_eq!(
            *seen.lock().unwrap(),
            [BodyEnd {
                outcome: BodyOutcome::Completed,
                bytes: 5
            }]
        );
        drop(b);
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn empty_body_completes_at_once() {
        let (seen, g) = recorder();
        let b = GuardedBody::new(Empty::<Bytes>::new(), g);
        assert!(b.is_end_stream());
        drop(b);
        assert_eq!(seen.lock().unwrap()[0].outcome, BodyOutcome::Completed);
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn dropped_midway_is_aborted() {
        let (seen, g) = recorder();
        let chunks = frames(
            (0..3)
                .map(|_| Ok(Frame::data(Bytes::from_static(b"abc"))))
                .collect(),
        );
        let mut b = GuardedBody::new(chunks, g);
        b.frame().await.unwrap().unwrap();
        drop(b);
        assert_eq!(
            *seen.lock().unwrap(),
            [BodyEnd {
                outcome: BodyOutcome::Aborted,
                bytes: 3
            }]
        );
    }

    #[tokio::test]
    async fn trailers_are_shown_to_the_guard_before_its_end() {
        struct Grpc(Arc<Mutex<Vec<String>>>);
        impl OnBodyEnd for Grpc {
            fn on_body_end(self, end: BodyEnd) {
                self.0
                    .lock()
                    .unwrap()
                    .push(format!("end {:?}", end.outcome));
            }
            fn on_trailers(&mut self, t: &http::HeaderMap) {
                self.0
                    .lock()
                    .unwrap()
                    .push(format!("trailers {:?}", t["grpc-status"]));
            }
        }
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("5"));
        let chunks = frames(vec![
            Ok(Frame::data(Bytes::from_static(b"abc"))),
            Ok(Frame::trailers(trailers)),
        ]);
        GuardedBody::new(chunks, Grpc(seen.clone()))
            .collect()
            .await
            .unwrap();
        assert_eq!(*seen.lock().unwrap(), ["trailers \"5\"", "end Completed"]);
    }

    #[tokio::test]
    async fn error_is_failed() {
        let (seen, g) = recorder();
        let chunks = frames(vec![
            Ok(Frame::data(Bytes::from_static(b"ab"))),
            Err(std::io::Error::other("boom")),
        ]);
        let b = GuardedBody::new(chunks, g);
        assert!(b.collect().await.is_err());
        assert_eq!(
            *seen.lock().unwrap(),
            [BodyEnd {
                outcome: BodyOutcome::Failed,
                bytes: 2
            }]
        );
    }

    /// A body that yields the given frames and never reports its end early.
    struct Frames(std::collections::VecDeque<Result<Frame<Bytes>, std::io::Error>>);

    fn frames(items: Vec<Result<Frame<Bytes>, std::io::Error>>) -> Frames {
        Frames(items.into())
    }

    impl Body for Frames {
        type Data = Bytes;
        type Error = std::io::Error;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            Poll::Ready(self.0.pop_front())
        }
    }
}
