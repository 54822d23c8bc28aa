//! The global free list of segments (Flink's `NetworkBufferPool`).

use std::mem::ManuallyDrop;
use std::time::Instant;

use crate::sync::atomic::{fence, AtomicUsize, Ordering};
use crate::sync::{Arc, CachePadded, IndexQueue, Mutex, Parker};

use super::buffer::SegmentState;
use super::{BufferBuilder, BufferConsumer, MemoryConfig, MemoryError, MemoryRegion};

/// Owns the region and the free list of its segments; lends segments to
/// [`BufferPool`](super::BufferPool)s and keeps each lent segment's shared
/// state: the writer's published position and, for a broadcast segment,
/// its readers' reference count.
#[derive(Debug)]
pub struct SegmentPool {
    region: ManuallyDrop<MemoryRegion>,
    free: IndexQueue,
    /// Per segment: the writer's position and the shared reference count,
    /// each on its own cache line.
    states: Box<[CachePadded<SegmentState>]>,
    /// Serialises [`take_many`](Self::take_many), so two reservations never
    /// each hold part of what they need and both fail.
    reserving: Mutex<()>,
    /// Setups waiting for segments to come back (see
    /// [`wait_for_segments`](Self::wait_for_segments)); cold path.
    waiters: Mutex<Waiters>,
    /// `waiters.list.len()`, so `give_back` skips the lock when nobody waits.
    waiting: AtomicUsize,
}

/// How a wait for free segments ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentWait {
    /// Enough segments are free now (a hint: take them, and wait again if
    /// another pool was faster).
    Available,
    /// The waiter's parker was interrupted (its task is canceled or failed).
    Interrupted,
    /// The deadline passed; `available` segments were free then.
    TimedOut {
        /// Segments free when the wait gave up.
        available: u32,
    },
}

#[derive(Debug, Default)]
struct Waiters {
    next_id: u64,
    list: Vec<Waiter>,
}

#[derive(Debug)]
struct Waiter {
    id: u64,
    required: u32,
    parker: Arc<Parker>,
}

impl SegmentPool {
    /// Maps the region and puts every segment on the free list.
    pub fn new(config: &MemoryConfig) -> Result<Self, MemoryError> {
        let region = MemoryRegion::new(config)?;
        let segments = region.segments();
        let free = IndexQueue::new(segments as usize);
        for index in 0..segments {
            free.push(index).expect("free list holds every segment");
        }
        Ok(Self {
            region: ManuallyDrop::new(region),
            free,
            states: (0..segments)
                .map(|_| CachePadded::new(SegmentState::default()))
                .collect(),
            reserving: Mutex::new(()),
            waiters: Mutex::new(Waiters::default()),
            waiting: AtomicUsize::new(0),
        })
    }

    /// Bytes per segment.
    pub fn segment_size(&self) -> usize {
        self.region.segment_size()
    }

    /// Segments in the region.
    pub fn total_segments(&self) -> u32 {
        self.region.segments()
    }

    /// Segments on the free list now.
    pub fn available_segments(&self) -> u32 {
        self.free.len() as u32
    }

    /// Whether every segment is back on the free list.
    pub fn is_full(&self) -> bool {
        self.available_segments() == self.total_segments()
    }

    /// The backing region.
    pub fn region(&self) -> &MemoryRegion {
        &self.region
    }

    /// Takes a segment off the free list.
    #[inline]
    pub(super) fn take(&self) -> Option<u32> {
        self.free.pop()
    }

    /// Takes `n` segments, or none if fewer are free.
    pub(super) fn take_many(&self, n: u32) -> Result<Vec<u32>, MemoryError> {
        let reserving = self.reserving.lock().expect("reservation lock");
        let mut taken = Vec::with_capacity(n as usize);
        while taken.len() < n as usize {
            match self.take() {
                Some(segment) => taken.push(segment),
                None => {
                    let available = self.available_segments() + taken.len() as u32;
                    for segment in taken {
                        self.push_free(segment);
                    }
                    drop(reserving);
                    // A setup that looked while this one held part of the
                    // free list may be waiting for exactly these segments.
                    self.notify_waiters();
                    return Err(MemoryError::InsufficientSegments {
                        required: n,
                        available,
                        total: self.total_segments(),
                    });
                }
            }
        }
        Ok(taken)
    }

    /// Puts a segment back on the free list and wakes setups waiting for
    /// segments (Flink's `NetworkBufferPool.recycle` notifying
    /// `availableMemorySegments`). Only whole pools give segments back here
    /// (a partition's pool on release), never the per-buffer recycle path.
    pub(super) fn give_back(&self, segment: u32) {
        self.push_free(segment);
        self.notify_waiters();
    }

    #[inline]
    fn push_free(&self, segment: u32) {
        self.free
            .push(segment)
            .expect("free list has room for every segment");
    }

    /// Wakes every waiter whose request the free list can now meet.
    fn notify_waiters(&self) {
        // SeqCst fence: pairs with the SeqCst fence in `wait_for_segments`.
        // Either this side's push is ordered before the waiter's fence (the
        // waiter's check sees the segment), or the waiter's registration is
        // ordered before this fence (the load below sees it and wakes it).
        fence(Ordering::SeqCst);
        if self.waiting.load(Ordering::Relaxed) == 0 {
            return;
        }
        self.notify_waiters_slow();
    }

    #[cold]
    fn notify_waiters_slow(&self) {
        let waiters = self.waiters.lock().expect("waiters lock");
        let available = self.available_segments();
        for waiter in waiters.list.iter().filter(|w| w.required <= available) {
            waiter.parker.unpark();
        }
    }

    /// Parks the caller on `parker` until `required` segments are free,
    /// `parker` is interrupted, or `deadline` (`None`: never) passes —
    /// Flink's `NetworkBufferPool.requestMemorySegmentsBlocking`, without
    /// holding part of the request while waiting. Woken by segments given
    /// back to this pool; no busy waiting.
    ///
    /// `parker` must be the calling thread's own (a task's parker).
    pub fn wait_for_segments(
        &self,
        required: u32,
        parker: &Arc<Parker>,
        deadline: Option<Instant>,
    ) -> SegmentWait {
        let id = {
            let mut waiters = self.waiters.lock().expect("waiters lock");
            let id = waiters.next_id;
            waiters.next_id += 1;
            waiters.list.push(Waiter {
                id,
                required,
                parker: parker.clone(),
            });
            self.waiting.store(waiters.list.len(), Ordering::Relaxed);
            id
        };
        // SeqCst fence: pairs with the SeqCst fence in `notify_waiters` (see
        // there); orders the registration before the checks below.
        fence(Ordering::SeqCst);
        let ready = || self.available_segments() >= required;
        let outcome = loop {
            if ready() {
                break SegmentWait::Available;
            }
            if parker.is_interrupted() {
                break SegmentWait::Interrupted;
            }
            let timeout = match deadline {
                None => None,
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => {
                        break SegmentWait::TimedOut {
                            available: self.available_segments(),
                        }
                    }
                },
            };
            parker.park_unless(ready, timeout);
        };
        let mut waiters = self.waiters.lock().expect("waiters lock");
        waiters.list.retain(|w| w.id != id);
        self.waiting.store(waiters.list.len(), Ordering::Relaxed);
        outcome
    }

    /// Setups waiting in [`wait_for_segments`](Self::wait_for_segments) now.
    pub fn waiting_requests(&self) -> usize {
        self.waiters.lock().expect("waiters lock").list.len()
    }

    /// The writer for a segment just taken off a free list.
    #[inline]
    pub(super) fn lend(&self, segment: u32) -> BufferBuilder {
        BufferBuilder::new(
            self.region.segment_ptr(segment),
            &self.states[segment as usize],
            segment,
            self.region.segment_size(),
        )
    }

    /// Another consumer of `consumer`'s segment, for one more reader
    /// (broadcast).
    #[inline]
    pub(super) fn share(&self, consumer: &mut BufferConsumer) -> BufferConsumer {
        let segment = self.check_owned(consumer);
        let refs = &consumer.state().refs;
        if consumer.is_shared() {
            // Relaxed: the caller holds a consumer, so the count cannot
            // reach zero concurrently (as in `Arc::clone`).
            refs.fetch_add(1, Ordering::Relaxed);
        } else {
            // The only consumer so far: no one else reads the count. The
            // consumers carry it to other threads through Release/Acquire
            // hand-offs (the rings).
            refs.store(2, Ordering::Relaxed);
        }
        debug_assert_eq!(consumer.segment(), segment);
        consumer.alias()
    }

    /// Drops one consumer; the segment index if it was the last, so the
    /// segment is free to be written again.
    #[inline]
    pub(super) fn release(&self, consumer: BufferConsumer) -> Option<u32> {
        let segment = self.check_owned(&consumer);
        if !consumer.is_shared() {
            return Some(segment);
        }
        // Release: pairs with the Acquire fence below in whichever thread
        // drops the last consumer, so every reader's reads happen before the
        // segment is written again (as in `Arc::drop`).
        if consumer.state().refs.fetch_sub(1, Ordering::Release) != 1 {
            return None;
        }
        fence(Ordering::Acquire);
        Some(segment)
    }

    /// Returns a builder's segment that no consumer ever saw.
    #[inline]
    pub(super) fn release_unseen(&self, builder: BufferBuilder) -> u32 {
        let segment = builder.segment();
        assert!(
            self.region.segment_of(builder.ptr()) == Some(segment),
            "builder of segment {segment} does not belong to this segment pool"
        );
        segment
    }

    /// The consumer's segment index, after checking the handle points into
    /// that segment of this region (a foreign handle would hand one segment
    /// to two writers).
    #[inline]
    fn check_owned(&self, consumer: &BufferConsumer) -> u32 {
        let segment = consumer.segment();
        assert!(
            self.region.segment_of(consumer.ptr()) == Some(segment),
            "buffer of segment {segment} does not belong to this segment pool"
        );
        segment
    }
}

impl Drop for SegmentPool {
    fn drop(&mut self) {
        if self.is_full() {
            // SAFETY: every segment is back on the free list, so no handle points into the region any more; it is never used again.
            unsafe { ManuallyDrop::drop(&mut self.region) };
        }
        // Otherwise some handle was leaked and may still be read: keep the
        // mapping alive for the rest of the process rather than unmap memory
        // a handle points to.
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::memory::{BufferPool, MemoryConfig};

    fn global(total: u32) -> Arc<SegmentPool> {
        let config = MemoryConfig {
            segment_size: 4096,
            total_segments: total,
            huge_pages: false,
        };
        Arc::new(SegmentPool::new(&config).unwrap())
    }

    /// Runs `wait_for_segments(required, …)` on a thread of its own (the
    /// parker is that thread's) and returns once it is registered.
    fn waiter(
        global: &Arc<SegmentPool>,
        required: u32,
        deadline: Option<Instant>,
    ) -> (Arc<Parker>, std::thread::JoinHandle<SegmentWait>) {
        let parker = Arc::new(Parker::new());
        let handle = {
            let (global, parker) = (global.clone(), parker.clone());
            std::thread::spawn(move || global.wait_for_segments(required, &parker, deadline))
        };
        let guard = Instant::now() + std::time::Duration::from_secs(20);
        while global.waiting_requests() == 0 && !handle.is_finished() {
            assert!(Instant::now() < guard, "the waiter never registered");
            std::thread::yield_now();
        }
        (parker, handle)
    }

    #[test]
    fn enough_free_segments_means_no_wait() {
        let global = global(4);
        let parker = Arc::new(Parker::new());
        assert_eq!(
            global.wait_for_segments(4, &parker, None),
            SegmentWait::Available
        );
        assert_eq!(global.waiting_requests(), 0);
    }

    #[test]
    fn a_waiter_wakes_when_a_pool_gives_its_segments_back() {
        let global = global(4);
        let held = BufferPool::new(global.clone(), 3, 3, Arc::default()).unwrap();
        let (_, handle) = waiter(&global, 2, None);
        drop(held);
        assert_eq!(handle.join().unwrap(), SegmentWait::Available);
        assert_eq!(global.waiting_requests(), 0);
        assert!(global.is_full());
    }

    #[test]
    fn an_interrupt_ends_the_wait() {
        let global = global(4);
        let held = BufferPool::new(global.clone(), 4, 4, Arc::default()).unwrap();
        let (parker, handle) = waiter(&global, 2, None);
        parker.interrupt();
        assert_eq!(handle.join().unwrap(), SegmentWait::Interrupted);
        assert_eq!(global.waiting_requests(), 0);
        drop(held);
        assert!(global.is_full());
    }

    #[test]
    fn the_deadline_ends_the_wait_and_says_what_was_free() {
        let global = global(4);
        let held = BufferPool::new(global.clone(), 3, 3, Arc::default()).unwrap();
        let parker = Arc::new(Parker::new());
        assert_eq!(
            global.wait_for_segments(2, &parker, Some(Instant::now())),
            SegmentWait::TimedOut { available: 1 }
        );
        assert_eq!(global.waiting_requests(), 0);
        drop(held);
        assert!(global.is_full());
    }
}
