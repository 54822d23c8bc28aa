//! Whole jobs through `run_job`: the chained map-sink pipeline (one task per
//! source subtask) and the unchained source → map → sink pipeline (three
//! tasks per subtask, forward edges), across segment sizes 4 KiB … 1 MiB
//! and parallelism 1, 2, 4, with 8-byte records (Flink's `Long`s).
//!
//! Each sample is one job of `iters` records per source subtask, timed over
//! its data window (from the first source turn to the last task's end of
//! input: deployment and tear-down excluded); the sinks' count and checksum
//! are checked before the time is returned.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use taskbench::job::{run_job, JobEdge, JobGraph, JobOptions, JobVertex};
use taskbench::memory::MemoryConfig;
use taskbench::network::{NetworkConfig, Partitioner};
use taskbench::streaming::{BufferTimeout, MapFunction, OperatorSpec, SinkKind, SourceSpec};

const SEGMENT_SIZES: [usize; 4] = [4 << 10, 32 << 10, 256 << 10, 1 << 20];

fn graph(parallelism: u32, records: u64, chaining: bool) -> JobGraph {
    let vertex = |name: &str| JobVertex {
        name: name.into(),
        parallelism,
        source: None,
        operators: vec![],
        sink: None,
    };
    let forward = |from, to| JobEdge::new(from, to, Partitioner::Forward);
    JobGraph {
        name: "source-map-sink".into(),
        vertices: vec![
            JobVertex {
                source: Some(SourceSpec {
                    records: Some(records),
                    ..SourceSpec::default()
                }),
                ..vertex("source")
            },
            JobVertex {
                operators: vec![OperatorSpec::Map(MapFunction::MultiplyByTwo)],
                ..vertex("map")
            },
            JobVertex {
                sink: Some(SinkKind::Checksum),
                ..vertex("sink")
            },
        ],
        edges: vec![forward(0, 1), forward(1, 2)],
        chaining,
        buffer_timeout: BufferTimeout::default(),
    }
}

fn options(segment_size: usize) -> JobOptions {
    JobOptions {
        network: NetworkConfig {
            memory: MemoryConfig {
                segment_size,
                total_segments: ((64 << 20) / segment_size) as u32,
                huge_pages: false,
            },
            ..NetworkConfig::default()
        },
        pinning: match std::env::var("TB_PIN").as_deref() {
            Ok("none") => taskbench::job::Pinning::None,
            _ => taskbench::job::Pinning::Spread,
        },
        ..JobOptions::default()
    }
}

/// Runs one job of `records` per source subtask; returns its data window.
fn job(parallelism: u32, records: u64, chaining: bool, segment_size: usize) -> Duration {
    let result = run_job(
        &graph(parallelism, records, chaining),
        &options(segment_size),
    )
    .expect("job runs");
    assert!(result.is_finished(), "{:?}", result.failure);
    let n = records * u64::from(parallelism);
    assert_eq!(result.sink_totals(), (n, n.wrapping_mul(n.wrapping_sub(1))));
    result
        .data_window()
        .expect("a finished job has a data window")
}

fn pipeline(c: &mut Criterion) {
    for chaining in [true, false] {
        let name = if chaining {
            "pipeline/map-sink-chained"
        } else {
            "pipeline/source-map-sink"
        };
        let mut group = c.benchmark_group(name);
        group.sample_size(10);
        group.warm_up_time(Duration::from_secs(1));
        group.measurement_time(Duration::from_secs(3));
        for parallelism in [1u32, 2, 4] {
            group.throughput(Throughput::Elements(u64::from(parallelism)));
            for segment_size in SEGMENT_SIZES {
                if chaining && segment_size != 32 << 10 {
                    continue; // a chained job sends nothing over the network
                }
                let id = BenchmarkId::new(
                    format!("p{parallelism}"),
                    format!("{}KiB", segment_size >> 10),
                );
                group.bench_function(id, |b| {
                    b.iter_custom(|iters| {
                        // Tiny jobs measure thread start-up noise: run at
                        // least a million records and scale the time down.
                        let records = iters.max(1_000_000);
                        job(parallelism, records, chaining, segment_size)
                            .mul_f64(iters as f64 / records as f64)
                    })
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
