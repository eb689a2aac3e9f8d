//! [`Next`]: the rest of the stack, as a custom plugin sees it.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower::ServiceExt;
use tower::util::BoxCloneSyncService;
use tower_service::Service;

use crate::Body;

/// The rest of the stack below a custom plugin, with its types erased: the service a custom
/// plugin's layer wraps, and what a [`from_fn`](crate::from_fn) function calls.
///
/// It is a tower service (`Clone + Send + Sync`, never failing); [`run`](Next::run) sends one
/// request through it.
pub struct Next {
    inner: BoxCloneSyncService<Request<Body>, Response<Body>, Infallible>,
    /// Whether `poll_ready` said ready since the last call (a clone is not ready).
    ready: bool,
}

impl Clone for Next {
    fn clone(&self) -> Self {
        Next {
            inner: self.inner.clone(),
            ready: false,
        }
    }
}

impl Next {
    /// Erases `service`.
    pub(crate) fn new<S>(service: S) -> Self
    where
        S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        Next {
            inner: BoxCloneSyncService::new(service),
            ready: false,
        }
    }

    /// Sends `req` through the rest of the stack (waiting until it is ready, unless it was
    /// polled ready already) and returns its response.
    pub async fn run(mut self, req: Request<Body>) -> Response<Body> {
        let res = if self.ready {
            self.call(req).await
        } else {
            self.inner.oneshot(req).await
        };
        match res {
            Ok(res) => res,
            Err(never) => match never {},
        }
    }
}

impl Service<Request<Body>> for Next {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        let poll = self.inner.poll_ready(cx);
        self.ready = poll.is_ready();
        poll
    }

    #[inline]
    fn call(&mut self, req: Request<Body>) -> Self::Future {
        self.ready = false;
        self.inner.call(req)
    }
}

impl fmt::Debug for Next {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Next").finish_non_exhaustive()
    }
}
