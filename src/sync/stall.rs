//! The machine's stall floor, measured by the task threads themselves: how
//! long the machine keeps a runnable thread off its core (a hypervisor
//! taking the virtual CPU away, interrupts, other processes), as jHiccup
//! measures the JVM's hiccups.
//!
//! A task waiting by spinning or yielding reads the clock every round and
//! never sleeps; a gap of at least [`STALL`] between two reads is time it
//! wanted a core and had none. Rounds that park are left out (sleeping is
//! not a stall). From the gaps the recorder builds the delay a record would
//! see from them alone: one arriving at a uniformly random instant of the
//! observed time waits out the rest of the gap it lands in, or nothing.
//! That is a floor no pipeline on the machine can beat, printed next to a
//! latency run's percentiles.
//!
//! It costs the job no core and no thread: the tasks spend that time
//! waiting anyway (a latency run's tasks wait most of the time); a round
//! pays one clock read, which the adaptive wait reads anyway. Recording
//! never allocates (the histogram is sized when installed). Gaps shorter
//! than [`STALL`] are a yield handing the core to a task beside it, or the
//! loop itself, and count as observed time without a stall.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use hdrhistogram::Histogram;

/// The shortest gap between two clock reads of a waiting task that counts
/// as a stall.
pub const STALL: Duration = Duration::from_micros(20);
/// The step of the residual-delay samples: one sample per microsecond of
/// observed time.
pub const STEP: Duration = Duration::from_micros(1);

/// What one task thread's waits saw.
#[derive(Clone, Debug)]
pub struct StallRecord {
    /// Residual delays, in nanoseconds, one sample per [`STEP`] of
    /// stalled time (calm time is added by [`StallRecord::delays`]).
    stalled: Histogram<u64>,
    /// Time observed: spent in spinning and yielding rounds.
    pub observed: Duration,
    /// Time of it in stalls.
    pub stalled_for: Duration,
    /// Stalls seen.
    pub stalls: u64,
    /// The longest.
    pub longest: Duration,
}

impl StallRecord {
    fn new() -> Self {
        Self {
            stalled: Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds"),
            observed: Duration::ZERO,
            stalled_for: Duration::ZERO,
            stalls: 0,
            longest: Duration::ZERO,
        }
    }

    /// The delay a record arriving at a random observed instant would see
    /// from the stalls alone, in nanoseconds (1 ns for none), one sample
    /// per [`STEP`] of observed time.
    pub fn delays(&self) -> Histogram<u64> {
        let mut delays = self.stalled.clone();
        let calm = self.observed.saturating_sub(self.stalled_for);
        let steps = (calm.as_nanos() / STEP.as_nanos()) as u64;
        delays.record_n(1, steps).expect("1 ns is in range");
        delays
    }

    /// Adds another thread's record.
    pub fn merge(&mut self, other: &StallRecord) {
        self.stalled
            .add(&other.stalled)
            .expect("records share their bounds");
        self.observed += other.observed;
        self.stalled_for += other.stalled_for;
        self.stalls += other.stalls;
        self.longest = self.longest.max(other.longest);
    }

    /// A record of nothing observed yet.
    pub fn empty() -> Self {
        Self::new()
    }

    fn gap(&mut self, gap: Duration) {
        self.observed += gap;
        if gap < STALL {
            return;
        }
        self.stalls += 1;
        self.stalled_for += gap;
        self.longest = self.longest.max(gap);
        let step = STEP.as_nanos() as u64;
        let ns = (gap.as_nanos() as u64).min(self.stalled.high());
        // `record_correct` adds `ns`, `ns - step`, ... down to one step:
        // the residual delay at each step of the gap.
        self.stalled
            .record_correct(ns, step)
            .expect("clamped into range");
    }
}

thread_local! {
    // Const-initialised without a destructor: reading it never allocates.
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
    static RECORD: RefCell<Option<StallRecord>> = const { RefCell::new(None) };
}

/// Starts recording the calling thread's stalls (allocates the histogram
/// now, before it measures).
pub fn install() {
    RECORD.with_borrow_mut(|r| *r = Some(StallRecord::new()));
    ACTIVE.with(|a| a.set(true));
}

/// Stops recording on the calling thread and returns what it saw.
pub fn uninstall() -> Option<StallRecord> {
    ACTIVE.with(|a| a.set(false));
    RECORD.with_borrow_mut(Option::take)
}

/// Whether the calling thread records its stalls.
#[inline(always)]
pub(super) fn active() -> bool {
    ACTIVE.with(Cell::get)
}

/// Two clock reads of a waiting round were `gap` apart.
#[inline]
pub(super) fn gap(gap: Duration) {
    RECORD.with_borrow_mut(|r| {
        if let Some(r) = r {
            r.gap(gap);
        }
    });
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_stall_adds_its_residual_delays_one_per_step() {
        let mut r = StallRecord::new();
        r.gap(Duration::from_micros(5));
        r.gap(Duration::from_micros(25));
        r.gap(Duration::from_micros(970));
        let d = r.delays();
        // 1000 µs observed: 25 samples of the stall (25 µs .. 1 µs), 975 calm.
        assert_eq!((r.stalls, r.observed), (2, Duration::from_micros(1000)));
        // 5 calm steps, then the stalls' 25 + 970 steps.
        assert_eq!(d.len(), 1000);
        assert_eq!(d.value_at_quantile(0.004), 1);
        assert!(d.equivalent(d.max(), 970_000));
        // 970 steps of the long stall: above the calm 1.5 %, every
        // percentile is a residual of it.
        assert!(d.value_at_quantile(0.5) > 400_000);
    }

    #[test]
    fn only_an_installed_thread_records() {
        std::thread::spawn(|| {
            assert!(!active());
            gap(Duration::from_millis(1));
            assert!(uninstall().is_none());
            install();
            assert!(active());
            gap(Duration::from_millis(1));
            let r = uninstall().unwrap();
            assert_eq!((r.stalls, r.longest), (1, Duration::from_millis(1)));
            let mut all = StallRecord::empty();
            all.merge(&r);
            all.merge(&r);
            assert_eq!(all.stalls, 2);
        })
        .join()
        .unwrap();
    }
}
