//! Which of a gate's channels have data: a queue of channel indices that
//! producers fill and the consumer drains, plus the consumer's parker.

use crate::metrics::trace;
use crate::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, Ordering};
use crate::sync::{Arc, CachePadded, IndexQueue, Parker};

/// The gate-side signal producers use to say "channel `i` has data"
/// (Flink's `SingleInputGate.notifyChannelNonEmpty` / `queueChannel`).
///
/// A channel is in the queue at most once: its `queued` flag is set by the
/// producer that enqueues it and cleared by the consumer only when it finds
/// the channel's ring empty, after which the consumer re-checks the ring.
/// The consumer re-queues a channel that still has data behind the others,
/// so channels are served round-robin and none starves.
///
/// The consumer may also keep a channel it read dry *watched*: its flag
/// stays set, so the producer's next publish costs it no enqueue, and the
/// consumer looks at the channel itself until it has news. Then a set flag
/// no longer means "the consumer will look": so a producer that finds the
/// flag set still wakes the consumer if it sleeps. A consumer parks only
/// after publishing PARKED and a fence, then re-checks its watched
/// channels; the producer publishes, fences, and reads the parker's state.
/// One of the two sees the other (the Dekker handshake of
/// [`Parker`](crate::sync::Parker)).
#[derive(Debug)]
pub struct ChannelAvailability {
    queue: IndexQueue,
    queued: Box<[CachePadded<AtomicBool>]>,
    consumer: Arc<Parker>,
    /// Per channel: the latest checkpoint its producer announced (0: none)
    /// and the stream position (bytes written) the barrier cuts at.
    announced: Box<[(AtomicU64, AtomicU64, AtomicU64)]>,
    /// Some channel announced a barrier the consumer has not looked at.
    priority: CachePadded<AtomicBool>,
    /// Per channel: the buffer size the consumer's debloater asks for, in
    /// bytes (0: a whole segment).
    buffer_size: Box<[AtomicU32]>,
}

impl ChannelAvailability {
    /// A signal for a gate of `channels` channels whose task parks on
    /// `consumer`.
    pub fn new(channels: usize, consumer: Arc<Parker>) -> Self {
        Self {
            queue: IndexQueue::new(channels.max(1)),
            queued: (0..channels)
                .map(|_| CachePadded::new(AtomicBool::new(false)))
                .collect(),
            consumer,
            announced: (0..channels)
                .map(|_| (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)))
                .collect(),
            priority: CachePadded::new(AtomicBool::new(false)),
            buffer_size: (0..channels).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    /// Consumer side: asks channel `channel`'s producer for buffers of at
    /// most `bytes` (Flink's `notifyNewBufferSize`, which the debloater
    /// sends upstream).
    pub fn set_buffer_size(&self, channel: usize, bytes: u32) {
        // Relaxed: a hint about future buffers; no data depends on it.
        self.buffer_size[channel].store(bytes, Ordering::Relaxed);
    }

    /// Producer side: the buffer size channel `channel`'s consumer asks
    /// for (0: a whole segment).
    #[inline]
    pub fn buffer_size(&self, channel: u32) -> u32 {
        // Relaxed: see `set_buffer_size`.
        self.buffer_size[channel as usize].load(Ordering::Relaxed)
    }

    /// Producer side: checkpoint `id`'s barrier cuts channel `channel` after
    /// `position` bytes (Flink's priority event, which overtakes queued
    /// buffers: here the consumer learns of it at once, and what it has not
    /// read up to `position` is the checkpoint's in-flight data). Call after
    /// publishing every byte up to `position`.
    pub fn announce(&self, channel: u32, id: u64, timestamp: u64, position: u64) {
        let (slot_id, slot_position, slot_timestamp) = &self.announced[channel as usize];
        slot_position.store(position, Ordering::Relaxed);
        slot_timestamp.store(timestamp, Ordering::Relaxed);
        // Release: pairs with the Acquire load in `announcement`: the
        // position is visible with the id.
        slot_id.store(id, Ordering::Release);
        // Release: pairs with the Acquire swap in `take_priority`. Bytes
        // published after this store carry it along: a consumer that
        // acquired them sees the flag (see `has_priority`).
        self.priority.store(true, Ordering::Release);
        self.notify(channel);
    }

    /// Consumer side: whether an announcement waits (one relaxed load; read
    /// after acquiring a producer's published bytes, it is true if the
    /// producer announced before publishing them).
    #[inline]
    pub fn has_priority(&self) -> bool {
        self.priority.load(Ordering::Relaxed)
    }

    /// Consumer side: clears the flag before looking at the channels'
    /// announcements.
    pub fn take_priority(&self) -> bool {
        // Acquire: pairs with the Release store in `announce`.
        self.priority.swap(false, Ordering::Acquire)
    }

    /// Consumer side: channel `channel`'s latest announcement: `(id,
    /// trigger timestamp, position)`.
    pub fn announcement(&self, channel: usize) -> Option<(u64, u64, u64)> {
        let (id, position, timestamp) = &self.announced[channel];
        // Acquire: pairs with the Release store in `announce`.
        match id.load(Ordering::Acquire) {
            0 => None,
            id => Some((
                id,
                timestamp.load(Ordering::Relaxed),
                position.load(Ordering::Relaxed),
            )),
        }
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.queued.len()
    }

    /// The consumer task's parker.
    pub fn consumer(&self) -> &Arc<Parker> {
        &self.consumer
    }

    /// Producer side, after publishing an item into channel `channel`'s ring:
    /// queue the channel unless it is queued, and wake the consumer if it
    /// sleeps. In steady state (channel already queued) this is a fence and
    /// a load.
    #[inline]
    pub fn notify(&self, channel: u32) {
        // SeqCst fence: pairs with the SeqCst fence in `dequeue_empty`. Either
        // we see the flag cleared, or the consumer's re-check sees our item.
        fence(Ordering::SeqCst);
        self.notify_fenced(channel);
    }

    /// [`notify`](Self::notify) for a producer that published items into
    /// several channels' rings and then issued one SeqCst fence for all of
    /// them (a flush over many channels): the flag loads of the channels
    /// then overlap instead of each waiting behind a fence of its own.
    ///
    /// Must follow such a fence, issued after the ring publish.
    #[inline]
    pub fn notify_fenced(&self, channel: u32) {
        if self.queued[channel as usize].load(Ordering::Relaxed) {
            // Queued or watched: the consumer looks at it, unless it sleeps
            // (see the type's docs).
            if self.consumer.is_parked() {
                trace::wake_up(|| self.consumer.unpark());
            }
            return;
        }
        self.enqueue(channel);
    }

    #[cold]
    fn enqueue(&self, channel: u32) {
        // Acquire: pairs with the Release clear in `dequeue_empty`; AcqRel
        // makes sure exactly one of several racing setters enqueues.
        if !self.queued[channel as usize].swap(true, Ordering::AcqRel) {
            self.queue
                .push(channel)
                .expect("a channel is queued at most once");
            trace::wake_up(|| self.consumer.unpark());
        }
    }

    /// Consumer side: the next channel that may have data.
    #[inline]
    pub(super) fn next(&self) -> Option<u32> {
        self.queue.pop()
    }

    /// Consumer side: the channel still has data; queue it behind the others.
    #[inline]
    pub(super) fn requeue(&self, channel: u32) {
        self.queue
            .push(channel)
            .expect("a channel is queued at most once");
    }

    /// Consumer side: channel `channel` looked empty. Clears its flag, then
    /// re-checks with `has_data` and queues it again if an item slipped in.
    #[inline]
    pub(super) fn dequeue_empty(&self, channel: u32, has_data: impl FnOnce() -> bool) {
        // Release: pairs with the Acquire swap in `enqueue`. A swap rather
        // than a store: every write to the flag is then a read-modify-write,
        // which loom models faithfully (it lets a plain store slip between
        // the read and the write of a concurrent swap, loom issue #254, and
        // reported a lost wake-up that cannot happen). On x86 both are one
        // instruction before the fence below.
        self.queued[channel as usize].swap(false, Ordering::Release);
        // SeqCst fence: pairs with the fence in `notify` (see there).
        fence(Ordering::SeqCst);
        if has_data() {
            self.enqueue(channel);
        }
    }

    /// Whether some channel is queued (the park re-check).
    #[inline]
    pub fn has_queued(&self) -> bool {
        !self.queue.is_empty()
    }
}
