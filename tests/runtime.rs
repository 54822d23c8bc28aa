//! The task executor: every `submit_task` refusal, tasks running to
//! FINISHED, and cancellation of created, parked and back-pressured tasks.
#![cfg(not(loom))]

use std::sync::mpsc;
use std::time::{Duration, Instant};

use taskbench::memory::MemoryConfig;
use taskbench::network::{GateKey, NetworkConfig, PartitionKey, Partitioner, ShuffleEnvironment};
use taskbench::runtime::ids::{AllocationId, ExecutionAttemptId, JobId, JobMasterId};
use taskbench::runtime::{
    ExecutionState, JobInformation, ProducedPartition, Task, TaskDeploymentDescriptor,
    TaskExecutor, TaskInformation, TaskSettings, TaskStateUpdate, TaskSubmissionError,
};
use taskbench::streaming::{
    BufferTimeout, ChainEnd, MapFunction, OperatorSpec, SinkKind, SourceSpec, StreamTaskConfig,
    StreamTaskKind,
};
use taskbench::sync::{Arc, Parker, WaitStrategy};

const JOB: JobId = JobId(1);
const LEADER: JobMasterId = JobMasterId(7);
const TIMEOUT: Duration = Duration::from_secs(20);

fn shuffle(total_segments: u32) -> Arc<ShuffleEnvironment> {
    Arc::new(
        ShuffleEnvironment::new(NetworkConfig {
            memory: MemoryConfig {
                segment_size: 4096,
                total_segments,
                huge_pages: false,
            },
            max_record_size: 64,
            ..NetworkConfig::default()
        })
        .unwrap(),
    )
}

fn settings() -> TaskSettings {
    TaskSettings {
        wait: WaitStrategy::default(),
        mailbox_capacity: 16,
        epoch: Instant::now(),
    }
}

fn executor(
    slots: usize,
    shuffle: Arc<ShuffleEnvironment>,
) -> (TaskExecutor, mpsc::Receiver<TaskStateUpdate>) {
    TaskExecutor::new((0..slots).map(|_| None), shuffle, settings())
}

fn config(kind: StreamTaskKind, operators: Vec<OperatorSpec>, end: ChainEnd) -> StreamTaskConfig {
    StreamTaskConfig {
        kind,
        operators,
        end,
        buffer_timeout: BufferTimeout::default(),
    }
}

fn source(records: Option<u64>) -> StreamTaskKind {
    StreamTaskKind::Source(SourceSpec {
        records,
        duration: None,
        ..SourceSpec::default()
    })
}

fn tdd(execution: u64, allocation: u64, config: StreamTaskConfig) -> TaskDeploymentDescriptor {
    TaskDeploymentDescriptor {
        job_id: JOB,
        job_information: JobInformation {
            job_id: JOB,
            job_name: "test".into(),
        },
        task_information: TaskInformation {
            task_name: format!("task-{execution}"),
            parallelism: 1,
            config,
        },
        execution_id: ExecutionAttemptId(execution),
        allocation_id: AllocationId(allocation),
        subtask_index: 0,
        produced_partitions: vec![],
        input_gates: vec![],
    }
}

fn sink_config() -> StreamTaskConfig {
    config(source(Some(10)), vec![], ChainEnd::Sink(SinkKind::Checksum))
}

#[test]
fn submit_refuses_a_job_without_connection() {
    let (executor, _) = executor(1, shuffle(16));
    executor.allocate_slot(0, JOB, AllocationId(1)).unwrap();
    let err = executor
        .submit_task(tdd(1, 1, sink_config()), LEADER)
        .unwrap_err();
    assert!(matches!(err, TaskSubmissionError::NoJobConnection { .. }));
    assert!(
        err.to_string().contains("no job manager is connected"),
        "{err}"
    );
    assert!(executor.task(ExecutionAttemptId(1)).is_none());
}

#[test]
fn submit_refuses_another_job_master() {
    let (executor, _) = executor(1, shuffle(16));
    executor.connect_job(JOB, LEADER);
    executor.allocate_slot(0, JOB, AllocationId(1)).unwrap();
    let err = executor
        .submit_task(tdd(1, 1, sink_config()), JobMasterId(8))
        .unwrap_err();
    assert!(matches!(err, TaskSubmissionError::JobMasterMismatch { .. }));
    assert!(
        err.to_string()
            .contains("does not match the expected leader id"),
        "{err}"
    );
    assert!(executor.task(ExecutionAttemptId(1)).is_none());
}

#[test]
fn submit_refuses_without_an_allocated_slot() {
    let (executor, _) = executor(1, shuffle(16));
    executor.connect_job(JOB, LEADER);
    let err = executor
        .submit_task(tdd(1, 1, sink_config()), LEADER)
        .unwrap_err();
    assert!(matches!(err, TaskSubmissionError::NoSlotAllocated { .. }));
    assert!(err.to_string().contains("no task slot allocated"), "{err}");
    assert!(executor.task(ExecutionAttemptId(1)).is_none());
}

#[test]
fn submit_refuses_inconsistent_job_ids() {
    let (executor, _) = executor(1, shuffle(16));
    executor.connect_job(JOB, LEADER);
    executor.allocate_slot(0, JOB, AllocationId(1)).unwrap();
    let mut descriptor = tdd(1, 1, sink_config());
    descriptor.job_information.job_id = JobId(2);
    let err = executor.submit_task(descriptor, LEADER).unwrap_err();
    assert!(matches!(err, TaskSubmissionError::InconsistentJobId { .. }));
    assert!(err.to_string().contains("inconsistent job id"), "{err}");
    assert!(executor.task(ExecutionAttemptId(1)).is_none());
}

#[test]
fn submit_refuses_a_duplicate_execution() {
    let (executor, _) = executor(2, shuffle(16));
    executor.connect_job(JOB, LEADER);
    executor.allocate_slot(0, JOB, AllocationId(1)).unwrap();
    executor.allocate_slot(1, JOB, AllocationId(2)).unwrap();
    let first = executor
        .submit_task(tdd(1, 1, sink_config()), LEADER)
        .unwrap();
    let err = executor
        .submit_task(tdd(1, 2, sink_config()), LEADER)
        .unwrap_err();
    assert!(matches!(
        err,
        TaskSubmissionError::DuplicateExecution { .. }
    ));
    assert!(err.to_string().contains("already contains a task"), "{err}");
    let outcome = first.await_termination(TIMEOUT).expect("first task ends");
    assert_eq!(outcome.state, ExecutionState::Finished);
    executor.join_threads();
}

/// source → (forward) → map → sink over two slots.
fn deploy_pipeline(
    executor: &TaskExecutor,
    source_records: Option<u64>,
    sink_kind: StreamTaskKind,
) -> (Arc<Task>, Arc<Task>) {
    executor.connect_job(JOB, LEADER);
    executor.allocate_slot(0, JOB, AllocationId(1)).unwrap();
    executor.allocate_slot(1, JOB, AllocationId(2)).unwrap();
    let shuffle = executor.shuffle();
    shuffle.register_partition(PartitionKey(1), 1).unwrap();
    shuffle
        .register_gate(GateKey(1), 1, executor.task_parker(ExecutionAttemptId(2)))
        .unwrap();
    shuffle.connect(PartitionKey(1), 0, GateKey(1), 0).unwrap();
    let mut producer = tdd(
        1,
        1,
        config(source(source_records), vec![], ChainEnd::Outputs),
    );
    producer.produced_partitions = vec![ProducedPartition {
        key: PartitionKey(1),
        partitioner: Partitioner::Forward,
    }];
    let mut consumer = tdd(
        2,
        2,
        config(
            sink_kind,
            vec![OperatorSpec::Map(MapFunction::MultiplyByTwo)],
            ChainEnd::Sink(SinkKind::Checksum),
        ),
    );
    consumer.input_gates = vec![GateKey(1)];
    let consumer = executor.submit_task(consumer, LEADER).unwrap();
    let producer = executor.submit_task(producer, LEADER).unwrap();
    (producer, consumer)
}

#[test]
fn a_two_task_pipeline_runs_to_finished() {
    let shuffle = shuffle(64);
    let (executor, updates) = executor(2, shuffle.clone());
    let (producer, consumer) = deploy_pipeline(&executor, Some(100_000), StreamTaskKind::OneInput);
    let p = producer.await_termination(TIMEOUT).expect("producer ends");
    let c = consumer.await_termination(TIMEOUT).expect("consumer ends");
    assert_eq!(
        (p.state, c.state),
        (ExecutionState::Finished, ExecutionState::Finished),
        "{c:?}"
    );
    let sink = c.result.unwrap().sink.unwrap();
    assert_eq!(
        (sink.records, sink.checksum),
        (100_000, 2 * (0..100_000u64).sum::<u64>())
    );
    executor.join_threads();
    assert!(shuffle.segments().is_full());
    // Each task reported DEPLOYING, INITIALIZING, RUNNING, FINISHED, in order.
    let states: Vec<_> = updates
        .try_iter()
        .filter(|u| u.execution_id == ExecutionAttemptId(1))
        .map(|u| u.state)
        .collect();
    assert_eq!(
        states,
        [
            ExecutionState::Deploying,
            ExecutionState::Initializing,
            ExecutionState::Running,
            ExecutionState::Finished
        ]
    );
    assert!(executor.remove_terminated(ExecutionAttemptId(1)).is_some());
    executor.free_slot(JOB, AllocationId(1)).unwrap();
}

#[test]
fn cancel_before_the_thread_runs_ends_canceled() {
    let (tx, rx) = mpsc::channel();
    let task = Task::new(
        tdd(1, 1, sink_config()),
        Arc::new(Parker::new()),
        shuffle(16),
        settings(),
        tx,
    );
    task.cancel();
    assert_eq!(task.state(), ExecutionState::Canceled);
    task.run();
    let outcome = task.outcome().unwrap();
    assert_eq!(outcome.state, ExecutionState::Canceled);
    assert!(outcome.result.is_none(), "the invokable never ran");
    assert_eq!(
        rx.try_iter().last().unwrap().state,
        ExecutionState::Canceled
    );
}

#[test]
fn fail_externally_before_the_thread_runs_ends_failed_with_the_cause() {
    let (tx, _rx) = mpsc::channel();
    let task = Task::new(
        tdd(1, 1, sink_config()),
        Arc::new(Parker::new()),
        shuffle(16),
        settings(),
        tx,
    );
    task.fail_externally("the job master said so");
    task.run();
    let outcome = task.outcome().unwrap();
    assert_eq!(outcome.state, ExecutionState::Failed);
    assert_eq!(outcome.cause.as_deref(), Some("the job master said so"));
}

/// Wires partition 1 → gate 1 and returns the producer's and the consumer's
/// descriptors (endless source → map → sink).
fn wired_pair(executor: &TaskExecutor) -> (TaskDeploymentDescriptor, TaskDeploymentDescriptor) {
    executor.connect_job(JOB, LEADER);
    executor.allocate_slot(0, JOB, AllocationId(1)).unwrap();
    executor.allocate_slot(1, JOB, AllocationId(2)).unwrap();
    let shuffle = executor.shuffle();
    shuffle.register_partition(PartitionKey(1), 1).unwrap();
    shuffle
        .register_gate(GateKey(1), 1, executor.task_parker(ExecutionAttemptId(2)))
        .unwrap();
    shuffle.connect(PartitionKey(1), 0, GateKey(1), 0).unwrap();
    let mut producer = tdd(1, 1, config(source(None), vec![], ChainEnd::Outputs));
    producer.produced_partitions = vec![ProducedPartition {
        key: PartitionKey(1),
        partitioner: Partitioner::Forward,
    }];
    let mut consumer = tdd(
        2,
        2,
        config(
            StreamTaskKind::OneInput,
            vec![],
            ChainEnd::Sink(SinkKind::Checksum),
        ),
    );
    consumer.input_gates = vec![GateKey(1)];
    (producer, consumer)
}

#[test]
fn cancel_a_running_consumer_parked_on_empty_input() {
    let shuffle = shuffle(64);
    let (executor, _updates) = executor(2, shuffle.clone());
    let (_, consumer) = wired_pair(&executor);
    // The producer is never deployed: the consumer runs and parks.
    let consumer = executor.submit_task(consumer, LEADER).unwrap();
    let parker = executor.task_parker(ExecutionAttemptId(2));
    while consumer.state() != ExecutionState::Running || !parker.is_parked() {
        std::thread::yield_now();
    }
    let outcome = executor
        .cancel_task(ExecutionAttemptId(2), TIMEOUT)
        .expect("a parked task ends");
    assert_eq!(outcome.state, ExecutionState::Canceled);
    executor.join_threads();
    assert_eq!(
        shuffle.release_all(),
        (1, 0),
        "the never-deployed producer's partition"
    );
    assert!(shuffle.segments().is_full());
}

#[test]
fn cancel_a_running_producer_back_pressured_by_a_consumer_that_does_not_read() {
    let shuffle = shuffle(64);
    let (executor, _updates) = executor(2, shuffle.clone());
    let (producer, _) = wired_pair(&executor);
    // The consumer's gate exists but nobody reads it.
    let gate = shuffle.create_gate(GateKey(1)).unwrap();
    let producer = executor.submit_task(producer, LEADER).unwrap();
    let parker = executor.task_parker(ExecutionAttemptId(1));
    while producer.state() != ExecutionState::Running || !parker.is_parked() {
        std::thread::yield_now();
    }
    let outcome = executor
        .cancel_task(ExecutionAttemptId(1), TIMEOUT)
        .expect("a back-pressured task ends");
    assert_eq!(outcome.state, ExecutionState::Canceled);
    let emitted = outcome.result.map(|r| r.records_emitted);
    assert!(emitted.is_some_and(|n| n > 0), "{emitted:?}");
    executor.join_threads();
    drop(gate);
    assert!(
        shuffle.segments().is_full(),
        "pools are full after a canceled task"
    );
}

#[test]
fn cancel_right_after_submit_ends_canceled_whatever_state_it_caught() {
    // Canceled as soon as submit returns, the task is CREATED, DEPLOYING or
    // just running; every case must end CANCELED with its pools full.
    for _ in 0..20 {
        let shuffle = shuffle(64);
        let (executor, updates) = executor(2, shuffle.clone());
        let (producer, _) = wired_pair(&executor);
        let gate = shuffle.create_gate(GateKey(1)).unwrap();
        let task = executor.submit_task(producer, LEADER).unwrap();
        task.cancel();
        let outcome = task
            .await_termination(TIMEOUT)
            .expect("a canceled task ends");
        assert_eq!(
            outcome.state,
            ExecutionState::Canceled,
            "{:?}",
            outcome.cause
        );
        executor.join_threads();
        let states: Vec<_> = updates.try_iter().map(|u| u.state).collect();
        assert_eq!(states.last(), Some(&ExecutionState::Canceled), "{states:?}");
        drop(gate);
        shuffle.release_all();
        assert!(shuffle.segments().is_full());
    }
}
