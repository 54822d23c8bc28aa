//! Whether two results may be compared at all: every figure in range and
//! consistent with the counts it came from, and the same effective
//! configuration (the profile as run, overrides applied) on both sides.

use serde::Serialize;
use serde_json::Value;

use super::result::Repetition;

/// Relative tolerance between a stored rate and the counts it came from:
/// generous for rounding through JSON, tight enough to catch a rate scaled
/// by hand.
pub const RATE_TOLERANCE: f64 = 1e-3;

/// A figure that cannot be measured as it stands: the input is bad.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum FigureError {
    /// No value at all.
    #[error("{field} has no values; a result needs at least one measured repetition")]
    Empty {
        /// Where, e.g. `repetitions[2].records_per_sec`.
        field: String,
    },
    /// NaN, infinite, negative (or zero where a ratio is taken).
    #[error("{field} is {}, out of range: {why}", compact(*value))]
    OutOfRange {
        /// Where.
        field: String,
        /// The value found.
        value: f64,
        /// What the range is.
        why: &'static str,
    },
    /// A rate that does not follow from the counts it is a rate of.
    #[error(
        "{field} is {} but {counts} give {}; the result was edited or is corrupt",
        compact(*value),
        compact(*expected)
    )]
    Inconsistent {
        /// Where.
        field: String,
        /// The stored rate.
        value: f64,
        /// The rate recomputed from the counts.
        expected: f64,
        /// Which counts, e.g. `records / seconds`.
        counts: &'static str,
    },
}

/// `v` as written, or in exponent form when that would run past 15
/// digits (a figure of 1e308 is not 309 digits of message).
fn compact(v: f64) -> String {
    if v.is_finite() && v != 0.0 && !(1e-6..1e15).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        v.to_string()
    }
}

/// Checks values a ratio will be taken of: finite and positive.
pub fn positive(field: &str, values: &[f64]) -> Result<(), FigureError> {
    if values.is_empty() {
        return Err(FigureError::Empty {
            field: field.into(),
        });
    }
    for (i, &value) in values.iter().enumerate() {
        if !value.is_finite() || value <= 0.0 {
            return Err(FigureError::OutOfRange {
                field: format!("{field}[{i}]"),
                value,
                why: "a figure compared as a ratio must be finite and positive",
            });
        }
    }
    Ok(())
}

fn non_negative(field: String, value: f64) -> Result<(), FigureError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(FigureError::OutOfRange {
            field,
            value,
            why: "a measured figure must be finite and not negative",
        })
    }
}

fn rate(field: String, value: f64, expected: f64, counts: &'static str) -> Result<(), FigureError> {
    if (value - expected).abs() <= RATE_TOLERANCE * expected.abs().max(f64::MIN_POSITIVE) {
        Ok(())
    } else {
        Err(FigureError::Inconsistent {
            field,
            value,
            expected,
            counts,
        })
    }
}

/// Checks every repetition's figures: in range, and each rate equal to its
/// counts over its seconds within [`RATE_TOLERANCE`].
pub fn repetitions(reps: &[Repetition]) -> Result<(), FigureError> {
    if reps.is_empty() {
        return Err(FigureError::Empty {
            field: "repetitions".into(),
        });
    }
    for (i, r) in reps.iter().enumerate() {
        let at = |name: &str| format!("repetitions[{i}].{name}");
        for (name, value) in [
            ("seconds", r.seconds),
            ("records_per_sec", r.records_per_sec),
            ("records_per_ms", r.records_per_ms),
            ("bytes_per_sec", r.bytes_per_sec),
            ("overhead_ms", r.overhead_ms),
        ] {
            non_negative(at(name), value)?;
        }
        if let Some(cores) = r.cores_busy {
            non_negative(at("cores_busy"), cores)?;
        }
        if let Some(ns) = r.core_ns_per_record {
            non_negative(at("core_ns_per_record"), ns)?;
        }
        if r.seconds > 0.0 {
            let per_sec = r.records as f64 / r.seconds;
            rate(
                at("records_per_sec"),
                r.records_per_sec,
                per_sec,
                "records / seconds",
            )?;
            rate(
                at("records_per_ms"),
                r.records_per_ms,
                per_sec / 1e3,
                "records / seconds / 1000",
            )?;
            let bytes = r.bytes as f64 / r.seconds;
            rate(
                at("bytes_per_sec"),
                r.bytes_per_sec,
                bytes,
                "bytes / seconds",
            )?;
        } else {
            // No time measured: no rate can be anything but 0.
            for (name, value) in [
                ("records_per_sec", r.records_per_sec),
                ("records_per_ms", r.records_per_ms),
                ("bytes_per_sec", r.bytes_per_sec),
            ] {
                rate(at(name), value, 0.0, "0 seconds")?;
            }
        }
    }
    Ok(())
}

/// One setting that differs between two effective configurations.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConfigDifference {
    /// Dotted path, e.g. `network.buffer_timeout` or `vertices[1].parallelism`.
    pub path: String,
    /// The baseline's value (`None`: not set there).
    pub baseline: Option<Value>,
    /// The candidate's value (`None`: not set there).
    pub candidate: Option<Value>,
}

/// Two results ran different configurations, so their figures measure
/// different things.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error(
    "the results ran different configurations ({}); compare them anyway with --allow-config-change",
    .differences.iter().map(|d| d.path.as_str()).collect::<Vec<_>>().join(", ")
)]
pub struct ConfigChanged {
    /// Every differing setting.
    pub differences: Vec<ConfigDifference>,
}

/// Every setting that differs between two configurations (JSON values of
/// the profiles as run), by dotted path, in the order of `baseline`'s keys
/// then the candidate's extra ones.
pub fn config_diff(baseline: &Value, candidate: &Value) -> Vec<ConfigDifference> {
    let mut out = Vec::new();
    walk(String::new(), Some(baseline), Some(candidate), &mut out);
    out
}

fn walk(path: String, a: Option<&Value>, b: Option<&Value>, out: &mut Vec<ConfigDifference>) {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            for (key, value) in x {
                walk(join(key), Some(value), y.get(key), out);
            }
            for (key, value) in y.iter().filter(|(k, _)| !x.contains_key(*k)) {
                walk(join(key), None, Some(value), out);
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) => {
            for i in 0..x.len().max(y.len()) {
                walk(format!("{path}[{i}]"), x.get(i), y.get(i), out);
            }
        }
        _ if a == b => {}
        _ => out.push(ConfigDifference {
            path,
            baseline: a.cloned(),
            candidate: b.cloned(),
        }),
    }
}

/// Refuses two configurations that differ unless `allow_change`; allowed,
/// the differences come back to be reported beside the verdict.
pub fn same_config(
    baseline: &Value,
    candidate: &Value,
    allow_change: bool,
) -> Result<Vec<ConfigDifference>, ConfigChanged> {
    let differences = config_diff(baseline, candidate);
    if differences.is_empty() || allow_change {
        Ok(differences)
    } else {
        Err(ConfigChanged { differences })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use super::*;
    use crate::bench::Profile;

    fn rep(records: u64, seconds: f64) -> Repetition {
        let per_sec = records as f64 / seconds;
        serde_json::from_value(json!({
            "index": 0, "records": records, "bytes": records * 8, "checksum": 0,
            "seconds": seconds, "records_per_sec": per_sec, "records_per_ms": per_sec / 1e3,
            "bytes_per_sec": per_sec * 8.0, "overhead_ms": 1.0, "cores_busy": 1.5,
            "allocations": 0, "pools_full": true, "tasks": []
        }))
        .unwrap()
    }

    #[test]
    fn consistent_repetitions_pass() {
        assert_eq!(repetitions(&[rep(3000, 0.01), rep(3000, 0.02)]), Ok(()));
    }

    #[test]
    fn out_of_range_figures_name_their_field() {
        let mut bad = rep(3000, 0.01);
        bad.overhead_ms = -1.0;
        let err = repetitions(&[rep(3000, 0.01), bad]).unwrap_err();
        assert!(
            matches!(&err, FigureError::OutOfRange { field, .. } if field == "repetitions[1].overhead_ms")
        );
        let mut bad = rep(3000, 0.01);
        bad.cores_busy = Some(f64::NAN);
        let err = repetitions(&[bad]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("repetitions[0].cores_busy is NaN"),
            "{err}"
        );
        let mut bad = rep(3000, 0.01);
        bad.bytes_per_sec = f64::INFINITY;
        assert!(matches!(
            repetitions(&[bad]),
            Err(FigureError::OutOfRange { .. })
        ));
        assert!(matches!(repetitions(&[]), Err(FigureError::Empty { .. })));
    }

    #[test]
    fn huge_and_tiny_figures_are_shown_in_exponent_form() {
        assert_eq!(compact(1e308), "1e308");
        assert_eq!(compact(-2.5e-9), "-2.5e-9");
        assert_eq!(compact(300_000.0), "300000");
        assert_eq!(compact(f64::NAN), "NaN");
    }

    #[test]
    fn rates_without_a_measured_time_are_inconsistent() {
        let mut bad = rep(3000, 0.01);
        bad.seconds = 0.0;
        let err = repetitions(&[bad]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "repetitions[0].records_per_sec is 300000 but 0 seconds give 0; the result was edited or is corrupt"
        );
        let mut none = rep(0, 1.0);
        none.seconds = 0.0;
        assert_eq!(repetitions(&[none]), Ok(()));
    }

    #[test]
    fn a_rate_divided_by_hand_is_inconsistent() {
        // The second failing input divides the rates by 50; unless
        // the seconds are scaled to match, the file is bad input (and when
        // they are, `verdict` calls it a regression).
        let mut bad = rep(3000, 0.01);
        bad.records_per_sec /= 50.0;
        let err = repetitions(&[bad]).unwrap_err();
        assert_eq!(
            err,
            FigureError::Inconsistent {
                field: "repetitions[0].records_per_sec".into(),
                value: 6000.0,
                expected: 300_000.0,
                counts: "records / seconds",
            }
        );
        let mut bad = rep(3000, 0.01);
        bad.records_per_ms *= 1.01;
        assert!(
            matches!(repetitions(&[bad]), Err(FigureError::Inconsistent { field, .. }) if field.ends_with("records_per_ms"))
        );
    }

    #[test]
    fn ratios_need_positive_values() {
        assert_eq!(positive("x", &[1.0, 2.0]), Ok(()));
        for v in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(
                matches!(positive("x", &[1.0, v]), Err(FigureError::OutOfRange { field, .. }) if field == "x[1]")
            );
        }
        assert!(matches!(positive("x", &[]), Err(FigureError::Empty { .. })));
    }

    #[test]
    fn config_diff_lists_dotted_paths() {
        let a = json!({"name": "q", "network": {"buffer_timeout": "100ms", "segment": 32768},
                       "vertices": [{"p": 1}, {"p": 2}]});
        let b = json!({"name": "q", "network": {"buffer_timeout": "0ms", "segment": 32768},
                       "vertices": [{"p": 1}, {"p": 4}, {"p": 1}], "extra": true});
        let paths: Vec<String> = config_diff(&a, &b).into_iter().map(|d| d.path).collect();
        assert_eq!(
            paths,
            [
                "network.buffer_timeout",
                "vertices[1].p",
                "vertices[2]",
                "extra"
            ]
        );
        assert!(config_diff(&a, &a).is_empty());
    }

    #[test]
    fn a_changed_buffer_timeout_is_refused_by_name() {
        // The first failing input: quickstart against quickstart
        // with `--set network.buffer_timeout=0ms`.
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/quickstart.toml");
        let base = Profile::from_file(&path, &[]).unwrap();
        let cur = Profile::from_file(&path, &["network.buffer_timeout=0ms".into()]).unwrap();
        let (a, b) = (
            serde_json::to_value(&base).unwrap(),
            serde_json::to_value(&cur).unwrap(),
        );
        let err = same_config(&a, &b, false).unwrap_err();
        assert_eq!(err.differences.len(), 1);
        assert_eq!(err.differences[0].path, "network.buffer_timeout");
        assert!(err.to_string().contains("network.buffer_timeout"), "{err}");
        assert!(err.to_string().contains("--allow-config-change"));
        assert_eq!(same_config(&a, &b, true).unwrap().len(), 1);
        assert_eq!(same_config(&a, &a, false), Ok(vec![]));
    }
}
