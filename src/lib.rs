//! taskbench: Apache Flink's task runtime rebuilt in Rust as one process,
//! and a benchmark engine around it.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs, clippy::undocumented_unsafe_blocks)]

pub mod bench;
pub mod memory;
pub mod metrics;
pub mod network;
pub mod runtime;
pub mod sync;
