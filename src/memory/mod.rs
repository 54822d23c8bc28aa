//! Network memory: one pre-faulted region cut into segments, the global
//! [`SegmentPool`] (Flink's `NetworkBufferPool`), per-partition
//! [`BufferPool`]s (Flink's `LocalBufferPool`) and the handles that carry a
//! segment's bytes from writer to reader.
//!
//! A [`BufferBuilder`] is the only writer of its segment and publishes how
//! far it wrote with one Release store; the segment's [`BufferConsumer`]
//! travels to the reader once and slices [`Buffer`]s of the published bytes
//! while the writer goes on appending (Flink's `BufferBuilder` /
//! `BufferConsumer`). When the writer has finished the segment and the
//! reader has read it to the end, [`BufferPool::recycle`] gives it back
//! (that is the credit).

mod buffer;
mod buffer_pool;
mod config;
pub mod counting_alloc;
mod region;
mod segment_pool;

pub use buffer::{Buffer, BufferBuilder, BufferConsumer, Readable, SegmentState};
pub use buffer_pool::BufferPool;
pub use config::{MemoryConfig, MemoryError, MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE};
pub use region::MemoryRegion;
pub use segment_pool::{SegmentPool, SegmentWait};
