//! Handles to a segment's bytes, as Flink's `BufferBuilder` /
//! `BufferConsumer` pair: the writer's [`BufferBuilder`] appends and
//! publishes how far it wrote; the reader's [`BufferConsumer`] slices
//! [`Buffer`]s up to that point while the writer goes on appending.

use std::ptr::NonNull;

use crate::sync::atomic::{AtomicU32, Ordering};

/// The shared state of one lent segment: the writer's committed position
/// and, for a broadcast segment, how many readers still hold it. One per
/// segment, on a cache line of its own (the writer stores the position on
/// every flush while the reader loads it; neighbouring segments belong to
/// other channels).
#[derive(Debug, Default)]
pub struct SegmentState {
    /// Bytes the writer has made readable, with [`FINISHED`] once it will
    /// write no more (Flink's `PositionMarker`).
    position: AtomicU32,
    /// Readers still holding a shared (broadcast) segment.
    pub(super) refs: AtomicU32,
    /// How often the segment was lent: tells its lives apart (trace flows).
    generation: AtomicU32,
}

/// Set in [`SegmentState::position`] when the writer finished the segment.
const FINISHED: u32 = 1 << 31;
/// Set in `BufferConsumer::meta` when other consumers of the segment exist
/// (broadcast), so recycling counts down `refs`. An exclusive segment is
/// recycled without touching the count, which saves two cross-core
/// cache-line transfers per segment.
const SHARED: u32 = 1 << 31;

/// The unique writer of one segment, handed out by a
/// [`BufferPool`](super::BufferPool) (Flink's `BufferBuilder`).
///
/// Bytes are appended at the end and stay private to the writer until
/// [`publish`](Self::publish) makes them readable with one Release store of
/// the position; [`finish`](Self::finish) publishes the rest and promises
/// that nothing more will be written, after which the segment belongs to
/// its readers. The reader's handle is the [`BufferConsumer`] made by
/// [`consumer`](Self::consumer), typically queued in a channel before the
/// first byte is written (a segment enters a channel once).
#[derive(Debug)]
#[must_use = "a buffer builder must be finished or discarded, or its segment is lost"]
pub struct BufferBuilder {
    ptr: NonNull<u8>,
    state: NonNull<SegmentState>,
    segment: u32,
    generation: u32,
    capacity: u32,
    len: u32,
    /// The position last published.
    published: u32,
}

// SAFETY: the builder is the only writer of its segment (readers read only what it published, which it never writes again); moving it to another thread moves that exclusive write access. `state` points into the segment pool, which outlives every handle.
unsafe impl Send for BufferBuilder {}

impl BufferBuilder {
    /// Wraps segment `segment` at `ptr` of `capacity` bytes, whose shared
    /// state is `state`; the position starts at 0.
    ///
    /// Only `SegmentPool::lend` builds these, for a segment it has just taken
    /// off a free list, which makes the builder its only handle.
    #[inline]
    pub(super) fn new(
        ptr: NonNull<u8>,
        state: &SegmentState,
        segment: u32,
        capacity: usize,
    ) -> Self {
        // Relaxed: no reader holds the segment yet; its consumer reaches a
        // reader through a Release/Acquire hand-off (a ring) after this.
        state.position.store(0, Ordering::Relaxed);
        // Relaxed: only the lending thread touches it, and the free list
        // orders one lend after the previous life's.
        let generation = state.generation.load(Ordering::Relaxed).wrapping_add(1);
        state.generation.store(generation, Ordering::Relaxed);
        Self {
            ptr,
            state: NonNull::from(state),
            segment,
            generation,
            capacity: capacity as u32,
            len: 0,
            published: 0,
        }
    }

    /// Index of the segment within its region.
    #[inline]
    pub fn segment(&self) -> u32 {
        self.segment
    }

    /// Which life of the segment this is (it counts lends).
    #[inline]
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// Bytes written so far.
    #[inline]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Bytes published so far.
    #[inline]
    pub fn published(&self) -> usize {
        self.published as usize
    }

    /// Whether nothing was written yet.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Segment capacity in bytes.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.capacity as usize
    }

    /// Bytes written but not yet published.
    #[inline]
    pub fn unpublished(&self) -> usize {
        (self.len - self.published) as usize
    }

    /// Bytes still free.
    #[inline]
    pub fn remaining(&self) -> usize {
        (self.capacity - self.len) as usize
    }

    /// Caps what this builder writes at `size` bytes (never below what is
    /// written, never above the segment): a debloated channel's buffers
    /// carry fewer bytes (Flink's `BufferBuilder.trim`).
    #[inline]
    pub fn trim(&mut self, size: usize) {
        let size = u32::try_from(size).unwrap_or(u32::MAX);
        self.capacity = self.capacity.min(size.max(self.len));
    }

    /// Whether no byte is free.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.len == self.capacity
    }

    /// The reader's handle to this segment: it reads what
    /// [`publish`](Self::publish) and [`finish`](Self::finish) make
    /// readable. Make one per segment (share it for more readers) and give
    /// it to the reader before or while writing.
    #[inline]
    pub fn consumer(&self) -> BufferConsumer {
        BufferConsumer {
            ptr: self.ptr,
            state: self.state,
            segment: self.segment,
            generation: self.generation,
            read: 0,
            meta: 0,
        }
    }

    /// The free tail of the segment, to write into before [`commit`](Self::commit).
    #[inline]
    pub fn unused_mut(&mut self) -> &mut [u8] {
        // SAFETY: `len <= capacity`, so the range lies inside the segment; the builder is its only writer and readers read only below `published <= len`.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.ptr.as_ptr().add(self.len as usize),
                (self.capacity - self.len) as usize,
            )
        }
    }

    /// Hints the CPU to fetch, for writing, the cache line `ahead` bytes past
    /// the write position (nothing if that is past the segment). A recycled
    /// segment's lines that its reader touched sit in the reader's cache;
    /// claiming them a few records early overlaps that hand-back with the
    /// copying instead of stalling on it.
    #[inline(always)]
    pub fn prefetch_for_write(&self, ahead: usize) {
        let offset = self.len as usize + ahead;
        #[cfg(target_arch = "x86_64")]
        if offset < self.capacity as usize {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_ET0};
            let line = self.ptr.as_ptr().wrapping_add(offset);
            // SAFETY: SSE is part of x86-64's baseline; a prefetch never faults, and `line` lies inside the segment anyway.
            unsafe { _mm_prefetch::<_MM_HINT_ET0>(line as *const i8) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = offset;
    }

    /// Marks `n` more bytes as written (not yet readable).
    ///
    /// # Panics
    /// If `n` exceeds [`remaining`](Self::remaining).
    #[inline]
    pub fn commit(&mut self, n: usize) {
        assert!(n <= self.remaining(), "commit past the end of the segment");
        self.len += n as u32;
    }

    /// Appends `bytes` if that leaves the builder not full (more than `N`
    /// bytes free); otherwise writes nothing. Returns whether it appended.
    /// The small-record fast path: one room check, `N` bytes of stores.
    #[inline(always)]
    pub fn append_small<const N: usize>(&mut self, bytes: [u8; N]) -> bool {
        if self.capacity - self.len <= N as u32 {
            return false;
        }
        // SAFETY: more than `N` bytes are free past `len`, inside the segment, which this builder alone writes.
        unsafe {
            self.ptr
                .as_ptr()
                .add(self.len as usize)
                .cast::<[u8; N]>()
                .write_unaligned(bytes)
        };
        self.len += N as u32;
        true
    }

    /// Appends as much of `bytes` as fits; returns how many bytes were taken.
    #[inline]
    pub fn append(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(self.remaining());
        self.unused_mut()[..n].copy_from_slice(&bytes[..n]);
        self.len += n as u32;
        n
    }

    /// Makes every byte written so far readable (a flush): one Release
    /// store of the position, nothing if nothing new was written. Returns
    /// whether the reader has new bytes.
    #[inline]
    pub fn publish(&mut self) -> bool {
        if self.len == self.published {
            return false;
        }
        // Release: pairs with the Acquire load in `BufferConsumer::build`;
        // the bytes below `len` are written before a reader slices them.
        self.state().position.store(self.len, Ordering::Release);
        self.published = self.len;
        true
    }

    /// Ends writing: publishes the rest and marks the segment finished, so
    /// its reader recycles it once it has read it to the end (Flink's
    /// `BufferBuilder.finish`). Returns whether bytes were published.
    #[inline]
    pub fn finish(self) -> bool {
        // Release: pairs with the Acquire load in `BufferConsumer::build`;
        // every byte is written before a reader sees the segment finished,
        // and the builder never touches the segment again after this store.
        self.state()
            .position
            .store(self.len | FINISHED, Ordering::Release);
        self.len != self.published
    }

    #[inline]
    pub(super) fn ptr(&self) -> NonNull<u8> {
        self.ptr
    }

    #[inline]
    fn state(&self) -> &SegmentState {
        // SAFETY: `state` points into the segment pool's state table, which lives as long as the pool, and the pool outlives every handle it lent.
        unsafe { self.state.as_ref() }
    }
}

/// The reader's handle to a segment a [`BufferBuilder`] writes (Flink's
/// `BufferConsumer`): it travels the channel once, and
/// [`build`](Self::build) slices the bytes published since the last call,
/// while the writer may still be appending.
///
/// It owns the segment once the writer finished it: recycling it
/// ([`BufferPool::recycle`](super::BufferPool::recycle)) returns the
/// segment, which a reader does when [`is_consumed`](Self::is_consumed).
/// Broadcast gives every reader a consumer of the same segment
/// ([`BufferPool::share`](super::BufferPool::share)); the segment returns
/// when the last is recycled.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a buffer consumer must be recycled to its pool, or its segment is lost"]
pub struct BufferConsumer {
    ptr: NonNull<u8>,
    state: NonNull<SegmentState>,
    segment: u32,
    generation: u32,
    /// Bytes sliced so far.
    read: u32,
    /// [`SHARED`], when other consumers of the segment exist.
    meta: u32,
}

// SAFETY: a consumer reads only bytes its writer published (below the Acquire-loaded position), which the writer never writes again, and the segment is written again only after its last consumer is recycled. Sending it sends that read access.
unsafe impl Send for BufferConsumer {}

/// What a [`BufferConsumer`] found in one look at the writer's position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Readable {
    /// Bytes published and not yet sliced.
    pub unread: u32,
    /// Whether the writer finished the segment.
    pub finished: bool,
}

impl BufferConsumer {
    /// Index of the segment within its region.
    #[inline]
    pub fn segment(&self) -> u32 {
        self.segment
    }

    /// Which life of the segment this is (see [`BufferBuilder::generation`]).
    #[inline]
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// Whether other consumers of the same segment may exist (broadcast).
    #[inline]
    pub fn is_shared(&self) -> bool {
        self.meta & SHARED != 0
    }

    /// Bytes sliced so far.
    #[inline]
    pub fn read_position(&self) -> usize {
        self.read as usize
    }

    /// One look at the writer's position (an Acquire load).
    #[inline]
    pub fn readable(&self) -> Readable {
        let position = self.load();
        Readable {
            unread: (position & !FINISHED) - self.read,
            finished: position & FINISHED != 0,
        }
    }

    /// Whether the writer published bytes not sliced yet, or finished the
    /// segment: whether the reader has something to do with it.
    #[inline]
    pub fn has_news(&self) -> bool {
        let readable = self.readable();
        readable.unread != 0 || readable.finished
    }

    /// The bytes published since the last call, as a [`Buffer`] (Flink's
    /// `BufferConsumer.build`), and whether the writer had finished the
    /// segment when they were read: then the slice reaches its end and the
    /// consumer is [consumed](Self::is_consumed).
    #[inline]
    pub fn build(&mut self) -> (Option<Buffer>, bool) {
        let position = self.load();
        let end = position & !FINISHED;
        let finished = position & FINISHED != 0;
        if end == self.read {
            return (None, finished);
        }
        let buffer = Buffer {
            // SAFETY: `read <= end <= capacity`, so the pointer stays inside the segment or one past its end and is not null.
            ptr: unsafe { self.ptr.add(self.read as usize) },
            len: end - self.read,
        };
        self.read = end;
        (Some(buffer), finished)
    }

    /// The bytes published and not sliced yet, left unsliced (an unaligned
    /// checkpoint copies in-flight bytes without consuming them).
    pub fn unread(&self) -> &[u8] {
        let end = self.load() & !FINISHED;
        // SAFETY: `read <= end <= capacity`: the bytes lie in the segment, were published before the Acquire load above, and are not written again while this consumer is held (as for `build`'s slices).
        unsafe {
            std::slice::from_raw_parts(
                self.ptr.as_ptr().add(self.read as usize),
                (end - self.read) as usize,
            )
        }
    }

    /// Every byte published in the segment, from its start (a segment
    /// queued behind the one being read).
    pub fn whole_published(&self) -> &[u8] {
        let end = self.load() & !FINISHED;
        // SAFETY: as in `unread`, from the segment's start.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), end as usize) }
    }

    /// Whether the writer finished the segment and every byte was sliced:
    /// the segment can go back to its pool.
    #[inline]
    pub fn is_consumed(&self) -> bool {
        self.load() == self.read | FINISHED
    }

    #[inline]
    fn load(&self) -> u32 {
        // SAFETY: `state` points into the segment pool's state table, which outlives every handle.
        let state = unsafe { self.state.as_ref() };
        // Acquire: pairs with the Release stores in `BufferBuilder::publish`
        // and `finish`; the bytes below the position are visible after it.
        state.position.load(Ordering::Acquire)
    }

    #[inline]
    pub(super) fn ptr(&self) -> NonNull<u8> {
        self.ptr
    }

    #[inline]
    pub(super) fn state(&self) -> &SegmentState {
        // SAFETY: as in `load`.
        unsafe { self.state.as_ref() }
    }

    /// Marks the consumer shared and returns another one of the same
    /// segment, at the start; the caller accounts for both in the
    /// segment's reference count.
    #[inline]
    pub(super) fn alias(&mut self) -> BufferConsumer {
        self.meta |= SHARED;
        BufferConsumer {
            ptr: self.ptr,
            state: self.state,
            segment: self.segment,
            generation: self.generation,
            read: 0,
            meta: self.meta,
        }
    }
}

/// A read-only slice of a segment's published bytes (Flink's `Buffer` as a
/// reader gets it from `BufferConsumer.build`). It owns nothing: it is
/// valid while the [`BufferConsumer`] it came from is not recycled, which
/// the reader ensures by dropping it first.
#[derive(Debug, PartialEq, Eq)]
pub struct Buffer {
    ptr: NonNull<u8>,
    len: u32,
}

// SAFETY: a `Buffer` reads published bytes no one writes while its consumer is held (see `BufferConsumer`'s `Send`).
unsafe impl Send for Buffer {}

impl Buffer {
    /// Number of bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the slice holds no bytes.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes from `at` on, as a slice of their own (what a reader left
    /// unread).
    ///
    /// # Panics
    /// If `at` is past the end.
    #[inline]
    pub fn tail(&self, at: usize) -> Buffer {
        assert!(
            at <= self.len(),
            "tail at {at} of a {}-byte slice",
            self.len
        );
        Buffer {
            // SAFETY: `at <= len`, so the pointer stays inside (or one past) the same published region.
            ptr: unsafe { NonNull::new_unchecked(self.ptr.as_ptr().add(at)) },
            len: self.len - at as u32,
        }
    }

    /// The bytes.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr..ptr+len` lies in a live segment (the region is never unmapped while handles are out); those bytes were published before the slice was made and are not written again while its consumer is held.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len()) }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// A builder and consumer over a heap array standing in for a segment.
    fn pair(bytes: &mut [u8], state: &SegmentState) -> (BufferBuilder, BufferConsumer) {
        let builder = BufferBuilder::new(
            NonNull::new(bytes.as_mut_ptr()).unwrap(),
            state,
            0,
            bytes.len(),
        );
        let consumer = builder.consumer();
        (builder, consumer)
    }

    #[test]
    fn the_reader_slices_what_was_published_while_the_writer_appends() {
        let mut segment = [0u8; 16];
        let state = SegmentState::default();
        let (mut builder, mut consumer) = pair(&mut segment, &state);
        builder.append(b"abc");
        assert_eq!(consumer.build(), (None, false), "not published yet");
        assert!(!consumer.has_news());
        assert!(builder.publish());
        assert!(!builder.publish(), "nothing new: no store");
        builder.append(b"de");
        let (slice, finished) = consumer.build();
        assert_eq!((slice.unwrap().as_slice(), finished), (&b"abc"[..], false));
        assert!(!consumer.is_consumed());
        builder.append(b"f");
        assert!(builder.finish(), "the rest was unpublished");
        assert_eq!(
            consumer.readable(),
            Readable {
                unread: 3,
                finished: true
            }
        );
        let (slice, finished) = consumer.build();
        assert_eq!((slice.unwrap().as_slice(), finished), (&b"def"[..], true));
        assert!(consumer.is_consumed());
        assert_eq!(consumer.build(), (None, true));
    }

    #[test]
    fn finishing_after_a_full_publish_adds_no_bytes() {
        let mut segment = [0u8; 8];
        let state = SegmentState::default();
        let (mut builder, mut consumer) = pair(&mut segment, &state);
        builder.append(&[7; 8]);
        assert!(builder.is_full() && builder.publish());
        assert_eq!(consumer.build().0.unwrap().len(), 8);
        assert!(!consumer.is_consumed(), "not finished yet");
        assert!(!builder.finish());
        assert!(consumer.has_news() && consumer.is_consumed());
    }
}
