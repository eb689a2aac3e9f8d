//! Route templates from configuration, in axum's syntax: `/api/items/{id}`, `/files/{*path}`.

use tower_plugins_core::{ConfigError, ProblemKind};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// Matches this text exactly.
    Literal(Box<str>),
    /// `{name}`: any one non-empty segment.
    Param,
    /// `{*name}`: everything that is left (the last segment only).
    Rest,
}

/// A route template: the label a request is counted under when its path matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    pub(crate) text: Box<str>,
    segments: Box<[Segment]>,
}

impl Template {
    /// Parses `text`.
    ///
    /// # Errors
    /// An [`InvalidValue`](ProblemKind::InvalidValue) with no key (the caller nests it).
    pub(crate) fn parse(text: &str) -> Result<Self, ConfigError> {
        let bad = |why: &str| {
            ConfigError::new(
                ProblemKind::InvalidValue,
                "",
                format!("invalid route template {text:?}: {why}"),
            )
            .with_hint("write a path such as \"/api/items/{id}\" or \"/files/{*path}\"")
        };
        let Some(rest) = text.strip_prefix('/') else {
            return Err(bad("it must start with '/'"));
        };
        if text.contains(['?', '#']) || text.chars().any(char::is_whitespace) {
            return Err(bad("a path has no query, fragment or spaces"));
        }
        let parts: Vec<&str> = rest.split('/').collect();
        let mut segments = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let seg = match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(inner) => match inner.strip_prefix('*') {
                    Some(name) => {
                        if i + 1 != parts.len() {
                            return Err(bad("a {*name} segment must be the last"));
                        }
                        check_name(name).map_err(&bad)?;
                        Segment::Rest
                    }
                    None => {
                        check_name(inner).map_err(&bad)?;
                        Segment::Param
                    }
                },
                None if part.contains(['{', '}']) => {
                    return Err(bad("a parameter must be a whole segment, such as {id}"));
                }
                None => Segment::Literal((*part).into()),
            };
            segments.push(seg);
        }
        Ok(Template {
            text: text.into(),
            segments: segments.into(),
        })
    }

    /// Whether `path` (without its query) matches.
    pub(crate) fn matches(&self, path: &str) -> bool {
        let Some(rest) = path.strip_prefix('/') else {
            return false;
        };
        let mut parts = rest.split('/');
        for seg in &*self.segments {
            match seg {
                Segment::Rest => return true,
                Segment::Param => match parts.next() {
                    Some(p) if !p.is_empty() => {}
                    _ => return false,
                },
                Segment::Literal(l) => match parts.next() {
                    Some(p) if p == &**l => {}
                    _ => return false,
                },
            }
        }
        parts.next().is_none()
    }
}

fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("a parameter needs a name, such as {id}");
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err("a parameter name has letters, digits and '_' only");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_like_axum_routes() {
        let t = Template::parse("/api/items/{id}").unwrap();
        assert!(t.matches("/api/items/42"));
        assert!(!t.matches("/api/items/"));
        assert!(!t.matches("/api/items"));
        assert!(!t.matches("/api/items/42/x"));
        assert!(!t.matches("/api/other/42"));
        let t = Template::parse("/files/{*path}").unwrap();
        assert!(t.matches("/files/a/b/c.txt"));
        assert!(t.matches("/files/"));
        assert!(!t.matches("/file"));
        let t = Template::parse("/").unwrap();
        assert!(t.matches("/"));
        assert!(!t.matches("/x"));
        let t = Template::parse("/a/{x}/b/{y}").unwrap();
        assert!(t.matches("/a/1/b/2"));
        assert!(!t.matches("/a/1/c/2"));
    }

    #[test]
    fn bad_templates_are_refused_with_a_reason() {
        for (bad, why) in [
            ("api/items", "start with '/'"),
            ("/a/{}", "needs a name"),
            ("/a/{*rest}/b", "must be the last"),
            ("/a/x{id}", "whole segment"),
            ("/a/{id", "whole segment"),
            ("/a?b=1", "query"),
            ("/a/{i-d}", "letters, digits"),
        ] {
            let e = Template::parse(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
