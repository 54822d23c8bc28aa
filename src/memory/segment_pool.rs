//! The global free list of segments (Flink's `NetworkBufferPool`).

use std::mem::ManuallyDrop;

use crate::sync::atomic::{fence, AtomicU32, Ordering};
use crate::sync::IndexQueue;

use super::{Buffer, BufferBuilder, MemoryConfig, MemoryError, MemoryRegion};

/// Owns the region and the free list of its segments; lends segments to
/// [`BufferPool`](super::BufferPool)s and keeps each lent segment's reference
/// count (several for a broadcast buffer).
#[derive(Debug)]
pub struct SegmentPool {
    region: ManuallyDrop<MemoryRegion>,
    free: IndexQueue,
    /// Per segment: the number of `Buffer` handles out while it is shared
    /// (broadcast); unused for exclusive buffers.
    refs: Box<[AtomicU32]>,
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
            refs: (0..segments).map(|_| AtomicU32::new(0)).collect(),
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
        let mut taken = Vec::with_capacity(n as usize);
        while taken.len() < n as usize {
            match self.take() {
                Some(segment) => taken.push(segment),
                None => {
                    let available = self.available_segments() + taken.len() as u32;
                    taken.into_iter().for_each(|s| self.give_back(s));
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

    /// Puts a segment back on the free list.
    #[inline]
    pub(super) fn give_back(&self, segment: u32) {
        self.free
            .push(segment)
            .expect("free list has room for every segment");
    }

    /// The writer for a segment just taken off a free list.
    #[inline]
    pub(super) fn lend(&self, segment: u32) -> BufferBuilder {
        BufferBuilder::new(
            self.region.segment_ptr(segment),
            segment,
            self.region.segment_size(),
        )
    }

    /// Another handle to `buffer`'s bytes (broadcast).
    #[inline]
    pub(super) fn share(&self, buffer: &mut Buffer) -> Buffer {
        let refs = &self.refs[self.check_owned(buffer) as usize];
        if buffer.is_shared() {
            // Relaxed: the caller holds a handle, so the count cannot reach
            // zero concurrently (as in `Arc::clone`).
            refs.fetch_add(1, Ordering::Relaxed);
        } else {
            // The only handle so far: no one else reads the count. The
            // handles carry it to other threads through Release/Acquire
            // hand-offs (the rings).
            refs.store(2, Ordering::Relaxed);
        }
        buffer.alias()
    }

    /// Drops one handle; the segment index if it was the last, so the
    /// segment is free to be written again.
    #[inline]
    pub(super) fn release(&self, buffer: Buffer) -> Option<u32> {
        let segment = self.check_owned(&buffer);
        if !buffer.is_shared() {
            return Some(segment);
        }
        // Release: pairs with the Acquire fence below in whichever thread
        // drops the last handle, so every reader's reads happen before the
        // segment is written again (as in `Arc::drop`).
        if self.refs[segment as usize].fetch_sub(1, Ordering::Release) != 1 {
            return None;
        }
        fence(Ordering::Acquire);
        Some(segment)
    }

    /// The buffer's segment index, after checking the handle points into this
    /// region (a foreign handle would hand one segment to two writers).
    #[inline]
    fn check_owned(&self, buffer: &Buffer) -> u32 {
        let segment = buffer.segment();
        assert!(
            self.region.segment_of(buffer.ptr()) == Some(segment),
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
