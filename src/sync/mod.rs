//! Synchronisation primitives every lock-free part of taskbench builds on.
//!
//! Atomics, `UnsafeCell`, `Mutex` and threads are imported from here rather
//! than from `std`, so that `cfg(loom)` (the `loom` feature) swaps them for
//! loom's model-checked versions (see `tests/loom.rs`). Under loom, capacities that
//! matter for interleavings are shrunk by the callers.

#[cfg(all(target_os = "linux", not(loom)))]
mod futex;
pub mod occupancy;
mod once;
mod parker;
pub mod stall;
mod wait;

pub use crossbeam_utils::CachePadded;
pub use once::OnceSlot;
pub use parker::Parker;
pub use wait::{precise_timers, Round, WaitStrategy, Waiter, PARK_MARGIN};

#[cfg(loom)]
pub use loom::sync::Arc;
#[cfg(loom)]
pub(crate) use loom::sync::{atomic, Mutex};
#[cfg(not(loom))]
pub use std::sync::Arc;
#[cfg(not(loom))]
pub(crate) use std::sync::{atomic, Mutex};

#[cfg(loom)]
pub(crate) use loom::thread;
#[cfg(not(loom))]
pub(crate) use std::thread;

pub use bounded_queue::BoundedQueue;
pub(crate) use cell::UnsafeCell;
/// The free lists of segment indices.
pub(crate) type IndexQueue = BoundedQueue<u32>;

/// `UnsafeCell` with loom's closure API, so accesses are tracked under loom.
#[cfg(loom)]
mod cell {
    pub(crate) use loom::cell::UnsafeCell;
}

#[cfg(not(loom))]
mod cell {
    /// A zero-cost `UnsafeCell` exposing loom's `with`/`with_mut` API.
    #[derive(Debug)]
    pub(crate) struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub(crate) const fn new(value: T) -> Self {
            Self(core::cell::UnsafeCell::new(value))
        }

        #[inline(always)]
        pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }

        #[inline(always)]
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }
}

/// A bounded MPMC queue: the free lists of the memory pools, the gate's
/// queue of channels with data, the task mailbox's lanes.
///
/// Outside loom this is crossbeam's `ArrayQueue` (lock-free, itself tested
/// upstream). Under loom it is a mutex-protected deque with the same API, so
/// the models check *our* protocols around the queue (reference counts,
/// availability, wake-ups) without exploring crossbeam's internals.
#[cfg(not(loom))]
mod bounded_queue {
    /// crossbeam's `ArrayQueue` (see the module docs).
    pub type BoundedQueue<T> = crossbeam_queue::ArrayQueue<T>;
}

#[cfg(loom)]
mod bounded_queue {
    use std::collections::VecDeque;

    /// A loom-visible stand-in for crossbeam's `ArrayQueue`.
    #[derive(Debug)]
    pub struct BoundedQueue<T> {
        items: loom::sync::Mutex<VecDeque<T>>,
        capacity: usize,
    }

    impl<T> BoundedQueue<T> {
        /// A queue of at most `capacity` items.
        pub fn new(capacity: usize) -> Self {
            Self {
                items: loom::sync::Mutex::new(VecDeque::with_capacity(capacity)),
                capacity,
            }
        }

        /// Appends, or hands the value back when full.
        pub fn push(&self, value: T) -> Result<(), T> {
            let mut items = self.items.lock().unwrap();
            if items.len() == self.capacity {
                return Err(value);
            }
            items.push_back(value);
            Ok(())
        }

        /// Takes the oldest item.
        pub fn pop(&self) -> Option<T> {
            self.items.lock().unwrap().pop_front()
        }

        /// Items queued.
        pub fn len(&self) -> usize {
            self.items.lock().unwrap().len()
        }

        /// Whether nothing is queued.
        pub fn is_empty(&self) -> bool {
            self.len() == 0
        }

        /// Maximum number of items.
        pub fn capacity(&self) -> usize {
            self.capacity
        }
    }
}
