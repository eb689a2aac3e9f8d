//! [`Hooks`]: a plugin as request and response hooks, which the plugin stack runs for a run of
//! entries in one level, calling the service inside once.

use std::convert::Infallible;

use bytes::Bytes;
use http::{HeaderMap, Request, Response};

use crate::BodyEnd;

/// What a plugin does before the service it wraps: go on to it, keeping a state until the
/// response body ends, or answer by itself.
#[derive(Debug)]
pub enum Before<S> {
    /// Call the service inside; the state comes back to the later hooks.
    Continue(S),
    /// Answer with this response; the entries inside this one and the service do not run,
    /// and this plugin's own later hooks are not called for it.
    Answer(Response<Bytes>),
}

/// A plugin whose work happens at four points of a request, each synchronous: the request
/// (before the service inside), the response head, the trailers and the body's end.
///
/// A plugin whose request path awaits (a Redis store, a request body read) has no hooks and
/// stays a tower layer. The plugin stack runs a run of two or more entries with hooks in one
/// level: it calls every entry's [`on_request`](Self::on_request) in order, the service inside
/// once, every [`on_response`](Self::on_response) in the reverse order, and at the body's end
/// every [`on_trailers`](Self::on_trailers) and [`on_body_end`](Self::on_body_end), innermost
/// first: what each entry would see as a layer, without a call, a future and a body per entry.
/// A plugin's own tower service is written over the same hooks, so both ways do the same work.
///
/// A state dropped before its response (the request was cancelled) is dropped without a later
/// hook: a state that must report that does so in its `Drop`.
///
/// ```
/// use bytes::Bytes;
/// use http::{Request, Response, StatusCode};
/// use tower_plugins_core::{Before, Hooks};
///
/// /// Answers requests without `x-key` itself; tags every other response.
/// #[derive(Clone)]
/// struct NeedsKey;
///
/// impl Hooks for NeedsKey {
///     type State = ();
///     fn on_request<B>(&self, req: &mut Request<B>) -> Before<()> {
///         match req.headers().contains_key("x-key") {
///             true => Before::Continue(()),
///             false => {
///                 let mut res = Response::new(Bytes::from_static(b"no key"));
///                 *res.status_mut() = StatusCode::UNAUTHORIZED;
///                 Before::Answer(res)
///             }
///         }
///     }
///     fn on_response<B>(&self, (): &mut (), res: &mut Response<B>) {
///         res.headers_mut().insert("x-checked", "1".parse().unwrap());
///     }
/// }
///
/// let mut req = Request::new(());
/// assert!(matches!(NeedsKey.on_request(&mut req), Before::Answer(r) if r.status() == 401));
/// req.headers_mut().insert("x-key", "k".parse().unwrap());
/// let Before::Continue(mut state) = NeedsKey.on_request(&mut req) else { panic!() };
/// let mut res = Response::new(());
/// NeedsKey.on_response(&mut state, &mut res);
/// assert_eq!(res.headers()["x-checked"], "1");
/// ```
pub trait Hooks: Clone + Send + Sync + 'static {
    /// What the plugin keeps from its request hook to the body's end.
    type State: Send + 'static;

    /// Before the service inside: continue with a state, or answer.
    fn on_request<B>(&self, req: &mut Request<B>) -> Before<Self::State>;

    /// The response head, from the service inside or an inner entry's answer.
    fn on_response<B>(&self, state: &mut Self::State, res: &mut Response<B>);

    /// The response's trailers went by (where a gRPC call's `grpc-status` is). Nothing by
    /// default.
    #[inline]
    fn on_trailers(&self, state: &mut Self::State, trailers: &HeaderMap) {
        let _ = (state, trailers);
    }

    /// The response body ended: completed, failed or dropped. Nothing by default.
    #[inline]
    fn on_body_end(&self, state: Self::State, end: BodyEnd) {
        let _ = (state, end);
    }
}

/// The hooks of a plugin that has none (its request path awaits): a type with no value.
#[derive(Debug, Clone, Copy)]
pub enum NoHooks {}

impl Hooks for NoHooks {
    type State = Infallible;

    fn on_request<B>(&self, _: &mut Request<B>) -> Before<Infallible> {
        match *self {}
    }

    fn on_response<B>(&self, state: &mut Infallible, _: &mut Response<B>) {
        match *state {}
    }
}
