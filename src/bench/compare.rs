//! Holds a result against a baseline: per profile (and sweep point), the
//! change of the median throughput and p99 latency, judged against the
//! noise of both runs as flink-benchmarks' regression check does (a change
//! counts when it exceeds max(threshold, 2 × relative standard deviation)).

use std::fmt::Write as _;

use serde_json::Value;

use super::report::thousands;
use super::result::{Repetition, ResultFile, RunResult, Stats, Status, SCHEMA_VERSION};
use super::testbed::Testbed;

/// How one figure moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Worse by more than the noise.
    Regression,
    /// Better by more than the noise.
    Improvement,
    /// Within the noise.
    Unchanged,
}

/// One compared figure.
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
    /// Relative change in percent (positive = larger).
    pub change_pct: f64,
    /// The noise band in percent.
    pub noise_pct: f64,
    /// The judgement (for latency, larger is worse).
    pub verdict: Verdict,
}

/// A comparison: every figure, and testbed differences worth a warning.
#[derive(Clone, Debug, Default)]
pub struct Comparison {
    /// Compared figures.
    pub changes: Vec<Change>,
    /// Points present on one side only.
    pub unmatched: Vec<String>,
    /// Testbed differences (results from different machines or builds).
    pub warnings: Vec<String>,
}

impl Comparison {
    /// Whether any figure regressed.
    pub fn has_regression(&self) -> bool {
        self.changes
            .iter()
            .any(|c| c.verdict == Verdict::Regression)
    }
}

fn load(name: &str, text: &str) -> Result<ResultFile, String> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("{name} is not a JSON result: {e}"))?;
    let version = value.get("schema_version").and_then(Value::as_u64);
    if version != Some(u64::from(SCHEMA_VERSION)) {
        return Err(format!(
            "{name} has schema_version {}, this taskbench reads {SCHEMA_VERSION}",
            version.map_or("(none)".into(), |v| v.to_string())
        ));
    }
    serde_json::from_value(value).map_err(|e| {
        format!("{name} does not match the result schema (a run or a sweep, told by its kind): {e}")
    })
}

fn judge(
    what: &str,
    figure: &'static str,
    base: (f64, f64),
    cur: (f64, f64),
    threshold_pct: f64,
    higher_is_better: bool,
) -> Change {
    let (baseline, base_rsd) = base;
    let (current, cur_rsd) = cur;
    let change_pct = if baseline == 0.0 {
        0.0
    } else {
        100.0 * (current - baseline) / baseline
    };
    let noise_pct = threshold_pct.max(2.0 * base_rsd.max(cur_rsd));
    let better = if higher_is_better {
        change_pct
    } else {
        -change_pct
    };
    let verdict = if better < -noise_pct {
        Verdict::Regression
    } else if better > noise_pct {
        Verdict::Improvement
    } else {
        Verdict::Unchanged
    };
    Change {
        what: what.to_string(),
        figure,
        baseline,
        current,
        change_pct,
        noise_pct,
        verdict,
    }
}

/// The relative spread (%) of the repetitions' p99 latencies, if they
/// were measured.
fn p99_spread(repetitions: &[Repetition]) -> Option<f64> {
    let p99s: Vec<f64> = repetitions
        .iter()
        .filter_map(|r| r.latency_ns.map(|l| l.p99 as f64))
        .collect();
    (!p99s.is_empty()).then(|| Stats::of(&p99s).rsd_pct)
}

fn compare_runs(
    what: &str,
    base: &RunResult,
    cur: &RunResult,
    threshold_pct: f64,
) -> Result<Vec<Change>, String> {
    let (Some(bs), Some(cs)) = (&base.summary, &cur.summary) else {
        return Err("a result has no summary (nothing was measured)".into());
    };
    let mut out = vec![judge(
        what,
        "records/ms",
        (bs.records_per_ms.median, bs.records_per_ms.rsd_pct),
        (cs.records_per_ms.median, cs.records_per_ms.rsd_pct),
        threshold_pct,
        true,
    )];
    if let (Some(b), Some(c)) = (bs.latency_ns, cs.latency_ns) {
        // The summary's p99 is over all repetitions' samples; its noise is
        // the spread of the repetitions' own p99s.
        out.push(judge(
            what,
            "p99 latency ns",
            (b.p99 as f64, p99_spread(&base.repetitions).unwrap_or(0.0)),
            (c.p99 as f64, p99_spread(&cur.repetitions).unwrap_or(0.0)),
            threshold_pct,
            false,
        ));
    }
    Ok(out)
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
            "{name} is not a complete result (status {}): it holds what was measured before it stopped",
            serde_json::to_value(status).map_or_else(|_| "?".into(), |v| v.to_string())
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
    threshold_pct: f64,
) -> Result<Comparison, String> {
    let mut comparison = Comparison::default();
    let (base, cur) = (load(names.0, baseline)?, load(names.1, current)?);
    let profiles = |b: &str, c: &str| {
        if b == c {
            Ok(())
        } else {
            Err(format!(
                "the results are of different profiles ({b} vs {c}); compare results of one profile"
            ))
        }
    };
    match (base, cur) {
        (ResultFile::Run(b), ResultFile::Run(c)) => {
            profiles(&b.profile.name, &c.profile.name)?;
            comparison.warnings = testbed_warnings(&b.testbed, &c.testbed);
            comparison.warnings.extend(engine_warning(&b, &c));
            comparison.warnings.extend(unfinished(names.0, b.status));
            comparison.warnings.extend(unfinished(names.1, c.status));
            comparison.changes = compare_runs(&c.profile.name, &b, &c, threshold_pct)?;
        }
        (ResultFile::Sweep(b), ResultFile::Sweep(c)) => {
            profiles(&b.profile.name, &c.profile.name)?;
            comparison.warnings = testbed_warnings(&b.testbed, &c.testbed);
            comparison.warnings.extend(unfinished(names.0, b.status));
            comparison.warnings.extend(unfinished(names.1, c.status));
            for point in &c.points {
                let label = format!("{} {}", c.profile.name, point.overrides.join(" "));
                let matching = b.points.iter().find(|p| p.overrides == point.overrides);
                match matching
                    .map(|p| compare_runs(&label, &p.result, &point.result, threshold_pct))
                {
                    Some(Ok(changes)) => comparison.changes.extend(changes),
                    _ => comparison.unmatched.push(label),
                }
            }
            for point in &b.points {
                if !c.points.iter().any(|p| p.overrides == point.overrides) {
                    comparison.unmatched.push(format!(
                        "{} {} (baseline only)",
                        b.profile.name,
                        point.overrides.join(" ")
                    ));
                }
            }
            if comparison.changes.is_empty() {
                return Err(
                    "no sweep point was measured in both results; nothing to compare".into(),
                );
            }
        }
        _ => return Err("one file is a run and the other a sweep; compare like with like".into()),
    }
    Ok(comparison)
}

/// The comparison as a table.
pub fn table(c: &Comparison) -> String {
    let mut out = String::new();
    for w in &c.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    let width = c
        .changes
        .iter()
        .map(|x| x.what.len())
        .max()
        .unwrap_or(7)
        .max(7);
    let _ = writeln!(
        out,
        "{:<width$}  {:<15}  {:>14}  {:>14}  {:>8}  {:>7}  verdict",
        "profile", "figure", "baseline", "current", "change", "noise"
    );
    for x in &c.changes {
        let _ = writeln!(
            out,
            "{:<width$}  {:<15}  {:>14}  {:>14}  {:>+7.1}%  {:>6.1}%  {}",
            x.what,
            x.figure,
            thousands(x.baseline),
            thousands(x.current),
            x.change_pct,
            x.noise_pct,
            match x.verdict {
                Verdict::Regression => "REGRESSION",
                Verdict::Improvement => "improvement",
                Verdict::Unchanged => "unchanged",
            }
        );
    }
    for u in &c.unmatched {
        let _ = writeln!(out, "{u}: not in both results");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_counts_only_beyond_the_noise() {
        // 10 % slower with 1 % spread: a regression at a 4 % threshold.
        let c = judge("p", "records/ms", (100.0, 1.0), (90.0, 1.0), 4.0, true);
        assert_eq!(c.verdict, Verdict::Regression);
        assert!((c.change_pct + 10.0).abs() < 1e-9);
        // The same drop with 6 % spread hides in the noise (2 × 6 = 12 %).
        let c = judge("p", "records/ms", (100.0, 6.0), (90.0, 1.0), 4.0, true);
        assert_eq!((c.verdict, c.noise_pct), (Verdict::Unchanged, 12.0));
        // Faster beyond the noise.
        let c = judge("p", "records/ms", (100.0, 1.0), (110.0, 1.0), 4.0, true);
        assert_eq!(c.verdict, Verdict::Improvement);
        // For latency, larger is worse.
        let c = judge(
            "p",
            "p99 latency ns",
            (1000.0, 4.0),
            (1200.0, 4.0),
            4.0,
            false,
        );
        assert_eq!(c.verdict, Verdict::Regression);
    }

    #[test]
    fn files_that_are_not_results_are_refused() {
        let err = |text: &str| compare(("a", "b"), text, text, 4.0).unwrap_err();
        assert!(err("not json").contains("not a JSON result"));
        assert!(err("{\"schema_version\": 99}").contains("schema_version 99"));
        assert!(err("{\"schema_version\": 1, \"kind\": \"x\"}").contains("kind"));
        assert!(err("{\"schema_version\": 1, \"kind\": \"run\"}").contains("does not match"));
    }
}
