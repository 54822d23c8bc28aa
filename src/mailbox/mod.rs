//! The task's mailbox and the loop that serves it: Flink's `TaskMailboxImpl`
//! and `MailboxProcessor`.
//!
//! Everything a task does runs on its own thread, in one loop: serve the
//! [`Mail`]s other threads sent (checkpoint triggers, timers, cancellation),
//! then run the default action once (one input buffer, or one source batch),
//! and when there is neither input nor output capacity, wait by the task's
//! [`WaitStrategy`](crate::sync::WaitStrategy) until input, capacity or mail
//! arrives. Mails are small `Copy` values in bounded lanes, so after
//! construction nothing here allocates.
//!
//! * [`TaskMailbox`]: multi-producer, single-consumer, two lanes (priority
//!   first), OPEN → QUIESCED → CLOSED; `has_mail` is one atomic load.
//! * [`MailboxProcessor`]: `run_mailbox_loop` over a
//!   [`MailboxDefaultAction`], with busy/idle/back-pressured time accounting
//!   ([`MailboxMetrics`]).

mod mail;
mod processor;
mod task_mailbox;

pub use mail::Mail;
pub use processor::{
    ActionStatus, LoopExit, MailboxDefaultAction, MailboxMetrics, MailboxProcessor,
};
pub use task_mailbox::{DroppedMails, MailboxError, MailboxState, TaskMailbox};
