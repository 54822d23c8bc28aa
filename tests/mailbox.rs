//! The mailbox loop: mails from other threads wake a parked task, `Cancel`
//! and interrupts end it, waits are accounted, and the steady-state loop
//! allocates nothing.
#![cfg(not(loom))]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use taskbench::mailbox::{
    ActionStatus, LoopExit, Mail, MailboxDefaultAction, MailboxProcessor, TaskMailbox,
};
use taskbench::metrics::{AllocationCount, CountingAllocator};
use taskbench::sync::{Arc, Parker, WaitStrategy};

#[global_allocator]
static ALLOC: CountingAllocator<std::alloc::System> = CountingAllocator(std::alloc::System);

/// Guards against hangs only.
const GUARD: Duration = Duration::from_secs(20);

/// Works `budget` turns, then idles until a `Action { id: 0 }` mail says
/// it is done; counts what it saw.
#[derive(Default)]
struct Counting {
    budget: u64,
    turns: u64,
    actions: u64,
    done: bool,
    input: Arc<AtomicBool>,
    output_blocked: Arc<AtomicBool>,
    deadline: Option<Instant>,
    deadlines_hit: u64,
}

impl MailboxDefaultAction for Counting {
    type Error = String;

    fn run_default_action(&mut self) -> Result<ActionStatus, String> {
        if self.done {
            return Ok(ActionStatus::Finished);
        }
        if self.output_blocked.load(Ordering::Acquire) {
            return Ok(ActionStatus::BackPressured);
        }
        if self.turns < self.budget || self.input.swap(false, Ordering::AcqRel) {
            self.turns += 1;
            return Ok(ActionStatus::MoreAvailable);
        }
        Ok(ActionStatus::NothingAvailable)
    }

    fn handle_mail(&mut self, mail: Mail) -> Result<(), String> {
        match mail {
            Mail::Action { id: 0 } => self.done = true,
            Mail::Action { id: 13 } => return Err("mail 13 is unlucky".into()),
            _ => self.actions += 1,
        }
        Ok(())
    }

    fn is_input_available(&self) -> bool {
        self.input.load(Ordering::Acquire)
    }

    fn is_output_available(&self) -> bool {
        !self.output_blocked.load(Ordering::Acquire)
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.deadline
    }

    fn on_deadline(&mut self) -> Result<(), String> {
        self.deadlines_hit += 1;
        self.deadline = None;
        Ok(())
    }
}

fn new_processor(wait: WaitStrategy) -> (MailboxProcessor, Arc<TaskMailbox>) {
    let mailbox = Arc::new(TaskMailbox::new(64, Arc::new(Parker::new())));
    (MailboxProcessor::new(mailbox.clone(), wait), mailbox)
}

/// How a loop on its own thread ended, what the action saw, and the processor.
type Ended = (Result<LoopExit, String>, Counting, MailboxProcessor);

/// Runs the loop on its own thread; returns how it ended and the action.
fn spawn(
    mut processor: MailboxProcessor,
    mut action: Counting,
) -> (mpsc::Receiver<Ended>, std::thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        let exit = processor.run_mailbox_loop(&mut action);
        tx.send((exit, action, processor)).unwrap();
    });
    (rx, handle)
}

#[test]
fn a_mail_from_another_thread_wakes_a_parked_task() {
    for wait in [
        WaitStrategy::SpinPark {
            spins: 0,
            yields: 0,
        },
        WaitStrategy::default(),
        WaitStrategy::BusySpin,
    ] {
        let (processor, mailbox) = new_processor(wait);
        let (rx, handle) = spawn(processor, Counting::default());
        std::thread::sleep(Duration::from_millis(5));
        mailbox.put(Mail::Action { id: 7 }).unwrap();
        mailbox.put(Mail::Action { id: 0 }).unwrap();
        let (exit, action, processor) = rx.recv_timeout(GUARD).expect("the mail woke the task");
        handle.join().unwrap();
        assert_eq!(exit, Ok(LoopExit::Finished), "{wait:?}");
        assert_eq!(action.actions, 1);
        assert_eq!(processor.metrics().mails, 2);
        assert!(
            processor.metrics().idle_ns > 0,
            "{wait:?}: the idle wait was accounted"
        );
    }
}

#[test]
fn cancel_mail_and_interrupt_end_the_loop_as_canceled() {
    let (processor, mailbox) = new_processor(WaitStrategy::default());
    let (rx, handle) = spawn(processor, Counting::default());
    mailbox.put_first(Mail::Cancel).unwrap();
    let (exit, ..) = rx.recv_timeout(GUARD).expect("cancel ends the loop");
    handle.join().unwrap();
    assert_eq!(exit, Ok(LoopExit::Canceled));

    let (processor, mailbox) = new_processor(WaitStrategy::SpinPark {
        spins: 0,
        yields: 0,
    });
    let (rx, handle) = spawn(processor, Counting::default());
    while !mailbox.owner().is_parked() {
        std::thread::yield_now();
    }
    mailbox.owner().interrupt();
    let (exit, ..) = rx
        .recv_timeout(GUARD)
        .expect("interrupt ends a parked loop");
    handle.join().unwrap();
    assert_eq!(exit, Ok(LoopExit::Canceled));
}

#[test]
fn a_failing_mail_ends_the_loop_with_its_error() {
    let (mut processor, mailbox) = new_processor(WaitStrategy::default());
    mailbox.put(Mail::Action { id: 13 }).unwrap();
    let mut action = Counting {
        budget: 10,
        ..Counting::default()
    };
    assert_eq!(
        processor.run_mailbox_loop(&mut action),
        Err("mail 13 is unlucky".to_string())
    );
}

#[test]
fn back_pressure_and_deadlines_are_handled() {
    let (processor, mailbox) = new_processor(WaitStrategy::SpinPark {
        spins: 4,
        yields: 1,
    });
    let blocked = Arc::new(AtomicBool::new(true));
    let action = Counting {
        output_blocked: blocked.clone(),
        ..Counting::default()
    };
    let (rx, handle) = spawn(processor, action);
    std::thread::sleep(Duration::from_millis(10));
    blocked.store(false, Ordering::Release);
    mailbox.owner().unpark();
    mailbox.put(Mail::Action { id: 0 }).unwrap();
    let (exit, _, processor) = rx.recv_timeout(GUARD).expect("loop ends");
    handle.join().unwrap();
    assert_eq!(exit, Ok(LoopExit::Finished));
    assert!(processor.metrics().back_pressured_ns > 0);

    // An idle task with a deadline wakes for it without input or mail.
    let (mut processor, _mailbox) = processor_with_deadline();
    let mut action = Counting {
        deadline: Some(Instant::now() + Duration::from_millis(2)),
        ..Counting::default()
    };
    let input = action.input.clone();
    let feeder = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        input.store(true, Ordering::Release);
    });
    // After the deadline fires and the fed turn runs, a mail ends it.
    let mailbox = processor.mailbox().clone();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(40));
        mailbox.put(Mail::Action { id: 0 }).unwrap();
    });
    assert_eq!(
        processor.run_mailbox_loop(&mut action),
        Ok(LoopExit::Finished)
    );
    feeder.join().unwrap();
    stopper.join().unwrap();
    assert_eq!(action.deadlines_hit, 1);
}

fn processor_with_deadline() -> (MailboxProcessor, Arc<TaskMailbox>) {
    new_processor(WaitStrategy::SpinPark {
        spins: 0,
        yields: 0,
    })
}

#[test]
fn the_steady_state_loop_does_not_allocate() {
    let (mut processor, mailbox) = new_processor(WaitStrategy::default());
    let sent = Arc::new(AtomicU64::new(0));
    let sender = {
        let (mailbox, sent) = (mailbox.clone(), sent.clone());
        std::thread::spawn(move || {
            for _ in 0..10_000 {
                while mailbox.put(Mail::Timer { id: 1 }).is_err() {
                    std::thread::yield_now();
                }
                sent.fetch_add(1, Ordering::Relaxed);
            }
            mailbox.put(Mail::Action { id: 0 }).unwrap();
        })
    };
    let mut action = Counting {
        budget: 200_000,
        ..Counting::default()
    };
    let before = AllocationCount::thread_now();
    let exit = processor.run_mailbox_loop(&mut action);
    let allocations = AllocationCount::thread_now().since(before);
    sender.join().unwrap();
    assert_eq!(exit, Ok(LoopExit::Finished));
    assert_eq!(action.actions, 10_000, "every timer mail was handled");
    assert_eq!(allocations.allocations, 0, "the task thread allocated");
}
