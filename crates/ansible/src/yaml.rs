//! A small YAML writer for the documents this crate generates (sidecar docs, examples).
//!
//! Only what we emit is supported: block mappings and sequences, scalars, and literal
//! blocks for multi-line text. Strings that YAML could read as something else (`yes`,
//! `1.0`, `- x`, `a: b`) are written as JSON strings, which are valid YAML double-quoted
//! scalars, so the output always reads back as written. Mapping keys keep their order.

use serde_json::Value;

/// A YAML value with ordered mappings.
#[derive(Debug, Clone, PartialEq)]
pub enum Yaml {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A string (a literal block when it holds newlines).
    Str(String),
    /// A block sequence.
    Seq(Vec<Yaml>),
    /// A block mapping, in this order.
    Map(Vec<(String, Yaml)>),
}

impl Yaml {
    /// A string value.
    pub fn str(s: impl Into<String>) -> Self {
        Yaml::Str(s.into())
    }

    /// A mapping from `(key, value)` pairs.
    pub fn map<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Yaml)>) -> Self {
        Yaml::Map(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A sequence of strings.
    pub fn strs<S: Into<String>>(items: impl IntoIterator<Item = S>) -> Self {
        Yaml::Seq(items.into_iter().map(|s| Yaml::Str(s.into())).collect())
    }

    /// Converts JSON (objects keep serde_json's key order).
    pub fn from_json(v: &Value) -> Self {
        match v {
            Value::Null => Yaml::Null,
            Value::Bool(b) => Yaml::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Yaml::Int(i),
                None => Yaml::Str(n.to_string()),
            },
            Value::String(s) => Yaml::Str(s.clone()),
            Value::Array(xs) => Yaml::Seq(xs.iter().map(Yaml::from_json).collect()),
            Value::Object(m) => Yaml::Map(
                m.iter()
                    .map(|(k, v)| (k.clone(), Yaml::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// The value as a YAML document body (no `---`), ending with a newline.
    pub fn to_document(&self) -> String {
        let mut out = String::new();
        match self {
            Yaml::Map(m) if !m.is_empty() => write_map(&mut out, m, 0),
            Yaml::Seq(s) if !s.is_empty() => write_seq(&mut out, s, 0),
            other => {
                out.push_str(&inline(other).unwrap_or_default());
                out.push('\n');
            }
        }
        out
    }
}

/// The value on one line, or `None` when it needs a block (non-empty collections,
/// multi-line strings).
fn inline(v: &Yaml) -> Option<String> {
    Some(match v {
        Yaml::Null => "null".into(),
        Yaml::Bool(b) => b.to_string(),
        Yaml::Int(i) => i.to_string(),
        // A literal block cannot start with spaces without an indentation indicator.
        Yaml::Str(s) if s.starts_with(' ') || s.contains('\t') => {
            Value::String(s.clone()).to_string()
        }
        Yaml::Str(s) if s.contains('\n') => return None,
        Yaml::Str(s) => scalar(s),
        Yaml::Seq(s) if s.is_empty() => "[]".into(),
        Yaml::Map(m) if m.is_empty() => "{}".into(),
        Yaml::Seq(_) | Yaml::Map(_) => return None,
    })
}

/// Words YAML 1.1 (PyYAML) reads as booleans or null.
const RESERVED: &[&str] = &[
    "y", "n", "yes", "no", "true", "false", "on", "off", "null", "~",
];

/// A string scalar: plain when unambiguous, else a JSON (double-quoted) string.
pub fn scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | '(' | ')' | ' ')
        })
        && !s.starts_with([' ', '-', '.'])
        && !s.ends_with(' ')
        && !RESERVED.contains(&s.to_ascii_lowercase().as_str())
        && !looks_numeric(s);
    if plain {
        s.to_string()
    } else {
        Value::String(s.to_string()).to_string()
    }
}

/// True for anything YAML might read as a number (`1`, `0x1`, `1.5`, `1e3`, `.5`).
fn looks_numeric(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_digit() || c == '+')
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn write_literal(out: &mut String, s: &str, ind: usize) {
    // `|` keeps one trailing newline; `|-` none. Trailing blank lines are not kept.
    let body = s.trim_end_matches('\n');
    out.push_str(if s.ends_with('\n') { "|\n" } else { "|-\n" });
    for line in body.split('\n') {
        if !line.is_empty() {
            indent(out, ind);
            out.push_str(line);
        }
        out.push('\n');
    }
}

fn write_value_after_key(out: &mut String, v: &Yaml, ind: usize) {
    match v {
        Yaml::Str(s) if inline(v).is_none() => {
            out.push(' ');
            write_literal(out, s, ind + 2);
        }
        Yaml::Map(m) if !m.is_empty() => {
            out.push('\n');
            write_map(out, m, ind + 2);
        }
        Yaml::Seq(s) if !s.is_empty() => {
            out.push('\n');
            write_seq(out, s, ind + 2);
        }
        other => {
            out.push(' ');
            out.push_str(&inline(other).unwrap_or_default());
            out.push('\n');
        }
    }
}

fn write_map(out: &mut String, m: &[(String, Yaml)], ind: usize) {
    for (k, v) in m {
        indent(out, ind);
        out.push_str(&scalar(k));
        out.push(':');
        write_value_after_key(out, v, ind);
    }
}

fn write_seq(out: &mut String, s: &[Yaml], ind: usize) {
    for v in s {
        indent(out, ind);
        out.push('-');
        match v {
            Yaml::Map(m) if !m.is_empty() => {
                // The first pair goes on the dash's line, the rest aligned under it.
                let mut first = String::new();
                write_map(&mut first, m, ind + 2);
                out.push(' ');
                out.push_str(first.get(ind + 2..).unwrap_or_default());
            }
            Yaml::Seq(inner) if !inner.is_empty() => {
                out.push('\n');
                write_seq(out, inner, ind + 2);
            }
            Yaml::Str(text) if inline(v).is_none() => {
                out.push(' ');
                write_literal(out, text, ind + 2);
            }
            other => {
                out.push(' ');
                out.push_str(&inline(other).unwrap_or_default());
                out.push('\n');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ambiguous_strings_are_quoted() {
        for s in [
            "yes", "No", "true", "null", "0x1", "2048", "", " x", "a: b", "- x", "#c",
        ] {
            assert!(scalar(s).starts_with('"'), "{s:?} -> {}", scalar(s));
        }
        for s in [
            "node_v2",
            "best-effort",
            "/run/v2engine/executor.sock",
            "a b",
        ] {
            assert_eq!(scalar(s), s);
        }
    }

    #[test]
    fn nested_document() {
        let y = Yaml::map([
            ("a", Yaml::Int(1)),
            (
                "b",
                Yaml::Seq(vec![
                    Yaml::map([("x", Yaml::str("1")), ("y", Yaml::Bool(true))]),
                    Yaml::str("plain"),
                ]),
            ),
            ("c", Yaml::Seq(vec![])),
            ("d", Yaml::str("line 1\nline 2\n")),
            ("e", Yaml::map([("f", Yaml::Null)])),
        ]);
        assert_eq!(
            y.to_document(),
            "a: 1\nb:\n  - x: \"1\"\n    \"y\": true\n  - plain\nc: []\nd: |\n  line 1\n  line 2\ne:\n  f: null\n"
        );
    }

    #[test]
    fn literal_blocks_keep_blank_lines() {
        let y = Yaml::map([("t", Yaml::str("a\n\n  b"))]);
        assert_eq!(y.to_document(), "t: |-\n  a\n\n    b\n");
    }
}
