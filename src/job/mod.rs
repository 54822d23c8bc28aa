//! Jobs: the `JobGraph` a user describes, the `ExecutionGraph` it becomes
//! (chained tasks, subtasks, channels), and its deployment onto a
//! `TaskExecutor`.

mod execution;
mod graph;
mod runner;

pub use execution::{Channel, ExecutionGraph, ExecutionVertex};
pub use graph::{GraphError, JobEdge, JobGraph, JobVertex, MAX_CHANNELS};
pub use runner::{run_job, run_job_on, JobError, JobOptions, JobResult, Pinning, SubtaskReport};
