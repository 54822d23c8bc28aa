//! Flink's `TaskStateManager`: a task's link to checkpointing, the state it
//! restores from and the responder it acknowledges through.

use super::barrier::CheckpointOptions;
use super::coordinator::CheckpointFailureReason;
use super::responder::CheckpointResponder;
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
    /// The most records a sink subtask of the job can count: a restored
    /// count past it is state that is not this job's.
    pub max_sink_records: Option<u64>,
    responder: CheckpointResponder,
}

impl TaskStateManager {
    /// A manager reporting to `responder` (the job's checkpoint thread).
    pub fn new(
        task: TaskKey,
        options: CheckpointOptions,
        restore: Option<Arc<TaskSnapshot>>,
        responder: CheckpointResponder,
    ) -> Self {
        Self {
            task,
            options,
            restore,
            max_sink_records: None,
            responder,
        }
    }

    /// Refuses to restore a sink count past `max` records (`None`: no
    /// bound).
    #[must_use]
    pub fn bounding_sinks_at(mut self, max: Option<u64>) -> Self {
        self.max_sink_records = max;
        self
    }

    /// Acknowledges a checkpoint with the task's snapshot (Flink's
    /// `reportTaskStateSnapshots`): a writer thread persists it (the async
    /// part) and then tells the coordinator.
    pub fn acknowledge(&self, snapshot: TaskSnapshot, metrics: TaskCheckpointMetrics) {
        self.responder.acknowledge(snapshot, metrics);
    }

    /// Reports the task finished with `snapshot`, its final state (its
    /// checkpoint id is set by the checkpoint it stands in for).
    pub fn finished(&self, snapshot: TaskSnapshot) {
        self.responder.task_finished(snapshot);
    }

    /// Declines checkpoint `id` (Flink's `declineCheckpoint`).
    pub fn decline(&self, id: u64, failure: CheckpointFailureReason, reason: &str) {
        self.responder.decline(self.task, id, failure, reason);
    }
}
