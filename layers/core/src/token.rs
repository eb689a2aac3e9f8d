//! HTTP tokens and quoted strings (RFC 9110 §5.6.2 and §5.6.4, RFC 8941 §3.3.3), for the
//! header values plugins write and the names they accept.

use std::fmt::{self, Write};

/// What a token may hold, for configuration hints.
pub const TOKEN_CHARS: &str = "letters, digits and !#$%&'*+-.^_`|~";

/// Whether `b` may appear in an HTTP token (RFC 9110 `tchar`).
///
/// ```
/// use tower_plugins_core::is_tchar;
/// assert!(b"x-request-id".iter().all(|b| is_tchar(*b)));
/// assert!(!is_tchar(b' ') && !is_tchar(b'"'));
/// ```
#[inline]
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Writes `s` as a quoted string that is both an HTTP `quoted-string` and an RFC 8941
/// `sf-string`: printable ASCII, with `"` and `\` escaped; any other character is written as
/// `?`, so the value stays a valid header value whatever `s` holds.
///
/// ```
/// let mut out = String::new();
/// tower_plugins_core::write_quoted(&mut out, "say \"hi\"\u{7}é").unwrap();
/// assert_eq!(out, r#""say \"hi\"??""#);
/// ```
///
/// # Errors
/// Only those of `out`.
pub fn write_quoted(out: &mut impl Write, s: &str) -> fmt::Result {
    out.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.write_char('\\')?;
                out.write_char(c)?;
            }
            ' '..='~' => out.write_char(c)?,
            _ => out.write_char('?')?,
        }
    }
    out.write_char('"')
}
