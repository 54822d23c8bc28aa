//! How a task waits for input or for output capacity.

use std::hint;
use std::time::{Duration, Instant};

use super::occupancy::{self, Waiting};
use super::stall;
use super::{thread, Parker};

/// How a task waits when it has no input, or no output capacity
/// (back-pressure).
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
    /// Budgeted by time rather than rounds: spin while the wait is short
    /// (`spin_ns`), then offer the core to other runnable threads with
    /// yields while the wait is still likely to end soon, and park once it
    /// has lasted `yield_ns` in all — or at once when the tasks running
    /// take every core ([`occupancy::cores_taken`]). A thread that parks
    /// leaves its core idle, which lets the scheduler move a runnable task
    /// there; one that yields keeps the core but hands it to a task beside
    /// it that has work, and wakes within a context switch instead of a
    /// wake-up's tens of microseconds.
    Adaptive {
        /// Nanoseconds to spin before yielding.
        spin_ns: u32,
        /// Nanoseconds into the wait at which the thread parks.
        yield_ns: u32,
    },
}

impl Default for WaitStrategy {
    /// Adaptive: spin 20 µs, park after 1 ms (or once the running tasks
    /// take every core).
    fn default() -> Self {
        WaitStrategy::Adaptive {
            spin_ns: 20_000,
            yield_ns: 1_000_000,
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
            since: None,
            waiting: None,
            last_read: None,
        }
    }

    /// Whether the strategy ever gives its core away (yield or park).
    pub fn releases_core(self) -> bool {
        !matches!(self, WaitStrategy::BusySpin)
    }
}

/// What one round of a wait did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Round {
    /// Spun on the core.
    Spun,
    /// Offered the core to another runnable thread.
    Yielded,
    /// Slept in the kernel until woken, the deadline, or (rarely) for no
    /// reason.
    Parked,
    /// Was about to park, but the re-check found what it waited for.
    Ready,
}

/// A timed park ends this long before its deadline, and the rest is spun
/// or yielded: a sleeping thread wakes late by its timer slack and the
/// machine's wake-up latency (tens of microseconds in a VM), and a deadline
/// (a paced source's next record, a buffer-timeout flush) should not
/// slip by that.
pub const PARK_MARGIN: Duration = Duration::from_micros(100);

/// The state of one wait episode: how far the escalation has gone. A task
/// thread waiting here does not count as running (see
/// [`occupancy`](super::occupancy)) from its first round until the waiter
/// is dropped.
#[derive(Debug)]
pub struct Waiter {
    strategy: WaitStrategy,
    round: u32,
    /// When the first round began (time-budgeted strategies).
    since: Option<Instant>,
    waiting: Option<Waiting>,
    /// The clock at the last spinning or yielding round, while the thread
    /// records its stalls ([`stall`]).
    last_read: Option<Instant>,
}

impl Waiter {
    /// Waits one round. Returns when the awaited thing *may* be there; the
    /// caller re-checks and calls again if not.
    ///
    /// `ready` is the re-check used by the park handshake; `deadline` bounds
    /// a park (a buffer-timeout flush, a paced source's next record): a park
    /// ends [`PARK_MARGIN`] before it, and closer to it the waiter yields
    /// instead of parking.
    #[inline]
    pub fn wait(
        &mut self,
        parker: &Parker,
        ready: impl FnOnce() -> bool,
        deadline: Option<Instant>,
    ) -> Round {
        let round = self.round;
        self.round = self.round.saturating_add(1);
        if round == 0 {
            self.waiting = occupancy::waiting();
        }
        let probing = stall::active();
        let now =
            (probing || matches!(self.strategy, WaitStrategy::Adaptive { .. })).then(Instant::now);
        if probing {
            if let (Some(now), Some(last)) = (now, self.last_read) {
                stall::gap(last, now);
            }
            self.last_read = now;
        }
        let done = self.round_of(round, now, parker, ready, deadline);
        if matches!(done, Round::Parked | Round::Ready) {
            // A thread that slept was not stalled.
            self.last_read = None;
        }
        done
    }

    #[inline]
    fn round_of(
        &mut self,
        round: u32,
        now: Option<Instant>,
        parker: &Parker,
        ready: impl FnOnce() -> bool,
        deadline: Option<Instant>,
    ) -> Round {
        match self.strategy {
            WaitStrategy::BusySpin => spin(round),
            WaitStrategy::SpinYield { spins } => {
                if round < spins {
                    spin(round)
                } else {
                    yield_now()
                }
            }
            WaitStrategy::SpinPark { spins, yields } => {
                if round < spins {
                    spin(round)
                } else if round < spins.saturating_add(yields) {
                    yield_now()
                } else {
                    park(parker, ready, deadline)
                }
            }
            WaitStrategy::Adaptive { spin_ns, yield_ns } => {
                let now = now.unwrap_or_else(Instant::now);
                let waited = now - *self.since.get_or_insert(now);
                if waited < Duration::from_nanos(u64::from(spin_ns)) {
                    spin(round)
                } else if waited < Duration::from_nanos(u64::from(yield_ns))
                    && !occupancy::cores_taken()
                {
                    // Other tasks leave a core free: yielding costs no one.
                    yield_now()
                } else {
                    park(parker, ready, deadline)
                }
            }
        }
    }

    /// Whether the next round would park the thread.
    pub fn would_park(&self) -> bool {
        match self.strategy {
            WaitStrategy::SpinPark { spins, yields } => self.round >= spins.saturating_add(yields),
            WaitStrategy::Adaptive { yield_ns, .. } => self
                .since
                .is_some_and(|since| since.elapsed() >= Duration::from_nanos(u64::from(yield_ns))),
            _ => false,
        }
    }
}

impl Drop for Waiter {
    /// The gap from the last round to the end of the wait (what it waited
    /// for arrived meanwhile, or a stall held the thread back).
    fn drop(&mut self) {
        if let Some(last) = self.last_read {
            stall::gap(last, Instant::now());
        }
    }
}

/// Spins `2^min(round, 6)` hints: short at first, longer as the wait drags on.
#[inline]
fn spin(round: u32) -> Round {
    for _ in 0..(1u32 << round.min(6)) {
        hint::spin_loop();
    }
    Round::Spun
}

#[inline]
fn yield_now() -> Round {
    thread::yield_now();
    Round::Yielded
}

/// Parks until woken, or until [`PARK_MARGIN`] before `deadline`; yields
/// instead when the deadline is closer than that.
fn park(parker: &Parker, ready: impl FnOnce() -> bool, deadline: Option<Instant>) -> Round {
    let timeout = match deadline {
        None => None,
        Some(deadline) => {
            match deadline
                .saturating_duration_since(Instant::now())
                .checked_sub(PARK_MARGIN)
            {
                Some(timeout) if !timeout.is_zero() => Some(timeout),
                _ => return yield_now(),
            }
        }
    };
    if parker.park_unless(ready, timeout) {
        Round::Parked
    } else {
        Round::Ready
    }
}

/// Makes the calling thread's timed sleeps wake on time: Linux lets a
/// timer fire up to the thread's timer slack late (50 µs by default) to
/// batch wake-ups; a task thread asks for 1 ns, so a paced source or a
/// flush deadline is not overshot by the slack. Returns whether the
/// platform took it.
pub fn precise_timers() -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_SET_TIMERSLACK takes the slack in nanoseconds as its only argument and affects only the calling thread.
        unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) == 0 }
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
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
        let rounds: Vec<Round> = (0..5)
            .map(|_| {
                assert!(!waiter.would_park());
                waiter.wait(&parker, || true, None)
            })
            .collect();
        use Round::{Spun, Yielded};
        assert_eq!(rounds, [Spun, Spun, Yielded, Yielded, Yielded]);
        assert!(waiter.would_park());
        // A ready input makes the park return at once.
        assert_eq!(waiter.wait(&parker, || true, None), Round::Ready);
        // Nothing ready: the thread sleeps until woken. The deadline is far
        // enough that no preemption turns the park into a yield, and bounds
        // the park should the wake-up never come; a helper wakes it.
        let round = park_woken(&parker, |parker| {
            waiter.wait(parker, || false, Some(Instant::now() + GUARD))
        });
        assert_eq!(round, Round::Parked);
    }

    /// Bounds a park that nothing else would end.
    const GUARD: Duration = Duration::from_secs(30);

    /// Runs `wait` while a helper thread unparks `parker` whenever it finds
    /// the waiting thread parked.
    fn park_woken(parker: &Parker, wait: impl FnOnce(&Parker) -> Round) -> Round {
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                while !done.load(std::sync::atomic::Ordering::Acquire) {
                    if parker.is_parked() {
                        parker.unpark();
                    }
                    std::thread::sleep(Duration::from_micros(100));
                }
            });
            let round = wait(parker);
            done.store(true, std::sync::atomic::Ordering::Release);
            round
        })
    }

    #[test]
    fn a_deadline_closer_than_the_margin_is_never_slept_through() {
        let parker = Parker::new();
        let mut waiter = WaitStrategy::SpinPark {
            spins: 0,
            yields: 0,
        }
        .waiter();
        let deadline = Instant::now() + PARK_MARGIN / 2;
        assert_eq!(
            waiter.wait(&parker, || false, Some(deadline)),
            Round::Yielded
        );
    }

    #[test]
    fn adaptive_spins_then_yields_then_parks_by_time() {
        // The phases by the time the wait has lasted, set by moving the
        // start of the wait back (the one clock reading the waiter keeps),
        // with seconds between the thresholds so no preemption can skip a
        // phase. No job in this test binary sets the cores, so nothing
        // counts as taking every core and the yield phase is not skipped.
        let parker = Parker::new();
        let mut waiter = WaitStrategy::Adaptive {
            spin_ns: 1_000_000_000,
            yield_ns: 3_000_000_000,
        }
        .waiter();
        // The first round starts the clock: 0 s in, it spins.
        assert_eq!(waiter.wait(&parker, || false, None), Round::Spun);
        assert!(!waiter.would_park());
        // 2 s in, it yields (were it to park, the ready input ends the park
        // at once: the test fails rather than hangs).
        waiter.since = Some(Instant::now() - Duration::from_secs(2));
        assert!(!waiter.would_park());
        assert_eq!(waiter.wait(&parker, || true, None), Round::Yielded);
        // 3 s in, it parks: a ready input makes the park return at once, and
        // without one the thread sleeps until woken.
        waiter.since = Some(Instant::now() - Duration::from_secs(3));
        assert!(waiter.would_park());
        assert_eq!(waiter.wait(&parker, || true, None), Round::Ready);
        let round = park_woken(&parker, |parker| {
            waiter.wait(parker, || false, Some(Instant::now() + GUARD))
        });
        assert_eq!(round, Round::Parked);
    }

    #[test]
    fn adaptive_phases_on_the_real_clock_never_go_back() {
        // Read off the real clock, a preemption can skip a phase, but the
        // wait always starts spinning, never returns to an earlier phase,
        // and parks once the yield budget has passed.
        let parker = Parker::new();
        let mut waiter = WaitStrategy::Adaptive {
            spin_ns: 200_000,
            yield_ns: 400_000,
        }
        .waiter();
        let phase = |round: Round| match round {
            Round::Spun => 0,
            Round::Yielded => 1,
            Round::Parked | Round::Ready => 2,
        };
        let start = Instant::now();
        let mut rounds = Vec::new();
        while !waiter.would_park() {
            // A preemption between `would_park` and the round can make the
            // round park: the deadline ends such a park.
            let deadline = Instant::now() + Duration::from_millis(1);
            rounds.push(waiter.wait(&parker, || false, Some(deadline)));
        }
        assert_eq!(rounds[0], Round::Spun);
        assert!(
            rounds.windows(2).all(|w| phase(w[0]) <= phase(w[1])),
            "{rounds:?}"
        );
        assert!(start.elapsed() >= Duration::from_micros(400));
        assert_eq!(waiter.wait(&parker, || true, None), Round::Ready);
    }

    #[test]
    fn only_busy_spin_keeps_its_core() {
        assert!(!WaitStrategy::BusySpin.releases_core());
        assert!(WaitStrategy::SpinYield { spins: 1 }.releases_core());
        assert!(WaitStrategy::default().releases_core());
        let mut waiter = WaitStrategy::BusySpin.waiter();
        for _ in 0..100 {
            assert_eq!(waiter.wait(&Parker::new(), || false, None), Round::Spun);
            assert!(!waiter.would_park());
        }
    }

    #[test]
    fn timer_slack_can_be_made_precise() {
        std::thread::spawn(|| assert_eq!(precise_timers(), cfg!(target_os = "linux")))
            .join()
            .unwrap();
    }
}
