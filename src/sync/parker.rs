//! Park/unpark handshake between a task thread and the threads that feed it.

use std::time::{Duration, Instant};

use super::atomic::{fence, AtomicBool, AtomicU32, Ordering};

const EMPTY: u32 = 0;
const PARKED: u32 = 1;
const NOTIFIED: u32 = 2;

/// Puts one consumer thread to sleep until a producer has something for it.
///
/// The protocol (a Dekker handshake, in the spirit of tokio's `park.rs`):
///
/// * **Consumer** (`park_unless`): publishes `PARKED`, issues a `SeqCst`
///   fence, then re-checks its inputs. If anything arrived it un-parks itself;
///   otherwise it sleeps until the state becomes `NOTIFIED`.
/// * **Producer** (`unpark`): after publishing data, issues a `SeqCst` fence
///   and loads the state. Only if it sees `PARKED` does it swap in `NOTIFIED`
///   and make the wake-up system call.
///
/// The two fences are totally ordered. If the producer's fence comes first,
/// the consumer's re-check sees the data; if the consumer's comes first, the
/// producer sees `PARKED`. So no wake-up is lost, and a running consumer costs
/// the producer one fence and one load, never a system call.
///
/// On Linux the sleep is a futex wait on the state word itself: it returns
/// at once if the state is no longer `PARKED`, so a wake-up between the
/// re-check and the sleep is not lost, and parking takes no lock and needs
/// no registered thread handle. Elsewhere (and under loom) the parking
/// thread registers its handle, behind a lock, and sleeps in
/// `thread::park`.
#[derive(Debug)]
pub struct Parker {
    state: AtomicU32,
    /// Set by [`interrupt`](Parker::interrupt): every wait of the owner ends.
    interrupted: AtomicBool,
    #[cfg(not(all(target_os = "linux", not(loom))))]
    thread: super::Mutex<Option<super::thread::Thread>>,
}

impl Default for Parker {
    fn default() -> Self {
        Self::new()
    }
}

impl Parker {
    /// Creates a parker with no thread parked.
    pub fn new() -> Self {
        Self {
            state: AtomicU32::new(EMPTY),
            interrupted: AtomicBool::new(false),
            #[cfg(not(all(target_os = "linux", not(loom))))]
            thread: super::Mutex::new(None),
        }
    }

    /// Parks the calling thread unless `ready()` holds once "parked" is
    /// published; returns after a notification, the timeout, or (rarely) a
    /// spurious wake-up. Returns whether the thread actually slept.
    ///
    /// Callers re-check their inputs after it returns.
    pub fn park_unless(&self, ready: impl FnOnce() -> bool, timeout: Option<Duration>) -> bool {
        #[cfg(not(all(target_os = "linux", not(loom))))]
        self.register_current();
        // Release: pairs with the AcqRel compare-exchange in `unpark_slow`,
        // so what this thread did before (registering itself, where it
        // does) happens before a waker acts on PARKED.
        self.state.store(PARKED, Ordering::Release);
        // SeqCst fence: pairs with the SeqCst fence in `unpark`. Orders the
        // PARKED store before the re-check of the inputs in `ready()`.
        fence(Ordering::SeqCst);
        if ready() || self.is_interrupted() {
            // A producer may have swapped in NOTIFIED meanwhile; either way
            // the state goes back to EMPTY and its wake-up finds no sleeper.
            self.state.store(EMPTY, Ordering::Relaxed);
            return false;
        }
        // An unrepresentable deadline (a huge timeout) means no deadline.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            let remaining = match deadline {
                None => None,
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => break,
                },
            };
            self.sleep(remaining);
            // Acquire: pairs with the AcqRel compare-exchange in
            // `unpark_slow`; the waker's publishing happens before our
            // re-check.
            if self
                .state
                .compare_exchange(NOTIFIED, EMPTY, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return true;
            }
        }
        // Timed out. A late notification is absorbed here. Acquire: as above.
        self.state.swap(EMPTY, Ordering::Acquire);
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
        // AcqRel: the Release half pairs with the Acquire compare-exchange in
        // `park_unless` (our publishing happens before its re-check); the
        // Acquire half pairs with the Release store of PARKED (the parked
        // thread's registration happens before we read it).
        let won = self
            .state
            .compare_exchange(PARKED, NOTIFIED, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok();
        if won {
            self.wake();
        }
        won
    }

    /// Sleeps while the state is PARKED, at most `timeout`.
    #[cfg(all(target_os = "linux", not(loom)))]
    fn sleep(&self, timeout: Option<Duration>) {
        super::futex::wait(&self.state, PARKED, timeout);
    }

    #[cfg(all(target_os = "linux", not(loom)))]
    fn wake(&self) {
        super::futex::wake_one(&self.state);
    }

    #[cfg(not(all(target_os = "linux", not(loom))))]
    fn sleep(&self, timeout: Option<Duration>) {
        match timeout {
            None => super::thread::park(),
            Some(timeout) => park_timeout(timeout),
        }
    }

    #[cfg(not(all(target_os = "linux", not(loom))))]
    fn wake(&self) {
        if let Some(thread) = self.thread.lock().unwrap().as_ref() {
            thread.unpark();
        }
    }

    #[cfg(not(all(target_os = "linux", not(loom))))]
    fn register_current(&self) {
        let mut slot = self.thread.lock().unwrap();
        let current = super::thread::current();
        if slot.as_ref().map(|t| t.id()) != Some(current.id()) {
            *slot = Some(current);
        }
    }
}

#[cfg(all(not(loom), not(target_os = "linux")))]
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
        let start = Instant::now();
        assert!(parker.park_unless(|| false, Some(Duration::from_millis(1))));
        assert!(start.elapsed() >= Duration::from_millis(1));
        assert!(!parker.is_parked());
        // A timeout too large to add to the clock means no timeout, not a
        // panic (the producer below wakes it).
        let parker = Arc::new(Parker::new());
        let waker = {
            let parker = parker.clone();
            std::thread::spawn(move || {
                while !parker.is_parked() {
                    std::thread::yield_now();
                }
                parker.unpark()
            })
        };
        assert!(parker.park_unless(|| false, Some(Duration::MAX)));
        assert!(waker.join().unwrap(), "the waker made the wake-up call");
    }

    #[test]
    fn unpark_wakes_a_sleeping_consumer_once() {
        let parker = Arc::new(Parker::new());
        let flag = Arc::new(AtomicBool::new(false));
        let consumer = {
            let (parker, flag) = (parker.clone(), flag.clone());
            std::thread::spawn(move || {
                let mut slept = 0;
                while !flag.load(Ordering::Acquire) {
                    slept += u32::from(parker.park_unless(|| flag.load(Ordering::Acquire), None));
                }
                slept
            })
        };
        while !parker.is_parked() && !consumer.is_finished() {
            std::thread::yield_now();
        }
        flag.store(true, Ordering::Release);
        parker.unpark();
        assert!(!parker.unpark(), "nobody sleeps any more");
        assert!(consumer.join().unwrap() <= 1);
    }
}
