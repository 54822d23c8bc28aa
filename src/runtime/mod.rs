//! The task runtime: Flink's `TaskExecutor`, `TaskSlotTable`, `Task` and its
//! `ExecutionState` machine.

mod deployment;
mod errors;
mod execution_state;
pub mod ids;
mod job_table;
mod slot_table;
mod task;
mod task_executor;

pub use deployment::{
    JobInformation, JobManagerTaskRestore, ProducedPartition, TaskDeploymentDescriptor,
    TaskInformation,
};
pub use errors::{CancelTaskError, TaskSubmissionError};
pub use execution_state::{AtomicExecutionState, ExecutionState, IllegalTransition};
pub use job_table::{JobConnection, JobTable};
pub use slot_table::{SlotError, TaskSlotTable};
pub use task::{Task, TaskNotTerminated, TaskOutcome, TaskSettings, TaskStateUpdate};
pub use task_executor::TaskExecutor;
