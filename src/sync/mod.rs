//! Synchronisation primitives every lock-free part of taskbench builds on.
//!
//! Atomics, `UnsafeCell`, `Mutex` and threads are imported from here rather
//! than from `std`, so that `RUSTFLAGS="--cfg loom"` swaps them for loom's
//! model-checked versions (see `tests/loom.rs`). Under loom, capacities that
//! matter for interleavings are shrunk by the callers.

mod parker;
mod wait;

pub use crossbeam_utils::CachePadded;
pub use parker::Parker;
pub use wait::{WaitStrategy, Waiter};

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

pub(crate) use cell::UnsafeCell;
pub(crate) use index_queue::IndexQueue;

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

/// A bounded MPMC queue of indices: the free lists of the memory pools and
/// the gate's queue of channels with data.
///
/// Outside loom this is crossbeam's `ArrayQueue<u32>` (lock-free, itself
/// tested upstream). Under loom it is a mutex-protected deque with the same
/// API, so the models check *our* protocols around the queue (reference
/// counts, availability, wake-ups) without exploring crossbeam's internals.
#[cfg(not(loom))]
mod index_queue {
    pub(crate) type IndexQueue = crossbeam_queue::ArrayQueue<u32>;
}

#[cfg(loom)]
mod index_queue {
    use std::collections::VecDeque;

    #[derive(Debug)]
    pub(crate) struct IndexQueue {
        items: loom::sync::Mutex<VecDeque<u32>>,
        capacity: usize,
    }

    impl IndexQueue {
        pub(crate) fn new(capacity: usize) -> Self {
            Self {
                items: loom::sync::Mutex::new(VecDeque::with_capacity(capacity)),
                capacity,
            }
        }

        pub(crate) fn push(&self, value: u32) -> Result<(), u32> {
            let mut items = self.items.lock().unwrap();
            if items.len() == self.capacity {
                return Err(value);
            }
            items.push_back(value);
            Ok(())
        }

        pub(crate) fn pop(&self) -> Option<u32> {
            self.items.lock().unwrap().pop_front()
        }

        pub(crate) fn len(&self) -> usize {
            self.items.lock().unwrap().len()
        }

        pub(crate) fn is_empty(&self) -> bool {
            self.len() == 0
        }
    }
}
