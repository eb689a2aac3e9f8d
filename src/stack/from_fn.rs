//! [`from_fn`]: a custom plugin written as an async function of the request and the rest of
//! the stack, as axum's `middleware::from_fn`.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum_core::response::{IntoResponse, Response};
use http::Request;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::next::Next;
use crate::Body;

/// A custom plugin from an async function: `f(request, next)` answers the request, usually by
/// calling [`next.run(request)`](Next::run) and changing what goes in or comes out.
///
/// The answer is anything axum can turn into a response (`Response<Body>`, a status code,
/// `(StatusCode, &str)`, ...). The layer is what a plugin factory returns to
/// [`register`](crate::PluginStackBuilder::register); with a typed config and no validation
/// of its own, [`register_fn`](crate::PluginStackBuilder::register_fn) is shorter.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use http::{HeaderValue, Request, Response};
/// use tower::{Layer, ServiceExt, service_fn};
/// use tower_plugins::{Body, Next, PluginStack, from_fn};
///
/// #[derive(serde::Deserialize)]
/// struct NoConfig {}
///
/// let stack = PluginStack::builder()
///     .register("powered_by", |_: NoConfig, _ctx| {
///         Ok(from_fn(|req: Request<Body>, next: Next| async move {
///             let mut res = next.run(req).await;
///             res.headers_mut().insert("x-powered-by", HeaderValue::from_static("tower"));
///             res
///         }))
///     })
///     .toml_str("[[plugin]]\nuse = \"powered_by\"")
///     .build()
///     .unwrap();
/// let app = service_fn(|_req: Request<Body>| async {
///     Ok::<_, std::convert::Infallible>(Response::new(Body::from("hello")))
/// });
/// let res = stack.layer().layer(app).oneshot(Request::new(Body::empty())).await.unwrap();
/// assert_eq!(res.headers()["x-powered-by"], "tower");
/// # }
/// ```
pub fn from_fn<F, Fut>(f: F) -> FromFnLayer<F>
where
    F: Fn(Request<Body>, Next) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: IntoResponse,
{
    FromFnLayer { f }
}

/// The layer [`from_fn`] returns.
#[derive(Clone)]
#[must_use]
pub struct FromFnLayer<F> {
    f: F,
}

impl<F> fmt::Debug for FromFnLayer<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FromFnLayer").finish_non_exhaustive()
    }
}

impl<F: Clone> Layer<Next> for FromFnLayer<F> {
    type Service = FromFn<F>;

    fn layer(&self, next: Next) -> FromFn<F> {
        FromFn {
            f: self.f.clone(),
            next,
        }
    }
}

/// The service of a [`from_fn`] plugin.
#[derive(Clone)]
pub struct FromFn<F> {
    f: F,
    next: Next,
}

impl<F> fmt::Debug for FromFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FromFn").finish_non_exhaustive()
    }
}

impl<F, Fut> Service<Request<Body>> for FromFn<F>
where
    F: Fn(Request<Body>, Next) -> Fut,
    Fut: Future,
    Fut::Output: IntoResponse,
{
    type Response = Response;
    type Error = Infallible;
    type Future = FromFnFuture<Fut>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.next.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        // The function gets the service that was polled ready, as tower's contract wants.
        let clone = self.next.clone();
        let ready = std::mem::replace(&mut self.next, clone);
        FromFnFuture {
            fut: (self.f)(req, ready),
        }
    }
}

pin_project! {
    /// The response future of a [`from_fn`] plugin.
    pub struct FromFnFuture<Fut> {
        #[pin]
        fut: Fut,
    }
}

impl<Fut> fmt::Debug for FromFnFuture<Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FromFnFuture").finish_non_exhaustive()
    }
}

impl<Fut> Future for FromFnFuture<Fut>
where
    Fut: Future,
    Fut::Output: IntoResponse,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(Ok(ready!(self.project().fut.poll(cx)).into_response()))
    }
}
