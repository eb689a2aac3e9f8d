//! The built-in plugins: the one table the stack's per-plugin code is generated from.
//!
//! Adding a built-in is one line here plus its Cargo feature: its layer implements
//! [`Plugin`](tower_plugins_core::Plugin) (config, describe, service, future and body types)
//! and its future [`PluginFuture`](tower_plugins_core::PluginFuture). The stack's enums and
//! every match over them (`registry.rs`: the entry's layer and its registration; `slot.rs`:
//! the slot's service, future and body) are written once, over the table, by the macro each
//! of those files passes to [`built_ins!`].

use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Response;
use http_body::Frame;
use tower_layer::Layer;
use tower_plugins_core::{ConfigError, KeptFuture, Plugin, PluginContext, PluginFuture};
use tower_service::Service;

/// Calls the macro `$then` with the table of built-in plugins, one line each: the variant
/// of the stack's enums, the TOML name (`use = "..."`), the Cargo feature and the layer. Code
/// names a plugin's types through its module (`timer::Layer`, `timer::Future<F>`), which is
/// [`Off`] when the feature is not compiled in.
macro_rules! built_ins {
    ($then:ident) => {
        $then! {
            Timer: timer, "timer", tower_plugins_timer::TimerLayer;
            Cors: cors, "cors", tower_plugins_cors::CorsLayer;
            RequestLog: request_log, "request-log", tower_plugins_request_log::RequestLogLayer;
            RateLimit: rate_limit, "rate-limit", tower_plugins_rate_limit::RateLimitLayer;
            Stats: stats, "stats", tower_plugins_stats::StatsLayer;
            Auth: auth, "auth", tower_plugins_auth::AuthLayer;
        }
    };
}
pub(crate) use built_ins;

/// A module per built-in naming its tower types, or [`Off`] when its feature is not compiled
/// in (so that the stack's enums keep the variant, which pin-project-lite cannot `cfg` away,
/// with a type that has no value).
macro_rules! plugin_types {
    ($($variant:ident: $name:ident, $feature:literal, $layer:ty;)*) => {$(
        #[doc = concat!("The `", stringify!($name), "` plugin's types.")]
        pub(crate) mod $name {
            use tower_plugins_core::Plugin;

            #[cfg(feature = $feature)]
            pub(crate) type Layer = $layer;
            #[cfg(not(feature = $feature))]
            pub(crate) type Layer = super::Off;
            pub(crate) type Service<S> = <Layer as Plugin>::Service<S>;
            pub(crate) type Future<F> = <Layer as Plugin>::Future<F>;
            pub(crate) type Body<B> = <Layer as Plugin>::Body<B>;
            pub(crate) type Hooks = <Layer as Plugin>::Hooks;
        }
    )*};
}

built_ins!(plugin_types);

/// The built-in names, whether or not their feature is compiled in, with the feature.
macro_rules! names {
    ($($variant:ident: $name:ident, $feature:literal, $layer:ty;)*) => {
        pub(crate) const BUILT_IN: &[(&str, &str)] = &[$((stringify!($name), $feature)),*];
    };
}
built_ins!(names);

/// The layer, service, future and body of a plugin whose feature is off: a type with no
/// value, never built (the registry does not register the plugin).
#[allow(dead_code)] // named only when a plugin feature is off
pub(crate) struct Off<T = ()>(Infallible, PhantomData<fn() -> T>);

impl<T> Clone for Off<T> {
    fn clone(&self) -> Self {
        match self.0 {}
    }
}

impl Plugin for Off {
    type Config = ();
    type Service<S> = Off<S>;
    type Future<F> = Off<F>;
    type Body<B> = Off<B>;
    type Hooks = tower_plugins_core::NoHooks;

    fn from_config((): (), _: &PluginContext) -> Result<Self, ConfigError> {
        Err(ConfigError::new(
            tower_plugins_core::ProblemKind::UnknownPlugin,
            "use",
            "plugin is not compiled in",
        ))
    }

    fn describe(&self) -> String {
        match self.0 {}
    }

    fn hooks(&self) -> Option<tower_plugins_core::NoHooks> {
        match self.0 {}
    }
}

#[cfg(test)]
impl Default for Off {
    fn default() -> Self {
        unreachable!("no layer exists for a plugin whose feature is off")
    }
}

impl<S> Layer<S> for Off {
    type Service = Off<S>;
    fn layer(&self, _: S) -> Off<S> {
        match self.0 {}
    }
}

#[allow(dead_code)]
impl<N> Off<N> {
    /// The inner service, as every plugin service's `get_mut`.
    pub(crate) fn get_mut(&mut self) -> &mut N {
        match self.0 {}
    }
}

impl<N, B, R> Service<R> for Off<N>
where
    N: Service<R, Response = Response<B>>,
{
    type Response = Response<Off<B>>;
    type Error = N::Error;
    type Future = Off<N::Future>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), N::Error>> {
        match self.0 {}
    }

    fn call(&mut self, _: R) -> Self::Future {
        match self.0 {}
    }
}

impl<F, B, E> PluginFuture for Off<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Body = Off<B>;
    type Error = E;

    fn poll_with<T>(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: impl FnOnce(Off<B>) -> T,
    ) -> Poll<Result<Response<T>, E>> {
        match self.0 {}
    }
}

impl<F, B, E> KeptFuture for Off<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Inner = F;
    type Body = B;
    type Error = E;

    fn poll_kept(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<Response<B>, E>> {
        match self.0 {}
    }

    fn inner_kept(self: Pin<&mut Self>) -> Option<Pin<&mut F>> {
        match self.0 {}
    }
}

tower_plugins_core::plugin_future!(Off);

impl<B> http_body::Body for Off<B> {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.0 {}
    }
}
