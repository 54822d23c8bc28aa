//! Flink's `SingleCheckpointBarrierHandler` (aligned, exactly-once) and
//! `CheckpointBarrierTracker` (at-least-once), over every channel of every
//! input gate of one task.
//!
//! Aligned: the first barrier of checkpoint `n` starts the alignment; each
//! channel that delivers it is blocked, so nothing after its barrier is read
//! before the snapshot; when every open channel has delivered it (a channel
//! that ended counts as delivered), the task snapshots, forwards the barrier
//! and unblocks. A newer barrier, or a cancel marker or abort of the current
//! one, ends an alignment without a snapshot. At-least-once: channels are
//! counted and never blocked.

use std::time::Instant;

use crate::checkpoint::{CheckpointBarrier, TaskCheckpointMetrics};

/// What a barrier, a finished channel or a cancellation asks of the task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarrierAction {
    /// Nothing more (keep reading).
    None,
    /// Block this gate's channel until the alignment ends.
    Block {
        /// The gate.
        gate: usize,
        /// The channel in it.
        channel: usize,
    },
    /// Every channel delivered the barrier: snapshot, forward it, unblock.
    Snapshot(CheckpointBarrier, TaskCheckpointMetrics),
    /// The alignment of this checkpoint ended without a snapshot: unblock.
    Abort(u64),
    /// A newer barrier ended alignment `aborted` (unblock everything) and
    /// starts its own on this channel (then block it).
    AbortAndBlock {
        /// The checkpoint given up.
        aborted: u64,
        /// The gate.
        gate: usize,
        /// The channel in it.
        channel: usize,
    },
}

#[derive(Debug)]
struct Alignment {
    barrier: CheckpointBarrier,
    started: Instant,
    arrived: usize,
    bytes_at_start: u64,
    start_delay_ns: u64,
}

/// One task's barrier alignment state.
#[derive(Debug)]
pub struct CheckpointBarrierHandler {
    /// First global channel index of each gate.
    offsets: Vec<usize>,
    /// Per global channel: delivered the current barrier.
    arrived: Vec<bool>,
    /// Per global channel: ended.
    ended: Vec<bool>,
    open: usize,
    current: Option<Alignment>,
    /// The highest checkpoint id started (later barriers of it, or of older
    /// ones, are stale).
    latest: u64,
}

impl CheckpointBarrierHandler {
    /// A handler over gates of `channels[g]` channels each.
    pub fn new(channels: impl IntoIterator<Item = usize>) -> Self {
        let mut offsets = Vec::new();
        let mut total = 0;
        for n in channels {
            offsets.push(total);
            total += n;
        }
        Self {
            offsets,
            arrived: vec![false; total],
            ended: vec![false; total],
            open: total,
            current: None,
            latest: 0,
        }
    }

    /// The checkpoint being aligned, if any.
    pub fn pending(&self) -> Option<u64> {
        self.current.as_ref().map(|a| a.barrier.id)
    }

    /// The barrier being aligned, if any.
    pub fn pending_barrier(&self) -> Option<&CheckpointBarrier> {
        self.current.as_ref().map(|a| &a.barrier)
    }

    /// Whether global channel `k` delivered the current barrier.
    pub fn arrived(&self, k: usize) -> bool {
        self.arrived[k]
    }

    /// Ends the current alignment so it continues unaligned (its timeout
    /// expired): the barrier and the metrics so far. Later barriers of it
    /// are stale.
    pub fn take_over(
        &mut self,
        bytes_in: u64,
    ) -> Option<(CheckpointBarrier, TaskCheckpointMetrics)> {
        let current = self.current.take()?;
        self.arrived.iter_mut().for_each(|a| *a = false);
        Some((
            current.barrier,
            TaskCheckpointMetrics {
                checkpoint_id: current.barrier.id,
                start_delay_ns: current.start_delay_ns,
                alignment_ns: current.started.elapsed().as_nanos() as u64,
                processed_in_flight_bytes: bytes_in - current.bytes_at_start,
                unaligned: true,
                ..TaskCheckpointMetrics::default()
            },
        ))
    }

    /// Starts aligning `barrier` on its announcement, before any of it
    /// arrived in-band (upstream announced it; Flink's `EventAnnouncement`
    /// of a queued barrier), so its alignment timeout is watched from now.
    pub fn start_announced(&mut self, barrier: CheckpointBarrier, now_ns: u64, bytes_in: u64) {
        if barrier.id <= self.latest {
            return;
        }
        self.begin(barrier, now_ns, bytes_in);
    }

    /// Starts aligning `barrier`, no channel arrived yet.
    fn begin(&mut self, barrier: CheckpointBarrier, now_ns: u64, bytes_in: u64) {
        self.arrived.iter_mut().for_each(|a| *a = false);
        self.latest = barrier.id;
        self.current = Some(Alignment {
            barrier,
            started: Instant::now(),
            arrived: 0,
            bytes_at_start: bytes_in,
            start_delay_ns: now_ns.saturating_sub(barrier.timestamp),
        });
    }

    /// Checkpoint `id` is taken unaligned from an announcement: barriers of
    /// it that arrive in-band later are stale.
    pub fn skip(&mut self, id: u64) {
        self.latest = self.latest.max(id);
    }

    /// Barrier `barrier` arrived on `gate`'s `channel`; `now_ns` is the job
    /// clock (start delay), `bytes_in` the task's bytes read so far.
    pub fn on_barrier(
        &mut self,
        gate: usize,
        channel: usize,
        barrier: CheckpointBarrier,
        now_ns: u64,
        bytes_in: u64,
    ) -> BarrierAction {
        let index = self.offsets[gate] + channel;
        let mut aborted = None;
        if barrier.id > self.latest {
            // A newer checkpoint overtakes an unfinished alignment.
            aborted = self.current.take().map(|old| old.barrier.id);
            self.begin(barrier, now_ns, bytes_in);
        }
        let aborted_only = aborted.map_or(BarrierAction::None, BarrierAction::Abort);
        let Some(current) = &mut self.current else {
            return aborted_only; // stale: its checkpoint was aborted or done
        };
        if current.barrier.id != barrier.id || self.arrived[index] {
            return aborted_only;
        }
        self.arrived[index] = true;
        current.arrived += 1;
        if current.arrived >= self.open {
            // (With an older alignment pending, this channel could not be
            // the last: the caller unblocks after the snapshot anyway.)
            return self.finish(bytes_in);
        }
        match (aborted, barrier.options.alignment.blocks()) {
            (Some(aborted), true) => BarrierAction::AbortAndBlock {
                aborted,
                gate,
                channel,
            },
            (None, true) => BarrierAction::Block { gate, channel },
            (_, false) => aborted_only,
        }
    }

    /// `gate`'s `channel` ended: it no longer takes part in alignments.
    pub fn on_channel_ended(
        &mut self,
        gate: usize,
        channel: usize,
        bytes_in: u64,
    ) -> BarrierAction {
        let index = self.offsets[gate] + channel;
        if std::mem::replace(&mut self.ended[index], true) {
            return BarrierAction::None;
        }
        self.open -= 1;
        if self.arrived[index] {
            // It delivered the barrier before ending: it counted already.
            if let Some(current) = &mut self.current {
                current.arrived -= 1;
            }
        }
        match &self.current {
            Some(current) if current.arrived >= self.open => self.finish(bytes_in),
            _ => BarrierAction::None,
        }
    }

    /// Checkpoint `id` was canceled (a cancel marker, or the coordinator's
    /// abort): an alignment of it, or of an older one, ends.
    pub fn on_abort(&mut self, id: u64) -> BarrierAction {
        self.latest = self.latest.max(id);
        match &self.current {
            Some(current) if current.barrier.id <= id => {
                let id = current.barrier.id;
                self.current = None;
                self.arrived.iter_mut().for_each(|a| *a = false);
                BarrierAction::Abort(id)
            }
            _ => BarrierAction::None,
        }
    }

    fn finish(&mut self, bytes_in: u64) -> BarrierAction {
        let current = self.current.take().expect("an alignment");
        self.arrived.iter_mut().for_each(|a| *a = false);
        BarrierAction::Snapshot(
            current.barrier,
            TaskCheckpointMetrics {
                checkpoint_id: current.barrier.id,
                start_delay_ns: current.start_delay_ns,
                alignment_ns: current.started.elapsed().as_nanos() as u64,
                processed_in_flight_bytes: bytes_in - current.bytes_at_start,
                ..TaskCheckpointMetrics::default()
            },
        )
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::checkpoint::{Alignment as Mode, CheckpointOptions, CheckpointType};

    fn barrier(id: u64, alignment: Mode) -> CheckpointBarrier {
        CheckpointBarrier {
            id,
            timestamp: 0,
            options: CheckpointOptions {
                kind: CheckpointType::Checkpoint,
                alignment,
            },
        }
    }

    #[test]
    fn aligned_blocks_each_channel_until_the_last_barrier() {
        // Two gates: 2 channels and 1 channel.
        let mut h = CheckpointBarrierHandler::new([2, 1]);
        let b = barrier(1, Mode::Aligned);
        assert_eq!(
            h.on_barrier(0, 1, b, 0, 0),
            BarrierAction::Block {
                gate: 0,
                channel: 1
            }
        );
        // A second barrier on the same channel changes nothing.
        assert_eq!(h.on_barrier(0, 1, b, 0, 0), BarrierAction::None);
        assert_eq!(
            h.on_barrier(1, 0, b, 0, 10),
            BarrierAction::Block {
                gate: 1,
                channel: 0
            }
        );
        match h.on_barrier(0, 0, b, 5, 30) {
            BarrierAction::Snapshot(got, m) => {
                assert_eq!(got, b);
                assert_eq!((m.checkpoint_id, m.processed_in_flight_bytes), (1, 30));
                assert_eq!(m.start_delay_ns, 0, "measured at the first barrier");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(h.pending(), None);
        // A late barrier of a finished checkpoint is stale.
        assert_eq!(h.on_barrier(0, 0, b, 0, 0), BarrierAction::None);
    }

    #[test]
    fn at_least_once_counts_without_blocking() {
        let mut h = CheckpointBarrierHandler::new([3]);
        let b = barrier(4, Mode::AtLeastOnce);
        assert_eq!(h.on_barrier(0, 0, b, 0, 0), BarrierAction::None);
        assert_eq!(h.on_barrier(0, 2, b, 0, 0), BarrierAction::None);
        assert!(matches!(
            h.on_barrier(0, 1, b, 0, 0),
            BarrierAction::Snapshot(..)
        ));
    }

    #[test]
    fn an_ended_channel_counts_as_aligned() {
        let mut h = CheckpointBarrierHandler::new([2]);
        let b = barrier(1, Mode::Aligned);
        assert!(matches!(
            h.on_barrier(0, 0, b, 0, 0),
            BarrierAction::Block { .. }
        ));
        assert!(matches!(
            h.on_channel_ended(0, 1, 0),
            BarrierAction::Snapshot(..)
        ));
        // With one channel left, the next checkpoint needs only it.
        assert!(matches!(
            h.on_barrier(0, 0, barrier(2, Mode::Aligned), 0, 0),
            BarrierAction::Snapshot(..)
        ));
    }

    #[test]
    fn a_newer_barrier_or_an_abort_ends_the_alignment() {
        let mut h = CheckpointBarrierHandler::new([2]);
        h.on_barrier(0, 0, barrier(1, Mode::Aligned), 0, 0);
        assert_eq!(
            h.on_barrier(0, 1, barrier(2, Mode::Aligned), 0, 0),
            BarrierAction::AbortAndBlock {
                aborted: 1,
                gate: 0,
                channel: 1
            }
        );
        assert_eq!(h.pending(), Some(2));
        assert_eq!(h.on_abort(2), BarrierAction::Abort(2));
        // Barriers of the aborted checkpoint that arrive later are stale.
        assert_eq!(
            h.on_barrier(0, 0, barrier(2, Mode::Aligned), 0, 0),
            BarrierAction::None
        );
        assert_eq!(h.pending(), None);
    }
}
