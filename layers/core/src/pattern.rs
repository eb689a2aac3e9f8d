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
        let segs: SmallSegs<'_> = rest.split('/').collect();
        match_segments(&self.segments, segs.as_slice())
    }
}

/// Path segments, kept on the stack for typical depths.
struct SmallSegs<'a> {
    inline: [&'a str; 16],
    len: usize,
    spill: Vec<&'a str>,
}

impl<'a> FromIterator<&'a str> for SmallSegs<'a> {
    fn from_iter<I: IntoIterator<Item = &'a str>>(iter: I) -> Self {
        let mut s = SmallSegs {
            inline: [""; 16],
            len: 0,
            spill: Vec::new(),
        };
        for part in iter {
            if s.len < 16 {
                s.inline[s.len] = part;
            } else {
                if s.spill.is_empty() {
                    s.spill.extend_from_slice(&s.inline);
                }
                s.spill.push(part);
            }
            s.len += 1;
        }
        s
    }
}

impl<'a> SmallSegs<'a> {
    fn as_slice(&self) -> &[&'a str] {
        if self.len <= 16 {
            &self.inline[..self.len]
        } else {
            &self.spill
        }
    }
}

fn match_segments(pattern: &[Segment], path: &[&str]) -> bool {
    // Iterative glob matching with single-star backtracking (linear in practice, and at most
    // O(pattern * path) since consecutive `**` are collapsed at compile time).
    let (mut p, mut s) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while s < path.len() {
        match pattern.get(p) {
            Some(Segment::Any) => {
                backtrack = Some((p, s));
                p += 1;
                continue;
            }
            Some(Segment::One) if !path[s].is_empty() => {
                p += 1;
                s += 1;
                continue;
            }
            Some(Segment::Literal(l)) if **l == *path[s] => {
                p += 1;
                s += 1;
                continue;
            }
            _ => {}
        }
        match backtrack {
            Some((bp, bs)) => {
                p = bp + 1;
                s = bs + 1;
                backtrack = Some((bp, bs + 1));
            }
            None => return false,
        }
    }
    // The path is consumed: what is left of the pattern must be `**` only (so `/admin/**`
    // matches `/admin`).
    pattern[p..].iter().all(|s| *s == Segment::Any)
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
    fn deep_paths_spill_past_inline_storage() {
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
        let keys: Vec<_> = e
            .problems()
            .iter()
            .map(|p| p.location.key.as_str())
            .collect();
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
