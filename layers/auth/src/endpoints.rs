//! The login and logout endpoints, and the session operations they and the handlers' requests
//! share (making a session, ending one).

use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use tower_plugins_core::{AuthUser, BoxError};

use crate::answer::{
    login_page, login_url, method_not_allowed, problem, see_other, too_many, unavailable,
};
use crate::keys::{Id, StoreKey};
use crate::layer::Shared;
use crate::next::safe_next;
use crate::store::{Record, StoreError, no_data};
use crate::users::{AuthError, User};

impl Shared {
    /// The session a request's cookie names, when a secret verifies it: its store key.
    pub(crate) fn cookie_key(&self, headers: &HeaderMap) -> Option<StoreKey> {
        let name = self.s.cookie.name();
        self.s
            .cookie
            .values(headers)
            .find_map(|v| self.keys.verify(name, v))
            .map(|v| v.store_key)
    }

    /// A new session for `user` with `data`, under a new id: its `Set-Cookie`.
    pub(crate) async fn create(
        &self,
        user: &Arc<User>,
        data: Arc<std::collections::BTreeMap<String, String>>,
    ) -> Result<HeaderValue, StoreError> {
        let now = self.s.clock.now();
        loop {
            let id = Id::random();
            let record = Record {
                user: user.clone(),
                created: now,
                last_seen: now,
                data: data.clone(),
            };
            // A taken key (2^-128 odds) draws another id.
            let key = self.keys.store_key(self.s.cookie.name(), &id);
            if self.store.create(&key, record, self.s.timeouts).await? {
                let name = self.s.cookie.name();
                return Ok(self.s.cookie.set(&self.keys.sign(name, &id)));
            }
        }
    }

    /// The value of a store call, or `None` with its failure counted (the store logs its
    /// own failures; custom stores' are logged here, at most once a second).
    pub(crate) fn logged<T>(&self, res: Result<T, StoreError>) -> Option<T> {
        res.map_err(|e| self.store_failed(&e)).ok()
    }
}

/// The `GET` login page, when it is the built-in one; `None` passes the request on.
pub(crate) fn login_get<B>(sh: &Shared, req: &Request<B>) -> Option<Response<Bytes>> {
    if !sh.s.endpoints.page {
        return None;
    }
    let mut next = None;
    let mut error = false;
    for (k, v) in form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        match &*k {
            "next" => next = safe_next(&v).map(str::to_owned),
            "error" => error = true,
            _ => {}
        }
    }
    Some(login_page(&sh.s.endpoints.login, next.as_deref(), error))
}

/// `POST logout`: the session's record is deleted and the cookie cleared; `GET` is 405 (a
/// link or an image must not log anyone out). The cookie is cleared even when the store
/// cannot be reached.
pub(crate) async fn logout<B>(sh: Arc<Shared>, req: Request<B>) -> Response<Bytes> {
    if req.method() != Method::POST {
        return method_not_allowed("POST");
    }
    if !sh.s.csrf.allows(&req, &sh.s.client_ip) {
        return problem(StatusCode::FORBIDDEN, "cross-site request refused");
    }
    if let Some(key) = sh.cookie_key(req.headers()) {
        sh.logged(sh.store.delete(&key).await);
    }
    let mut res = if wants_json(req.headers()) {
        let mut r = Response::new(Bytes::new());
        *r.status_mut() = StatusCode::NO_CONTENT;
        r
    } else {
        see_other(&sh.s.endpoints.after_logout)
    };
    res.headers_mut().insert(SET_COOKIE, sh.s.cookie.removal());
    res
}

fn wants_json(h: &HeaderMap) -> bool {
    let is_json = |v: &HeaderValue| {
        let v = v.as_bytes();
        v.windows(4).any(|w| w.eq_ignore_ascii_case(b"json"))
    };
    h.get(CONTENT_TYPE).is_some_and(is_json) || h.get(http::header::ACCEPT).is_some_and(is_json)
}

/// The credentials of a login post, and the `next` it asks for.
struct Credentials {
    username: String,
    password: String,
    next: Option<String>,
}

/// Why a login post's body was refused.
enum BadBody {
    TooLarge,
    Malformed(&'static str),
    Unsupported,
}

/// `POST login`: checks the credentials and, when they are right, ends any session the
/// request had and makes a new one (a new id at every login, a user switch included).
pub(crate) async fn login_post<B>(sh: Arc<Shared>, req: Request<B>) -> Response<Bytes>
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    if req.method() != Method::POST {
        return method_not_allowed("GET, POST");
    }
    if !sh.s.csrf.allows(&req, &sh.s.client_ip) {
        return problem(StatusCode::FORBIDDEN, "cross-site request refused");
    }
    let json = wants_json(req.headers());
    let old = sh.cookie_key(req.headers());
    let ip = sh.s.client_ip.resolve_cached(&req);
    let query_next = req.uri().query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find_map(|(k, v)| (k == "next").then(|| v.into_owned()))
    });
    let creds = match credentials(&sh, req).await {
        Ok(c) => c,
        Err(BadBody::TooLarge) => {
            return problem(StatusCode::PAYLOAD_TOO_LARGE, "the login body is too large");
        }
        Err(BadBody::Unsupported) => {
            return problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "send a form or JSON");
        }
        Err(BadBody::Malformed(why)) => return problem(StatusCode::BAD_REQUEST, why),
    };
    let next = creds.next.or(query_next);
    let next = next.as_deref().and_then(safe_next);
    let charged = match sh.throttle.charge(&sh.keys, &creds.username, ip) {
        Ok(c) => c,
        Err(wait) => return too_many(wait),
    };
    let user = sh
        .users
        .authenticate(&creds.username, &creds.password, &sh.verifier)
        .await;
    if matches!(user, Ok(Some(_)) | Err(_)) {
        // A success, or an attempt that was never judged, does not count.
        sh.throttle.refund(charged);
    }
    match user {
        Ok(Some(user)) => match logged_in(&sh, &user, old, json, next).await {
            Some(res) => res,
            None => unavailable("the session store is unavailable; try again"),
        },
        Ok(None) if json => problem(StatusCode::UNAUTHORIZED, "invalid credentials"),
        Ok(None) => see_other(&login_url(&sh.s.endpoints.login, next, true)),
        Err(AuthError::Busy) => unavailable("too many logins at once; try again"),
        Err(AuthError::Backend(e)) => {
            tracing::warn!(error = %e, "auth: the user provider failed");
            unavailable("the user provider is unavailable")
        }
    }
}

/// The answer to a login: a new session (the request's ended); `None` when the store failed.
async fn logged_in(
    sh: &Shared,
    user: &Arc<User>,
    old: Option<StoreKey>,
    json: bool,
    next: Option<&str>,
) -> Option<Response<Bytes>> {
    if let Some(key) = old {
        sh.logged(sh.store.delete(&key).await)?;
    }
    let cookie = sh.logged(sh.create(user, no_data()).await)?;
    let mut res = if json {
        let mut body = b"{\"user\":".to_vec();
        tower_plugins_core::write_json_str(&mut body, user.id.as_bytes());
        body.extend_from_slice(b",\"roles\":[");
        for (i, r) in user.roles.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            tower_plugins_core::write_json_str(&mut body, r.as_bytes());
        }
        body.extend_from_slice(b"]}");
        let mut r = Response::new(Bytes::from(body));
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        r.headers_mut().insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        );
        r
    } else {
        see_other(next.unwrap_or(&sh.s.endpoints.after_login))
    };
    res.headers_mut().insert(SET_COOKIE, cookie);
    res.extensions_mut().insert(AuthUser(user.id.clone()));
    Some(res)
}

/// Reads and parses a login body: a form or JSON, at most `max_body` bytes, credentials
/// never in the query string (they would be written to access logs).
async fn credentials<B>(sh: &Shared, req: Request<B>) -> Result<Credentials, BadBody>
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let max = sh.s.endpoints.max_body;
    if let Some(q) = req.uri().query() {
        if form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "username" || k == "password") {
            return Err(BadBody::Malformed(
                "credentials do not belong in the query string",
            ));
        }
    }
    let h = req.headers();
    let ct = h
        .get(CONTENT_TYPE)
        .map(HeaderValue::as_bytes)
        .unwrap_or_default();
    let form = ct.starts_with(b"application/x-www-form-urlencoded");
    let json = !form && wants_json(h);
    if !form && !json {
        return Err(BadBody::Unsupported);
    }
    let declared = h
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(BadBody::TooLarge);
    }
    let body = http_body_util::Limited::new(req.into_body(), max);
    let bytes = match body.collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(BadBody::TooLarge),
        Err(_) => return Err(BadBody::Malformed("the body could not be read")),
    };
    let creds = if form {
        from_form(&bytes)
    } else {
        from_json(&bytes)
    }?;
    if creds.username.is_empty()
        || creds.username.len() > crate::MAX_USERNAME
        || creds.password.len() > crate::MAX_PASSWORD
    {
        return Err(BadBody::Malformed(
            "a user name is 1 to 256 bytes and a password at most 1 KiB",
        ));
    }
    Ok(creds)
}

fn from_form(body: &[u8]) -> Result<Credentials, BadBody> {
    let (mut username, mut password, mut next) = (None, None, None);
    for (k, v) in form_urlencoded::parse(body) {
        match &*k {
            "username" => username = Some(v.into_owned()),
            "password" => password = Some(v.into_owned()),
            "next" => next = Some(v.into_owned()),
            _ => {}
        }
    }
    match (username, password) {
        (Some(username), Some(password)) => Ok(Credentials {
            username,
            password,
            next,
        }),
        _ => Err(BadBody::Malformed(
            "the form needs `username` and `password`",
        )),
    }
}

fn from_json(body: &[u8]) -> Result<Credentials, BadBody> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| BadBody::Malformed("the body is not JSON"))?;
    let field = |k: &str| {
        v.get(k)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    match (field("username"), field("password")) {
        (Some(username), Some(password)) => Ok(Credentials {
            username,
            password,
            next: field("next"),
        }),
        _ => Err(BadBody::Malformed(
            "the JSON needs string `username` and `password`",
        )),
    }
}
