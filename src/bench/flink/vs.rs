//! `taskbench run PROFILE --vs-flink`: taskbench and Flink on the same
//! profile, interleaved in one session (round k: taskbench's warm-up and
//! repetitions, then Flink's fork k), so a shared machine's drift hits
//! both; the ratio per figure, with the profile's published `[flink]`
//! figure as a second, labelled reference.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

use super::super::engine::{merge_latency, run_profile_with_latency, summarize};
use super::super::profile::Profile;
use super::super::report::{nanos, thousands};
use super::super::result::{RunResult, Status};
use super::super::Progress;
use super::{FlinkError, FlinkOptions, FlinkRunner};

/// Which engine a progress report is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// taskbench's runtime.
    Taskbench,
    /// Flink.
    Flink,
}

/// Runs `options.forks` rounds of taskbench then Flink; returns taskbench's
/// result (its repetitions from every round) and Flink's. Either ends the
/// session early when one of its jobs fails.
pub fn run_side_by_side(
    profile: &Profile,
    overrides: &[String],
    options: FlinkOptions,
    status: &mut dyn FnMut(&str),
    progress: &mut dyn FnMut(Side, Progress<'_>),
) -> Result<(RunResult, RunResult), FlinkError> {
    let rounds = options.forks.max(1);
    let mut flink = FlinkRunner::new(profile, overrides, options, status)?;
    let mut ours: Option<RunResult> = None;
    let mut latency: Option<Histogram<u64>> = None;
    for round in 0..rounds {
        status(&format!("round {}/{rounds}: taskbench", round + 1));
        let (run, run_latency) =
            run_profile_with_latency(profile, overrides, &mut |p| progress(Side::Taskbench, p))?;
        merge_latency(&mut latency, run_latency.as_ref());
        let failed = run.status == Status::Failed;
        let merged = match ours.take() {
            None => run,
            Some(mut all) => {
                let offset = all.repetitions.len() as u32;
                all.repetitions
                    .extend(run.repetitions.into_iter().map(|mut r| {
                        r.index += offset;
                        r
                    }));
                all.status = run.status;
                all.failure = run.failure;
                all
            }
        };
        ours = Some(merged);
        if failed {
            break;
        }
        status(&format!("round {}/{rounds}: Flink", round + 1));
        if !flink.run_fork(&mut |p| progress(Side::Flink, p))? {
            break;
        }
    }
    let mut ours = ours.expect("at least one round");
    if !ours.repetitions.is_empty() {
        ours.summary = Some(summarize(profile, &ours.repetitions, latency.as_ref()));
    }
    Ok((ours, flink.finish()))
}

/// The side-by-side table: each figure's median for taskbench and Flink
/// and their ratio (taskbench ÷ Flink), then the published reference.
pub fn ratio_table(ours: &RunResult, flink: &RunResult) -> String {
    let mut out = String::new();
    let version = flink.flink.as_ref().map_or("?".to_string(), |f| {
        format!("{} on {}", f.flink_version, f.cluster)
    });
    let _ = writeln!(
        out,
        "\n{}: taskbench vs Apache Flink {version}, interleaved in one session",
        ours.profile.name
    );
    let (Some(a), Some(b)) = (&ours.summary, &flink.summary) else {
        let _ = writeln!(out, "  (no ratio: one side measured nothing)");
        return out;
    };
    let _ = writeln!(
        out,
        "  {:<22} {:>16} {:>16} {:>10}",
        "figure (median)", "taskbench", "flink", "ratio"
    );
    let mut row = |figure: &str, x: f64, y: f64, show: &dyn Fn(f64) -> String| {
        let ratio = if y > 0.0 {
            format!("{:.2}×", x / y)
        } else {
            "–".to_string()
        };
        let _ = writeln!(
            out,
            "  {figure:<22} {:>16} {:>16} {ratio:>10}",
            show(x),
            show(y)
        );
    };
    let count = |v: f64| thousands(v);
    row(
        "records/s",
        a.records_per_sec.median,
        b.records_per_sec.median,
        &count,
    );
    row(
        "records/ms",
        a.records_per_ms.median,
        b.records_per_ms.median,
        &count,
    );
    row(
        "MiB/s",
        a.bytes_per_sec.median / f64::from(1 << 20),
        b.bytes_per_sec.median / f64::from(1 << 20),
        &|v| format!("{v:.1}"),
    );
    if let (Some(x), Some(y)) = (a.latency_ns, b.latency_ns) {
        let time = |v: f64| nanos(v);
        for (name, p, q) in [
            ("latency p50", x.p50, y.p50),
            ("latency p90", x.p90, y.p90),
            ("latency p99", x.p99, y.p99),
            ("latency p99.9", x.p999, y.p999),
            ("latency max", x.max, y.max),
        ] {
            row(name, p as f64, q as f64, &time);
        }
    }
    row(
        "overhead ms / job",
        a.overhead_ms.median,
        b.overhead_ms.median,
        &|v| format!("{v:.1}"),
    );
    let _ = writeln!(
        out,
        "  ({} taskbench and {} Flink repetitions; a ratio above 1 means taskbench has more of it)",
        a.repetitions, b.repetitions
    );
    if let Some(published) = &ours.profile.flink {
        let _ = writeln!(
            out,
            "  reference: Flink's published {} is {} records/ms on {}; taskbench here is {:.2}× that, Flink here {:.2}×",
            published.benchmark,
            thousands(published.ops_per_ms),
            published.machine,
            a.records_per_ms.median / published.ops_per_ms,
            b.records_per_ms.median / published.ops_per_ms
        );
    }
    out
}
