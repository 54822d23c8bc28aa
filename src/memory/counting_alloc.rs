//! A counting global allocator: proves "no allocation on the data path".
//!
//! It lives with the memory code because implementing `GlobalAlloc` is
//! unsafe, and DESIGN allows unsafe code only in `sync`, `memory` and the
//! ring; `metrics` re-exports it.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static ALLOCATED_BYTES: AtomicU64 = AtomicU64::new(0);

thread_local! {
    // Const-initialised and without a destructor, so using it inside the
    // allocator never allocates or re-enters.
    static THREAD_ALLOCATIONS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// Wraps an allocator and counts every allocation and reallocation made
/// through it, process-wide and per thread.
///
/// Install it in a binary or test crate:
///
/// ```ignore
/// #[global_allocator]
/// static ALLOC: CountingAllocator<mimalloc::MiMalloc> = CountingAllocator(mimalloc::MiMalloc);
/// ```
///
/// Counting costs one relaxed `fetch_add` per allocation, which a job in
/// steady state does not make.
#[derive(Debug, Default)]
pub struct CountingAllocator<A>(pub A);

// SAFETY: every method forwards to the wrapped allocator unchanged; the counters have no effect on the memory handed out.
unsafe impl<A: GlobalAlloc> GlobalAlloc for CountingAllocator<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.0.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.0.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.0.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.0.dealloc(ptr, layout) }
    }
}

#[inline]
fn count(bytes: usize) {
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    ALLOCATED_BYTES.fetch_add(bytes as u64, Ordering::Relaxed);
    // `try_with`: during thread teardown the slot may be gone; such late
    // allocations still count process-wide.
    let _ = THREAD_ALLOCATIONS.try_with(|c| {
        let (n, b) = c.get();
        c.set((n + 1, b + bytes as u64));
    });
}

/// Allocation counters at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllocationCount {
    /// Allocations and reallocations so far.
    pub allocations: u64,
    /// Bytes requested by them.
    pub bytes: u64,
}

impl AllocationCount {
    /// The counters now. Zero forever unless a [`CountingAllocator`] is the
    /// global allocator.
    pub fn now() -> Self {
        Self {
            allocations: ALLOCATIONS.load(Ordering::Relaxed),
            bytes: ALLOCATED_BYTES.load(Ordering::Relaxed),
        }
    }

    /// The calling thread's counters now: what this thread allocated, free
    /// of noise from other threads of the process (a test harness, say).
    pub fn thread_now() -> Self {
        let (allocations, bytes) = THREAD_ALLOCATIONS.try_with(Cell::get).unwrap_or_default();
        Self { allocations, bytes }
    }

    /// What was allocated between `earlier` and `self`.
    pub fn since(self, earlier: AllocationCount) -> AllocationCount {
        AllocationCount {
            allocations: self.allocations - earlier.allocations,
            bytes: self.bytes - earlier.bytes,
        }
    }

    /// The sum of two counts (e.g. of two threads).
    pub fn plus(self, other: AllocationCount) -> AllocationCount {
        AllocationCount {
            allocations: self.allocations + other.allocations,
            bytes: self.bytes + other.bytes,
        }
    }
}
