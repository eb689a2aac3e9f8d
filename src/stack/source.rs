//! Reading a stack file: TOML parsing, key spans for error locations, `${VAR}` expansion.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::ops::Range;
use std::path::PathBuf;

use toml::de::{DeTable, DeValue};
use tower_plugins_core::{ConfigError, ConfigProblem, Location, ProblemKind, join_key};

/// Where a piece of configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    File(PathBuf),
    Str,
    Code,
}

impl Origin {
    pub(crate) fn apply(&self, loc: &mut Location) {
        match self {
            Origin::File(p) => loc.file = Some(p.clone()),
            Origin::Str => loc.source = Some("<string>".to_owned()),
            Origin::Code => loc.source = Some("<code>".to_owned()),
        }
    }
}

/// A parsed TOML source: its values, and the text span of every key path in it.
#[derive(Debug)]
pub(crate) struct Source {
    pub(crate) origin: Origin,
    text: String,
    spans: HashMap<String, Range<usize>>,
    /// Built on the first problem located, so that locating N problems is linear.
    lines: OnceCell<LineIndex>,
}

/// Where each line starts, and where each multi-byte character continues, so that a byte
/// offset becomes a line and a column (in characters) with two binary searches.
#[derive(Debug)]
struct LineIndex {
    starts: Vec<usize>,
    continuations: Vec<usize>,
}

impl LineIndex {
    fn new(text: &[u8]) -> Self {
        let mut starts = vec![0];
        let mut continuations = Vec::new();
        for (i, b) in text.iter().enumerate() {
            match b {
                b'\n' => starts.push(i + 1),
                0x80..=0xBF => continuations.push(i),
                _ => {}
            }
        }
        LineIndex {
            starts,
            continuations,
        }
    }

    /// One-based line and column of byte `offset`.
    fn line_col(&self, offset: usize) -> (usize, usize) {
        let line = self.starts.partition_point(|s| *s <= offset);
        let start = self.starts[line - 1];
        let before = |at: usize| self.continuations.partition_point(|c| *c < at);
        let chars = offset - start - (before(offset) - before(start));
        (line, chars + 1)
    }
}

/// One-based line and column of byte `offset` in `text`, for a single problem.
pub(crate) fn line_col(text: &[u8], offset: usize) -> (usize, usize) {
    LineIndex::new(&text[..offset.min(text.len())]).line_col(offset.min(text.len()))
}

impl Source {
    /// A source for values set from code: no text, no spans.
    pub(crate) fn code() -> Self {
        Source {
            origin: Origin::Code,
            text: String::new(),
            spans: HashMap::new(),
            lines: OnceCell::new(),
        }
    }

    /// Parses `text`. Syntax errors are returned located.
    pub(crate) fn parse(origin: Origin, text: String) -> Result<(Self, toml::Table), ConfigError> {
        let table = match text.parse::<toml::Table>() {
            Ok(t) => t,
            Err(e) => {
                let mut src = Source {
                    origin,
                    text,
                    spans: HashMap::new(),
                    lines: OnceCell::new(),
                };
                let mut p = ConfigProblem::new(ProblemKind::Syntax, "", e.message().trim());
                match e.span() {
                    Some(span) => src.set_line_col(&mut p.location, span.start),
                    None => src.set_line_col(&mut p.location, unlocated_error_at(&src.text)),
                }
                src.origin.apply(&mut p.location);
                src.text.clear();
                return Err(p.into());
            }
        };
        let mut spans = HashMap::new();
        if let Ok(doc) = DeTable::parse(&text) {
            collect_table(doc.get_ref(), "", &mut spans);
        }
        Ok((
            Source {
                origin,
                text,
                spans,
                lines: OnceCell::new(),
            },
            table,
        ))
    }

    /// Fills file, line and column of `loc` for the key path `path` (absolute within this
    /// source). An unknown path falls back to its nearest known parent.
    pub(crate) fn locate(&self, loc: &mut Location, path: &str) {
        self.origin.apply(loc);
        let mut p = path;
        loop {
            if let Some(span) = self.spans.get(p) {
                let start = span.start;
                self.set_line_col(loc, start);
                return;
            }
            match parent(p) {
                Some(up) => p = up,
                None => return,
            }
        }
    }

    fn set_line_col(&self, loc: &mut Location, offset: usize) {
        if self.text.is_empty() {
            return;
        }
        let lines = self
            .lines
            .get_or_init(|| LineIndex::new(self.text.as_bytes()));
        let (line, col) = lines.line_col(offset.min(self.text.len()));
        loc.line = Some(line);
        loc.column = Some(col);
    }
}

/// Where a syntax error the parser gives without a span (a dotted key nested past its
/// recursion limit) is: the first line of the shortest run of whole lines that still fails
/// without a span, found by bisection (a few parses of the file, not one per line).
fn unlocated_error_at(text: &str) -> usize {
    let fails_unlocated = |end: usize| {
        text[..end]
            .parse::<toml::Table>()
            .is_err_and(|e| e.span().is_none())
    };
    let ends: Vec<usize> = (text.match_indices('\n').map(|(i, _)| i + 1))
        .chain([text.len()])
        .collect();
    let (mut lo, mut hi) = (0, ends.len() - 1);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if fails_unlocated(ends[mid]) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let start = if lo == 0 { 0 } else { ends[lo - 1] };
    start + text[start..].len() - text[start..].trim_start_matches([' ', '\t']).len()
}

/// `a.b[0].c` → `a.b[0]` → `a.b` → `a` → none.
fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(&path[..cut])
}

fn collect_table(t: &DeTable<'_>, prefix: &str, out: &mut HashMap<String, Range<usize>>) {
    for (k, v) in t.iter() {
        let path = join_key(prefix, k.get_ref());
        // Point at the key itself: that is where a reader looks for "key `x`".
        out.insert(path.clone(), k.span());
        collect_value(v.get_ref(), v.span(), &path, out);
    }
}

fn collect_value(
    v: &DeValue<'_>,
    span: Range<usize>,
    path: &str,
    out: &mut HashMap<String, Range<usize>>,
) {
    match v {
        DeValue::Table(t) => collect_table(t, path, out),
        DeValue::Array(a) => {
            for (i, item) in a.iter().enumerate() {
                let p = format!("{path}[{i}]");
                out.entry(p.clone()).or_insert_with(|| item.span());
                collect_value(item.get_ref(), item.span(), &p, out);
            }
        }
        _ => {
            out.entry(path.to_owned()).or_insert(span);
        }
    }
}

/// Expands `${VAR}` and `${VAR:-default}` in every string value, in place. `$${` writes a
/// literal `${`. Problems are keyed by the path of the string.
pub(crate) fn expand_env(
    value: &mut toml::Value,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<ConfigProblem>,
) {
    match value {
        toml::Value::String(s) if s.contains('$') => match expand_str(s, env) {
            Ok(x) => *s = x,
            Err((kind, msg, hint)) => {
                problems.push(ConfigProblem::new(kind, path, msg).with_hint(hint));
            }
        },
        toml::Value::Array(a) => {
            for (i, v) in a.iter_mut().enumerate() {
                expand_env(v, &format!("{path}[{i}]"), env, problems);
            }
        }
        toml::Value::Table(t) => {
            for (k, v) in t.iter_mut() {
                expand_env(v, &join_key(path, k), env, problems);
            }
        }
        _ => {}
    }
}

type ExpandError = (ProblemKind, String, &'static str);

fn expand_str(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, ExpandError> {
    const HINT: &str = "write ${NAME} or ${NAME:-default}; NAME is letters, digits and `_`; `$${` is a literal `${`";
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(lit) = after.strip_prefix("${") {
            out.push_str("${");
            rest = lit;
            continue;
        }
        let Some(body) = after.strip_prefix('{') else {
            out.push('$');
            rest = after;
            continue;
        };
        let Some(end) = body.find('}') else {
            return Err((
                ProblemKind::InvalidValue,
                format!("unterminated `${{` in {s:?}"),
                HINT,
            ));
        };
        let inner = &body[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        if name.is_empty()
            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            || name.as_bytes()[0].is_ascii_digit()
        {
            return Err((
                ProblemKind::InvalidValue,
                format!("invalid environment variable name {name:?} in {s:?}"),
                HINT,
            ));
        }
        match (env(name), default) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                return Err((
                    ProblemKind::MissingEnv,
                    format!("environment variable `{name}` is not set"),
                    "set it, or give a default with ${NAME:-default}",
                ));
            }
        }
        rest = &body[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "SECRET" => Some("s3cr3t".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expansion() {
        assert_eq!(expand_str("a ${SECRET} b", &env).unwrap(), "a s3cr3t b");
        assert_eq!(expand_str("${NOPE:-dflt}", &env).unwrap(), "dflt");
        assert_eq!(expand_str("${EMPTY:-dflt}", &env).unwrap(), "");
        assert_eq!(
            expand_str("$$5 and $${SECRET}", &env).unwrap(),
            "$$5 and ${SECRET}"
        );
        assert_eq!(expand_str("cost: $5", &env).unwrap(), "cost: $5");
        assert_eq!(
            expand_str("${NOPE}", &env).unwrap_err().0,
            ProblemKind::MissingEnv
        );
        assert_eq!(
            expand_str("${OPEN", &env).unwrap_err().0,
            ProblemKind::InvalidValue
        );
        assert_eq!(
            expand_str("${1X}", &env).unwrap_err().0,
            ProblemKind::InvalidValue
        );
    }

    #[test]
    fn spans_locate_nested_keys_and_fall_back_to_parents() {
        let text = "[client_ip]\ntrusted_proxies = [\"x\"]\n\n[[plugin]]\nuse = \"timer\"\n  digits = 12\n".to_owned();
        let (src, _) = Source::parse(Origin::Str, text).unwrap();
        let mut loc = Location::default();
        src.locate(&mut loc, "plugin[0].digits");
        assert_eq!((loc.line, loc.column), (Some(6), Some(3)));
        let mut loc = Location::default();
        src.locate(&mut loc, "client_ip.trusted_proxies[0]");
        assert_eq!(loc.line, Some(2));
        let mut loc = Location::default();
        src.locate(&mut loc, "plugin[0].missing.deeper");
        assert_eq!(loc.line, Some(4));
    }

    #[test]
    fn nesting_past_the_parsers_limit_is_located() {
        let deep_key = format!("a = 1\n\n  {} = 1\nb = 2\n", vec!["k"; 500].join("."));
        let deep_header = format!("a = 1\n[{}]\n", vec!["k"; 500].join("."));
        let deep_array = format!("a = 1\nb = {}1{}\n", "[".repeat(200), "]".repeat(200));
        for (text, line, col) in [(deep_key, 3, 3), (deep_header, 2, 1), (deep_array, 2, 85)] {
            let e = Source::parse(Origin::Str, text).unwrap_err();
            let loc = &e.problems()[0].location;
            assert_eq!((loc.line, loc.column), (Some(line), Some(col)), "{e}");
        }
    }

    #[test]
    fn columns_count_characters_and_lines_are_found_in_a_large_file() {
        let index = LineIndex::new("ab\ncé d\n".as_bytes());
        assert_eq!(index.line_col(0), (1, 1));
        assert_eq!(index.line_col(3), (2, 1));
        // `d` is the fourth character of line 2, after a two-byte `é`.
        assert_eq!(index.line_col(7), (2, 4));
        assert_eq!(line_col("x\n\u{e9}\u{e9}y".as_bytes(), 6), (2, 3));
    }

    #[test]
    fn syntax_errors_have_line_and_column() {
        let e = Source::parse(Origin::Str, "a = 1\nb = = 2\n".into()).unwrap_err();
        let p = &e.problems()[0];
        assert_eq!(p.kind, ProblemKind::Syntax);
        assert_eq!(p.location.line, Some(2));
    }
}
