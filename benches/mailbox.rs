//! Cost of the task's mailbox loop (`taskbench::mailbox`).
//!
//! * `mailbox_loop_iteration`: a default action that counts down `n` turns
//!   and then finishes, run by `MailboxProcessor::run_mailbox_loop` with no
//!   mail queued, next to `harness_only`, the same action in a plain `loop`.
//!   The difference is what the loop adds per iteration: the `has_mail`
//!   load, the status match, the iteration counter. DESIGN.md §5 budgets it
//!   at ≤ 5 ns.
//! * `mailbox_mail_round_trip`: the bench thread puts `Mail::Action { id }`
//!   into a task's mailbox; the task thread, idle in its loop, handles it
//!   and echoes `id` through an atomic the bench thread spins on. Measured
//!   with the task waiting by busy-spin and by the default spin-then-park
//!   strategy (where each mail pays an unpark). The two threads are pinned
//!   to different cores when there are two.

use std::convert::Infallible;
use std::hint::spin_loop;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use core_affinity::CoreId;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use taskbench::mailbox::{
    ActionStatus, LoopExit, Mail, MailboxDefaultAction, MailboxMetrics, MailboxProcessor,
    TaskMailbox,
};
use taskbench::sync::{Arc, CachePadded, Parker, WaitStrategy};

/// Turns / round trips in the check runs before any timing.
const CHECK: u64 = 100_000;

// ---------------------------------------------------------------------------
// One loop iteration without mail
// ---------------------------------------------------------------------------

/// Counts down `remaining` turns, then finishes. `black_box` keeps the
/// compiler from folding the count into one subtraction in either contender.
struct CountDown {
    remaining: u64,
}

impl MailboxDefaultAction for CountDown {
    type Error = Infallible;

    #[inline]
    fn run_default_action(&mut self) -> Result<ActionStatus, Infallible> {
        if self.remaining == 0 {
            return Ok(ActionStatus::Finished);
        }
        self.remaining = black_box(self.remaining - 1);
        Ok(ActionStatus::MoreAvailable)
    }

    fn handle_mail(&mut self, mail: Mail) -> Result<(), Infallible> {
        panic!("no mail is sent in this bench, got {mail:?}");
    }

    fn is_input_available(&self) -> bool {
        true
    }

    fn is_output_available(&self) -> bool {
        true
    }
}

/// The same action in a plain loop: what the mailbox loop is compared with.
#[inline(never)]
fn harness_only(turns: u64) -> Duration {
    let mut action = CountDown { remaining: turns };
    let start = Instant::now();
    loop {
        match action.run_default_action() {
            Ok(ActionStatus::Finished) => break,
            Ok(_) => {}
            Err(never) => match never {},
        }
    }
    let elapsed = start.elapsed();
    assert_eq!(action.remaining, 0);
    elapsed
}

#[inline(never)]
fn mailbox_loop(processor: &mut MailboxProcessor, turns: u64) -> Duration {
    let mut action = CountDown { remaining: turns };
    let start = Instant::now();
    let exit = processor.run_mailbox_loop(&mut action);
    let elapsed = start.elapsed();
    assert_eq!(exit, Ok(LoopExit::Finished));
    assert_eq!(action.remaining, 0);
    elapsed
}

fn new_processor(wait: WaitStrategy) -> MailboxProcessor {
    let mailbox = Arc::new(TaskMailbox::new(64, Arc::new(Parker::new())));
    MailboxProcessor::new(mailbox, wait)
}

fn loop_iteration(c: &mut Criterion) {
    // Check: every turn runs, the loop counts them (plus the finishing
    // one), and it never waits.
    harness_only(CHECK);
    let mut processor = new_processor(WaitStrategy::default());
    mailbox_loop(&mut processor, CHECK);
    let MailboxMetrics {
        iterations,
        idle_ns,
        back_pressured_ns,
        mails_processed,
        ..
    } = processor.metrics();
    assert_eq!(iterations, CHECK + 1);
    assert_eq!((idle_ns, back_pressured_ns, mails_processed), (0, 0, 0));

    let mut group = c.benchmark_group("mailbox_loop_iteration");
    group.throughput(Throughput::Elements(1));
    group.bench_function("harness_only", |b| b.iter_custom(harness_only));
    group.bench_function("mailbox_loop", |b| {
        b.iter_custom(|turns| mailbox_loop(&mut processor, turns))
    });
    group.finish();
}

// ---------------------------------------------------------------------------
// A mail's round trip between two threads
// ---------------------------------------------------------------------------

/// Idles; answers every `Action { id }` mail by publishing `id`.
struct Echo {
    answer: Arc<CachePadded<AtomicU64>>,
}

impl MailboxDefaultAction for Echo {
    type Error = String;

    fn run_default_action(&mut self) -> Result<ActionStatus, String> {
        Ok(ActionStatus::NothingAvailable)
    }

    #[inline]
    fn handle_mail(&mut self, mail: Mail) -> Result<(), String> {
        match mail {
            Mail::Action { id } => {
                // Release: pairs with the Acquire load in `Echoing::round_trips`.
                self.answer.store(u64::from(id), Ordering::Release);
                Ok(())
            }
            other => Err(format!("unexpected {other:?}")),
        }
    }

    fn is_input_available(&self) -> bool {
        false
    }

    fn is_output_available(&self) -> bool {
        true
    }
}

/// A task thread running an [`Echo`] loop until it is sent `Mail::Cancel`.
struct Echoing {
    mailbox: Arc<TaskMailbox>,
    answer: Arc<CachePadded<AtomicU64>>,
    next_id: u32,
    task: Option<JoinHandle<(Result<LoopExit, String>, MailboxMetrics)>>,
}

impl Echoing {
    fn spawn(wait: WaitStrategy, core: Option<CoreId>) -> Self {
        let mailbox = Arc::new(TaskMailbox::new(16, Arc::new(Parker::new())));
        // No `Action` id equals this, so the first wait cannot pass early.
        let answer = Arc::new(CachePadded::new(AtomicU64::new(u64::MAX)));
        let task = {
            let (mailbox, answer) = (mailbox.clone(), answer.clone());
            std::thread::Builder::new()
                .name("mailbox-echo".into())
                .spawn(move || {
                    if let Some(core) = core {
                        core_affinity::set_for_current(core);
                    }
                    let mut processor = MailboxProcessor::new(mailbox, wait);
                    let exit = processor.run_mailbox_loop(&mut Echo { answer });
                    (exit, processor.metrics())
                })
                .expect("spawn task thread")
        };
        Self {
            mailbox,
            answer,
            next_id: 0,
            task: Some(task),
        }
    }

    /// Sends `n` mails one after the other, each once the previous one was
    /// answered, and returns the time taken.
    fn round_trips(&mut self, n: u64) -> Duration {
        let start = Instant::now();
        for _ in 0..n {
            let id = self.next_id;
            self.next_id = id.wrapping_add(1);
            self.mailbox
                .put(Mail::Action { id })
                .expect("one mail in flight fits");
            // Acquire: pairs with the Release store in `Echo::handle_mail`.
            while self.answer.load(Ordering::Acquire) != u64::from(id) {
                spin_loop();
            }
        }
        start.elapsed()
    }

    /// Cancels the task and returns how its loop ended.
    fn stop(mut self) -> (Result<LoopExit, String>, MailboxMetrics) {
        self.mailbox.put_first(Mail::Cancel).expect("task alive");
        let task = self.task.take().expect("task running");
        task.join().expect("task thread panicked")
    }
}

impl Drop for Echoing {
    fn drop(&mut self) {
        if self.task.is_some() {
            self.mailbox.cancel();
        }
    }
}

/// Two distinct cores (bench thread, task thread), read once, when there
/// are two.
fn core_pair() -> Option<(CoreId, CoreId)> {
    match core_affinity::get_core_ids()?.as_slice() {
        [bench, task, ..] => Some((*bench, *task)),
        _ => None,
    }
}

fn mail_round_trip(c: &mut Criterion) {
    let task_core = core_pair().map(|(bench, task)| {
        core_affinity::set_for_current(bench);
        task
    });
    if task_core.is_none() {
        eprintln!("mailbox_mail_round_trip: fewer than two cores, threads are not pinned");
    }
    let strategies = [
        ("busy_spin", WaitStrategy::BusySpin),
        ("spin_park", WaitStrategy::default()),
    ];

    let mut group = c.benchmark_group("mailbox_mail_round_trip");
    group.throughput(Throughput::Elements(1));
    for (name, wait) in strategies {
        // Check: every mail is answered (in order, by construction), the
        // task counts them, and a cancel ends its loop.
        let mut check = Echoing::spawn(wait, task_core);
        check.round_trips(CHECK / 10);
        let (exit, metrics) = check.stop();
        assert_eq!(exit, Ok(LoopExit::Canceled), "{name}");
        assert_eq!(metrics.mails_processed, CHECK / 10 + 1, "{name}");

        let mut echoing = Echoing::spawn(wait, task_core);
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|n| echoing.round_trips(n))
        });
        assert_eq!(echoing.stop().0, Ok(LoopExit::Canceled));
    }
    group.finish();
}

criterion_group!(benches, loop_iteration, mail_round_trip);
criterion_main!(benches);
