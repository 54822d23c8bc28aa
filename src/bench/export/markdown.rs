//! A Markdown summary table: one row per run (per sweep point).

use std::fmt::Write as _;

use super::Exporter;
use crate::bench::ab::AbResult;
use crate::bench::report::{nanos, thousands};
use crate::bench::result::{RunResult, SweepResult};

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
        out
    }

    fn extension(&self) -> &'static str {
        "md"
    }
}
