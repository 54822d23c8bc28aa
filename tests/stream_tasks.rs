//! Stream tasks on their own threads, wired through the shuffle
//! environment and driven by their mailbox loops: source → map → sink,
//! chained and unchained, two-input with one idle input, buffer timeouts.
#![cfg(not(loom))]

use std::time::{Duration, Instant};

use taskbench::mailbox::{LoopExit, MailboxProcessor, TaskMailbox};
use taskbench::memory::MemoryConfig;
use taskbench::network::{
    GateKey, NetworkConfig, PartitionKey, Partitioner, RecordWriter, ShuffleEnvironment,
};
use taskbench::streaming::{
    BufferTimeout, ChainEnd, MapFunction, OperatorChain, OperatorSpec, SinkKind, SourceSpec,
    StreamTask, StreamTaskConfig, StreamTaskKind, StreamTaskResult,
};
use taskbench::sync::{Arc, Parker, WaitStrategy};

const MAX_RECORD: usize = 1024;

fn environment() -> Arc<ShuffleEnvironment> {
    Arc::new(
        ShuffleEnvironment::new(NetworkConfig {
            memory: MemoryConfig {
                segment_size: 4096,
                total_segments: 256,
                huge_pages: false,
            },
            max_record_size: MAX_RECORD,
            ..NetworkConfig::default()
        })
        .unwrap(),
    )
}

struct Vertex {
    config: StreamTaskConfig,
    inputs: Vec<GateKey>,
    output: Option<(PartitionKey, Partitioner)>,
}

/// Runs every vertex on its own thread (one subtask each) and returns
/// their results in order.
fn run(
    env: &Arc<ShuffleEnvironment>,
    vertices: Vec<Vertex>,
    parkers: Vec<Arc<Parker>>,
) -> Vec<StreamTaskResult> {
    let epoch = Instant::now();
    let threads: Vec<_> = vertices
        .into_iter()
        .zip(parkers)
        .map(|(vertex, parker)| {
            let env = env.clone();
            std::thread::spawn(move || {
                let wait = WaitStrategy::default();
                let inputs = vertex
                    .inputs
                    .iter()
                    .map(|g| env.create_gate(*g).unwrap())
                    .collect();
                let writers = vertex
                    .output
                    .map(|(p, partitioner)| {
                        let partition = env.create_partition(p, parker.clone(), wait).unwrap();
                        RecordWriter::new(partition, partitioner, 0)
                    })
                    .into_iter()
                    .collect();
                let mut task =
                    StreamTask::new(&vertex.config, inputs, writers, MAX_RECORD, (0, 1), epoch)
                        .unwrap();
                let mailbox = Arc::new(TaskMailbox::new(16, parker));
                let mut processor = MailboxProcessor::new(mailbox, wait);
                assert_eq!(task.invoke(&mut processor).unwrap(), LoopExit::Finished);
                task.result()
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

fn source(records: u64, operators: Vec<OperatorSpec>, end: ChainEnd) -> StreamTaskConfig {
    StreamTaskConfig {
        kind: StreamTaskKind::Source(SourceSpec {
            records: Some(records),
            ..SourceSpec::default()
        }),
        operators,
        end,
        buffer_timeout: BufferTimeout::default(),
    }
}

fn sum(n: u64) -> u64 {
    n * (n - 1) / 2
}

#[test]
fn chained_source_map_sink() {
    let env = environment();
    let config = source(
        1_000_000,
        vec![OperatorSpec::Map(MapFunction::MultiplyByTwo)],
        ChainEnd::Sink(SinkKind::Checksum),
    );
    let results = run(
        &env,
        vec![Vertex {
            config,
            inputs: vec![],
            output: None,
        }],
        vec![Arc::new(Parker::new())],
    );
    let sink = results[0].sink.clone().unwrap();
    assert_eq!(
        (sink.records, sink.checksum),
        (1_000_000, 2 * sum(1_000_000))
    );
}

#[test]
fn unchained_source_map_sink_across_three_threads() {
    for timeout in [
        BufferTimeout::default(),
        BufferTimeout::Never,
        BufferTimeout::EveryRecord,
    ] {
        let env = environment();
        let parkers: Vec<_> = (0..3).map(|_| Arc::new(Parker::new())).collect();
        for i in 0..2 {
            env.register_partition(PartitionKey(i), 1).unwrap();
            env.register_gate(GateKey(i), 1, parkers[i as usize + 1].clone())
                .unwrap();
            env.connect(PartitionKey(i), 0, GateKey(i), 0).unwrap();
        }
        let records = if timeout == BufferTimeout::EveryRecord {
            20_000
        } else {
            300_000
        };
        let mut src = source(records, vec![], ChainEnd::Outputs);
        src.buffer_timeout = timeout;
        let vertices = vec![
            Vertex {
                config: src,
                inputs: vec![],
                output: Some((PartitionKey(0), Partitioner::Forward)),
            },
            Vertex {
                config: StreamTaskConfig {
                    kind: StreamTaskKind::OneInput,
                    operators: vec![OperatorSpec::Map(MapFunction::Increment)],
                    end: ChainEnd::Outputs,
                    buffer_timeout: timeout,
                },
                inputs: vec![GateKey(0)],
                output: Some((PartitionKey(1), Partitioner::Forward)),
            },
            Vertex {
                config: StreamTaskConfig {
                    kind: StreamTaskKind::OneInput,
                    operators: vec![],
                    end: ChainEnd::Sink(SinkKind::Checksum),
                    buffer_timeout: timeout,
                },
                inputs: vec![GateKey(1)],
                output: None,
            },
        ];
        let results = run(&env, vertices, parkers);
        assert_eq!(results[0].records_emitted, records, "{timeout:?}");
        assert_eq!(results[1].records_in, records, "{timeout:?}");
        let sink = results[2].sink.clone().unwrap();
        assert_eq!(
            (sink.records, sink.checksum),
            (records, sum(records) + records),
            "{timeout:?}"
        );
        let out = results[0].outputs[0];
        match timeout {
            BufferTimeout::EveryRecord => {
                // 8-byte records go in batches, each written in one pass and
                // published once; a segment that fills mid-batch publishes
                // its part when it is finished.
                let batches = records.div_ceil(OperatorChain::VALUE_BATCH as u64);
                assert!(out.buffers_out >= batches, "{out:?}");
                assert!(out.buffers_out <= batches + out.segments_out, "{out:?}");
            }
            // Only full segments, and the last one at the end.
            BufferTimeout::Never => assert_eq!(out.buffers_out, out.segments_out, "{out:?}"),
            BufferTimeout::Interval(_) => {}
        }
        assert!(env.segments().is_full(), "{timeout:?}");
    }
}

#[test]
fn two_input_task_with_one_idle_input_finishes() {
    let env = environment();
    let parkers: Vec<_> = (0..3).map(|_| Arc::new(Parker::new())).collect();
    for i in 0..2 {
        env.register_partition(PartitionKey(i), 1).unwrap();
        env.register_gate(GateKey(i), 1, parkers[2].clone())
            .unwrap();
        env.connect(PartitionKey(i), 0, GateKey(i), 0).unwrap();
    }
    let vertices = vec![
        Vertex {
            config: source(200_000, vec![], ChainEnd::Outputs),
            inputs: vec![],
            output: Some((PartitionKey(0), Partitioner::Forward)),
        },
        Vertex {
            // The idle input: a source with nothing to emit.
            config: source(0, vec![], ChainEnd::Outputs),
            inputs: vec![],
            output: Some((PartitionKey(1), Partitioner::Forward)),
        },
        Vertex {
            config: StreamTaskConfig {
                kind: StreamTaskKind::TwoInput,
                operators: vec![OperatorSpec::Map(MapFunction::MultiplyByTwo)],
                end: ChainEnd::Sink(SinkKind::Checksum),
                buffer_timeout: BufferTimeout::Interval(Duration::from_millis(1)),
            },
            inputs: vec![GateKey(0), GateKey(1)],
            output: None,
        },
    ];
    let results = run(&env, vertices, parkers);
    let sink = results[2].sink.clone().unwrap();
    assert_eq!((sink.records, sink.checksum), (200_000, 2 * sum(200_000)));
    assert!(env.segments().is_full());
}

#[test]
fn inputs_and_outputs_must_fit_the_task_kind() {
    let config = StreamTaskConfig {
        kind: StreamTaskKind::TwoInput,
        operators: vec![],
        end: ChainEnd::Sink(SinkKind::Checksum),
        buffer_timeout: BufferTimeout::default(),
    };
    let err =
        StreamTask::new(&config, vec![], vec![], MAX_RECORD, (0, 1), Instant::now()).unwrap_err();
    assert!(
        err.to_string().contains("cannot have 0 input gate(s)"),
        "{err}"
    );
    let err = StreamTask::new(
        &source(1, vec![], ChainEnd::Outputs),
        vec![],
        vec![],
        MAX_RECORD,
        (0, 1),
        Instant::now(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("needs an output"), "{err}");
}
