//! Path patterns (`/admin/**`, `/api/*/items`, `/health`), compiled once at load.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use crate::error::{ConfigError, ProblemKind};

const HINT: &str = "patterns start with `/`; `*` matches one segment, `**` any number of \
                    segments (zero included), and each must be a whole segment: \
                    \"/admin/**\", \"/api/*/items\", \"/health\"";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Segment {
    Literal(Box<str>),
    /// `*`: exactly one non-empty segment.
    One,
    /// `**`: zero or more segments.
    Any,
}

/// A compiled path pattern.
///
/// - an exact path: `/health` matches `/health` only (a trailing slash is significant);
/// - `*` matches exactly one non-empty segment: `/api/*/items` matches `/api/v1/items`;
/// - `**` matches any number of segments, zero included: `/admin/**` matches `/admin`,
///   `/admin/` and `/admin/users/7`; `/**/edit` matches `/edit` and `/a/b/edit`.
///
/// Matching works on the path only (no query string) and never allocates.
///
/// ```
/// use tower_plugins_core::PathPattern;
/// let p: PathPattern = "/admin/**".parse().unwrap();
/// assert!(p.matches("/admin/users/7"));
/// assert!(p.matches("/admin"));
/// assert!(!p.matches("/administrator"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PathPattern {
    source: Box<str>,
    segments: Box<[Segment]>,
    exact: bool,
}

impl PathPattern {
    /// Compiles a pattern.
    ///
    /// # Errors
    /// When the pattern does not start with `/`, contains a wildcard that is not a whole segment
    /// (`/a*`), contains `***`, a `?` or `#`, or is longer than 1,024 bytes.
    pub fn new(pattern: &str) -> Result<Self, ConfigError> {
        let invalid = |why: &str| {
            ConfigError::new(
                ProblemKind::InvalidValue,
                "",
                format!("invalid path pattern {pattern:?}: {why}"),
            )
            .with_hint(HINT)
        };
        if !pattern.starts_with('/') {
            return Err(invalid("it must start with `/`"));
        }
        if pattern.len() > 1024 {
            return Err(invalid("it is longer than 1024 bytes"));
        }
        if pattern.contains(['?', '#']) {
            return Err(invalid(
                "a pattern matches the path only, without `?` or `#`",
            ));
        }
        let mut segments = Vec::new();
        for seg in pattern[1..].split('/') {
            let s = match seg {
                "*" => Segment::One,
                "**" => {
                    if segments.last() == Some(&Segment::Any) {
                        continue;
                    }
                    Segment::Any
                }
                s if s.contains('*') => {
                    return Err(invalid(&format!(
                        "`{s}`: a wildcard must be a whole segment"
                    )));
                }
                s => Segment::Literal(s.into()),
            };
            segments.push(s);
        }
        let exact = segments.iter().all(|s| matches!(s, Segment::Literal(_)));
        Ok(PathPattern {
            source: pattern.into(),
            segments: segments.into(),
            exact,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the pattern has no wildcard.
    pub fn is_exact(&self) -> bool {
        self.exact
    }

    /// Whether `path` matches.
    pub fn matches(&self, path: &str) -> bool {
        if self.exact {
            return path == &*self.source;
        }
        let Some(rest) = path.strip_prefix('/') else {
            return false;
        };
        match_segments(&self.segments, rest.split('/'))
    }
}

/// Glob matching with single-star backtracking over the path's segments, without collecting
/// them: a backtrack point is a copy of the segment iterator (at most O(pattern * path), since
/// consecutive `**` are collapsed at compile time). Never allocates.
fn match_segments<'a>(pattern: &[Segment], mut path: std::str::Split<'a, char>) -> bool {
    let mut p = 0;
    // Where the last `**` was, and the path from the segment it should swallow next.
    let mut backtrack: Option<(usize, std::str::Split<'a, char>)> = None;
    loop {
        let before = path.clone();
        let Some(seg) = path.next() else {
            // The path is consumed: what is left of the pattern must be `**` only (so
            // `/admin/**` matches `/admin`).
            return pattern[p..].iter().all(|s| *s == Segment::Any);
        };
        match pattern.get(p) {
            Some(Segment::Any) => {
                backtrack = Some((p, before.clone()));
                p += 1;
                path = before;
                continue;
            }
            Some(Segment::One) if !seg.is_empty() => {
                p += 1;
                continue;
            }
            Some(Segment::Literal(l)) if **l == *seg => {
                p += 1;
                continue;
            }
            _ => {}
        }
        match backtrack.as_mut() {
            // Let the `**` swallow one more segment and retry after it.
            Some((bp, from)) => {
                from.next();
                p = *bp + 1;
                path = from.clone();
            }
            None => return false,
        }
    }
}

impl FromStr for PathPattern {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PathPattern::new(s)
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// A set of path patterns: exact paths are looked up in a hash set, the others tried in order.
///
/// ```
/// use tower_plugins_core::PathSet;
/// let set = PathSet::new(["/health", "/metrics", "/static/**"]).unwrap();
/// assert!(set.matches("/static/app.js"));
/// assert!(!set.matches("/api"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct PathSet {
    exact: HashSet<Box<str>>,
    wildcards: Vec<PathPattern>,
    patterns: Vec<PathPattern>,
}

impl PathSet {
    /// Compiles every pattern.
    ///
    /// # Errors
    /// Every invalid pattern, keyed by its index (`[2]`).
    pub fn new<I, S>(patterns: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut problems = crate::Problems::new();
        let mut set = PathSet::default();
        for (i, p) in patterns.into_iter().enumerate() {
            if let Some(p) = problems.check(&format!("[{i}]"), PathPattern::new(p.as_ref())) {
                set.insert(p);
            }
        }
        problems.finish(set)
    }

    /// Adds a compiled pattern.
    pub fn insert(&mut self, p: PathPattern) {
        if p.is_exact() {
            self.exact.insert(p.as_str().into());
        } else {
            self.wildcards.push(p.clone());
        }
        self.patterns.push(p);
    }

    /// Whether any pattern matches `path`.
    pub fn matches(&self, path: &str) -> bool {
        self.exact.contains(path) || self.wildcards.iter().any(|p| p.matches(path))
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The patterns, in the order they were given.
    pub fn patterns(&self) -> &[PathPattern] {
        &self.patterns
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for PathPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        PathPattern::new(&s).map_err(|e| serde::de::Error::custom(&e.problems()[0].message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, path: &str) -> bool {
        PathPattern::new(p).unwrap().matches(path)
    }

    #[test]
    fn exact() {
        assert!(m("/health", "/health"));
        assert!(!m("/health", "/health/"));
        assert!(!m("/health", "/healthz"));
        assert!(m("/", "/"));
        assert!(!m("/", "/a"));
    }

    #[test]
    fn single_star() {
        assert!(m("/api/*/items", "/api/v1/items"));
        assert!(!m("/api/*/items", "/api/items"));
        assert!(!m("/api/*/items", "/api//items"));
        assert!(!m("/api/*/items", "/api/v1/v2/items"));
        assert!(m("/users/*", "/users/7"));
        assert!(!m("/users/*", "/users/"));
    }

    #[test]
    fn double_star() {
        assert!(m("/admin/**", "/admin"));
        assert!(m("/admin/**", "/admin/"));
        assert!(m("/admin/**", "/admin/a/b/c"));
        assert!(!m("/admin/**", "/administrator"));
        assert!(!m("/admin/**", "/"));
        assert!(m("/**", "/anything/at/all"));
        assert!(m("/**/edit", "/edit"));
        assert!(m("/**/edit", "/a/b/edit"));
        assert!(!m("/**/edit", "/a/b/edit/x"));
        assert!(m("/a/**/b/**/c", "/a/x/b/y/z/c"));
        assert!(!m("/a/**/b/**/c", "/a/x/c"));
    }

    #[test]
    fn deep_paths_match() {
        let deep = format!("/d{}", "/x".repeat(40));
        assert!(m("/d/**", &deep));
        assert!(!m("/e/**", &deep));
    }

    #[test]
    fn invalid_patterns() {
        for bad in ["admin", "/a*", "/*.png", "/a?b", ""] {
            let e = PathPattern::new(bad).unwrap_err();
            assert_eq!(e.problems()[0].kind, ProblemKind::InvalidValue, "{bad}");
        }
        let e = PathSet::new(["/ok", "bad", "/x/**", "/y*"]).unwrap_err();
        let keys = e.keys();
        assert_eq!(keys, ["[1]", "[3]"]);
    }

    #[test]
    fn set() {
        let s = PathSet::new(["/health", "/admin/**"]).unwrap();
        assert!(s.matches("/health"));
        assert!(s.matches("/admin/x"));
        assert!(!s.matches("/other"));
        assert_eq!(s.patterns().len(), 2);
    }
}
