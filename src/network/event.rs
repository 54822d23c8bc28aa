//! In-band events: they travel in the same ring as data, so order is kept.

pub use crate::checkpoint::{CancelCheckpointMarker, CheckpointBarrier};
use crate::memory::BufferConsumer;

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
    /// A checkpoint declined upstream.
    CancelCheckpointMarker(CancelCheckpointMarker),
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
