//! The task's loop: serve mails, run the default action, wait (Flink's
//! `MailboxProcessor`).

use std::time::{Duration, Instant};

use super::{Mail, TaskMailbox};
use crate::metrics::trace::{self, Kind};
use crate::sync::{Arc, Parker, Round, WaitStrategy};

/// What one run of the default action found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ActionStatus {
    /// Work was done and more may be ready: run again at once.
    MoreAvailable,
    /// No input: wait until input or a mail arrives, or the action's
    /// deadline passes (Flink's `suspendDefaultAction` until the input's
    /// availability future completes).
    NothingAvailable,
    /// No output buffer or a full channel: wait until output capacity or a
    /// mail arrives; the time counts as back-pressured.
    BackPressured,
    /// All input is consumed (or the source is exhausted): the loop ends.
    Finished,
}

/// The work a task's loop runs between mails (Flink's
/// `MailboxDefaultAction`: `StreamTask.processInput` for an operator task,
/// the source's emit step for a source task).
///
/// The loop calls everything here on the task's thread; the `&self` checks
/// are also the park re-check, so they must look only at state that other
/// threads publish before they unpark the task.
pub trait MailboxDefaultAction {
    /// Why the action failed; the loop returns it unchanged.
    type Error;

    /// One unit of work: one input buffer, or one batch of a source.
    fn run_default_action(&mut self) -> Result<ActionStatus, Self::Error>;

    /// Handles one mail: a checkpoint trigger or notification, a timer, a
    /// user action. Never called with [`Mail::Cancel`], which the processor
    /// consumes itself and answers by ending the loop as
    /// [`LoopExit::Canceled`].
    fn handle_mail(&mut self, mail: Mail) -> Result<(), Self::Error>;

    /// Whether input may have arrived since the action reported
    /// [`ActionStatus::NothingAvailable`].
    fn is_input_available(&self) -> bool;

    /// Whether output capacity may have returned since the action reported
    /// [`ActionStatus::BackPressured`].
    fn is_output_available(&self) -> bool;

    /// The earliest instant an idle wait must end even without input (a
    /// buffer-timeout flush, a rate-limited source's next batch). Going idle
    /// flushes nothing: partial buffers wait for their deadline, as in
    /// Flink.
    fn next_deadline(&self) -> Option<Instant> {
        None
    }

    /// The earliest instant a wait for output capacity must end (an
    /// aligned checkpoint's timeout, which turns it unaligned without
    /// output capacity); `on_deadline` runs then.
    fn back_pressured_deadline(&self) -> Option<Instant> {
        None
    }

    /// Time the action spent blocked inside its work so far, waiting for
    /// output capacity (Flink's hard back-pressure: a writer waiting for a
    /// buffer inside an emit). The loop counts it as back-pressured, not
    /// busy.
    fn hard_back_pressured_ns(&self) -> u64 {
        0
    }

    /// The deadline of [`next_deadline`](Self::next_deadline) passed while
    /// idle.
    fn on_deadline(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// How a mailbox loop ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LoopExit {
    /// The default action reported [`ActionStatus::Finished`].
    Finished,
    /// A [`Mail::Cancel`] was taken, or the task's parker was interrupted.
    Canceled,
}

/// Where the loop's time went, and how much it did (Flink's
/// `busyTimeMsPerSecond`, `idleTimeMsPerSecond`,
/// `backPressuredTimeMsPerSecond` with its soft and hard parts, in
/// nanoseconds since the processor was made).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct MailboxMetrics {
    /// Time inside `run_mailbox_loop` that was neither idle nor
    /// back-pressured: running mails and the default action.
    pub busy_ns: u64,
    /// Time waiting for input or mail.
    pub idle_ns: u64,
    /// Back-pressured time: `soft_back_pressured_ns +
    /// hard_back_pressured_ns`.
    pub back_pressured_ns: u64,
    /// Time not starting a turn because the outputs had no capacity
    /// (Flink's soft back-pressure).
    pub soft_back_pressured_ns: u64,
    /// Time blocked inside the default action waiting for output capacity
    /// (Flink's hard back-pressure, `hardBackPressuredTimeMsPerSecond`).
    pub hard_back_pressured_ns: u64,
    /// Waits that put the thread to sleep in the kernel (a park).
    pub parks: u64,
    /// Mails taken, [`Mail::Cancel`] included.
    pub mails_processed: u64,
    /// Runs of the default action.
    pub iterations: u64,
}

/// What a wait is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Awaited {
    Input,
    Output,
}

/// How a wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WaitEnd {
    Ready,
    Deadline,
    Canceled,
}

/// Runs a task's mailbox loop on the task's thread (Flink's
/// `MailboxProcessor.runMailboxLoop`).
///
/// Each iteration: if [`TaskMailbox::has_mail`] (one atomic load), serve the
/// mails queued at that moment, priority lane first; then run the default
/// action once. When the action has no input or no output capacity, the
/// task waits by its [`WaitStrategy`] until the action's re-check or
/// `has_mail` holds. Nothing allocates per iteration.
///
/// # Time accounting
///
/// The clock is read only around waits (and once per `run_mailbox_loop`),
/// never while busy: idle and soft back-pressured time are the measured
/// waits, hard back-pressured time is what the action reports it spent
/// blocked inside its work, busy time is the loop's wall time minus all
/// three. Mails served and deadline work done inside a wait episode count
/// as busy.
///
/// # Cancellation
///
/// The loop ends as [`LoopExit::Canceled`] when it takes a [`Mail::Cancel`],
/// or when it finds the owner's parker interrupted, which it checks at
/// every wait and every batch of mails. [`TaskMailbox::cancel`] does both,
/// so it ends a running, idle or back-pressured task.
#[derive(Debug)]
pub struct MailboxProcessor {
    mailbox: Arc<TaskMailbox>,
    parker: Arc<Parker>,
    wait: WaitStrategy,
    /// Wall time inside `run_mailbox_loop`, the base busy time is cut from.
    loop_ns: u64,
    metrics: MailboxMetrics,
    /// When the current busy stretch began (traced runs only).
    busy_since: Option<Instant>,
}

impl MailboxProcessor {
    /// A processor serving `mailbox`, waiting by `wait` on the mailbox's
    /// owner parker (the one its puts unpark).
    pub fn new(mailbox: Arc<TaskMailbox>, wait: WaitStrategy) -> Self {
        let parker = mailbox.owner().clone();
        Self {
            mailbox,
            parker,
            wait,
            loop_ns: 0,
            metrics: MailboxMetrics::default(),
            busy_since: None,
        }
    }

    /// The mailbox this processor serves.
    pub fn mailbox(&self) -> &Arc<TaskMailbox> {
        &self.mailbox
    }

    /// How the loop waits.
    pub fn wait_strategy(&self) -> WaitStrategy {
        self.wait
    }

    /// Counters and times of every loop run so far.
    pub fn metrics(&self) -> MailboxMetrics {
        let m = self.metrics;
        let back_pressured_ns = m.soft_back_pressured_ns + m.hard_back_pressured_ns;
        MailboxMetrics {
            busy_ns: self.loop_ns.saturating_sub(m.idle_ns + back_pressured_ns),
            back_pressured_ns,
            ..m
        }
    }

    /// Runs mails and the default action until the action finishes, the
    /// task is canceled, or `action` fails (the error is returned as is).
    /// Mails still queued when it returns stay in the mailbox; see
    /// [`drain`](Self::drain).
    pub fn run_mailbox_loop<A: MailboxDefaultAction>(
        &mut self,
        action: &mut A,
    ) -> Result<LoopExit, A::Error> {
        let start = Instant::now();
        if trace::enabled() {
            self.busy_since = Some(start);
        }
        let hard_before = action.hard_back_pressured_ns();
        let exit = self.run_loop(action);
        let end = Instant::now();
        self.loop_ns += nanos(end - start);
        self.metrics.hard_back_pressured_ns +=
            action.hard_back_pressured_ns().saturating_sub(hard_before);
        if let Some(since) = self.busy_since.take() {
            trace::slice(Kind::Busy, since, end);
        }
        exit
    }

    /// Runs the mails left after the loop, until the mailbox is empty
    /// (Flink's `MailboxProcessor.drain`, run once the mailbox is
    /// quiesced). [`Mail::Cancel`]s are counted but not handed on. Returns
    /// the number of mails taken.
    pub fn drain<A: MailboxDefaultAction>(&mut self, action: &mut A) -> Result<u64, A::Error> {
        let mut taken = 0;
        while let Some(mail) = self.mailbox.try_take() {
            taken += 1;
            self.metrics.mails_processed += 1;
            if mail != Mail::Cancel {
                action.handle_mail(mail)?;
            }
        }
        Ok(taken)
    }

    fn run_loop<A: MailboxDefaultAction>(&mut self, action: &mut A) -> Result<LoopExit, A::Error> {
        loop {
            if self.mailbox.has_mail() && self.process_mails(action)? {
                return Ok(LoopExit::Canceled);
            }
            self.metrics.iterations += 1;
            let awaited = match action.run_default_action()? {
                ActionStatus::MoreAvailable => continue,
                ActionStatus::NothingAvailable => Awaited::Input,
                ActionStatus::BackPressured => Awaited::Output,
                ActionStatus::Finished => return Ok(LoopExit::Finished),
            };
            if self.wait(action, awaited)? == WaitEnd::Canceled {
                return Ok(LoopExit::Canceled);
            }
        }
    }

    /// Serves the mails queued now (Flink's batch: mails that arrive
    /// meanwhile wait for the next iteration, so a stream of mails cannot
    /// starve the default action). Returns whether the task is canceled.
    #[cold]
    #[inline(never)]
    fn process_mails<A: MailboxDefaultAction>(&mut self, action: &mut A) -> Result<bool, A::Error> {
        if self.parker.is_interrupted() {
            return Ok(true);
        }
        for _ in 0..self.mailbox.len() {
            let Some(mail) = self.mailbox.try_take() else {
                break;
            };
            self.metrics.mails_processed += 1;
            if mail == Mail::Cancel {
                return Ok(true);
            }
            action.handle_mail(mail)?;
        }
        Ok(false)
    }

    /// Waits until what is `awaited` (or a mail) may be there, the idle
    /// deadline passes (then runs `on_deadline`), or the task is canceled.
    /// Out of line: `run --instructions` leaves it out of its count by
    /// symbol.
    #[inline(never)]
    fn wait<A: MailboxDefaultAction>(
        &mut self,
        action: &mut A,
        awaited: Awaited,
    ) -> Result<WaitEnd, A::Error> {
        if self.parker.is_interrupted() {
            return Ok(WaitEnd::Canceled);
        }
        // Input often arrives while the action reports its absence: check
        // before reading the clock.
        if ready(awaited, action, &self.mailbox) {
            return Ok(WaitEnd::Ready);
        }
        let deadline = match awaited {
            Awaited::Input => action.next_deadline(),
            // Flushing needs output capacity, which is what is missing;
            // timers arrive as mails.
            Awaited::Output => action.back_pressured_deadline(),
        };
        let start = Instant::now();
        let mut waiter = self.wait.waiter();
        let end = loop {
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                break WaitEnd::Deadline;
            }
            let round_start = trace::enabled().then(Instant::now);
            let round = waiter.wait(
                &self.parker,
                || ready(awaited, action, &self.mailbox),
                deadline,
            );
            if round == Round::Parked {
                self.metrics.parks += 1;
                if let Some(round_start) = round_start {
                    trace::slice(Kind::Park, round_start, Instant::now());
                }
            }
            if self.parker.is_interrupted() {
                break WaitEnd::Canceled;
            }
            if ready(awaited, action, &self.mailbox) {
                break WaitEnd::Ready;
            }
        };
        let stop = Instant::now();
        let waited = nanos(stop - start);
        let kind = match awaited {
            Awaited::Input => {
                self.metrics.idle_ns += waited;
                Kind::Idle
            }
            Awaited::Output => {
                self.metrics.soft_back_pressured_ns += waited;
                Kind::SoftBackPressure
            }
        };
        if let Some(since) = self.busy_since.as_mut() {
            trace::slice(Kind::Busy, *since, start);
            trace::slice(kind, start, stop);
            *since = stop;
        }
        if end == WaitEnd::Deadline {
            action.on_deadline()?;
        }
        Ok(end)
    }
}

/// The park re-check: what is awaited, or a mail.
#[inline]
fn ready<A: MailboxDefaultAction>(awaited: Awaited, action: &A, mailbox: &TaskMailbox) -> bool {
    let available = match awaited {
        Awaited::Input => action.is_input_available(),
        Awaited::Output => action.is_output_available(),
    };
    available || mailbox.has_mail()
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::convert::Infallible;

    /// Plays back a script of statuses and records what the loop did.
    #[derive(Default)]
    struct Script {
        statuses: Vec<ActionStatus>,
        next: usize,
        input: bool,
        output: bool,
        deadline: Option<Instant>,
        events: Vec<String>,
    }

    impl Script {
        fn new(statuses: &[ActionStatus]) -> Self {
            Self {
                statuses: statuses.to_vec(),
                ..Self::default()
            }
        }
    }

    impl MailboxDefaultAction for Script {
        type Error = String;

        fn run_default_action(&mut self) -> Result<ActionStatus, String> {
            let status = *self
                .statuses
                .get(self.next)
                .ok_or_else(|| "script ran out".to_string())?;
            self.next += 1;
            self.events.push(format!("{status:?}"));
            Ok(status)
        }

        fn handle_mail(&mut self, mail: Mail) -> Result<(), String> {
            match mail {
                Mail::Action { id: 666 } => Err("mail 666 failed".into()),
                mail => {
                    self.events.push(format!("{mail:?}"));
                    Ok(())
                }
            }
        }

        fn is_input_available(&self) -> bool {
            self.input
        }

        fn is_output_available(&self) -> bool {
            self.output
        }

        fn next_deadline(&self) -> Option<Instant> {
            self.deadline
        }

        fn on_deadline(&mut self) -> Result<(), String> {
            self.events.push("on_deadline".into());
            self.deadline = None;
            self.input = true;
            Ok(())
        }
    }

    fn processor() -> MailboxProcessor {
        let mailbox = Arc::new(TaskMailbox::new(8, Arc::new(Parker::new())));
        MailboxProcessor::new(mailbox, WaitStrategy::BusySpin)
    }

    use ActionStatus::{BackPressured, Finished, MoreAvailable, NothingAvailable};

    #[test]
    fn scripted_loops() {
        struct Case {
            name: &'static str,
            script: &'static [ActionStatus],
            /// (priority?, mail) put before the loop starts.
            mails: &'static [(bool, Mail)],
            input: bool,
            output: bool,
            past_deadline: bool,
            exit: Result<LoopExit, &'static str>,
            events: &'static [&'static str],
        }
        let cases = [
            Case {
                name: "finishes",
                script: &[MoreAvailable, MoreAvailable, Finished],
                mails: &[],
                input: false,
                output: false,
                past_deadline: false,
                exit: Ok(LoopExit::Finished),
                events: &["MoreAvailable", "MoreAvailable", "Finished"],
            },
            Case {
                name: "mails run before the default action, priority first",
                script: &[Finished],
                mails: &[
                    (false, Mail::Timer { id: 1 }),
                    (true, Mail::NotifyCheckpointComplete { id: 2 }),
                ],
                input: false,
                output: false,
                past_deadline: false,
                exit: Ok(LoopExit::Finished),
                events: &[
                    "NotifyCheckpointComplete { id: 2 }",
                    "Timer { id: 1 }",
                    "Finished",
                ],
            },
            Case {
                name: "cancel ends the batch and the loop, unseen by the action",
                script: &[Finished],
                mails: &[
                    (false, Mail::Action { id: 1 }),
                    (true, Mail::Cancel),
                    (false, Mail::Action { id: 2 }),
                ],
                input: false,
                output: false,
                past_deadline: false,
                exit: Ok(LoopExit::Canceled),
                events: &[],
            },
            Case {
                name: "available input: no idle callback, no wait",
                script: &[NothingAvailable, Finished],
                mails: &[],
                input: true,
                output: false,
                past_deadline: false,
                exit: Ok(LoopExit::Finished),
                events: &["NothingAvailable", "Finished"],
            },
            Case {
                name: "available output after back-pressure",
                script: &[BackPressured, Finished],
                mails: &[],
                input: false,
                output: true,
                past_deadline: false,
                exit: Ok(LoopExit::Finished),
                events: &["BackPressured", "Finished"],
            },
            Case {
                name: "a passed deadline ends the idle wait",
                script: &[NothingAvailable, Finished],
                mails: &[],
                input: false,
                output: false,
                past_deadline: true,
                exit: Ok(LoopExit::Finished),
                events: &["NothingAvailable", "on_deadline", "Finished"],
            },
            Case {
                name: "a failing mail stops the loop with its error",
                script: &[Finished],
                mails: &[(false, Mail::Action { id: 666 })],
                input: false,
                output: false,
                past_deadline: false,
                exit: Err("mail 666 failed"),
                events: &[],
            },
            Case {
                name: "a failing action stops the loop with its error",
                script: &[MoreAvailable],
                mails: &[],
                input: false,
                output: false,
                past_deadline: false,
                exit: Err("script ran out"),
                events: &["MoreAvailable"],
            },
        ];
        for case in cases {
            let mut processor = processor();
            for &(first, mail) in case.mails {
                let put = if first {
                    processor.mailbox().put_first(mail)
                } else {
                    processor.mailbox().put(mail)
                };
                put.unwrap();
            }
            let mut action = Script::new(case.script);
            action.input = case.input;
            action.output = case.output;
            if case.past_deadline {
                action.deadline = Some(Instant::now());
            }
            let exit = processor.run_mailbox_loop(&mut action);
            assert_eq!(
                exit,
                case.exit.map_err(str::to_string),
                "{}: {:?}",
                case.name,
                action.events
            );
            assert_eq!(action.events, case.events, "{}", case.name);
        }
    }

    #[test]
    fn metrics_count_iterations_and_mails() {
        let mut processor = processor();
        processor.mailbox().put(Mail::Action { id: 1 }).unwrap();
        processor.mailbox().put(Mail::Action { id: 2 }).unwrap();
        let mut action = Script::new(&[MoreAvailable, MoreAvailable, Finished]);
        assert_eq!(
            processor.run_mailbox_loop(&mut action),
            Ok(LoopExit::Finished)
        );
        let metrics = processor.metrics();
        assert_eq!(metrics.iterations, 3);
        assert_eq!(metrics.mails_processed, 2);
        assert_eq!(metrics.idle_ns + metrics.back_pressured_ns, 0);
    }

    #[test]
    fn an_interrupted_parker_cancels_at_the_next_wait_or_mail() {
        // A busy loop is not interrupted between mails; waits and mails are.
        let cases: [(&[ActionStatus], bool); 3] = [
            (&[NothingAvailable, Finished], false),
            (&[BackPressured, Finished], false),
            (&[MoreAvailable, Finished], true),
        ];
        for (script, with_mail) in cases {
            let mut processor = processor();
            processor.parker.interrupt();
            if with_mail {
                processor.mailbox().put(Mail::Timer { id: 1 }).unwrap();
            }
            let mut action = Script::new(script);
            assert_eq!(
                processor.run_mailbox_loop(&mut action),
                Ok(LoopExit::Canceled),
                "{script:?}"
            );
        }
    }

    #[test]
    fn drain_runs_leftovers_after_quiesce() {
        let mut processor = processor();
        processor.mailbox().put(Mail::Timer { id: 1 }).unwrap();
        processor.mailbox().put_first(Mail::Cancel).unwrap();
        processor.mailbox().quiesce();
        let mut action = Script::new(&[]);
        assert_eq!(processor.drain(&mut action), Ok(2));
        assert_eq!(action.events, ["Timer { id: 1 }"]);
        assert_eq!(processor.metrics().mails_processed, 2);
    }

    #[test]
    fn never_failing_actions_use_infallible() {
        struct Done;
        impl MailboxDefaultAction for Done {
            type Error = Infallible;
            fn run_default_action(&mut self) -> Result<ActionStatus, Infallible> {
                Ok(Finished)
            }
            fn handle_mail(&mut self, _: Mail) -> Result<(), Infallible> {
                Ok(())
            }
            fn is_input_available(&self) -> bool {
                false
            }
            fn is_output_available(&self) -> bool {
                false
            }
        }
        let exit = processor().run_mailbox_loop(&mut Done);
        assert_eq!(
            exit.unwrap_or_else(|never| match never {}),
            LoopExit::Finished
        );
    }
}
