//! A profile's `[checkpoint]` table: Flink's checkpointing configuration
//! (`execution.checkpointing.*`) and restart strategy.

use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::error::invalid;
use super::error::ProfileError;
use super::Profile;
use crate::bench::units::Span;
use crate::checkpoint::{
    Alignment, CheckpointOptions, CheckpointType, CheckpointingConfig, RestartStrategy,
};

/// How barriers align (Flink's checkpointing mode and
/// `execution.checkpointing.unaligned.enabled`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CheckpointMode {
    /// Exactly-once, aligned.
    Aligned,
    /// Exactly-once, unaligned: barriers overtake in-flight data, which is
    /// persisted.
    Unaligned,
    /// At-least-once: barriers never block a channel.
    AtLeastOnce,
}

/// Checkpointing and restarts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    default,
    expecting = "a [checkpoint] table (interval, mode, timeout, …)"
)]
pub struct CheckpointSection {
    /// From one trigger to the next (Flink's `execution.checkpointing.interval`);
    /// "0ms": the next checkpoint starts `min_pause` after the last ended.
    pub interval: Span,
    /// aligned, unaligned or at-least-once.
    pub mode: CheckpointMode,
    /// Aligned only: a checkpoint still aligning this long after its
    /// trigger turns unaligned (Flink's `aligned-checkpoint-timeout`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aligned_timeout: Option<Span>,
    /// A checkpoint not complete after this is aborted.
    pub timeout: Span,
    /// At least this long between one checkpoint's end and the next
    /// trigger (Flink's `min-pause`).
    pub min_pause: Span,
    /// Store checkpoints in this directory (one subdirectory per run,
    /// `chk-N/` each); unset: in memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// Restarts after a failure (fixed delay; 0: a failure fails the job).
    pub restart_attempts: u32,
    /// Wait before each restart.
    pub restart_delay: Span,
    /// Checkpoints that may fail in a row (expired, or their files could
    /// not be written) before the job fails and restarts (Flink's
    /// `execution.checkpointing.tolerable-failed-checkpoints`; 0, Flink's
    /// default: the first fails it).
    pub tolerable_failed_checkpoints: u32,
    /// Sources induce checkpoint `n` themselves after `n ×` this many
    /// records each (Flink's `ExternallyInducedSource`); the interval is
    /// then not used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub induced_every: Option<u64>,
    /// Checkpoints not counted at the start of each job, taken while
    /// back-pressure builds up (flink-benchmarks times checkpoints once it
    /// is established).
    pub skip_first: u32,
}

impl Default for CheckpointSection {
    fn default() -> Self {
        Self {
            interval: Span(Duration::from_millis(100)),
            mode: CheckpointMode::Aligned,
            aligned_timeout: None,
            timeout: Span(Duration::from_secs(600)),
            min_pause: Span(Duration::ZERO),
            dir: None,
            restart_attempts: 0,
            restart_delay: Span(Duration::ZERO),
            tolerable_failed_checkpoints: 0,
            induced_every: None,
            skip_first: 0,
        }
    }
}

/// The most restarts a profile may ask for.
pub const MAX_RESTARTS: u32 = 1000;

/// The most checkpoint failures in a row a profile may tolerate.
pub const MAX_TOLERABLE_FAILURES: u32 = 1_000_000;

/// The most a checkpoint file's path adds to `checkpoint.dir`:
/// `/job-<ns>-<pid>` (36), `/chk-<id>` (25) and `/task-<v>-<s>.bin` (31).
const RUN_FILE_SUFFIX: usize = 92;

impl CheckpointSection {
    /// The engine's configuration.
    pub fn config(&self) -> CheckpointingConfig {
        let alignment = match (self.mode, self.aligned_timeout) {
            (CheckpointMode::Aligned, None) => Alignment::Aligned,
            (CheckpointMode::Aligned, Some(t)) => Alignment::AlignedWithTimeout {
                timeout_us: u32::try_from(t.0.as_micros()).unwrap_or(u32::MAX),
            },
            (CheckpointMode::Unaligned, _) => Alignment::Unaligned,
            (CheckpointMode::AtLeastOnce, _) => Alignment::AtLeastOnce,
        };
        CheckpointingConfig {
            interval: match self.induced_every {
                Some(_) => None,
                None => Some(self.interval.0),
            },
            timeout: self.timeout.0,
            min_pause: self.min_pause.0,
            options: CheckpointOptions {
                kind: CheckpointType::Checkpoint,
                alignment,
            },
            tolerable_failures: self.tolerable_failed_checkpoints,
            restart: match self.restart_attempts {
                0 => RestartStrategy::None,
                attempts => RestartStrategy::FixedDelay {
                    attempts,
                    delay: self.restart_delay.0,
                },
            },
        }
    }
}

impl Profile {
    /// Range checks of `[checkpoint]`.
    pub(super) fn check_checkpoint(&self) -> Result<(), ProfileError> {
        let Some(c) = &self.checkpoint else {
            return Ok(());
        };
        let hour = Duration::from_secs(3600);
        for (field, span) in [
            ("checkpoint.interval", c.interval),
            ("checkpoint.min_pause", c.min_pause),
            ("checkpoint.restart_delay", c.restart_delay),
        ] {
            if span.0 > hour {
                return Err(invalid(field, format!("{span} is over an hour")));
            }
        }
        if c.timeout.0 < Duration::from_millis(1) || c.timeout.0 > Duration::from_secs(24 * 3600) {
            return Err(invalid(
                "checkpoint.timeout",
                format!("{}: use from 1ms to 24h", c.timeout),
            ));
        }
        if let Some(t) = c.aligned_timeout {
            if c.mode != CheckpointMode::Aligned {
                return Err(invalid(
                    "checkpoint.aligned_timeout",
                    "only an aligned checkpoint turns unaligned after a timeout",
                ));
            }
            if t.0 > hour {
                return Err(invalid(
                    "checkpoint.aligned_timeout",
                    format!("{t} is over an hour"),
                ));
            }
        }
        if let Some(n) = c.induced_every {
            if n == 0 || n > super::MAX_RECORDS {
                return Err(invalid(
                    "checkpoint.induced_every",
                    format!("{n}: use 1 to {} records", super::MAX_RECORDS),
                ));
            }
        }
        if c.restart_attempts > MAX_RESTARTS {
            return Err(invalid(
                "checkpoint.restart_attempts",
                format!("{}: use 0 to {MAX_RESTARTS}", c.restart_attempts),
            ));
        }
        if c.tolerable_failed_checkpoints > MAX_TOLERABLE_FAILURES {
            return Err(invalid(
                "checkpoint.tolerable_failed_checkpoints",
                format!(
                    "{}: use 0 to {MAX_TOLERABLE_FAILURES}",
                    c.tolerable_failed_checkpoints
                ),
            ));
        }
        if let Some(dir) = &c.dir {
            if dir.as_os_str().is_empty() {
                return Err(invalid("checkpoint.dir", "an empty path"));
            }
            let len = dir.as_os_str().len();
            if len + RUN_FILE_SUFFIX > libc::PATH_MAX as usize - 1 {
                return Err(invalid(
                    "checkpoint.dir",
                    format!(
                        "{len} bytes long: the files under it (a run's directory, \
                         chk-N and a task file add up to {RUN_FILE_SUFFIX} bytes) would pass \
                         the system's limit of {} bytes on a path",
                        libc::PATH_MAX
                    ),
                ));
            }
            if let Some(problem) = crate::files::directory_problem(dir) {
                return Err(invalid("checkpoint.dir", problem));
            }
            if dir.to_string_lossy().chars().any(char::is_control) {
                return Err(invalid(
                    "checkpoint.dir",
                    "contains a control character; name a directory without one",
                ));
            }
        }
        Ok(())
    }
}
