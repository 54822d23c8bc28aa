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
/// A flushed builder's bytes travel as a *view* ([`is_view`](Self::is_view)):
/// a handle that does not own the segment, followed in the same channel by
/// the owning handle its builder hands over when it finishes. A channel's
/// consumer reads its buffers in order and gives each back before reading
/// the next, so every view is read and dropped before the owner behind it
/// can free the segment (Flink's reader slicing a `BufferConsumer` while the
/// writer keeps appending to the builder).
///
/// Dropping a `Buffer` that owns its segment without recycling it leaks the
/// segment (the pool is not full again afterwards, which tests catch).
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
/// Set in `Buffer::meta` for a view: bytes a builder published and kept
/// writing after; recycling it returns nothing.
const VIEW: u32 = 1 << 30;
/// The length bits of `Buffer::meta`.
const LEN: u32 = VIEW - 1;

// SAFETY: a `Buffer` is a read-only handle to bytes no one writes while it exists: a builder writes only past what it published (`unused_mut`), and the segment is written again only after its owning handle is recycled, which its reader does after dropping every view before it. Sending it sends read access.
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
        (self.meta & LEN) as usize
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

    /// Whether this is a view of a flushed builder's bytes, which does not
    /// own the segment (recycling it is a no-op).
    #[inline]
    pub fn is_view(&self) -> bool {
        self.meta & VIEW != 0
    }

    /// The written bytes.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr..ptr+len` lies in a live segment (the region is never unmapped while handles are out); those bytes were written before the handle was made and are not written again while it exists (see the `Send` impl).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len()) }
    }

    #[inline]
    pub(super) fn ptr(&self) -> NonNull<u8> {
        self.ptr
    }

    /// Another view of the same bytes (a broadcast view for one more
    /// reader).
    #[inline]
    pub(super) fn copy_view(&self) -> Buffer {
        debug_assert!(self.is_view());
        Buffer {
            ptr: self.ptr,
            segment: self.segment,
            meta: self.meta,
        }
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
    /// Bytes already handed to the reader as views; never written again.
    published: u32,
}

// SAFETY: the builder is the only writer of its segment (views read only what it published and no longer writes); moving it to another thread moves that exclusive write access.
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
            published: 0,
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

    /// Bytes written but not yet handed to the reader.
    #[inline]
    pub fn unpublished(&self) -> usize {
        (self.len - self.published) as usize
    }

    /// Whether some bytes went to the reader as views, so the segment's
    /// owning handle must follow them through the same channel.
    #[inline]
    pub fn has_views(&self) -> bool {
        self.published != 0
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

    /// Hands the unpublished bytes to the reader as a view and keeps
    /// writing after them.
    #[inline]
    pub(super) fn view(&mut self) -> Buffer {
        let buffer = Buffer {
            ptr: self.unpublished_ptr(),
            segment: self.segment,
            meta: (self.len - self.published) | VIEW,
        };
        self.published = self.len;
        buffer
    }

    /// Ends writing: the bytes not yet published become the [`Buffer`] that
    /// owns the segment (empty, at the segment's start, if views already
    /// carried every byte).
    #[inline]
    pub(super) fn finish(self) -> Buffer {
        let unpublished = self.len - self.published;
        Buffer {
            ptr: if unpublished == 0 {
                self.ptr
            } else {
                self.unpublished_ptr()
            },
            segment: self.segment,
            meta: unpublished,
        }
    }

    #[inline]
    fn unpublished_ptr(&self) -> NonNull<u8> {
        // SAFETY: `published <= len <= capacity`, so the pointer stays inside the segment or one past its end (callers only use it with bytes after it) and cannot be null.
        unsafe { self.ptr.add(self.published as usize) }
    }
}
