//! Flink's `CheckpointBarrier`, `CheckpointOptions` and
//! `CancelCheckpointMarker`: small values that travel in-band.

/// Checkpoint or savepoint (Flink's `SnapshotType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CheckpointType {
    /// A checkpoint, owned by the runtime.
    Checkpoint,
    /// A savepoint: always aligned.
    Savepoint,
}

/// How a barrier meets the channels of a task (Flink's
/// `CheckpointOptions.AlignmentType` with the checkpointing mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Alignment {
    /// Exactly-once, aligned: a channel that delivered the barrier is
    /// blocked until every channel has (Flink's `SingleCheckpointBarrierHandler`
    /// with `AlignedState`).
    Aligned,
    /// Exactly-once, unaligned: the first barrier triggers the snapshot;
    /// what is in flight before the barrier on each channel becomes part of
    /// it.
    Unaligned,
    /// Aligned, turning unaligned when alignment has lasted this many
    /// microseconds (Flink's `execution.checkpointing.aligned-checkpoint-timeout`).
    AlignedWithTimeout {
        /// The alignment timeout, µs.
        timeout_us: u32,
    },
    /// At-least-once: barriers are counted, never block (Flink's
    /// `CheckpointBarrierTracker`).
    AtLeastOnce,
}

impl Alignment {
    /// Whether channels block after their barrier (before any timeout).
    pub fn blocks(self) -> bool {
        matches!(
            self,
            Alignment::Aligned | Alignment::AlignedWithTimeout { .. }
        )
    }
}

/// What a checkpoint asks of the tasks (Flink's `CheckpointOptions`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CheckpointOptions {
    /// Checkpoint or savepoint.
    pub kind: CheckpointType,
    /// How barriers align.
    pub alignment: Alignment,
}

impl Default for CheckpointOptions {
    fn default() -> Self {
        Self {
            kind: CheckpointType::Checkpoint,
            alignment: Alignment::Aligned,
        }
    }
}

/// Flink's `CheckpointBarrier`: marks where checkpoint `id` cuts a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CheckpointBarrier {
    /// Checkpoint id, increasing per job.
    pub id: u64,
    /// When the coordinator triggered it, ns of the job's clock.
    pub timestamp: u64,
    /// What the checkpoint asks.
    pub options: CheckpointOptions,
}

/// Flink's `CancelCheckpointMarker`: checkpoint `id` was declined upstream;
/// a task aligning it stops and forwards the marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CancelCheckpointMarker {
    /// The checkpoint given up.
    pub id: u64,
}
