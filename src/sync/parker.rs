//! Park/unpark handshake between a task thread and the threads that feed it.

use std::time::{Duration, Instant};

use super::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
use super::{thread, Mutex};

const EMPTY: usize = 0;
const PARKED: usize = 1;
const NOTIFIED: usize = 2;

/// Puts one consumer thread to sleep until a producer has something for it.
///
/// The protocol (a Dekker handshake, in the spirit of tokio's `park.rs`):
///
/// * **Consumer** (`park_unless`): publishes `PARKED`, issues a `SeqCst`
///   fence, then re-checks its inputs. If anything arrived it un-parks itself;
///   otherwise it sleeps until the state becomes `NOTIFIED`.
/// * **Producer** (`unpark`): after publishing data, issues a `SeqCst` fence
///   and loads the state. Only if it sees `PARKED` does it swap in `NOTIFIED`
///   and make the `unpark` syscall.
///
/// The two fences are totally ordered. If the producer's fence comes first,
/// the consumer's re-check sees the data; if the consumer's comes first, the
/// producer sees `PARKED`. So no wake-up is lost, and a running consumer costs
/// the producer one fence and one load, never a syscall.
#[derive(Debug)]
pub struct Parker {
    state: AtomicUsize,
    /// Set by [`interrupt`](Parker::interrupt): every wait of the owner ends.
    interrupted: AtomicBool,
    /// The thread that parks here; registered on its first park (cold path).
    thread: Mutex<Option<thread::Thread>>,
}

impl Default for Parker {
    fn default() -> Self {
        Self::new()
    }
}

impl Parker {
    /// Creates a parker with no thread registered yet.
    pub fn new() -> Self {
        Self {
            state: AtomicUsize::new(EMPTY),
            interrupted: AtomicBool::new(false),
            thread: Mutex::new(None),
        }
    }

    /// Parks the calling thread unless `ready()` holds once "parked" is
    /// published; returns after a notification, the timeout, or (rarely) a
    /// spurious wake-up. Returns whether the thread actually slept.
    ///
    /// Callers re-check their inputs after it returns.
    pub fn park_unless(&self, ready: impl FnOnce() -> bool, timeout: Option<Duration>) -> bool {
        self.register_current();
        self.state.store(PARKED, Ordering::Relaxed);
        // SeqCst fence: pairs with the SeqCst fence in `unpark`. Orders the
        // PARKED store before the re-check of the inputs in `ready()`.
        fence(Ordering::SeqCst);
        if ready() || self.is_interrupted() {
            // A producer may have swapped in NOTIFIED meanwhile; either way
            // the state goes back to EMPTY and at most a spurious OS-level
            // unpark token is left, which the loops below tolerate.
            self.state.store(EMPTY, Ordering::Relaxed);
            return false;
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            match deadline {
                None => thread::park(),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        break;
                    }
                    park_timeout(deadline - now);
                }
            }
            // Acquire: pairs with the Release in `unpark`'s compare-exchange.
            if self
                .state
                .compare_exchange(NOTIFIED, EMPTY, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return true;
            }
        }
        // Timed out. A late notification is absorbed here.
        self.state.store(EMPTY, Ordering::Relaxed);
        true
    }

    /// Wakes the parked thread, if it is parked. Call it *after* publishing
    /// whatever the consumer's `ready()` check looks at. Returns whether it
    /// woke a sleeping thread (a system call).
    #[inline]
    pub fn unpark(&self) -> bool {
        // SeqCst fence: pairs with the SeqCst fence in `park_unless` (see the
        // type's docs for why that makes lost wake-ups impossible).
        fence(Ordering::SeqCst);
        self.state.load(Ordering::Relaxed) == PARKED && self.unpark_slow()
    }

    /// Interrupts the owner (cancellation): the flag is set for good and the
    /// owner is woken if it sleeps. Waits check [`is_interrupted`](Self::is_interrupted).
    pub fn interrupt(&self) {
        // Release: pairs with the Acquire load in `is_interrupted`.
        self.interrupted.store(true, Ordering::Release);
        self.unpark();
    }

    /// Whether [`interrupt`](Self::interrupt) was called.
    #[inline]
    pub fn is_interrupted(&self) -> bool {
        // Acquire: pairs with the Release store in `interrupt`.
        self.interrupted.load(Ordering::Acquire)
    }

    /// Whether the consumer has published that it is parked (a hint).
    pub fn is_parked(&self) -> bool {
        self.state.load(Ordering::Relaxed) == PARKED
    }

    #[cold]
    fn unpark_slow(&self) -> bool {
        // Release: pairs with the Acquire compare-exchange in `park_unless`.
        let won = self
            .state
            .compare_exchange(PARKED, NOTIFIED, Ordering::Release, Ordering::Relaxed)
            .is_ok();
        if won {
            if let Some(thread) = self.thread.lock().unwrap().as_ref() {
                thread.unpark();
            }
        }
        won
    }

    fn register_current(&self) {
        let mut slot = self.thread.lock().unwrap();
        let current = thread::current();
        if slot.as_ref().map(|t| t.id()) != Some(current.id()) {
            *slot = Some(current);
        }
    }
}

#[cfg(not(loom))]
fn park_timeout(timeout: Duration) {
    std::thread::park_timeout(timeout);
}

/// loom has no timed park; a yield models "woke up for some reason".
#[cfg(loom)]
fn park_timeout(_timeout: Duration) {
    loom::thread::yield_now();
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    #[test]
    fn ready_input_means_no_sleep() {
        let parker = Parker::new();
        assert!(!parker.park_unless(|| true, None));
        assert!(!parker.is_parked());
    }

    #[test]
    fn timed_park_returns_without_a_producer() {
        let parker = Parker::new();
        assert!(parker.park_unless(|| false, Some(Duration::from_millis(1))));
        assert!(!parker.is_parked());
    }

    #[test]
    fn unpark_wakes_a_sleeping_consumer() {
        let parker = Arc::new(Parker::new());
        let flag = Arc::new(AtomicBool::new(false));
        let consumer = {
            let (parker, flag) = (parker.clone(), flag.clone());
            std::thread::spawn(move || {
                while !flag.load(Ordering::Acquire) {
                    parker.park_unless(|| flag.load(Ordering::Acquire), None);
                }
            })
        };
        while !parker.is_parked() && !consumer.is_finished() {
            std::thread::yield_now();
        }
        flag.store(true, Ordering::Release);
        parker.unpark();
        consumer.join().unwrap();
    }
}
