//! Why a profile is refused, and where: a value from the file is reported
//! with the file and its line (found from the TOML document's spans), one
//! a `--set` gave with the assignment.

use toml_edit::{Document, Item, Table};

/// Why a profile cannot be used. The message names the field.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The file could not be read.
    #[error("cannot read profile {path}: {source}")]
    Read {
        /// The path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not TOML, or not a profile (unknown field, wrong type). The TOML
    /// error names the line and the field.
    #[error("{origin}: {message}")]
    Parse {
        /// The file (or the profile's name).
        origin: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A `--set` that cannot apply.
    #[error("--set {}: {message}", shown(assignment))]
    Override {
        /// The assignment as given.
        assignment: String,
        /// Why.
        message: String,
    },
    /// A field's value is not allowed.
    #[error("{field}: {message}")]
    Invalid {
        /// The field's path.
        field: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// A field's value in a file is not allowed.
    #[error("{origin}{}: {field}: {message}", line.map(|l| format!(", line {l}")).unwrap_or_default())]
    InvalidIn {
        /// The file (or the profile's name).
        origin: String,
        /// The field's line, when it can be told.
        line: Option<usize>,
        /// The field's path.
        field: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// A point of the sweep is not a valid profile.
    #[error("sweep point {point}: {}", without_set_prefix(source, point))]
    SweepPoint {
        /// The point's assignments.
        point: String,
        /// Why it is refused.
        source: Box<ProfileError>,
    },
}

impl ProfileError {
    /// The error less the file and line of a field's value: a sweep
    /// point's profile is checked from the profile written out again with
    /// the point's values, whose lines and name are not the user's file's.
    pub fn without_location(self) -> Self {
        match self {
            ProfileError::InvalidIn { field, message, .. } => {
                ProfileError::Invalid { field, message }
            }
            other => other,
        }
    }
}

/// `source`'s message less a leading `--set ASSIGNMENT: ` naming one of
/// the sweep point's assignments: the point applies its values the way
/// `--set` does, but the user typed an axis, not a `--set`.
fn without_set_prefix(source: &ProfileError, point: &str) -> String {
    let message = source.to_string();
    point
        .split(' ')
        .find_map(|a| message.strip_prefix(&format!("--set {}: ", shown(a))))
        .map_or_else(|| message.clone(), str::to_string)
}

/// The most characters of a user's text a message repeats.
const SHOWN_CHARS: usize = 120;

/// `text` as a message repeats it: control characters escaped (a `--set`
/// or a name must not clear the terminal or forge lines of output), and
/// the middle of a long text elided (a 30 000-part path is not worth
/// 60 KB of stderr).
pub fn shown(text: &str) -> String {
    let escaped: Vec<char> = text
        .chars()
        .flat_map(|c| {
            let escape = c.is_control().then(|| c.escape_default());
            let plain = (!c.is_control()).then_some(c);
            escape.into_iter().flatten().chain(plain)
        })
        .collect();
    if escaped.len() <= SHOWN_CHARS {
        return escaped.into_iter().collect();
    }
    let head: String = escaped[..SHOWN_CHARS - 20].iter().collect();
    let tail: String = escaped[escaped.len() - 20..].iter().collect();
    format!("{head}…{tail} ({} characters)", text.chars().count())
}

/// A deserializer's message in the profile's words: serde names Rust
/// types (`expected u32`), a user wants the numbers a field takes.
pub(super) fn plain(message: &str) -> String {
    const WORDS: [(&str, &str); 6] = [
        ("u64", "a whole number from 0 to 18446744073709551615"),
        ("usize", "a whole number from 0 to 18446744073709551615"),
        ("u32", "a whole number from 0 to 4294967295"),
        ("i64", "a whole number"),
        ("f64", "a number"),
        ("a boolean", "true or false"),
    ];
    let mut out = message.trim_end().to_string();
    for (rust, words) in WORDS {
        let from = format!("expected {rust}");
        let mut at = 0;
        while let Some(found) = out[at..].find(&from) {
            let start = at + found;
            let end = start + from.len();
            if out[end..].starts_with(|c: char| c.is_alphanumeric()) {
                at = end;
                continue;
            }
            out.replace_range(start..end, &format!("expected {words}"));
            at = start + "expected ".len() + words.len();
        }
    }
    out
}

/// A field's value is not allowed: `field` as `--set` would write it
/// (`vertices.map.parallelism`, `edges[1].to`).
pub(super) fn invalid(field: impl Into<String>, message: impl Into<String>) -> ProfileError {
    ProfileError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// The text a profile was read from, to place errors in it.
pub(super) struct Source<'a> {
    pub text: &'a str,
    pub origin: &'a str,
}

impl Source<'_> {
    /// A TOML or schema error (its message carries line and column).
    pub fn parse_error(&self, e: toml::de::Error) -> ProfileError {
        ProfileError::Parse {
            origin: self.origin.to_string(),
            message: plain(&e.to_string()),
        }
    }

    /// Places a bad value from the file on its line; one that an override
    /// set is left as it is (the message names the field, and the user
    /// typed the assignment).
    pub fn locate(&self, e: ProfileError, overrides: &[String]) -> ProfileError {
        match e {
            ProfileError::Invalid { field, message } if !set_by(&field, overrides) => {
                ProfileError::InvalidIn {
                    origin: self.origin.to_string(),
                    line: field_line(self.text, &field),
                    field,
                    message,
                }
            }
            other => other,
        }
    }
}

/// Whether one of `overrides` assigns `field` (`edges[0].to` is
/// `--set edges.0.to=…`).
fn set_by(field: &str, overrides: &[String]) -> bool {
    let path = field.replace('[', ".").replace(']', "");
    overrides
        .iter()
        .any(|o| o.split('=').next().is_some_and(|p| p.trim() == path))
}

/// The line (1-based) of `field` in `text`: the span of the value the
/// TOML document holds there, or of the nearest enclosing table or array
/// element (a vertex's missing field points at the vertex).
pub(super) fn field_line(text: &str, field: &str) -> Option<usize> {
    let doc = Document::parse(text).ok()?;
    let span = find(doc.as_table(), &path_parts(field))?;
    Some(text[..span.start.min(text.len())].matches('\n').count() + 1)
}

/// `vertices.map.parallelism` → [vertices, map, parallelism];
/// `edges[1].to` → [edges, 1, to].
fn path_parts(field: &str) -> Vec<String> {
    field
        .replace('[', ".")
        .replace(']', "")
        .split('.')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

/// The span of the item at `path` under `table`, or of the deepest item
/// on the way that has one.
fn find(table: &Table, path: &[String]) -> Option<std::ops::Range<usize>> {
    let (key, rest) = path.split_first()?;
    let item = table.get(key)?;
    let own = item
        .span()
        .or_else(|| table.key(key).and_then(|k| k.span()));
    if rest.is_empty() {
        return own;
    }
    let deeper = match item {
        Item::Table(t) => find(t, rest),
        Item::ArrayOfTables(tables) => {
            let (selector, rest) = rest.split_first()?;
            let element = tables
                .iter()
                .find(|t| t.get("name").and_then(Item::as_str) == Some(selector.as_str()))
                .or_else(|| selector.parse().ok().and_then(|i: usize| tables.get(i)))?;
            find(element, rest).or_else(|| element.span())
        }
        Item::Value(toml_edit::Value::InlineTable(t)) => {
            let rest_item = t.get(&rest[0])?;
            rest_item.span()
        }
        _ => None,
    };
    deeper.or(own)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"name = "p"
[[vertices]]
name = "source"
kind = "source"
[[vertices]]
name = "map"
kind = "map"
parallelism = 0
[[edges]]
from = "source"
to = "map"
[network]
segment_size = "3KiB"
"#;

    #[test]
    fn user_text_is_shown_escaped_and_bounded() {
        assert_eq!(shown("a=1"), "a=1");
        assert_eq!(shown("name=\u{1b}[2J\nfake"), "name=\\u{1b}[2J\\nfake");
        let long = shown(&format!("{}x=1", "a.".repeat(30_000)));
        assert!(long.len() < 200, "{long}");
        assert!(
            long.starts_with("a.a.") && long.ends_with("a.x=1 (60003 characters)"),
            "{long}"
        );
    }

    #[test]
    fn serde_types_are_said_as_numbers() {
        assert_eq!(
            plain("invalid value: integer `-1`, expected u32\n"),
            "invalid value: integer `-1`, expected a whole number from 0 to 4294967295"
        );
        assert_eq!(
            plain("invalid type: string \"yes\", expected a boolean"),
            "invalid type: string \"yes\", expected true or false"
        );
        assert_eq!(plain("expected u64x"), "expected u64x");
    }

    #[test]
    fn values_are_found_on_their_line() {
        assert_eq!(field_line(TEXT, "network.segment_size"), Some(13));
        assert_eq!(field_line(TEXT, "vertices.map.parallelism"), Some(8));
        assert_eq!(field_line(TEXT, "vertices[1].parallelism"), Some(8));
        assert_eq!(field_line(TEXT, "edges[0].to"), Some(11));
        assert_eq!(field_line(TEXT, "name"), Some(1));
        // Not in the file: no line.
        assert_eq!(field_line(TEXT, "records.count"), None);
        assert_eq!(field_line("not toml [", "name"), None);
    }

    #[test]
    fn a_missing_field_of_a_vertex_points_at_the_vertex() {
        let line = field_line(TEXT, "vertices.source.parallelism").unwrap();
        assert!((2..=4).contains(&line), "{line}");
    }
}
