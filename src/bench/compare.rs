//! Holds a result against a baseline: per profile (and sweep point) and
//! figure, the change as a ratio with a confidence interval over the
//! repetitions, and a four-way verdict ([`super::verdict`]). Results whose
//! effective configuration differs are refused, naming the fields
//! ([`super::validate::same_config`]); figures out of range make a file bad
//! input ([`super::validate::repetitions`]).

use std::fmt::Write as _;

use serde_json::Value;

use super::figures::{self, Figure};
use super::report::thousands;
use super::result::{check_schema_version, ResultFile, RunResult, Stats, Status};
use super::testbed::Testbed;
use super::validate::{self, ConfigChanged, ConfigDifference, FigureError};
use super::verdict::{self, Judgement, Verdict};

/// How to judge.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Options {
    /// Minimum effect and confidence for measured figures.
    pub settings: verdict::Settings,
    /// Minimum effect for deterministic figures (instruction counts).
    pub exact_min_effect: f64,
    /// Compare results whose effective configurations differ.
    pub allow_config_change: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            settings: verdict::Settings::default(),
            exact_min_effect: verdict::DEFAULT_EXACT_MIN_EFFECT,
            allow_config_change: false,
        }
    }
}

/// Why two files cannot be compared: bad input, every one.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// Not a result this taskbench reads.
    #[error("{name}: {why}")]
    NotAResult {
        /// The file.
        name: String,
        /// Why.
        why: String,
    },
    /// A figure out of range or inconsistent with its counts.
    #[error("{name}: {error}")]
    Figure {
        /// The file.
        name: String,
        /// Which figure and why.
        error: FigureError,
    },
    /// The effective configurations differ.
    #[error("{what}: {error}")]
    Config {
        /// Profile (and sweep point).
        what: String,
        /// The differing fields.
        error: ConfigChanged,
    },
    /// Results that do not pair up (run vs sweep, no common point or figure).
    #[error("{0}")]
    Mismatch(String),
}

/// How one figure moved.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// Profile (and sweep point).
    pub what: String,
    /// Figure name.
    pub figure: &'static str,
    /// Baseline median.
    pub baseline: f64,
    /// Current median.
    pub current: f64,
    /// The verdict with its ratio and interval.
    pub judgement: Judgement,
}

/// A comparison: every figure, and what is worth a warning.
#[derive(Clone, Debug, Default)]
pub struct Comparison {
    /// Compared figures.
    pub changes: Vec<Change>,
    /// Points present on one side only.
    pub unmatched: Vec<String>,
    /// Testbed and status differences.
    pub warnings: Vec<String>,
    /// Configuration differences let through by `allow_config_change`.
    pub config_changes: Vec<ConfigDifference>,
}

impl Comparison {
    /// Whether any figure regressed.
    pub fn has_regression(&self) -> bool {
        self.count(Verdict::Regression) > 0
    }

    /// How many figures got `verdict`.
    pub fn count(&self, verdict: Verdict) -> usize {
        self.changes
            .iter()
            .filter(|c| c.judgement.verdict == verdict)
            .count()
    }

    /// Whether every figure passes (see [`Verdict::passes`]).
    pub fn passes(&self, strict: bool) -> bool {
        self.changes
            .iter()
            .all(|c| c.judgement.verdict.passes(strict))
    }
}

fn load(name: &str, text: &str) -> Result<ResultFile, CompareError> {
    let bad = |why: String| CompareError::NotAResult {
        name: name.into(),
        why,
    };
    let value: Value =
        serde_json::from_str(text).map_err(|e| bad(format!("not a JSON result: {e}")))?;
    check_schema_version(&value).map_err(bad)?;
    serde_json::from_value(value).map_err(|e| {
        bad(format!(
            "does not match the result schema (a run or a sweep, told by its kind): {e}"
        ))
    })
}

/// The profile as it ran, without what names or counts it rather than
/// configures the job: name, description, Flink's reference figure, the
/// sweep axes and how many (warm-up) repetitions were measured.
fn effective_config(run: &RunResult) -> Value {
    let mut v = serde_json::to_value(&run.profile).expect("profiles serialize");
    if let Some(o) = v.as_object_mut() {
        for key in ["name", "description", "flink", "sweep"] {
            o.remove(key);
        }
        if let Some(m) = o.get_mut("measure").and_then(Value::as_object_mut) {
            m.remove("warmup");
            m.remove("repetitions");
        }
    }
    v
}

fn compare_runs(
    names: (&str, &str),
    what: &str,
    base: &RunResult,
    cur: &RunResult,
    options: &Options,
    out: &mut Comparison,
) -> Result<(), CompareError> {
    let figure_error = |name: &str| {
        let name = name.to_string();
        move |error| CompareError::Figure { name, error }
    };
    validate::repetitions(&base.repetitions).map_err(figure_error(names.0))?;
    validate::repetitions(&cur.repetitions).map_err(figure_error(names.1))?;
    let differences = validate::same_config(
        &effective_config(base),
        &effective_config(cur),
        options.allow_config_change,
    )
    .map_err(|error| CompareError::Config {
        what: what.into(),
        error,
    })?;
    out.config_changes.extend(differences);
    let (bf, cf) = (figures::of_run(base), figures::of_run(cur));
    let mut judged = 0;
    for b in &bf {
        let Some(c) = cf.iter().find(|c| c.name == b.name) else {
            continue;
        };
        let judgement = judge(b, c, options).map_err(figure_error(names.1))?;
        out.changes.push(Change {
            what: what.into(),
            figure: b.name,
            baseline: Stats::of(&b.values).median,
            current: Stats::of(&c.values).median,
            judgement,
        });
        judged += 1;
    }
    if judged == 0 {
        return Err(CompareError::Mismatch(format!(
            "{what}: the results share no figure (one counts instructions, the other times?)"
        )));
    }
    Ok(())
}

fn judge(b: &Figure, c: &Figure, options: &Options) -> Result<Judgement, FigureError> {
    if b.exact && c.exact {
        let settings = verdict::Settings {
            min_effect: options.exact_min_effect,
            ..options.settings
        };
        verdict::judge_exact(
            &b.values,
            &c.values,
            b.direction,
            settings,
            verdict::EXACT_TOLERANCE,
        )
    } else {
        verdict::judge(&b.values, &c.values, b.direction, options.settings)
    }
}

/// A warning when two runs come from different engines (or Flink
/// versions, or clusters): their difference is a ratio, not a regression.
fn engine_warning(base: &RunResult, cur: &RunResult) -> Option<String> {
    let name = |r: &RunResult| match &r.flink {
        Some(f) => format!("Flink {} ({})", f.flink_version, f.cluster),
        None => format!("{:?}", r.engine).to_lowercase(),
    };
    let (b, c) = (name(base), name(cur));
    (b != c).then(|| format!("engines differ: {b} vs {c}; read the change as a ratio between them"))
}

/// A warning when a result did not run to its end.
fn unfinished(name: &str, status: Status) -> Option<String> {
    (status != Status::Complete).then(|| {
        format!(
            "{name} is not a complete result (status \"{}\"): it holds what was measured before it stopped",
            status.as_str()
        )
    })
}

fn testbed_warnings(base: &Testbed, cur: &Testbed) -> Vec<String> {
    let mut w = Vec::new();
    let mut differs = |field: &str, a: String, b: String| {
        if a != b {
            w.push(format!("testbeds differ in {field}: {a} vs {b}"));
        }
    };
    differs("cpu_model", base.cpu_model.clone(), cur.cpu_model.clone());
    differs(
        "logical_cores",
        base.logical_cores.to_string(),
        cur.logical_cores.to_string(),
    );
    differs(
        "virtualized",
        base.virtualized.to_string(),
        cur.virtualized.to_string(),
    );
    differs(
        "build_profile",
        base.build_profile.clone(),
        cur.build_profile.clone(),
    );
    differs("pinning", base.pinning.clone(), cur.pinning.clone());
    w
}

/// Compares `current` against `baseline` (result files' text; `names` for
/// messages). Both must be runs or both sweeps.
pub fn compare(
    names: (&str, &str),
    baseline: &str,
    current: &str,
    options: &Options,
) -> Result<Comparison, CompareError> {
    let mut out = Comparison::default();
    let (base, cur) = (load(names.0, baseline)?, load(names.1, current)?);
    match (base, cur) {
        (ResultFile::Run(b), ResultFile::Run(c)) => {
            out.warnings = testbed_warnings(&b.testbed, &c.testbed);
            out.warnings.extend(engine_warning(&b, &c));
            out.warnings.extend(unfinished(names.0, b.status));
            out.warnings.extend(unfinished(names.1, c.status));
            compare_runs(names, &c.profile.name, &b, &c, options, &mut out)?;
        }
        (ResultFile::Sweep(b), ResultFile::Sweep(c)) => {
            out.warnings = testbed_warnings(&b.testbed, &c.testbed);
            out.warnings.extend(unfinished(names.0, b.status));
            out.warnings.extend(unfinished(names.1, c.status));
            for point in &c.points {
                let label = format!("{} {}", c.profile.name, point.overrides.join(" "));
                match b.points.iter().find(|p| p.overrides == point.overrides) {
                    Some(p) => {
                        compare_runs(names, &label, &p.result, &point.result, options, &mut out)?
                    }
                    None => out.unmatched.push(label),
                }
            }
            for point in &b.points {
                if !c.points.iter().any(|p| p.overrides == point.overrides) {
                    out.unmatched.push(format!(
                        "{} {} (baseline only)",
                        b.profile.name,
                        point.overrides.join(" ")
                    ));
                }
            }
            if out.changes.is_empty() {
                return Err(CompareError::Mismatch(
                    "no sweep point was measured in both results; nothing to compare".into(),
                ));
            }
        }
        _ => {
            return Err(CompareError::Mismatch(
                "one file is a run and the other a sweep; compare like with like".into(),
            ))
        }
    }
    Ok(out)
}

/// `ratio` as a signed percentage.
fn pct(ratio: f64) -> String {
    format!("{:+.1}%", 100.0 * (ratio - 1.0))
}

/// The comparison as a table, with a note under every inconclusive figure.
pub fn table(c: &Comparison) -> String {
    let mut out = String::new();
    for w in &c.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    for d in &c.config_changes {
        let shown = |v: &Option<Value>| v.as_ref().map_or("(unset)".into(), Value::to_string);
        let _ = writeln!(
            out,
            "warning: configurations differ in {}: {} vs {} (--allow-config-change)",
            d.path,
            shown(&d.baseline),
            shown(&d.candidate)
        );
    }
    let width = c.changes.iter().map(|x| x.what.len()).max().unwrap_or(7);
    let width = width.max(7);
    let _ = writeln!(
        out,
        "{:<width$}  {:<23}  {:>14}  {:>14}  {:>8}  {:<22}  verdict",
        "profile", "figure", "baseline", "current", "change", "interval"
    );
    for x in &c.changes {
        let j = &x.judgement;
        let interval = j.interval.map_or("(none)".into(), |(lo, hi)| {
            format!("[{}, {}] {:.0}%", pct(lo), pct(hi), 100.0 * j.confidence)
        });
        let verdict = match j.verdict {
            Verdict::Regression => "REGRESSION",
            Verdict::Improvement => "improvement",
            Verdict::Unchanged => "unchanged",
            Verdict::Inconclusive => "inconclusive",
        };
        let _ = writeln!(
            out,
            "{:<width$}  {:<23}  {:>14}  {:>14}  {:>8}  {:<22}  {verdict}",
            x.what,
            x.figure,
            figure(x.baseline),
            figure(x.current),
            pct(j.ratio),
            interval,
        );
        if let Some(more) = j.more {
            let (lead, tail) = if more.at_least {
                ("at least", "for an interval to exist")
            } else {
                ("about", "would decide")
            };
            let _ = writeln!(
                out,
                "{:<width$}  too noisy: {lead} {} more repetitions a side {tail}",
                "", more.repetitions
            );
        }
    }
    for u in &c.unmatched {
        let _ = writeln!(out, "{u}: not in both results");
    }
    let _ = writeln!(
        out,
        "minimum effect {:.1} % (instruction counts {:.1} %)",
        c.changes
            .iter()
            .find(|x| !x.figure.starts_with("instructions"))
            .map_or(100.0 * verdict::DEFAULT_MIN_EFFECT, |x| 100.0
                * x.judgement.min_effect),
        c.changes
            .iter()
            .find(|x| x.figure.starts_with("instructions"))
            .map_or(100.0 * verdict::DEFAULT_EXACT_MIN_EFFECT, |x| 100.0
                * x.judgement.min_effect),
    );
    out
}

/// A figure with separators, or with decimals when small.
fn figure(v: f64) -> String {
    if v.abs() >= 1000.0 {
        thousands(v)
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_that_are_not_results_are_refused() {
        let err = |text: &str| {
            compare(("a", "b"), text, text, &Options::default())
                .unwrap_err()
                .to_string()
        };
        assert!(err("not json").contains("not a JSON result"));
        assert!(err("{\"schema_version\": 99}").contains("schema_version 99"));
        assert!(err("{\"schema_version\": 1, \"kind\": \"x\"}").contains("kind"));
        assert!(err("{\"schema_version\": 1, \"kind\": \"run\"}").contains("does not match"));
    }
}
