//! Profiles on real Apache Flink.
//!
//! `taskbench flink spec` turns a profile into a neutral job spec
//! ([`JobSpec`]); `flink/src/TaskbenchJob.java`, kept in the repository and
//! built into this binary, builds the same job on Flink's DataStream API
//! from it (FLIP-27 sources emitting taskbench's values and keys, the same
//! operator functions, sinks that count and checksum the same way).
//! `taskbench flink run` installs Flink from PyPI on first use
//! ([`install`]), starts a MiniCluster or talks to a cluster's REST API
//! ([`cluster`], [`rest`]), runs the job with taskbench's measurement scheme
//! ([`run`]) and reports taskbench's result with `engine: "flink"`;
//! `taskbench run --vs-flink` runs both interleaved ([`vs`]).

pub mod cluster;
pub mod install;
pub mod job;
pub mod rest;
pub mod run;
pub mod spec;
pub mod vs;

pub use install::{cache_dir, Installation, DEFAULT_FLINK_VERSION};
pub use run::{run_flink, FlinkInfo, FlinkJob, FlinkOptions, FlinkRunner};
pub use spec::{JobSpec, Unsupported};

use super::engine::RunError;
use super::profile::ProfileError;

/// Why a Flink run could not go on.
#[derive(Debug, thiserror::Error)]
pub enum FlinkError {
    /// The profile is invalid.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// The profile asks for something Flink cannot express.
    #[error("Flink cannot run this profile: {0}")]
    Unsupported(#[from] Unsupported),
    /// A bad flag, or a `--cluster` address where no Flink answers.
    #[error("{0}")]
    Usage(String),
    /// This machine lacks what Flink needs (a JDK, pip, the wheel).
    #[error("{0}")]
    Environment(String),
    /// The cluster failed us mid-run (an error answer, a job that hung).
    #[error("{0}")]
    Cluster(String),
    /// taskbench's own side of `--vs-flink` failed.
    #[error(transparent)]
    Taskbench(#[from] RunError),
}

impl FlinkError {
    /// The exit code: 2 for bad input or a machine that cannot run Flink,
    /// 1 for a run that went wrong.
    pub fn exit_code(&self) -> u8 {
        match self {
            FlinkError::Profile(_)
            | FlinkError::Unsupported(_)
            | FlinkError::Usage(_)
            | FlinkError::Environment(_) => 2,
            FlinkError::Cluster(_) => 1,
            FlinkError::Taskbench(e) => e.exit_code(),
        }
    }
}

/// A Flink memory size (`32kb`, `32 kb`, `1mb`, `32768`) in bytes.
fn flink_memory_size(text: &str) -> Option<u64> {
    let t = text.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let shift = match unit.trim() {
        "" | "b" | "bytes" => 0,
        "k" | "kb" | "kibibytes" => 10,
        "m" | "mb" | "mebibytes" => 20,
        "g" | "gb" | "gibibytes" => 30,
        "t" | "tb" | "tebibytes" => 40,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// A remote cluster's network is its own: refuses a profile whose network
/// options differ from the cluster's (its configuration, else Flink's
/// defaults), naming the field and the option to set on the cluster.
pub fn check_cluster_network(
    spec: &JobSpec,
    config: &[(String, String)],
) -> Result<(), Unsupported> {
    let n = &spec.network;
    if n.memory.is_some() {
        return Err(Unsupported {
            field: "network.memory".into(),
            message: "a remote cluster's network memory is its TaskManagers' own (taskmanager.memory.network.*); leave it unset".into(),
        });
    }
    let value = |key: &str| {
        config
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let checks = [
        (
            "network.segment_size",
            "taskmanager.memory.segment-size",
            n.segment_size,
            value("taskmanager.memory.segment-size").map_or(Some(32 << 10), flink_memory_size),
        ),
        (
            "network.buffers_per_channel",
            "taskmanager.network.memory.buffers-per-channel",
            u64::from(n.buffers_per_channel),
            value("taskmanager.network.memory.buffers-per-channel")
                .map_or(Some(2), |v| v.trim().parse().ok()),
        ),
        (
            "network.floating_buffers",
            "taskmanager.network.memory.floating-buffers-per-gate",
            u64::from(n.floating_buffers),
            value("taskmanager.network.memory.floating-buffers-per-gate")
                .map_or(Some(8), |v| v.trim().parse().ok()),
        ),
        (
            "network.max_overdraft_buffers",
            "taskmanager.network.memory.max-overdraft-buffers-per-gate",
            u64::from(n.max_overdraft_buffers),
            value("taskmanager.network.memory.max-overdraft-buffers-per-gate")
                .map_or(Some(5), |v| v.trim().parse().ok()),
        ),
    ];
    let debloating = value("taskmanager.network.memory.buffer-debloat.enabled")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if n.debloat.is_some() && !debloating {
        return Err(Unsupported {
            field: "network.debloat".into(),
            message: "asks for buffer debloating, which the cluster's TaskManagers do not run: set taskmanager.network.memory.buffer-debloat.* on the cluster (or drop the table)".into(),
        });
    }
    for (field, key, wanted, cluster) in checks {
        if cluster != Some(wanted) {
            return Err(Unsupported {
                field: field.into(),
                message: format!(
                    "is {wanted}, but the cluster runs with {key} = {}: a TaskManager option, set it on the cluster (or drop the field)",
                    cluster.map_or("(unreadable)".to_string(), |c| c.to_string())
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flink_memory_sizes_parse() {
        for (text, bytes) in [
            ("32kb", Some(32768)),
            ("32 kb", Some(32768)),
            ("1mb", Some(1 << 20)),
            ("4096", Some(4096)),
            ("64 mebibytes", Some(64 << 20)),
            ("12 parsecs", None),
        ] {
            assert_eq!(flink_memory_size(text), bytes, "{text}");
        }
    }
}
