//! Identifiers, as Flink's `JobID`, `JobMasterId`, `AllocationID`,
//! `ExecutionAttemptID` and `ResultPartitionID`: opaque numbers here, since
//! everything lives in one process.

use std::fmt;

macro_rules! id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "-{:016x}"), self.0)
            }
        }
    };
}

id!(
    /// A job.
    JobId,
    "job"
);
id!(
    /// The leader session of the job master a job connection belongs to.
    JobMasterId,
    "jm"
);
id!(
    /// One allocation of a slot to a job.
    AllocationId,
    "alloc"
);
id!(
    /// One execution attempt of one subtask.
    ExecutionAttemptId,
    "exec"
);
id!(
    /// One produced result partition.
    ResultPartitionId,
    "partition"
);
