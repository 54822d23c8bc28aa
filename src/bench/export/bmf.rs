//! Bencher Metric Format (`bencher run --adapter json`): one benchmark per
//! run (per sweep point), one measure per figure with the median and the
//! repetitions' extremes; an A/B session is the ratio with its interval.

use serde_json::{json, Map, Value};

use super::{measured, points, Exporter};
use crate::bench::ab::AbResult;
use crate::bench::result::{RunResult, SweepResult};

/// BMF.
pub struct Bmf;

/// Bencher's measure slug of a figure (its built-in `throughput` and
/// `latency` where they fit).
fn measure(figure: &str) -> String {
    match figure {
        "records_per_sec" => "throughput".into(),
        "latency_p99_ns" => "latency".into(),
        other => other.replace('_', "-"),
    }
}

fn benchmark(run: &RunResult) -> Value {
    let mut out = Map::new();
    for (figure, stats) in measured(run) {
        out.insert(
            measure(figure.name),
            json!({"value": stats.median, "lower_value": stats.min, "upper_value": stats.max}),
        );
    }
    Value::Object(out)
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).expect("JSON values serialize") + "\n"
}

impl Exporter for Bmf {
    fn run(&self, result: &RunResult) -> String {
        pretty(&json!({ result.profile.name.clone(): benchmark(result) }))
    }

    fn sweep(&self, sweep: &SweepResult) -> String {
        let all: Map<String, Value> = points(sweep).map(|(n, r)| (n, benchmark(r))).collect();
        pretty(&Value::Object(all))
    }

    fn ab(&self, result: &AbResult) -> String {
        let mut m = Map::new();
        if let Some(j) = &result.judgement {
            let mut ratio = Map::new();
            ratio.insert("value".into(), json!(j.ratio));
            if let Some((lo, hi)) = j.interval {
                ratio.insert("lower_value".into(), json!(lo));
                ratio.insert("upper_value".into(), json!(hi));
            }
            m.insert(
                format!("{}-ratio", measure(&result.figure)),
                Value::Object(ratio),
            );
        }
        pretty(&json!({ format!("{} A/B", result.profile): m }))
    }

    fn extension(&self) -> &'static str {
        "json"
    }
}
