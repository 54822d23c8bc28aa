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

    /// Gives every buffer this channel holds back to its pool and wakes the
    /// producer (it may wait for credit on a consumer that is gone).
    fn release(self) {
        let InputChannel {
            ring,
            pool,
            mut deserializer,
            ..
        } = self;
        if let Some(buffer) = deserializer.take_buffer() {
            pool.recycle(buffer);
        }
        for item in ring.close() {
            if let ChannelItem::Data(buffer) = item {
                pool.recycle(buffer);
            }
        }
        pool.notify_owner();
    }
}

/// Releases channels when their gate goes away.
pub(super) fn release_all(channels: &mut Vec<InputChannel>) {
    for channel in channels.drain(..) {
        channel.release();
    }
}
