//! Flink's `StreamOneInputProcessor` / `StreamMultipleInputProcessor`: reads
//! a task's input gates into its operator chain, one buffer per call.

use std::time::Instant;

use super::barrier_handler::{BarrierAction, CheckpointBarrierHandler};
use super::{ChainError, OperatorChain};
use crate::checkpoint::{CheckpointBarrier, TaskCheckpointMetrics};
use crate::network::gate::GateError;
use crate::network::serde::RecordConsumer;
use crate::network::Event;
use crate::network::{InputGate, Poll};

/// Why processing input failed.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// An input channel carried a malformed stream.
    #[error(transparent)]
    Gate(#[from] GateError),
    /// The operator chain failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
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
        }
    }

    /// Aligns checkpoint barriers over every channel from now on.
    pub fn enable_checkpoints(&mut self) {
        self.barriers = Some(CheckpointBarrierHandler::new(
            self.gates.iter().map(|g| g.num_channels()),
        ));
    }

    /// Ends a checkpoint's alignment after its snapshot: every channel is
    /// read again.
    pub fn resume(&mut self) {
        self.gates.iter_mut().for_each(|g| g.unblock_all());
    }

    /// The coordinator aborted checkpoint `id`: an alignment of it ends.
    pub fn abort_checkpoint(&mut self, id: u64) {
        if let Some(h) = &mut self.barriers {
            if let BarrierAction::Abort(_) = h.on_abort(id) {
                self.resume();
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
                Poll::Event { channel, event } => return Ok(self.on_event(index, channel, event)),
                Poll::Finished => {
                    self.finished[index] = true;
                    self.remaining -= 1;
                    if self.remaining == 0 {
                        return Ok(InputStatus::EndOfInput);
                    }
                }
                Poll::Empty => {}
            }
        }
        Ok(InputStatus::NothingAvailable)
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
/// the rest of the buffer is dropped and the error returned.
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
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::checkpoint::{Alignment, CheckpointOptions};
    use crate::memory::MemoryConfig;
    use crate::network::{
        GateKey, NetworkConfig, PartitionKey, Partitioner, RecordWriter, ShuffleEnvironment,
    };
    use crate::streaming::{ChainEnd, SinkKind};
    use crate::sync::{Arc, Parker, WaitStrategy};

    /// Two producers, each wired to its own single-channel gate.
    fn two_inputs() -> (
        RecordWriter,
        RecordWriter,
        InputProcessor,
        Arc<ShuffleEnvironment>,
    ) {
        let env = Arc::new(
            ShuffleEnvironment::new(NetworkConfig {
                memory: MemoryConfig {
                    segment_size: 4096,
                    total_segments: 32,
                    huge_pages: false,
                },
                ..NetworkConfig::default()
            })
            .unwrap(),
        );
        let consumer = Arc::new(Parker::new());
        let mut writers = Vec::new();
        let mut gates = Vec::new();
        for i in 0..2 {
            env.register_partition(PartitionKey(i), 1).unwrap();
            env.register_gate(GateKey(i), 1, consumer.clone()).unwrap();
            env.connect(PartitionKey(i), 0, GateKey(i), 0).unwrap();
            gates.push(env.create_gate(GateKey(i)).unwrap());
            let partition = env
                .create_partition(
                    PartitionKey(i),
                    Arc::new(Parker::new()),
                    WaitStrategy::default(),
                )
                .unwrap();
            writers.push(RecordWriter::new(partition, Partitioner::Forward, 0));
        }
        let b = writers.pop().unwrap();
        let a = writers.pop().unwrap();
        (a, b, InputProcessor::new(gates, Instant::now()), env)
    }

    #[test]
    fn an_idle_input_never_stalls_the_other() {
        let (mut busy, mut idle, mut input, env) = two_inputs();
        let mut chain = OperatorChain::new(&[], ChainEnd::Sink(SinkKind::Checksum), Vec::new(), 64);
        for v in 0..1000u64 {
            busy.emit(v, &v.to_le_bytes()).unwrap();
        }
        busy.finish().unwrap();
        let mut turns = 0;
        while chain.sink_result().unwrap().records < 1000 {
            let status = input.process(&mut chain).unwrap();
            assert_ne!(
                status,
                InputStatus::EndOfInput,
                "the idle input is not finished"
            );
            turns += 1;
            assert!(turns < 10_000, "the busy input was stalled");
        }
        assert_eq!(
            chain.sink_result().unwrap().checksum,
            (0..1000u64).sum::<u64>()
        );
        // Drain the busy gate's end, then the idle input is all that is left.
        while input.process(&mut chain).unwrap() == InputStatus::MoreAvailable {}
        assert!(!input.is_input_available());
        idle.emit(7, &7u64.to_le_bytes()).unwrap();
        idle.finish().unwrap();
        assert!(input.is_input_available());
        let mut status = InputStatus::MoreAvailable;
        while status != InputStatus::EndOfInput {
            status = input.process(&mut chain).unwrap();
        }
        assert_eq!(chain.sink_result().unwrap().records, 1001);
        drop((busy, idle, input));
        assert!(env.segments().is_full());
    }

    fn barrier(id: u64, alignment: Alignment) -> Event {
        Event::CheckpointBarrier(CheckpointBarrier {
            id,
            timestamp: 0,
            options: CheckpointOptions {
                alignment,
                ..CheckpointOptions::default()
            },
        })
    }

    /// Runs the processor until it reports a checkpoint; the sink's
    /// checksum then.
    fn until_checkpoint(input: &mut InputProcessor, chain: &mut OperatorChain) -> (u64, u64) {
        for _ in 0..1000 {
            if let InputStatus::Checkpoint(b, _) = input.process(chain).unwrap() {
                return (b.id, chain.sink_result().unwrap().checksum);
            }
        }
        panic!("no checkpoint");
    }

    #[test]
    fn aligned_barriers_hold_back_what_follows_them_until_all_arrived() {
        let (mut a, mut b, mut input, env) = two_inputs();
        input.enable_checkpoints();
        let mut chain = OperatorChain::new(&[], ChainEnd::Sink(SinkKind::Checksum), Vec::new(), 64);
        for v in [1u64, 2] {
            a.emit(v, &v.to_le_bytes()).unwrap();
        }
        a.broadcast_event(barrier(1, Alignment::Aligned)).unwrap();
        a.emit(100, &100u64.to_le_bytes()).unwrap();
        a.flush_all();
        // Input b is behind: 100 must wait until b's barrier came.
        for _ in 0..20 {
            assert!(!matches!(
                input.process(&mut chain).unwrap(),
                InputStatus::Checkpoint(..)
            ));
        }
        assert_eq!(
            chain.sink_result().unwrap().checksum,
            3,
            "100 was held back"
        );
        b.emit(10, &10u64.to_le_bytes()).unwrap();
        b.broadcast_event(barrier(1, Alignment::Aligned)).unwrap();
        assert_eq!(until_checkpoint(&mut input, &mut chain), (1, 13));
        input.resume();
        a.finish().unwrap();
        b.finish().unwrap();
        while input.process(&mut chain).unwrap() != InputStatus::EndOfInput {}
        assert_eq!(chain.sink_result().unwrap().checksum, 113);
        drop((a, b, input));
        assert!(env.segments().is_full());
    }

    #[test]
    fn at_least_once_barriers_hold_nothing_back() {
        let (mut a, mut b, mut input, _env) = two_inputs();
        input.enable_checkpoints();
        let mut chain = OperatorChain::new(&[], ChainEnd::Sink(SinkKind::Checksum), Vec::new(), 64);
        a.broadcast_event(barrier(1, Alignment::AtLeastOnce))
            .unwrap();
        a.emit(100, &100u64.to_le_bytes()).unwrap();
        a.flush_all();
        // The record after a's barrier is read before b's barrier came.
        for _ in 0..10 {
            assert!(!matches!(
                input.process(&mut chain).unwrap(),
                InputStatus::Checkpoint(..)
            ));
        }
        assert_eq!(chain.sink_result().unwrap().checksum, 100);
        b.broadcast_event(barrier(1, Alignment::AtLeastOnce))
            .unwrap();
        assert_eq!(until_checkpoint(&mut input, &mut chain), (1, 100));
    }

    #[test]
    fn an_aborted_alignment_unblocks() {
        let (mut a, _b, mut input, _env) = two_inputs();
        input.enable_checkpoints();
        let mut chain = OperatorChain::new(&[], ChainEnd::Sink(SinkKind::Checksum), Vec::new(), 64);
        a.broadcast_event(barrier(1, Alignment::Aligned)).unwrap();
        a.emit(5, &5u64.to_le_bytes()).unwrap();
        a.flush_all();
        for _ in 0..10 {
            input.process(&mut chain).unwrap();
        }
        assert_eq!(chain.sink_result().unwrap().checksum, 0);
        input.abort_checkpoint(1);
        for _ in 0..10 {
            input.process(&mut chain).unwrap();
        }
        assert_eq!(chain.sink_result().unwrap().checksum, 5);
    }

    #[test]
    fn both_busy_inputs_take_turns() {
        let (mut a, mut b, mut input, _env) = two_inputs();
        let mut seen = Vec::new();
        let mut chain = OperatorChain::new(&[], ChainEnd::Sink(SinkKind::Checksum), Vec::new(), 64);
        for v in 0..4u64 {
            // Both inputs publish a record; each turn reads one input's
            // slice, and the inputs alternate.
            a.emit(v, &v.to_le_bytes()).unwrap();
            a.flush_all();
            b.emit(100 + v, &(100 + v).to_le_bytes()).unwrap();
            b.flush_all();
            for _ in 0..2 {
                let before = chain.sink_result().unwrap().checksum;
                assert_eq!(
                    input.process(&mut chain).unwrap(),
                    InputStatus::MoreAvailable
                );
                seen.push(chain.sink_result().unwrap().checksum - before);
            }
        }
        assert_eq!(seen, [0, 100, 1, 101, 2, 102, 3, 103]);
    }
}
