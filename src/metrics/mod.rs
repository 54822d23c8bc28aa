//! Measurements a run reports beyond the runtime's own counters: heap
//! allocations, thread CPU time and the per-thread timeline trace.

pub mod alloc;
pub mod cpu;
pub mod trace;

pub use alloc::{AllocationCount, CountingAllocator};
pub use cpu::thread_cpu_time;
