//! Where a login may send the browser next: a same-origin path, never another site.

/// The longest `next` followed.
const MAX_NEXT: usize = 2048;

/// `next` when it is a path on this site, checked before and after one percent-decoding:
/// exactly one leading `/` (so not `//evil` or `/%2F/evil`), no `\` (`/\evil` is `//evil` to
/// browsers), no control character (`\t//evil`), at most 2 KiB. `None` otherwise, and the
/// caller goes to `after_login` instead.
pub(crate) fn safe_next(raw: &str) -> Option<&str> {
    let decoded: std::borrow::Cow<'_, [u8]> = percent_encoding::percent_decode_str(raw).into();
    let clean = raw.bytes().all(|b| b.is_ascii_graphic());
    (raw.len() <= MAX_NEXT && clean && is_local_path(raw.as_bytes()) && is_local_path(&decoded))
        .then_some(raw)
}

fn is_local_path(p: &[u8]) -> bool {
    p.first() == Some(&b'/')
        && p.get(1).is_none_or(|b| *b != b'/')
        && !p.iter().any(|b| *b == b'\\' || b.is_ascii_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_same_origin_paths_are_followed() {
        for ok in ["/", "/ok?x=1", "/account/settings#top", "/a%20b"] {
            assert_eq!(safe_next(ok), Some(ok), "{ok}");
        }
        let long = format!("/{}", "a".repeat(MAX_NEXT));
        for bad in [
            "//evil",
            "/\\evil",
            "/%2F/evil",
            "/%2f/evil",
            "/%5Cevil",
            "https://evil",
            "javascript:alert(1)",
            "\t//evil",
            "/%09/evil",
            "/ok\r\nSet-Cookie: x=1",
            "/%0d%0aSet-Cookie:x",
            "",
            "evil",
            long.as_str(),
            "/\u{e9}",
        ] {
            assert_eq!(safe_next(bad), None, "{bad:?}");
        }
    }
}
