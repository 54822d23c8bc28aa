//! Checkpoints and recovery through `run_job`: every source subtask emits
//! unique increasing values, an operator fails at a seeded point (while
//! processing, in a snapshot, while restoring, at end of input), the job
//! restarts from its last completed checkpoint, and a verifying sink counts
//! lost, duplicated and out-of-order records: all 0 for exactly-once
//! (aligned), no loss for at-least-once. Final counts and checksums equal a
//! failure-free run's; every pool is full after every attempt.
//!
//! `TASKBENCH_EO_SCHEDULES=N` runs N seeded failure schedules instead of the
//! fast set (`.ci/run` runs 50).
#![cfg(not(loom))]

use std::time::Duration;

use taskbench::checkpoint::{Alignment, CheckpointOptions, CheckpointingConfig, RestartStrategy};
use taskbench::job::{run_job, JobEdge, JobGraph, JobOptions, JobResult, JobVertex};
use taskbench::memory::MemoryConfig;
use taskbench::metrics::CountingAllocator;
use taskbench::network::{NetworkConfig, Partitioner};
use taskbench::streaming::{
    AggregateKind, BufferTimeout, FailurePoint, MapFunction, OperatorSpec, SinkKind, SourceSpec,
    VerifyCounts,
};

#[global_allocator]
static ALLOC: CountingAllocator<std::alloc::System> = CountingAllocator(std::alloc::System);

fn vertex(name: &str, parallelism: u32) -> JobVertex {
    JobVertex {
        name: name.into(),
        parallelism,
        source: None,
        operators: vec![],
        sink: None,
    }
}

/// source(p, paced) → map(p, maybe failing) ⇒ sink(1, verifying). With a
/// forward first edge each source subtask's records reach the sink over one
/// path, in order; with rebalance they do not (order is then not checked).
fn job(
    p: u32,
    per_source: u64,
    first_edge: Partitioner,
    failure: Option<OperatorSpec>,
) -> JobGraph {
    let mut map = vec![OperatorSpec::Map(MapFunction::Identity)];
    map.extend(failure);
    JobGraph {
        name: "exactly-once".into(),
        vertices: vec![
            JobVertex {
                source: Some(SourceSpec {
                    records: Some(per_source),
                    // ~40 ms of records per subtask: checkpoints every 2 ms
                    // fall all through the stream.
                    rate: Some(per_source as f64 * 25.0),
                    ..SourceSpec::default()
                }),
                ..vertex("source", p)
            },
            JobVertex {
                operators: map,
                ..vertex("map", p)
            },
            JobVertex {
                sink: Some(SinkKind::Verify {
                    sources: p,
                    per_source,
                }),
                ..vertex("sink", 1)
            },
        ],
        edges: vec![
            JobEdge::new(0, 1, first_edge),
            JobEdge::new(1, 2, Partitioner::Rebalance),
        ],
        chaining: false,
        buffer_timeout: BufferTimeout::Interval(Duration::from_millis(1)),
    }
}

/// Paces `graph`'s sources so each emits its `per_source` records over
/// about 200 ms instead of 40: a failure halfway then comes ~100 ms in, long
/// after the first checkpoints (every 2 ms) completed even on a machine
/// that keeps threads waiting for a core for tens of milliseconds.
fn unhurried(mut graph: JobGraph, per_source: u64) -> JobGraph {
    if let Some(source) = &mut graph.vertices[0].source {
        source.rate = Some(per_source as f64 * 5.0);
    }
    graph
}

fn options(alignment: Alignment, restarts: u32) -> JobOptions {
    JobOptions {
        network: NetworkConfig {
            memory: MemoryConfig {
                segment_size: 4096,
                total_segments: 1024,
                huge_pages: false,
            },
            ..NetworkConfig::default()
        },
        checkpointing: Some(CheckpointingConfig {
            interval: Some(Duration::from_millis(2)),
            options: CheckpointOptions {
                alignment,
                ..CheckpointOptions::default()
            },
            restart: RestartStrategy::FixedDelay {
                attempts: restarts,
                delay: Duration::ZERO,
            },
            ..CheckpointingConfig::default()
        }),
        ..JobOptions::default()
    }
}

fn verify(result: &JobResult) -> VerifyCounts {
    result
        .subtasks
        .iter()
        .find_map(|s| s.result.as_ref()?.sink.as_ref()?.verify)
        .expect("a verifying sink")
}

fn expected(p: u32, per_source: u64) -> (u64, u64) {
    let n = u64::from(p) * per_source;
    (n, (0..n).fold(0u64, |s, v| s.wrapping_add(v)))
}

fn fail(point: FailurePoint, at: u64, attempt: u32) -> OperatorSpec {
    OperatorSpec::FailOnce { point, at, attempt }
}

/// The exactly-once modes: aligned, unaligned, and aligned turning
/// unaligned after 100 µs.
const EXACTLY_ONCE: [Alignment; 3] = [
    Alignment::Aligned,
    Alignment::Unaligned,
    Alignment::AlignedWithTimeout { timeout_us: 100 },
];

#[test]
fn a_failure_while_processing_restores_exactly_once() {
    const PER_SOURCE: u64 = 20_000;
    for (p, mode) in (1..=4u32).flat_map(|p| EXACTLY_ONCE.map(|m| (p, m))) {
        let failure = fail(FailurePoint::Processing, PER_SOURCE / 2, 0);
        let graph = unhurried(
            job(p, PER_SOURCE, Partitioner::Forward, Some(failure)),
            PER_SOURCE,
        );
        let result = run_job(&graph, &options(mode, 1)).unwrap();
        let p = format!("{p} {mode:?}");
        assert!(result.is_finished(), "p={p}: {:?}", result.failure);
        assert_eq!(result.restarts, 1, "p={p}");
        assert!(
            result.recovered_failures[0].contains("fail-once"),
            "{:?}",
            result.recovered_failures
        );
        let completed = result
            .checkpoints
            .iter()
            .filter(|c| c.failure.is_none())
            .count();
        assert!(completed >= 1, "p={p}: no checkpoint completed");
        assert!(result.restored_from[0].is_some(), "p={p}");
        let n: u32 = p.split(' ').next().unwrap().parse().unwrap();
        assert_eq!(
            verify(&result),
            VerifyCounts {
                distinct: u64::from(n) * PER_SOURCE,
                ..VerifyCounts::default()
            },
            "p={p}"
        );
        assert_eq!(result.sink_totals(), expected(n, PER_SOURCE), "p={p}");
        assert!(result.pools_full, "p={p}");
        if mode == Alignment::Unaligned {
            assert!(result.checkpoints.iter().any(|c| c.unaligned), "p={p}");
        }
        for s in &result.subtasks {
            assert_eq!(
                s.loop_allocations, 0,
                "p={p}: {} allocated outside snapshots",
                s.name
            );
        }
    }
}

#[test]
fn failures_in_snapshot_restore_and_close_recover_too() {
    const PER_SOURCE: u64 = 10_000;
    // In the 2nd snapshot of attempt 0; then in attempt 1's restore.
    let mut graph = unhurried(job(2, PER_SOURCE, Partitioner::Rebalance, None), PER_SOURCE);
    graph.vertices[1].operators.extend([
        fail(FailurePoint::Snapshot, 2, 0),
        fail(FailurePoint::Restore, 0, 1),
    ]);
    let result = run_job(&graph, &options(Alignment::Aligned, 2)).unwrap();
    assert!(result.is_finished(), "{:?}", result.failure);
    assert_eq!(result.restarts, 2);
    let v = verify(&result);
    assert_eq!((v.lost, v.duplicated), (0, 0), "{v:?}");
    assert_eq!(result.sink_totals(), expected(2, PER_SOURCE));
    assert!(result.pools_full);

    // At end of input, after every record went through.
    let graph = job(
        2,
        PER_SOURCE,
        Partitioner::Forward,
        Some(fail(FailurePoint::Close, 0, 0)),
    );
    let result = run_job(&graph, &options(Alignment::Aligned, 1)).unwrap();
    assert!(result.is_finished(), "{:?}", result.failure);
    assert_eq!(result.restarts, 1);
    assert_eq!(verify(&result).lost + verify(&result).duplicated, 0);
    assert_eq!(result.sink_totals(), expected(2, PER_SOURCE));
}

#[test]
fn without_restarts_a_failure_fails_the_job() {
    let graph = job(
        1,
        10_000,
        Partitioner::Forward,
        Some(fail(FailurePoint::Processing, 100, 0)),
    );
    let result = run_job(&graph, &options(Alignment::Aligned, 0)).unwrap();
    assert!(result.failure.is_some());
    assert_eq!(result.restarts, 0);
    assert!(result.pools_full);
}

#[test]
fn at_least_once_loses_nothing() {
    const PER_SOURCE: u64 = 20_000;
    let graph = job(
        3,
        PER_SOURCE,
        Partitioner::Rebalance,
        Some(fail(FailurePoint::Processing, PER_SOURCE / 2, 0)),
    );
    let result = run_job(&graph, &options(Alignment::AtLeastOnce, 1)).unwrap();
    assert!(result.is_finished(), "{:?}", result.failure);
    assert_eq!(verify(&result).lost, 0);
    assert!(result.pools_full);
}

#[test]
fn checkpoints_go_on_after_tasks_finish_and_restore_them_finished() {
    // Two pipelines in one job: a short one that finishes at once, and the
    // paced exactly-once one, whose map fails halfway. Checkpoints taken
    // after the short pipeline finished hold its final state, so the
    // restart restores it finished: its source emits nothing again.
    const PER_SOURCE: u64 = 10_000;
    const SHORT: u64 = 1_000;
    for mode in EXACTLY_ONCE {
        let mut graph = failing_at(1, PER_SOURCE, PER_SOURCE / 2);
        graph.vertices.push(JobVertex {
            source: Some(SourceSpec {
                records: Some(SHORT),
                ..SourceSpec::default()
            }),
            ..vertex("short-source", 1)
        });
        graph.vertices.push(JobVertex {
            sink: Some(SinkKind::Checksum),
            ..vertex("short-sink", 1)
        });
        graph.edges.push(JobEdge::new(3, 4, Partitioner::Forward));
        let result = run_job(&graph, &options(mode, 1)).unwrap();
        assert!(result.is_finished(), "{mode:?}: {:?}", result.failure);
        assert_eq!(result.restarts, 1, "{mode:?}");
        let short_source = result
            .subtasks
            .iter()
            .find(|s| s.name == "short-source")
            .and_then(|s| s.result.as_ref())
            .unwrap();
        assert_eq!(short_source.records_emitted, SHORT, "its position");
        assert_eq!(
            short_source.outputs[0].records_out, 0,
            "{mode:?}: restored finished, from a checkpoint after it ended"
        );
        assert_eq!(
            verify(&result),
            VerifyCounts {
                distinct: PER_SOURCE,
                ..VerifyCounts::default()
            },
            "{mode:?}"
        );
        let (n, checksum) = expected(1, PER_SOURCE);
        let (short_n, short_checksum) = expected(1, SHORT);
        assert_eq!(
            result.sink_totals(),
            (n + short_n, checksum.wrapping_add(short_checksum)),
            "{mode:?}: the short sink's final count was restored, not recounted"
        );
        assert!(result.pools_full, "{mode:?}");
    }
}

#[test]
fn keyed_state_is_restored_with_the_rest() {
    // A keyed count ahead of the sink: after a failure, every key's final
    // count is what a failure-free run gives (the sink checksums the
    // emitted running counts, so a lost or doubled update shows).
    const PER_SOURCE: u64 = 20_000;
    let build = |failure: Option<OperatorSpec>| {
        let mut graph = job(1, PER_SOURCE, Partitioner::Forward, failure);
        graph.vertices[1].operators.insert(
            1,
            OperatorSpec::KeyedAggregate {
                kind: AggregateKind::Count,
                key_space: 16,
            },
        );
        graph.vertices[2].sink = Some(SinkKind::Checksum);
        graph
    };
    let clean = run_job(&build(None), &options(Alignment::Aligned, 0)).unwrap();
    let failed = run_job(
        &build(Some(fail(FailurePoint::Processing, PER_SOURCE / 3, 0))),
        &options(Alignment::Aligned, 1),
    )
    .unwrap();
    assert!(failed.is_finished(), "{:?}", failed.failure);
    assert_eq!(failed.restarts, 1);
    assert_eq!(failed.sink_totals(), clean.sink_totals());
}

/// `p` unhurried sources of `per_source` records each; the maps fail once
/// at their `at`th record, long after the first checkpoints completed.
fn failing_at(p: u32, per_source: u64, at: u64) -> JobGraph {
    unhurried(
        job(
            p,
            per_source,
            Partitioner::Forward,
            Some(fail(FailurePoint::Processing, at, 0)),
        ),
        per_source,
    )
}

/// [`failing_at`] halfway through 2 × 10,000 records.
fn failing_halfway() -> JobGraph {
    failing_at(2, 10_000, 5_000)
}

#[test]
fn directory_storage_writes_metadata_last_and_restores() {
    let dir = tempfile::tempdir().unwrap();
    let graph = failing_halfway();
    let options = JobOptions {
        checkpoint_dir: Some(dir.path().to_path_buf()),
        ..options(Alignment::Aligned, 1)
    };
    let result = run_job(&graph, &options).unwrap();
    assert!(result.is_finished(), "{:?}", result.failure);
    assert_eq!(verify(&result).lost + verify(&result).duplicated, 0);
    // One run directory holding the latest complete checkpoint: a task file
    // per subtask and `_metadata`.
    let runs: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(runs.len(), 1);
    let run = runs[0].as_ref().unwrap().path();
    let chk: Vec<_> = std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("_metadata").is_file())
        .collect();
    assert_eq!(chk.len(), 1, "{chk:?}");
    let files = std::fs::read_dir(&chk[0]).unwrap().count();
    assert_eq!(files, 2 + 2 + 1 + 1, "2 sources, 2 maps, 1 sink, _metadata");
}

/// Rewrites every completed checkpoint's `_metadata` under `dir` with
/// `mutate` (once each) until `stop`, so whatever the job restores from is
/// damaged; returns how many it rewrote.
fn damage_metadata(
    dir: std::path::PathBuf,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    mutate: fn(&[u8]) -> Vec<u8>,
) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut done = std::collections::BTreeSet::new();
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let runs = std::fs::read_dir(&dir).into_iter().flatten().flatten();
            for chk in runs.flat_map(|run| std::fs::read_dir(run.path()).into_iter().flatten()) {
                let metadata = chk.unwrap().path().join("_metadata");
                if done.contains(&metadata) {
                    continue;
                }
                if let Ok(bytes) = std::fs::read(&metadata) {
                    std::fs::write(&metadata, mutate(&bytes)).unwrap();
                    done.insert(metadata);
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        done.len()
    })
}

#[test]
fn a_checkpoint_that_cannot_be_restored_fails_the_job_naming_why() {
    fn garbage(_: &[u8]) -> Vec<u8> {
        b"{ not json".to_vec()
    }
    // A task's entry gone: the checkpoint would restore that task empty.
    fn one_task_less(bytes: &[u8]) -> Vec<u8> {
        let mut metadata: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        metadata["tasks"].as_array_mut().unwrap().pop();
        serde_json::to_vec(&metadata).unwrap()
    }
    for (mutate, says) in [
        (
            garbage as fn(&[u8]) -> Vec<u8>,
            "not a valid checkpoint metadata file",
        ),
        (one_task_less, "holds no state for task-2-0"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let graph = failing_halfway();
        let mut options = JobOptions {
            checkpoint_dir: Some(dir.path().to_path_buf()),
            ..options(Alignment::Aligned, 1)
        };
        if let Some(c) = &mut options.checkpointing {
            // Time for the damage to reach the newest checkpoint.
            c.restart = RestartStrategy::FixedDelay {
                attempts: 1,
                delay: Duration::from_millis(200),
            };
        }
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let damage = damage_metadata(dir.path().to_path_buf(), stop.clone(), mutate);
        let result = run_job(&graph, &options).unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(damage.join().unwrap() > 0, "no checkpoint completed");
        let failure = result.failure.as_deref().unwrap_or_default();
        assert!(!result.is_finished(), "restored a damaged checkpoint");
        assert!(
            failure.contains("restoring the latest checkpoint failed")
                && failure.contains(says)
                && failure.contains("fail-once"),
            "{failure}"
        );
        assert_eq!(result.restarts, 0);
        assert!(result.recovered_failures.is_empty());
        assert!(result.pools_full);
    }
}

/// A small deterministic generator for failure schedules.
struct Seeds(u64);

impl Seeds {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

#[test]
fn seeded_failure_schedules_are_exactly_once() {
    let schedules: u64 = std::env::var("TASKBENCH_EO_SCHEDULES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);
    const PER_SOURCE: u64 = 10_000;
    // What every schedule injected and the verifying sink counted, summed
    // and printed (`--nocapture`) for the closing figures of a CI run.
    let (mut restarts, mut restored, mut checkpoints, mut records) = (0u64, 0u64, 0u64, 0u64);
    let mut counted = VerifyCounts::default();
    // Order is kept only through forward edges: a rebalance spreads one
    // source's records over the maps, which interleave them.
    let mut ordered = 0u64;
    for seed in 0..schedules {
        let mut r = Seeds(seed + 1);
        let p = 1 + r.next(4) as u32;
        let first_edge = if r.next(2) == 0 {
            Partitioner::Forward
        } else {
            Partitioner::Rebalance
        };
        let point = match r.next(4) {
            0 => FailurePoint::Processing,
            1 => FailurePoint::Snapshot,
            2 => FailurePoint::Restore,
            _ => FailurePoint::Close,
        };
        let at = match point {
            FailurePoint::Processing => 1 + r.next(PER_SOURCE),
            FailurePoint::Snapshot => 1 + r.next(4),
            _ => 0,
        };
        // A restore failure needs a restore first: it fails in attempt 1,
        // after a processing failure in attempt 0.
        let mut failures = vec![fail(point, at, u32::from(point == FailurePoint::Restore))];
        if point == FailurePoint::Restore {
            failures.push(fail(FailurePoint::Processing, PER_SOURCE / 2, 0));
        }
        let mut graph = job(p, PER_SOURCE, first_edge, None);
        graph.vertices[1].operators.extend(failures);
        if r.next(2) == 0 {
            // Every record readable at once: alignments then hold data back.
            graph.buffer_timeout = BufferTimeout::EveryRecord;
        }
        let mode = EXACTLY_ONCE[r.next(3) as usize];
        let result = run_job(&graph, &options(mode, 3)).unwrap();
        let what = format!("seed {seed}: p={p} {first_edge:?} {mode:?} {point:?} at {at}");
        assert!(result.is_finished(), "{what}: {:?}", result.failure);
        let v = verify(&result);
        assert_eq!((v.lost, v.duplicated), (0, 0), "{what}: {v:?}");
        if first_edge == Partitioner::Forward {
            assert_eq!(v.out_of_order, 0, "{what}");
        }
        assert_eq!(result.sink_totals(), expected(p, PER_SOURCE), "{what}");
        assert!(result.pools_full, "{what}");
        // Every schedule's failure fired and the job recovered from it.
        assert!(result.restarts >= 1, "{what}: no failure was injected");
        restarts += u64::from(result.restarts);
        restored += result.restored_from.iter().flatten().count() as u64;
        checkpoints += result.checkpoints.len() as u64;
        records += v.distinct;
        counted.lost += v.lost;
        counted.duplicated += v.duplicated;
        if first_edge == Partitioner::Forward {
            ordered += 1;
            counted.out_of_order += v.out_of_order;
        }
    }
    println!(
        "{schedules} schedules: {restarts} failures injected and recovered \
         ({restored} from a checkpoint), {checkpoints} checkpoints, \
         {records} distinct records verified; lost {}, duplicated {}; \
         out of order {} in the {ordered} schedules with forward edges",
        counted.lost, counted.duplicated, counted.out_of_order
    );
}

/// The bundled unaligned checkpointing profile, shortened: checkpoints
/// complete under back-pressure, every one unaligned, with in-flight data
/// persisted, and the data path allocates nothing outside snapshot I/O.
#[test]
fn a_checkpointing_profile_reports_its_checkpoints_and_allocates_only_for_snapshots() {
    use taskbench::bench::engine::run_profile;
    use taskbench::bench::profile::Profile;
    let text = include_str!("../profiles/checkpoint-single-input-unaligned.toml");
    let overrides: Vec<String> = [
        "records.duration=\"300ms\"",
        "vertices.source.parallelism=2",
        "vertices.map.parallelism=2",
        "vertices.sink.parallelism=2",
        "measure.repetitions=1",
        "checkpoint.skip_first=0",
    ]
    .map(String::from)
    .to_vec();
    let profile = Profile::from_toml(text, "test", &overrides).unwrap();
    let result = run_profile(&profile, &overrides, &mut |_| {}).unwrap();
    let summary = result.summary.expect("a summary");
    let c = summary.checkpoints.expect("checkpoint figures");
    assert!(c.completed >= 1, "{c:?}");
    assert_eq!(c.unaligned, c.completed);
    assert!(
        c.persisted_in_flight.max > 0.0,
        "back-pressured: data in flight"
    );
    assert!(c.checkpoints_per_sec > 0.0);
    assert_eq!(summary.allocations_during_measurement, 0);
    assert!(result.repetitions[0].snapshot_allocations > 0);
    assert!(summary.pools_full);
    assert!(
        summary.flink_ratio.is_some(),
        "held against Flink's checkpoints/s"
    );
}

/// Sources that induce their own checkpoints (Flink's
/// `ExternallyInducedSource`): checkpoint n cuts every source at n × 2,000
/// records, the coordinator triggers nothing, and a failure restores from
/// the last induced checkpoint exactly once.
#[test]
fn externally_induced_checkpoints_cut_at_the_sources_positions() {
    const PER_SOURCE: u64 = 20_000;
    for mode in EXACTLY_ONCE {
        // Unhurried: 2,000 records take 20 ms, so sources that start a few
        // ms apart still cut each checkpoint before the next one supersedes
        // it.
        let mut graph = failing_at(2, PER_SOURCE, 15_000);
        if let Some(source) = &mut graph.vertices[0].source {
            source.checkpoint_every = Some(2_000);
        }
        let mut options = options(mode, 1);
        if let Some(c) = &mut options.checkpointing {
            c.interval = None;
        }
        let result = run_job(&graph, &options).unwrap();
        assert!(result.is_finished(), "{mode:?}: {:?}", result.failure);
        let completed: Vec<u64> = result
            .checkpoints
            .iter()
            .filter(|c| c.failure.is_none())
            .map(|c| c.id)
            .collect();
        assert!(
            !completed.is_empty(),
            "{mode:?}: no induced checkpoint completed"
        );
        // Ids are the sources' own: position / 2,000, increasing.
        assert!(completed.windows(2).all(|w| w[0] < w[1]), "{completed:?}");
        assert!(*completed.last().unwrap() <= PER_SOURCE / 2_000);
        let restored = result.restored_from[0].expect("restored from an induced checkpoint");
        assert!(
            (1..=7).contains(&restored),
            "failure at 15,000 of 20,000: {restored}"
        );
        let v = verify(&result);
        assert_eq!(
            (v.lost, v.duplicated, v.out_of_order),
            (0, 0, 0),
            "{mode:?}: {v:?}"
        );
        assert_eq!(result.sink_totals(), expected(2, PER_SOURCE));
    }
}

/// Back-pressure is soft: with records smaller than a segment, no task
/// blocks inside an emit (its outputs are checked between records, a full
/// ring counting as unavailable), so a back-pressured task takes mail, a
/// checkpoint trigger among it, between any two records.
#[test]
fn a_back_pressured_job_waits_between_records_never_inside_an_emit() {
    let graph = JobGraph {
        name: "soft".into(),
        vertices: vec![
            JobVertex {
                source: Some(SourceSpec {
                    records: Some(3_000),
                    record_size: 1024,
                    batch: 1,
                    ..SourceSpec::default()
                }),
                ..vertex("source", 2)
            },
            JobVertex {
                operators: vec![OperatorSpec::Map(MapFunction::Identity)],
                ..vertex("map", 2)
            },
            JobVertex {
                sink: Some(SinkKind::Slow { wait_ns: 20_000 }),
                ..vertex("sink", 2)
            },
        ],
        edges: vec![
            JobEdge::new(0, 1, Partitioner::Rebalance),
            JobEdge::new(1, 2, Partitioner::Rebalance),
        ],
        chaining: false,
        buffer_timeout: BufferTimeout::Interval(Duration::from_millis(1)),
    };
    let mut options = options(Alignment::Unaligned, 0);
    options.checkpointing = None;
    let result = run_job(&graph, &options).unwrap();
    assert!(result.is_finished(), "{:?}", result.failure);
    assert_eq!(result.sink_totals().0, 6_000);
    let mut soft = 0;
    for s in &result.subtasks {
        let outputs = &s.result.as_ref().unwrap().outputs;
        for o in outputs {
            assert_eq!(
                o.hard_back_pressure_waits, 0,
                "{} blocked inside an emit",
                s.name
            );
        }
        if !outputs.is_empty() {
            soft += s.mailbox.soft_back_pressured_ns;
        }
    }
    // 6,000 records at 20 µs each outlast what the buffers hold by far.
    assert!(soft > 0, "the job was back-pressured");
    assert!(result.pools_full);
}

/// Buffer debloating (Flink's `BufferDebloater`): a slow sink's gate asks
/// its producer for buffers of about throughput × target ÷ buffers queued,
/// and the producer sends smaller buffers.
#[test]
fn a_slow_consumer_debloats_its_producers_buffers() {
    let run = |debloat: Option<taskbench::network::DebloatConfig>| {
        let graph = JobGraph {
            name: "debloat".into(),
            vertices: vec![
                JobVertex {
                    source: Some(SourceSpec {
                        records: Some(1_000),
                        record_size: 64,
                        batch: 1,
                        ..SourceSpec::default()
                    }),
                    ..vertex("source", 1)
                },
                JobVertex {
                    sink: Some(SinkKind::Slow { wait_ns: 400_000 }),
                    ..vertex("sink", 1)
                },
            ],
            edges: vec![JobEdge::new(0, 1, Partitioner::Forward)],
            chaining: false,
            buffer_timeout: BufferTimeout::Interval(Duration::from_millis(100)),
        };
        let mut options = options(Alignment::Aligned, 0);
        options.checkpointing = None;
        options.network.debloat = debloat;
        let result = run_job(&graph, &options).unwrap();
        assert!(result.is_finished(), "{:?}", result.failure);
        assert_eq!(result.sink_totals().0, 1_000);
        assert!(result.pools_full);
        let task = |name: &str| {
            result
                .subtasks
                .iter()
                .find(|s| s.name.starts_with(name))
                .and_then(|s| s.result.clone())
                .unwrap()
        };
        (task("source").outputs[0], task("sink").debloated)
    };
    // At most 2,500 records/s of 68 bytes and a 5 ms target: 850 bytes or
    // less in front of the sink, a buffer at most that, against 4 KiB
    // segments.
    let config = taskbench::network::DebloatConfig {
        target: Duration::from_millis(5),
        period: Duration::from_millis(5),
        samples: 3,
        ..Default::default()
    };
    let (debloated, sink) = run(Some(config));
    let (size, updates) = sink.expect("the sink debloats");
    assert!(
        updates >= 1 && (256..2048).contains(&size),
        "{size} B after {updates} announcements"
    );
    let (plain, none) = run(None);
    assert_eq!(none, None);
    let per_segment = |m: taskbench::network::PartitionMetrics| m.bytes_out / m.segments_out;
    assert!(
        per_segment(debloated) * 2 < per_segment(plain),
        "bytes per buffer: {} debloated, {} not",
        per_segment(debloated),
        per_segment(plain)
    );
}
