//! Every built-in profile (every file of `profiles/`), scaled down, runs to
//! completion through the benchmark engine: every task FINISHED, the
//! records each sink should see, no allocation while measuring, pools full.
//! Sweep profiles run their first and last points.
#![cfg(not(loom))]

use taskbench::bench::builtin::BUILTIN;
use taskbench::bench::profile::VertexKind;
use taskbench::bench::{run_profile, Profile, Status};
use taskbench::metrics::CountingAllocator;

#[global_allocator]
static ALLOC: CountingAllocator<std::alloc::System> = CountingAllocator(std::alloc::System);

const SMALL: &[&str] = &[
    "records.count=20000",
    "measure.repetitions=2",
    "measure.warmup=1",
];

fn check(name: &str, text: &str, point: &[String]) {
    let mut overrides: Vec<String> = SMALL.iter().map(|s| s.to_string()).collect();
    overrides.extend(point.iter().cloned());
    let base = Profile::from_toml(text, name, &[]).unwrap();
    if base.records.rate.is_some() || base.records.duration.is_some() {
        // Rate-limited and timed profiles: short and bounded.
        overrides.push("records.duration=\"50ms\"".into());
    }
    let profile = Profile::from_toml(text, name, &overrides).unwrap();
    let case = format!("{name} {point:?}");
    let result =
        run_profile(&profile, &overrides, &mut |_| {}).unwrap_or_else(|e| panic!("{case}: {e}"));
    assert_eq!(
        result.status,
        Status::Complete,
        "{case}: {:?}",
        result.failure
    );
    let summary = result.summary.as_ref().unwrap();
    assert_eq!(summary.allocations_during_measurement, 0, "{case}");
    assert!(summary.pools_full, "{case}");
    assert!(
        summary.tasks.iter().all(|t| t.state == "FINISHED"),
        "{case}"
    );
    assert_eq!(result.repetitions.len(), 2, "{case}");
    // Count-bounded profiles deliver exactly what their sources emit
    // (times the copies a broadcast makes, over the channels of each pair).
    if profile.records.rate.is_none() && profile.records.duration.is_none() {
        let emitted: u64 = profile
            .vertices
            .iter()
            .filter(|v| v.kind == VertexKind::Source && !v.idle)
            .map(|v| profile.source_records(v).unwrap() * u64::from(v.parallelism))
            .sum();
        let broadcast = profile
            .edges
            .iter()
            .find(|e| e.partitioner == Some(taskbench::bench::profile::PartitionerKind::Broadcast));
        let copies = broadcast.map_or(1, |e| u64::from(e.channels));
        for r in &result.repetitions {
            assert_eq!(r.records, emitted * copies, "{case}");
        }
    }
    if profile.measures_latency() {
        assert!(summary.latency_ns.is_some(), "{case}: no latency measured");
    }
}

#[test]
fn every_profile_runs_to_completion_without_allocating() {
    for (name, text) in BUILTIN {
        let profile = Profile::from_toml(text, name, &[]).unwrap();
        let points = profile.sweep_points();
        let picks: Vec<&Vec<String>> = match points.len() {
            1 => vec![&points[0]],
            n => vec![&points[0], &points[n - 1]],
        };
        for point in picks {
            check(name, text, point);
        }
    }
}
