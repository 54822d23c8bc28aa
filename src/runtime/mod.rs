//! The task runtime: Flink's `TaskExecutor`, `Task` and its
//! `ExecutionState` machine.

mod execution_state;

pub use execution_state::{AtomicExecutionState, ExecutionState, IllegalTransition};
