//! Checkpoints: Flink's `CheckpointCoordinator`, the barriers it sends
//! through the sources, the snapshots tasks take when barriers meet, where
//! the snapshots are stored, and how a failed job is restored from them.
//!
//! ```text
//! CheckpointCoordinator ── Mail::TriggerCheckpoint (priority lane) ──▶ sources
//!   source: snapshot position, flush, CheckpointBarrier into every channel
//!   input task: CheckpointBarrierHandler aligns the barrier over its channels
//!     (aligned: a channel blocks after its barrier; at-least-once: counts)
//!     then snapshots its chain and forwards the barrier
//!   every task ── TaskStateManager::acknowledge ──▶ checkpoint-io writer
//!     (the async part: task file written and fsync'd off the task thread)
//!     ── Acknowledge ──▶ checkpoint coordinator
//!   all acknowledged: `_metadata` written last; NotifyCheckpointComplete
//! a task fails: the job is canceled and redeployed from the last complete
//!   checkpoint (restart strategy), the restore in each deployment descriptor
//! ```

mod barrier;
mod coordinator;
mod responder;
mod snapshot;
mod storage;
mod task_state;

pub use barrier::{
    Alignment, CancelCheckpointMarker, CheckpointBarrier, CheckpointOptions, CheckpointType,
};
pub use coordinator::{
    channel, CheckpointCoordinator, CheckpointFailureReason, CheckpointMessage, CheckpointStats,
    CheckpointingConfig, CoordinatedTask, RestartStrategy,
};
pub use responder::{AsyncCheckpointWriters, CheckpointResponder};
pub use snapshot::{ChannelState, StateError, StateReader, StateWriter, TaskKey, TaskSnapshot};
pub use storage::{CheckpointStorage, CompletedCheckpoint, StorageError};
pub use task_state::{TaskCheckpointMetrics, TaskStateManager};
