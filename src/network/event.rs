//! In-band events: they travel in the same ring as data, so order is kept.

use crate::memory::BufferConsumer;

/// What kind of snapshot a barrier asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CheckpointKind {
    /// An aligned checkpoint: channels that delivered the barrier block until
    /// all have.
    Aligned,
    /// An unaligned checkpoint: the barrier overtakes in-flight data, which
    /// becomes part of the snapshot.
    Unaligned,
    /// A savepoint (always aligned).
    Savepoint,
}

/// Flink's `CheckpointBarrier`: marks the point in a stream where checkpoint
/// `id` cuts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CheckpointBarrier {
    /// Checkpoint id, increasing.
    pub id: u64,
    /// When the checkpoint was triggered (ns since the job's epoch).
    pub timestamp: u64,
    /// The kind of snapshot.
    pub kind: CheckpointKind,
}

/// An event sent in-band through a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// The producer subpartition is finished: nothing follows on this channel.
    EndOfPartition,
    /// The producer has no more records (Flink's `EndOfData`); barriers and
    /// `EndOfPartition` may still follow.
    EndOfData,
    /// A checkpoint barrier.
    CheckpointBarrier(CheckpointBarrier),
}

/// What one ring slot carries: the consumer of a segment of serialized
/// records (queued once, read in slices as the writer publishes), or an
/// event.
///
/// Events are small values, not serialized into pool segments, so they never
/// take a buffer from the writer's quota (Flink likewise serializes events
/// into unpooled memory).
#[derive(Debug)]
pub enum ChannelItem {
    /// A segment of serialized records.
    Data(BufferConsumer),
    /// An in-band event.
    Event(Event),
}
