//! The machine's stall floor, measured by the task threads themselves: how
//! long the machine keeps a runnable thread off its core (a hypervisor
//! taking the virtual CPU away, interrupts, other processes), as jHiccup
//! measures the JVM's hiccups.
//!
//! A task waiting by spinning or yielding reads the clock every round and
//! never sleeps; a gap of at least [`STALL`] between two reads is time it
//! wanted a core and had none. Rounds that park are left out (sleeping is
//! not a stall). Each task thread keeps its stalls as intervals; a job's
//! floor ([`floor`]) is the delay a record arriving at a uniformly random
//! instant would see from them alone. A record passes through every task
//! of a pipeline, so it waits out whichever task's stall it meets: the
//! floor is the remaining length of the union of every task's stalls at
//! that instant, or nothing. No pipeline on the machine can beat it; it is
//! printed next to a latency run's percentiles.
//!
//! It costs the job no core and no thread: the tasks spend that time
//! waiting anyway (a latency run's tasks wait most of the time), and a
//! round pays one clock read, which the adaptive wait reads anyway.
//! Recording never allocates: the interval buffer is sized when installed,
//! and a full one drops further stalls, counted. Gaps shorter than
//! [`STALL`] are a yield handing the core to a task beside it, or the loop
//! itself.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// The shortest gap between two clock reads of a waiting task that counts
/// as a stall.
pub const STALL: Duration = Duration::from_micros(20);
/// The step of the floor's samples: one per microsecond of the window.
pub const STEP: Duration = Duration::from_micros(1);
/// Stalls a thread keeps (16 bytes each); more are counted, not kept.
pub const CAPACITY: usize = 1 << 16;

/// What one task thread's waits saw.
#[derive(Clone, Debug)]
pub struct StallRecord {
    /// Where the intervals' times start.
    pub epoch: Instant,
    /// Stalls, as (start, end) in nanoseconds since `epoch`.
    pub stalls: Vec<(u64, u64)>,
    /// Stalls seen beyond the buffer's capacity.
    pub dropped: u64,
    /// Time observed: spent in spinning and yielding rounds.
    pub observed: Duration,
}

impl StallRecord {
    fn new(epoch: Instant) -> Self {
        Self {
            epoch,
            stalls: Vec::with_capacity(CAPACITY),
            dropped: 0,
            observed: Duration::ZERO,
        }
    }

    fn gap(&mut self, from: Instant, to: Instant) {
        let gap = to.saturating_duration_since(from);
        self.observed += gap;
        if gap < STALL {
            return;
        }
        if self.stalls.len() == self.stalls.capacity() {
            self.dropped += 1;
            return;
        }
        let ns = |at: Instant| at.saturating_duration_since(self.epoch).as_nanos() as u64;
        self.stalls.push((ns(from), ns(to)));
    }
}

/// The floor of a job over `window` (its data window): the delay a record
/// arriving at a random instant of it would see from the union of every
/// record's stalls, in nanoseconds, one sample per [`STEP`] (1 ns for none).
pub fn floor(records: &[StallRecord], window: (Instant, Instant)) -> Histogram<u64> {
    let (start, end) = window;
    let mut intervals: Vec<(Instant, Instant)> = records
        .iter()
        .flat_map(|r| {
            r.stalls.iter().map(|&(a, b)| {
                (
                    r.epoch + Duration::from_nanos(a),
                    r.epoch + Duration::from_nanos(b),
                )
            })
        })
        .filter_map(|(a, b)| {
            let (a, b) = (a.max(start), b.min(end));
            (a < b).then_some((a, b))
        })
        .collect();
    intervals.sort_unstable();
    let mut delays = Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds");
    let step = STEP.as_nanos() as u64;
    let mut stalled = Duration::ZERO;
    let mut current: Option<(Instant, Instant)> = None;
    let mut close = |(a, b): (Instant, Instant), delays: &mut Histogram<u64>| {
        let length = b - a;
        stalled += length;
        let ns = (length.as_nanos() as u64).clamp(1, delays.high());
        // `record_correct` adds `ns`, `ns - step`, ... down to one step:
        // the residual delay at each step of the stall.
        delays.record_correct(ns, step).expect("clamped into range");
    };
    for (a, b) in intervals {
        current = match current {
            Some((ca, cb)) if a <= cb => Some((ca, cb.max(b))),
            Some(done) => {
                close(done, &mut delays);
                Some((a, b))
            }
            None => Some((a, b)),
        };
    }
    if let Some(done) = current {
        close(done, &mut delays);
    }
    let calm = end.saturating_duration_since(start).saturating_sub(stalled);
    delays
        .record_n(1, (calm.as_nanos() / STEP.as_nanos()) as u64)
        .expect("1 ns is in range");
    delays
}

thread_local! {
    // Const-initialised without a destructor: reading it never allocates.
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
    static RECORD: RefCell<Option<StallRecord>> = const { RefCell::new(None) };
}

/// Starts recording the calling thread's stalls, times since `epoch`
/// (allocates the buffer now, before it measures).
pub fn install(epoch: Instant) {
    RECORD.with_borrow_mut(|r| *r = Some(StallRecord::new(epoch)));
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

/// Two clock reads of a waiting round, at `from` and `to`.
#[inline]
pub(super) fn gap(from: Instant, to: Instant) {
    RECORD.with_borrow_mut(|r| {
        if let Some(r) = r {
            r.gap(from, to);
        }
    });
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn record(epoch: Instant, stalls: &[(u64, u64)]) -> StallRecord {
        StallRecord {
            epoch,
            stalls: stalls.iter().map(|&(a, b)| (a * 1000, b * 1000)).collect(),
            dropped: 0,
            observed: Duration::ZERO,
        }
    }

    #[test]
    fn the_floor_is_the_rest_of_the_union_of_every_tasks_stalls() {
        let epoch = Instant::now();
        let us = |n: u64| epoch + Duration::from_micros(n);
        // Two tasks: stalls at 100..130 µs and 120..150 µs overlap into one
        // of 50 µs; another of 25 µs at 500 µs; one outside the window.
        let records = [
            record(epoch, &[(100, 130), (500, 525)]),
            record(epoch, &[(120, 150), (2_000, 2_100)]),
        ];
        let floor = floor(&records, (us(0), us(1_000)));
        // 1000 steps in all: 50 + 25 of stalls, 925 calm.
        assert_eq!(floor.len(), 1_000);
        assert_eq!(floor.value_at_quantile(0.9), 1);
        assert!(floor.equivalent(floor.max(), 50_000), "{}", floor.max());
        let stalled = floor.len() - floor.count_at(1);
        assert_eq!(stalled, 75);
    }

    #[test]
    fn only_an_installed_thread_records_and_short_gaps_are_no_stalls() {
        std::thread::spawn(|| {
            let now = Instant::now();
            gap(now, now + Duration::from_millis(1));
            assert!(uninstall().is_none());
            install(now);
            assert!(active());
            gap(now, now + Duration::from_micros(5));
            gap(now, now + Duration::from_millis(1));
            let r = uninstall().unwrap();
            assert!(!active());
            assert_eq!(r.stalls, [(0, 1_000_000)]);
            assert_eq!(r.observed, Duration::from_micros(1_005));
        })
        .join()
        .unwrap();
    }
}
