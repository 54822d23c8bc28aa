//! The figures a result is judged and tracked by, one value per
//! repetition, each with the direction in which it gets better.

use super::result::RunResult;
use super::verdict::Direction;

/// One figure of a run: its values over the repetitions.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    /// Name, as in the result's repetitions (`records_per_sec`, …).
    pub name: &'static str,
    /// Which way is better.
    pub direction: Direction,
    /// One value per measured repetition, in order.
    pub values: Vec<f64>,
    /// Whether the figure is deterministic (instruction counts): judged
    /// by [`super::verdict::judge_exact`], not by rank intervals.
    pub exact: bool,
}

/// The figures of `result` that every repetition measured: throughput in
/// records and bytes per second, core time per record, and the sink's p99
/// latency when measured. A `run --instructions` result has one figure,
/// instructions per record: its times were measured under valgrind.
pub fn of_run(result: &RunResult) -> Vec<Figure> {
    let reps = &result.repetitions;
    let mut out = Vec::new();
    if let Some(i) = &result.instructions {
        out.push(Figure {
            name: "instructions_per_record",
            direction: Direction::SmallerIsBetter,
            values: i.per_record.clone(),
            exact: true,
        });
        return out;
    }
    let mut push = |name: &'static str, values: Option<Vec<f64>>| {
        if let Some(values) = values.filter(|v| !v.is_empty()) {
            out.push(Figure {
                name,
                direction: Direction::of_figure(name),
                values,
                exact: false,
            });
        }
    };
    push(
        "records_per_sec",
        Some(reps.iter().map(|r| r.records_per_sec).collect()),
    );
    push(
        "bytes_per_sec",
        Some(reps.iter().map(|r| r.bytes_per_sec).collect()),
    );
    push(
        "core_ns_per_record",
        reps.iter().map(|r| r.core_ns_per_record).collect(),
    );
    push(
        "latency_p99_ns",
        reps.iter()
            .map(|r| r.latency_ns.map(|l| l.p99 as f64))
            .collect(),
    );
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::json;

    use super::*;
    use crate::bench::result::Repetition;

    /// A repetition of `records` in `seconds`, 8 bytes a record.
    pub(crate) fn repetition(records: u64, seconds: f64, p99: Option<u64>) -> Repetition {
        let per_sec = records as f64 / seconds;
        let latency = p99.map(|p| {
            json!({"samples": 100, "p50": p / 2, "p90": p, "p99": p, "p999": p, "max": p, "mean": 1.0})
        });
        serde_json::from_value(json!({
            "index": 0, "records": records, "bytes": records * 8, "checksum": 0,
            "seconds": seconds, "records_per_sec": per_sec, "records_per_ms": per_sec / 1e3,
            "bytes_per_sec": per_sec * 8.0, "overhead_ms": 1.0, "cores_busy": 1.5,
            "latency_ns": latency, "allocations": 0, "pools_full": true, "tasks": []
        }))
        .unwrap()
    }

    #[test]
    fn throughput_always_latency_when_every_repetition_has_it() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/quickstart.toml");
        let profile = crate::bench::Profile::from_file(&path, &[]).unwrap();
        let mut run = RunResult::started(&profile, &[], Default::default(), "none".into());
        run.repetitions = vec![
            repetition(1000, 0.5, Some(300)),
            repetition(1000, 0.25, Some(500)),
        ];
        let figures = of_run(&run);
        let names: Vec<_> = figures.iter().map(|f| f.name).collect();
        assert_eq!(
            names,
            ["records_per_sec", "bytes_per_sec", "latency_p99_ns"]
        );
        assert_eq!(figures[0].values, [2000.0, 4000.0]);
        assert_eq!(figures[2].values, [300.0, 500.0]);
        assert_eq!(figures[2].direction, Direction::SmallerIsBetter);
        run.repetitions[1].latency_ns = None;
        assert_eq!(of_run(&run).len(), 2);
    }
}
