//! Network memory: one pre-faulted region cut into segments, the global
//! [`SegmentPool`] (Flink's `NetworkBufferPool`), per-partition
//! [`BufferPool`]s (Flink's `LocalBufferPool`) and the [`Buffer`] handles that
//! carry a segment's bytes from writer to reader.
//!
//! Ownership of a segment's bytes follows its handle: a [`BufferBuilder`] is
//! the only writer of its segment; [`BufferPool::finish`] turns it into a
//! read-only [`Buffer`]; passing a `Buffer` through a ring passes the bytes;
//! [`BufferPool::recycle`] gives the segment back (that is the credit).

mod buffer;
mod buffer_pool;
mod config;
mod region;
mod segment_pool;

pub use buffer::{Buffer, BufferBuilder};
pub use buffer_pool::BufferPool;
pub use config::{MemoryConfig, MemoryError, MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE};
pub use region::MemoryRegion;
pub use segment_pool::{SegmentPool, SegmentWait};
