//! Measurements a run reports beyond the runtime's own counters: heap
//! allocations (the counting allocator, kept in `memory` for its unsafe
//! `GlobalAlloc` impl), thread CPU time and the per-thread timeline trace.

#![forbid(unsafe_code)]

pub mod cpu;
pub mod trace;

pub use crate::memory::counting_alloc::{AllocationCount, CountingAllocator};
pub use cpu::thread_cpu_time;
