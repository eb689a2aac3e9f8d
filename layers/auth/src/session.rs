//! What handlers see of the session: [`CurrentUser`], the [`Session`] handle, and the
//! [`Login`] response extension for logins decided by the application (SSO callbacks).

use std::sync::{Arc, Mutex, PoisonError};

use crate::keys::StoreKey;
use crate::store::{Change, Record};
use crate::users::User;

/// The logged-in user of a request, in its extensions (absent for anonymous requests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentUser {
    /// The user's id.
    pub id: Arc<str>,
    /// The user's roles at login.
    pub roles: Arc<[Arc<str>]>,
    /// When the session began (login), in seconds since the Unix epoch.
    pub created: u64,
    /// When it was last seen before this request.
    pub last_seen: u64,
}

impl CurrentUser {
    pub(crate) fn of(r: &Record) -> Self {
        CurrentUser {
            id: r.user.id.clone(),
            roles: r.user.roles.clone(),
            created: r.created,
            last_seen: r.last_seen,
        }
    }

    /// Whether the user has `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| &**r == role)
    }
}

/// Put in a response's extensions, logs `User` in (a new session and cookie), whatever the
/// request carried: for logins the application decides itself, such as an OAuth callback.
/// The session id is new, as at every login.
#[derive(Debug, Clone)]
pub struct Login(pub Arc<User>);

/// What a handler asked of the session, applied once its response is ready.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    pub(crate) changes: Vec<Change>,
    pub(crate) logout: bool,
    pub(crate) rotate: bool,
}

impl Pending {
    /// Whether nothing was asked.
    pub(crate) fn is_empty(&self) -> bool {
        self.changes.is_empty() && !self.logout && !self.rotate
    }
}

/// The session of a logged-in request, in its extensions: its data, and what the handler
/// asks of it (applied after the response: data only when it is not a 5xx, as
/// tower-sessions does; a logout or a new id whatever the status).
#[derive(Debug, Clone)]
pub struct Session(pub(crate) Arc<SessionState>);

#[derive(Debug)]
pub(crate) struct SessionState {
    pub(crate) key: StoreKey,
    pub(crate) record: Record,
    pub(crate) pending: Mutex<Pending>,
}

impl Session {
    /// The session of the record under `key`: one allocation, which also carries what the
    /// response needs once it is ready.
    pub(crate) fn new(key: StoreKey, record: Record) -> Self {
        Session(Arc::new(SessionState {
            key,
            record,
            pending: Mutex::new(Pending::default()),
        }))
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.0
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The value of `key`: as the request found it, with this request's own writes applied.
    pub fn get(&self, key: &str) -> Option<String> {
        let p = self.pending();
        for c in p.changes.iter().rev() {
            match c {
                Change::Insert(k, v) if k == key => return Some(v.clone()),
                Change::Remove(k) if k == key => return None,
                _ => {}
            }
        }
        self.0.record.data.get(key).cloned()
    }

    /// Sets `key` (only this field is written: another request writing another field at the
    /// same time keeps its own).
    pub fn insert(&self, key: impl Into<String>, value: impl Into<String>) {
        self.pending()
            .changes
            .push(Change::Insert(key.into(), value.into()));
    }

    /// Removes `key`.
    pub fn remove(&self, key: impl Into<String>) {
        self.pending().changes.push(Change::Remove(key.into()));
    }

    /// Ends the session: its record is deleted and the cookie cleared.
    pub fn logout(&self) {
        self.pending().logout = true;
    }

    /// Gives the session a new id (after a privilege change), keeping its data.
    pub fn rotate(&self) {
        self.pending().rotate = true;
    }

    pub(crate) fn take(&self) -> Pending {
        std::mem::take(&mut *self.pending())
    }
}

#[cfg(feature = "axum")]
mod extract {
    use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
    use axum_core::response::{IntoResponse, Response};
    use http::StatusCode;
    use http::request::Parts;

    use super::{CurrentUser, Session};

    /// The rejection of the [`CurrentUser`] extractor on an anonymous request, or without
    /// the auth plugin.
    #[derive(Debug)]
    pub struct NoUser(&'static str);

    impl IntoResponse for NoUser {
        fn into_response(self) -> Response {
            (StatusCode::UNAUTHORIZED, self.0).into_response()
        }
    }

    const HINT: &str = "no logged-in user: this route needs a login (or the auth plugin is \
        missing or inside the router's routes: put it around them)";

    impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
        type Rejection = NoUser;

        async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, NoUser> {
            parts
                .extensions
                .get::<CurrentUser>()
                .cloned()
                .ok_or(NoUser(HINT))
        }
    }

    impl<S: Send + Sync> OptionalFromRequestParts<S> for CurrentUser {
        type Rejection = std::convert::Infallible;

        async fn from_request_parts(
            parts: &mut Parts,
            _: &S,
        ) -> Result<Option<Self>, Self::Rejection> {
            Ok(parts.extensions.get::<CurrentUser>().cloned())
        }
    }

    impl<S: Send + Sync> FromRequestParts<S> for Session {
        type Rejection = NoUser;

        async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, NoUser> {
            parts
                .extensions
                .get::<Session>()
                .cloned()
                .ok_or(NoUser(HINT))
        }
    }
}

#[cfg(feature = "axum")]
pub use extract::NoUser;
