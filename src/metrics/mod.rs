//! Measurements a run reports beyond the runtime's own counters: heap
//! allocations and thread CPU time.

pub mod alloc;
pub mod cpu;

pub use alloc::{AllocationCount, CountingAllocator};
pub use cpu::thread_cpu_time;
