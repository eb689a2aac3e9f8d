//! The plugin contract: what a built-in plugin gives the plugin stack, written once.
//!
//! A built-in plugin is a tower layer ([`Plugin`]) that builds from its config table and the
//! stack's [`PluginContext`], and whose response future ([`PluginFuture`]) can build its
//! response around the stack's wrapping of its body, so a nested response moves once.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Response;

use crate::{BodyEnd, ClientIpResolver, ConfigError, Hooks, PluginBody};

/// What the stack gives a plugin besides its own config table.
#[derive(Debug, Clone)]
pub struct PluginContext {
    client_ip: Arc<ClientIpResolver>,
    name: String,
    index: usize,
}

impl PluginContext {
    /// The context of the entry at `index` (outermost first) named `name`, sharing the
    /// stack's client-IP resolver.
    pub fn new(client_ip: Arc<ClientIpResolver>, name: impl Into<String>, index: usize) -> Self {
        PluginContext {
            client_ip,
            name: name.into(),
            index,
        }
    }

    /// The shared client-IP resolver built from the `[client_ip]` section.
    pub fn client_ip(&self) -> &Arc<ClientIpResolver> {
        &self.client_ip
    }

    /// The instance name of the entry being built.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The entry's position in the stack, outermost first.
    pub fn index(&self) -> usize {
        self.index
    }
}

/// A layer the plugin stack builds from a config table and composes without boxing.
///
/// The associated types name what the layer's tower types are over any inner service: the
/// stack keeps one enum of every built-in's service, future and body, so it must name them
/// for an inner type it chooses. `Service<S>` is `<Self as Layer<S>>::Service`; `Future<F>`
/// is that service's response future over the inner future `F`, and `Body<B>` its response
/// body over the inner body `B`.
pub trait Plugin: Clone + Send + Sync + Sized + 'static {
    /// The plugin's table in a stack file (every key except `use`, `name` and `enabled`).
    type Config;
    /// The service this layer wraps an inner `S` in.
    type Service<S>;
    /// The response future of [`Self::Service`] over the inner service's future `F`.
    type Future<F>;
    /// The response body of [`Self::Service`] over the inner service's body `B`.
    type Body<B>;
    /// The plugin as [`Hooks`], which the stack runs with its neighbours' in one level;
    /// [`NoHooks`](crate::NoHooks) for a plugin whose request path awaits.
    type Hooks: Hooks;

    /// Validates `config` into a layer.
    ///
    /// # Errors
    /// Every invalid value, keyed relative to the plugin's own table.
    fn from_config(config: Self::Config, ctx: &PluginContext) -> Result<Self, ConfigError>;

    /// A one-line summary of the effective settings, for the printed stack.
    fn describe(&self) -> String;

    /// This layer's hooks, when it has them as configured (a rate limiter over Redis awaits
    /// it and has none).
    fn hooks(&self) -> Option<Self::Hooks>;
}

/// A response future that builds its response around a wrapping of its body.
///
/// `poll_with(cx, wrap)` is `poll` with the body passed through `wrap` in the same move:
/// a layer that nests this future (the plugin stack wraps every body in its own enum) then
/// moves the response once instead of twice. `Future::poll` is `poll_with(cx, |body| body)`;
/// [`plugin_future!`](crate::plugin_future) writes that impl.
pub trait PluginFuture {
    /// The response body this future produces.
    type Body;
    /// The error of the inner service.
    type Error;

    /// Polls, building the response around `wrap(body)`.
    fn poll_with<T>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        wrap: impl FnOnce(Self::Body) -> T,
    ) -> Poll<Result<Response<T>, Self::Error>>;
}

/// A response future the plugin stack keeps until the response body ends.
///
/// In a stack of two or more entries the built-ins do not wrap the body: each level passes
/// the body of the level below through unchanged (or answers with its own, a [`Self::Body`]
/// built by [`AnswerBody::answer`]), keeps in itself what it has to do when the body ends,
/// and the stack keeps every level's future until then. The stack then counts the body once
/// and calls [`on_trailers`](Self::on_trailers) and [`on_body_end`](Self::on_body_end) of
/// every level, innermost first, instead of one body wrapper per level.
pub trait KeptFuture {
    /// The future of the service this plugin wraps.
    type Inner;
    /// The response body, passed through from [`Self::Inner`] or answered by the plugin.
    type Body;
    /// The error of the inner service.
    type Error;

    /// Polls, passing the inner response's body through unchanged.
    fn poll_kept(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Response<Self::Body>, Self::Error>>;

    /// The inner future, once the response is ready, when this plugin called the inner
    /// service (not when it answered by itself).
    fn inner_kept(self: Pin<&mut Self>) -> Option<Pin<&mut Self::Inner>>;

    /// The response's trailers went by. Nothing by default.
    #[inline]
    fn on_trailers(self: Pin<&mut Self>, trailers: &http::HeaderMap) {
        let _ = trailers;
    }

    /// The response's body ended (called once, after [`poll_kept`](Self::poll_kept) returned
    /// the response). Nothing by default.
    #[inline]
    fn on_body_end(self: Pin<&mut Self>, end: BodyEnd) {
        let _ = end;
    }
}

/// A response body a plugin can answer with by itself, as [`PluginBody::full`] builds one.
pub trait AnswerBody {
    /// A complete body of `data` (empty when `data` is).
    fn answer(data: Bytes) -> Self;
}

impl<B> AnswerBody for PluginBody<B> {
    #[inline]
    fn answer(data: Bytes) -> Self {
        PluginBody::full(data)
    }
}

/// Writes `Future` (through [`PluginFuture::poll_with`]) and an opaque `Debug` for a plugin's
/// response future `$name<F>`, as every built-in's future has them.
///
/// `plugin_future!($name, kept_by_flatten: $inner)` also writes [`KeptFuture`] for a future
/// whose body is [`PluginBody`] (a plugin that passes the inner body through or answers by
/// itself): `poll_kept` is `poll_with(cx, PluginBody::flatten)`, and `inner_kept` the
/// future's own `$inner(self: Pin<&mut Self>) -> Option<Pin<&mut F>>`.
///
/// ```
/// use std::pin::{Pin, pin};
/// use std::task::{Context, Poll, Waker, ready};
/// use http::Response;
/// use tower_plugins_core::{KeptFuture, PluginBody, PluginFuture};
///
/// pin_project_lite::pin_project! {
///     pub struct Passing<F> { #[pin] inner: F }
/// }
///
/// impl<F> Passing<F> {
///     fn called(self: Pin<&mut Self>) -> Option<Pin<&mut F>> {
///         Some(self.project().inner)
///     }
/// }
///
/// impl<F, B, E> PluginFuture for Passing<F>
/// where
///     F: Future<Output = Result<Response<B>, E>>,
/// {
///     type Body = PluginBody<B>;
///     type Error = E;
///     fn poll_with<T>(
///         self: Pin<&mut Self>,
///         cx: &mut Context<'_>,
///         wrap: impl FnOnce(PluginBody<B>) -> T,
///     ) -> Poll<Result<Response<T>, E>> {
///         let res = ready!(self.project().inner.poll(cx))?;
///         Poll::Ready(Ok(res.map(|b| wrap(PluginBody::inner(b)))))
///     }
/// }
///
/// tower_plugins_core::plugin_future!(Passing, kept_by_flatten: called);
///
/// // Kept by a stack, the inner body passes through as it is, not wrapped again.
/// let inner = std::future::ready(Ok::<_, ()>(Response::new(PluginBody::<()>::full("hi"))));
/// let mut fut = pin!(Passing { inner });
/// let mut cx = Context::from_waker(Waker::noop());
/// let Poll::Ready(Ok(res)) = fut.as_mut().poll_kept(&mut cx) else { panic!() };
/// assert!(matches!(res.body(), PluginBody::Full { data: Some(d) } if d == "hi"));
/// assert!(fut.inner_kept().is_some());
/// ```
///
/// ```
/// use std::pin::Pin;
/// use std::task::{Context, Poll, ready};
/// use http::Response;
/// use tower_plugins_core::PluginFuture;
///
/// pin_project_lite::pin_project! {
///     pub struct ResponseFuture<F> { #[pin] inner: F }
/// }
///
/// impl<F, B, E> PluginFuture for ResponseFuture<F>
/// where
///     F: Future<Output = Result<Response<B>, E>>,
/// {
///     type Body = B;
///     type Error = E;
///     fn poll_with<T>(
///         self: Pin<&mut Self>,
///         cx: &mut Context<'_>,
///         wrap: impl FnOnce(B) -> T,
///     ) -> Poll<Result<Response<T>, E>> {
///         Poll::Ready(Ok(ready!(self.project().inner.poll(cx))?.map(wrap)))
///     }
/// }
///
/// tower_plugins_core::plugin_future!(ResponseFuture);
///
/// let fut = ResponseFuture { inner: std::future::ready(Ok::<_, ()>(Response::new("hi"))) };
/// assert_eq!(format!("{fut:?}"), "ResponseFuture { .. }");
/// ```
#[macro_export]
macro_rules! plugin_future {
    ($name:ident) => {
        impl<F> ::std::future::Future for $name<F>
        where
            Self: $crate::PluginFuture,
        {
            type Output = ::std::result::Result<
                $crate::__private::Response<<Self as $crate::PluginFuture>::Body>,
                <Self as $crate::PluginFuture>::Error,
            >;

            #[inline]
            fn poll(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
            ) -> ::std::task::Poll<Self::Output> {
                $crate::PluginFuture::poll_with(self, cx, |body| body)
            }
        }

        impl<F> ::std::fmt::Debug for $name<F> {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }
    };
    ($name:ident, kept_by_flatten: $inner:ident) => {
        $crate::plugin_future!($name);

        impl<F, B, E> $crate::KeptFuture for $name<F>
        where
            F: ::std::future::Future<
                    Output = ::std::result::Result<$crate::__private::Response<B>, E>,
                >,
            Self: $crate::PluginFuture<Body = $crate::PluginBody<B>, Error = E>,
            B: $crate::AnswerBody,
        {
            type Inner = F;
            type Body = B;
            type Error = E;

            #[inline]
            fn poll_kept(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
            ) -> ::std::task::Poll<::std::result::Result<$crate::__private::Response<B>, E>> {
                $crate::PluginFuture::poll_with(self, cx, $crate::PluginBody::flatten)
            }

            #[inline]
            fn inner_kept(
                self: ::std::pin::Pin<&mut Self>,
            ) -> ::std::option::Option<::std::pin::Pin<&mut F>> {
                self.$inner()
            }
        }
    };
}
