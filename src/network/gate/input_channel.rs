//! The consuming end of one channel.

use std::sync::OnceLock;

use crate::memory::{Buffer, BufferPool};
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

/// The pool a channel's buffers go back to (Flink's `BufferRecycler`),
/// bound when the producer sets its partition up, which may be after the
/// consumer set up its gate. A buffer arrives only after its pool exists,
/// so recycling always finds it bound.
#[derive(Debug, Default)]
pub struct Recycler(OnceLock<Arc<BufferPool>>);

impl Recycler {
    /// A recycler already bound to `pool`.
    pub fn bound(pool: Arc<BufferPool>) -> Arc<Self> {
        let recycler = Arc::new(Recycler::default());
        recycler.bind(pool);
        recycler
    }

    /// Binds the producer's pool (once; later calls are ignored).
    pub fn bind(&self, pool: Arc<BufferPool>) {
        let _ = self.0.set(pool);
    }

    /// Whether the producer's pool is bound.
    pub fn is_bound(&self) -> bool {
        self.0.get().is_some()
    }

    /// Gives a buffer back to the producer's pool.
    ///
    /// # Panics
    /// If no pool is bound: a buffer cannot exist before its pool.
    #[inline]
    pub fn recycle(&self, buffer: Buffer) {
        self.0
            .get()
            .expect("a buffer arrived before its pool was bound")
            .recycle(buffer);
    }

    /// Wakes the producer, if it has set up.
    pub fn notify_producer(&self) {
        if let Some(pool) = self.0.get() {
            pool.notify_owner();
        }
    }
}

/// Flink's `LocalInputChannel`: reads the ring its producer's subpartition
/// fills and gives each buffer back to the producer's pool once read.
#[derive(Debug)]
pub struct InputChannel {
    pub(super) ring: ring::Consumer<ChannelItem>,
    /// Where the producer's buffers go back to.
    pub(super) recycler: Arc<Recycler>,
    pub(super) deserializer: RecordDeserializer,
    pub(super) finished: bool,
    pub(super) metrics: ChannelMetrics,
}

impl InputChannel {
    pub(crate) fn new(
        ring: ring::Consumer<ChannelItem>,
        recycler: Arc<Recycler>,
        max_record_size: usize,
    ) -> Self {
        Self {
            ring,
            recycler,
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
            self.recycler.recycle(buffer);
        }
        for item in self.ring.close() {
            if let ChannelItem::Data(buffer) = item {
                self.recycler.recycle(buffer);
            }
        }
        self.recycler.notify_producer();
    }
}
