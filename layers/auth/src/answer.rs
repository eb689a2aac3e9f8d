//! The plugin's own answers: problem+json refusals, redirects, and the login page.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};

/// `application/problem+json` (RFC 9457) with `title` and `detail`, never cached.
pub(crate) fn problem(status: StatusCode, detail: &str) -> Response<Bytes> {
    let mut res = tower_plugins_core::problem_json(status, detail, |_| {});
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// 401 with a challenge (RFC 9110 requires one) naming the login form.
pub(crate) fn unauthorized(login: &str) -> Response<Bytes> {
    let mut res = problem(StatusCode::UNAUTHORIZED, "log in first");
    let challenge = format!("Cookie realm=\"app\", form-action=\"{login}\"");
    if let Ok(v) = HeaderValue::try_from(challenge) {
        res.headers_mut().insert(WWW_AUTHENTICATE, v);
    }
    res
}

/// 503 with `Retry-After: 1`.
pub(crate) fn unavailable(detail: &str) -> Response<Bytes> {
    let mut res = problem(StatusCode::SERVICE_UNAVAILABLE, detail);
    res.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    res
}

/// 429 with `Retry-After` in whole seconds (rounded up).
pub(crate) fn too_many(wait: std::time::Duration) -> Response<Bytes> {
    let mut res = problem(
        StatusCode::TOO_MANY_REQUESTS,
        "too many failed logins; wait and try again",
    );
    res.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(wait.as_secs().max(1)));
    res
}

/// `303 See Other` to `location` (already checked to be a local path or a configured one).
pub(crate) fn see_other(location: &str) -> Response<Bytes> {
    let mut res = Response::new(Bytes::new());
    *res.status_mut() = StatusCode::SEE_OTHER;
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::try_from(location) {
        h.insert(LOCATION, v);
    }
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// `login?next=...` (the path percent-encoded), or `login?error=1&next=...`.
pub(crate) fn login_url(login: &str, next: Option<&str>, error: bool) -> String {
    let mut url = String::from(login);
    let mut q = form_urlencoded::Serializer::new(String::new());
    if error {
        q.append_pair("error", "1");
    }
    if let Some(n) = next {
        q.append_pair("next", n);
    }
    let q = q.finish();
    if !q.is_empty() {
        url.push('?');
        url.push_str(&q);
    }
    url
}

/// The built-in login page: a form posting to `login`, keeping `next`, saying so after a
/// failed attempt. Every value is escaped.
pub(crate) fn login_page(login: &str, next: Option<&str>, error: bool) -> Response<Bytes> {
    let mut html = String::with_capacity(1024);
    html.push_str(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>Log in</title>\
         <style>body{font:16px system-ui;max-width:20em;margin:4em auto}\
         label,input,button{display:block;width:100%;margin:.3em 0}</style></head><body>\
         <h1>Log in</h1>",
    );
    if error {
        html.push_str("<p role=\"alert\">Wrong user name or password.</p>");
    }
    html.push_str("<form method=\"post\" action=\"");
    escape_html(&mut html, login);
    html.push_str("\">");
    if let Some(n) = next {
        html.push_str("<input type=\"hidden\" name=\"next\" value=\"");
        escape_html(&mut html, n);
        html.push_str("\">");
    }
    html.push_str(
        "<label>User name<input name=\"username\" autocomplete=\"username\" required></label>\
         <label>Password<input name=\"password\" type=\"password\" \
         autocomplete=\"current-password\" required></label>\
         <button>Log in</button></form></body></html>",
    );
    let mut res = Response::new(Bytes::from(html));
    let h = res.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
        ),
    );
    res
}

fn escape_html(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// `405 Method Not Allowed` with `Allow`.
pub(crate) fn method_not_allowed(allow: &'static str) -> Response<Bytes> {
    let mut res = problem(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here");
    res.headers_mut()
        .insert(http::header::ALLOW, HeaderValue::from_static(allow));
    res
}
