//! github-action-benchmark's custom tools: a JSON array of `{name, unit,
//! value, range, extra}`. One file holds one direction (the action's
//! `tool: customBiggerIsBetter` or `customSmallerIsBetter`), so each
//! direction is its own format.

use serde_json::{json, Value};

use super::{measured, points, unit, Exporter};
use crate::bench::ab::AbResult;
use crate::bench::result::{RunResult, SweepResult};
use crate::bench::verdict::Direction;

/// github-action-benchmark, the figures of one direction.
pub struct Github {
    /// `true`: rates (customBiggerIsBetter); `false`: the rest.
    pub bigger: bool,
}

impl Github {
    fn wanted(&self, d: Direction) -> bool {
        (d == Direction::BiggerIsBetter) == self.bigger
    }

    fn entries(&self, name: &str, run: &RunResult, out: &mut Vec<Value>) {
        for (figure, stats) in measured(run) {
            if self.wanted(figure.direction) {
                out.push(json!({
                    "name": format!("{name} {}", figure.name),
                    "unit": unit(figure.name),
                    "value": stats.median,
                    "range": format!("± {:.1}%", stats.rsd_pct),
                    "extra": format!("{} repetitions, min {} max {}", figure.values.len(), stats.min, stats.max),
                }));
            }
        }
    }
}

fn pretty(value: &[Value]) -> String {
    serde_json::to_string_pretty(value).expect("JSON values serialize") + "\n"
}

impl Exporter for Github {
    fn run(&self, result: &RunResult) -> String {
        let mut out = Vec::new();
        self.entries(&result.profile.name, result, &mut out);
        pretty(&out)
    }

    fn sweep(&self, sweep: &SweepResult) -> String {
        let mut out = Vec::new();
        for (name, run) in points(sweep) {
            self.entries(&name, run, &mut out);
        }
        pretty(&out)
    }

    fn ab(&self, result: &AbResult) -> String {
        let mut out = Vec::new();
        match &result.judgement {
            Some(j) if self.wanted(j.direction) => out.push(json!({
                "name": format!("{} A/B {} ratio", result.profile, result.figure),
                "unit": "candidate / baseline",
                "value": j.ratio,
                "range": j.interval.map_or("(no interval)".into(), |(lo, hi)| format!("{lo:.4} to {hi:.4}")),
                "extra": j.to_string(),
            })),
            _ => {}
        }
        pretty(&out)
    }

    fn extension(&self) -> &'static str {
        "json"
    }
}
