//! Why the executor refuses a deployment.

use super::ids::{AllocationId, ExecutionAttemptId, JobId, JobMasterId};
use super::{SlotError, TaskNotTerminated};

/// Why `TaskExecutor::cancel_task` could not report a canceled task.
#[derive(Debug, thiserror::Error)]
pub enum CancelTaskError {
    /// No task runs as this execution (Flink: "Cannot find task to stop").
    #[error(
        "cannot find task {execution} to cancel: it was never submitted or is already removed"
    )]
    UnknownTask {
        /// The execution asked for.
        execution: ExecutionAttemptId,
    },
    /// The task did not reach a final state in time (the watchdog's error).
    #[error(transparent)]
    NotTerminated(#[from] TaskNotTerminated),
}

/// Why `TaskExecutor::submit_task` refused a task, one variant per check
/// Flink's `TaskExecutor.submitTask` makes. The task is not started.
#[derive(Debug, thiserror::Error)]
pub enum TaskSubmissionError {
    /// The executor has no connection to the job's master.
    #[error("could not submit task {execution}: no job manager is connected for {job}")]
    NoJobConnection {
        /// The job.
        job: JobId,
        /// The task.
        execution: ExecutionAttemptId,
    },
    /// The submitting job master is not the leader the executor knows.
    #[error(
        "rejecting task {execution}: job manager leader id {given} does not match the expected leader id {expected} of {job}"
    )]
    JobMasterMismatch {
        /// The job.
        job: JobId,
        /// The task.
        execution: ExecutionAttemptId,
        /// The id the submission came with.
        given: JobMasterId,
        /// The id of the connected leader.
        expected: JobMasterId,
    },
    /// No slot is allocated to (job, allocation), so none can be activated.
    #[error("no task slot allocated for {job} and {allocation}")]
    NoSlotAllocated {
        /// The job.
        job: JobId,
        /// The allocation.
        allocation: AllocationId,
    },
    /// The descriptor's job id differs from its job information's.
    #[error("inconsistent job id in the task deployment descriptor ({descriptor} vs. {information} in its job information)")]
    InconsistentJobId {
        /// The descriptor's job id.
        descriptor: JobId,
        /// The job information's job id.
        information: JobId,
    },
    /// The slot table refused the task (slot not found or not active).
    #[error("could not add task {execution} to its slot: {source}")]
    Slot {
        /// The task.
        execution: ExecutionAttemptId,
        /// What the slot table said.
        source: SlotError,
    },
    /// A task with the same execution id is already present.
    #[error("the task executor already contains a task for {execution}")]
    DuplicateExecution {
        /// The task.
        execution: ExecutionAttemptId,
    },
    /// The task's thread could not be started.
    #[error("could not start the thread of task {execution}: {source}")]
    Spawn {
        /// The task.
        execution: ExecutionAttemptId,
        /// What the OS said.
        source: std::io::Error,
    },
}
