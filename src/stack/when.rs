//! `when`: the stack-level table that applies an entry to some requests only.
//!
//! ```toml
//! [[plugin]]
//! use = "timer"
//! when = { paths = ["/api/**"], except = ["/api/health"], methods = ["GET", "POST"] }
//! ```
//!
//! A request outside it skips the entry: the entry's service hands it to the rest of the
//! stack untouched, at the cost of this match (no allocation).

use http::{Method, Request};
use serde::Deserialize;
use tower_plugins_core::{ConfigError, PathSet, Problems, parse_method};

use super::registry::deserialize;

/// Where an entry applies: the path is in `paths` (when given) and not in `except`, and the
/// method is in `methods` (when given).
#[derive(Debug)]
pub(crate) struct When {
    paths: Option<PathSet>,
    except: PathSet,
    methods: Vec<Method>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WhenConfig {
    #[serde(default)]
    paths: Vec<String>,
    #[serde(default)]
    except: Vec<String>,
    #[serde(default)]
    methods: Vec<String>,
}

impl When {
    /// Reads an entry's `when` value; `None` when it names no restriction.
    ///
    /// # Errors
    /// Every invalid key, pattern and method, keyed under `when`.
    pub(crate) fn parse(value: toml::Value) -> Result<Option<When>, ConfigError> {
        let table = match value {
            toml::Value::Table(t) => t,
            other => {
                return Err(ConfigError::new(
                    tower_plugins_core::ProblemKind::WrongType,
                    "when",
                    format!("`when` must be a table, found {}", other.type_str()),
                )
                .with_hint("write when = { paths = [\"/api/**\"], except = [\"/api/health\"] }"));
            }
        };
        let c: WhenConfig = deserialize(table).map_err(|e| e.nest("when"))?;
        let mut p = Problems::new();
        let paths = p.check("when.paths", PathSet::new(&c.paths));
        let except = p.check("when.except", PathSet::new(&c.except));
        let methods: Vec<Method> = c
            .methods
            .iter()
            .enumerate()
            .filter_map(|(i, m)| p.check(&format!("when.methods[{i}]"), parse_method(m)))
            .collect();
        let (paths, except) = p.finish((paths.unwrap_or_default(), except.unwrap_or_default()))?;
        if c.paths.is_empty() && c.except.is_empty() && methods.is_empty() {
            return Ok(None);
        }
        Ok(Some(When {
            paths: (!c.paths.is_empty()).then_some(paths),
            except,
            methods,
        }))
    }

    /// Whether the entry applies to `req`.
    #[inline]
    pub(crate) fn applies<B>(&self, req: &Request<B>) -> bool {
        let path = req.uri().path();
        (self.methods.is_empty() || self.methods.contains(req.method()))
            && self.paths.as_ref().is_none_or(|p| p.matches(path))
            && !self.except.matches(path)
    }

    /// The restriction in one line, for the printed stack.
    pub(crate) fn describe(&self) -> String {
        let list = |set: &PathSet| {
            let v: Vec<&str> = set.patterns().iter().map(|p| p.as_str()).collect();
            v.join(", ")
        };
        let mut parts = Vec::new();
        if let Some(paths) = &self.paths {
            parts.push(format!("paths {}", list(paths)));
        }
        if !self.except.is_empty() {
            parts.push(format!("except {}", list(&self.except)));
        }
        if !self.methods.is_empty() {
            let v: Vec<&str> = self.methods.iter().map(Method::as_str).collect();
            parts.push(format!("methods {}", v.join(", ")));
        }
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn when(text: &str) -> Result<Option<When>, ConfigError> {
        When::parse(toml::Value::Table(text.parse().unwrap()))
    }

    fn req(method: Method, path: &str) -> Request<()> {
        Request::builder()
            .method(method)
            .uri(path)
            .body(())
            .unwrap()
    }

    #[test]
    fn paths_except_and_methods_combine() {
        let w = when("paths = [\"/api/**\"]\nexcept = [\"/api/health\"]\nmethods = [\"get\"]")
            .unwrap()
            .unwrap();
        assert!(w.applies(&req(Method::GET, "/api/items")));
        assert!(w.applies(&req(Method::GET, "/api")));
        assert!(!w.applies(&req(Method::GET, "/api/health")));
        assert!(!w.applies(&req(Method::POST, "/api/items")));
        assert!(!w.applies(&req(Method::GET, "/")));
        assert_eq!(
            w.describe(),
            "paths /api/**; except /api/health; methods GET"
        );
    }

    #[test]
    fn except_alone_applies_everywhere_else() {
        let w = when("except = [\"/health\"]").unwrap().unwrap();
        assert!(w.applies(&req(Method::DELETE, "/anything")));
        assert!(!w.applies(&req(Method::GET, "/health")));
        assert!(when("").unwrap().is_none());
    }

    #[test]
    fn bad_keys_patterns_and_methods_are_located() {
        let e = when("paths = [\"/a*b\"]\nmethods = [\"GE T\"]\nexcpt = []").unwrap_err();
        assert_eq!(e.keys(), ["when.excpt"]);
        let e = when("paths = [\"/a*b\"]\nmethods = [\"GE T\", \"\"]").unwrap_err();
        assert_eq!(
            e.keys(),
            ["when.paths[0]", "when.methods[0]", "when.methods[1]"]
        );
        let e = When::parse(toml::Value::from("/api")).unwrap_err();
        assert_eq!(e.keys(), ["when"]);
    }
}
