//! The low-latency regime through the benchmark engine: buffers sent per
//! buffer-timeout setting (Flink's flush semantics), no flush on going
//! idle, an idle input that stays open and reads idle, a writer blocked
//! for buffers read as (hard) back-pressured, the bottleneck named by
//! Flink's back-pressure rule. Counts and shares, never speeds; shares only
//! where a descheduled thread cannot tip them (CI machines are noisy).
#![cfg(not(loom))]

use std::time::Instant;

use taskbench::bench::result::{RunResult, TaskMetrics};
use taskbench::bench::{run_profile, Profile, Status};
use taskbench::metrics::CountingAllocator;

#[global_allocator]
static ALLOC: CountingAllocator<std::alloc::System> = CountingAllocator(std::alloc::System);

/// Source (16-byte records) => sink over one local channel, unchained.
const SOURCE_SINK: &str = r#"
name = "source-sink"
chaining = false

[records]
size = 16

[[vertices]]
name = "source"
kind = "source"

[[vertices]]
name = "sink"
kind = "sink"

[[edges]]
from = "source"
to = "sink"

[measure]
warmup = 0
repetitions = 1
"#;

fn run(text: &str, overrides: &[&str]) -> RunResult {
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    let profile = Profile::from_toml(text, "test", &overrides).unwrap();
    let result = run_profile(&profile, &overrides, &mut |_| {}).unwrap();
    assert_eq!(result.status, Status::Complete, "{:?}", result.failure);
    let summary = result.summary.as_ref().unwrap();
    assert_eq!(summary.allocations_during_measurement, 0, "{overrides:?}");
    assert!(summary.pools_full, "{overrides:?}");
    result
}

fn task<'a>(result: &'a RunResult, name: &str) -> &'a TaskMetrics {
    let summary = result.summary.as_ref().unwrap();
    summary
        .tasks
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no task {name}: {:?}", summary.tasks))
}

/// 20 000 records of 16 bytes: 20-byte frames, 400 000 bytes, 12 full
/// 32 KiB segments and a 13th partly filled.
const RECORDS: u64 = 20_000;
const SEGMENTS: u64 = 13;

#[test]
fn buffers_sent_follow_the_buffer_timeout() {
    let count = format!("records.count={RECORDS}");
    // (timeout, paced?) -> the source's buffers sent.
    let sent = |timeout: &str, rate: Option<&str>| {
        let timeout = format!("network.buffer_timeout={timeout}");
        let mut set = vec![count.as_str(), timeout.as_str()];
        set.extend(rate);
        let start = Instant::now();
        let result = run(SOURCE_SINK, &set);
        // Outlasts the source's task: its whole life is within it.
        let wall = start.elapsed();
        let source = task(&result, "source");
        assert_eq!(task(&result, "sink").records_in, RECORDS);
        (
            source.buffers_out,
            source.idle_pct,
            source.buffer_waits,
            wall,
        )
    };
    // `none`: only full segments, and the last one at the end of input,
    // whether the source runs flat out or idles between paced records.
    // (The paced source works ~3 % of its ~100 ms: a preemption tips its
    // idle share only where it lands in that work, so 20 % is far off.)
    assert_eq!(sent("\"none\"", None).0, SEGMENTS);
    let (buffers, idle, ..) = sent("\"none\"", Some("records.rate=200000"));
    assert_eq!(buffers, SEGMENTS, "going idle flushes nothing");
    assert!(idle > 20.0, "the paced source did go idle: {idle:.1} %");
    // A timeout longer than the run: the same, however often it idled.
    let (buffers, idle, ..) = sent("\"10s\"", Some("records.rate=200000"));
    assert_eq!(buffers, SEGMENTS, "going idle flushes nothing");
    assert!(idle > 20.0, "{idle:.1} %");
    // `0`: every record readable as soon as it is written: one buffer per
    // record, and one more for a record that spans two segments.
    let (buffers, ..) = sent("\"0ms\"", None);
    assert!(
        (RECORDS..=RECORDS + SEGMENTS).contains(&buffers),
        "{buffers} buffers for {RECORDS} records"
    );
    // `5ms` at a rate where a segment takes 16 ms to fill: the run lasts
    // about 100 ms, so about 20 timer flushes go out beside the 13
    // segments. How many depends on when the source's thread ran, so the
    // bounds are what the timer allows whatever the scheduling: at least
    // one flush on a deadline (the paced records are due over ~100 ms),
    // and at most one per 5 ms of the run's measured wall time (plus one
    // per wait for a buffer, before which the writer flushes too).
    let (buffers, _, waits, wall) = sent("\"5ms\"", Some("records.rate=200000"));
    let most = SEGMENTS + (wall.as_millis() / 5) as u64 + waits;
    assert!(
        (SEGMENTS + 1..=most).contains(&buffers),
        "{buffers} buffers in {wall:?} ({waits} buffer waits; at most {most}): \
         the timer flushes, not every record and not only full segments"
    );
}

#[test]
fn an_idle_input_stays_open_and_reads_idle() {
    let text = include_str!("../profiles/two-input-one-idle-map-sink.toml");
    // Long enough (tens of ms) that the idle source's wait escalates to a
    // park well before the busy source is done.
    let result = run(
        text,
        &[
            "records.count=10000000",
            "measure.warmup=0",
            "measure.repetitions=1",
        ],
    );
    let busy = task(&result, "source");
    let idle = task(&result, "idle-source");
    assert_eq!(idle.records_out, 0);
    assert_eq!(idle.state, "FINISHED");
    // It does not work, by its thread's CPU time (which a descheduled
    // thread does not accrue), and its wait reads idle. Its busy stretches
    // last microseconds; only a preemption inside them holding it off its
    // core for half the job could tip the idle share below half.
    let cpu = idle.cpu_pct.expect("Linux has thread CPU clocks");
    assert!(
        cpu < 10.0,
        "the idle source waits, it does not work: {idle:?}"
    );
    assert!(
        idle.idle_pct > 50.0,
        "the idle source's wait reads idle: {idle:?}"
    );
    let (busy_end, idle_end) = (busy.ended_ms.unwrap(), idle.ended_ms.unwrap());
    assert!(
        idle_end >= busy_end,
        "it stays open until the busy source finished: {idle_end} < {busy_end} ms"
    );
    let consumer = task(&result, "co-map -> sink");
    assert_eq!(consumer.records_in, 10_000_000);
}

/// A source of `size`-byte records into a flat-map that makes 1024 records
/// of each, chained to its sink: the consumer is so much slower than the
/// source (the source works ~1-2 % of the run) that no descheduling of
/// either thread makes the source read busy or the consumer idle.
const SLOW_CONSUMER: &str = r#"
name = "slow-consumer"

[records]
count = 30000

[[vertices]]
name = "source"
kind = "source"

[[vertices]]
name = "flat-map"
kind = "flat-map"
function = "explode-1024"

[[vertices]]
name = "sink"
kind = "sink"

[[edges]]
from = "source"
to = "flat-map"
partitioner = "rebalance"

[[edges]]
from = "flat-map"
to = "sink"

[runtime]
wait = "spin-park"

[measure]
warmup = 0
repetitions = 1
"#;

#[test]
fn a_writer_waiting_for_buffers_is_back_pressured_and_the_consumer_is_the_bottleneck() {
    for size in ["200B", "16B"] {
        let set = format!("records.size=\"{size}\"");
        let result = run(SLOW_CONSUMER, &[set.as_str()]);
        let source = task(&result, "source");
        let consumer = task(&result, "flat-map -> sink");
        assert_eq!(consumer.records_out, 30_000 * 1024, "{size}");
        // By CPU time, which descheduling does not inflate, the consumer
        // does the work (the source's includes its spinning waits).
        let (source_cpu, consumer_cpu) = (source.cpu_ms.unwrap(), consumer.cpu_ms.unwrap());
        assert!(source_cpu < consumer_cpu, "{size}: {source:?} {consumer:?}");
        assert!(
            source.back_pressured_pct > source.busy_pct,
            "{size}: the source mostly waits for the consumer: {source:?}"
        );
        let hard = source.hard_back_pressured_pct.unwrap();
        let soft = source.soft_back_pressured_pct.unwrap();
        assert!(
            (hard + soft - source.back_pressured_pct).abs() < 0.01,
            "{size}: back-pressure is soft plus hard: {source:?}"
        );
        if size == "200B" {
            // A batch of 1024 records of 200 bytes spans several segments:
            // the source blocks for buffers inside its emits.
            assert!(hard > 0.0 && source.buffer_waits > 0, "{size}: {source:?}");
        }
        assert!(consumer.busy_pct > 50.0, "{size}: {consumer:?}");
        let bottleneck = result.summary.as_ref().unwrap().bottleneck.clone();
        let bottleneck = bottleneck.unwrap_or_else(|| panic!("{size}: no bottleneck named"));
        assert_eq!(bottleneck.task, "flat-map -> sink", "{size}");
        assert_eq!(bottleneck.upstream.len(), 1, "{size}: {bottleneck:?}");
        assert_eq!(bottleneck.upstream[0].0, "source #0", "{size}");
    }
}

#[test]
fn a_source_that_runs_flat_out_with_nothing_back_pressured_is_the_bottleneck() {
    // A chained job: one task, nothing back-pressured, the source busy.
    let result = run(
        include_str!("../profiles/map-sink.toml"),
        &[
            "records.count=2000000",
            "measure.warmup=0",
            "measure.repetitions=1",
        ],
    );
    let bottleneck = result.summary.as_ref().unwrap().bottleneck.clone().unwrap();
    assert!(bottleneck.task.starts_with("source"), "{bottleneck:?}");
    assert!(bottleneck.upstream.is_empty());
}
