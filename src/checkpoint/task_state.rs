//! Flink's `TaskStateManager`: a task's link to checkpointing, the state it
//! restores from and the responder it acknowledges through.

use std::time::Instant;

use super::barrier::CheckpointOptions;
use super::coordinator::CheckpointMessage;
use super::snapshot::{TaskKey, TaskSnapshot};
use std::sync::Arc;

/// What one task measured for one checkpoint (Flink's `CheckpointMetrics`).
/// Durations in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskCheckpointMetrics {
    /// The checkpoint.
    pub checkpoint_id: u64,
    /// From the trigger to the task's first barrier (Flink's
    /// `checkpointStartDelayNanos`).
    pub start_delay_ns: u64,
    /// From the first barrier to the last (Flink's `alignmentDurationNanos`).
    pub alignment_ns: u64,
    /// The synchronous part on the task thread (`syncDurationMillis`).
    pub sync_ns: u64,
    /// Bytes read during alignment (`bytesProcessedDuringAlignment`).
    pub processed_in_flight_bytes: u64,
    /// In-flight bytes persisted (`bytesPersistedDuringAlignment`).
    pub persisted_in_flight_bytes: u64,
    /// Whether the task took it unaligned.
    pub unaligned: bool,
}

/// A task's checkpointing context, handed to it in its deployment.
#[derive(Clone, Debug)]
pub struct TaskStateManager {
    /// Which subtask (stable across restarts).
    pub task: TaskKey,
    /// How barriers the task starts (a source) or meets align.
    pub options: CheckpointOptions,
    /// The state to restore before the task runs (Flink's
    /// `JobManagerTaskRestore`), if the job restarts from a checkpoint.
    pub restore: Option<Arc<TaskSnapshot>>,
    responder: crossbeam_channel::Sender<CheckpointMessage>,
}

impl TaskStateManager {
    /// A manager reporting to `responder` (the job's checkpoint thread).
    pub fn new(
        task: TaskKey,
        options: CheckpointOptions,
        restore: Option<Arc<TaskSnapshot>>,
        responder: crossbeam_channel::Sender<CheckpointMessage>,
    ) -> Self {
        Self {
            task,
            options,
            restore,
            responder,
        }
    }

    /// Acknowledges a checkpoint with the task's snapshot (Flink's
    /// `reportTaskStateSnapshots`); the checkpoint thread persists it.
    pub fn acknowledge(&self, snapshot: TaskSnapshot, metrics: TaskCheckpointMetrics) {
        // The coordinator is gone only when the job ended; nothing to tell.
        let _ = self.responder.send(CheckpointMessage::Acknowledge {
            snapshot: Box::new(snapshot),
            metrics,
            at: Instant::now(),
        });
    }

    /// Declines checkpoint `id` (Flink's `declineCheckpoint`).
    pub fn decline(&self, id: u64, reason: &str) {
        let _ = self.responder.send(CheckpointMessage::Decline {
            task: self.task,
            id,
            reason: reason.to_string(),
        });
    }
}
