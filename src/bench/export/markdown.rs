//! A Markdown summary table: one row per run (per sweep point).

use std::fmt::Write as _;

use super::Exporter;
use crate::bench::ab::AbResult;
use crate::bench::report::{nanos, thousands};
use crate::bench::result::{RunResult, Status, SweepResult};

/// Markdown.
pub struct Markdown;

const HEADER: &str = "| profile | point | records/ms (median) | ± % | MiB/s | p99 latency | allocations | Flink records/ms | ratio |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n";

/// `text` safe inside a table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

fn row(out: &mut String, result: &RunResult, point: &str) {
    let (name, point) = (cell(&result.profile.name), cell(point));
    let Some(s) = &result.summary else {
        let _ = writeln!(
            out,
            "| {name} | {point} | failed: {} | | | | | | |",
            cell(result.failure.as_deref().unwrap_or("no measurement"))
        );
        return;
    };
    let flink = result.profile.flink.as_ref();
    let _ = writeln!(
        out,
        "| {name} | {point} | {} | {:.1} | {:.0} | {} | {} | {} | {} |",
        thousands(s.records_per_ms.median),
        s.records_per_ms.rsd_pct,
        s.bytes_per_sec.median / (1u64 << 20) as f64,
        s.latency_ns.map_or("–".into(), |l| nanos(l.p99 as f64)),
        s.allocations_during_measurement,
        flink.map_or("–".into(), |f| thousands(f.ops_per_ms)),
        s.flink_ratio.map_or("–".into(), |r| format!("{r:.2}×"))
    );
}

impl Exporter for Markdown {
    fn run(&self, result: &RunResult) -> String {
        let mut out = HEADER.to_string();
        row(&mut out, result, &result.overrides.join(" "));
        out
    }

    fn sweep(&self, sweep: &SweepResult) -> String {
        let mut out = HEADER.to_string();
        for point in &sweep.points {
            row(&mut out, &point.result, &point.overrides.join(" "));
        }
        out
    }

    /// The pairs' ratios and the verdict.
    fn ab(&self, result: &AbResult) -> String {
        let mut out = "| pair | A | B | B / A |\n|---:|---:|---:|---:|\n".to_string();
        for (i, p) in result.pairs.iter().enumerate() {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.4} |",
                i + 1,
                thousands(result.runs[p.a].figure),
                thousands(result.runs[p.b].figure),
                p.ratio
            );
        }
        if let Some(j) = &result.judgement {
            let _ = writeln!(out, "\n{}: {}", cell(&result.figure), cell(&j.to_string()));
        }
        match result.status {
            Status::Complete => {}
            Status::Failed => {
                let why = result.failure.as_deref().unwrap_or("a run failed");
                let _ = writeln!(out, "\nThe session failed: {}", cell(why));
            }
            Status::Interrupted => {
                let _ = writeln!(out, "\nThe session was interrupted.");
            }
            Status::Running => {
                let _ = writeln!(out, "\nThe session is still running.");
            }
        }
        out
    }

    fn extension(&self) -> &'static str {
        "md"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::ab::{AbRun, Settings, Side};

    #[test]
    fn a_session_that_did_not_complete_says_so() {
        let mut r = AbResult::new("records_per_sec", Settings::default());
        r.runs.push(AbRun {
            index: 0,
            side: Side::A,
            figure: 1e6,
            elapsed_secs: 1.0,
        });
        r.status = Status::Failed;
        r.failure = Some("run 1 (B) failed: exit status: 1 (a | b)".into());
        let md = Markdown.ab(&r);
        assert!(
            md.ends_with("The session failed: run 1 (B) failed: exit status: 1 (a \\| b)\n"),
            "{md}"
        );
        r.status = Status::Interrupted;
        assert!(Markdown.ab(&r).ends_with("The session was interrupted.\n"));
        r.status = Status::Complete;
        assert!(!Markdown.ab(&r).contains("The session"));
    }
}
