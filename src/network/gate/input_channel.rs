//! The consuming end of one channel.

use crate::memory::BufferPool;
use crate::network::event::ChannelItem;
use crate::network::ring;
use crate::network::serde::RecordDeserializer;
use crate::sync::Arc;

/// Counters of one input channel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelMetrics {
    /// Records read.
    pub records_in: u64,
    /// Buffers read.
    pub buffers_in: u64,
    /// Bytes in those buffers.
    pub bytes_in: u64,
}

/// Flink's `LocalInputChannel`: reads the ring its producer's subpartition
/// fills and gives each buffer back to the producer's pool once read.
#[derive(Debug)]
pub struct InputChannel {
    pub(super) ring: ring::Consumer<ChannelItem>,
    /// The pool the producer's buffers come from (the recycler).
    pub(super) pool: Arc<BufferPool>,
    pub(super) deserializer: RecordDeserializer,
    pub(super) finished: bool,
    pub(super) metrics: ChannelMetrics,
}

impl InputChannel {
    pub(crate) fn new(
        ring: ring::Consumer<ChannelItem>,
        pool: Arc<BufferPool>,
        max_record_size: usize,
    ) -> Self {
        Self {
            ring,
            pool,
            deserializer: RecordDeserializer::new(max_record_size),
            finished: false,
            metrics: ChannelMetrics::default(),
        }
    }

    /// Whether `EndOfPartition` arrived.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Counters so far.
    pub fn metrics(&self) -> ChannelMetrics {
        self.metrics
    }
}

impl Drop for InputChannel {
    /// Gives every buffer this channel holds back to its pool and wakes the
    /// producer (it may wait for credit from a consumer that is gone).
    fn drop(&mut self) {
        if let Some(buffer) = self.deserializer.take_buffer() {
            self.pool.recycle(buffer);
        }
        for item in self.ring.close() {
            if let ChannelItem::Data(buffer) = item {
                self.pool.recycle(buffer);
            }
        }
        self.pool.notify_owner();
    }
}
