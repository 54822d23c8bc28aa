//! Flink's `RecordWriter`: a partition plus the partitioner that routes each
//! record.

use super::{ChannelSelector, Partitioner, ResultPartition, Selection, WriteError};
use crate::network::event::Event;

/// Routes records to subpartitions by a [`Partitioner`] and writes them.
#[derive(Debug)]
pub struct RecordWriter {
    partition: ResultPartition,
    selector: ChannelSelector,
}

impl RecordWriter {
    /// A writer over `partition`; round-robin partitioners start at channel
    /// `start`.
    pub fn new(partition: ResultPartition, partitioner: Partitioner, start: usize) -> Self {
        let selector = ChannelSelector::new(partitioner, partition.num_subpartitions(), start);
        Self {
            partition,
            selector,
        }
    }

    /// Writes one record with routing key `key` (ignored unless hashing).
    #[inline]
    pub fn emit(&mut self, key: u64, record: &[u8]) -> Result<(), WriteError> {
        match self.selector.select(key) {
            Selection::One(index) => self.partition.emit(index, record),
            Selection::All => self.partition.emit_broadcast(record),
        }
    }

    /// Writes one record to every channel whatever the partitioner (a
    /// broadcast partitioner shares one copy; others copy per channel, as
    /// Flink's `broadcastEmit` does).
    pub fn broadcast_emit(&mut self, record: &[u8]) -> Result<(), WriteError> {
        if self.selector.partitioner() == Partitioner::Broadcast {
            return self.partition.emit_broadcast(record);
        }
        for index in 0..self.partition.num_subpartitions() {
            self.partition.emit(index, record)?;
        }
        Ok(())
    }

    /// Sends an event to every channel, after the records before it.
    pub fn broadcast_event(&mut self, event: Event) -> Result<(), WriteError> {
        self.partition.broadcast_event(event)
    }

    /// Hands partially filled buffers to the consumers.
    pub fn flush_all(&mut self) -> Result<(), WriteError> {
        self.partition.flush_all()
    }

    /// Flushes and ends every channel with `EndOfPartition`.
    pub fn finish(&mut self) -> Result<(), WriteError> {
        self.partition.finish()
    }

    /// The partition written to.
    pub fn partition(&self) -> &ResultPartition {
        &self.partition
    }

    /// The partition written to, mutably.
    pub fn partition_mut(&mut self) -> &mut ResultPartition {
        &mut self.partition
    }
}
