//! A per-thread timeline recorder: where each task thread's time went
//! (busy, idle, soft and hard back-pressure, parks, wake-ups), buffers in
//! use, and flows from a flush to the read that consumed it.
//!
//! Events go into a buffer allocated when the thread is set up
//! ([`install`]), before it measures; a full buffer drops further events
//! and counts them, so recording never allocates. A thread without a
//! recorder pays one thread-local load per call site ([`enabled`]). The
//! buffers are collected with [`uninstall`] and written as Chrome
//! trace-event JSON after the run (`bench::trace_file`).

use std::cell::{Cell, RefCell};
use std::time::Instant;

/// What a slice on a task's track is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Running mails and the default action.
    Busy,
    /// Waiting for input or mail (Flink's idle time).
    Idle,
    /// Not starting a turn because the outputs have no capacity (Flink's
    /// soft back-pressure).
    SoftBackPressure,
    /// Blocked inside an emit waiting for a segment or credit (Flink's hard
    /// back-pressure).
    HardBackPressure,
    /// Asleep in the kernel (a park), nested in a wait.
    Park,
    /// Waking a parked task (the unpark system call), on the waker's track.
    WakeUp,
}

impl Kind {
    /// The slice's name in the trace.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Busy => "busy",
            Kind::Idle => "idle",
            Kind::SoftBackPressure => "soft back-pressure",
            Kind::HardBackPressure => "hard back-pressure",
            Kind::Park => "park",
            Kind::WakeUp => "wake-up",
        }
    }
}

/// A counter track.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Counter {
    /// Segments of the task's output pool in use after a request.
    BuffersInUse,
}

impl Counter {
    /// The counter's name in the trace.
    pub fn name(self) -> &'static str {
        match self {
            Counter::BuffersInUse => "buffers in use",
        }
    }
}

/// One recorded event; times in nanoseconds since the recorder's epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A slice of the thread's time.
    Slice {
        /// What it was.
        kind: Kind,
        /// Its start.
        start: u64,
        /// Its length.
        duration: u64,
    },
    /// A counter's new value.
    Counter {
        /// Which counter.
        counter: Counter,
        /// When.
        at: u64,
        /// The value.
        value: u64,
    },
    /// Bytes became readable (a flush); the flow's id names them.
    FlowStart {
        /// Flow id, matched by the read's [`Event::FlowEnd`].
        id: u64,
        /// When.
        at: u64,
    },
    /// A read consumed bytes a [`Event::FlowStart`] published.
    FlowEnd {
        /// Flow id.
        id: u64,
        /// When.
        at: u64,
    },
}

/// A thread's recorded timeline.
#[derive(Clone, Debug)]
pub struct ThreadTrace {
    /// The thread's (task's) name.
    pub name: String,
    /// The time origin of the events.
    pub epoch: Instant,
    /// Events in the order recorded (slices end in order; a nested slice
    /// ends before the one around it).
    pub events: Vec<Event>,
    /// Events that did not fit.
    pub dropped: u64,
}

/// Bytes of a segment per sampled flow: a flush whose published position
/// crosses a multiple of this starts a flow, and the read whose slice
/// crosses the same multiple ends it. Both sides see the same crossings
/// without telling each other anything.
pub const FLOW_BYTES: usize = 4096;

thread_local! {
    // Const-initialised without a destructor: reading it never allocates,
    // so threads without a recorder pay one load.
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
    static RECORDER: RefCell<Option<ThreadTrace>> = const { RefCell::new(None) };
}

/// Whether the calling thread records a timeline.
#[inline(always)]
pub fn enabled() -> bool {
    ACTIVE.with(Cell::get)
}

/// Starts recording on the calling thread into a buffer of `capacity`
/// events allocated now, times relative to `epoch`.
pub fn install(name: impl Into<String>, capacity: usize, epoch: Instant) {
    RECORDER.with_borrow_mut(|r| {
        *r = Some(ThreadTrace {
            name: name.into(),
            epoch,
            events: Vec::with_capacity(capacity),
            dropped: 0,
        })
    });
    ACTIVE.with(|a| a.set(true));
}

/// Stops recording on the calling thread and returns what was recorded.
pub fn uninstall() -> Option<ThreadTrace> {
    ACTIVE.with(|a| a.set(false));
    RECORDER.with_borrow_mut(Option::take)
}

#[cold]
fn record(event: impl FnOnce(Instant) -> Event) {
    RECORDER.with_borrow_mut(|r| {
        if let Some(r) = r {
            if r.events.len() < r.events.capacity() {
                let event = event(r.epoch);
                r.events.push(event);
            } else {
                r.dropped += 1;
            }
        }
    });
}

fn since(epoch: Instant, at: Instant) -> u64 {
    at.saturating_duration_since(epoch).as_nanos() as u64
}

/// Records a slice that ran from `start` to `end`.
#[inline]
pub fn slice(kind: Kind, start: Instant, end: Instant) {
    if enabled() {
        record(|epoch| Event::Slice {
            kind,
            start: since(epoch, start),
            duration: end.saturating_duration_since(start).as_nanos() as u64,
        });
    }
}

/// A slice being timed: [`Span::start`] reads the clock only when the
/// thread records, [`Span::end`] records it.
#[derive(Debug)]
#[must_use = "a span records nothing until it ends"]
pub struct Span(Option<(Kind, Instant)>);

impl Span {
    /// Starts timing a slice of `kind`.
    #[inline]
    pub fn start(kind: Kind) -> Span {
        Span(enabled().then(|| (kind, Instant::now())))
    }

    /// Ends the slice now and records it.
    #[inline]
    pub fn end(self) {
        if let Some((kind, start)) = self.0 {
            slice(kind, start, Instant::now());
        }
    }
}

/// Records a counter's new value.
#[inline]
pub fn counter(counter: Counter, value: u64) {
    if enabled() {
        let at = Instant::now();
        record(|epoch| Event::Counter {
            counter,
            at: since(epoch, at),
            value,
        });
    }
}

/// The flow id of the `FLOW_BYTES` boundary `bucket` of one life of a
/// segment.
fn flow_id(segment: u32, generation: u32, bucket: usize) -> u64 {
    (u64::from(generation) << 40) | (u64::from(segment) << 8) | (bucket as u64 & 0xff)
}

/// The `FLOW_BYTES` boundaries in `(from, to]`.
fn crossings(from: usize, to: usize) -> std::ops::RangeInclusive<usize> {
    (from / FLOW_BYTES + 1)..=(to / FLOW_BYTES)
}

/// A writer published bytes `from..to` of a segment: starts the flows of
/// the boundaries it crossed.
#[inline]
pub fn flush(segment: u32, generation: u32, from: usize, to: usize) {
    if enabled() {
        flows(segment, generation, from, to, |id, at| Event::FlowStart {
            id,
            at,
        });
    }
}

/// A reader sliced bytes `from..to` of a segment: ends the flows of the
/// boundaries it crossed.
#[inline]
pub fn consume(segment: u32, generation: u32, from: usize, to: usize) {
    if enabled() {
        flows(segment, generation, from, to, |id, at| Event::FlowEnd {
            id,
            at,
        });
    }
}

#[cold]
fn flows(segment: u32, generation: u32, from: usize, to: usize, event: impl Fn(u64, u64) -> Event) {
    let buckets = crossings(from, to);
    if buckets.is_empty() {
        return;
    }
    let at = Instant::now();
    for bucket in buckets {
        record(|epoch| event(flow_id(segment, generation, bucket), since(epoch, at)));
    }
}

/// Runs `unpark` (a wake of another thread); when the thread records and
/// `unpark` reports a system call, records it as a wake-up slice.
#[inline]
pub fn wake_up(unpark: impl FnOnce() -> bool) {
    if !enabled() {
        unpark();
        return;
    }
    let start = Instant::now();
    if unpark() {
        slice(Kind::WakeUp, start, Instant::now());
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_recorded_without_a_recorder() {
        std::thread::spawn(|| {
            assert!(!enabled());
            Span::start(Kind::Busy).end();
            counter(Counter::BuffersInUse, 3);
            assert!(uninstall().is_none());
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_full_recorder_drops_and_counts() {
        std::thread::spawn(|| {
            let epoch = Instant::now();
            install("t", 2, epoch);
            assert!(enabled());
            let span = Span::start(Kind::Idle);
            Span::start(Kind::Park).end();
            span.end();
            counter(Counter::BuffersInUse, 1);
            let trace = uninstall().unwrap();
            assert!(!enabled());
            assert_eq!(trace.events.len(), 2);
            assert_eq!(trace.dropped, 1);
            // The nested park ended first.
            assert!(matches!(
                trace.events[0],
                Event::Slice {
                    kind: Kind::Park,
                    ..
                }
            ));
            let (
                Event::Slice {
                    start: a,
                    duration: da,
                    ..
                },
                Event::Slice {
                    start: b,
                    duration: db,
                    ..
                },
            ) = (trace.events[0], trace.events[1])
            else {
                panic!("two slices");
            };
            assert!(
                b <= a && a + da <= b + db,
                "the park nests in the idle slice"
            );
        })
        .join()
        .unwrap();
    }

    #[test]
    fn writer_and_reader_see_the_same_flow_ids() {
        std::thread::spawn(|| {
            install("w", 64, Instant::now());
            // Flushes at 100, 5000, 9000 and 12288 bytes: boundaries 4096,
            // 8192 and 12288 are crossed by the 2nd, 3rd and 4th.
            for (from, to) in [(0, 100), (100, 5000), (5000, 9000), (9000, 12288)] {
                flush(7, 3, from, to);
            }
            // The reader took [0, 9000) then [9000, 12288).
            consume(7, 3, 0, 9000);
            consume(7, 3, 9000, 12288);
            let events = uninstall().unwrap().events;
            let starts: Vec<u64> = events
                .iter()
                .filter_map(|e| match e {
                    Event::FlowStart { id, .. } => Some(*id),
                    _ => None,
                })
                .collect();
            let ends: Vec<u64> = events
                .iter()
                .filter_map(|e| match e {
                    Event::FlowEnd { id, .. } => Some(*id),
                    _ => None,
                })
                .collect();
            assert_eq!(starts.len(), 3);
            assert_eq!(starts, ends);
            assert_ne!(
                flow_id(7, 3, 1),
                flow_id(7, 4, 1),
                "another life of the segment"
            );
        })
        .join()
        .unwrap();
    }
}
