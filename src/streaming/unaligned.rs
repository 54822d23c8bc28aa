//! The consumer's side of an unaligned checkpoint (Flink's
//! `ChannelStateWriter` fed by the input channels): which channels still
//! owe their in-flight bytes, and the bytes collected so far.
//!
//! A producer announces checkpoint `n` on each channel with the stream
//! position its barrier cuts at ([`ChannelAvailability::announce`]), ahead
//! of everything queued. The first announcement a task sees starts the
//! checkpoint at once: the task snapshots, and each channel's in-flight
//! state is what lies between the task's read position and the barrier's:
//! copied from the queue without consuming it if that channel's
//! announcement is in, or captured while reading until it comes.
//!
//! [`ChannelAvailability::announce`]: crate::network::gate::ChannelAvailability::announce

use crate::checkpoint::{ChannelState, TaskCheckpointMetrics};
use crate::network::InputGate;

/// One unaligned checkpoint in progress.
#[derive(Debug)]
pub(crate) struct UnalignedCheckpoint {
    pub id: u64,
    pub metrics: TaskCheckpointMetrics,
    /// Per global channel: still capturing.
    pending: Vec<bool>,
    pending_count: usize,
    states: Vec<ChannelState>,
}

/// A channel's latest announcement: `(id, trigger timestamp, position)`.
pub(crate) type Announcement = (u64, u64, u64);

impl UnalignedCheckpoint {
    /// Starts checkpoint `id` over `gates` (global channel `k` of gate `g`
    /// is `offsets[g] + c`). A channel that ended, or that `arrived` says
    /// delivered its barrier in-band, owes nothing; one whose announcement
    /// of `id` is in gives its queued bytes up to the barrier now; the
    /// others capture what they read until their announcement comes.
    pub fn start(
        id: u64,
        metrics: TaskCheckpointMetrics,
        gates: &mut [InputGate],
        offsets: &[usize],
        announced: &[Announcement],
        arrived: impl Fn(usize) -> bool,
    ) -> Self {
        let total = announced.len();
        let mut this = Self {
            id,
            metrics,
            pending: vec![false; total],
            pending_count: 0,
            states: Vec::new(),
        };
        for (g, gate) in gates.iter_mut().enumerate() {
            for c in 0..gate.num_channels() {
                let k = offsets[g] + c;
                if gate.is_channel_finished(c) || arrived(k) {
                    continue;
                }
                if announced[k].0 == id {
                    let bytes = gate.in_flight(c, announced[k].2);
                    this.keep(g, c, bytes);
                } else {
                    gate.start_capture(c);
                    this.pending[k] = true;
                    this.pending_count += 1;
                }
            }
        }
        this
    }

    fn keep(&mut self, gate: usize, channel: usize, bytes: Vec<u8>) {
        if !bytes.is_empty() {
            self.metrics.persisted_in_flight_bytes += bytes.len() as u64;
            self.states.push(ChannelState {
                gate: gate as u32,
                channel: channel as u32,
                bytes,
            });
        }
    }

    /// Channel `c` of gate `g` (global `k`) reached the barrier at
    /// `position` (its announcement came, or it ended): its capture ends.
    pub fn finish_channel(
        &mut self,
        gate: &mut InputGate,
        g: usize,
        c: usize,
        k: usize,
        position: u64,
    ) {
        if !std::mem::take(&mut self.pending[k]) {
            return;
        }
        self.pending_count -= 1;
        let bytes = gate.finish_capture(c, position).unwrap_or_default();
        self.keep(g, c, bytes);
    }

    /// Whether global channel `k` still captures.
    pub fn is_pending(&self, k: usize) -> bool {
        self.pending[k]
    }

    /// Whether every channel's in-flight state is in.
    pub fn is_complete(&self) -> bool {
        self.pending_count == 0
    }

    /// Gives up: captures still running stop.
    pub fn abandon(self, gates: &mut [InputGate], offsets: &[usize]) {
        for (g, gate) in gates.iter_mut().enumerate() {
            for c in 0..gate.num_channels() {
                if self.pending[offsets[g] + c] {
                    let _ = gate.finish_capture(c, 0);
                }
            }
        }
    }

    /// The collected in-flight state and the metrics.
    pub fn into_parts(self) -> (Vec<ChannelState>, TaskCheckpointMetrics) {
        (self.states, self.metrics)
    }
}
