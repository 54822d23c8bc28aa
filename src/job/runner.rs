//! Deploys an execution graph onto a task executor, one slot per subtask,
//! and waits for the job to end (the job master's part, in one process).

use std::path::PathBuf;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use super::execution::ExecutionGraph;
use super::graph::{GraphError, JobGraph};
use crate::checkpoint::{
    self, AsyncCheckpointWriters, CheckpointCoordinator, CheckpointStats, CheckpointStorage,
    CheckpointingConfig, CompletedCheckpoint, CoordinatedTask, RestartStrategy, StorageError,
    TaskKey,
};
use crate::mailbox::Mail;
use crate::mailbox::MailboxMetrics;
use crate::network::{NetworkConfig, NetworkConfigError, ShuffleEnvironment, ShuffleError};
use crate::runtime::ids::{AllocationId, ExecutionAttemptId, JobId, JobMasterId};
use crate::runtime::{
    ExecutionState, JobInformation, JobManagerTaskRestore, ProducedPartition, SlotError, Task,
    TaskDeploymentDescriptor, TaskExecutor, TaskInformation, TaskNotTerminated, TaskSettings,
    TaskSubmissionError,
};
use crate::streaming::{StreamTaskKind, StreamTaskResult};
use crate::sync::{Arc, WaitStrategy};

/// Which cores task threads are pinned to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pinning {
    /// Not pinned.
    None,
    /// Subtask `k` on the `k`-th core the process may run on (the set is
    /// read once, on the calling thread, before any task starts) when there
    /// are at least as many cores as subtasks; otherwise unpinned, since
    /// the OS balances oversubscribed threads better than a fixed
    /// round-robin (measured on 2 cores, three unchained tasks: 27 M
    /// records/s unpinned vs ~10 M pinned round-robin).
    Spread,
    /// Subtask `k` on `cores[k mod len]`.
    Cores(Vec<usize>),
}

/// How a job runs.
#[derive(Clone, Debug)]
pub struct JobOptions {
    /// Network memory and channels.
    pub network: NetworkConfig,
    /// How tasks wait. With more subtasks than cores, waits escalate to a
    /// short spin and then park: a waiting task that spins or yields steals
    /// the core a working task needs (measured on 2 cores with three
    /// unchained tasks: 8.4 M records/s with the default spin-park, 23.5 M
    /// parking at once).
    pub wait: WaitStrategy,
    /// Core pinning.
    pub pinning: Pinning,
    /// How long a canceled task may take to end before that is fatal.
    pub cancel_timeout: Duration,
    /// Events each task thread's timeline trace holds (0: not traced).
    pub trace_events: usize,
    /// Record the machine's stalls in the tasks' waits (latency runs).
    pub stall_probe: bool,
    /// Checkpoints and restarts (`None`: the job does not checkpoint).
    pub checkpointing: Option<CheckpointingConfig>,
    /// Where checkpoints are stored (`None`: in memory).
    pub checkpoint_dir: Option<PathBuf>,
}

impl Default for JobOptions {
    fn default() -> Self {
        Self {
            network: NetworkConfig::default(),
            wait: WaitStrategy::default(),
            pinning: Pinning::Spread,
            cancel_timeout: Duration::from_secs(30),
            trace_events: 0,
            stall_probe: false,
            checkpointing: None,
            checkpoint_dir: None,
        }
    }
}

/// Why a job could not be deployed or did not end cleanly.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The job graph is invalid.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// The network configuration is invalid.
    #[error(transparent)]
    Network(#[from] NetworkConfigError),
    /// Wiring the channels failed.
    #[error(transparent)]
    Shuffle(#[from] ShuffleError),
    /// A slot could not be allocated.
    #[error(transparent)]
    Slot(#[from] SlotError),
    /// The executor refused a task.
    #[error(transparent)]
    Submission(#[from] TaskSubmissionError),
    /// A core in the pinning list does not exist for this process.
    #[error("core {core} is not one this process may run on (allowed: {allowed:?})")]
    Pinning {
        /// The core asked for.
        core: usize,
        /// The allowed cores.
        allowed: Vec<usize>,
    },
    /// A canceled task did not terminate in time (the watchdog's verdict).
    #[error(transparent)]
    NotTerminated(#[from] TaskNotTerminated),
    /// Checkpoint storage could not be opened or read.
    #[error("checkpoint storage: {0}")]
    Checkpoint(#[from] StorageError),
    /// The checkpoint directory cannot be created (bad input: the path).
    #[error("the checkpoint directory cannot be created: {0}")]
    CheckpointDirectory(StorageError),
    /// A completed checkpoint lacks a task of the job (its `_metadata`
    /// was not written by this job).
    #[error("checkpoint {id} holds no state for {task}")]
    IncompleteCheckpoint {
        /// The checkpoint.
        id: u64,
        /// The task it lacks.
        task: TaskKey,
    },
}

/// One subtask's end.
#[derive(Clone, Debug)]
pub struct SubtaskReport {
    /// Task name ("a -> b" for a chain).
    pub name: String,
    /// Subtask index.
    pub subtask: u32,
    /// Final state.
    pub state: ExecutionState,
    /// Why it failed.
    pub cause: Option<String>,
    /// What it did.
    pub result: Option<StreamTaskResult>,
    /// Where its time went.
    pub mailbox: MailboxMetrics,
    /// Allocations its thread made while records flowed, outside snapshot
    /// I/O.
    pub loop_allocations: u64,
    /// Allocations its checkpoints made (snapshots, in-flight copies).
    pub snapshot_allocations: u64,
    /// CPU time its thread used while records flowed.
    pub loop_cpu: Option<Duration>,
    /// Its thread's timeline, when traced.
    pub trace: Option<crate::metrics::trace::ThreadTrace>,
    /// The stalls its waits saw, when probed.
    pub stalls: Option<crate::sync::stall::StallRecord>,
}

/// What a job did.
#[derive(Clone, Debug)]
pub struct JobResult {
    /// Every subtask, in deployment order.
    pub subtasks: Vec<SubtaskReport>,
    /// The first failure's cause ("task: cause"), if any task failed.
    pub failure: Option<String>,
    /// From the first submission to the last termination.
    pub elapsed: Duration,
    /// The wait strategy the tasks used (after escalation).
    pub wait: WaitStrategy,
    /// Whether every network segment was back in its pool after every
    /// attempt.
    pub pools_full: bool,
    /// Every checkpoint of every attempt, in order.
    pub checkpoints: Vec<CheckpointStats>,
    /// Restarts after failures (0: the first deployment ran to the end).
    pub restarts: u32,
    /// Each restart's checkpoint restored (`None`: restarted from scratch).
    pub restored_from: Vec<Option<u64>>,
    /// Every failure that caused a restart, in order.
    pub recovered_failures: Vec<String>,
}

impl JobResult {
    /// Whether every subtask finished.
    pub fn is_finished(&self) -> bool {
        self.subtasks
            .iter()
            .all(|s| s.state == ExecutionState::Finished)
    }

    /// How long records flowed: from the first source's first turn to the
    /// last task's end of input (deployment and tear-down excluded).
    pub fn data_window(&self) -> Option<Duration> {
        Some(
            self.last_end()?
                .saturating_duration_since(self.data_start()?),
        )
    }

    /// From the first task's loop start to the last task's end of input:
    /// the time every task's loop falls in (a consumer's loop may start, and
    /// wait, before the first source's, which opens the data window).
    pub fn loops_span(&self) -> Option<Duration> {
        Some(
            self.last_end()?
                .saturating_duration_since(self.first_loop_start()?),
        )
    }

    /// Where the data window starts: the first source's first turn (the
    /// first task's, in a job without sources).
    pub fn data_start(&self) -> Option<Instant> {
        self.results()
            .filter(|r| r.records_emitted > 0)
            .filter_map(|r| r.loop_started)
            .min()
            .or_else(|| self.first_loop_start())
    }

    fn results(&self) -> impl Iterator<Item = &StreamTaskResult> {
        self.subtasks.iter().filter_map(|s| s.result.as_ref())
    }

    fn first_loop_start(&self) -> Option<Instant> {
        self.results().filter_map(|r| r.loop_started).min()
    }

    fn last_end(&self) -> Option<Instant> {
        self.results().filter_map(|r| r.finished).max()
    }

    /// Records and checksum summed over every sink (the count saturating:
    /// restored counts come from checkpoint files).
    pub fn sink_totals(&self) -> (u64, u64) {
        self.subtasks
            .iter()
            .filter_map(|s| s.result.as_ref()?.sink.as_ref())
            .fold((0, 0), |(n, c), sink| {
                (
                    n.saturating_add(sink.records),
                    c.wrapping_add(sink.checksum),
                )
            })
    }
}

/// Deploys `graph` and runs it to its end. A failing task makes the others
/// canceled and the result carry the first cause.
pub fn run_job(graph: &JobGraph, options: &JobOptions) -> Result<JobResult, JobError> {
    ExecutionGraph::build(graph)?;
    let shuffle = Arc::new(ShuffleEnvironment::new(options.network)?);
    run_job_on(graph, options, &shuffle)
}

/// As [`run_job`], on network memory that outlives the job, as a
/// TaskManager's network buffer pool outlives the jobs it runs: a
/// benchmark maps and faults it once, not per repetition. Its
/// configuration replaces `options.network`; every segment must be back in
/// the pool when the job starts.
pub fn run_job_on(
    graph: &JobGraph,
    options: &JobOptions,
    shuffle: &Arc<ShuffleEnvironment>,
) -> Result<JobResult, JobError> {
    let plan = ExecutionGraph::build(graph)?;
    let Some(checkpointing) = options.checkpointing else {
        return run_attempt(graph, &plan, options, shuffle, Attempt::default());
    };
    // In a directory, each run gets a subdirectory of its own (Flink's
    // `<checkpoint dir>/<job id>/chk-N`): a job restores only what it took.
    let storage = Arc::new(match &options.checkpoint_dir {
        Some(dir) => CheckpointStorage::directory(dir.join(run_directory_name()))
            .map_err(JobError::CheckpointDirectory)?,
        None => CheckpointStorage::memory(),
    });
    let mut restore: Option<CompletedCheckpoint> = None;
    let mut attempt = Attempt {
        number: 0,
        restore: None,
        checkpointing: Some((checkpointing, storage.clone())),
        first_checkpoint: 1,
    };
    let started = Instant::now();
    let (mut checkpoints, mut restored_from, mut recovered) = (Vec::new(), Vec::new(), Vec::new());
    let mut pools_full = true;
    loop {
        attempt.restore = restore.take().map(Arc::new);
        let mut result = run_attempt(graph, &plan, options, shuffle, attempt.clone())?;
        pools_full &= result.pools_full;
        attempt.first_checkpoint = result
            .checkpoints
            .iter()
            .map(|c| c.id + 1)
            .max()
            .unwrap_or(attempt.first_checkpoint);
        checkpoints.append(&mut result.checkpoints);
        let restart = match (&result.failure, checkpointing.restart) {
            (Some(_), RestartStrategy::FixedDelay { attempts, delay })
                if attempt.number < attempts =>
            {
                Some(delay)
            }
            _ => None,
        };
        if let Some(delay) = restart {
            std::thread::sleep(delay);
            // Checkpoints taken since the last restore complete in storage;
            // restore the latest (Flink's `restoreLatestCheckpointedState`).
            // One that cannot be read fails the job, as in Flink.
            match storage.latest().map_err(JobError::from).and_then(|latest| {
                covers_every_task(latest.as_ref(), &plan)?;
                Ok(latest)
            }) {
                Ok(latest) => {
                    recovered.extend(result.failure.take());
                    restore = latest;
                    restored_from.push(restore.as_ref().map(|c| c.id));
                    attempt.number += 1;
                    continue;
                }
                Err(e) => {
                    let cause = result.failure.take().unwrap_or_default();
                    result.failure = Some(format!(
                        "{cause}; restoring the latest checkpoint failed: {e}"
                    ));
                }
            }
        }
        result.checkpoints = checkpoints;
        result.restarts = attempt.number;
        result.restored_from = restored_from;
        result.recovered_failures = recovered;
        result.elapsed = started.elapsed();
        result.pools_full = pools_full;
        return Ok(result);
    }
}

/// Whether `checkpoint` (if any) holds every subtask of `plan`: every
/// task acknowledges a completed checkpoint, finished ones with their
/// final state, so a gap means its `_metadata` is not this job's.
fn covers_every_task(
    checkpoint: Option<&CompletedCheckpoint>,
    plan: &ExecutionGraph,
) -> Result<(), JobError> {
    let Some(checkpoint) = checkpoint else {
        return Ok(());
    };
    for (vertex, v) in plan.vertices.iter().enumerate() {
        for subtask in 0..v.parallelism {
            let task = TaskKey {
                vertex: vertex as u32,
                subtask,
            };
            if !checkpoint.tasks.contains_key(&task) {
                let id = checkpoint.id;
                return Err(JobError::IncompleteCheckpoint { id, task });
            }
        }
    }
    Ok(())
}

/// `job-<ns since the epoch>-<pid>`: unique per run of a job.
fn run_directory_name() -> String {
    let ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("job-{ns}-{}", std::process::id())
}

/// One deployment of a job: which attempt, and what it restores.
#[derive(Clone, Debug, Default)]
struct Attempt {
    number: u32,
    restore: Option<Arc<CompletedCheckpoint>>,
    checkpointing: Option<(CheckpointingConfig, Arc<CheckpointStorage>)>,
    first_checkpoint: u64,
}

/// Deploys every subtask once, runs the job's checkpoint coordinator beside
/// it, and waits for the end; the first failure cancels the rest.
fn run_attempt(
    graph: &JobGraph,
    plan: &ExecutionGraph,
    options: &JobOptions,
    shuffle: &Arc<ShuffleEnvironment>,
    attempt: Attempt,
) -> Result<JobResult, JobError> {
    let allowed: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    let subtasks = plan.subtasks();
    let cores: Vec<Option<usize>> = match &options.pinning {
        Pinning::None => vec![None; subtasks],
        Pinning::Spread if allowed.len() < subtasks => vec![None; subtasks],
        Pinning::Spread => (0..subtasks)
            .map(|k| Some(allowed[k % allowed.len()]))
            .collect(),
        Pinning::Cores(list) => {
            if let Some(&core) = list.iter().find(|c| !allowed.contains(c)) {
                return Err(JobError::Pinning { core, allowed });
            }
            (0..subtasks)
                .map(|k| list.get(k % list.len().max(1)).copied())
                .collect()
        }
    };
    let core_count = allowed.len().max(1);
    crate::sync::occupancy::set_cores(core_count);
    let wait = if subtasks > core_count {
        oversubscribed(options.wait)
    } else {
        options.wait
    };
    let shuffle = shuffle.clone();
    let settings = TaskSettings {
        wait,
        mailbox_capacity: 64,
        epoch: Instant::now(),
        trace_events: options.trace_events,
        stall_probe: options.stall_probe,
    };
    let (executor, updates) = TaskExecutor::new(cores, shuffle.clone(), settings);
    let (job, leader) = (JobId(1), JobMasterId(1));
    let responder = attempt
        .checkpointing
        .as_ref()
        .map(|_| checkpoint::channel());
    // The async part of checkpoints runs on writer threads (directory
    // storage), off the task threads and off the coordinator's.
    let (writers, task_responder) = match (&attempt.checkpointing, &responder) {
        (Some((_, storage)), Some((sender, _))) => {
            let threads = subtasks.clamp(1, CHECKPOINT_WRITERS);
            let (writers, r) =
                AsyncCheckpointWriters::start(storage.clone(), sender.clone(), threads);
            (writers, Some(r))
        }
        _ => (None, None),
    };
    match &task_responder {
        Some(r) => executor.connect_job_with_responder(job, leader, r.clone()),
        None => executor.connect_job(job, leader),
    }
    let restore_of = |vertex: usize, subtask: u32| {
        let checkpoint = attempt.restore.as_ref()?;
        let key = TaskKey {
            vertex: vertex as u32,
            subtask,
        };
        Some(JobManagerTaskRestore {
            restore_checkpoint_id: checkpoint.id,
            state: std::sync::Arc::new(checkpoint.tasks.get(&key)?.clone()),
        })
    };

    let max_sink_records = graph.max_sink_records();
    // Execution ids and slots: subtask k of the job gets id k and slot k.
    let mut descriptors = Vec::with_capacity(subtasks);
    let mut base = Vec::with_capacity(plan.vertices.len());
    for (vertex_index, vertex) in plan.vertices.iter().enumerate() {
        base.push(descriptors.len());
        for subtask in 0..vertex.parallelism {
            let k = descriptors.len();
            let execution_id = ExecutionAttemptId(k as u64);
            executor.allocate_slot(k, job, AllocationId(k as u64))?;
            descriptors.push(TaskDeploymentDescriptor {
                job_id: job,
                job_information: JobInformation {
                    job_id: job,
                    job_name: graph.name.clone(),
                    checkpointing: attempt.checkpointing.as_ref().map(|(c, _)| c.options),
                    max_sink_records,
                },
                task_information: TaskInformation {
                    task_name: vertex.name.clone(),
                    vertex: vertex_index as u32,
                    parallelism: vertex.parallelism,
                    config: vertex.config.clone(),
                },
                execution_id,
                allocation_id: AllocationId(k as u64),
                subtask_index: subtask,
                produced_partitions: vertex.partitions[subtask as usize]
                    .iter()
                    .map(|&(key, partitioner)| ProducedPartition { key, partitioner })
                    .collect(),
                input_gates: vertex.gates[subtask as usize].clone(),
                attempt_number: attempt.number,
                task_restore: restore_of(vertex_index, subtask),
            });
        }
    }
    for &(key, subpartitions) in &plan.partitions {
        shuffle.register_partition(key, subpartitions as usize)?;
    }
    for &(key, channels, vertex, subtask) in &plan.gates {
        let execution = ExecutionAttemptId((base[vertex] + subtask as usize) as u64);
        shuffle.register_gate(key, channels as usize, executor.task_parker(execution))?;
    }
    for c in &plan.channels {
        shuffle.connect(c.partition, c.subpartition, c.gate, c.channel)?;
    }

    let started = Instant::now();
    let mut tasks: Vec<Arc<Task>> = Vec::with_capacity(subtasks);
    for descriptor in descriptors {
        match executor.submit_task(descriptor, leader) {
            Ok(task) => tasks.push(task),
            Err(e) => {
                tasks.iter().for_each(|t| t.cancel());
                await_all(&tasks, options.cancel_timeout)?;
                executor.join_threads();
                return Err(e.into());
            }
        }
    }

    // Idle sources stay open until every other source finished; the job
    // master tells them then.
    let source_kind = |task: &Task| match task.descriptor().task_information.config.kind {
        StreamTaskKind::Source(spec) => Some(spec.idle),
        _ => None,
    };
    let mut busy_sources = tasks
        .iter()
        .filter(|t| source_kind(t) == Some(false))
        .count();
    let coordinator = match (&attempt.checkpointing, responder) {
        (Some((config, storage)), Some(channel)) => Some(CheckpointCoordinator::start(
            *config,
            storage.clone(),
            tasks
                .iter()
                .map(|t| CoordinatedTask {
                    task: t.descriptor().task_key(),
                    mailbox: t.mailbox().clone(),
                    source: source_kind(t).is_some(),
                })
                .collect(),
            settings.epoch,
            attempt.first_checkpoint,
            channel,
        )),
        _ => None,
    };

    // Wait for every task to end; the first failure cancels the rest.
    let mut failure: Option<String> = None;
    let mut remaining = tasks.len();
    while remaining > 0 {
        match updates.recv_timeout(Duration::from_millis(50)) {
            Ok(update) if update.state.is_terminal() => {
                remaining -= 1;
                let task = &tasks[update.execution_id.0 as usize];
                if let (Some(r), Some(_)) = (&task_responder, &coordinator) {
                    // Through the task's writer: after its last snapshot.
                    r.task_ended(task.descriptor().task_key());
                }
                if update.state == ExecutionState::Finished && source_kind(task) == Some(false) {
                    busy_sources -= 1;
                    if busy_sources == 0 {
                        for idle in tasks.iter().filter(|t| source_kind(t) == Some(true)) {
                            // A task already ended has a closed mailbox.
                            let _ = idle.mailbox().put(Mail::EndOfInput);
                        }
                    }
                }
                if update.state == ExecutionState::Failed && failure.is_none() {
                    let task = &tasks[update.execution_id.0 as usize];
                    failure = Some(format!(
                        "{}: {}",
                        task.thread_name(),
                        update.cause.unwrap_or_else(|| "failed".into())
                    ));
                    tasks.iter().for_each(|t| t.cancel());
                }
            }
            Ok(_) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        // Too many checkpoints failed in a row: the job fails as if a
        // task had (Flink's `CheckpointFailureManager`), and restarts
        // from the last completed checkpoint if its strategy allows.
        if failure.is_none() {
            if let Some(cause) = coordinator.as_ref().and_then(|c| c.job_failure()) {
                failure = Some(format!("checkpoint-coordinator: {cause}"));
                tasks.iter().for_each(|t| t.cancel());
            }
        }
    }
    if let Some(w) = writers {
        w.stop();
    }
    let checkpoints = coordinator.map(|c| c.stop()).unwrap_or_default();
    let outcomes = await_all(&tasks, options.cancel_timeout)?;
    let elapsed = started.elapsed();
    executor.join_threads();
    let subtasks = tasks
        .iter()
        .zip(outcomes)
        .map(|(task, outcome)| {
            let snapshot_allocations = snapshot_allocations(&outcome);
            SubtaskReport {
                name: task.descriptor().task_information.task_name.clone(),
                subtask: task.descriptor().subtask_index,
                state: outcome.state,
                cause: outcome.cause,
                result: outcome.result,
                mailbox: outcome.mailbox,
                loop_allocations: outcome
                    .loop_allocations
                    .saturating_sub(snapshot_allocations),
                snapshot_allocations,
                loop_cpu: outcome.loop_cpu,
                trace: outcome.trace,
                stalls: outcome.stalls,
            }
        })
        .collect();
    drop(tasks);
    shuffle.release_all();
    Ok(JobResult {
        subtasks,
        failure,
        elapsed,
        wait,
        pools_full: shuffle.segments().is_full(),
        checkpoints,
        restarts: 0,
        restored_from: Vec::new(),
        recovered_failures: Vec::new(),
    })
}

/// Writer threads for the async part of checkpoints, at most: each
/// spends its time in `fsync`, so a few persist a checkpoint's task files
/// side by side however many cores there are (Flink runs one async
/// operation per task on the task's pool).
const CHECKPOINT_WRITERS: usize = 4;

/// The wait strategy for more runnable tasks than cores: spin briefly, then
/// yield or park, never spin for long (two threads spinning on one core
/// fall from ~50 M to 0.5 M hand-offs/s).
fn oversubscribed(wait: WaitStrategy) -> WaitStrategy {
    const SPINS: u32 = 8;
    /// With threads taking turns on cores, a spin only delays the thread
    /// beside it that has work; waits go straight to yielding (measured: a
    /// 2 µs spin doubled the median hand-off latency, 3.9 -> 9.5 µs).
    const SPIN_NS: u32 = 0;
    match wait {
        WaitStrategy::SpinPark { spins, yields } => WaitStrategy::SpinPark {
            spins: spins.min(SPINS),
            yields: yields.min(1),
        },
        WaitStrategy::Adaptive { yield_ns, .. } => WaitStrategy::Adaptive {
            spin_ns: SPIN_NS,
            yield_ns,
        },
        WaitStrategy::BusySpin | WaitStrategy::SpinYield { .. } => WaitStrategy::SpinPark {
            spins: SPINS,
            yields: 1,
        },
    }
}

/// Every task's outcome, or the watchdog's error for one that hangs.
fn await_all(
    tasks: &[Arc<Task>],
    timeout: Duration,
) -> Result<Vec<crate::runtime::TaskOutcome>, TaskNotTerminated> {
    tasks.iter().map(|task| task.await_final(timeout)).collect()
}

/// What a task's checkpoints allocated (snapshot I/O).
fn snapshot_allocations(outcome: &crate::runtime::TaskOutcome) -> u64 {
    outcome
        .result
        .as_ref()
        .map_or(0, |r| r.snapshot_allocations)
}
