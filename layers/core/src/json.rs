//! JSON strings written by hand, for the plugins that write JSON without building a value.

use std::io::Write as _;

/// Appends `bytes` to `out` as a JSON string literal, quotes included. Invalid UTF-8 is
/// replaced with U+FFFD; quotes, backslashes and control characters are escaped, and so are
/// U+2028 and U+2029 (valid JSON, but line breaks to JavaScript and to some log viewers).
///
/// ```
/// let mut out = Vec::new();
/// tower_plugins_core::write_json_str(&mut out, b"say \"hi\"\n\x01");
/// assert_eq!(out, br#""say \"hi\"\n\u0001""#);
/// ```
pub fn write_json_str(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    for c in String::from_utf8_lossy(bytes).chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.extend_from_slice(c.encode_utf8(&mut [0u8; 4]).as_bytes()),
        }
    }
    out.push(b'"');
}

/// An `application/problem+json` answer (RFC 9457): `type` `about:blank`, `title` (the
/// status's reason), `status` and `detail`, then the members `more` appends (each written as
/// `,"name":value`). The refusals of every plugin are written by this one function.
///
/// ```
/// use http::StatusCode;
/// let res = tower_plugins_core::problem_json(StatusCode::FORBIDDEN, "no", |out| {
///     out.extend_from_slice(b",\"policy\":");
///     tower_plugins_core::write_json_str(out, b"admins");
/// });
/// assert_eq!(res.headers()["content-type"], "application/problem+json");
/// assert_eq!(
///     &res.body()[..],
///     br#"{"type":"about:blank","title":"Forbidden","status":403,"detail":"no","policy":"admins"}"#
/// );
/// ```
pub fn problem_json(
    status: http::StatusCode,
    detail: &str,
    more: impl FnOnce(&mut Vec<u8>),
) -> http::Response<bytes::Bytes> {
    let mut body = Vec::with_capacity(128 + detail.len());
    body.extend_from_slice(b"{\"type\":\"about:blank\",\"title\":");
    write_json_str(
        &mut body,
        status.canonical_reason().unwrap_or("").as_bytes(),
    );
    body.extend_from_slice(b",\"status\":");
    body.extend_from_slice(status.as_str().as_bytes());
    body.extend_from_slice(b",\"detail\":");
    write_json_str(&mut body, detail.as_bytes());
    more(&mut body);
    body.push(b'}');
    let mut res = http::Response::new(bytes::Bytes::from(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/problem+json"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_string_reads_back_as_itself() {
        for s in [
            "",
            "plain",
            "q\"b\\s",
            "ctl\u{0}\u{1f}\t\r\n",
            "ls\u{2028}ps\u{2029}",
            "ünï 😀",
        ] {
            let mut out = Vec::new();
            write_json_str(&mut out, s.as_bytes());
            let back: String = serde_json::from_slice(&out).unwrap();
            assert_eq!(back, s);
            assert!(!out.contains(&b'\n') && !String::from_utf8(out).unwrap().contains('\u{2028}'));
        }
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let mut out = Vec::new();
        write_json_str(&mut out, b"a\xffb");
        assert_eq!(String::from_utf8(out).unwrap(), "\"a\u{fffd}b\"");
    }
}
