//! A value set once, then read without a lock.

use super::atomic::{AtomicU8, Ordering};
use super::UnsafeCell;

const EMPTY: u8 = 0;
const WRITING: u8 = 1;
const SET: u8 = 2;

/// A slot written at most once and read lock-free afterwards, as std's
/// `OnceLock` but built on the crate's atomics shim, so the loom models see
/// the hand-off (a producer binding its buffer pool to channels whose
/// consumers may already be reading: the late-bound recycler).
///
/// One `set` wins; a `set` racing it returns its value back. `get` sees the
/// value once the winning `set` has returned.
#[derive(Debug)]
pub struct OnceSlot<T> {
    state: AtomicU8,
    value: UnsafeCell<Option<T>>,
}

// SAFETY: the value is written once, by the one `set` that won the EMPTY -> WRITING exchange, before the Release store of SET; readers touch it only after an Acquire load saw SET, and never mutably. So it is shared like `&T` across threads (`T: Sync`) and may be handed to another thread to drop (`T: Send`).
unsafe impl<T: Send + Sync> Sync for OnceSlot<T> {}
// SAFETY: moving the slot moves the value, which `T: Send` allows.
unsafe impl<T: Send> Send for OnceSlot<T> {}

impl<T> Default for OnceSlot<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> OnceSlot<T> {
    /// An empty slot.
    pub fn new() -> Self {
        Self {
            state: AtomicU8::new(EMPTY),
            value: UnsafeCell::new(None),
        }
    }

    /// Sets the value, unless a value was (or is being) set: then `value`
    /// comes back.
    pub fn set(&self, value: T) -> Result<(), T> {
        // Relaxed on success: the exclusive right to write is all we take;
        // readers synchronise on the Release store of SET below.
        if self
            .state
            .compare_exchange(EMPTY, WRITING, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return Err(value);
        }
        self.value.with_mut(|slot| {
            // SAFETY: the exchange above made this call the only writer, and no reader looks before SET is published.
            unsafe { *slot = Some(value) }
        });
        // Release: pairs with the Acquire load in `get`; the value is
        // written before a reader sees SET.
        self.state.store(SET, Ordering::Release);
        Ok(())
    }

    /// The value, once set.
    #[inline]
    pub fn get(&self) -> Option<&T> {
        // Acquire: pairs with the Release store in `set`.
        if self.state.load(Ordering::Acquire) != SET {
            return None;
        }
        self.value.with(|slot| {
            // SAFETY: SET was published after the one write, and the value is never written again, so a shared reference lives as long as `&self`.
            unsafe { (*slot).as_ref() }
        })
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_first_set_wins_and_is_seen_by_every_reader() {
        let slot = std::sync::Arc::new(OnceSlot::new());
        assert_eq!(slot.get(), None);
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let slot = slot.clone();
                std::thread::spawn(move || loop {
                    if let Some(&v) = slot.get() {
                        return v;
                    }
                    std::thread::yield_now();
                })
            })
            .collect();
        assert_eq!(slot.set(7), Ok(()));
        assert_eq!(slot.set(8), Err(8));
        for r in readers {
            assert_eq!(r.join().unwrap(), 7);
        }
    }
}
