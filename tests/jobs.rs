//! Whole jobs through `run_job`: source → map → sink over every edge kind,
//! parallelism 1–4 (more tasks than cores), chained and unchained; two
//! inputs with one idle; a failing operator. Every record arrives exactly
//! once, every task ends as it must, every pool is full afterwards, and the
//! task threads allocate nothing while records flow.
#![cfg(not(loom))]

use taskbench::job::{run_job, JobEdge, JobGraph, JobOptions, JobVertex, Pinning};
use taskbench::memory::MemoryConfig;
use taskbench::metrics::CountingAllocator;
use taskbench::network::{NetworkConfig, Partitioner};
use taskbench::runtime::ExecutionState;
use taskbench::streaming::{BufferTimeout, MapFunction, OperatorSpec, SinkKind, SourceSpec};
use taskbench::sync::WaitStrategy;

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

fn source(parallelism: u32, records: Option<u64>) -> JobVertex {
    JobVertex {
        source: Some(SourceSpec {
            records,
            ..SourceSpec::default()
        }),
        ..vertex("source", parallelism)
    }
}

fn options() -> JobOptions {
    JobOptions {
        network: NetworkConfig {
            memory: MemoryConfig {
                segment_size: 4096,
                total_segments: 1024,
                huge_pages: false,
            },
            ..NetworkConfig::default()
        },
        ..JobOptions::default()
    }
}

/// source(p) → map ×2 (p) → sink(q) with `partitioner` on the second edge.
fn pipeline(p: u32, q: u32, partitioner: Partitioner, chaining: bool, records: u64) -> JobGraph {
    JobGraph {
        name: "source-map-sink".into(),
        vertices: vec![
            source(p, Some(records)),
            JobVertex {
                operators: vec![OperatorSpec::Map(MapFunction::MultiplyByTwo)],
                ..vertex("map", p)
            },
            JobVertex {
                sink: Some(SinkKind::Checksum),
                ..vertex("sink", q)
            },
        ],
        edges: vec![
            JobEdge::new(0, 1, Partitioner::Forward),
            JobEdge::new(1, 2, partitioner),
        ],
        chaining,
        buffer_timeout: BufferTimeout::default(),
    }
}

#[test]
fn every_edge_kind_and_parallelism_delivers_every_record_once() {
    const RECORDS: u64 = 50_000; // per source subtask
    for p in 1..=4u32 {
        for (partitioner, q) in [
            (Partitioner::Forward, p),
            (Partitioner::Rebalance, 2),
            (Partitioner::hash_for(3), 3),
            (Partitioner::Broadcast, 2),
            (Partitioner::Rescale, 2),
        ] {
            for chaining in [true, false] {
                let graph = pipeline(p, q, partitioner, chaining, RECORDS);
                let case = format!("p={p} {partitioner:?}→{q} chaining={chaining}");
                let result = run_job(&graph, &options()).unwrap_or_else(|e| panic!("{case}: {e}"));
                assert!(result.is_finished(), "{case}: {:?}", result.failure);
                let copies = if partitioner == Partitioner::Broadcast {
                    u64::from(q)
                } else {
                    1
                };
                let n = RECORDS * u64::from(p);
                // Values 0..n across source subtasks, doubled by the map.
                let expected = (n * copies, copies.wrapping_mul(n * (n - 1)));
                assert_eq!(result.sink_totals(), expected, "{case}");
                assert!(result.pools_full, "{case}");
                for s in &result.subtasks {
                    assert_eq!(s.loop_allocations, 0, "{case}: {} allocated", s.name);
                    for out in &s.result.as_ref().expect("a finished task reports").outputs {
                        // Every writer sent buffers, so its pool had one in
                        // use at least, and never more than it may hold
                        // with its overdraft.
                        assert!(out.buffers_out > 0, "{case}: {} {out:?}", s.name);
                        assert!(out.pool_size >= 1, "{case}: {} {out:?}", s.name);
                        let overdraft = options().network.max_overdraft_buffers;
                        assert!(
                            (1..=out.pool_size + overdraft).contains(&out.max_buffers_in_use),
                            "{case}: {} {out:?}",
                            s.name
                        );
                        // A wait is counted only with time spent waiting.
                        assert!(
                            out.hard_back_pressure_waits == 0 || out.hard_back_pressured_ns > 0,
                            "{case}: {} {out:?}",
                            s.name
                        );
                        assert!(out.hard_back_pressure_waits <= out.buffers_out + 1);
                    }
                }
                let tasks = if chaining && partitioner == Partitioner::Forward {
                    p as usize
                } else if chaining {
                    (p + q) as usize
                } else {
                    (2 * p + q) as usize
                };
                assert_eq!(result.subtasks.len(), tasks, "{case}");
            }
        }
    }
}

#[test]
fn two_inputs_with_one_idle_finish_with_the_right_counts() {
    let graph = JobGraph {
        name: "two-input".into(),
        vertices: vec![
            source(1, Some(100_000)),
            source(1, Some(0)),
            JobVertex {
                operators: vec![OperatorSpec::Map(MapFunction::Increment)],
                sink: Some(SinkKind::Checksum),
                ..vertex("co-map", 1)
            },
        ],
        edges: vec![
            JobEdge::new(0, 2, Partitioner::Forward),
            JobEdge::new(1, 2, Partitioner::Forward),
        ],
        chaining: true,
        buffer_timeout: BufferTimeout::Interval(std::time::Duration::from_millis(1)),
    };
    let result = run_job(&graph, &options()).unwrap();
    assert!(result.is_finished());
    assert_eq!(
        result.sink_totals(),
        (100_000, (0..100_000u64).sum::<u64>() + 100_000)
    );
    assert!(result.pools_full);
}

#[test]
fn a_failing_operator_fails_its_task_and_cancels_the_others() {
    let mut graph = pipeline(2, 2, Partitioner::Rebalance, false, 0);
    graph.vertices[0].source = Some(SourceSpec {
        records: None,
        ..SourceSpec::default()
    });
    graph.vertices[2].operators = vec![OperatorSpec::FailAfter { records: 5_000 }];
    let result = run_job(&graph, &options()).unwrap();
    let failure = result.failure.clone().expect("the job failed");
    assert!(
        failure.contains("operator fail-after failed after 5000 records"),
        "{failure}"
    );
    let failed = result
        .subtasks
        .iter()
        .filter(|s| s.state == ExecutionState::Failed)
        .count();
    assert!(failed >= 1);
    for s in &result.subtasks {
        assert!(
            matches!(s.state, ExecutionState::Failed | ExecutionState::Canceled),
            "{} {}: {}",
            s.name,
            s.subtask,
            s.state
        );
        if s.state == ExecutionState::Failed {
            assert!(
                s.cause.as_deref().unwrap_or("").contains("fail-after"),
                "{:?}",
                s.cause
            );
        }
    }
    assert!(result.pools_full, "pools are full after a failed job");
}

#[test]
fn busy_spin_with_more_tasks_than_cores_escalates_and_finishes() {
    let mut opts = options();
    opts.wait = WaitStrategy::BusySpin;
    opts.pinning = Pinning::Spread;
    let graph = pipeline(3, 3, Partitioner::Rebalance, false, 20_000);
    let result = run_job(&graph, &opts).unwrap();
    assert!(result.is_finished());
    let cores = core_affinity_count();
    if result.subtasks.len() > cores {
        assert_ne!(result.wait, WaitStrategy::BusySpin, "spinning escalated");
    }
}

fn core_affinity_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[test]
fn impossible_topologies_are_refused_with_the_reason() {
    let mut cyclic = pipeline(1, 1, Partitioner::Rebalance, false, 1);
    cyclic
        .edges
        .push(JobEdge::new(2, 1, Partitioner::Rebalance));
    cyclic.vertices[2].sink = None;
    let err = run_job(&cyclic, &options()).unwrap_err();
    assert!(err.to_string().contains("cycle"), "{err}");

    let mut missing = pipeline(1, 1, Partitioner::Rebalance, false, 1);
    missing.edges[1].to = 9;
    let err = run_job(&missing, &options()).unwrap_err();
    assert!(err.to_string().contains("refers to vertex 9"), "{err}");

    let mut sink_with_outputs = pipeline(1, 1, Partitioner::Rebalance, false, 1);
    sink_with_outputs.vertices[1].sink = Some(SinkKind::Checksum);
    let err = run_job(&sink_with_outputs, &options()).unwrap_err();
    assert!(
        err.to_string()
            .contains("sink vertex 'map' cannot have outputs"),
        "{err}"
    );

    let mut forward = pipeline(2, 3, Partitioner::Forward, false, 1);
    forward.vertices[2].parallelism = 3;
    let err = run_job(&forward, &options()).unwrap_err();
    assert!(err.to_string().contains("needs equal parallelism"), "{err}");

    let mut zero = pipeline(1, 1, Partitioner::Rebalance, false, 1);
    zero.vertices[1].parallelism = 0;
    let err = run_job(&zero, &options()).unwrap_err();
    assert!(err.to_string().contains("parallelism 0"), "{err}");
}

#[test]
fn an_n_input_task_reads_three_sources() {
    let graph = JobGraph {
        name: "three-inputs".into(),
        vertices: vec![
            source(1, Some(10_000)),
            source(2, Some(10_000)),
            source(1, Some(0)),
            JobVertex {
                sink: Some(SinkKind::Checksum),
                ..vertex("union", 1)
            },
        ],
        edges: (0..3)
            .map(|from| JobEdge::new(from, 3, Partitioner::Rebalance))
            .collect(),
        chaining: true,
        buffer_timeout: BufferTimeout::default(),
    };
    let result = run_job(&graph, &options()).unwrap();
    assert!(result.is_finished(), "{:?}", result.failure);
    // 10 000 values from the first source, 20 000 (two subtasks) from the second.
    let second = 20_000u64;
    assert_eq!(
        result.sink_totals(),
        (
            30_000,
            (0..10_000u64).sum::<u64>() + second * (second - 1) / 2
        )
    );
    assert!(result.pools_full);
}

#[test]
fn many_channels_per_pair_model_a_union_reader() {
    // Flink's network throughput shape: writers → one reader, each writer
    // with many subpartitions, all read by the one reader.
    for (partitioner, channels, copies) in [
        (Partitioner::Rebalance, 100u32, 1u64),
        (Partitioner::Broadcast, 5, 5),
    ] {
        let mut graph = pipeline(3, 1, partitioner, true, 20_000);
        graph.edges[1].channels = channels;
        let result = run_job(&graph, &options()).unwrap();
        assert!(result.is_finished(), "{:?}", result.failure);
        let n = 60_000u64;
        assert_eq!(
            result.sink_totals(),
            (n * copies, copies.wrapping_mul(n * (n - 1)))
        );
        assert!(result.pools_full);
        let reader = result.subtasks.last().unwrap();
        assert_eq!(reader.name, "sink");
        assert_eq!(reader.result.as_ref().unwrap().records_in, n * copies);
        let window = result.data_window().expect("every task ran its loop");
        assert!(
            window <= result.elapsed,
            "{window:?} > {:?}",
            result.elapsed
        );
    }
}

#[test]
fn more_than_one_channel_per_pair_is_refused_on_pointwise_edges() {
    let mut graph = pipeline(2, 2, Partitioner::Forward, false, 10);
    graph.edges[1].channels = 4;
    let err = run_job(&graph, &options()).unwrap_err().to_string();
    assert!(err.contains("'map' -> 'sink' has 4 channels"), "{err}");
    graph.edges[1].channels = 0;
    graph.edges[1].partitioner = Partitioner::Rebalance;
    let err = run_job(&graph, &options()).unwrap_err().to_string();
    assert!(err.contains("has 0 channels"), "{err}");
}

#[test]
fn a_keyed_count_behind_a_keyed_hash_edge_keeps_each_key_on_one_subtask() {
    use taskbench::streaming::AggregateKind;
    for p in [1u32, 2, 3] {
        let graph = JobGraph {
            name: "keyed-count".into(),
            vertices: vec![
                source(2, Some(500)),
                JobVertex {
                    operators: vec![OperatorSpec::KeyedAggregate {
                        kind: AggregateKind::Count,
                        key_space: 10,
                    }],
                    sink: Some(SinkKind::Checksum),
                    ..vertex("count", p)
                },
            ],
            edges: vec![JobEdge::new(0, 1, Partitioner::hash_keyed(p, 10))],
            chaining: true,
            buffer_timeout: BufferTimeout::default(),
        };
        let result = run_job(&graph, &options()).unwrap();
        assert!(result.is_finished(), "{:?}", result.failure);
        // Each key's 100 records meet one counter: 1..=100 per key, as with
        // one subtask. A key split over subtasks would sum less.
        assert_eq!(result.sink_totals(), (1000, 10 * (100 * 101 / 2)), "p={p}");
    }
}
