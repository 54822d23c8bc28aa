//! The consuming end of one channel.

use super::ChannelAvailability;
use crate::memory::{BufferConsumer, BufferPool};
use crate::metrics::trace;
use crate::network::event::{ChannelItem, Event};
use crate::network::ring;
use crate::network::serde::{RecordConsumer, RecordDeserializer, SerdeError, VALUE_RUN};
use crate::sync::{Arc, OnceSlot};

/// Counters of one input channel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelMetrics {
    /// Records read.
    pub records_in: u64,
    /// Buffers read: slices of published bytes, one per read that found
    /// new bytes.
    pub buffers_in: u64,
    /// Bytes in those buffers.
    pub bytes_in: u64,
}

/// The pool a channel's buffers go back to (Flink's `BufferRecycler`),
/// bound when the producer sets its partition up, which may be after the
/// consumer set up its gate. A buffer arrives only after its pool exists,
/// so recycling always finds it bound.
#[derive(Debug, Default)]
pub struct Recycler(OnceSlot<Arc<BufferPool>>);

impl Recycler {
    /// A recycler already bound to `pool`.
    pub fn bound(pool: Arc<BufferPool>) -> Arc<Self> {
        let recycler = Arc::new(Recycler::default());
        recycler.bind(pool);
        recycler
    }

    /// Binds the producer's pool (once; later calls are ignored).
    pub fn bind(&self, pool: Arc<BufferPool>) {
        let _ = self.0.set(pool);
    }

    /// Whether the producer's pool is bound.
    pub fn is_bound(&self) -> bool {
        self.0.get().is_some()
    }

    /// Gives a segment's consumer back to the producer's pool.
    ///
    /// # Panics
    /// If no pool is bound: a segment cannot arrive before its pool exists.
    #[inline]
    pub fn recycle(&self, consumer: BufferConsumer) {
        let pool = self
            .0
            .get()
            .expect("a buffer arrived before its pool was bound");
        trace::wake_up(|| pool.recycle(consumer));
    }

    /// Wakes the producer, if it has set up.
    pub fn notify_producer(&self) {
        if let Some(pool) = self.0.get() {
            trace::wake_up(|| pool.notify_owner());
        }
    }
}

/// What one [`InputChannel::read`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Read {
    /// A slice of published bytes was read; it yielded this many records.
    Records(usize),
    /// An event, taken off the channel.
    Event(Event),
    /// Nothing published since the last read.
    Nothing,
    /// A checkpoint barrier was announced: the slice just built waits
    /// until the announcement is handled (nothing after the barrier is
    /// processed before the snapshot).
    Priority,
}

/// A slice built but not processed yet: the bytes, whether its segment was
/// finished, and where in the segment it starts.
type Stashed = (crate::memory::Buffer, bool, usize);

/// Flink's `LocalInputChannel`: reads the segments its producer's
/// subpartition queues, slice by slice as the producer publishes (the head
/// segment stays queued while it is read), and gives each segment back to
/// the producer's pool once the producer finished it and every byte is
/// read.
#[derive(Debug)]
pub struct InputChannel {
    pub(super) ring: ring::Consumer<ChannelItem>,
    /// Where the producer's buffers go back to.
    pub(super) recycler: Arc<Recycler>,
    pub(super) deserializer: RecordDeserializer,
    pub(super) finished: bool,
    pub(super) metrics: ChannelMetrics,
    /// A slice held back by an announcement (see [`Read::Priority`]).
    stashed: Option<Stashed>,
    /// While an unaligned checkpoint waits for this channel's barrier:
    /// every byte read, as the channel's in-flight state.
    capture: Option<Vec<u8>>,
}

impl InputChannel {
    pub(crate) fn new(
        ring: ring::Consumer<ChannelItem>,
        recycler: Arc<Recycler>,
        max_record_size: usize,
    ) -> Self {
        Self {
            ring,
            recycler,
            deserializer: RecordDeserializer::new(max_record_size),
            finished: false,
            metrics: ChannelMetrics::default(),
            stashed: None,
            capture: None,
        }
    }

    /// Bytes read so far: the channel's position in its stream (a barrier
    /// announced at position `p` cuts it there).
    pub(super) fn position(&self) -> u64 {
        self.metrics.bytes_in
    }

    /// Starts keeping every byte read (an unaligned checkpoint waiting for
    /// this channel's barrier), beginning with the partial record the
    /// deserializer holds.
    pub(super) fn start_capture(&mut self) {
        let mut bytes = Vec::new();
        self.deserializer.partial_bytes(&mut bytes);
        self.capture = Some(bytes);
    }

    /// Ends a capture: the bytes kept, then those queued up to stream
    /// position `barrier` (read without consuming them). `None` if no
    /// capture ran.
    pub(super) fn finish_capture(&mut self, barrier: u64) -> Option<Vec<u8>> {
        let mut bytes = self.capture.take()?;
        self.copy_in_flight(barrier, &mut bytes);
        Some(bytes)
    }

    /// Appends what is queued between the channel's position and stream
    /// position `barrier` to `out`, leaving it queued: the held-back slice
    /// first, then the head segment's unread bytes, then later segments.
    pub(super) fn copy_in_flight(&self, barrier: u64, out: &mut Vec<u8>) {
        fn take(bytes: &[u8], left: &mut usize, out: &mut Vec<u8>) {
            let n = bytes.len().min(*left);
            out.extend_from_slice(&bytes[..n]);
            *left -= n;
        }
        let mut left = barrier.saturating_sub(self.position()) as usize;
        if let Some((buffer, _, _)) = &self.stashed {
            take(buffer.as_slice(), &mut left, out);
        }
        let mut n = 0;
        while left > 0 {
            match self.ring.peek_at(n) {
                Some(ChannelItem::Data(consumer)) => {
                    let bytes = if n == 0 {
                        consumer.unread()
                    } else {
                        consumer.whole_published()
                    };
                    take(bytes, &mut left, out);
                }
                Some(ChannelItem::Event(_)) => {}
                None => break,
            }
            n += 1;
        }
    }

    /// Whether `EndOfPartition` arrived.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Counters so far.
    pub fn metrics(&self) -> ChannelMetrics {
        self.metrics
    }

    /// Whether the producer published something not read yet, finished the
    /// head segment, or queued an event (the re-check before the gate
    /// forgets the channel; loads the producer's published state).
    #[inline]
    pub(super) fn has_news(&self) -> bool {
        if self.stashed.is_some() {
            return true;
        }
        match self.ring.peek() {
            None => false,
            Some(ChannelItem::Event(_)) => true,
            Some(ChannelItem::Data(consumer)) => consumer.has_news(),
        }
    }

    /// Whether the head of the channel is a segment its producer still
    /// writes (so more bytes are to come without a new ring item).
    #[inline]
    pub(super) fn reads_open_segment(&self) -> bool {
        matches!(self.ring.peek(), Some(ChannelItem::Data(c)) if !c.readable().finished)
    }

    /// Reads the next slice of published bytes into `records` (decoding
    /// runs of 8-byte records into `values`), or takes the next event.
    /// Finished segments read to the end go back to their pool on the way.
    #[inline]
    pub(super) fn read(
        &mut self,
        records: &mut impl RecordConsumer,
        values: &mut [u64; VALUE_RUN],
        priority: &ChannelAvailability,
    ) -> Result<Read, SerdeError> {
        loop {
            let (buffer, finished, from) = match self.stashed.take() {
                Some(stashed) => {
                    let (buffer, finished, from) = stashed;
                    (Some(buffer), finished, from)
                }
                None => {
                    let consumer = match self.ring.peek_mut() {
                        None => return Ok(Read::Nothing),
                        Some(ChannelItem::Event(event)) => {
                            let event = *event;
                            let _ = self.ring.pop();
                            return self.on_event(event).map(|()| Read::Event(event));
                        }
                        Some(ChannelItem::Data(consumer)) => consumer,
                    };
                    let from = consumer.read_position();
                    let (buffer, finished) = consumer.build();
                    // After the Acquire load of the slice's bytes: a barrier
                    // announced before they were published is seen here.
                    if let Some(buffer) = buffer {
                        if priority.has_priority() {
                            self.stashed = Some((buffer, finished, from));
                            return Ok(Read::Priority);
                        }
                        (Some(buffer), finished, from)
                    } else {
                        (None, finished, from)
                    }
                }
            };
            let read = match buffer {
                Some(buffer) => {
                    self.deserializer.set_next_buffer(buffer);
                    let mut until = UntilPriority {
                        records: &mut *records,
                        priority,
                    };
                    let result = self.deserializer.read_records_into(&mut until, values);
                    let unread = self.deserializer.unread();
                    let buffer = self.deserializer.take_buffer().expect("handed over above");
                    let n = result?;
                    let read = buffer.len() - unread;
                    self.metrics.bytes_in += read as u64;
                    self.metrics.records_in += n as u64;
                    if let Some(capture) = &mut self.capture {
                        capture.extend_from_slice(&buffer.as_slice()[..read]);
                    }
                    if trace::enabled() {
                        if let Some(ChannelItem::Data(c)) = self.ring.peek() {
                            trace::consume(c.segment(), c.generation(), from, from + read);
                        }
                    }
                    if unread > 0 {
                        // An announcement came between two records: the
                        // rest waits, and the segment stays queued.
                        self.stashed = Some((buffer.tail(read), finished, from + read));
                        return Ok(Read::Records(n));
                    }
                    self.metrics.buffers_in += 1;
                    Some(n)
                }
                None => None,
            };
            if finished {
                // The slice reached the end of a finished segment.
                if let Some(ChannelItem::Data(consumer)) = self.ring.pop() {
                    self.recycler.recycle(consumer);
                }
            }
            match read {
                Some(n) => return Ok(Read::Records(n)),
                None if finished => continue,
                None => return Ok(Read::Nothing),
            }
        }
    }

    fn on_event(&mut self, event: Event) -> Result<(), SerdeError> {
        if event == Event::EndOfPartition {
            self.deserializer.check_complete()?;
            self.finished = true;
        } else {
            // Events take no segment, so no recycle wakes a producer waiting
            // for room in the ring; wake it here.
            self.recycler.notify_producer();
        }
        Ok(())
    }
}

/// A gate's consumer that stops between records once a barrier is
/// announced on the gate, so the announcement waits at most one record.
struct UntilPriority<'a, C> {
    records: &'a mut C,
    priority: &'a ChannelAvailability,
}

impl<C: RecordConsumer> RecordConsumer for UntilPriority<'_, C> {
    #[inline(always)]
    fn record(&mut self, record: &[u8]) {
        self.records.record(record);
    }

    #[inline(always)]
    fn values(&mut self, values: &mut [u64]) {
        self.records.values(values);
    }

    #[inline(always)]
    fn should_yield(&self) -> bool {
        self.priority.has_priority() || self.records.should_yield()
    }
}

impl Drop for InputChannel {
    /// Gives back every segment left in the ring if the producer is gone
    /// (it finished them all before closing; otherwise it takes them back
    /// when it closes), and wakes the producer: it may wait for room from a
    /// consumer that is gone.
    fn drop(&mut self) {
        for item in self.ring.close() {
            if let ChannelItem::Data(consumer) = item {
                self.recycler.recycle(consumer);
            }
        }
        self.recycler.notify_producer();
    }
}
