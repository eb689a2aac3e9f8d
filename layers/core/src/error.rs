//! [`ConfigError`]: every problem found in a configuration, each with its location.

use std::fmt;
use std::path::PathBuf;

/// What kind of problem a [`ConfigProblem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProblemKind {
    /// The configuration file could not be read.
    Io,
    /// The text is not valid TOML.
    Syntax,
    /// A key that the plugin (or the stack) does not know.
    UnknownKey,
    /// A required key is missing.
    MissingKey,
    /// A value has the wrong type (a number where a string is expected, ...).
    WrongType,
    /// A value has the right type but is not acceptable (a bad duration, a zero quota, ...).
    InvalidValue,
    /// A `use = "..."` names no built-in or registered plugin.
    UnknownPlugin,
    /// Two plugin entries share one instance name.
    DuplicateName,
    /// A `${VAR}` reference names an environment variable that is not set.
    MissingEnv,
    /// Two settings that are each valid cannot be used together.
    Conflict,
}

impl ProblemKind {
    /// A short, stable, lowercase label for the kind (`"unknown key"`, ...).
    pub fn label(self) -> &'static str {
        match self {
            ProblemKind::Io => "cannot read",
            ProblemKind::Syntax => "invalid TOML",
            ProblemKind::UnknownKey => "unknown key",
            ProblemKind::MissingKey => "missing key",
            ProblemKind::WrongType => "wrong type",
            ProblemKind::InvalidValue => "invalid value",
            ProblemKind::UnknownPlugin => "unknown plugin",
            ProblemKind::DuplicateName => "duplicate name",
            ProblemKind::MissingEnv => "missing environment variable",
            ProblemKind::Conflict => "conflicting settings",
        }
    }
}

/// The plugin entry a problem belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginRef {
    /// Zero-based position of the entry in the stack (outermost first).
    pub index: usize,
    /// The plugin kind (`use = "..."`).
    pub kind: String,
    /// The instance name (`name = "..."`, or the kind when not set).
    pub name: String,
}

/// Where a problem is.
///
/// Every part is optional: a problem found in a layer built from code has no file and no line;
/// a problem in the file as a whole has no plugin entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// The configuration file, or `None` for a string or code source.
    pub file: Option<PathBuf>,
    /// The source when it is not a file (`"<string>"`, `"<code>"`).
    pub source: Option<String>,
    /// The plugin entry.
    pub plugin: Option<PluginRef>,
    /// The key path, such as `plugin[1].rules[0].quota` or `quota` inside a plugin.
    pub key: String,
    /// One-based line, when known.
    pub line: Option<usize>,
    /// One-based column, when known.
    pub column: Option<usize>,
}

impl Location {
    /// A location made of a key path only.
    pub fn key(key: impl Into<String>) -> Self {
        Location {
            key: key.into(),
            ..Location::default()
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut wrote = false;
        if let Some(file) = &self.file {
            write!(f, "{}", file.display())?;
            wrote = true;
        } else if let Some(source) = &self.source {
            f.write_str(source)?;
            wrote = true;
        }
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        if let Some(p) = &self.plugin {
            if wrote {
                f.write_str(": ")?;
            }
            if p.name == p.kind {
                write!(f, "plugin[{}] `{}`", p.index, p.kind)?;
            } else {
                write!(f, "plugin[{}] `{}` (use = \"{}\")", p.index, p.name, p.kind)?;
            }
            wrote = true;
        }
        if !self.key.is_empty() {
            if wrote {
                f.write_str(": ")?;
            }
            write!(f, "key `{}`", self.key)?;
        }
        Ok(())
    }
}

/// One problem in a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// What kind of problem it is.
    pub kind: ProblemKind,
    /// Where it is.
    pub location: Location,
    /// What is wrong, in lowercase without a trailing period.
    pub message: String,
    /// How to fix it, when there is something useful to say.
    pub hint: Option<String>,
}

impl ConfigProblem {
    /// A problem at `key` (a key path relative to whatever is being validated).
    pub fn new(kind: ProblemKind, key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigProblem {
            kind,
            location: Location::key(key),
            message: message.into(),
            hint: None,
        }
    }

    /// Adds a hint on how to fix the problem.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let loc = self.location.to_string();
        if loc.is_empty() {
            write!(f, "{}: {}", self.kind.label(), self.message)?;
        } else {
            write!(f, "{loc}: {}: {}", self.kind.label(), self.message)?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Every problem found while loading or validating a configuration.
///
/// Validation does not stop at the first problem: a `ConfigError` holds all of them, and its
/// `Display` prints one per line (with hints indented below), then a count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    problems: Vec<ConfigProblem>,
}

impl ConfigError {
    /// An error made of one problem.
    pub fn new(kind: ProblemKind, key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigProblem::new(kind, key, message).into()
    }

    /// An error made of the given problems, or `None` when there are none.
    pub fn from_problems(problems: Vec<ConfigProblem>) -> Option<Self> {
        if problems.is_empty() {
            None
        } else {
            Some(ConfigError { problems })
        }
    }

    /// The problems, in the order they were found.
    pub fn problems(&self) -> &[ConfigProblem] {
        &self.problems
    }

    /// The key path of every problem, in order: which settings were refused.
    ///
    /// ```
    /// use tower_plugins_core::{ConfigError, ProblemKind};
    /// let e = ConfigError::new(ProblemKind::InvalidValue, "digits", "too many");
    /// assert_eq!(e.keys(), ["digits"]);
    /// ```
    pub fn keys(&self) -> Vec<&str> {
        self.problems
            .iter()
            .map(|p| p.location.key.as_str())
            .collect()
    }

    /// Consumes the error, returning its problems.
    pub fn into_problems(self) -> Vec<ConfigProblem> {
        self.problems
    }

    /// Adds a hint to every problem that has none.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        let hint = hint.into();
        for p in &mut self.problems {
            if p.hint.is_none() {
                p.hint = Some(hint.clone());
            }
        }
        self
    }

    /// Prefixes every problem's key path with `prefix` (`"rules[0]"` turns `quota` into
    /// `rules[0].quota`). Used when a nested part is validated on its own.
    #[must_use]
    pub fn nest(mut self, prefix: &str) -> Self {
        for p in &mut self.problems {
            p.location.key = join_key(prefix, &p.location.key);
        }
        self
    }

    /// Appends the problems of `other`.
    pub fn extend(&mut self, other: ConfigError) {
        self.problems.extend(other.problems);
    }

    /// Applies `f` to every problem's location (the stack uses this to add the file, the
    /// plugin entry, line and column).
    pub fn map_locations(mut self, mut f: impl FnMut(&mut Location)) -> Self {
        for p in &mut self.problems {
            f(&mut p.location);
        }
        self
    }
}

/// Joins two key paths: `join_key("a", "b") == "a.b"`, `join_key("a", "[0]") == "a[0]"`.
pub fn join_key(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else if key.is_empty() {
        prefix.to_owned()
    } else if key.starts_with('[') {
        format!("{prefix}{key}")
    } else {
        format!("{prefix}.{key}")
    }
}

impl From<ConfigProblem> for ConfigError {
    fn from(p: ConfigProblem) -> Self {
        ConfigError { problems: vec![p] }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        if self.problems.len() > 1 {
            write!(f, "\n{} configuration errors", self.problems.len())?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Collects problems while validating several values, so that all are reported at once.
///
/// ```
/// use tower_plugins_core::{ConfigError, Problems, ProblemKind, parse_duration};
///
/// fn validate(max_age: &str, retries: u32) -> Result<(), ConfigError> {
///     let mut problems = Problems::new();
///     problems.check("max_age", parse_duration(max_age));
///     if retries == 0 {
///         problems.push(ProblemKind::InvalidValue, "retries", "must be at least 1");
///     }
///     problems.finish(())
/// }
/// let err = validate("soon", 0).unwrap_err();
/// assert_eq!(err.problems().len(), 2);
/// ```
#[derive(Debug, Default)]
pub struct Problems {
    problems: Vec<ConfigProblem>,
}

impl Problems {
    /// An empty collection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a problem.
    pub fn push(&mut self, kind: ProblemKind, key: impl Into<String>, message: impl Into<String>) {
        self.problems.push(ConfigProblem::new(kind, key, message));
    }

    /// Records every problem of `err`, nested under `key`.
    pub fn add(&mut self, key: &str, err: ConfigError) {
        self.problems.extend(err.nest(key).problems);
    }

    /// Returns the value of `res`, recording its error (nested under `key`) if it failed.
    pub fn check<T>(&mut self, key: &str, res: Result<T, ConfigError>) -> Option<T> {
        match res {
            Ok(v) => Some(v),
            Err(e) => {
                self.add(key, e);
                None
            }
        }
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    /// `Ok(value)` if nothing was recorded, otherwise every recorded problem.
    pub fn finish<T>(self, value: T) -> Result<T, ConfigError> {
        match ConfigError::from_problems(self.problems) {
            None => Ok(value),
            Some(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_file_line_plugin_and_key() {
        let err = ConfigError::new(ProblemKind::InvalidValue, "quota", "invalid quota \"x\"")
            .with_hint("write \"100/min\"")
            .map_locations(|l| {
                l.file = Some("plugins.toml".into());
                l.line = Some(12);
                l.column = Some(9);
                l.plugin = Some(PluginRef {
                    index: 1,
                    kind: "rate_limit".into(),
                    name: "api".into(),
                });
            });
        assert_eq!(
            err.to_string(),
            "plugins.toml:12:9: plugin[1] `api` (use = \"rate_limit\"): key `quota`: \
             invalid value: invalid quota \"x\"\n  hint: write \"100/min\""
        );
    }

    #[test]
    fn nest_and_count() {
        let mut e = ConfigError::new(ProblemKind::MissingKey, "quota", "required");
        e.extend(ConfigError::new(ProblemKind::UnknownKey, "[1]", "x"));
        let e = e.nest("rules");
        assert_eq!(e.problems()[0].location.key, "rules.quota");
        assert_eq!(e.problems()[1].location.key, "rules[1]");
        assert!(e.to_string().ends_with("2 configuration errors"));
    }
}
