//! Handles to a segment's bytes: the writer's [`BufferBuilder`] and the
//! reader's [`Buffer`].

use std::ptr::NonNull;

/// A read-only handle to the first `len` bytes of one segment.
///
/// Small (16 bytes) and move-only: passing it through a ring passes the
/// segment's bytes, and [`BufferPool::recycle`](super::BufferPool::recycle)
/// takes it by value, so a recycled segment can never be read through a stale
/// copy. Broadcast hands several readers a handle each
/// ([`BufferPool::share`](super::BufferPool::share)); the segment returns to
/// its pool when the last one is recycled.
///
/// Dropping a `Buffer` without recycling it leaks its segment (the pool is
/// not full again afterwards, which tests catch).
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a buffer must be recycled to its pool, or its segment is lost"]
pub struct Buffer {
    ptr: NonNull<u8>,
    segment: u32,
    /// The length, and [`SHARED`] when other handles to the segment exist.
    meta: u32,
}

/// Set in `Buffer::meta` when the segment is reference counted (broadcast).
/// An exclusive buffer is recycled without touching the shared count, which
/// saves two cross-core cache-line transfers per buffer.
const SHARED: u32 = 1 << 31;

// SAFETY: a `Buffer` is a read-only view of a segment no one writes to while any `Buffer` of it exists (segments are written only through the unique `BufferBuilder`, which `finish` consumes). Sending it sends read access.
unsafe impl Send for Buffer {}
// SAFETY: as above; `&Buffer` only reads.
unsafe impl Sync for Buffer {}

impl Buffer {
    /// Index of the segment within its region.
    #[inline]
    pub fn segment(&self) -> u32 {
        self.segment
    }

    /// Number of readable bytes.
    #[inline]
    pub fn len(&self) -> usize {
        (self.meta & !SHARED) as usize
    }

    /// Whether the buffer holds no bytes.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether other handles to the same segment may exist (broadcast).
    #[inline]
    pub fn is_shared(&self) -> bool {
        self.meta & SHARED != 0
    }

    /// The written bytes.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr..ptr+len` lies in a live segment (the region is never unmapped while handles are out) that was written before `finish` and has no writer while this handle exists.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len()) }
    }

    #[inline]
    pub(super) fn ptr(&self) -> NonNull<u8> {
        self.ptr
    }

    /// Marks the buffer shared and returns another handle to the same bytes;
    /// the caller accounts for both in the segment's reference count.
    #[inline]
    pub(super) fn alias(&mut self) -> Buffer {
        self.meta |= SHARED;
        Buffer {
            ptr: self.ptr,
            segment: self.segment,
            meta: self.meta,
        }
    }
}

/// The unique writer of one segment, handed out by a
/// [`BufferPool`](super::BufferPool).
///
/// Bytes are appended at the end; finishing turns the builder
/// into a readable [`Buffer`] of the bytes written so far ([`BufferPool::finish`](super::BufferPool::finish)).
#[derive(Debug)]
#[must_use = "a buffer builder must be finished and recycled, or its segment is lost"]
pub struct BufferBuilder {
    ptr: NonNull<u8>,
    segment: u32,
    capacity: u32,
    len: u32,
}

// SAFETY: the builder is the only handle to its segment; moving it to another thread moves exclusive access.
unsafe impl Send for BufferBuilder {}

impl BufferBuilder {
    /// Wraps segment `segment` at `ptr` of `capacity` bytes.
    ///
    /// Only `SegmentPool::lend` builds these, for a segment it has just taken
    /// off a free list, which makes the builder its only handle.
    #[inline]
    pub(super) fn new(ptr: NonNull<u8>, segment: u32, capacity: usize) -> Self {
        Self {
            ptr,
            segment,
            capacity: capacity as u32,
            len: 0,
        }
    }

    /// Index of the segment within its region.
    #[inline]
    pub fn segment(&self) -> u32 {
        self.segment
    }

    /// Bytes written so far.
    #[inline]
    pub fn len(&self) -> usize {
        self.len as usize
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

    /// Bytes still free.
    #[inline]
    pub fn remaining(&self) -> usize {
        (self.capacity - self.len) as usize
    }

    /// Whether no byte is free.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.len == self.capacity
    }

    /// The free tail of the segment, to write into before [`commit`](Self::commit).
    #[inline]
    pub fn unused_mut(&mut self) -> &mut [u8] {
        // SAFETY: `len <= capacity`, so the range lies inside the segment, and the builder is the segment's only handle (exclusive access).
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

    /// Marks `n` more bytes as written.
    ///
    /// # Panics
    /// If `n` exceeds [`remaining`](Self::remaining).
    #[inline]
    pub fn commit(&mut self, n: usize) {
        assert!(n <= self.remaining(), "commit past the end of the segment");
        self.len += n as u32;
    }

    /// Appends as much of `bytes` as fits; returns how many bytes were taken.
    #[inline]
    pub fn append(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(self.remaining());
        self.unused_mut()[..n].copy_from_slice(&bytes[..n]);
        self.len += n as u32;
        n
    }

    /// Ends writing: the bytes written so far become a readable [`Buffer`].
    #[inline]
    pub(super) fn finish(self) -> Buffer {
        Buffer {
            ptr: self.ptr,
            segment: self.segment,
            meta: self.len,
        }
    }
}
