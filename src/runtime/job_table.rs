//! Flink's `JobTable`: which jobs this executor is connected to, and under
//! which job-master leader session.

use std::collections::HashMap;

use super::ids::{JobId, JobMasterId};
use crate::checkpoint::CheckpointResponder;

/// An established connection to a job's master.
#[derive(Clone, Debug)]
pub struct JobConnection {
    /// The leader session the connection belongs to.
    pub job_master_id: JobMasterId,
    /// Where the job's tasks acknowledge checkpoints (Flink's
    /// `CheckpointResponder` of the job's connection), if it checkpoints.
    pub responder: Option<CheckpointResponder>,
}

/// The executor's job connections.
#[derive(Debug, Default)]
pub struct JobTable {
    connections: HashMap<JobId, JobConnection>,
}

impl JobTable {
    /// Records a connection to `job`'s master `job_master_id`, replacing an
    /// older leader's.
    pub fn connect(&mut self, job: JobId, job_master_id: JobMasterId) {
        self.connect_with_responder(job, job_master_id, None);
    }

    /// Connects `job` with the responder its tasks acknowledge checkpoints
    /// through.
    pub fn connect_with_responder(
        &mut self,
        job: JobId,
        job_master_id: JobMasterId,
        responder: Option<CheckpointResponder>,
    ) {
        self.connections.insert(
            job,
            JobConnection {
                job_master_id,
                responder,
            },
        );
    }

    /// Drops the connection of `job`.
    pub fn disconnect(&mut self, job: JobId) -> Option<JobConnection> {
        self.connections.remove(&job)
    }

    /// The connection of `job`, if any.
    pub fn connection(&self, job: JobId) -> Option<JobConnection> {
        self.connections.get(&job).cloned()
    }
}
