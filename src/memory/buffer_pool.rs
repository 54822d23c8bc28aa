//! A result partition's share of the segments (Flink's `LocalBufferPool`).

use crate::sync::atomic::{AtomicU32, Ordering};

use crate::sync::{Arc, IndexQueue, Parker};

use super::{BufferBuilder, BufferConsumer, MemoryError, SegmentPool};

/// A bounded share of the [`SegmentPool`] for one result partition.
///
/// It reserves `min` segments when created (failing cleanly if memory is
/// short) and borrows more from the global pool on demand, up to `max` —
/// Flink's defaults are `subpartitions + 1` and `2 × subpartitions + 8`.
/// When none is free the writer is back-pressured; a recycled segment makes
/// the pool available again and unparks its owner if it sleeps.
///
/// Past `max`, a request may still take up to `max_overdraft` segments
/// from the global pool (Flink's overdraft buffers,
/// `taskmanager.network.memory.max-overdraft-buffers-per-gate`): a task
/// starts a record only while the pool is available, so overdraft is what
/// lets a record spanning segments finish instead of blocking mid-record.
/// While any overdraft segment is out the pool is unavailable, and the
/// first segments to come back repay it to the global pool.
///
/// `request` is called by the owning task; `recycle` from any thread.
#[derive(Debug)]
pub struct BufferPool {
    segments: Arc<SegmentPool>,
    available: IndexQueue,
    min: u32,
    max: u32,
    /// Segments this pool holds (free here or lent out). Only grows.
    owned: AtomicU32,
    /// Overdraft segments lent out now (beyond `owned`).
    overdraft: AtomicU32,
    /// The most overdraft segments at once; lowered only.
    max_overdraft: AtomicU32,
    /// The owner, woken when a segment comes back.
    owner: Arc<Parker>,
}

impl BufferPool {
    /// Flink's default bounds for a partition with `subpartitions` channels:
    /// `(subpartitions + 1, 2 × subpartitions + 8)`.
    pub fn default_bounds(subpartitions: u32) -> (u32, u32) {
        (subpartitions + 1, 2 * subpartitions + 8)
    }

    /// Reserves `min` segments and allows growth to `max`; `owner` is woken
    /// whenever a segment comes back.
    pub fn new(
        segments: Arc<SegmentPool>,
        min: u32,
        max: u32,
        owner: Arc<Parker>,
    ) -> Result<Self, MemoryError> {
        Self::with_overdraft(segments, min, max, 0, owner)
    }

    /// [`new`](Self::new), allowing up to `max_overdraft` overdraft
    /// segments (see the type's docs).
    pub fn with_overdraft(
        segments: Arc<SegmentPool>,
        min: u32,
        max: u32,
        max_overdraft: u32,
        owner: Arc<Parker>,
    ) -> Result<Self, MemoryError> {
        if min == 0 || min > max {
            return Err(MemoryError::PoolBounds { min, max });
        }
        // Room for every segment the pool may hold, overdraft included: a
        // recycle racing an overdraft may park one here before it repays.
        let available = IndexQueue::new((max + max_overdraft) as usize);
        for segment in segments.take_many(min)? {
            available.push(segment).expect("min <= max");
        }
        Ok(Self {
            segments,
            available,
            min,
            max,
            owned: AtomicU32::new(min),
            overdraft: AtomicU32::new(0),
            max_overdraft: AtomicU32::new(max_overdraft),
            owner,
        })
    }

    /// Lowers the overdraft allowance to at most `n` (Flink's
    /// `setMaxOverdraftBuffersPerGate`; a source sets 0). Segments already
    /// lent out come back as usual.
    pub fn set_max_overdraft(&self, n: u32) {
        let _ = self
            .max_overdraft
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |m| {
                (n < m).then_some(n)
            });
    }

    /// The overdraft allowance.
    pub fn max_overdraft(&self) -> u32 {
        self.max_overdraft.load(Ordering::Relaxed)
    }

    /// Overdraft segments lent out now.
    pub fn overdraft_segments(&self) -> u32 {
        self.overdraft.load(Ordering::Relaxed)
    }

    /// A free segment to write, or `None` when the pool is exhausted and
    /// so is its overdraft (back-pressure: wait for
    /// [`is_available`](Self::is_available)).
    #[inline]
    pub fn request(&self) -> Option<BufferBuilder> {
        let segment = match self.available.pop() {
            Some(segment) => segment,
            None => self.grow().or_else(|| self.overdraw())?,
        };
        Some(self.segments.lend(segment))
    }

    /// A segment past `max`, while the overdraft allows one.
    #[cold]
    fn overdraw(&self) -> Option<u32> {
        self.take_counted(&self.overdraft, self.max_overdraft())
    }

    #[cold]
    fn grow(&self) -> Option<u32> {
        self.take_counted(&self.owned, self.max)
    }

    /// A segment from the global pool, counted in `count` while it stays
    /// under `limit` (the count is undone if the global pool is empty).
    fn take_counted(&self, count: &AtomicU32, limit: u32) -> Option<u32> {
        // Relaxed: a count; the segment itself is handed over by the
        // global pool's free list.
        count
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()?;
        let segment = self.segments.take();
        if segment.is_none() {
            count.fetch_sub(1, Ordering::Relaxed);
        }
        segment
    }

    /// Ends writing a segment and returns its reader's handle, which has
    /// every byte to read (a builder no reader saw while it was written:
    /// tests, benchmarks, single-threaded uses).
    #[inline]
    pub fn finish(&self, builder: BufferBuilder) -> BufferConsumer {
        let consumer = builder.consumer();
        let _ = builder.finish();
        consumer
    }

    /// Returns a builder's segment unwritten or unread: only for a builder
    /// whose consumer no reader ever got (an unused builder, a channel whose
    /// reader was gone before it was queued).
    pub fn discard(&self, builder: BufferBuilder) {
        let segment = self.segments.release_unseen(builder);
        let _ = self.give_back(segment);
    }

    /// Another consumer of the same segment, for one more reader
    /// (broadcast).
    #[inline]
    pub fn share(&self, consumer: &mut BufferConsumer) -> BufferConsumer {
        self.segments.share(consumer)
    }

    /// Gives a consumer back; the segment is free again once every consumer
    /// of it is back. Any thread may call this. Returns whether it woke the
    /// pool's owner from a park (a system call).
    ///
    /// # Panics
    /// If the consumer belongs to another segment pool.
    #[inline]
    pub fn recycle(&self, consumer: BufferConsumer) -> bool {
        match self.segments.release(consumer) {
            Some(segment) => self.give_back(segment),
            None => false,
        }
    }

    #[inline]
    fn give_back(&self, segment: u32) -> bool {
        if self.overdraft.load(Ordering::Relaxed) != 0 && self.repay(segment) {
            return self.owner.unpark();
        }
        self.available
            .push(segment)
            .expect("a pool never holds more than max + max_overdraft segments");
        self.owner.unpark()
    }

    /// Repays overdraft from free segments: a recycle that raced an
    /// overdraft may have freed a segment here while the overdraft stayed
    /// owed, and with nothing else lent out nothing would repay it.
    #[cold]
    fn settle(&self) {
        while self.overdraft.load(Ordering::Relaxed) != 0 {
            let Some(segment) = self.available.pop() else {
                return;
            };
            if !self.repay(segment) {
                self.available
                    .push(segment)
                    .expect("a pool never holds more than max + max_overdraft segments");
                return;
            }
        }
    }

    /// Gives `segment` to the global pool against one overdraft segment,
    /// if any is still owed (segments are interchangeable: the count is
    /// what the pool owes).
    #[cold]
    fn repay(&self, segment: u32) -> bool {
        let owed = self
            .overdraft
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
        if owed {
            self.segments.give_back(segment);
        }
        owed
    }

    /// Wakes the owner (a consumer went away; credit it waits for may
    /// never come back through `recycle`).
    pub fn notify_owner(&self) -> bool {
        self.owner.unpark()
    }

    /// Whether a `request` would succeed now without overdraft, and none
    /// is out (a hint, racy by nature).
    #[inline]
    pub fn is_available(&self) -> bool {
        if self.overdraft.load(Ordering::Relaxed) != 0 {
            self.settle();
            if self.overdraft.load(Ordering::Relaxed) != 0 {
                return false;
            }
        }
        !self.available.is_empty()
            || (self.owned.load(Ordering::Relaxed) < self.max
                && self.segments.available_segments() > 0)
    }

    /// Segments free in this pool.
    pub fn available_segments(&self) -> u32 {
        self.available.len() as u32
    }

    /// Segments this pool holds, free or lent out.
    pub fn owned_segments(&self) -> u32 {
        self.owned.load(Ordering::Relaxed)
    }

    /// Segments lent out now (being written, in a ring, or being read),
    /// overdraft included.
    pub fn segments_in_use(&self) -> u32 {
        (self.owned_segments() + self.overdraft_segments())
            .saturating_sub(self.available_segments())
    }

    /// Whether every segment this pool holds is back.
    pub fn is_full(&self) -> bool {
        self.segments_in_use() == 0
    }

    /// Minimum (reserved) segments.
    pub fn min(&self) -> u32 {
        self.min
    }

    /// Maximum segments.
    pub fn max(&self) -> u32 {
        self.max
    }

    /// Bytes per segment.
    pub fn segment_size(&self) -> usize {
        self.segments.segment_size()
    }

    /// The global pool this one draws from.
    pub fn segment_pool(&self) -> &Arc<SegmentPool> {
        &self.segments
    }
}

impl Drop for BufferPool {
    fn drop(&mut self) {
        while let Some(segment) = self.available.pop() {
            self.segments.give_back(segment);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::memory::MemoryConfig;

    fn segments(total: u32) -> Arc<SegmentPool> {
        let config = MemoryConfig {
            segment_size: 4096,
            total_segments: total,
            huge_pages: false,
        };
        Arc::new(SegmentPool::new(&config).unwrap())
    }

    #[test]
    fn reserves_min_and_grows_to_max() {
        let global = segments(8);
        let pool = BufferPool::new(global.clone(), 2, 4, Arc::default()).unwrap();
        assert_eq!(global.available_segments(), 6);
        let builders: Vec<_> = (0..4).map(|_| pool.request().unwrap()).collect();
        assert!(pool.request().is_none(), "max is 4");
        assert!(!pool.is_available());
        assert_eq!(global.available_segments(), 4);
        for b in builders {
            pool.discard(b);
        }
        assert!(pool.is_full());
        drop(pool);
        assert!(global.is_full());
    }

    #[test]
    fn overdraft_lends_past_max_and_is_repaid_first() {
        let global = segments(8);
        let pool = BufferPool::with_overdraft(global.clone(), 2, 2, 2, Arc::default()).unwrap();
        let mut out: Vec<_> = (0..2).map(|_| pool.request().unwrap()).collect();
        assert!(!pool.is_available(), "max reached");
        out.extend((0..2).map(|_| pool.request().unwrap()));
        assert_eq!(
            (pool.overdraft_segments(), global.available_segments()),
            (2, 4)
        );
        assert!(pool.request().is_none(), "overdraft of 2 used up");
        assert_eq!(pool.segments_in_use(), 4);
        // The first two back repay the overdraft to the global pool; the
        // pool stays unavailable until a segment of its own is free.
        pool.discard(out.pop().unwrap());
        assert_eq!(
            (pool.overdraft_segments(), global.available_segments()),
            (1, 5)
        );
        assert!(!pool.is_available(), "overdraft still out");
        pool.discard(out.pop().unwrap());
        assert_eq!(
            (pool.overdraft_segments(), global.available_segments()),
            (0, 6)
        );
        assert!(!pool.is_available(), "both own segments still out");
        pool.discard(out.pop().unwrap());
        assert!(pool.is_available());
        // A lowered allowance is kept; a raise is ignored.
        pool.set_max_overdraft(0);
        pool.set_max_overdraft(9);
        assert_eq!(pool.max_overdraft(), 0);
        let again = pool.request().unwrap();
        assert!(pool.request().is_none(), "no overdraft any more");
        pool.discard(again);
        pool.discard(out.pop().unwrap());
        assert!(pool.is_full());
        drop(pool);
        assert!(global.is_full());
    }

    #[test]
    fn a_free_segment_repays_an_overdraft_a_recycle_raced() {
        // A recycle that saw no overdraft owed parks its segment here while
        // the owner overdraws: with nothing else out, only the free segment
        // can repay it, or the pool would stay unavailable for good.
        let global = segments(4);
        let pool = BufferPool::with_overdraft(global.clone(), 1, 1, 1, Arc::default()).unwrap();
        let own = pool.request().unwrap();
        let overdrawn = pool.request().unwrap();
        assert_eq!(pool.overdraft_segments(), 1);
        let segment = pool.segments.release_unseen(own);
        pool.available.push(segment).unwrap();
        pool.discard(overdrawn); // repays: the count is what is owed
        assert_eq!(pool.overdraft_segments(), 0);
        assert!(pool.is_available());
        let own = pool.request().unwrap();
        let overdrawn = pool.request().unwrap();
        let segment = pool.segments.release_unseen(overdrawn);
        pool.available.push(segment).unwrap();
        assert!(!pool.is_available(), "its own segment is still out");
        assert_eq!(pool.overdraft_segments(), 0, "the parked one repaid it");
        assert_eq!(global.available_segments(), 3);
        pool.discard(own);
        assert!(pool.is_available() && pool.is_full());
    }

    #[test]
    fn small_appends_never_fill_the_builder() {
        let global = segments(1);
        let pool = BufferPool::new(global.clone(), 1, 1, Arc::default()).unwrap();
        let mut builder = pool.request().unwrap();
        // 4096 bytes hold 341 twelve-byte frames with 4 bytes to spare; the
        // 341st would leave exactly 4, so it still goes in (more than 12
        // were free), and the 342nd is refused: it would leave none.
        let mut appended = 0u32;
        while builder.append_small::<12>(appended.to_le_bytes().repeat(3).try_into().unwrap()) {
            appended += 1;
        }
        assert_eq!(appended, 341);
        assert_eq!(builder.remaining(), 4);
        assert!(!builder.is_full(), "a refused append wrote nothing");
        // What was refused still fits the spanning way, byte by byte.
        assert_eq!(builder.append(&[0xff; 12]), 4);
        assert!(builder.is_full());
        let mut consumer = pool.finish(builder);
        let (buffer, finished) = consumer.build();
        let buffer = buffer.unwrap();
        assert!(finished);
        let bytes = buffer.as_slice();
        for (i, frame) in bytes[..341 * 12].chunks_exact(12).enumerate() {
            assert_eq!(frame, (i as u32).to_le_bytes().repeat(3), "frame {i}");
        }
        assert_eq!(&bytes[341 * 12..], [0xff; 4]);
        pool.recycle(consumer);
        drop(pool);
        assert!(global.is_full());
    }

    #[test]
    fn shared_segment_returns_after_last_consumer() {
        let global = segments(2);
        let pool = BufferPool::new(global.clone(), 1, 1, Arc::default()).unwrap();
        let mut builder = pool.request().unwrap();
        assert_eq!(builder.append(b"broadcast"), 9);
        let mut first = pool.finish(builder);
        let mut second = pool.share(&mut first);
        let third = pool.share(&mut first);
        assert_eq!(second.build().0.unwrap().as_slice(), b"broadcast");
        assert!(second.is_consumed() && !third.is_consumed());
        pool.recycle(first);
        pool.recycle(third);
        assert!(!pool.is_full());
        assert!(pool.request().is_none());
        pool.recycle(second);
        assert!(pool.is_full());
        let builder = pool.request().expect("the segment came back");
        pool.discard(builder);
    }

    #[test]
    fn a_segment_comes_back_only_through_its_consumer_once_finished() {
        let global = segments(2);
        let pool = BufferPool::new(global.clone(), 1, 1, Arc::default()).unwrap();
        let mut builder = pool.request().unwrap();
        let mut consumer = builder.consumer();
        builder.append(b"ab");
        builder.publish();
        builder.append(b"cde");
        assert_eq!(builder.unpublished(), 3);
        assert_eq!(consumer.build().0.unwrap().as_slice(), b"ab");
        builder.publish();
        builder.append(b"f");
        assert_eq!(consumer.build().0.unwrap().as_slice(), b"cde");
        assert_eq!(pool.segments_in_use(), 1);
        assert!(builder.finish());
        let (last, finished) = consumer.build();
        assert_eq!((last.unwrap().as_slice(), finished), (&b"f"[..], true));
        assert!(consumer.is_consumed());
        pool.recycle(consumer);
        assert!(pool.is_full());
    }

    #[test]
    fn too_little_memory_is_an_error_not_a_panic() {
        let global = segments(3);
        let err = BufferPool::new(global.clone(), 4, 8, Arc::default()).unwrap_err();
        assert!(matches!(
            err,
            MemoryError::InsufficientSegments {
                required: 4,
                available: 3,
                total: 3
            }
        ));
        assert!(err.to_string().contains("insufficient network buffers"));
        assert!(
            global.is_full(),
            "a failed reservation gives back what it took"
        );
        assert!(matches!(
            BufferPool::new(global, 3, 2, Arc::default()),
            Err(MemoryError::PoolBounds { min: 3, max: 2 })
        ));
    }

    #[test]
    #[should_panic(expected = "does not belong to this segment pool")]
    fn foreign_buffer_is_refused() {
        let a = BufferPool::new(segments(1), 1, 1, Arc::default()).unwrap();
        let b = BufferPool::new(segments(1), 1, 1, Arc::default()).unwrap();
        let consumer = a.finish(a.request().unwrap());
        b.recycle(consumer);
    }
}
