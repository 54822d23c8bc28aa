//! Flink's `TaskDeploymentDescriptor`: everything a task executor needs to
//! run one subtask.

use super::ids::{AllocationId, ExecutionAttemptId, JobId};
use crate::network::{GateKey, PartitionKey, Partitioner};
use crate::streaming::StreamTaskConfig;

/// Job-wide information (Flink's `JobInformation`).
#[derive(Clone, Debug, PartialEq)]
pub struct JobInformation {
    /// The job.
    pub job_id: JobId,
    /// Its name.
    pub job_name: String,
}

/// Vertex-wide information (Flink's `TaskInformation`).
#[derive(Clone, Debug, PartialEq)]
pub struct TaskInformation {
    /// The vertex's name (the task thread is named after it).
    pub task_name: String,
    /// The vertex's parallelism.
    pub parallelism: u32,
    /// The invokable and its operator chain.
    pub config: StreamTaskConfig,
}

/// A partition the task produces, already wired in the shuffle environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProducedPartition {
    /// Its key in the shuffle environment.
    pub key: PartitionKey,
    /// How records are routed over its subpartitions.
    pub partitioner: Partitioner,
}

/// One subtask's deployment.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskDeploymentDescriptor {
    /// The job this task belongs to (must match `job_information`).
    pub job_id: JobId,
    /// Job-wide information.
    pub job_information: JobInformation,
    /// Vertex-wide information.
    pub task_information: TaskInformation,
    /// This execution attempt.
    pub execution_id: ExecutionAttemptId,
    /// The slot allocation it runs in.
    pub allocation_id: AllocationId,
    /// Which subtask of the vertex.
    pub subtask_index: u32,
    /// The partitions it writes.
    pub produced_partitions: Vec<ProducedPartition>,
    /// The gates it reads.
    pub input_gates: Vec<GateKey>,
}
