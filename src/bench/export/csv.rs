//! One CSV row per measured repetition (of every sweep point).

use super::Exporter;
use crate::bench::ab::AbResult;
use crate::bench::result::{Latency, Repetition, RunResult, SweepResult};

/// CSV.
pub struct Csv;

const HEADER: [&str; 16] = [
    "profile",
    "point",
    "repetition",
    "records",
    "seconds",
    "records_per_sec",
    "records_per_ms",
    "bytes_per_sec",
    "overhead_ms",
    "latency_p50_ns",
    "latency_p90_ns",
    "latency_p99_ns",
    "latency_p999_ns",
    "latency_max_ns",
    "allocations",
    "pools_full",
];

fn row(profile: &str, point: &str, r: &Repetition) -> [String; 16] {
    let latency = |f: fn(&Latency) -> u64| {
        r.latency_ns
            .as_ref()
            .map_or(String::new(), |l| f(l).to_string())
    };
    [
        profile.to_string(),
        point.to_string(),
        r.index.to_string(),
        r.records.to_string(),
        format!("{:.9}", r.seconds),
        format!("{:.1}", r.records_per_sec),
        format!("{:.3}", r.records_per_ms),
        format!("{:.1}", r.bytes_per_sec),
        format!("{:.3}", r.overhead_ms),
        latency(|l| l.p50),
        latency(|l| l.p90),
        latency(|l| l.p99),
        latency(|l| l.p999),
        latency(|l| l.max),
        r.allocations.to_string(),
        r.pools_full.to_string(),
    ]
}

/// The rows of `points` (profile, point label, repetitions) as CSV.
fn table<'a>(points: impl Iterator<Item = (&'a str, String, &'a [Repetition])>) -> String {
    let mut out = csv::Writer::from_writer(Vec::new());
    let written = out.write_record(HEADER).and_then(|()| {
        for (profile, point, repetitions) in points {
            for r in repetitions {
                out.write_record(row(profile, &point, r))?;
            }
        }
        Ok(())
    });
    written.expect("writing CSV to memory cannot fail");
    let bytes = out.into_inner().expect("an in-memory CSV writer flushes");
    String::from_utf8(bytes).expect("the fields are UTF-8")
}

impl Exporter for Csv {
    fn run(&self, result: &RunResult) -> String {
        table(std::iter::once((
            result.profile.name.as_str(),
            result.overrides.join(" "),
            &result.repetitions[..],
        )))
    }

    fn sweep(&self, sweep: &SweepResult) -> String {
        table(sweep.points.iter().map(|p| {
            (
                sweep.profile.name.as_str(),
                p.overrides.join(" "),
                &p.result.repetitions[..],
            )
        }))
    }

    /// One row per run: index, side, figure, seconds into the session.
    fn ab(&self, result: &AbResult) -> String {
        let mut out = csv::Writer::from_writer(Vec::new());
        let written = out
            .write_record(["index", "side", &result.figure, "elapsed_secs"])
            .and_then(|()| {
                for r in &result.runs {
                    out.write_record([
                        r.index.to_string(),
                        format!("{:?}", r.side),
                        r.figure.to_string(),
                        format!("{:.3}", r.elapsed_secs),
                    ])?;
                }
                Ok(())
            });
        written.expect("writing CSV to memory cannot fail");
        let bytes = out.into_inner().expect("an in-memory CSV writer flushes");
        String::from_utf8(bytes).expect("the fields are UTF-8")
    }

    fn extension(&self) -> &'static str {
        "csv"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_with_commas_or_quotes_are_quoted() {
        let text = table(std::iter::once(("a,b", "x=\"1\"".to_string(), &[][..])));
        assert!(text.starts_with("profile,point,repetition"), "{text}");
        assert_eq!(text.lines().count(), 1);
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(["a,b", "x=\"1\""]).unwrap();
        assert_eq!(
            String::from_utf8(w.into_inner().unwrap()).unwrap(),
            "\"a,b\",\"x=\"\"1\"\"\"\n"
        );
    }
}
