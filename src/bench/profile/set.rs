//! The `--set path=value` language: a dotted path into the profile's TOML
//! (array elements chosen by `name` or index) and a TOML value, or else a
//! bare string. Paths and values are bounded in depth, so no assignment can
//! exhaust the stack.

use serde::Deserialize;

use super::error::ProfileError;
use super::Profile;

/// The most parts a `--set` path may have; the longest real one has three
/// (`vertices.source.parallelism`).
pub const MAX_PATH_PARTS: usize = 8;

/// The deepest nesting of arrays and inline tables a value may have.
const MAX_VALUE_DEPTH: usize = 32;

/// Top-level fields that are tables: they take fields, not a value.
/// The profile's tables, each with a field to name in the hint.
const TABLES: [(&str, &str); 7] = [
    ("flink", "ops_per_ms"),
    ("records", "count"),
    ("network", "segment_size"),
    ("network.debloat", "enabled"),
    ("runtime", "wait"),
    ("measure", "repetitions"),
    ("checkpoint", "interval"),
];

/// A TOML value as `--set` takes it (strings unquoted).
pub fn value_text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The path an assignment sets, normalised (`edges.0.to`), if it has one.
pub(super) fn path_of(assignment: &str) -> Option<String> {
    let (path, _) = assignment.split_once('=')?;
    Some(
        path.trim()
            .split('.')
            .map(str::trim)
            .collect::<Vec<_>>()
            .join("."),
    )
}

/// `path` (normalised, as [`path_of`] gives it) with every array element
/// chosen by name written as its index instead (`vertices.map.parallelism`
/// is `vertices.1.parallelism` when `map` is the second vertex), so two
/// spellings of one field compare equal. A part that chooses nothing in
/// `table` is kept as written.
pub(super) fn canonical_path(table: &toml::Table, path: &str) -> String {
    let mut at = Some(table);
    let mut items: Option<&Vec<toml::Value>> = None;
    let mut out: Vec<String> = Vec::new();
    for part in path.split('.') {
        if let Some(list) = items.take() {
            let index = list
                .iter()
                .position(|item| item.get("name").and_then(toml::Value::as_str) == Some(part))
                .or_else(|| part.parse::<usize>().ok().filter(|&i| i < list.len()));
            out.push(index.map_or_else(|| part.to_string(), |i| i.to_string()));
            at = index.and_then(|i| list[i].as_table());
            continue;
        }
        out.push(part.to_string());
        match at.and_then(|t| t.get(part)) {
            Some(toml::Value::Table(t)) => at = Some(t),
            Some(toml::Value::Array(list)) => (at, items) = (None, Some(list)),
            _ => at = None,
        }
    }
    out.join(".")
}

/// Splits and checks `path=value`: the path's parts and the value.
fn parse(assignment: &str) -> Result<(Vec<&str>, toml::Value), String> {
    let (path, text) = assignment
        .split_once('=')
        .ok_or("expected path=value, e.g. network.segment_size=64KiB")?;
    let path: Vec<&str> = path.trim().split('.').map(str::trim).collect();
    if path.len() > MAX_PATH_PARTS {
        return Err(format!(
            "the path has {} parts; a profile's fields are at most {MAX_PATH_PARTS} deep (e.g. vertices.source.parallelism)",
            path.len()
        ));
    }
    if path.iter().any(|p| p.is_empty()) {
        return Err("the path has an empty part".into());
    }
    if path.iter().any(|p| p.chars().any(char::is_control)) {
        return Err("the path has a control character".into());
    }
    let joined = path.join(".");
    if let Some((table, field)) = TABLES.iter().find(|(t, _)| *t == joined) {
        return Err(format!(
            "{table} is a table: set one of its fields, e.g. {table}.{field}=…"
        ));
    }
    let text = text.trim();
    if nesting(text) > MAX_VALUE_DEPTH {
        return Err(format!(
            "the value nests arrays or tables more than {MAX_VALUE_DEPTH} deep"
        ));
    }
    let value = match toml::from_str::<toml::Table>(&format!("v = {text}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
    {
        Some(value) => value,
        // A number TOML cannot hold would otherwise become the string
        // "18446744073709551615" and be refused as a string.
        None if is_integer(text) => {
            return Err(format!(
                "{text} is beyond every field's range (no field takes more than {})",
                i64::MAX
            ))
        }
        None => toml::Value::String(text.to_string()),
    };
    Ok((path, value))
}

/// Whether `text` is written as a whole number (`-12`, `1_000`).
fn is_integer(text: &str) -> bool {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    digits.starts_with(|c: char| c.is_ascii_digit())
        && digits.chars().all(|c| c.is_ascii_digit() || c == '_')
}

/// How deep `[` and `{` nest in `text`, outside strings.
fn nesting(text: &str) -> usize {
    let (mut depth, mut deepest, mut quote, mut escaped) = (0usize, 0usize, None, false);
    for c in text.chars() {
        match (quote, c) {
            (Some('"'), '\\') if !escaped => {
                escaped = true;
                continue;
            }
            (Some(q), c) if c == q && !escaped => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[' | '{') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (None, ']' | '}') => depth = depth.saturating_sub(1),
            _ => {}
        }
        escaped = false;
    }
    deepest
}

/// Applies one `path=value` assignment to a profile's TOML table. The value
/// is read as TOML (`4`, `true`, `[0, 1]`, `"x"`), or else as a bare string.
pub fn apply_override(table: &mut toml::Table, assignment: &str) -> Result<(), ProfileError> {
    let fail = |message: String| ProfileError::Override {
        assignment: assignment.to_string(),
        message,
    };
    let (path, value) = parse(assignment).map_err(fail)?;
    set_path(table, &path, value).map_err(fail)
}

fn set_path(table: &mut toml::Table, path: &[&str], value: toml::Value) -> Result<(), String> {
    let (key, rest) = path.split_first().expect("paths are not empty");
    if rest.is_empty() {
        table.insert((*key).to_string(), value);
        return Ok(());
    }
    let entry = table
        .entry((*key).to_string())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    match entry {
        toml::Value::Table(t) => set_path(t, rest, value),
        toml::Value::Array(items) => {
            // Array elements are chosen by name, or else by index.
            let (selector, rest) = rest.split_first().expect("rest is not empty");
            let at = items
                .iter()
                .position(|item| item.get("name").and_then(toml::Value::as_str) == Some(*selector))
                .or_else(|| selector.parse::<usize>().ok().filter(|&i| i < items.len()))
                .ok_or_else(|| format!("'{key}' has no element named or numbered '{selector}'"))?;
            if rest.is_empty() {
                return Err(format!(
                    "name a field of {key}.{selector}, e.g. {key}.{selector}.parallelism"
                ));
            }
            match &mut items[at] {
                toml::Value::Table(t) => set_path(t, rest, value),
                _ => Err(format!("{key}.{selector} is not a table")),
            }
        }
        _ => Err(format!("'{key}' is a value, not a table")),
    }
}

/// The profile of `text` with every assignment applied in order. An
/// assignment that cannot apply is named; so is the first one that leaves
/// the profile ill-typed (the deserializer's message alone may not say
/// which vertex or edge it is in), and an earlier one that replaced a
/// table a later one sets a field of.
pub(super) fn apply_all(
    text: &str,
    origin: &str,
    overrides: &[String],
) -> Result<Profile, ProfileError> {
    let base: toml::Table = toml::from_str(text).map_err(|e| ProfileError::Parse {
        origin: origin.to_string(),
        message: e.to_string().trim_end().to_string(),
    })?;
    let mut table = base.clone();
    for (k, assignment) in overrides.iter().enumerate() {
        if let Err(e) = apply_override(&mut table, assignment) {
            let path = path_of(assignment).unwrap_or_default();
            let replaced = overrides[..k].iter().find(|earlier| {
                path_of(earlier).is_some_and(|p| path.starts_with(&format!("{p}.")))
            });
            return Err(match replaced {
                Some(earlier) => ProfileError::Override {
                    assignment: earlier.clone(),
                    message: format!(
                        "replaces what --set {} sets a field of; set the fields one by one",
                        super::error::shown(assignment)
                    ),
                },
                None => e,
            });
        }
    }
    Profile::deserialize(toml::Value::Table(table)).map_err(|e| {
        let mut table = base;
        let culprit = overrides.iter().find(|assignment| {
            apply_override(&mut table, assignment).is_ok()
                && Profile::deserialize(toml::Value::Table(table.clone())).is_err()
        });
        ProfileError::Override {
            assignment: culprit
                .cloned()
                .unwrap_or_else(|| overrides.join(" --set ")),
            message: super::error::plain(&e.to_string()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_as_toml_or_else_as_text() {
        let mut t = toml::Table::new();
        apply_override(&mut t, "a.b=4").unwrap();
        apply_override(&mut t, "a.c=[0, 1]").unwrap();
        apply_override(&mut t, "a.d=64KiB").unwrap();
        assert_eq!(t["a"]["b"].as_integer(), Some(4));
        assert_eq!(t["a"]["c"].as_array().unwrap().len(), 2);
        assert_eq!(t["a"]["d"].as_str(), Some("64KiB"));
    }

    #[test]
    fn deep_paths_and_values_are_refused_not_recursed_into() {
        let mut t = toml::Table::new();
        let deep = format!("{}x=1", "a.".repeat(30_000));
        let err = apply_override(&mut t, &deep).unwrap_err().to_string();
        assert!(err.contains("30001 parts"), "{err}");
        let nested = format!("a={}{}", "[".repeat(30_000), "]".repeat(30_000));
        let err = apply_override(&mut t, &nested).unwrap_err().to_string();
        assert!(err.contains("more than 32 deep"), "{err}");
        // Brackets inside strings do not count.
        apply_override(&mut t, &format!("a.s=\"{}\"", "[".repeat(100))).unwrap();
    }

    #[test]
    fn numbers_toml_cannot_hold_are_refused_as_numbers() {
        let mut t = toml::Table::new();
        for big in [
            "18446744073709551615",
            "-99999999999999999999",
            "1_000_000_000_000_000_000_000",
        ] {
            let err = apply_override(&mut t, &format!("records.count={big}"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("beyond every field's range"), "{err}");
        }
        // Not numbers: bare strings, as before.
        apply_override(&mut t, "a.b=12abc").unwrap();
        assert_eq!(t["a"]["b"].as_str(), Some("12abc"));
    }

    #[test]
    fn a_table_takes_fields_not_a_value() {
        let mut t = toml::Table::new();
        let err = apply_override(&mut t, "measure=1").unwrap_err().to_string();
        assert!(
            err.contains("measure is a table") && err.contains("measure.repetitions"),
            "{err}"
        );
    }
}
