//! [`RequestStart`]: one clock reading per request, shared by every plugin.

use std::time::Instant;

use http::Request;

/// The instant a request entered the outermost plugin that measures time.
///
/// The first plugin that needs a start time (the timer, stats, the request log) calls
/// [`RequestStart::get_or_insert`]: it reuses the instant an outer plugin stored, or reads the
/// clock once and stores it, so every plugin measures from the same moment.
///
/// ```
/// use http::Request;
/// use tower_plugins_core::RequestStart;
///
/// let mut req = Request::new(());
/// let first = RequestStart::get_or_insert(&mut req);
/// let again = RequestStart::get_or_insert(&mut req);
/// assert_eq!(first, again);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestStart(pub Instant);

impl RequestStart {
    /// The stored start instant, or now (stored for the plugins further in).
    #[inline]
    pub fn get_or_insert<B>(req: &mut Request<B>) -> Instant {
        if let Some(s) = req.extensions().get::<RequestStart>() {
            return s.0;
        }
        let now = Instant::now();
        req.extensions_mut().insert(RequestStart(now));
        now
    }

    /// The stored start instant, if an outer plugin stored one.
    #[inline]
    pub fn get<B>(req: &Request<B>) -> Option<Instant> {
        req.extensions().get::<RequestStart>().map(|s| s.0)
    }
}

/// The authenticated user of a request, for plugins that log or limit by user.
///
/// The auth plugin inserts it into the request extensions (for plugins further in) and the
/// response extensions (for plugins further out, such as the request log).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AuthUser(pub std::sync::Arc<str>);
