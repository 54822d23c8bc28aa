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
    #[error("--set {assignment}: {message}")]
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
    #[error("sweep point {point}: {source}")]
    SweepPoint {
        /// The point's assignments.
        point: String,
        /// Why it is refused.
        source: Box<ProfileError>,
    },
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
            message: e.to_string().trim_end().to_string(),
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
