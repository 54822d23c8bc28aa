//! Flink's `CheckpointResponder` with the async part of a checkpoint
//! (`AsyncCheckpointRunnable` on the task's async operations pool): a task
//! hands its snapshot over and goes on; a writer thread persists it (task
//! file written and fsync'd) and only then acknowledges to the coordinator,
//! so `_metadata` is written after every task file it names.
//!
//! Writers are shards: a task's snapshots and its end go through one
//! writer, in order, so the coordinator never hears that a task ended
//! before the acknowledgement it sent first.

use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::Sender;

use super::coordinator::{CheckpointFailureReason, CheckpointMessage};
use super::snapshot::{TaskKey, TaskSnapshot};
use super::storage::{CheckpointStorage, StoredTask};
use super::task_state::TaskCheckpointMetrics;
use crate::sync::Arc;

/// What a writer thread is handed.
enum Job {
    /// Persist a snapshot, then acknowledge it.
    Persist {
        snapshot: Box<TaskSnapshot>,
        metrics: TaskCheckpointMetrics,
        /// When the task handed it over (the async part starts).
        at: Instant,
    },
    /// The task finished with this final state (after everything it
    /// handed over).
    Finished(Box<TaskSnapshot>),
    /// The task ended (after everything it handed over).
    Ended(TaskKey),
    /// Stop after what came before.
    Stop,
}

/// How tasks report to the coordinator: directly (memory storage, whose
/// async part is nothing: the snapshot is already bytes) or through the
/// writer shard their task key selects.
#[derive(Clone, Debug)]
pub struct CheckpointResponder {
    coordinator: Sender<CheckpointMessage>,
    writers: Option<std::sync::Arc<[Sender<Job>]>>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Job::Persist { snapshot, .. } => write!(
                f,
                "Persist({} of {})",
                snapshot.checkpoint_id, snapshot.task
            ),
            Job::Finished(snapshot) => write!(f, "Finished({})", snapshot.task),
            Job::Ended(task) => write!(f, "Ended({task})"),
            Job::Stop => f.write_str("Stop"),
        }
    }
}

impl CheckpointResponder {
    /// Reports straight to `coordinator` (the async part is skipped: only
    /// for memory storage and tests).
    pub fn direct(coordinator: Sender<CheckpointMessage>) -> Self {
        Self {
            coordinator,
            writers: None,
        }
    }

    fn shard(&self, task: TaskKey) -> Option<&Sender<Job>> {
        let writers = self.writers.as_ref()?;
        let k = (task.vertex as usize).wrapping_mul(31) + task.subtask as usize;
        writers.get(k % writers.len())
    }

    /// Sends `job` through `task`'s writer, or straight to the
    /// coordinator without writers. The receivers are gone only when the
    /// job ended: nothing to tell then.
    fn route(&self, task: TaskKey, job: Job) {
        match self.shard(task) {
            Some(writer) => {
                let _ = writer.send(job);
            }
            None => {
                if let Some(message) = job.into_message() {
                    let _ = self.coordinator.send(message);
                }
            }
        }
    }

    /// Hands `snapshot` over for persisting and acknowledging (Flink's
    /// `reportTaskStateSnapshots` after the async part).
    pub fn acknowledge(&self, snapshot: TaskSnapshot, metrics: TaskCheckpointMetrics) {
        let task = snapshot.task;
        let job = Job::Persist {
            snapshot: Box::new(snapshot),
            metrics,
            at: Instant::now(),
        };
        self.route(task, job);
    }

    /// Declines checkpoint `id` (Flink's `declineCheckpoint`).
    pub fn decline(&self, task: TaskKey, id: u64, failure: CheckpointFailureReason, reason: &str) {
        let _ = self.coordinator.send(CheckpointMessage::Decline {
            task,
            id,
            failure,
            reason: reason.to_string(),
        });
    }

    /// The task finished with `snapshot` as its final state; reaches the
    /// coordinator after every snapshot it handed over.
    pub fn task_finished(&self, snapshot: TaskSnapshot) {
        self.route(snapshot.task, Job::Finished(Box::new(snapshot)));
    }

    /// Task `task` reached a final state; reaches the coordinator after
    /// every snapshot it handed over.
    pub fn task_ended(&self, task: TaskKey) {
        self.route(task, Job::Ended(task));
    }
}

impl Job {
    /// What the coordinator hears of this job when nothing is to be
    /// written: a snapshot as it is (memory storage: already bytes), a
    /// task's end as it is; `None` for `Stop`.
    fn into_message(self) -> Option<CheckpointMessage> {
        Some(match self {
            Job::Persist {
                snapshot, metrics, ..
            } => CheckpointMessage::Acknowledge {
                stored: StoredTask::in_memory(&snapshot),
                snapshot,
                metrics,
                async_ns: 0,
            },
            Job::Finished(snapshot) => CheckpointMessage::TaskFinished(snapshot),
            Job::Ended(task) => CheckpointMessage::TaskEnded(task),
            Job::Stop => return None,
        })
    }
}

/// The writer threads of one job attempt.
#[derive(Debug)]
pub struct AsyncCheckpointWriters {
    senders: std::sync::Arc<[Sender<Job>]>,
    threads: Vec<JoinHandle<()>>,
}

impl AsyncCheckpointWriters {
    /// The responder for a job storing into `storage` and reporting to
    /// `coordinator`: `threads` writers for directory storage, none for
    /// memory.
    pub fn start(
        storage: Arc<CheckpointStorage>,
        coordinator: Sender<CheckpointMessage>,
        threads: usize,
    ) -> (Option<Self>, CheckpointResponder) {
        if matches!(*storage, CheckpointStorage::Memory(_)) || threads == 0 {
            return (None, CheckpointResponder::direct(coordinator));
        }
        let mut senders = Vec::with_capacity(threads);
        let mut handles = Vec::with_capacity(threads);
        for i in 0..threads {
            let (sender, receiver) = crossbeam_channel::unbounded::<Job>();
            let (storage, coordinator) = (storage.clone(), coordinator.clone());
            let handle = std::thread::Builder::new()
                .name(format!("checkpoint-io-{i}"))
                .spawn(move || {
                    for job in receiver {
                        match job {
                            Job::Persist {
                                snapshot,
                                metrics,
                                at,
                            } => persist(&storage, &coordinator, snapshot, metrics, at),
                            Job::Stop => return,
                            other => {
                                if let Some(message) = other.into_message() {
                                    let _ = coordinator.send(message);
                                }
                            }
                        }
                    }
                })
                .expect("spawn a checkpoint writer");
            senders.push(sender);
            handles.push(handle);
        }
        let senders: std::sync::Arc<[Sender<Job>]> = senders.into();
        let responder = CheckpointResponder {
            coordinator,
            writers: Some(senders.clone()),
        };
        (
            Some(Self {
                senders,
                threads: handles,
            }),
            responder,
        )
    }

    /// Persists what was handed over so far, then stops the threads.
    pub fn stop(self) {
        for sender in self.senders.iter() {
            let _ = sender.send(Job::Stop);
        }
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// The async part of one acknowledgement: the task file, then the
/// acknowledgement (or a decline naming what failed).
fn persist(
    storage: &CheckpointStorage,
    coordinator: &Sender<CheckpointMessage>,
    snapshot: Box<TaskSnapshot>,
    metrics: TaskCheckpointMetrics,
    at: Instant,
) {
    let message = match storage.write_task(&snapshot) {
        Ok(stored) => CheckpointMessage::Acknowledge {
            snapshot,
            metrics,
            stored,
            async_ns: at.elapsed().as_nanos() as u64,
        },
        Err(e) => CheckpointMessage::Decline {
            task: snapshot.task,
            id: snapshot.checkpoint_id,
            failure: CheckpointFailureReason::AsyncFailed,
            reason: format!("the async part failed: {e}"),
        },
    };
    let _ = coordinator.send(message);
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn snapshot(id: u64, subtask: u32) -> TaskSnapshot {
        TaskSnapshot {
            checkpoint_id: id,
            task: TaskKey { vertex: 1, subtask },
            operator_state: vec![7; 32],
            channel_state: Vec::new(),
        }
    }

    #[test]
    fn a_task_file_is_on_disk_before_its_acknowledgement_and_its_end_after() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(CheckpointStorage::directory(dir.path()).unwrap());
        let (tx, rx) = crossbeam_channel::unbounded();
        let (writers, responder) = AsyncCheckpointWriters::start(storage, tx, 2);
        for subtask in 0..4 {
            responder.acknowledge(snapshot(3, subtask), TaskCheckpointMetrics::default());
            responder.task_ended(TaskKey { vertex: 1, subtask });
        }
        writers.expect("directory storage has writers").stop();
        let mut acked = Vec::new();
        for message in rx.try_iter() {
            match message {
                CheckpointMessage::Acknowledge {
                    snapshot, stored, ..
                } => {
                    let file = dir.path().join(format!("chk-3/{}.bin", snapshot.task));
                    let bytes = std::fs::read(&file).unwrap();
                    assert_eq!(bytes.len() as u64, stored.bytes);
                    assert_eq!(crc32fast::hash(&bytes[..bytes.len() - 4]), stored.crc32);
                    acked.push(snapshot.task.subtask);
                }
                CheckpointMessage::TaskEnded(task) => {
                    assert!(acked.contains(&task.subtask), "{task} ended first");
                }
                other => panic!("{other:?}"),
            }
        }
        acked.sort_unstable();
        assert_eq!(acked, [0, 1, 2, 3]);
    }

    #[test]
    fn a_failed_write_declines_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(CheckpointStorage::directory(dir.path()).unwrap());
        // A regular file where checkpoint 5's directory would go.
        std::fs::write(dir.path().join("chk-5"), b"").unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        let (writers, responder) = AsyncCheckpointWriters::start(storage, tx, 1);
        responder.acknowledge(snapshot(5, 0), TaskCheckpointMetrics::default());
        writers.unwrap().stop();
        match rx.try_recv().unwrap() {
            CheckpointMessage::Decline {
                id,
                failure,
                reason,
                ..
            } => {
                assert_eq!(id, 5);
                assert_eq!(failure, CheckpointFailureReason::AsyncFailed);
                assert!(reason.contains("chk-5"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn memory_storage_acknowledges_directly() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let storage = Arc::new(CheckpointStorage::memory());
        let (writers, responder) = AsyncCheckpointWriters::start(storage, tx, 2);
        assert!(writers.is_none());
        responder.acknowledge(snapshot(1, 0), TaskCheckpointMetrics::default());
        assert!(matches!(
            rx.try_recv().unwrap(),
            CheckpointMessage::Acknowledge { stored, .. } if stored.bytes == snapshot(1, 0).state_size()
        ));
    }
}
