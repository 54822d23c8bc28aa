//! A task's output: one subpartition per consuming channel, written through
//! buffer builders drawn from the partition's buffer pool.

use std::time::Instant;

use crate::memory::{Buffer, BufferBuilder, BufferPool};
use crate::network::event::{ChannelItem, Event};
use crate::network::gate::ChannelAvailability;
use crate::network::ring::{self, PushError};
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

/// Output counters of one partition. Updated per buffer (records per record,
/// a plain add); back-pressure time is read from the clock only around waits.
/// The pool figures are taken when a buffer is requested, never per record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PartitionMetrics {
    /// Records emitted (a broadcast record counts once).
    pub records_out: u64,
    /// Buffers with data handed to rings: flushed views and full or final
    /// segments (a broadcast buffer counts once per channel).
    pub buffers_out: u64,
    /// Bytes in those buffers.
    pub bytes_out: u64,
    /// Events handed to rings.
    pub events_out: u64,
    /// Time waiting for a free buffer (Flink's hard back-pressure).
    pub hard_back_pressured_ns: u64,
    /// Time waiting for room in a ring (no credit; soft back-pressure).
    pub soft_back_pressured_ns: u64,
    /// Buffer requests that found the pool exhausted and had to wait (hard
    /// back-pressure events).
    pub hard_back_pressure_waits: u64,
    /// The buffer pool's size: the most segments it may hold (its max).
    pub pool_size: u32,
    /// High-water mark of the pool's buffers in use (being written, in a
    /// ring or being read), sampled right after each request, where the
    /// count peaks.
    pub max_buffers_in_use: u32,
}

/// The producing end of one channel: the ring to its consumer and how to
/// tell the consumer's gate that data arrived. (The buffer being filled is
/// the partition's, see [`ResultPartition`].)
#[derive(Debug)]
pub struct ResultSubpartition {
    ring: ring::Producer<ChannelItem>,
    availability: Arc<ChannelAvailability>,
    /// This channel's index in the consumer's gate.
    channel: u32,
    /// A view was pushed by `flush_all` and the consumer not told yet.
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

    /// Returns everything this subpartition still holds to the pool, and
    /// its `builder`. A builder whose views the consumer may still read
    /// travels after them (the ring always keeps a slot for it, see
    /// [`ResultPartition::flush`]); if the consumer is gone, the ring's
    /// leftovers come back here.
    fn release(&mut self, builder: Option<BufferBuilder>, pool: &BufferPool) {
        if let Some(builder) = builder {
            if builder.has_views() {
                self.hand_over_on_release(pool.finish(builder), pool);
            } else {
                pool.discard(builder);
            }
        }
        for item in self.ring.close() {
            if let ChannelItem::Data(buffer) = item {
                pool.recycle(buffer);
            }
        }
    }
}

impl ResultSubpartition {
    /// Pushes the owning handle of a segment whose views are in the ring
    /// without waiting: there is always room for it while the consumer lives;
    /// if it is gone, the handle is recycled with the ring's leftovers.
    fn hand_over_on_release(&mut self, buffer: Buffer, pool: &BufferPool) {
        match self.ring.push(ChannelItem::Data(buffer)) {
            Ok(()) => self.availability.notify(self.channel),
            Err(PushError::Closed(item)) => {
                if let ChannelItem::Data(buffer) = item {
                    pool.recycle(buffer);
                }
            }
            Err(PushError::Full(_leaked)) => {
                // Cannot happen (views leave a slot free). Recycling the
                // segment while a live consumer may read its views would
                // let it be rewritten under the reader, so it stays out of
                // the pool instead; the pool is then not full, which shows.
                debug_assert!(false, "no room for the owner of viewed bytes");
            }
        }
    }
}

/// Flink's `ResultPartition` (pipelined, in-process): records are serialized
/// into per-subpartition buffer builders; a full or flushed buffer goes into
/// the subpartition's ring.
///
/// Waits for capacity (no free buffer, no credit) use the task's
/// [`WaitStrategy`] and [`Parker`]; the consumer's recycling wakes it, and an
/// interrupt (cancellation) ends the wait with [`WriteError::Interrupted`].
#[derive(Debug)]
pub struct ResultPartition {
    subpartitions: Vec<ResultSubpartition>,
    /// Each subpartition's buffer being filled. Kept apart from the rest of
    /// a subpartition, so a writer going round many channels walks a dense
    /// array of write positions (24 bytes a channel, not a whole
    /// subpartition), which stays in the L1 longer.
    builders: Vec<Option<BufferBuilder>>,
    /// The one builder a broadcast partition writes, shared on flush.
    broadcast: Option<BufferBuilder>,
    pool: Arc<BufferPool>,
    serializer: RecordSerializer,
    parker: Arc<Parker>,
    wait: WaitStrategy,
    metrics: PartitionMetrics,
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
        Self {
            builders: subpartitions.iter().map(|_| None).collect(),
            subpartitions,
            broadcast: None,
            pool,
            serializer: RecordSerializer::new(max_record_size),
            parker,
            wait,
            metrics: PartitionMetrics::default(),
        }
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
    /// needed.
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
    /// subpartition `index`: as many frames as the buffer has room for are
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
                    self.hand_over(index)?;
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
                self.hand_over(index)?;
                if done {
                    return Ok(());
                }
            }
            let builder = self.request_builder()?;
            self.builders[index] = Some(builder);
        }
    }

    /// Appends a record for every subpartition, written once into a shared
    /// buffer (Flink's `BroadcastRecordWriter`). Use either this or
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
                self.hand_over_broadcast()?;
                if done {
                    return Ok(());
                }
            }
            self.broadcast = Some(self.request_builder()?);
        }
    }

    /// Makes what subpartition `index` wrote so far readable by its consumer
    /// (a buffer timeout, buffer timeout 0, before idling).
    ///
    /// As Flink's reader slices a `BufferConsumer` while the writer goes on
    /// appending, the written bytes travel as a view and the builder keeps
    /// its segment, so a flush costs a ring slot, not a buffer from the pool
    /// and its trip back. A view is pushed only when it leaves a slot free:
    /// that slot is kept for the segment's owning handle, which must follow
    /// its views (and can, even on release, without waiting). With less room
    /// the builder is handed over whole, waiting for room as before.
    pub fn flush(&mut self, index: usize) -> Result<(), WriteError> {
        if self.push_view(index, false)? {
            let sp = &self.subpartitions[index];
            sp.availability.notify(sp.channel);
        }
        Ok(())
    }

    /// [`flush`](Self::flush) without telling the consumer about a view it
    /// pushed (returns whether it did; the caller notifies). With `coalesce`,
    /// a channel whose consumer has not yet taken everything before is left
    /// alone.
    #[inline]
    fn push_view(&mut self, index: usize, coalesce: bool) -> Result<bool, WriteError> {
        let sp = &mut self.subpartitions[index];
        let Some(builder) = &mut self.builders[index] else {
            return Ok(false);
        };
        if builder.unpublished() == 0 || (coalesce && !sp.ring.is_drained()) {
            return Ok(false);
        }
        if !sp.ring.has_free_slots(2) {
            self.hand_over(index)?;
            return Ok(false);
        }
        let view = self.pool.view(builder);
        let bytes = view.len() as u64;
        match sp.ring.push(ChannelItem::Data(view)) {
            Ok(()) => {
                self.metrics.buffers_out += 1;
                self.metrics.bytes_out += bytes;
                Ok(true)
            }
            // There was room, so the consumer is gone; a view owns nothing.
            Err(_) => Err(WriteError::ConsumerGone {
                subpartition: index,
            }),
        }
    }

    /// Hands subpartition `index`'s builder to its consumer: full, or before
    /// an event. An unused builder stays.
    pub fn hand_over(&mut self, index: usize) -> Result<(), WriteError> {
        match self.builders[index].take() {
            Some(builder) if !builder.is_empty() => {
                let buffer = self.pool.finish(builder);
                self.push_buffer(index, buffer)
            }
            unused => {
                self.builders[index] = unused;
                Ok(())
            }
        }
    }

    /// Makes everything written so far readable (buffer timeout, before
    /// idling); see [`flush`](Self::flush).
    ///
    /// The consumers are told after all views are out, behind one fence, not
    /// one fence per channel.
    pub fn flush_all(&mut self) -> Result<(), WriteError> {
        self.flush_views(false)
    }

    /// The buffer-timeout flush: [`flush_all`](Self::flush_all), except
    /// that a channel whose consumer has not yet taken what it was sent is
    /// left for the next timeout, as Flink tells a consumer of new data only
    /// when it has nothing else queued. A consumer that falls behind then
    /// gets fewer, larger buffers instead of more and more small ones, at
    /// the price of up to one more timeout for the bytes it was not sent.
    pub fn flush_due(&mut self) -> Result<(), WriteError> {
        self.flush_views(true)
    }

    fn flush_views(&mut self, coalesce: bool) -> Result<(), WriteError> {
        self.flush_broadcast()?;
        let mut pushed = false;
        let mut result = Ok(());
        for index in 0..self.subpartitions.len() {
            match self.push_view(index, coalesce) {
                Ok(true) => {
                    self.subpartitions[index].notify_pending = true;
                    pushed = true;
                }
                Ok(false) => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if pushed {
            // SeqCst fence: pairs with the SeqCst fence in
            // `ChannelAvailability::dequeue_empty`, for every view pushed
            // above (see `ChannelAvailability::notify`).
            fence(Ordering::SeqCst);
            for sp in &mut self.subpartitions {
                if sp.notify_pending {
                    sp.notify_pending = false;
                    sp.availability.notify_fenced(sp.channel);
                }
            }
        }
        result
    }

    /// Hands every builder to its consumer (before an event, at end of
    /// input).
    fn hand_over_all(&mut self) -> Result<(), WriteError> {
        self.hand_over_broadcast()?;
        for index in 0..self.subpartitions.len() {
            self.hand_over(index)?;
        }
        Ok(())
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

    /// [`flush`](Self::flush) for the broadcast builder: a view into every
    /// ring if each has room for one and the owner after it, else the
    /// builder is handed over.
    fn flush_broadcast(&mut self) -> Result<(), WriteError> {
        let Some(builder) = &mut self.broadcast else {
            return Ok(());
        };
        if builder.unpublished() == 0 {
            return Ok(());
        }
        if !self
            .subpartitions
            .iter_mut()
            .all(|sp| sp.ring.has_free_slots(2))
        {
            return self.hand_over_broadcast();
        }
        let view = self.pool.view(builder);
        self.push_to_all(view)
    }

    fn hand_over_broadcast(&mut self) -> Result<(), WriteError> {
        let buffer = match self.broadcast.take() {
            Some(builder) if !builder.is_empty() => self.pool.finish(builder),
            unused => {
                self.broadcast = unused;
                return Ok(());
            }
        };
        self.push_to_all(buffer)
    }

    /// Pushes `buffer` to the last subpartition and a handle to the same
    /// bytes to each of the others.
    fn push_to_all(&mut self, mut buffer: Buffer) -> Result<(), WriteError> {
        let last = self.subpartitions.len() - 1;
        for index in 0..last {
            let shared = self.pool.share(&mut buffer);
            if let Err(e) = self.push_buffer(index, shared) {
                self.pool.recycle(buffer);
                return Err(e);
            }
        }
        self.push_buffer(last, buffer)
    }

    /// Sends an event to every consumer, after the data before it.
    pub fn broadcast_event(&mut self, event: Event) -> Result<(), WriteError> {
        self.hand_over_all()?;
        for index in 0..self.subpartitions.len() {
            self.push_item(index, ChannelItem::Event(event))?;
            self.metrics.events_out += 1;
        }
        Ok(())
    }

    /// Ends the partition: flushes and sends `EndOfPartition` to every
    /// consumer (Flink's `ResultPartition.finish`).
    pub fn finish(&mut self) -> Result<(), WriteError> {
        self.broadcast_event(Event::EndOfPartition)
    }

    /// Whether an emit could proceed without waiting for a buffer (Flink's
    /// `getAvailableFuture().isDone()`; a hint).
    pub fn is_available(&self) -> bool {
        self.pool.is_available()
    }

    fn push_buffer(&mut self, index: usize, buffer: Buffer) -> Result<(), WriteError> {
        let bytes = buffer.len() as u64;
        self.push_item(index, ChannelItem::Data(buffer))?;
        self.metrics.buffers_out += u64::from(bytes != 0);
        self.metrics.bytes_out += bytes;
        Ok(())
    }

    /// Pushes into a subpartition's ring, waiting for credit if it is full.
    fn push_item(&mut self, index: usize, mut item: ChannelItem) -> Result<(), WriteError> {
        let sp = &mut self.subpartitions[index];
        let mut waited_since = None;
        let mut waiter = self.wait.waiter();
        let result = loop {
            match sp.ring.push(item) {
                Ok(()) => break Ok(()),
                Err(PushError::Full(back) | PushError::Closed(back)) => item = back,
            }
            if sp.ring.is_abandoned() {
                if let ChannelItem::Data(buffer) = item {
                    self.pool.recycle(buffer);
                }
                break Err(WriteError::ConsumerGone {
                    subpartition: index,
                });
            }
            if self.parker.is_interrupted() {
                if let ChannelItem::Data(buffer) = item {
                    self.pool.recycle(buffer);
                }
                break Err(WriteError::Interrupted);
            }
            waited_since.get_or_insert_with(Instant::now);
            let ring = &sp.ring;
            waiter.wait(
                &self.parker,
                || ring.has_room() || ring.is_abandoned(),
                None,
            );
        };
        if let Some(start) = waited_since {
            self.metrics.soft_back_pressured_ns += start.elapsed().as_nanos() as u64;
        }
        if result.is_ok() {
            sp.availability.notify(sp.channel);
        }
        result
    }

    /// A free buffer builder, waiting for one if the pool is exhausted.
    fn request_builder(&mut self) -> Result<BufferBuilder, WriteError> {
        let pool = &self.pool;
        let builder = match pool.request() {
            Some(builder) => builder,
            None => {
                self.metrics.hard_back_pressure_waits += 1;
                pool.request_waiting(self.wait, &mut self.metrics.hard_back_pressured_ns)
                    .ok_or(WriteError::Interrupted)?
            }
        };
        // In-use only grows on a request, so its peak is seen here (a
        // concurrent recycle can only make the sample low by one or so).
        let in_use = pool.segments_in_use();
        self.metrics.max_buffers_in_use = self.metrics.max_buffers_in_use.max(in_use);
        Ok(builder)
    }
}

impl Drop for ResultPartition {
    fn drop(&mut self) {
        if let Some(builder) = self.broadcast.take() {
            if builder.has_views() {
                let mut buffer = self.pool.finish(builder);
                let last = self.subpartitions.len() - 1;
                for sp in &mut self.subpartitions[..last] {
                    let shared = self.pool.share(&mut buffer);
                    sp.hand_over_on_release(shared, &self.pool);
                }
                self.subpartitions[last].hand_over_on_release(buffer, &self.pool);
            } else {
                self.pool.discard(builder);
            }
        }
        for (sp, builder) in self.subpartitions.iter_mut().zip(&mut self.builders) {
            sp.release(builder.take(), &self.pool);
        }
    }
}
