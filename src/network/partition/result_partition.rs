//! A task's output: one subpartition per consuming channel, written through
//! buffer builders drawn from the partition's buffer pool.

use std::time::Instant;

use crate::memory::{BufferBuilder, BufferPool};
use crate::metrics::trace::{self, Span};
use crate::network::event::{ChannelItem, Event};
use crate::network::gate::ChannelAvailability;
use crate::network::ring;
use crate::network::serde::{RecordSerializer, SerdeError};
use crate::sync::atomic::{fence, Ordering};
use crate::sync::{Arc, Parker, WaitStrategy};

/// How far past its write position a routed writer asks for a segment's
/// next line. Round-robin over many channels comes back to a segment only
/// after a record to every other: time enough to fetch the next line, which
/// no hardware prefetcher would (a thousand interleaved streams).
const PREFETCH_AHEAD: usize = 64;

/// Why a write did not complete.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The record cannot be serialized.
    #[error(transparent)]
    Serde(#[from] SerdeError),
    /// The task was interrupted (canceled) while it waited for capacity.
    #[error("interrupted while waiting for output capacity")]
    Interrupted,
    /// The consumer of a subpartition is gone; what it would have read was
    /// recycled.
    #[error("the consumer of subpartition {subpartition} is gone")]
    ConsumerGone {
        /// The subpartition.
        subpartition: usize,
    },
}

/// Output counters of one partition. Updated per publish (records per
/// record, a plain add); the clock is read only around waits, and the pool
/// figures when a segment is requested, never per record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PartitionMetrics {
    /// Records emitted (a broadcast record counts once).
    pub records_out: u64,
    /// Buffers sent: each time new bytes of a channel became readable (a
    /// flush that published something, or a segment finished with bytes
    /// not yet published; a broadcast buffer counts once per channel).
    /// With buffer timeout `none` that is one per full segment, with `0`
    /// one per record (or per batch of 8-byte records).
    pub buffers_out: u64,
    /// Bytes in those buffers.
    pub bytes_out: u64,
    /// Segments queued to channels (each enters its channel once).
    pub segments_out: u64,
    /// Events handed to rings.
    pub events_out: u64,
    /// Time blocked inside an emit, flush or event waiting for a free
    /// segment or for room in a channel (Flink's hard back-pressure,
    /// `hardBackPressuredTimeMsPerSecond`).
    pub hard_back_pressured_ns: u64,
    /// Waits counted in `hard_back_pressured_ns`.
    pub hard_back_pressure_waits: u64,
    /// The buffer pool's size: the most segments it may hold (its max).
    pub pool_size: u32,
    /// High-water mark of the pool's segments in use (being written, queued
    /// or being read; overdraft included, so up to `pool_size` plus the
    /// overdraft allowance), sampled right after each request, where the
    /// count peaks.
    pub max_buffers_in_use: u32,
}

/// The producing end of one channel: the ring to its consumer and how to
/// tell the consumer's gate that data arrived. (The segment being written
/// is the partition's, see [`ResultPartition`].)
#[derive(Debug)]
pub struct ResultSubpartition {
    ring: ring::Producer<ChannelItem>,
    availability: Arc<ChannelAvailability>,
    /// This channel's index in the consumer's gate.
    channel: u32,
    /// Bytes were published by `flush_all` and the consumer not told yet.
    notify_pending: bool,
}

impl ResultSubpartition {
    pub(crate) fn new(
        ring: ring::Producer<ChannelItem>,
        availability: Arc<ChannelAvailability>,
        channel: u32,
    ) -> Self {
        Self {
            ring,
            availability,
            channel,
            notify_pending: false,
        }
    }

    /// Tells the consumer's gate this channel has something to read; free
    /// (a fence and a load) while the gate already knows.
    #[inline]
    fn notify(&self) {
        self.availability.notify(self.channel);
    }

    /// Closes the ring; if the consumer is gone, gives what it never took
    /// back to the pool (every segment in it is finished by then).
    fn release(&mut self, pool: &BufferPool) {
        for item in self.ring.close() {
            if let ChannelItem::Data(consumer) = item {
                pool.recycle(consumer);
            }
        }
    }
}

/// Flink's `ResultPartition` (pipelined, in-process, a `BufferWritingResultPartition`):
/// records are serialized into one buffer builder per subpartition, whose
/// consumer is queued in the subpartition's ring when the segment is
/// taken; flushes publish the bytes written so far.
///
/// A segment enters its channel once. A flush is one Release store of the
/// builder's position and, when the consumer had nothing left to read, a
/// notification (Flink notifies only when a subpartition goes from nothing
/// to read to something), so buffer timeout 0 costs a store and a fence per
/// record, not a ring slot, a segment and a wake-up.
///
/// Waits for capacity (no free segment, no room in a ring) block the
/// emitting task inside the call: hard back-pressure, counted. They use the
/// task's [`WaitStrategy`] and [`Parker`]; the consumer's recycling wakes
/// it, and an interrupt (cancellation) ends the wait with
/// [`WriteError::Interrupted`].
#[derive(Debug)]
pub struct ResultPartition {
    subpartitions: Vec<ResultSubpartition>,
    /// Each subpartition's open builder (its consumer already queued). Kept
    /// apart from the rest of a subpartition, so a writer going round many
    /// channels walks a dense array of write positions, which stays in the
    /// L1 longer.
    builders: Vec<Option<BufferBuilder>>,
    /// The one builder a broadcast partition writes, every channel holding
    /// a consumer of it.
    broadcast: Option<BufferBuilder>,
    pool: Arc<BufferPool>,
    serializer: RecordSerializer,
    parker: Arc<Parker>,
    wait: WaitStrategy,
    /// Publish everything written before blocking (any buffer timeout but
    /// `none`): Flink's output flusher would flush it while the task
    /// blocks, so a blocked writer never holds back bytes it wrote.
    flush_before_wait: bool,
    metrics: PartitionMetrics,
    /// Per subpartition: bytes in segments finished so far (with the open
    /// builders' lengths, the stream position a barrier cuts at).
    finished_bytes: Vec<u64>,
    /// Subpartitions whose ring held `credit` items or more after a push
    /// (capacity: one per subpartition, so it never grows on the data
    /// path): while one stays so the partition is unavailable.
    backlogged: Vec<u32>,
    /// Items a channel may queue before the partition is unavailable
    /// (Flink's `max-buffers-per-channel`); the rings hold more: the
    /// overdraft a record spanning segments may use, and one slot for an
    /// event beyond that.
    credit: usize,
}

/// Which items a wait for room is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Room {
    /// A segment: up to the credit plus the pool's overdraft allowance.
    Data,
    /// An event: any free slot.
    Event,
}

impl ResultPartition {
    /// A partition over `subpartitions` drawing from `pool`. `parker` is the
    /// writing task's (the pool must wake the same one).
    pub fn new(
        pool: Arc<BufferPool>,
        subpartitions: Vec<ResultSubpartition>,
        max_record_size: usize,
        parker: Arc<Parker>,
        wait: WaitStrategy,
    ) -> Self {
        assert!(
            !subpartitions.is_empty(),
            "a partition has at least one subpartition"
        );
        let n = subpartitions.len();
        let subpartitions_capacity = subpartitions[0].ring.capacity();
        Self {
            builders: subpartitions.iter().map(|_| None).collect(),
            subpartitions,
            broadcast: None,
            pool,
            serializer: RecordSerializer::new(max_record_size),
            parker,
            wait,
            flush_before_wait: true,
            metrics: PartitionMetrics::default(),
            finished_bytes: vec![0; n],
            backlogged: Vec::with_capacity(n),
            credit: subpartitions_capacity,
        }
    }

    /// Sets the channels' credit to `credit` items, below their rings'
    /// capacity (the rest is overdraft and event room).
    pub fn with_channel_credit(mut self, credit: usize) -> Self {
        self.credit = credit.clamp(1, self.subpartitions[0].ring.capacity());
        self
    }

    /// Lowers the pool's overdraft allowance (Flink's
    /// `setMaxOverdraftBuffersPerGate`; a source task sets 0).
    pub fn set_max_overdraft_buffers(&mut self, n: u32) {
        self.pool.set_max_overdraft(n);
    }

    /// The most items a channel may queue when a segment is added: its
    /// credit plus the overdraft allowance, within its ring.
    #[inline]
    fn room_limit(&self, room: Room, index: usize) -> usize {
        let capacity = self.subpartitions[index].ring.capacity();
        match room {
            Room::Event => capacity,
            Room::Data => (self.credit + self.pool.max_overdraft() as usize).min(capacity),
        }
    }
    /// Subpartition `index`'s stream position: bytes written to it so far.
    fn position(&self, index: usize) -> u64 {
        self.finished_bytes[index]
            + self.builders[index].as_ref().map_or(0, |b| b.len() as u64)
            + self.broadcast.as_ref().map_or(0, |b| b.len() as u64)
    }

    /// Announces checkpoint `id`'s barrier to every consumer at once,
    /// ahead of the buffers they have not read (Flink's unaligned barrier,
    /// a priority event): publishes everything written, then tells each
    /// channel the position the barrier cuts it at. Never waits for credit.
    pub fn announce_barrier(&mut self, id: u64, timestamp: u64) {
        self.flush_all();
        for index in 0..self.subpartitions.len() {
            let position = self.position(index);
            let sp = &self.subpartitions[index];
            sp.availability
                .announce(sp.channel, id, timestamp, position);
        }
        self.metrics.events_out += self.subpartitions.len() as u64;
    }

    /// Whether to publish what was written before blocking for capacity:
    /// yes (the default) for every buffer timeout but `none`, which sends
    /// only full buffers.
    pub fn set_flush_before_wait(&mut self, flush: bool) {
        self.flush_before_wait = flush;
    }

    /// Number of subpartitions (consuming channels).
    pub fn num_subpartitions(&self) -> usize {
        self.subpartitions.len()
    }

    /// The partition's buffer pool.
    pub fn pool(&self) -> &Arc<BufferPool> {
        &self.pool
    }

    /// Counters so far.
    pub fn metrics(&self) -> PartitionMetrics {
        PartitionMetrics {
            pool_size: self.pool.max(),
            ..self.metrics
        }
    }

    /// Appends a record to subpartition `index`, waiting for capacity if
    /// needed. The record is readable after the next flush, or once its
    /// segment fills.
    #[inline]
    pub fn emit(&mut self, index: usize, record: &[u8]) -> Result<(), WriteError> {
        self.serializer.check(record)?;
        self.metrics.records_out += 1;
        if let Some(builder) = &mut self.builders[index] {
            let mut written = 0;
            if self.serializer.serialize(builder, record, &mut written) && !builder.is_full() {
                return Ok(());
            }
            return self.emit_slow(index, record, written);
        }
        self.emit_slow(index, record, 0)
    }

    /// Appends a batch of 8-byte records, given as their values, to
    /// subpartition `index`: as many frames as the segment has room for are
    /// written in one loop (no per-record checks), a frame that does not fit
    /// goes the spanning way.
    #[inline]
    pub fn emit_values(&mut self, index: usize, values: &[u64]) -> Result<(), WriteError> {
        self.serializer.check(&[0; 8])?;
        self.metrics.records_out += values.len() as u64;
        let mut rest = values;
        while !rest.is_empty() {
            if let Some(builder) = &mut self.builders[index] {
                let n = self.serializer.serialize_values(builder, rest);
                rest = &rest[n..];
                if builder.is_full() {
                    self.finish_builder(index);
                    continue;
                }
                if rest.is_empty() {
                    break;
                }
            }
            // No builder, or less room than one frame: the spanning way.
            self.emit_slow(index, &rest[0].to_le_bytes(), 0)?;
            rest = &rest[1..];
        }
        Ok(())
    }

    /// Appends 8-byte records, given as their values, each to the
    /// subpartition `route` picks for it (rebalance, rescale, hash): one
    /// loop of a route, a room check and two stores per record, without
    /// the per-record checks and call of [`emit`](Self::emit). A record the
    /// builder has no spare room for goes the spanning way.
    ///
    /// `route` is called once per record, in order (a round-robin route
    /// keeps its turn in a local the loop holds in a register).
    #[inline]
    pub fn emit_values_routed(
        &mut self,
        values: &[u64],
        mut route: impl FnMut(u64) -> usize,
    ) -> Result<(), WriteError> {
        self.serializer.check(&[0; 8])?;
        self.metrics.records_out += values.len() as u64;
        let mut rest = values.iter();
        loop {
            // The run of records whose builders have spare room, over a
            // borrow of the builders alone, so their base stays in a
            // register across the stores into segments.
            let builders = &mut self.builders[..];
            let stopped = loop {
                let Some(&value) = rest.next() else {
                    return Ok(());
                };
                let index = route(value);
                let Some(builder) = &mut builders[index] else {
                    break (index, value);
                };
                if !self.serializer.serialize_value(builder, value) {
                    break (index, value);
                }
                builder.prefetch_for_write(PREFETCH_AHEAD);
            };
            // No builder, or no spare room: this record goes the spanning way.
            let (index, value) = stopped;
            self.emit_slow(index, &value.to_le_bytes(), 0)?;
        }
    }

    /// Continues a record that did not fit (or completes a full builder).
    #[cold]
    fn emit_slow(
        &mut self,
        index: usize,
        record: &[u8],
        mut written: usize,
    ) -> Result<(), WriteError> {
        let frame = 4 + record.len();
        loop {
            if let Some(builder) = &mut self.builders[index] {
                let done =
                    written == frame || self.serializer.serialize(builder, record, &mut written);
                if !builder.is_full() {
                    debug_assert!(done);
                    return Ok(());
                }
                self.finish_builder(index);
                if done {
                    return Ok(());
                }
            }
            let builder = self.open_builder(index)?;
            self.builders[index] = Some(builder);
        }
    }

    /// Appends a record for every subpartition, written once into a shared
    /// segment (Flink's `BroadcastRecordWriter`). Use either this or
    /// [`emit`](Self::emit) on one partition, not both.
    #[inline]
    pub fn emit_broadcast(&mut self, record: &[u8]) -> Result<(), WriteError> {
        self.serializer.check(record)?;
        self.metrics.records_out += 1;
        let frame = 4 + record.len();
        let mut written = 0;
        loop {
            if let Some(builder) = &mut self.broadcast {
                let done =
                    written == frame || self.serializer.serialize(builder, record, &mut written);
                if !builder.is_full() {
                    return Ok(());
                }
                self.finish_broadcast();
                if done {
                    return Ok(());
                }
            }
            let builder = self.open_broadcast()?;
            self.broadcast = Some(builder);
        }
    }

    /// Makes what subpartition `index` wrote so far readable by its consumer
    /// (buffer timeout 0): one Release store, and a notification when the
    /// consumer may have run out of things to read.
    #[inline]
    pub fn flush(&mut self, index: usize) {
        if self.publish(index) {
            self.subpartitions[index].notify();
        }
    }

    /// Publishes subpartition `index`'s unpublished bytes; returns whether
    /// there were any (the caller notifies).
    #[inline]
    fn publish(&mut self, index: usize) -> bool {
        let Some(builder) = &mut self.builders[index] else {
            return false;
        };
        let from = builder.published();
        if !builder.publish() {
            return false;
        }
        self.metrics.buffers_out += 1;
        self.metrics.bytes_out += (builder.len() - from) as u64;
        trace::flush(builder.segment(), builder.generation(), from, builder.len());
        true
    }

    /// Makes everything written so far readable (a buffer timeout, before
    /// blocking); see [`flush`](Self::flush). The consumers are told after
    /// every channel is published, behind one fence, not one per channel.
    pub fn flush_all(&mut self) {
        self.flush_broadcast();
        let mut pending = false;
        for index in 0..self.subpartitions.len() {
            if self.publish(index) {
                self.subpartitions[index].notify_pending = true;
                pending = true;
            }
        }
        if pending {
            // SeqCst fence: pairs with the SeqCst fence in
            // `ChannelAvailability::dequeue_empty`, for every position
            // published above (see `ChannelAvailability::notify`).
            fence(Ordering::SeqCst);
            for sp in &mut self.subpartitions {
                if std::mem::take(&mut sp.notify_pending) {
                    sp.availability.notify_fenced(sp.channel);
                }
            }
        }
    }

    /// Whether any subpartition holds bytes its consumer cannot read yet.
    pub fn has_unflushed_data(&self) -> bool {
        self.broadcast
            .as_ref()
            .is_some_and(|b| b.unpublished() != 0)
            || self
                .builders
                .iter()
                .any(|b| b.as_ref().is_some_and(|b| b.unpublished() != 0))
    }

    /// [`flush`](Self::flush) of the broadcast builder, to every channel.
    fn flush_broadcast(&mut self) {
        let Some(builder) = &mut self.broadcast else {
            return;
        };
        let bytes = builder.unpublished() as u64;
        if builder.publish() {
            let channels = self.subpartitions.len() as u64;
            self.metrics.buffers_out += channels;
            self.metrics.bytes_out += bytes * channels;
            self.subpartitions
                .iter()
                .for_each(ResultSubpartition::notify);
        }
    }

    /// Finishes subpartition `index`'s builder (full, or before an event):
    /// the rest of its bytes become readable and the segment its reader's.
    /// The consumer is always told, even with no new bytes: it recycles the
    /// segment only once it sees it finished, and the writer may be about
    /// to wait for that segment.
    fn finish_builder(&mut self, index: usize) {
        let Some(builder) = self.builders[index].take() else {
            return;
        };
        let (from, to) = (builder.published(), builder.len());
        self.finished_bytes[index] += to as u64;
        let (segment, generation) = (builder.segment(), builder.generation());
        if builder.finish() {
            self.metrics.buffers_out += 1;
            self.metrics.bytes_out += (to - from) as u64;
            trace::flush(segment, generation, from, to);
        }
        self.subpartitions[index].notify();
    }

    fn finish_broadcast(&mut self) {
        let Some(builder) = self.broadcast.take() else {
            return;
        };
        let bytes = builder.unpublished() as u64;
        let len = builder.len() as u64;
        self.finished_bytes.iter_mut().for_each(|b| *b += len);
        if builder.finish() {
            let channels = self.subpartitions.len() as u64;
            self.metrics.buffers_out += channels;
            self.metrics.bytes_out += bytes * channels;
        }
        self.subpartitions
            .iter()
            .for_each(ResultSubpartition::notify);
    }

    /// Finishes every builder (before an event, at end of input).
    fn finish_all(&mut self) {
        self.finish_broadcast();
        for index in 0..self.subpartitions.len() {
            self.finish_builder(index);
        }
    }

    /// A builder for subpartition `index`, its consumer queued in the ring:
    /// waits for room in the ring, then for a free segment.
    fn open_builder(&mut self, index: usize) -> Result<BufferBuilder, WriteError> {
        self.await_room(index..index + 1, Room::Data)?;
        let mut builder = self.request_builder()?;
        let sp = &self.subpartitions[index];
        let size = sp.availability.buffer_size(sp.channel);
        if size != 0 {
            builder.trim(size as usize);
        }
        match self.subpartitions[index]
            .ring
            .push(ChannelItem::Data(builder.consumer()))
        {
            Ok(()) => {
                self.metrics.segments_out += 1;
                self.note_backlog(index);
                Ok(builder)
            }
            Err(_) => {
                // There was room, so the consumer is gone; it never saw the
                // segment.
                self.pool.discard(builder);
                Err(WriteError::ConsumerGone {
                    subpartition: index,
                })
            }
        }
    }

    /// The broadcast builder, a consumer of it queued in every ring (each
    /// a reference of the segment's count).
    fn open_broadcast(&mut self) -> Result<BufferBuilder, WriteError> {
        let n = self.subpartitions.len();
        self.await_room(0..n, Room::Data)?;
        let builder = self.request_builder()?;
        let mut first = Some(builder.consumer());
        for index in 0..n {
            let consumer = if index + 1 == n {
                first
                    .take()
                    .expect("the last channel takes the first consumer")
            } else {
                self.pool
                    .share(first.as_mut().expect("kept until the last channel"))
            };
            if let Err(refused) = self.subpartitions[index]
                .ring
                .push(ChannelItem::Data(consumer))
            {
                // There was room, so this consumer is gone. The segment
                // is finished empty: readers that got it recycle it, and
                // the references not queued go back now.
                let _ = builder.finish();
                if let ChannelItem::Data(consumer) = refused.into_inner() {
                    self.pool.recycle(consumer);
                }
                if let Some(first) = first {
                    self.pool.recycle(first);
                }
                self.subpartitions[..index]
                    .iter()
                    .for_each(ResultSubpartition::notify);
                return Err(self.consumer_gone(index));
            }
        }
        self.metrics.segments_out += n as u64;
        for index in 0..n {
            self.note_backlog(index);
        }
        Ok(builder)
    }

    /// Sends an event to every consumer, after the data before it.
    pub fn broadcast_event(&mut self, event: Event) -> Result<(), WriteError> {
        self.finish_all();
        for index in 0..self.subpartitions.len() {
            self.await_room(index..index + 1, Room::Event)?;
            let sp = &mut self.subpartitions[index];
            if sp.ring.push(ChannelItem::Event(event)).is_err() {
                return Err(WriteError::ConsumerGone {
                    subpartition: index,
                });
            }
            sp.notify();
            self.metrics.events_out += 1;
            self.note_backlog(index);
        }
        Ok(())
    }

    /// [`broadcast_event`](Self::broadcast_event) without waiting: a
    /// channel whose ring is full does not get the event (an aligned
    /// barrier with a timeout, already announced: its consumer turns the
    /// checkpoint unaligned when the timeout expires rather than this task
    /// waiting for credit). Returns how many channels got it.
    pub fn try_broadcast_event(&mut self, event: Event) -> usize {
        self.finish_all();
        let mut sent = 0;
        for index in 0..self.subpartitions.len() {
            let sp = &mut self.subpartitions[index];
            if sp.ring.has_room() && sp.ring.push(ChannelItem::Event(event)).is_ok() {
                sp.notify();
                sent += 1;
                self.note_backlog(index);
            }
        }
        self.metrics.events_out += sent as u64;
        sent
    }

    /// Ends the partition: finishes every segment and sends
    /// `EndOfPartition` to every consumer (Flink's `ResultPartition.finish`).
    pub fn finish(&mut self) -> Result<(), WriteError> {
        self.broadcast_event(Event::EndOfPartition)
    }

    /// Whether an emit could proceed without waiting (Flink's
    /// `getAvailableFuture().isDone()`; a hint): the pool has a free
    /// segment and no subpartition's ring is full. A full ring is Flink's
    /// subpartition over `maxBuffersPerChannel`, which makes its
    /// `LocalBufferPool` unavailable: the task stops between records and
    /// waits softly (taking mail meanwhile, a checkpoint trigger among
    /// them) instead of blocking inside its next emit.
    #[inline]
    pub fn is_available(&self) -> bool {
        self.pool.is_available()
            && (self.backlogged.is_empty()
                || self
                    .backlogged
                    .iter()
                    .all(|&i| self.subpartitions[i as usize].ring.queued() < self.credit))
    }

    /// Notes subpartition `index` as backlogged if its ring is now full,
    /// and forgets those that drained.
    #[inline]
    fn note_backlog(&mut self, index: usize) {
        let credit = self.credit;
        if !self.backlogged.is_empty() {
            let subpartitions = &self.subpartitions;
            self.backlogged
                .retain(|&i| subpartitions[i as usize].ring.queued() >= credit);
        }
        if self.subpartitions[index].ring.queued() >= credit
            && !self.backlogged.contains(&(index as u32))
        {
            self.backlogged.push(index as u32);
        }
    }

    /// Waits until each ring in `range` has room for one more item of
    /// kind `room` (hard back-pressure: no credit).
    fn await_room(&mut self, range: std::ops::Range<usize>, room: Room) -> Result<(), WriteError> {
        let limit = self.room_limit(room, range.start);
        // Free slots past what the limit leaves unused.
        let free = 1 + self.subpartitions[range.start].ring.capacity() - limit;
        if self.subpartitions[range.clone()]
            .iter_mut()
            .all(|sp| sp.ring.has_free_slots(free))
        {
            return Ok(());
        }
        self.before_wait();
        let span = Span::start(trace::Kind::HardBackPressure);
        let start = Instant::now();
        let mut waiter = self.wait.waiter();
        let result = loop {
            if let Some(index) = self.abandoned(range.clone()) {
                break Err(self.consumer_gone(index));
            }
            let full = range
                .clone()
                .find(|&index| self.subpartitions[index].ring.queued() >= limit);
            let Some(index) = full else {
                break Ok(());
            };
            if self.parker.is_interrupted() {
                break Err(WriteError::Interrupted);
            }
            let ring = &self.subpartitions[index].ring;
            waiter.wait(
                &self.parker,
                || ring.queued() < limit || ring.is_abandoned(),
                None,
            );
        };
        self.metrics.hard_back_pressure_waits += 1;
        self.metrics.hard_back_pressured_ns += start.elapsed().as_nanos() as u64;
        span.end();
        result
    }

    /// A free segment, waiting for one if the pool is exhausted (hard
    /// back-pressure). A consumer that went away meanwhile gives back the
    /// segments it held, and the write fails.
    fn request_builder(&mut self) -> Result<BufferBuilder, WriteError> {
        let builder = match self.pool.request() {
            Some(builder) => builder,
            None => {
                self.before_wait();
                let span = Span::start(trace::Kind::HardBackPressure);
                let start = Instant::now();
                let mut waiter = self.wait.waiter();
                let all = 0..self.subpartitions.len();
                let result = loop {
                    if let Some(builder) = self.pool.request() {
                        break Ok(builder);
                    }
                    if self.parker.is_interrupted() {
                        break Err(WriteError::Interrupted);
                    }
                    if let Some(index) = self.abandoned(all.clone()) {
                        break Err(self.consumer_gone(index));
                    }
                    let (pool, subpartitions) = (&self.pool, &self.subpartitions);
                    waiter.wait(
                        &self.parker,
                        || {
                            pool.is_available()
                                || subpartitions.iter().any(|sp| sp.ring.is_abandoned())
                        },
                        None,
                    );
                };
                self.metrics.hard_back_pressure_waits += 1;
                self.metrics.hard_back_pressured_ns += start.elapsed().as_nanos() as u64;
                span.end();
                result?
            }
        };
        // In-use only grows on a request, so its peak is seen here (a
        // concurrent recycle can only make the sample low by one or so).
        let in_use = self.pool.segments_in_use();
        self.metrics.max_buffers_in_use = self.metrics.max_buffers_in_use.max(in_use);
        trace::counter(trace::Counter::BuffersInUse, u64::from(in_use));
        Ok(builder)
    }

    /// The first subpartition in `range` whose consumer is gone.
    fn abandoned(&self, range: std::ops::Range<usize>) -> Option<usize> {
        range
            .into_iter()
            .find(|&index| self.subpartitions[index].ring.is_abandoned())
    }

    /// Subpartition `index`'s consumer is gone: its segments come back to
    /// the pool (the open one is finished first, so no one writes it), and
    /// the write fails.
    #[cold]
    fn consumer_gone(&mut self, index: usize) -> WriteError {
        if let Some(builder) = self.builders[index].take() {
            let _ = builder.finish();
        }
        self.subpartitions[index].release(&self.pool);
        WriteError::ConsumerGone {
            subpartition: index,
        }
    }

    /// Publishes what was written before the task blocks (see
    /// `flush_before_wait`).
    fn before_wait(&mut self) {
        if self.flush_before_wait {
            self.flush_all();
        }
    }
}

impl Drop for ResultPartition {
    /// Finishes every builder, so readers still reading recycle the
    /// segments, and gives back what consumers that are gone never took.
    fn drop(&mut self) {
        self.finish_all();
        for sp in &mut self.subpartitions {
            sp.release(&self.pool);
        }
    }
}
