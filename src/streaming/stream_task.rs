//! Flink's `StreamTask` and its kinds: `SourceStreamTask`,
//! `OneInputStreamTask`, `TwoInputStreamTask`, `MultipleInputStreamTask`.
//!
//! A stream task is the mailbox loop's default action: a source emits one
//! batch per turn, an input task processes one buffer per turn, and both
//! push records through their operator chain into a sink or the task's
//! record writers.

use std::time::{Duration, Instant};

use super::{
    ChainEnd, InputError, InputProcessor, InputStatus, OperatorChain, OperatorSpec, SinkResult,
    SourceFunction, SourceSpec, SourceStatus,
};
use super::{ChainError, RestoreError};
use crate::checkpoint::{
    Alignment, CancelCheckpointMarker, ChannelState, CheckpointBarrier, CheckpointFailureReason,
    StateReader, StateWriter, TaskCheckpointMetrics, TaskSnapshot, TaskStateManager,
};
use crate::mailbox::{ActionStatus, LoopExit, Mail, MailboxDefaultAction, MailboxProcessor};
use crate::metrics::AllocationCount;
use crate::network::partition::PartitionMetrics;
use crate::network::Event;
use crate::network::{InputGate, RecordWriter, WriteError};

/// When written bytes become readable downstream (Flink's
/// `execution.buffer-timeout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BufferTimeout {
    /// `0 ms`: every record is readable as soon as it is written (one
    /// publish per record, or per batch on the 8-byte batch paths).
    EveryRecord,
    /// `N ms` (Flink's default is 100 ms): written bytes become readable at
    /// most this long after they were written, by the task's own flush
    /// deadline; an idle task sleeps no longer than that deadline, and does
    /// not flush because it goes idle.
    Interval(Duration),
    /// `none`: only full buffers are sent, plus everything at end of input
    /// and before an event.
    Never,
}

impl Default for BufferTimeout {
    fn default() -> Self {
        BufferTimeout::Interval(Duration::from_millis(100))
    }
}

/// The invokable of a task (Flink's invokable class name).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StreamTaskKind {
    /// A source task: the source function is the default action.
    Source(SourceSpec),
    /// One input gate.
    OneInput,
    /// Two input gates, served fairly.
    TwoInput,
    /// Any number of input gates.
    MultiInput,
}

/// What a deployment descriptor says about a stream task.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamTaskConfig {
    /// Which invokable.
    pub kind: StreamTaskKind,
    /// The chained operators, head first.
    pub operators: Vec<OperatorSpec>,
    /// Where the chain ends.
    pub end: ChainEnd,
    /// When partial buffers are flushed.
    pub buffer_timeout: BufferTimeout,
}

/// Why a stream task failed.
#[derive(Debug, thiserror::Error)]
pub enum StreamTaskError {
    /// Reading input failed.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The operator chain failed (an operator, or writing its output).
    #[error(transparent)]
    Chain(#[from] super::ChainError),
    /// Flushing or ending an output failed.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// The task's inputs or outputs do not fit its kind.
    #[error("invalid stream task: {0}")]
    Config(String),
    /// Restoring the task's state failed.
    #[error("restoring state: {0}")]
    Restore(#[from] RestoreError),
}

// One per task, matched every turn: boxing the input processor would add a
// pointer chase to every turn to save a few hundred bytes once.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Head {
    Source {
        function: SourceFunction,
        wait_until: Option<Instant>,
    },
    Input(InputProcessor),
}

impl StreamTaskError {
    /// Whether the task stopped because a consumer of its output went away
    /// (its task failed or was canceled): the job is failing over, and this
    /// task ends canceled rather than failed, as Flink cancels the producers
    /// of a failed region.
    pub fn is_consumer_gone(&self) -> bool {
        use super::ChainError;
        let write = match self {
            StreamTaskError::Write(e)
            | StreamTaskError::Chain(ChainError::Write(e))
            | StreamTaskError::Input(InputError::Chain(ChainError::Write(e))) => e,
            _ => return false,
        };
        matches!(write, WriteError::ConsumerGone { .. })
    }
}

/// What a finished task reports.
#[derive(Clone, Debug)]
pub struct StreamTaskResult {
    /// Records the source emitted (source tasks).
    pub records_emitted: u64,
    /// Records read from input gates (input tasks).
    pub records_in: u64,
    /// What the sink counted, if the chain ends in one.
    pub sink: Option<SinkResult>,
    /// Each writer's counters.
    pub outputs: Vec<PartitionMetrics>,
    /// Mails handled other than cancel (timers, actions, checkpoint notices).
    pub mails: u64,
    /// When the mailbox loop started (a source's first record follows).
    pub loop_started: Option<Instant>,
    /// When the task finished its outputs at end of input.
    pub finished: Option<Instant>,
    /// Checkpoints the task snapshotted.
    pub checkpoints: u64,
    /// Allocations its snapshots made (snapshot I/O, outside the data path).
    pub snapshot_allocations: u64,
    /// With buffer debloating: the smallest buffer size the task's gates
    /// announced upstream (bytes) and how many announcements they made.
    pub debloated: Option<(u32, u64)>,
}

/// A running stream task.
#[derive(Debug)]
pub struct StreamTask {
    head: Head,
    chain: OperatorChain,
    buffer_timeout: BufferTimeout,
    next_flush: Option<Instant>,
    mails: u64,
    loop_started: Option<Instant>,
    finished: Option<Instant>,
    state: Option<TaskStateManager>,
    /// A snapshot taken, waiting for its in-flight state (unaligned).
    pending_ack: Option<(TaskSnapshot, TaskCheckpointMetrics)>,
    epoch: Instant,
    checkpoints: u64,
    snapshot_allocations: u64,
}

impl StreamTask {
    /// Builds the task: its operator chain over `writers`, and its head over
    /// `inputs` (Flink's `beforeInvoke` builds the chain the same way).
    /// Subtask `index` of `parallelism`; `epoch` is the job's time origin.
    pub fn new(
        config: &StreamTaskConfig,
        inputs: Vec<InputGate>,
        mut writers: Vec<RecordWriter>,
        max_record_size: usize,
        (index, parallelism): (u32, u32),
        epoch: Instant,
    ) -> Result<Self, StreamTaskError> {
        let gates = inputs.len();
        let expected = match config.kind {
            StreamTaskKind::Source(_) => gates == 0,
            StreamTaskKind::OneInput => gates == 1,
            StreamTaskKind::TwoInput => gates == 2,
            StreamTaskKind::MultiInput => gates >= 1,
        };
        if !expected {
            return Err(StreamTaskError::Config(format!(
                "a {:?} task cannot have {gates} input gate(s)",
                config.kind
            )));
        }
        match (config.end, writers.is_empty()) {
            (ChainEnd::Sink(_), false) => {
                return Err(StreamTaskError::Config(
                    "a chain ending in a sink has no outputs".into(),
                ))
            }
            (ChainEnd::Outputs, true) => {
                return Err(StreamTaskError::Config(
                    "a chain without a sink needs an output".into(),
                ))
            }
            _ => {}
        }
        let source = matches!(config.kind, StreamTaskKind::Source(_));
        for writer in &mut writers {
            writer.set_flush_always(config.buffer_timeout == BufferTimeout::EveryRecord);
            writer.set_flush_before_wait(config.buffer_timeout != BufferTimeout::Never);
            if source {
                // A source takes no overdraft (Flink's `SourceStreamTask.init`
                // sets its writers' overdraft buffers to 0): it produces
                // rather than relays, so a record it cannot finish waits.
                writer.partition_mut().set_max_overdraft_buffers(0);
            }
        }
        let head = match config.kind {
            StreamTaskKind::Source(spec) => Head::Source {
                function: SourceFunction::new(spec, index, parallelism, epoch),
                wait_until: None,
            },
            _ => Head::Input(InputProcessor::new(inputs, epoch)),
        };
        let next_flush = match config.buffer_timeout {
            BufferTimeout::Interval(d) => Some(Instant::now() + d),
            _ => None,
        };
        Ok(Self {
            head,
            chain: OperatorChain::new(&config.operators, config.end, writers, max_record_size),
            buffer_timeout: config.buffer_timeout,
            next_flush,
            mails: 0,
            loop_started: None,
            finished: None,
            state: None,
            pending_ack: None,
            epoch,
            checkpoints: 0,
            snapshot_allocations: 0,
        })
    }

    /// Arms the failures injected for execution attempt `attempt` (0 is the
    /// first deployment).
    pub fn set_attempt(&mut self, attempt: u32) {
        self.chain.set_attempt(attempt);
    }

    /// Debloats the task's input buffers (Flink's `BufferDebloater`); a
    /// source has none.
    pub fn enable_debloating(&mut self, config: crate::network::DebloatConfig, segment_size: u32) {
        if let Head::Input(input) = &mut self.head {
            input.enable_debloating(config, segment_size);
        }
    }

    /// Takes part in checkpoints through `state`: a source starts barriers
    /// on trigger mails, an input task aligns the barriers it reads.
    pub fn enable_checkpoints(&mut self, state: TaskStateManager) {
        if let Head::Input(input) = &mut self.head {
            input.enable_checkpoints(state.options.alignment);
        }
        self.state = Some(state);
    }

    /// Restores the state `enable_checkpoints` was given a restore for
    /// (Flink's `restoreInternal`, before the task runs): the source's
    /// position, then the chain's state.
    pub fn restore(&mut self) -> Result<(), StreamTaskError> {
        let Some(snapshot) = self.state.as_ref().and_then(|s| s.restore.clone()) else {
            return Ok(());
        };
        let mut r = StateReader::new(&snapshot.operator_state);
        if let Head::Source { function, .. } = &mut self.head {
            let position = r.u64("source position").map_err(RestoreError::from)?;
            function
                .restore_position(position)
                .map_err(RestoreError::from)?;
        }
        let max_sink_records = self.state.as_ref().and_then(|s| s.max_sink_records);
        self.chain.restore(&mut r, max_sink_records)?;
        r.finish("the task's state").map_err(RestoreError::from)?;
        // Recovered in-flight data goes through the chain before new input.
        for state in &snapshot.channel_state {
            InputProcessor::replay(&mut self.chain, &state.bytes)?;
        }
        Ok(())
    }

    /// Flink's `SubtaskCheckpointCoordinatorImpl.checkpointState`: forwards
    /// the barrier on every output (after everything emitted before it),
    /// snapshots the source position and the chain (the synchronous part),
    /// and acknowledges; the checkpoint thread persists it (the async part).
    #[cold]
    fn checkpoint(
        &mut self,
        barrier: CheckpointBarrier,
        mut metrics: TaskCheckpointMetrics,
    ) -> Result<(), StreamTaskError> {
        let Some(state) = &self.state else {
            return Ok(());
        };
        let started = Instant::now();
        let allocations = AllocationCount::thread_now();
        // The job's mode decides, not the barrier that came: an aligned
        // barrier off a pointwise edge does not make later edges aligned.
        let (announce, in_band) = match state.options.alignment {
            Alignment::Unaligned => (true, false),
            // Taken unaligned after the timeout: the barrier must not wait
            // behind queued data either.
            Alignment::AlignedWithTimeout { .. } => (true, !metrics.unaligned),
            Alignment::Aligned | Alignment::AtLeastOnce => (false, true),
        };
        for writer in self.chain.writers() {
            if announce && writer.is_pointwise_or_broadcast() {
                // Pointwise and broadcast edges stay aligned (Flink's
                // `withUnalignedUnsupported`), in unaligned checkpoints and
                // in aligned ones with a timeout: the barrier goes in-band,
                // behind the data, unannounced, and its consumer aligns on
                // it (or, once it went unaligned elsewhere, captures the
                // channel up to it).
                let aligned = CheckpointBarrier {
                    options: crate::checkpoint::CheckpointOptions {
                        alignment: Alignment::Aligned,
                        ..barrier.options
                    },
                    ..barrier
                };
                writer.broadcast_event(Event::CheckpointBarrier(aligned))?;
                continue;
            }
            if announce {
                writer
                    .partition_mut()
                    .announce_barrier(barrier.id, barrier.timestamp);
            }
            if in_band && announce {
                // Announced already: never wait for credit to queue it too.
                writer
                    .partition_mut()
                    .try_broadcast_event(Event::CheckpointBarrier(barrier));
            } else if in_band {
                writer.broadcast_event(Event::CheckpointBarrier(barrier))?;
            }
        }
        let task = state.task;
        let operator_state = self.operator_state()?;
        metrics.sync_ns = started.elapsed().as_nanos() as u64;
        let snapshot = TaskSnapshot {
            checkpoint_id: barrier.id,
            task,
            operator_state,
            channel_state: Vec::new(),
        };
        self.checkpoints += 1;
        self.pending_ack = Some((snapshot, metrics));
        if !metrics.unaligned || matches!(self.head, Head::Source { .. }) {
            self.acknowledge(None);
        } else {
            self.try_acknowledge(barrier.id);
        }
        self.snapshot_allocations += AllocationCount::thread_now().since(allocations).allocations;
        Ok(())
    }

    /// The source position and the chain's state, serialized.
    fn operator_state(&mut self) -> Result<Vec<u8>, StreamTaskError> {
        let mut w = StateWriter::default();
        if let Head::Source { function, .. } = &self.head {
            w.u64(function.emitted());
        }
        self.chain.snapshot(&mut w).map_err(ChainError::from)?;
        Ok(w.0)
    }

    /// Checkpoints after the task finished (Flink's FLIP-147): its state at
    /// the end stands for it in every checkpoint from now on, and in the
    /// pending one if it never met that checkpoint's barrier (its channels
    /// all ended first, so its final state is what the barrier would have
    /// cut). An unaligned acknowledgement whose in-flight state completed
    /// at end of input goes first.
    #[cold]
    fn report_finished(&mut self) -> Result<(), StreamTaskError> {
        let Some(task) = self.state.as_ref().map(|s| s.task) else {
            return Ok(());
        };
        let allocations = AllocationCount::thread_now();
        if let Some(id) = self.pending_ack.as_ref().map(|(s, _)| s.checkpoint_id) {
            self.try_acknowledge(id);
            if let (Some(_), Some(state)) = (self.pending_ack.take(), &self.state) {
                state.decline(
                    id,
                    CheckpointFailureReason::TaskClosing,
                    "the task finished before its in-flight state was complete",
                );
            }
        }
        let operator_state = self.operator_state()?;
        if let Some(state) = &self.state {
            state.finished(TaskSnapshot {
                checkpoint_id: 0,
                task,
                operator_state,
                channel_state: Vec::new(),
            });
        }
        self.snapshot_allocations += AllocationCount::thread_now().since(allocations).allocations;
        Ok(())
    }

    /// Acknowledges an unaligned checkpoint once its in-flight state is in.
    #[cold]
    fn try_acknowledge(&mut self, id: u64) {
        let Head::Input(input) = &mut self.head else {
            return;
        };
        if self
            .pending_ack
            .as_ref()
            .is_some_and(|(s, _)| s.checkpoint_id == id)
        {
            if let Some(channel_state) = input.take_channel_state(id) {
                self.acknowledge(Some(channel_state));
            }
        }
    }

    fn acknowledge(&mut self, channel_state: Option<(Vec<ChannelState>, TaskCheckpointMetrics)>) {
        let (Some(state), Some((mut snapshot, mut metrics))) =
            (&self.state, self.pending_ack.take())
        else {
            return;
        };
        if let Some((channels, captured)) = channel_state {
            snapshot.channel_state = channels;
            metrics.persisted_in_flight_bytes = captured.persisted_in_flight_bytes;
        }
        state.acknowledge(snapshot, metrics);
    }

    /// What an input status asks of the task.
    fn on_input_status(&mut self, status: InputStatus) -> Result<ActionStatus, StreamTaskError> {
        Ok(match status {
            InputStatus::MoreAvailable => ActionStatus::MoreAvailable,
            InputStatus::NothingAvailable => ActionStatus::NothingAvailable,
            InputStatus::EndOfInput => ActionStatus::Finished,
            InputStatus::Checkpoint(barrier, metrics) => {
                self.checkpoint(barrier, metrics)?;
                if let Head::Input(input) = &mut self.head {
                    input.resume();
                }
                ActionStatus::MoreAvailable
            }
            InputStatus::ChannelStateComplete(id) => {
                let allocations = AllocationCount::thread_now();
                self.try_acknowledge(id);
                self.snapshot_allocations +=
                    AllocationCount::thread_now().since(allocations).allocations;
                ActionStatus::MoreAvailable
            }
            InputStatus::CheckpointCanceled(id) => {
                let marker = Event::CancelCheckpointMarker(CancelCheckpointMarker { id });
                for writer in self.chain.writers() {
                    writer.broadcast_event(marker)?;
                }
                ActionStatus::MoreAvailable
            }
        })
    }

    /// A trigger mail at a source (Flink's `triggerCheckpointAsync`).
    #[cold]
    fn trigger_checkpoint(&mut self, id: u64, timestamp: u64) -> Result<(), StreamTaskError> {
        let (Head::Source { .. }, Some(state)) = (&self.head, &self.state) else {
            return Ok(());
        };
        let barrier = CheckpointBarrier {
            id,
            timestamp,
            options: state.options,
        };
        let now_ns = self.epoch.elapsed().as_nanos() as u64;
        let metrics = TaskCheckpointMetrics {
            checkpoint_id: id,
            start_delay_ns: now_ns.saturating_sub(timestamp),
            unaligned: state.options.alignment == Alignment::Unaligned,
            ..TaskCheckpointMetrics::default()
        };
        self.checkpoint(barrier, metrics)
    }

    /// Flink's `StreamTask.invoke` after `beforeInvoke`: runs the mailbox
    /// loop; at end of input flushes and ends every output partition
    /// (`afterInvoke`). A canceled loop ends nothing: the task's clean-up
    /// releases the partitions instead.
    ///
    /// Kept out of line: `run --instructions` counts instructions inside
    /// it (and outside `MailboxProcessor::wait`) by symbol.
    #[inline(never)]
    pub fn invoke(
        &mut self,
        processor: &mut MailboxProcessor,
    ) -> Result<LoopExit, StreamTaskError> {
        self.loop_started = Some(Instant::now());
        let exit = processor.run_mailbox_loop(self)?;
        if exit == LoopExit::Finished {
            self.chain.end_input().map_err(ChainError::from)?;
            for writer in self.chain.writers() {
                writer.finish()?;
            }
            self.report_finished()?;
            self.finished = Some(Instant::now());
        }
        Ok(exit)
    }

    /// What the task did.
    pub fn result(&mut self) -> StreamTaskResult {
        let (records_emitted, records_in) = match &self.head {
            Head::Source { function, .. } => (function.emitted(), 0),
            Head::Input(input) => (
                0,
                input.gates().iter().map(|g| g.metrics().records_in).sum(),
            ),
        };
        StreamTaskResult {
            records_emitted,
            records_in,
            sink: self.chain.sink_result(),
            outputs: self
                .chain
                .writers()
                .iter()
                .map(|w| w.partition().metrics())
                .collect(),
            mails: self.mails,
            loop_started: self.loop_started,
            finished: self.finished,
            checkpoints: self.checkpoints,
            snapshot_allocations: self.snapshot_allocations
                + match &self.head {
                    Head::Input(input) => input.snapshot_allocations(),
                    Head::Source { .. } => 0,
                },
            debloated: match &self.head {
                Head::Input(input) => input.debloated(),
                Head::Source { .. } => None,
            },
        }
    }

    /// Flushes on the buffer-timeout schedule (one clock read per turn, and
    /// only when a timeout interval is set).
    #[inline]
    fn flush_if_due(&mut self) {
        if let (Some(due), BufferTimeout::Interval(interval)) =
            (self.next_flush, self.buffer_timeout)
        {
            let now = Instant::now();
            if now >= due {
                for writer in self.chain.writers() {
                    writer.flush_all();
                }
                self.next_flush = Some(now + interval);
            }
        }
    }

    fn outputs_available(&self) -> bool {
        self.chain.outputs_available()
    }

    fn has_unflushed_data(&self) -> bool {
        self.chain
            .writers_ref()
            .iter()
            .any(|w| w.partition().has_unflushed_data())
    }
}

impl MailboxDefaultAction for StreamTask {
    type Error = StreamTaskError;

    #[inline]
    fn run_default_action(&mut self) -> Result<ActionStatus, StreamTaskError> {
        // Soft back-pressure: do not start a turn the outputs cannot take
        // (Flink's `recordWriter.isAvailable()` check before processing).
        if !self.outputs_available() {
            // A barrier announced upstream is taken at once, back-pressure
            // or not: that is what makes an unaligned checkpoint fast.
            if let Head::Input(input) = &mut self.head {
                if input.has_priority() {
                    if let Some(status) = input.poll_checkpoints() {
                        return self.on_input_status(status);
                    }
                }
            }
            return Ok(ActionStatus::BackPressured);
        }
        let status = match &mut self.head {
            Head::Source {
                function,
                wait_until,
            } => match function.emit_batch(&mut self.chain)? {
                SourceStatus::MoreAvailable => {
                    *wait_until = None;
                    if let Some(id) = function.induced_checkpoint() {
                        let now_ns = self.epoch.elapsed().as_nanos() as u64;
                        self.trigger_checkpoint(id, now_ns)?;
                    }
                    ActionStatus::MoreAvailable
                }
                SourceStatus::WaitUntil(at) => {
                    *wait_until = Some(at);
                    ActionStatus::NothingAvailable
                }
                SourceStatus::Idle => {
                    *wait_until = None;
                    ActionStatus::NothingAvailable
                }
                SourceStatus::Finished => ActionStatus::Finished,
            },
            Head::Input(input) => match input.process(&mut self.chain)? {
                InputStatus::MoreAvailable => {
                    input.debloat_if_due();
                    ActionStatus::MoreAvailable
                }
                InputStatus::NothingAvailable => ActionStatus::NothingAvailable,
                InputStatus::EndOfInput => ActionStatus::Finished,
                other => self.on_input_status(other)?,
            },
        };
        if status == ActionStatus::MoreAvailable {
            self.flush_if_due();
        }
        Ok(status)
    }

    fn handle_mail(&mut self, mail: Mail) -> Result<(), StreamTaskError> {
        match mail {
            Mail::EndOfInput => {
                if let Head::Source { function, .. } = &mut self.head {
                    function.end_input();
                }
            }
            Mail::TriggerCheckpoint { id, timestamp } => self.trigger_checkpoint(id, timestamp)?,
            Mail::NotifyCheckpointAborted { id } => {
                if let Head::Input(input) = &mut self.head {
                    input.abort_checkpoint(id);
                }
            }
            // Nothing here commits side effects on completion; timers and
            // actions are counted.
            _ => {}
        }
        self.mails += 1;
        Ok(())
    }

    fn is_input_available(&self) -> bool {
        match &self.head {
            Head::Source {
                function,
                wait_until,
            } => !function.is_idle() && wait_until.is_none_or(|at| Instant::now() >= at),
            Head::Input(input) => input.is_input_available(),
        }
    }

    fn is_output_available(&self) -> bool {
        // A back-pressured task also wakes for an announced barrier.
        self.outputs_available() || matches!(&self.head, Head::Input(input) if input.has_priority())
    }

    fn next_deadline(&self) -> Option<Instant> {
        let paced = match &self.head {
            Head::Source { wait_until, .. } => *wait_until,
            Head::Input(input) => input.alignment_deadline(),
        };
        let flush = self.next_flush.filter(|_| self.has_unflushed_data());
        match (paced, flush) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn back_pressured_deadline(&self) -> Option<Instant> {
        match &self.head {
            Head::Input(input) => input.alignment_deadline(),
            Head::Source { .. } => None,
        }
    }

    fn on_deadline(&mut self) -> Result<(), StreamTaskError> {
        self.flush_if_due();
        if let Head::Input(input) = &mut self.head {
            if let Some(status) = input.alignment_timeout() {
                self.on_input_status(status)?;
            }
        }
        Ok(())
    }

    fn hard_back_pressured_ns(&self) -> u64 {
        self.chain
            .writers_ref()
            .iter()
            .map(|w| w.partition().metrics().hard_back_pressured_ns)
            .sum()
    }
}
