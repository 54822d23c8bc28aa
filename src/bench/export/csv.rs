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

    /// One row per run: its 0-based index, side, figure and end time,
    /// the 1-based pair it belongs to (as the table numbers pairs; empty
    /// for a run left unpaired) and the session's status, so a file of a
    /// failed or interrupted session is not read as a complete one.
    fn ab(&self, result: &AbResult) -> String {
        let pair_of = |index: usize| {
            result
                .pairs
                .iter()
                .position(|p| p.a == index || p.b == index)
                .map_or_else(String::new, |i| (i + 1).to_string())
        };
        let status = result.status.as_str();
        let mut out = csv::Writer::from_writer(Vec::new());
        let written = out
            .write_record([
                "index",
                "side",
                &result.figure,
                "elapsed_secs",
                "pair",
                "session_status",
            ])
            .and_then(|()| {
                for r in &result.runs {
                    out.write_record([
                        r.index.to_string(),
                        format!("{:?}", r.side),
                        r.figure.to_string(),
                        format!("{:.3}", r.elapsed_secs),
                        pair_of(r.index),
                        status.to_string(),
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
    use crate::bench::ab::{AbRun, Pair, Settings, Side};
    use crate::bench::result::Status;

    #[test]
    fn ab_rows_name_their_pair_and_the_sessions_status() {
        let mut r = AbResult::new("records_per_sec", Settings::default());
        for (index, side) in [Side::A, Side::B, Side::B].into_iter().enumerate() {
            r.runs.push(AbRun {
                index,
                side,
                figure: 1e6 + index as f64,
                elapsed_secs: index as f64,
            });
        }
        r.pairs.push(Pair {
            a: 0,
            b: 1,
            ratio: 1.0,
        });
        r.status = Status::Failed;
        let text = Csv.ab(&r);
        let rows: Vec<&str> = text.lines().collect();
        assert_eq!(
            rows,
            [
                "index,side,records_per_sec,elapsed_secs,pair,session_status",
                "0,A,1000000,0.000,1,failed",
                "1,B,1000001,1.000,1,failed",
                "2,B,1000002,2.000,,failed",
            ]
        );
    }

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
