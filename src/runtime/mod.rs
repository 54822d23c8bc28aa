//! The task runtime: Flink's `TaskExecutor`, `TaskSlotTable`, `Task` and its
//! `ExecutionState` machine.

mod execution_state;
pub mod ids;
mod slot_table;

pub use execution_state::{AtomicExecutionState, ExecutionState, IllegalTransition};
pub use slot_table::{SlotError, TaskSlotTable};
