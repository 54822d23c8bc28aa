//! The task mailbox and its loop across threads: lanes keep their order,
//! refused mails come back, close loses nothing, mails wake a parked task,
//! cancellation ends it from every state, waits are accounted, and the
//! steady-state loop allocates nothing.
#![cfg(not(loom))]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use taskbench::mailbox::{
    ActionStatus, LoopExit, Mail, MailboxDefaultAction, MailboxError, MailboxMetrics,
    MailboxProcessor, MailboxState, TaskMailbox,
};
use taskbench::metrics::{AllocationCount, CountingAllocator};
use taskbench::sync::{Arc, Parker, WaitStrategy};

#[global_allocator]
static A: CountingAllocator<std::alloc::System> = CountingAllocator(std::alloc::System);

/// Only guards against hangs: a lost wake-up fails the test instead.
const GUARD: Duration = Duration::from_secs(30);

/// Escalates through spinning and yielding to parking quickly.
const WAIT: WaitStrategy = WaitStrategy::SpinPark {
    spins: 16,
    yields: 2,
};

fn mailbox(capacity: usize) -> Arc<TaskMailbox> {
    Arc::new(TaskMailbox::new(capacity, Arc::new(Parker::new())))
}

/// Waits (bounded by [`GUARD`]) until `cond` holds.
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < GUARD, "timed out waiting until {what}");
        thread::sleep(Duration::from_micros(100));
    }
}

/// What a task run reports back to the test thread.
struct Outcome<T> {
    exit: Result<LoopExit, String>,
    action: T,
    metrics: MailboxMetrics,
}

/// Runs `action` in a mailbox loop on its own thread; the receiver gets the
/// outcome.
fn spawn_task<T>(mailbox: Arc<TaskMailbox>, wait: WaitStrategy, mut action: T) -> Task<T>
where
    T: MailboxDefaultAction<Error = String> + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    thread::Builder::new()
        .name("mailbox-task".into())
        .spawn(move || {
            let mut processor = MailboxProcessor::new(mailbox, wait);
            let exit = processor.run_mailbox_loop(&mut action);
            let _ = tx.send(Outcome {
                exit,
                action,
                metrics: processor.metrics(),
            });
        })
        .expect("spawn task thread");
    Task(rx)
}

struct Task<T>(mpsc::Receiver<Outcome<T>>);

impl<T> Task<T> {
    fn outcome(self) -> Outcome<T> {
        self.0
            .recv_timeout(GUARD)
            .expect("the task's loop did not end: lost wake-up or missed cancellation")
    }
}

/// A default action driven by flags other threads set (and then unpark the
/// task, as a producer of input or a recycler of buffers would).
#[derive(Default)]
struct Flags {
    /// Input is there: the action finishes on its next run.
    input: Arc<AtomicBool>,
    /// Output capacity is there (else the action is back-pressured).
    output: Arc<AtomicBool>,
    /// Report input forever (a busy task).
    busy: bool,
    /// A mail `Action { id: 0 }` counts as input.
    mail_is_input: bool,
    /// The idle deadline, if any; passing it counts as input.
    deadline: Option<Instant>,
    mails: Vec<Mail>,
    runs: u64,
    deadlines: u64,
    /// What the action reports as time blocked inside its work.
    hard_ns: u64,
    /// Block this long inside the first run of the default action.
    block_once: Option<Duration>,
}

impl MailboxDefaultAction for Flags {
    type Error = String;

    fn run_default_action(&mut self) -> Result<ActionStatus, String> {
        self.runs += 1;
        if let Some(blocked) = self.block_once.take() {
            // Blocked inside the work, as a writer waiting for a buffer:
            // what it reports is the time it measured, oversleep included.
            let start = Instant::now();
            thread::sleep(blocked);
            self.hard_ns += start.elapsed().as_nanos() as u64;
        }
        Ok(if !self.output.load(Ordering::Acquire) {
            ActionStatus::BackPressured
        } else if self.busy {
            ActionStatus::MoreAvailable
        } else if self.input.load(Ordering::Acquire) {
            ActionStatus::Finished
        } else {
            ActionStatus::NothingAvailable
        })
    }

    fn handle_mail(&mut self, mail: Mail) -> Result<(), String> {
        self.mails.push(mail);
        if self.mail_is_input && mail == (Mail::Action { id: 0 }) {
            self.input.store(true, Ordering::Release);
        }
        Ok(())
    }

    fn is_input_available(&self) -> bool {
        self.input.load(Ordering::Acquire)
    }

    fn is_output_available(&self) -> bool {
        self.output.load(Ordering::Acquire)
    }

    fn hard_back_pressured_ns(&self) -> u64 {
        self.hard_ns
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.deadline
    }

    fn on_deadline(&mut self) -> Result<(), String> {
        self.deadlines += 1;
        self.deadline = None;
        self.input.store(true, Ordering::Release);
        Ok(())
    }
}

fn idle_action() -> Flags {
    let action = Flags::default();
    action.output.store(true, Ordering::Relaxed);
    action
}

// ---------------------------------------------------------------------------
// The mailbox across threads
// ---------------------------------------------------------------------------

#[test]
fn concurrent_producers_keep_fifo_per_lane_and_priority_first() {
    const PER_PRODUCER: u32 = 20_000;
    let mailbox = mailbox(64);
    // Producer 0 writes the priority lane, producers 1 and 2 the default
    // lane; ids carry (producer, sequence).
    let producers: Vec<_> = (0..3u32)
        .map(|producer| {
            let mailbox = mailbox.clone();
            thread::spawn(move || {
                for seq in 0..PER_PRODUCER {
                    let mut mail = Mail::Action {
                        id: producer << 24 | seq,
                    };
                    loop {
                        let put = if producer == 0 {
                            mailbox.put_first(mail)
                        } else {
                            mailbox.put(mail)
                        };
                        match put {
                            Ok(()) => break,
                            Err(MailboxError::Full { mail: back, .. }) => {
                                mail = back;
                                thread::yield_now();
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            })
        })
        .collect();
    let mut next = [0u32; 3];
    let start = Instant::now();
    while next.iter().sum::<u32>() < 3 * PER_PRODUCER {
        assert!(start.elapsed() < GUARD, "mails lost: got {next:?}");
        let seen = mailbox.has_mail();
        let Some(Mail::Action { id }) = mailbox.try_take() else {
            assert!(!seen, "has_mail promised a mail that try_take did not find");
            thread::yield_now();
            continue;
        };
        let (producer, seq) = ((id >> 24) as usize, id & 0xff_ffff);
        assert_eq!(seq, next[producer], "producer {producer} out of order");
        next[producer] += 1;
    }
    producers.into_iter().for_each(|p| p.join().unwrap());
    assert_eq!(mailbox.try_take(), None);

    // With both lanes filled, the priority lane drains first.
    let mailbox = self::mailbox(4);
    for id in 0..4 {
        mailbox.put(Mail::Action { id }).unwrap();
        mailbox.put_first(Mail::Timer { id: id.into() }).unwrap();
    }
    let taken: Vec<_> = std::iter::from_fn(|| mailbox.try_take()).collect();
    let expected: Vec<_> = (0..4)
        .map(|id| Mail::Timer { id })
        .chain((0..4).map(|id| Mail::Action { id }))
        .collect();
    assert_eq!(taken, expected);
}

#[test]
fn a_full_mailbox_hands_the_mail_back_to_every_producer() {
    let mailbox = mailbox(1);
    mailbox.put(Mail::Timer { id: 1 }).unwrap();
    mailbox.put_first(Mail::Cancel).unwrap();
    let refused: Vec<_> = (0..4u32)
        .map(|id| {
            let mailbox = mailbox.clone();
            thread::spawn(move || mailbox.put(Mail::Action { id }).unwrap_err())
        })
        .map(|t| t.join().unwrap())
        .collect();
    for (id, err) in (0..4u32).zip(refused) {
        assert_eq!(
            err,
            MailboxError::Full {
                mail: Mail::Action { id },
                capacity: 1
            }
        );
    }
    assert_eq!(mailbox.len(), 2);
}

#[test]
fn quiesce_refuses_new_mails_but_keeps_queued_ones() {
    let mailbox = mailbox(4);
    mailbox.put(Mail::Timer { id: 1 }).unwrap();
    mailbox.quiesce();
    let err = mailbox.put(Mail::Timer { id: 2 }).unwrap_err();
    assert_eq!(
        err,
        MailboxError::Closed {
            mail: Mail::Timer { id: 2 },
            state: MailboxState::Quiesced
        }
    );
    assert_eq!(err.into_mail(), Mail::Timer { id: 2 });
    assert_eq!(mailbox.try_take(), Some(Mail::Timer { id: 1 }));
    assert_eq!(mailbox.state(), MailboxState::Quiesced);
}

#[test]
fn close_racing_producers_neither_loses_nor_strands_a_mail() {
    for round in 0..200u32 {
        let mailbox = mailbox(8);
        let producers: Vec<_> = (0..2)
            .map(|producer| {
                let mailbox = mailbox.clone();
                thread::spawn(move || {
                    (0..8)
                        .filter(|&i| {
                            mailbox
                                .put(Mail::Action {
                                    id: producer * 8 + i,
                                })
                                .is_ok()
                        })
                        .count()
                })
            })
            .collect();
        if round % 2 == 0 {
            thread::yield_now();
        }
        let taken = usize::from(mailbox.try_take().is_some());
        let dropped = mailbox.close().count();
        let delivered: usize = producers.into_iter().map(|p| p.join().unwrap()).sum();
        assert_eq!(taken + dropped, delivered, "round {round}");
        assert!(!mailbox.has_mail());
        assert_eq!(
            mailbox.put(Mail::Cancel),
            Err(MailboxError::Closed {
                mail: Mail::Cancel,
                state: MailboxState::Closed
            })
        );
    }
}

// ---------------------------------------------------------------------------
// The loop across threads
// ---------------------------------------------------------------------------

#[test]
fn a_mail_from_another_thread_wakes_a_parked_task() {
    let mailbox = mailbox(4);
    let parker = mailbox.owner().clone();
    let mut action = idle_action();
    action.mail_is_input = true;
    let task = spawn_task(mailbox.clone(), WAIT, action);
    eventually("the task parks", || parker.is_parked());
    thread::spawn(move || mailbox.put(Mail::Action { id: 0 }).unwrap())
        .join()
        .unwrap();
    let outcome = task.outcome();
    assert_eq!(outcome.exit, Ok(LoopExit::Finished));
    assert_eq!(outcome.action.mails, [Mail::Action { id: 0 }]);
    assert_eq!(outcome.metrics.mails_processed, 1);
    // One wait, ended by the mail: the action ran once before it and once
    // after (a spurious wake-up re-checks inside the wait, not here). The
    // park count is not asserted: a mail that lands between the task
    // publishing "parked" and its re-check ends the wait without a sleep.
    assert_eq!(outcome.metrics.iterations, 2);
    assert!(outcome.metrics.idle_ns > 0, "the task was seen parked");
    assert_eq!(outcome.metrics.back_pressured_ns, 0);
}

#[test]
fn input_published_then_unparked_wakes_a_parked_task() {
    let mailbox = mailbox(4);
    let parker = mailbox.owner().clone();
    let action = idle_action();
    let input = action.input.clone();
    let task = spawn_task(mailbox, WAIT, action);
    eventually("the task parks", || parker.is_parked());
    input.store(true, Ordering::Release);
    parker.unpark();
    let outcome = task.outcome();
    assert_eq!(outcome.exit, Ok(LoopExit::Finished));
    assert!(outcome.action.mails.is_empty());
}

#[test]
fn cancel_ends_the_loop_from_every_state() {
    #[derive(Debug, Clone, Copy)]
    enum How {
        CancelMail,
        Interrupt,
        MailboxCancel,
    }
    #[derive(Debug, Clone, Copy)]
    enum Where {
        Parked,
        BackPressured,
        Busy,
    }
    let cases = [
        (How::CancelMail, Where::Parked),
        (How::CancelMail, Where::BackPressured),
        (How::CancelMail, Where::Busy),
        (How::Interrupt, Where::Parked),
        (How::Interrupt, Where::BackPressured),
        (How::MailboxCancel, Where::Parked),
        (How::MailboxCancel, Where::Busy),
    ];
    for (how, place) in cases {
        let mailbox = mailbox(4);
        let parker = mailbox.owner().clone();
        let mut action = idle_action();
        match place {
            Where::Parked => {}
            Where::BackPressured => action.output.store(false, Ordering::Relaxed),
            Where::Busy => action.busy = true,
        }
        let task = spawn_task(mailbox.clone(), WAIT, action);
        match place {
            Where::Parked | Where::BackPressured => {
                eventually("the task parks", || parker.is_parked())
            }
            Where::Busy => thread::sleep(Duration::from_millis(1)),
        }
        match how {
            How::CancelMail => mailbox.put_first(Mail::Cancel).unwrap(),
            How::Interrupt => parker.interrupt(),
            How::MailboxCancel => mailbox.cancel(),
        }
        let outcome = task.outcome();
        assert_eq!(outcome.exit, Ok(LoopExit::Canceled), "{how:?} {place:?}");
        assert!(outcome.action.mails.is_empty(), "Cancel is not handed on");
    }
}

#[test]
fn back_pressured_waits_are_counted_apart_from_idle_ones() {
    let mailbox = mailbox(4);
    let parker = mailbox.owner().clone();
    let action = Flags::default();
    action.input.store(true, Ordering::Relaxed);
    let output = action.output.clone();
    let task = spawn_task(mailbox, WAIT, action);
    // The other side frees a buffer only once the task waits for one.
    eventually("the back-pressured task parks", || parker.is_parked());
    output.store(true, Ordering::Release);
    parker.unpark();
    let outcome = task.outcome();
    assert_eq!(outcome.exit, Ok(LoopExit::Finished));
    let m = outcome.metrics;
    assert!(m.soft_back_pressured_ns > 0);
    assert_eq!(m.hard_back_pressured_ns, 0);
    assert_eq!(m.back_pressured_ns, m.soft_back_pressured_ns);
    assert_eq!(m.idle_ns, 0);
}

#[test]
fn time_blocked_inside_the_action_is_hard_back_pressure_not_busy() {
    let mailbox = mailbox(4);
    let mut action = Flags::default();
    action.output.store(true, Ordering::Relaxed);
    action.input.store(true, Ordering::Relaxed);
    // Blocked time from before the loop is not the loop's.
    action.hard_ns = 7_000_000;
    action.block_once = Some(Duration::from_millis(30));
    let spawned = Instant::now();
    let task = spawn_task(mailbox, WAIT, action);
    let outcome = task.outcome();
    // Outlasts the loop: it also spans the thread's start and the handover.
    let wall = spawned.elapsed().as_nanos() as u64;
    assert_eq!(outcome.exit, Ok(LoopExit::Finished));
    let blocked = outcome.action.hard_ns - 7_000_000;
    assert!(blocked >= 30_000_000, "{blocked} ns blocked");
    let m = outcome.metrics;
    assert_eq!(m.hard_back_pressured_ns, blocked);
    assert_eq!(m.back_pressured_ns, blocked);
    assert_eq!(m.soft_back_pressured_ns, 0);
    // Busy time is the loop's time minus the blocked time: counted as busy
    // as well, the blocked time would make the two outlast the run.
    assert!(
        m.busy_ns + blocked <= wall,
        "the blocked {blocked} ns are not busy: {} ns busy in {wall} ns",
        m.busy_ns
    );
}

#[test]
fn an_idle_deadline_ends_the_wait_without_any_wake_up() {
    let mut action = idle_action();
    action.deadline = Some(Instant::now() + Duration::from_millis(5));
    let task = spawn_task(mailbox(4), WAIT, action);
    let outcome = task.outcome();
    assert_eq!(outcome.exit, Ok(LoopExit::Finished));
    assert_eq!(outcome.action.deadlines, 1);
}

#[test]
fn mail_errors_end_the_loop_with_the_error() {
    struct Failing;
    impl MailboxDefaultAction for Failing {
        type Error = String;
        fn run_default_action(&mut self) -> Result<ActionStatus, String> {
            Ok(ActionStatus::NothingAvailable)
        }
        fn handle_mail(&mut self, mail: Mail) -> Result<(), String> {
            Err(format!("cannot handle {mail:?}"))
        }
        fn is_input_available(&self) -> bool {
            false
        }
        fn is_output_available(&self) -> bool {
            true
        }
    }
    let mailbox = mailbox(4);
    let parker = mailbox.owner().clone();
    let task = spawn_task(mailbox.clone(), WAIT, Failing);
    eventually("the task parks", || parker.is_parked());
    mailbox.put(Mail::Timer { id: 9 }).unwrap();
    assert_eq!(
        task.outcome().exit,
        Err("cannot handle Timer { id: 9 }".to_string())
    );
}

// ---------------------------------------------------------------------------
// No allocation in steady state
// ---------------------------------------------------------------------------

/// Consumes units of input another thread publishes, and finishes once it
/// has seen `units` units and `mails` mails.
struct Counting {
    available: Arc<AtomicU64>,
    consumed: u64,
    units: u64,
    mails: u64,
    mails_seen: u64,
}

impl MailboxDefaultAction for Counting {
    type Error = String;

    #[inline]
    fn run_default_action(&mut self) -> Result<ActionStatus, String> {
        if self.consumed < self.available.load(Ordering::Acquire) {
            self.consumed += 1;
            Ok(ActionStatus::MoreAvailable)
        } else if self.consumed == self.units && self.mails_seen == self.mails {
            Ok(ActionStatus::Finished)
        } else {
            Ok(ActionStatus::NothingAvailable)
        }
    }

    fn handle_mail(&mut self, mail: Mail) -> Result<(), String> {
        match mail {
            Mail::Action { id } if u64::from(id) == self.mails_seen => {
                self.mails_seen += 1;
                Ok(())
            }
            other => Err(format!("unexpected {other:?} after {}", self.mails_seen)),
        }
    }

    fn is_input_available(&self) -> bool {
        self.consumed < self.available.load(Ordering::Acquire)
    }

    fn is_output_available(&self) -> bool {
        true
    }
}

/// Publishes units `from + 1 ..= from + units` of input (unparking the
/// task each time, as a channel producer does) and a mail every `mail_every`
/// units; pauses now and then so the task also idles and parks.
fn feed(mailbox: &TaskMailbox, available: &AtomicU64, from: u64, units: u64, mail_every: u64) {
    let mut mails = 0u32;
    for unit in 1..=units {
        available.store(from + unit, Ordering::Release);
        mailbox.owner().unpark();
        if unit % mail_every == 0 {
            let mut mail = Mail::Action { id: mails };
            while let Err(e) = mailbox.put(mail) {
                mail = e.into_mail();
                thread::yield_now();
            }
            mails += 1;
        }
        if unit % 20_000 == 0 {
            thread::sleep(Duration::from_millis(1));
        }
    }
}

#[test]
fn the_steady_state_loop_does_not_allocate() {
    const WARM_UP: u64 = 1_000;
    const UNITS: u64 = 100_000;
    const MAIL_EVERY: u64 = 64;
    // The counter counts (so a zero below means something).
    let probe = AllocationCount::thread_now();
    std::hint::black_box(vec![0u8; 16]);
    assert_eq!(AllocationCount::thread_now().since(probe).allocations, 1);

    let mailbox = mailbox(16);
    let available = Arc::new(AtomicU64::new(0));
    let (tx, rx) = mpsc::channel();
    let task = {
        let (mailbox, available) = (mailbox.clone(), available.clone());
        thread::spawn(move || {
            let mut processor = MailboxProcessor::new(mailbox, WAIT);
            for (from, units) in [(0, WARM_UP), (WARM_UP, UNITS)] {
                let mut action = Counting {
                    available: available.clone(),
                    consumed: from,
                    units: from + units,
                    mails: units / MAIL_EVERY,
                    mails_seen: 0,
                };
                let before = AllocationCount::thread_now();
                let exit = processor.run_mailbox_loop(&mut action);
                let allocated = AllocationCount::thread_now().since(before);
                tx.send((exit, allocated, processor.metrics())).unwrap();
            }
        })
    };
    // The warm-up round registers the task thread with its parker; only
    // once it is over does the next round's feeding (and its mails) start.
    for (from, units) in [(0, WARM_UP), (WARM_UP, UNITS)] {
        let feeder = {
            let (mailbox, available) = (mailbox.clone(), available.clone());
            thread::spawn(move || feed(&mailbox, &available, from, units, MAIL_EVERY))
        };
        let (exit, allocated, metrics) = rx.recv_timeout(GUARD).expect("the task's loop hung");
        feeder.join().unwrap();
        assert_eq!(exit, Ok(LoopExit::Finished));
        if from > 0 {
            assert_eq!(
                allocated,
                AllocationCount::default(),
                "the task thread allocated in its steady-state loop"
            );
            assert!(metrics.iterations >= WARM_UP + UNITS);
            assert_eq!(
                metrics.mails_processed,
                WARM_UP / MAIL_EVERY + UNITS / MAIL_EVERY
            );
        }
    }
    task.join().unwrap();
}
