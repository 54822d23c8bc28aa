//! The task executor: every `submit_task` refusal, tasks running to
//! FINISHED, and cancellation of tasks pinned in each state it claims —
//! CREATED, DEPLOYING (waiting for network buffers), RUNNING and parked,
//! RUNNING and back-pressured — each ending CANCELED with its thread joined
//! and every pool full.
#![cfg(not(loom))]

use std::sync::mpsc;
use std::time::{Duration, Instant};

use taskbench::memory::{BufferPool, MemoryConfig};
use taskbench::network::{
    GateKey, InputGate, NetworkConfig, PartitionKey, Partitioner, ShuffleEnvironment,
};
use taskbench::runtime::ids::{AllocationId, ExecutionAttemptId, JobId, JobMasterId};
use taskbench::runtime::{
    CancelTaskError, ExecutionState, JobInformation, ProducedPartition, Task,
    TaskDeploymentDescriptor, TaskExecutor, TaskInformation, TaskOutcome, TaskSettings,
    TaskStateUpdate, TaskSubmissionError,
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
    shuffle_with_timeout(
        total_segments,
        NetworkConfig::default().buffers_request_timeout,
    )
}

fn shuffle_with_timeout(
    total_segments: u32,
    buffers_request_timeout: Duration,
) -> Arc<ShuffleEnvironment> {
    Arc::new(
        ShuffleEnvironment::new(NetworkConfig {
            memory: MemoryConfig {
                segment_size: 4096,
                total_segments,
                huge_pages: false,
            },
            max_record_size: 64,
            buffers_request_timeout,
            ..NetworkConfig::default()
        })
        .unwrap(),
    )
}

/// Polls `condition` until it holds; the deadline only guards against a
/// hang (it is never what a test measures).
fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Claims all but `free` of the global pool's segments, as the pools of
/// other running tasks would.
fn hold_all_but(shuffle: &ShuffleEnvironment, free: u32) -> BufferPool {
    let held = shuffle.segments().total_segments() - free;
    BufferPool::new(
        shuffle.segments().clone(),
        held,
        held,
        Arc::new(Parker::new()),
    )
    .unwrap()
}

fn settings() -> TaskSettings {
    TaskSettings {
        wait: WaitStrategy::default(),
        mailbox_capacity: 16,
        epoch: Instant::now(),
        trace_events: 0,
        stall_probe: false,
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
            checkpointing: None,
            max_sink_records: None,
        },
        task_information: TaskInformation {
            task_name: format!("task-{execution}"),
            vertex: 0,
            parallelism: 1,
            config,
        },
        execution_id: ExecutionAttemptId(execution),
        allocation_id: AllocationId(allocation),
        subtask_index: 0,
        produced_partitions: vec![],
        input_gates: vec![],
        attempt_number: 0,
        task_restore: None,
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

/// Both ends of a doubling pipeline finished, and the sink saw `records`
/// values 0.. doubled.
fn assert_pipeline_finished(producer: &TaskOutcome, consumer: TaskOutcome, records: u64) {
    assert_eq!(
        (producer.state, consumer.state),
        (ExecutionState::Finished, ExecutionState::Finished),
        "{producer:?} {consumer:?}"
    );
    let sink = consumer.result.unwrap().sink.unwrap();
    assert_eq!(
        (sink.records, sink.checksum),
        (records, 2 * (0..records).sum::<u64>())
    );
}

/// The task reported DEPLOYING, INITIALIZING, RUNNING, FINISHED, in order.
fn assert_walked_to_finished(updates: &mpsc::Receiver<TaskStateUpdate>, task: ExecutionAttemptId) {
    let states: Vec<_> = updates
        .try_iter()
        .filter(|u| u.execution_id == task)
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
}

#[test]
fn a_two_task_pipeline_runs_to_finished() {
    let shuffle = shuffle(64);
    let (executor, updates) = executor(2, shuffle.clone());
    let (producer, consumer) = deploy_pipeline(&executor, Some(100_000), StreamTaskKind::OneInput);
    let p = producer.await_termination(TIMEOUT).expect("producer ends");
    let c = consumer.await_termination(TIMEOUT).expect("consumer ends");
    assert_pipeline_finished(&p, c, 100_000);
    executor.join_threads();
    assert!(shuffle.segments().is_full());
    assert_walked_to_finished(&updates, ExecutionAttemptId(1));
    assert!(executor.remove_terminated(ExecutionAttemptId(1)).is_some());
    executor.free_slot(JOB, AllocationId(1)).unwrap();
}

#[test]
fn cancel_before_the_thread_runs_ends_canceled() {
    let (tx, rx) = mpsc::channel();
    let task = Task::new(
        tdd(1, 1, sink_config()),
        None,
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
        None,
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
    wait_until("the consumer runs and parks on empty input", || {
        consumer.state() == ExecutionState::Running && parker.is_parked()
    });
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
    // Back-pressured: its pool has grown to its maximum (10 segments, all in
    // the ring or being written) and it parks waiting for one to come back.
    let (_, max) = BufferPool::default_bounds(1);
    wait_until("the producer is back-pressured and parked", || {
        producer.state() == ExecutionState::Running
            && parker.is_parked()
            && shuffle.segments().available_segments() == 64 - max
    });
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

/// The producer's partition needs 2 segments (1 subpartition + 1); with only
/// one free it waits in DEPLOYING, registered with the global pool.
fn await_deploying_for_buffers(shuffle: &ShuffleEnvironment, task: &Task) {
    wait_until("the task waits in DEPLOYING for network buffers", || {
        task.state() == ExecutionState::Deploying && shuffle.segments().waiting_requests() == 1
    });
}

/// A producer submitted while the global pool lacks its minimum, so it
/// waits in DEPLOYING; with the consumer's gate and the held segments.
fn producer_waiting_for_buffers(
    shuffle: &ShuffleEnvironment,
    executor: &TaskExecutor,
) -> (Arc<Task>, InputGate, BufferPool) {
    let (producer, _) = wired_pair(executor);
    let gate = shuffle.create_gate(GateKey(1)).unwrap();
    let held = hold_all_but(shuffle, 1);
    let task = executor.submit_task(producer, LEADER).unwrap();
    await_deploying_for_buffers(shuffle, &task);
    (task, gate, held)
}

#[test]
fn cancel_a_deploying_task_waiting_for_network_buffers() {
    let shuffle = shuffle(64);
    let (executor, updates) = executor(2, shuffle.clone());
    let (_task, gate, held) = producer_waiting_for_buffers(&shuffle, &executor);
    let outcome = executor
        .cancel_task(ExecutionAttemptId(1), TIMEOUT)
        .expect("a task waiting for buffers ends");
    assert_eq!(
        outcome.state,
        ExecutionState::Canceled,
        "{:?}",
        outcome.cause
    );
    assert!(outcome.result.is_none(), "the invokable never ran");
    executor.join_threads();
    let states: Vec<_> = updates.try_iter().map(|u| u.state).collect();
    assert_eq!(
        states,
        [
            ExecutionState::Deploying,
            ExecutionState::Canceling,
            ExecutionState::Canceled
        ]
    );
    assert_eq!(shuffle.segments().waiting_requests(), 0);
    drop(held);
    drop(gate);
    assert_eq!(shuffle.release_all(), (0, 0));
    assert!(shuffle.segments().is_full());
}

#[test]
fn fail_a_deploying_task_waiting_for_network_buffers() {
    let shuffle = shuffle(64);
    let (executor, _updates) = executor(2, shuffle.clone());
    let (task, gate, held) = producer_waiting_for_buffers(&shuffle, &executor);
    task.fail_externally("the job master failed the job");
    let outcome = task.await_final(TIMEOUT).expect("a failed task ends");
    assert_eq!(outcome.state, ExecutionState::Failed);
    assert_eq!(
        outcome.cause.as_deref(),
        Some("the job master failed the job")
    );
    executor.join_threads();
    drop(held);
    drop(gate);
    assert!(shuffle.segments().is_full());
}

#[test]
fn a_deploying_task_proceeds_once_segments_come_back() {
    let shuffle = shuffle(64);
    let (executor, updates) = executor(2, shuffle.clone());
    let held = hold_all_but(&shuffle, 1);
    let (producer, consumer) = deploy_pipeline(&executor, Some(10_000), StreamTaskKind::OneInput);
    await_deploying_for_buffers(&shuffle, &producer);
    // The consumer claims no segments; it runs and waits for input.
    wait_until("the consumer runs", || {
        consumer.state() == ExecutionState::Running
    });
    assert_eq!(producer.state(), ExecutionState::Deploying);
    drop(held);
    let p = producer.await_final(TIMEOUT).expect("producer ends");
    let c = consumer.await_final(TIMEOUT).expect("consumer ends");
    assert_pipeline_finished(&p, c, 10_000);
    executor.join_threads();
    assert_walked_to_finished(&updates, ExecutionAttemptId(1));
    assert_eq!(shuffle.segments().waiting_requests(), 0);
    assert!(shuffle.segments().is_full());
}

#[test]
fn a_deploying_task_fails_when_buffers_stay_short_past_the_timeout() {
    let shuffle = shuffle_with_timeout(64, Duration::from_millis(20));
    let (executor, updates) = executor(2, shuffle.clone());
    let (producer, _) = wired_pair(&executor);
    let gate = shuffle.create_gate(GateKey(1)).unwrap();
    let held = hold_all_but(&shuffle, 1);
    let task = executor.submit_task(producer, LEADER).unwrap();
    let outcome = task.await_final(TIMEOUT).expect("the task ends");
    assert_eq!(outcome.state, ExecutionState::Failed);
    let cause = outcome.cause.expect("a failed task has a cause");
    for part in [
        "result partition PartitionKey(1)",
        "timed out after 20ms",
        "needs 2 segments but only 1 of 64 are free",
        "buffers_request_timeout",
        "taskmanager.network.memory.buffers-request-timeout",
    ] {
        assert!(cause.contains(part), "{part:?} missing from: {cause}");
    }
    executor.join_threads();
    let states: Vec<_> = updates.try_iter().map(|u| u.state).collect();
    assert_eq!(states, [ExecutionState::Deploying, ExecutionState::Failed]);
    assert_eq!(shuffle.segments().waiting_requests(), 0);
    drop(held);
    drop(gate);
    assert!(shuffle.segments().is_full());
}

#[test]
fn the_watchdog_reports_a_task_that_has_not_terminated() {
    // A task pinned in DEPLOYING has not terminated: waiting for its final
    // state times out with the watchdog's error naming the task and its
    // state; once canceled it terminates.
    let shuffle = shuffle(64);
    let (executor, _updates) = executor(2, shuffle.clone());
    let (task, gate, held) = producer_waiting_for_buffers(&shuffle, &executor);
    let err = task.await_final(Duration::from_millis(1)).unwrap_err();
    assert_eq!(
        (err.execution, err.state),
        (ExecutionAttemptId(1), ExecutionState::Deploying)
    );
    let message = err.to_string();
    assert!(
        message.contains(&format!(
            "task {} did not terminate within 1ms; it is still DEPLOYING",
            ExecutionAttemptId(1)
        )),
        "{message}"
    );
    let outcome = executor
        .cancel_task(ExecutionAttemptId(1), TIMEOUT)
        .expect("a canceled task terminates");
    assert_eq!(outcome.state, ExecutionState::Canceled);
    executor.join_threads();
    drop(held);
    drop(gate);
    assert!(shuffle.segments().is_full());
}

#[test]
fn cancel_of_an_unknown_task_is_an_error_not_a_hang() {
    let (executor, _) = executor(1, shuffle(16));
    let err = executor
        .cancel_task(ExecutionAttemptId(9), TIMEOUT)
        .unwrap_err();
    assert!(
        matches!(err, CancelTaskError::UnknownTask { execution } if execution == ExecutionAttemptId(9)),
        "{err}"
    );
    assert!(err.to_string().contains("cannot find task"), "{err}");
}
