//! [`PluginBody`]: the response body of a layer that sometimes answers by itself.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::AnswerBody;

pin_project! {
    /// Either the inner service's body, or a complete body a plugin wrote itself (a 429, a 401,
    /// a preflight answer).
    ///
    /// `size_hint` and `is_end_stream` are forwarded exactly, so a response with a known length
    /// keeps its `Content-Length` instead of turning into a chunked one.
    ///
    /// ```
    /// use http_body::Body as _;
    /// use tower_plugins_core::PluginBody;
    ///
    /// let body: PluginBody<http_body_util::Empty<bytes::Bytes>> = PluginBody::full("slow down");
    /// assert_eq!(body.size_hint().exact(), Some(9));
    /// ```
    #[project = PluginBodyProj]
    #[derive(Debug)]
    #[allow(missing_docs)] // variant fields: `body` is the inner body, `data` what is left to send
    pub enum PluginBody<B> {
        /// The inner service's body, untouched.
        Inner { #[pin] body: B },
        /// A complete body; `None` once it has been sent.
        Full { data: Option<Bytes> },
    }
}

impl<B> PluginBody<B> {
    /// Wraps the inner service's body.
    pub fn inner(body: B) -> Self {
        PluginBody::Inner { body }
    }

    /// A complete body.
    pub fn full(data: impl Into<Bytes>) -> Self {
        let data: Bytes = data.into();
        PluginBody::Full {
            data: (!data.is_empty()).then_some(data),
        }
    }

    /// An empty body.
    pub fn empty() -> Self {
        PluginBody::Full { data: None }
    }
}

impl<B: AnswerBody> PluginBody<B> {
    /// The body itself: the inner one, or the answer built as `B` (where the plugin stack
    /// passes one body type through every level).
    #[inline]
    pub fn flatten(self) -> B {
        match self {
            PluginBody::Inner { body } => body,
            PluginBody::Full { data } => B::answer(data.unwrap_or_default()),
        }
    }
}

impl<B: Default> Default for PluginBody<B> {
    fn default() -> Self {
        PluginBody::empty()
    }
}

impl<B> Body for PluginBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    #[inline]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.project() {
            PluginBodyProj::Inner { body } => body.poll_frame(cx),
            PluginBodyProj::Full { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
        }
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        match self {
            PluginBody::Inner { body } => body.is_end_stream(),
            PluginBody::Full { data } => data.is_none(),
        }
    }

    #[inline]
    fn size_hint(&self) -> SizeHint {
        match self {
            PluginBody::Inner { body } => body.size_hint(),
            PluginBody::Full { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full};

    #[tokio::test]
    async fn full_and_inner_forward_hints_and_data() {
        let b: PluginBody<Full<Bytes>> = PluginBody::full("hello");
        assert_eq!(b.size_hint().exact(), Some(5));
        assert!(!b.is_end_stream());
        assert_eq!(b.collect().await.unwrap().to_bytes(), "hello");

        let b: PluginBody<Full<Bytes>> = PluginBody::empty();
        assert!(b.is_end_stream());
        assert_eq!(b.size_hint().exact(), Some(0));

        let b = PluginBody::inner(Full::new(Bytes::from_static(b"inner!")));
        assert_eq!(b.size_hint().exact(), Some(6));
        assert_eq!(b.collect().await.unwrap().to_bytes(), "inner!");
    }
}
