//! Flink's `TaskDeploymentDescriptor`: everything a task executor needs to
//! run one subtask.

use super::ids::{AllocationId, ExecutionAttemptId, JobId};
use crate::checkpoint::{CheckpointOptions, TaskKey, TaskSnapshot};
use crate::network::{GateKey, PartitionKey, Partitioner};
use crate::streaming::StreamTaskConfig;
use std::sync::Arc;

/// Job-wide information (Flink's `JobInformation`).
#[derive(Clone, Debug, PartialEq)]
pub struct JobInformation {
    /// The job.
    pub job_id: JobId,
    /// Its name.
    pub job_name: String,
    /// What its checkpoints ask, if it checkpoints (Flink's
    /// `JobCheckpointingSettings`).
    pub checkpointing: Option<CheckpointOptions>,
    /// The most records a sink subtask can count
    /// ([`JobGraph::max_sink_records`](crate::job::JobGraph::max_sink_records)):
    /// a restored count past it is refused.
    pub max_sink_records: Option<u64>,
}

/// Vertex-wide information (Flink's `TaskInformation`).
#[derive(Clone, Debug, PartialEq)]
pub struct TaskInformation {
    /// The vertex's name (the task thread is named after it).
    pub task_name: String,
    /// The vertex's index in the job graph (Flink's `jobVertexId`): with
    /// the subtask index, the key of the task's state across restarts.
    pub vertex: u32,
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
    /// Which execution attempt of the subtask this is (0 first; Flink's
    /// `attemptNumber`).
    pub attempt_number: u32,
    /// The state to restore (Flink's `JobManagerTaskRestore`), when the job
    /// is redeployed from a checkpoint.
    pub task_restore: Option<JobManagerTaskRestore>,
}

/// Flink's `JobManagerTaskRestore`: which checkpoint a task restores, and
/// its part of it.
#[derive(Clone, Debug, PartialEq)]
pub struct JobManagerTaskRestore {
    /// The checkpoint restored.
    pub restore_checkpoint_id: u64,
    /// This task's snapshot in it.
    pub state: Arc<TaskSnapshot>,
}

impl TaskDeploymentDescriptor {
    /// The key of the task's state.
    pub fn task_key(&self) -> TaskKey {
        TaskKey {
            vertex: self.task_information.vertex,
            subtask: self.subtask_index,
        }
    }
}
