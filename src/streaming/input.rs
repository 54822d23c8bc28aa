//! Flink's `StreamOneInputProcessor` / `StreamMultipleInputProcessor`: reads
//! a task's input gates into its operator chain, one buffer per call.

use std::time::{Duration, Instant};

use super::barrier_handler::{BarrierAction, CheckpointBarrierHandler};
use super::unaligned::{Announcement, UnalignedCheckpoint};
use super::{ChainError, OperatorChain};
use crate::checkpoint::{
    Alignment, ChannelState, CheckpointBarrier, CheckpointOptions, TaskCheckpointMetrics,
};
use crate::metrics::AllocationCount;
use crate::network::gate::GateError;
use crate::network::serde::RecordConsumer;
use crate::network::Event;
use crate::network::{BufferDebloater, DebloatConfig, InputGate, Poll};

/// Why processing input failed.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// An input channel carried a malformed stream.
    #[error(transparent)]
    Gate(#[from] GateError),
    /// The operator chain failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// Restored in-flight bytes end inside a record.
    #[error("restored channel state is cut inside a record at byte {at}")]
    ChannelState {
        /// Where the cut record starts.
        at: usize,
    },
}

/// What one call found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputStatus {
    /// A buffer or event was processed; there may be more.
    MoreAvailable,
    /// No gate has anything now.
    NothingAvailable,
    /// Every gate is finished.
    EndOfInput,
    /// Every channel delivered checkpoint barrier `.0`: snapshot, forward
    /// the barrier, then [`resume`](InputProcessor::resume).
    Checkpoint(CheckpointBarrier, TaskCheckpointMetrics),
    /// A cancel marker of checkpoint `.0` arrived: forward it.
    CheckpointCanceled(u64),
    /// Unaligned checkpoint `.0` has every channel's in-flight state:
    /// [`take_channel_state`](InputProcessor::take_channel_state) and
    /// acknowledge.
    ChannelStateComplete(u64),
}

/// Reads one or more gates (one-input, two-input, N-input tasks) into a
/// chain. Gates take turns, and a gate with nothing is skipped, so an idle
/// input never stalls the others and a busy one cannot starve them.
#[derive(Debug)]
pub struct InputProcessor {
    gates: Vec<InputGate>,
    finished: Vec<bool>,
    remaining: usize,
    next: usize,
    epoch: Instant,
    barriers: Option<CheckpointBarrierHandler>,
    /// How this job's barriers align.
    mode: Alignment,
    /// First global channel index of each gate.
    offsets: Vec<usize>,
    /// Per global channel: its latest announcement.
    announced: Vec<Announcement>,
    /// Announcements taken from a gate, to handle (capacity: its channels).
    fresh: Vec<(usize, Announcement)>,
    unaligned: Option<UnalignedCheckpoint>,
    /// Allocations made for checkpoints (captures, copies of in-flight
    /// data): snapshot I/O, counted apart from the data path's.
    snapshot_allocations: u64,
    /// One per gate while buffer debloating is on.
    debloaters: Vec<BufferDebloater>,
}

impl InputProcessor {
    /// A processor over `gates`; `epoch` is the job's time origin (latency).
    pub fn new(gates: Vec<InputGate>, epoch: Instant) -> Self {
        let n = gates.len();
        Self {
            gates,
            finished: vec![false; n],
            remaining: n,
            next: 0,
            epoch,
            barriers: None,
            mode: Alignment::Aligned,
            offsets: Vec::new(),
            announced: Vec::new(),
            fresh: Vec::new(),
            unaligned: None,
            snapshot_allocations: 0,
            debloaters: Vec::new(),
        }
    }

    /// Debloats every gate's buffers (segments of `segment_size` bytes)
    /// from now on.
    pub fn enable_debloating(&mut self, config: DebloatConfig, segment_size: u32) {
        let now = Instant::now();
        self.debloaters = self
            .gates
            .iter()
            .map(|_| BufferDebloater::new(config, segment_size, now))
            .collect();
    }

    /// Recalculates the gates' buffer sizes once a period has passed (one
    /// clock read; nothing without debloating).
    #[inline]
    pub fn debloat_if_due(&mut self) {
        let Some(first) = self.debloaters.first() else {
            return;
        };
        let now = Instant::now();
        if now < first.due() {
            return;
        }
        for (d, gate) in self.debloaters.iter_mut().zip(&mut self.gates) {
            d.update(gate, now);
        }
    }

    /// The smallest buffer size the gates announced, bytes, and how many
    /// announcements they made (`None` without debloating).
    pub fn debloated(&self) -> Option<(u32, u64)> {
        let size = self.debloaters.iter().map(|d| d.buffer_size()).min()?;
        Some((size, self.debloaters.iter().map(|d| d.updates()).sum()))
    }

    /// Allocations made for checkpoints so far.
    pub fn snapshot_allocations(&self) -> u64 {
        self.snapshot_allocations
    }

    /// Runs `f`, counting its allocations as snapshot I/O.
    #[cold]
    fn snapshot_io<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        let before = AllocationCount::thread_now();
        let out = f(self);
        self.snapshot_allocations += AllocationCount::thread_now().since(before).allocations;
        out
    }

    /// Takes part in checkpoints whose barriers align as `mode`, from now
    /// on.
    pub fn enable_checkpoints(&mut self, mode: Alignment) {
        self.barriers = Some(CheckpointBarrierHandler::new(
            self.gates.iter().map(|g| g.num_channels()),
        ));
        self.mode = mode;
        let mut total = 0;
        for gate in &self.gates {
            self.offsets.push(total);
            total += gate.num_channels();
        }
        self.announced = vec![(0, 0, 0); total];
        let widest = self.gates.iter().map(|g| g.num_channels()).max();
        self.fresh = Vec::with_capacity(widest.unwrap_or(0));
    }

    /// The in-flight state of unaligned checkpoint `id`, once complete.
    pub fn take_channel_state(
        &mut self,
        id: u64,
    ) -> Option<(Vec<ChannelState>, TaskCheckpointMetrics)> {
        match &self.unaligned {
            Some(u) if u.id == id && u.is_complete() => {
                self.unaligned.take().map(UnalignedCheckpoint::into_parts)
            }
            _ => None,
        }
    }

    /// When an alignment turns unaligned, if one is under way with a
    /// timeout: the timeout counts from the checkpoint's trigger (the
    /// barrier's timestamp), so a barrier reaching a task later than that
    /// turns unaligned at once and a chain of tasks never adds up its
    /// stages' timeouts (Flink's `registerAlignmentTimer`: the delay is the
    /// timeout less the time since the checkpoint started).
    pub fn alignment_deadline(&self) -> Option<Instant> {
        let Alignment::AlignedWithTimeout { timeout_us } = self.mode else {
            return None;
        };
        let barrier = self.barriers.as_ref()?.pending_barrier()?;
        Some(
            self.epoch
                + Duration::from_nanos(barrier.timestamp)
                + Duration::from_micros(u64::from(timeout_us)),
        )
    }

    /// Turns an alignment whose timeout expired unaligned (its allocations
    /// counted as snapshot I/O).
    pub fn alignment_timeout(&mut self) -> Option<InputStatus> {
        self.alignment_deadline()?;
        self.snapshot_io(Self::check_alignment_timeout)
    }

    fn check_alignment_timeout(&mut self) -> Option<InputStatus> {
        if Instant::now() < self.alignment_deadline()? {
            return None;
        }
        self.alignment_turns_unaligned()
    }

    /// The alignment under way continues unaligned: channels whose barrier
    /// arrived owe nothing, the others are captured or copied.
    fn alignment_turns_unaligned(&mut self) -> Option<InputStatus> {
        let bytes_in = self.bytes_in();
        let handler = self.barriers.as_mut()?;
        let arrived: Vec<bool> = (0..self.announced.len())
            .map(|k| handler.arrived(k))
            .collect();
        let (barrier, metrics) = handler.take_over(bytes_in)?;
        self.resume();
        Some(self.start_unaligned(barrier, metrics, |k| arrived[k]))
    }

    /// The barrier an announcement of checkpoint `id` stands for.
    fn announced_barrier(&self, id: u64, timestamp: u64) -> CheckpointBarrier {
        CheckpointBarrier {
            id,
            timestamp,
            options: CheckpointOptions {
                alignment: self.mode,
                ..CheckpointOptions::default()
            },
        }
    }

    fn start_unaligned(
        &mut self,
        barrier: CheckpointBarrier,
        metrics: TaskCheckpointMetrics,
        arrived: impl Fn(usize) -> bool,
    ) -> InputStatus {
        if let Some(old) = self.unaligned.take() {
            old.abandon(&mut self.gates, &self.offsets);
        }
        let u = UnalignedCheckpoint::start(
            barrier.id,
            metrics,
            &mut self.gates,
            &self.offsets,
            &self.announced,
            arrived,
        );
        self.unaligned = Some(u);
        InputStatus::Checkpoint(barrier, metrics)
    }

    /// Takes gate `gate`'s announcements: the first of a checkpoint starts
    /// it (unaligned), later ones end their channel's capture.
    #[cold]
    fn take_announcements(&mut self, gate: usize) -> Option<InputStatus> {
        let mut fresh = std::mem::take(&mut self.fresh);
        let offset = self.offsets[gate];
        let announced = &self.announced;
        self.gates[gate].announcements(|c, a| {
            if a.0 > announced[offset + c].0 {
                fresh.push((c, a));
            }
        });
        let mut status = None;
        for &(c, a) in &fresh {
            let k = offset + c;
            self.announced[k] = a;
            let (id, timestamp, position) = a;
            let starts = self.mode == Alignment::Unaligned
                && self.unaligned.as_ref().is_none_or(|u| u.id < id);
            if let Alignment::AlignedWithTimeout { .. } = self.mode {
                // The alignment is watched from the announcement, which
                // comes ahead of the queued barrier.
                if self.unaligned.as_ref().is_none_or(|u| u.id < id) {
                    let now_ns = self.epoch.elapsed().as_nanos() as u64;
                    let bytes_in = self.bytes_in();
                    let barrier = self.announced_barrier(id, timestamp);
                    if let Some(h) = &mut self.barriers {
                        h.start_announced(barrier, now_ns, bytes_in);
                    }
                }
            }
            if starts && self.barriers.as_ref().and_then(|h| h.pending()) == Some(id) {
                // Pointwise channels delivered their aligned barriers
                // first and are blocked: the checkpoint goes unaligned from
                // here, and those channels owe nothing more.
                if let Some(started) = self.alignment_turns_unaligned() {
                    status = Some(started);
                    continue;
                }
            }
            if starts {
                if let Some(h) = &mut self.barriers {
                    h.skip(id);
                }
                let now_ns = self.epoch.elapsed().as_nanos() as u64;
                let barrier = self.announced_barrier(id, timestamp);
                let metrics = TaskCheckpointMetrics {
                    checkpoint_id: id,
                    start_delay_ns: now_ns.saturating_sub(timestamp),
                    unaligned: true,
                    ..TaskCheckpointMetrics::default()
                };
                status = Some(self.start_unaligned(barrier, metrics, |_| false));
            } else if let Some(u) = self.unaligned.as_mut().filter(|u| u.id == id) {
                u.finish_channel(&mut self.gates[gate], gate, c, k, position);
                if u.is_complete() && status.is_none() {
                    status = Some(InputStatus::ChannelStateComplete(id));
                }
            }
        }
        fresh.clear();
        self.fresh = fresh;
        status
    }

    /// A channel ended: an unaligned capture waiting for it ends too.
    fn end_capture(&mut self, gate: usize, channel: usize) -> Option<InputStatus> {
        let u = self.unaligned.as_mut()?;
        let k = self.offsets[gate] + channel;
        if !u.is_pending(k) {
            return None;
        }
        let position = self.gates[gate].position(channel);
        u.finish_channel(&mut self.gates[gate], gate, channel, k, position);
        u.is_complete()
            .then_some(InputStatus::ChannelStateComplete(u.id))
    }

    /// Ends a checkpoint's alignment after its snapshot: every channel is
    /// read again.
    pub fn resume(&mut self) {
        self.gates.iter_mut().for_each(|g| g.unblock_all());
    }

    /// The coordinator aborted checkpoint `id`: an alignment of it ends,
    /// and so does an unaligned capture of it.
    pub fn abort_checkpoint(&mut self, id: u64) {
        if let Some(h) = &mut self.barriers {
            if let BarrierAction::Abort(_) = h.on_abort(id) {
                self.resume();
            }
        }
        if self.unaligned.as_ref().is_some_and(|u| u.id <= id) {
            if let Some(u) = self.unaligned.take() {
                u.abandon(&mut self.gates, &self.offsets);
            }
        }
    }

    fn bytes_in(&self) -> u64 {
        self.gates.iter().map(|g| g.bytes_in()).sum()
    }

    /// An event of `gate`'s `channel`, as the barrier handler sees it.
    #[cold]
    fn on_event(&mut self, gate: usize, channel: usize, event: Event) -> InputStatus {
        if self.barriers.is_none() {
            return InputStatus::MoreAvailable;
        }
        if let Event::EndOfPartition = event {
            if let Some(status) = self.end_capture(gate, channel) {
                // The snapshot is whole; alignment bookkeeping follows on
                // the next event.
                if let Some(h) = &mut self.barriers {
                    let _ = h.on_channel_ended(gate, channel, self.gates[gate].bytes_in());
                }
                return status;
            }
        }
        if self.unaligned.is_some() {
            // An in-band barrier follows its announcement: take it first.
            if let Some(status) = self.take_announcements(gate) {
                return status;
            }
        }
        if let Event::CheckpointBarrier(b) = event {
            if self.unaligned.as_ref().is_some_and(|u| u.id == b.id) {
                // A pointwise channel's in-band barrier, after the
                // checkpoint went unaligned on another channel: what it
                // delivered before the barrier was captured; that ends here.
                return self
                    .end_capture(gate, channel)
                    .unwrap_or(InputStatus::MoreAvailable);
            }
        }
        let bytes_in = self.bytes_in();
        let handler = self.barriers.as_mut().expect("checked");
        let action = match event {
            Event::CheckpointBarrier(barrier) => {
                let now_ns = self.epoch.elapsed().as_nanos() as u64;
                handler.on_barrier(gate, channel, barrier, now_ns, bytes_in)
            }
            Event::EndOfPartition => handler.on_channel_ended(gate, channel, bytes_in),
            Event::CancelCheckpointMarker(marker) => {
                let _ = handler.on_abort(marker.id);
                self.resume();
                return InputStatus::CheckpointCanceled(marker.id);
            }
            Event::EndOfData => BarrierAction::None,
        };
        match action {
            BarrierAction::None => {}
            BarrierAction::Block { gate, channel } => self.gates[gate].block(channel),
            BarrierAction::Abort(_) => self.resume(),
            BarrierAction::AbortAndBlock { gate, channel, .. } => {
                self.resume();
                self.gates[gate].block(channel);
            }
            BarrierAction::Snapshot(barrier, metrics) => {
                return InputStatus::Checkpoint(barrier, metrics)
            }
        }
        InputStatus::MoreAvailable
    }

    /// Processes one buffer or event from the next gate with input.
    #[inline]
    pub fn process(&mut self, chain: &mut OperatorChain) -> Result<InputStatus, InputError> {
        if self.remaining == 0 {
            return Ok(InputStatus::EndOfInput);
        }
        if chain.measures_latency() {
            chain.set_clock(self.epoch.elapsed().as_nanos() as u64);
        }
        if self.barriers.is_some() {
            if let Some(status) = self.poll_checkpoints() {
                return Ok(status);
            }
            if self.unaligned.is_some() {
                // Reads capture in-flight bytes meanwhile.
                return self.snapshot_io(|this| this.process_gates(chain));
            }
        }
        self.process_gates(chain)
    }

    /// [`process`](Self::process) after the checkpoint checks.
    #[inline(always)]
    fn process_gates(&mut self, chain: &mut OperatorChain) -> Result<InputStatus, InputError> {
        let n = self.gates.len();
        for _ in 0..n {
            let index = self.next;
            self.next = if index + 1 == n { 0 } else { index + 1 };
            if self.finished[index] {
                continue;
            }
            let mut input = ChainInput {
                chain: &mut *chain,
                failed: None,
            };
            let poll = self.gates[index].poll_into(&mut input)?;
            if let Some(e) = input.failed {
                return Err(e.into());
            }
            match poll {
                Poll::Records { .. } => return Ok(InputStatus::MoreAvailable),
                Poll::Event { channel, event } => {
                    return Ok(self.snapshot_io(|this| this.on_event(index, channel, event)))
                }
                Poll::Finished => {
                    self.finished[index] = true;
                    self.remaining -= 1;
                    if self.remaining == 0 {
                        return Ok(InputStatus::EndOfInput);
                    }
                }
                Poll::Empty => {}
                Poll::Priority => {
                    let status = self.snapshot_io(|this| this.take_announcements(index));
                    return Ok(status.unwrap_or(InputStatus::MoreAvailable));
                }
            }
        }
        Ok(InputStatus::NothingAvailable)
    }

    /// Whether a barrier was announced on some gate and not taken yet
    /// (false without checkpoints).
    #[inline]
    pub fn has_priority(&self) -> bool {
        self.barriers.is_some() && self.gates.iter().any(|g| g.has_priority())
    }

    /// Announcements waiting on any gate, and an alignment timeout.
    #[inline]
    pub fn poll_checkpoints(&mut self) -> Option<InputStatus> {
        for g in 0..self.gates.len() {
            if self.gates[g].has_priority() {
                if let Some(status) = self.snapshot_io(|this| this.take_announcements(g)) {
                    return Some(status);
                }
            }
        }
        self.alignment_timeout()
    }

    /// Replays a restored channel's in-flight bytes (whole serialized
    /// records) into `chain`, before any new input (Flink's recovered
    /// channel state).
    pub fn replay(chain: &mut OperatorChain, bytes: &[u8]) -> Result<(), InputError> {
        let mut at = 0;
        while at < bytes.len() {
            let header = bytes
                .get(at..at + 4)
                .ok_or(InputError::ChannelState { at })?;
            let len = u32::from_le_bytes(header.try_into().expect("4 bytes")) as usize;
            let record = bytes
                .get(at + 4..at + 4 + len)
                .ok_or(InputError::ChannelState { at })?;
            chain.process(record)?;
            at += 4 + len;
        }
        Ok(())
    }

    /// Whether some unfinished gate has input (the park re-check).
    #[inline]
    pub fn is_input_available(&self) -> bool {
        self.gates
            .iter()
            .zip(&self.finished)
            .any(|(gate, &finished)| !finished && gate.has_input())
    }

    /// The gates.
    pub fn gates(&self) -> &[InputGate] {
        &self.gates
    }
}

/// The chain as a deserializer's consumer: runs of 8-byte records take the
/// chain's batch path, other records go one at a time. After a chain error
/// the rest of the buffer is dropped and the error returned. Once an output
/// is unavailable, the rest of the buffer waits for the next turn (Flink's
/// input loop checks its outputs between records), so the task waits softly
/// for them rather than blocking inside an emit.
struct ChainInput<'a> {
    chain: &'a mut OperatorChain,
    failed: Option<ChainError>,
}

impl RecordConsumer for ChainInput<'_> {
    #[inline(always)]
    fn record(&mut self, record: &[u8]) {
        if self.failed.is_none() {
            if let Err(e) = self.chain.process(record) {
                self.failed = Some(e);
            }
        }
    }

    #[inline(always)]
    fn values(&mut self, values: &mut [u64]) {
        if self.failed.is_none() {
            if let Err(e) = self.chain.process_values(values) {
                self.failed = Some(e);
            }
        }
    }

    #[inline(always)]
    fn should_yield(&self) -> bool {
        !self.chain.outputs_available()
    }
}

#[cfg(all(test, not(loom)))]
#[path = "input_tests.rs"]
mod tests;
