//! Flink's `MailboxProcessor`: the task's single-threaded loop of mails and
//! the default action.

use std::time::Instant;

use super::{Mail, TaskMailbox};
use crate::sync::{Arc, WaitStrategy};

/// What one run of the default action found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionStatus {
    /// Did some work; there may be more right away.
    MoreAvailable,
    /// No input: wait until input, a mail, or the action's deadline.
    NothingAvailable,
    /// No output capacity (soft back-pressure): wait until there is.
    BackPressured,
    /// All work done: the loop ends.
    Finished,
}

/// The work a task's mailbox loop runs between mails (Flink's
/// `MailboxDefaultAction`: `processInput` for a stream task, the source
/// function for a source task).
pub trait MailboxDefaultAction {
    /// Why the action failed.
    type Error;

    /// One unit of work: one input buffer, or one batch of a source.
    fn run_default_action(&mut self) -> Result<ActionStatus, Self::Error>;

    /// Handles one mail other than [`Mail::Cancel`] (which ends the loop).
    fn handle_mail(&mut self, mail: Mail) -> Result<(), Self::Error>;

    /// Whether input arrived (re-checked before parking, from `&self`).
    fn is_input_available(&self) -> bool;

    /// Whether output capacity returned.
    fn is_output_available(&self) -> bool {
        true
    }

    /// Called once before waiting for input: flush partially filled
    /// output buffers so downstream tasks are not starved while we sleep.
    fn before_idle(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }

    /// The earliest instant the action wants to run again even without
    /// input (a buffer-timeout flush, a rate-limited source's next batch).
    fn next_deadline(&self) -> Option<Instant> {
        None
    }

    /// The deadline passed.
    fn on_deadline(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// How a mailbox loop ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoopExit {
    /// The default action finished.
    Finished,
    /// A `Cancel` mail or an interrupt of the task's parker ended it.
    Canceled,
}

/// Where the loop's time went (Flink's `busyTimeMsPerSecond`,
/// `idleTimeMsPerSecond`, `backPressuredTimeMsPerSecond`). The clock is read
/// only around waits, never while busy; busy time is the rest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MailboxMetrics {
    /// Time running mails and the default action.
    pub busy_ns: u64,
    /// Time waiting for input or mail.
    pub idle_ns: u64,
    /// Time waiting for output capacity.
    pub back_pressured_ns: u64,
    /// Mails processed.
    pub mails: u64,
}

/// Runs a task's mailbox loop: mails first, then the default action,
/// waiting by the task's [`WaitStrategy`] when there is nothing to do.
#[derive(Debug)]
pub struct MailboxProcessor {
    mailbox: Arc<TaskMailbox>,
    wait: WaitStrategy,
    metrics: MailboxMetrics,
}

impl MailboxProcessor {
    /// A processor over `mailbox`; it parks on the mailbox's owner.
    pub fn new(mailbox: Arc<TaskMailbox>, wait: WaitStrategy) -> Self {
        Self {
            mailbox,
            wait,
            metrics: MailboxMetrics::default(),
        }
    }

    /// The mailbox.
    pub fn mailbox(&self) -> &Arc<TaskMailbox> {
        &self.mailbox
    }

    /// Time accounting and mail count so far.
    pub fn metrics(&self) -> MailboxMetrics {
        self.metrics
    }

    /// Runs until the action finishes, a `Cancel` mail arrives, the parker
    /// is interrupted, or the action fails.
    pub fn run_mailbox_loop<A: MailboxDefaultAction>(
        &mut self,
        action: &mut A,
    ) -> Result<LoopExit, A::Error> {
        let started = Instant::now();
        let (idle, back_pressured) = (self.metrics.idle_ns, self.metrics.back_pressured_ns);
        let result = self.run(action);
        let waited =
            (self.metrics.idle_ns - idle) + (self.metrics.back_pressured_ns - back_pressured);
        self.metrics.busy_ns += (started.elapsed().as_nanos() as u64).saturating_sub(waited);
        result
    }

    #[inline]
    fn run<A: MailboxDefaultAction>(&mut self, action: &mut A) -> Result<LoopExit, A::Error> {
        loop {
            if self.mailbox.has_mail() && self.process_mails(action)? {
                return Ok(LoopExit::Canceled);
            }
            match action.run_default_action()? {
                ActionStatus::MoreAvailable => {}
                ActionStatus::Finished => return Ok(LoopExit::Finished),
                ActionStatus::NothingAvailable => {
                    action.before_idle()?;
                    if self.wait_for_input(action)? {
                        return Ok(LoopExit::Canceled);
                    }
                }
                ActionStatus::BackPressured => {
                    if self.wait_for_output(action) {
                        return Ok(LoopExit::Canceled);
                    }
                }
            }
        }
    }

    /// Processes every queued mail; true if one was `Cancel`.
    #[cold]
    fn process_mails<A: MailboxDefaultAction>(&mut self, action: &mut A) -> Result<bool, A::Error> {
        while let Some(mail) = self.mailbox.try_take() {
            self.metrics.mails += 1;
            if mail == Mail::Cancel {
                return Ok(true);
            }
            action.handle_mail(mail)?;
        }
        Ok(false)
    }

    /// Waits until input, a mail or the action's deadline; true if the task
    /// was interrupted meanwhile.
    #[cold]
    fn wait_for_input<A: MailboxDefaultAction>(
        &mut self,
        action: &mut A,
    ) -> Result<bool, A::Error> {
        let start = Instant::now();
        let parker = self.mailbox.owner().clone();
        let mut waiter = self.wait.waiter();
        let interrupted = loop {
            if parker.is_interrupted() {
                break true;
            }
            if action.is_input_available() || self.mailbox.has_mail() {
                break false;
            }
            let deadline = action.next_deadline();
            if deadline.is_some_and(|d| Instant::now() >= d) {
                action.on_deadline()?;
                break false;
            }
            let mailbox = &self.mailbox;
            let ready = || action.is_input_available() || mailbox.has_mail();
            waiter.wait(&parker, ready, deadline);
        };
        self.metrics.idle_ns += start.elapsed().as_nanos() as u64;
        Ok(interrupted)
    }

    /// Waits until output capacity or a mail; true if interrupted.
    #[cold]
    fn wait_for_output<A: MailboxDefaultAction>(&mut self, action: &A) -> bool {
        let start = Instant::now();
        let parker = self.mailbox.owner().clone();
        let mut waiter = self.wait.waiter();
        let interrupted = loop {
            if parker.is_interrupted() {
                break true;
            }
            if action.is_output_available() || self.mailbox.has_mail() {
                break false;
            }
            let mailbox = &self.mailbox;
            waiter.wait(
                &parker,
                || action.is_output_available() || mailbox.has_mail(),
                None,
            );
        };
        self.metrics.back_pressured_ns += start.elapsed().as_nanos() as u64;
        interrupted
    }
}
