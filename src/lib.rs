//! taskbench: Apache Flink's task runtime rebuilt in Rust as one process,
//! and a benchmark engine around it.
//!
//! # One record's walk
//!
//! ```text
//! RecordWriter::emit ── partitioner picks a subpartition (forward, rebalance,
//!   │                   rescale, key-group hash, broadcast)
//!   └─ RecordSerializer appends [u32 len][bytes] into the subpartition's
//!      BufferBuilder, a segment of the partition's BufferPool
//!      (no free segment = hard back-pressure, counted)
//!   full or flushed ──▶ Buffer pushed into the subpartition's SPSC ring
//!      (ring full = no credit = soft back-pressure, counted)
//!   ChannelAvailability queues the channel; the consumer is unparked only
//!      if it sleeps
//! InputGate::poll ── takes one buffer from the next channel with data
//!   └─ RecordDeserializer yields zero-copy record views (a record spanning
//!      segments is assembled in a per-channel spill buffer sized at setup)
//!   └─ the Buffer goes back to the pool that owns its segment (the credit)
//! ```
//!
//! Events (`EndOfPartition`, `EndOfData`, `CheckpointBarrier`) travel in
//! the same ring, so order is kept. Records never cross a thread except
//! inside a segment, and nothing allocates once a pipeline is set up.
//!
//! # Modules, bottom up
//!
//! * [`sync`]: the atomics shim (loom under `cfg(loom)`, the `loom` feature), [`sync::Parker`],
//!   [`sync::WaitStrategy`].
//! * [`memory`]: the pre-faulted region, [`memory::SegmentPool`],
//!   [`memory::BufferPool`], [`memory::Buffer`] handles.
//! * [`network`]: [`network::ring`], [`network::serde`],
//!   [`network::partition`], [`network::gate`], [`network::event`].
//! * [`metrics`]: the counting allocator, thread CPU time, timelines.
//! * [`runtime`]: the task's [`runtime::ExecutionState`] machine.
//! * [`checkpoint`]: the coordinator, barriers and their alignment,
//!   snapshots, storage and restore.
//! * [`files`]: reading only regular files, and only so much of them.
//! * [`child`]: child processes waited for, stopped with their process
//!   group at a deadline or a signal.
//! * [`mod@bench`]: the two-thread channel run behind `taskbench demo`.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs, clippy::undocumented_unsafe_blocks)]

// Unsafe code lives in `sync`, `memory` and `network::ring` only, and in
// one kill(2) call in `child`; the compiler holds every other module to
// that (`bench` and `metrics` forbid it in their own headers).
pub mod bench;
#[forbid(unsafe_code)]
pub mod checkpoint;
pub mod child;
#[forbid(unsafe_code)]
pub mod files;
#[forbid(unsafe_code)]
pub mod job;
#[forbid(unsafe_code)]
pub mod mailbox;
pub mod memory;
pub mod metrics;
pub mod network;
#[forbid(unsafe_code)]
pub mod runtime;
#[forbid(unsafe_code)]
pub mod streaming;
pub mod sync;
