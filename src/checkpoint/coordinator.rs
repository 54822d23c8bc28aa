//! Flink's `CheckpointCoordinator`, on a thread of its own beside the job:
//! triggers checkpoints at the sources through their mailboxes' priority
//! lane, collects the tasks' acknowledgements (each task file already
//! persisted by a writer thread, see [`CheckpointResponder`]), writes a
//! complete checkpoint's `_metadata`, and completes or aborts each
//! checkpoint, telling every task.
//!
//! [`CheckpointResponder`]: super::CheckpointResponder

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::barrier::CheckpointOptions;
use super::snapshot::{TaskKey, TaskSnapshot};
use super::storage::{CheckpointStorage, CompletedCheckpoint, StoredTask};
use super::task_state::TaskCheckpointMetrics;
use crate::mailbox::{Mail, TaskMailbox};
use crate::sync::Arc;

/// How a failed job restarts (Flink's `RestartStrategy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RestartStrategy {
    /// A failure fails the job.
    #[default]
    None,
    /// Up to `attempts` restarts, `delay` apart (Flink's `fixed-delay`).
    FixedDelay {
        /// Restarts allowed.
        attempts: u32,
        /// Wait before each.
        delay: Duration,
    },
}

/// A job's checkpointing (Flink's `CheckpointConfig`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckpointingConfig {
    /// Trigger every `interval` (`None`: only on demand).
    pub interval: Option<Duration>,
    /// A checkpoint not complete after this is aborted.
    pub timeout: Duration,
    /// At least this long from one checkpoint's end to the next trigger.
    pub min_pause: Duration,
    /// What the barriers ask.
    pub options: CheckpointOptions,
    /// How a failed job restarts.
    pub restart: RestartStrategy,
    /// Checkpoints that may fail in a row (expired, or their files could
    /// not be written) before the job fails (Flink's
    /// `execution.checkpointing.tolerable-failed-checkpoints`, default 0:
    /// the first such failure fails the job, which then restarts as
    /// `restart` says). Checkpoints aborted because a task finished or
    /// failed, a newer one superseded them or the job ended never count.
    pub tolerable_failures: u32,
}

/// Why a checkpoint was aborted (Flink's `CheckpointFailureReason`, the
/// kinds taskbench has).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckpointFailureReason {
    /// Not complete within the checkpoint timeout (`CHECKPOINT_EXPIRED`).
    Expired,
    /// A task's file could not be written (`CHECKPOINT_ASYNC_EXCEPTION`).
    AsyncFailed,
    /// `_metadata` could not be written (`FINALIZE_CHECKPOINT_FAILURE`).
    FinalizeFailed,
    /// A task finished before its part was complete
    /// (`CHECKPOINT_DECLINED_TASK_CLOSING`).
    TaskClosing,
    /// A newer checkpoint replaced it (`CHECKPOINT_SUBSUMED`).
    Subsumed,
    /// A task ended without acknowledging: the job is going down
    /// (`TASK_FAILURE`).
    TaskEnded,
    /// The job ended first (`CHECKPOINT_COORDINATOR_SHUTDOWN`).
    JobEnding,
}

impl CheckpointFailureReason {
    /// Whether it counts against
    /// [`tolerable_failures`](CheckpointingConfig::tolerable_failures), as
    /// Flink's `CheckpointFailureManager` counts it.
    pub fn counts(self) -> bool {
        matches!(
            self,
            Self::Expired | Self::AsyncFailed | Self::FinalizeFailed
        )
    }
}

impl Default for CheckpointingConfig {
    fn default() -> Self {
        Self {
            interval: None,
            timeout: Duration::from_secs(600),
            min_pause: Duration::ZERO,
            options: CheckpointOptions::default(),
            restart: RestartStrategy::None,
            tolerable_failures: 0,
        }
    }
}

/// What reaches the checkpoint thread.
#[derive(Debug)]
pub enum CheckpointMessage {
    /// A task's snapshot for a checkpoint, persisted.
    Acknowledge {
        /// The snapshot.
        snapshot: Box<TaskSnapshot>,
        /// What the task measured.
        metrics: TaskCheckpointMetrics,
        /// What storing it wrote (its size is `checkpointedSize`).
        stored: StoredTask,
        /// The async part: from the hand-over to stored, ns.
        async_ns: u64,
    },
    /// A task cannot take checkpoint `id`.
    Decline {
        /// The task.
        task: TaskKey,
        /// The checkpoint.
        id: u64,
        /// What kind of failure.
        failure: CheckpointFailureReason,
        /// Why, in words.
        reason: String,
    },
    /// Trigger a checkpoint now (if none is pending).
    Trigger,
    /// A task finished; its final state stands for it in checkpoints from
    /// now on (Flink's checkpoints after tasks finish, FLIP-147).
    TaskFinished(Box<TaskSnapshot>),
    /// A task reached a final state (finished, failed or canceled); one
    /// that did not finish fails the checkpoint under way and stops
    /// triggers (the job is going down).
    TaskEnded(TaskKey),
    /// The job is over.
    Stop,
}

/// One checkpoint, with Flink's metric names (durations in nanoseconds).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckpointStats {
    /// The checkpoint.
    pub id: u64,
    /// Completed, or the reason it was aborted.
    pub failure: Option<String>,
    /// Trigger time, ns of the job's clock.
    pub trigger_ns: u64,
    /// From trigger to the last acknowledgement persisted
    /// (`endToEndDuration`).
    pub end_to_end_ns: u64,
    /// Snapshot bytes over all tasks (`checkpointedSize`).
    pub state_size: u64,
    /// Bytes processed during alignment (`processedData`).
    pub processed_in_flight_bytes: u64,
    /// In-flight bytes persisted (`persistedData`).
    pub persisted_in_flight_bytes: u64,
    /// Whether any task took it unaligned.
    pub unaligned: bool,
    /// The slowest task's start delay (`checkpointStartDelayNanos`).
    pub start_delay_ns: u64,
    /// The longest alignment (`alignmentDuration`).
    pub alignment_ns: u64,
    /// The longest synchronous part (`syncDuration`).
    pub sync_ns: u64,
    /// The longest asynchronous part (`asyncDuration`).
    pub async_ns: u64,
    /// Tasks in it with the state they finished with (Flink's finished
    /// tasks in a checkpoint after tasks finish).
    pub finished_tasks: u32,
}

/// One task as the coordinator sees it.
#[derive(Clone, Debug)]
pub struct CoordinatedTask {
    /// Which subtask.
    pub task: TaskKey,
    /// Its mailbox.
    pub mailbox: Arc<TaskMailbox>,
    /// Whether checkpoints are triggered here.
    pub source: bool,
}

struct Pending {
    id: u64,
    triggered: Instant,
    stats: CheckpointStats,
    acks: BTreeMap<TaskKey, TaskSnapshot>,
    /// What storing each acknowledged snapshot wrote (for `_metadata`).
    stored: BTreeMap<TaskKey, StoredTask>,
}

/// The coordinator's thread.
#[derive(Debug)]
pub struct CheckpointCoordinator {
    sender: Sender<CheckpointMessage>,
    thread: Option<JoinHandle<Vec<CheckpointStats>>>,
    /// Set once checkpoint failures passed the tolerable number.
    job_failure: std::sync::Arc<OnceLock<String>>,
}

/// The channel tasks acknowledge through; create it before the tasks, start
/// the coordinator over its receiver after.
pub fn channel() -> (Sender<CheckpointMessage>, Receiver<CheckpointMessage>) {
    crossbeam_channel::unbounded()
}

impl CheckpointCoordinator {
    /// Starts the coordinator over `tasks`; checkpoint ids start at
    /// `first_id` (after a restore, the restored id plus one).
    pub fn start(
        config: CheckpointingConfig,
        storage: Arc<CheckpointStorage>,
        tasks: Vec<CoordinatedTask>,
        epoch: Instant,
        first_id: u64,
        (sender, receiver): (Sender<CheckpointMessage>, Receiver<CheckpointMessage>),
    ) -> Self {
        let job_failure = std::sync::Arc::new(OnceLock::new());
        let fail_job = job_failure.clone();
        let thread = std::thread::Builder::new()
            .name("checkpoint-coordinator".into())
            .spawn(move || {
                Loop {
                    fail_job,
                    failed_in_a_row: 0,
                    config,
                    storage,
                    tasks,
                    epoch,
                    next_id: first_id,
                    pending: None,
                    ended: Vec::new(),
                    finished: BTreeMap::new(),
                    last_trigger: None,
                    last_end: None,
                    stats: Vec::new(),
                }
                .run(receiver)
            })
            .expect("spawn the checkpoint coordinator");
        Self {
            sender,
            thread: Some(thread),
            job_failure,
        }
    }

    /// Why the job must fail, once more checkpoints failed in a row than
    /// it tolerates (Flink's `CheckpointFailureManager` failing the job);
    /// the caller cancels the job and lets its restart strategy act.
    pub fn job_failure(&self) -> Option<String> {
        self.job_failure.get().cloned()
    }

    /// Asks for a checkpoint now.
    pub fn trigger(&self) {
        let _ = self.sender.send(CheckpointMessage::Trigger);
    }

    /// Stops the thread; every checkpoint's statistics, in order.
    pub fn stop(mut self) -> Vec<CheckpointStats> {
        let _ = self.sender.send(CheckpointMessage::Stop);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for CheckpointCoordinator {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = self.sender.send(CheckpointMessage::Stop);
            let _ = thread.join();
        }
    }
}

struct Loop {
    fail_job: std::sync::Arc<OnceLock<String>>,
    /// Counted failures since the last completed checkpoint.
    failed_in_a_row: u32,
    config: CheckpointingConfig,
    storage: Arc<CheckpointStorage>,
    tasks: Vec<CoordinatedTask>,
    epoch: Instant,
    next_id: u64,
    pending: Option<Pending>,
    /// Tasks that ended without finishing.
    ended: Vec<TaskKey>,
    /// Tasks that finished: their final state.
    finished: BTreeMap<TaskKey, TaskSnapshot>,
    last_trigger: Option<Instant>,
    last_end: Option<Instant>,
    stats: Vec<CheckpointStats>,
}

impl Loop {
    fn run(mut self, receiver: Receiver<CheckpointMessage>) -> Vec<CheckpointStats> {
        loop {
            let now = Instant::now();
            let wake = self.next_wake();
            let message = match wake {
                Some(at) => receiver.recv_timeout(at.saturating_duration_since(now)),
                None => receiver.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match message {
                Ok(CheckpointMessage::Acknowledge {
                    snapshot,
                    metrics,
                    stored,
                    async_ns,
                }) => self.acknowledge(*snapshot, metrics, stored, async_ns),
                Ok(CheckpointMessage::Decline {
                    task,
                    id,
                    failure,
                    reason,
                }) => {
                    if self.pending.as_ref().is_some_and(|p| p.id == id) {
                        self.abort(failure, format!("{task} declined: {reason}"));
                    }
                }
                Ok(CheckpointMessage::Trigger) => self.trigger(),
                Ok(CheckpointMessage::TaskFinished(snapshot)) => self.task_finished(*snapshot),
                Ok(CheckpointMessage::TaskEnded(task)) if self.finished.contains_key(&task) => {}
                Ok(CheckpointMessage::TaskEnded(task)) => {
                    self.ended.push(task);
                    let waits_on_it = self
                        .pending
                        .as_ref()
                        .is_some_and(|p| !p.acks.contains_key(&task));
                    if waits_on_it {
                        self.abort(
                            CheckpointFailureReason::TaskEnded,
                            format!("{task} ended before acknowledging"),
                        );
                    }
                }
                Ok(CheckpointMessage::Stop) | Err(RecvTimeoutError::Disconnected) => {
                    if self.pending.is_some() {
                        self.abort(CheckpointFailureReason::JobEnding, "the job ended".into());
                    }
                    return self.stats;
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            let now = Instant::now();
            if let Some(p) = &self.pending {
                if now.duration_since(p.triggered) >= self.config.timeout {
                    self.abort(
                        CheckpointFailureReason::Expired,
                        format!("expired after {:?}", self.config.timeout),
                    );
                }
            }
            if self.next_trigger().is_some_and(|at| at <= now) {
                self.trigger();
            }
        }
    }

    /// When the next periodic trigger is due (none while one is pending).
    fn next_trigger(&self) -> Option<Instant> {
        let interval = self.config.interval?;
        if self.pending.is_some() {
            return None;
        }
        Some(match (self.last_trigger, self.last_end) {
            (Some(trigger), Some(end)) => (trigger + interval).max(end + self.config.min_pause),
            _ => self.epoch + interval,
        })
    }

    fn next_wake(&self) -> Option<Instant> {
        let timeout = self
            .pending
            .as_ref()
            .map(|p| p.triggered + self.config.timeout);
        match (self.next_trigger(), timeout) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn trigger(&mut self) {
        if self.pending.is_some() {
            return;
        }
        // A task that failed or was canceled: the job is going down.
        if !self.ended.is_empty() || self.finished.len() == self.tasks.len() {
            return;
        }
        let id = self.next_id;
        let now = Instant::now();
        let trigger_ns = self.open(id, now);
        // Finished tasks are in it with their final state; running sources
        // start it. A source that finishes before it takes the mail is in
        // it with its final state too.
        if !self.acknowledge_all_finished() {
            return; // storing one failed: aborted
        }
        for t in self.tasks.iter().filter(|t| t.source) {
            if self.finished.contains_key(&t.task) {
                continue;
            }
            let mail = Mail::TriggerCheckpoint {
                id,
                timestamp: trigger_ns,
            };
            // A closed mailbox: the source just ended; its end tells.
            let _ = t.mailbox.put_first(mail);
        }
        self.complete_if_acknowledged();
    }

    /// A task finished with `snapshot`: kept for later checkpoints, and
    /// standing in for its acknowledgement of the pending one if it sent
    /// none (it never met the barrier: every channel ended first).
    fn task_finished(&mut self, snapshot: TaskSnapshot) {
        let task = snapshot.task;
        self.finished.insert(task, snapshot);
        if self
            .pending
            .as_ref()
            .is_some_and(|p| !p.acks.contains_key(&task))
        {
            self.acknowledge_finished(task);
            self.complete_if_acknowledged();
        }
    }

    /// Acknowledges the checkpoint just opened for every finished task;
    /// false if storing one failed (the checkpoint is aborted then).
    fn acknowledge_all_finished(&mut self) -> bool {
        let finished: Vec<TaskKey> = self.finished.keys().copied().collect();
        for task in finished {
            self.acknowledge_finished(task);
            if self.pending.is_none() {
                return false;
            }
        }
        true
    }

    /// Acknowledges the pending checkpoint for finished `task` with its
    /// final state, stored under the checkpoint's id (on this thread: a
    /// finished task has no writer of its own any more).
    fn acknowledge_finished(&mut self, task: TaskKey) {
        let (Some(pending), Some(last)) = (self.pending.as_mut(), self.finished.get(&task)) else {
            return;
        };
        let snapshot = TaskSnapshot {
            checkpoint_id: pending.id,
            ..last.clone()
        };
        let started = Instant::now();
        match self.storage.write_task(&snapshot) {
            Ok(stored) => {
                let s = &mut pending.stats;
                s.state_size += stored.bytes;
                s.async_ns = s.async_ns.max(started.elapsed().as_nanos() as u64);
                s.finished_tasks += 1;
                pending.stored.insert(task, stored);
                pending.acks.insert(task, snapshot);
            }
            Err(e) => self.abort(
                CheckpointFailureReason::AsyncFailed,
                format!("storing finished {task}: {e}"),
            ),
        }
    }

    fn complete_if_acknowledged(&mut self) {
        if self
            .pending
            .as_ref()
            .is_some_and(|p| p.acks.len() == self.tasks.len())
        {
            self.complete();
        }
    }

    /// Opens checkpoint `id`, triggered at `now`; returns the trigger time
    /// on the job's clock.
    fn open(&mut self, id: u64, now: Instant) -> u64 {
        self.next_id = id + 1;
        self.last_trigger = Some(now);
        let trigger_ns = now.saturating_duration_since(self.epoch).as_nanos() as u64;
        self.pending = Some(Pending {
            id,
            triggered: now,
            stats: CheckpointStats {
                id,
                trigger_ns,
                ..CheckpointStats::default()
            },
            acks: BTreeMap::new(),
            stored: BTreeMap::new(),
        });
        trigger_ns
    }

    fn acknowledge(
        &mut self,
        snapshot: TaskSnapshot,
        metrics: TaskCheckpointMetrics,
        stored: StoredTask,
        async_ns: u64,
    ) {
        let at = Instant::now();
        let id = snapshot.checkpoint_id;
        if id >= self.next_id && self.pending.as_ref().is_none_or(|p| p.id < id) {
            // A checkpoint a source induced itself: the first
            // acknowledgement opens it (a newer one supersedes the last).
            if self.pending.is_some() {
                self.abort(
                    CheckpointFailureReason::Subsumed,
                    format!("superseded by induced checkpoint {id}"),
                );
            }
            if !self.ended.is_empty() {
                return self.storage.discard(id);
            }
            self.open(id, at);
            self.acknowledge_all_finished();
        }
        let Some(pending) = self.pending.as_mut().filter(|p| p.id == id) else {
            // A late acknowledgement of an aborted checkpoint: what its
            // writer stored goes (Flink discards a late ack's state).
            self.storage.discard(id);
            return;
        };
        let s = &mut pending.stats;
        s.state_size += stored.bytes;
        s.processed_in_flight_bytes += metrics.processed_in_flight_bytes;
        s.persisted_in_flight_bytes += metrics.persisted_in_flight_bytes;
        s.unaligned |= metrics.unaligned;
        s.start_delay_ns = s.start_delay_ns.max(metrics.start_delay_ns);
        s.alignment_ns = s.alignment_ns.max(metrics.alignment_ns);
        s.sync_ns = s.sync_ns.max(metrics.sync_ns);
        s.async_ns = s.async_ns.max(async_ns);
        pending.stored.insert(snapshot.task, stored);
        pending.acks.insert(snapshot.task, snapshot);
        self.complete_if_acknowledged();
    }

    fn complete(&mut self) {
        let pending = self.pending.take().expect("a pending checkpoint");
        let id = pending.id;
        let mut stats = pending.stats;
        let checkpoint = CompletedCheckpoint {
            id,
            tasks: pending.acks,
        };
        if let Err(e) = self.storage.complete(checkpoint, &pending.stored) {
            let reason = format!("completing: {e}");
            self.count_failure(id, CheckpointFailureReason::FinalizeFailed, &reason);
            stats.failure = Some(reason);
            self.storage.discard(id);
            self.notify(Mail::NotifyCheckpointAborted { id });
        } else {
            self.failed_in_a_row = 0;
            self.notify(Mail::NotifyCheckpointComplete { id });
        }
        let end = Instant::now();
        stats.end_to_end_ns = end.duration_since(pending.triggered).as_nanos() as u64;
        self.stats.push(stats);
        self.last_end = Some(end);
    }

    /// Counts a failure of checkpoint `id` against the tolerable number;
    /// past it, the job fails with `reason`.
    fn count_failure(&mut self, id: u64, failure: CheckpointFailureReason, reason: &str) {
        if !failure.counts() {
            return;
        }
        self.failed_in_a_row += 1;
        let tolerable = self.config.tolerable_failures;
        if self.failed_in_a_row > tolerable {
            let _ = self.fail_job.set(format!(
                "checkpoint {id} failed, {} in a row where {tolerable} are tolerated \
                 (checkpoint.tolerable_failed_checkpoints): {reason}",
                self.failed_in_a_row
            ));
        }
    }

    fn abort(&mut self, failure: CheckpointFailureReason, reason: String) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        self.count_failure(pending.id, failure, &reason);
        self.storage.discard(pending.id);
        self.notify(Mail::NotifyCheckpointAborted { id: pending.id });
        let end = Instant::now();
        self.stats.push(CheckpointStats {
            failure: Some(reason),
            end_to_end_ns: end.duration_since(pending.triggered).as_nanos() as u64,
            ..pending.stats
        });
        self.last_end = Some(end);
    }

    fn notify(&self, mail: Mail) {
        for t in self.tasks.iter().filter(|t| !self.ended.contains(&t.task)) {
            // A task that ended meanwhile has a closed mailbox.
            let _ = t.mailbox.put_first(mail);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::sync::Parker;

    /// A coordinator over one source task whose mailbox the test holds,
    /// tolerating `tolerable` failed checkpoints in a row.
    fn coordinator(tolerable: u32) -> (CheckpointCoordinator, Sender<CheckpointMessage>) {
        let (sender, receiver) = channel();
        let task = CoordinatedTask {
            task: TaskKey {
                vertex: 0,
                subtask: 0,
            },
            mailbox: Arc::new(TaskMailbox::new(16, Arc::new(Parker::new()))),
            source: true,
        };
        let config = CheckpointingConfig {
            tolerable_failures: tolerable,
            ..CheckpointingConfig::default()
        };
        let c = CheckpointCoordinator::start(
            config,
            Arc::new(CheckpointStorage::memory()),
            vec![task],
            Instant::now(),
            1,
            (sender.clone(), receiver),
        );
        (c, sender)
    }

    fn decline(sender: &Sender<CheckpointMessage>, id: u64, failure: CheckpointFailureReason) {
        sender
            .send(CheckpointMessage::Decline {
                task: TaskKey {
                    vertex: 0,
                    subtask: 0,
                },
                id,
                failure,
                reason: format!("{failure:?}"),
            })
            .unwrap();
    }

    /// Triggers one checkpoint per entry of `failures`, each declined with
    /// that reason, and returns why the job must fail, if it must.
    fn fail_checkpoints(tolerable: u32, failures: &[CheckpointFailureReason]) -> Option<String> {
        let (c, sender) = coordinator(tolerable);
        for (i, &failure) in failures.iter().enumerate() {
            c.trigger();
            decline(&sender, i as u64 + 1, failure);
        }
        // Messages are handled in order: once Stop returns, every decline
        // was counted.
        let job_failure = c.job_failure.clone();
        let stats = c.stop();
        assert_eq!(stats.len(), failures.len(), "{stats:?}");
        assert!(stats.iter().all(|s| s.failure.is_some()), "{stats:?}");
        job_failure.get().cloned()
    }

    #[test]
    fn checkpoint_failures_past_the_tolerable_number_fail_the_job() {
        use CheckpointFailureReason::*;
        // Flink's default, 0: the first counted failure fails the job.
        let cause = fail_checkpoints(0, &[AsyncFailed]).expect("the job fails");
        assert!(
            cause.contains("checkpoint 1 failed") && cause.contains("AsyncFailed"),
            "{cause}"
        );
        // Tolerating 2: the third in a row does.
        assert_eq!(fail_checkpoints(2, &[Expired, AsyncFailed]), None);
        let cause = fail_checkpoints(2, &[Expired, AsyncFailed, Expired]).unwrap();
        assert!(cause.contains("checkpoint 3 failed, 3 in a row"), "{cause}");
        // What Flink does not count never fails the job.
        assert_eq!(
            fail_checkpoints(0, &[TaskClosing, Subsumed, TaskEnded, JobEnding]),
            None
        );
    }
}
