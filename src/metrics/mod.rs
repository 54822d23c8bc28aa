//! Measurements a run reports; so far the allocation counter.

pub mod alloc;

pub use alloc::{AllocationCount, CountingAllocator};
