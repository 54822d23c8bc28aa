//! Channels between tasks: SPSC rings of buffers and events, the producing
//! [`partition::ResultPartition`] and the consuming [`gate::InputGate`].
//!
//! One ring per (producer subpartition → consumer input channel); its
//! capacity is the channel's credit. Records are framed by
//! [`serde::RecordSerializer`] into pool segments and read back as zero-copy
//! views by [`serde::RecordDeserializer`].

pub mod config;
pub mod event;
pub mod gate;
pub mod partition;
pub mod ring;
pub mod serde;
pub mod shuffle;

pub use config::{NetworkConfig, NetworkConfigError};
pub use event::{ChannelItem, Event};
pub use gate::{
    BufferDebloater, ChannelAvailability, DebloatConfig, InputChannel, InputGate, Poll,
};
pub use partition::{
    PartitionMetrics, Partitioner, RecordWriter, ResultPartition, ResultSubpartition, WriteError,
};
pub use shuffle::{GateKey, PartitionKey, ShuffleEnvironment, ShuffleError};

use crate::memory::BufferPool;
use crate::sync::Arc;

/// Connects a producer's subpartition to channel `channel` of a consumer's
/// gate: a ring of `credit` slots, the producer's pool as the recycler, and
/// the gate's availability signal.
pub fn local_channel(
    credit: usize,
    pool: Arc<BufferPool>,
    availability: &Arc<ChannelAvailability>,
    channel: u32,
    max_record_size: usize,
) -> (ResultSubpartition, InputChannel) {
    let (producer, consumer) = ring::channel(credit);
    (
        ResultSubpartition::new(producer, availability.clone(), channel),
        InputChannel::new(consumer, gate::Recycler::bound(pool), max_record_size),
    )
}
