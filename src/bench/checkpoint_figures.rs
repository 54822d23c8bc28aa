//! A run's checkpoints as figures: counts, and each of Flink's checkpoint
//! metrics as median / p90 / max over the completed checkpoints.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::checkpoint::CheckpointStats;

/// Median, 90th percentile and maximum of one checkpoint metric.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Spread {
    /// Median.
    pub median: f64,
    /// 90th percentile (nearest rank).
    pub p90: f64,
    /// Largest.
    pub max: f64,
}

impl Spread {
    fn of(mut values: Vec<f64>) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        values.sort_by(f64::total_cmp);
        let at =
            |q: f64| values[((values.len() as f64 * q).ceil() as usize).clamp(1, values.len()) - 1];
        let median = if values.len() % 2 == 1 {
            values[values.len() / 2]
        } else {
            (values[values.len() / 2 - 1] + values[values.len() / 2]) / 2.0
        };
        Self {
            median,
            p90: at(0.9),
            max: *values.last().expect("not empty"),
        }
    }
}

/// Checkpoints of a repetition, or of every repetition together, with
/// Flink's metric names. Durations in milliseconds, sizes in bytes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CheckpointFigures {
    /// Checkpoints every task acknowledged.
    pub completed: u64,
    /// Checkpoints aborted (declined, expired, or cut short by the job's end).
    pub aborted: u64,
    /// Completed checkpoints not counted: `checkpoint.skip_first` per job,
    /// and those holding tasks that had finished (taken as the job winds
    /// down, not in the steady state measured).
    pub skipped: u64,
    /// Checkpoints taken unaligned (of those counted).
    pub unaligned: u64,
    /// One over the median end-to-end duration: flink-benchmarks'
    /// checkpointing figure (a checkpoint from trigger to completion is one
    /// operation).
    pub checkpoints_per_sec: f64,
    /// From trigger to the last acknowledgement persisted
    /// (`endToEndDuration`).
    pub end_to_end_ms: Spread,
    /// From trigger to the slowest task's first barrier
    /// (`checkpointStartDelayNanos`).
    pub start_delay_ms: Spread,
    /// The longest alignment (`alignmentDuration`).
    pub alignment_ms: Spread,
    /// The longest synchronous part (`syncDuration`).
    pub sync_ms: Spread,
    /// The longest asynchronous part (`asyncDuration`).
    pub async_ms: Spread,
    /// Snapshot bytes over all tasks (`checkpointedSize`).
    pub state_size: Spread,
    /// In-flight bytes persisted (`persistedData`).
    pub persisted_in_flight: Spread,
    /// Bytes processed during alignment (`processedData`).
    pub processed_in_flight: Spread,
}

impl CheckpointFigures {
    /// Figures of `stats` (a job's checkpoints, or several jobs'), the first
    /// `skip` completed ones of each job already left out by the caller.
    pub fn of(stats: &[CheckpointStats], skipped: u64) -> Self {
        let done: Vec<&CheckpointStats> = stats.iter().filter(|c| c.failure.is_none()).collect();
        let ms = |f: fn(&CheckpointStats) -> u64| {
            Spread::of(done.iter().map(|c| f(c) as f64 / 1e6).collect())
        };
        let bytes =
            |f: fn(&CheckpointStats) -> u64| Spread::of(done.iter().map(|c| f(c) as f64).collect());
        let end_to_end_ms = ms(|c| c.end_to_end_ns);
        Self {
            completed: done.len() as u64,
            aborted: (stats.len() - done.len()) as u64,
            skipped,
            unaligned: done.iter().filter(|c| c.unaligned).count() as u64,
            checkpoints_per_sec: if end_to_end_ms.median > 0.0 {
                1e3 / end_to_end_ms.median
            } else {
                0.0
            },
            end_to_end_ms,
            start_delay_ms: ms(|c| c.start_delay_ns),
            alignment_ms: ms(|c| c.alignment_ns),
            sync_ms: ms(|c| c.sync_ns),
            async_ms: ms(|c| c.async_ns),
            state_size: bytes(|c| c.state_size),
            persisted_in_flight: bytes(|c| c.persisted_in_flight_bytes),
            processed_in_flight: bytes(|c| c.processed_in_flight_bytes),
        }
    }

    /// A job's checkpoints without its first `skip` completed ones and
    /// without completed ones holding finished tasks.
    pub fn counted(stats: &[CheckpointStats], skip: u32) -> (Vec<CheckpointStats>, u64) {
        let mut left = skip;
        let mut skipped = 0;
        let kept = stats
            .iter()
            .filter(|c| {
                if c.failure.is_none() && (left > 0 || c.finished_tasks > 0) {
                    left = left.saturating_sub(1);
                    skipped += 1;
                    return false;
                }
                true
            })
            .cloned()
            .collect();
        (kept, skipped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(id: u64, e2e_ms: u64) -> CheckpointStats {
        CheckpointStats {
            id,
            end_to_end_ns: e2e_ms * 1_000_000,
            ..CheckpointStats::default()
        }
    }

    #[test]
    fn figures_count_completed_and_aborted_and_skip_the_first() {
        let mut stats: Vec<_> = (1..=5).map(|i| done(i, i)).collect();
        stats.push(CheckpointStats {
            failure: Some("expired".into()),
            ..done(6, 100)
        });
        // Taken as the job wound down, with a finished task in it.
        stats.push(CheckpointStats {
            finished_tasks: 1,
            ..done(7, 1)
        });
        let (kept, skipped) = CheckpointFigures::counted(&stats, 2);
        let f = CheckpointFigures::of(&kept, skipped);
        assert_eq!((f.completed, f.aborted, f.skipped), (3, 1, 3));
        // 3, 4, 5 ms: median 4 ms, 250 checkpoints/s.
        assert_eq!(f.end_to_end_ms.median, 4.0);
        assert_eq!(f.end_to_end_ms.max, 5.0);
        assert_eq!(f.checkpoints_per_sec, 250.0);
    }
}
