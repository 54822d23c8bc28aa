//! How a task waits for input or for output capacity.

use std::hint;
use std::time::Instant;

use super::{thread, Parker};

/// How a task waits when it has no input, or no output buffer (back-pressure).
///
/// Like disruptor's wait strategies, escalating like crossbeam's `Backoff`:
/// spin with `spin_loop` hints, then yield the core, then park. Spinning is
/// only sensible while there are at least as many cores as spinning tasks;
/// the deployment escalates `BusySpin` to parking otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitStrategy {
    /// Spin forever: lowest latency, burns a core per waiting task.
    BusySpin,
    /// Spin `spins` rounds, then yield the core on every further round.
    SpinYield {
        /// Spin rounds before the first yield.
        spins: u32,
    },
    /// Spin `spins` rounds, yield `yields` times, then park until woken.
    SpinPark {
        /// Spin rounds before yielding.
        spins: u32,
        /// Yields before parking.
        yields: u32,
    },
}

impl Default for WaitStrategy {
    fn default() -> Self {
        WaitStrategy::SpinPark {
            spins: 64,
            yields: 8,
        }
    }
}

impl WaitStrategy {
    /// A fresh waiter for one wait episode.
    #[inline]
    pub fn waiter(self) -> Waiter {
        Waiter {
            strategy: self,
            round: 0,
        }
    }

    /// Whether the strategy ever gives its core away (yield or park).
    pub fn releases_core(self) -> bool {
        !matches!(self, WaitStrategy::BusySpin)
    }
}

/// The state of one wait episode: how far the escalation has gone.
#[derive(Clone, Copy, Debug)]
pub struct Waiter {
    strategy: WaitStrategy,
    round: u32,
}

impl Waiter {
    /// Waits one round. Returns when the awaited thing *may* be there; the
    /// caller re-checks and calls again if not.
    ///
    /// `ready` is the re-check used by the park handshake; `deadline` bounds
    /// a park (a buffer-timeout flush, a cancellation check).
    #[inline]
    pub fn wait(
        &mut self,
        parker: &Parker,
        ready: impl FnOnce() -> bool,
        deadline: Option<Instant>,
    ) {
        let round = self.round;
        self.round = self.round.saturating_add(1);
        match self.strategy {
            WaitStrategy::BusySpin => spin(round),
            WaitStrategy::SpinYield { spins } => {
                if round < spins {
                    spin(round)
                } else {
                    thread::yield_now()
                }
            }
            WaitStrategy::SpinPark { spins, yields } => {
                if round < spins {
                    spin(round)
                } else if round < spins.saturating_add(yields) {
                    thread::yield_now()
                } else {
                    let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                    parker.park_unless(ready, timeout);
                }
            }
        }
    }

    /// Whether the next round would park the thread.
    pub fn would_park(&self) -> bool {
        match self.strategy {
            WaitStrategy::SpinPark { spins, yields } => self.round >= spins.saturating_add(yields),
            _ => false,
        }
    }
}

/// Spins `2^min(round, 6)` hints: short at first, longer as the wait drags on.
#[inline]
fn spin(round: u32) {
    for _ in 0..(1u32 << round.min(6)) {
        hint::spin_loop();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn spin_park_escalates_to_park_after_spins_and_yields() {
        let parker = Parker::new();
        let mut waiter = WaitStrategy::SpinPark {
            spins: 2,
            yields: 3,
        }
        .waiter();
        for _ in 0..5 {
            assert!(!waiter.would_park());
            waiter.wait(&parker, || true, None);
        }
        assert!(waiter.would_park());
        // A ready input makes the park return at once.
        waiter.wait(&parker, || true, None);
    }

    #[test]
    fn only_busy_spin_keeps_its_core() {
        assert!(!WaitStrategy::BusySpin.releases_core());
        assert!(WaitStrategy::SpinYield { spins: 1 }.releases_core());
        assert!(WaitStrategy::default().releases_core());
        let mut waiter = WaitStrategy::BusySpin.waiter();
        for _ in 0..100 {
            waiter.wait(&Parker::new(), || false, None);
            assert!(!waiter.would_park());
        }
    }
}
