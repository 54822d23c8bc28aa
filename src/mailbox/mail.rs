//! What one thread asks a task's thread to do.

/// One request to a task, run on the task's thread between two default
/// actions (Flink's `Mail`, which wraps a `RunnableWithException`).
///
/// Flink mails are closures; here they are plain values so a mail is moved
/// through the mailbox's bounded lanes without allocating, and the task's
/// [`MailboxDefaultAction::handle_mail`](super::MailboxDefaultAction::handle_mail)
/// decides what each means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mail {
    /// Start checkpoint `id` (Flink's `StreamTask.triggerCheckpointAsync`):
    /// a source snapshots its position and emits the barrier.
    TriggerCheckpoint {
        /// The checkpoint's id, increasing per job.
        id: u64,
        /// When the coordinator triggered it, in nanoseconds of the job's
        /// clock (for the checkpoint's start delay).
        timestamp: u64,
    },
    /// Every task acknowledged checkpoint `id` (Flink's
    /// `notifyCheckpointCompleteAsync`): side effects may be committed.
    NotifyCheckpointComplete {
        /// The completed checkpoint.
        id: u64,
    },
    /// Checkpoint `id` will not complete (Flink's
    /// `notifyCheckpointAbortAsync`): discard what was prepared for it.
    NotifyCheckpointAborted {
        /// The aborted checkpoint.
        id: u64,
    },
    /// Stop the task: the mailbox loop ends as
    /// [`LoopExit::Canceled`](super::LoopExit::Canceled). The processor
    /// consumes it; it is never passed to `handle_mail`.
    Cancel,
    /// Processing-time timer `id` fired (Flink's `ProcessingTimeService`
    /// callback, delivered through the mailbox).
    Timer {
        /// The timer's id, as the task registered it.
        id: u64,
    },
    /// Every other source of the job finished: a source that stays open
    /// until then, emitting nothing (an idle input, as flink-benchmarks'
    /// `QueuingLongSource`), finishes now. Sent by the job master.
    EndOfInput,
    /// A user action the task registered under `id` (Flink's
    /// `MailboxExecutor.execute` of an arbitrary runnable).
    Action {
        /// The action's id.
        id: u32,
    },
}

// A mail is copied through lock-free slots: keep it at three words.
const _: () = assert!(std::mem::size_of::<Mail>() <= 24);
