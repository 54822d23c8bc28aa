//! Flink's `JobTable`: which jobs this executor is connected to, and under
//! which job-master leader session.

use std::collections::HashMap;

use super::ids::{JobId, JobMasterId};

/// An established connection to a job's master.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobConnection {
    /// The leader session the connection belongs to.
    pub job_master_id: JobMasterId,
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
        self.connections
            .insert(job, JobConnection { job_master_id });
    }

    /// Drops the connection of `job`.
    pub fn disconnect(&mut self, job: JobId) -> Option<JobConnection> {
        self.connections.remove(&job)
    }

    /// The connection of `job`, if any.
    pub fn connection(&self, job: JobId) -> Option<JobConnection> {
        self.connections.get(&job).copied()
    }
}
