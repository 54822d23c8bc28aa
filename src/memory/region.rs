//! The one anonymous mapping that backs every segment.

use std::ptr::NonNull;

use memmap2::{MmapMut, MmapOptions};

use super::{MemoryConfig, MemoryError};

/// An anonymous, pre-faulted mapping cut into equal segments.
///
/// Pre-faulting (`MAP_POPULATE`) means the measured phase of a job takes no
/// page faults. The region never moves; segments are addressed by index.
#[derive(Debug)]
pub struct MemoryRegion {
    map: MmapMut,
    base: NonNull<u8>,
    segment_size: usize,
    /// Distance between segment starts (the size plus a cache line).
    stride: usize,
    segments: u32,
    huge_pages: bool,
}

// SAFETY: the region is plain memory; which thread may touch which segment is governed by the `BufferBuilder`/`Buffer` handles, not by the region.
unsafe impl Send for MemoryRegion {}
// SAFETY: as above; the region itself is never mutated through `&self`.
unsafe impl Sync for MemoryRegion {}

impl MemoryRegion {
    /// Maps and pre-faults the region the configuration describes.
    pub fn new(config: &MemoryConfig) -> Result<Self, MemoryError> {
        config.validate()?;
        let bytes = config.region_bytes();
        let map_err = |source| MemoryError::Map { bytes, source };
        let (mut map, huge_pages) = if config.huge_pages {
            match Self::map(bytes, true) {
                Ok(map) => (map, true),
                // No reserved huge pages: ask for transparent ones.
                Err(_) => Self::map_transparent(bytes).map_err(map_err)?,
            }
        } else {
            (Self::map(bytes, false).map_err(map_err)?, false)
        };
        let base = NonNull::new(map.as_mut_ptr()).expect("mmap never returns null");
        Ok(Self {
            map,
            base,
            segment_size: config.segment_size,
            stride: config.segment_stride(),
            segments: config.total_segments,
            huge_pages,
        })
    }

    fn map(bytes: usize, huge: bool) -> std::io::Result<MmapMut> {
        let mut options = MmapOptions::new();
        options.len(bytes).populate();
        #[cfg(target_os = "linux")]
        if huge {
            options.huge(None);
        }
        #[cfg(not(target_os = "linux"))]
        let _ = huge;
        options.map_anon()
    }

    /// An anonymous mapping advised to use transparent huge pages, then
    /// faulted in page by page (`MAP_POPULATE` would fault it in before the
    /// advice). Returns whether the advice was taken.
    fn map_transparent(bytes: usize) -> std::io::Result<(MmapMut, bool)> {
        let mut map = MmapOptions::new().len(bytes).map_anon()?;
        #[cfg(target_os = "linux")]
        let advised = map.advise(memmap2::Advice::HugePage).is_ok();
        #[cfg(not(target_os = "linux"))]
        let advised = false;
        for page in map.chunks_mut(4096) {
            page[0] = 0;
        }
        Ok((map, advised))
    }

    /// Bytes per segment.
    pub fn segment_size(&self) -> usize {
        self.segment_size
    }

    /// Number of segments.
    pub fn segments(&self) -> u32 {
        self.segments
    }

    /// Whether the region is backed by huge pages.
    pub fn huge_pages(&self) -> bool {
        self.huge_pages
    }

    /// Total bytes mapped.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the region is empty (it never is once built).
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Start of segment `index`.
    ///
    /// # Panics
    /// If `index` is out of range.
    #[inline]
    pub(crate) fn segment_ptr(&self, index: u32) -> NonNull<u8> {
        assert!(index < self.segments, "segment {index} out of range");
        // SAFETY: index < segments, so the offset stays inside the mapping.
        unsafe { self.base.add(index as usize * self.stride) }
    }

    /// The segment of this region `ptr` points into, if any.
    #[inline]
    pub(crate) fn segment_of(&self, ptr: NonNull<u8>) -> Option<u32> {
        let offset = (ptr.as_ptr() as usize).checked_sub(self.base.as_ptr() as usize)?;
        let index = offset / self.stride;
        (index < self.segments as usize && offset % self.stride < self.segment_size)
            .then_some(index as u32)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::memory::config::SEGMENT_PAD;

    #[test]
    fn huge_or_not_every_segment_is_mapped_zeroed_and_addressable() {
        for huge_pages in [false, true] {
            let config = MemoryConfig {
                segment_size: 64 << 10,
                total_segments: 64,
                huge_pages,
            };
            let region = MemoryRegion::new(&config).unwrap();
            assert_eq!(region.len(), 64 * ((64 << 10) + SEGMENT_PAD));
            // Segment starts step one cache set at a time, not all on one.
            let gap =
                region.segment_ptr(1).as_ptr() as usize - region.segment_ptr(0).as_ptr() as usize;
            assert_eq!(gap % 4096, 64);
            for index in 0..region.segments() {
                let ptr = region.segment_ptr(index);
                assert_eq!(region.segment_of(ptr), Some(index));
                let last = ptr.as_ptr().wrapping_add((64 << 10) - 1);
                assert_eq!(region.segment_of(NonNull::new(last).unwrap()), Some(index));
                // SAFETY: the segment lies inside the live mapping and no handle to it exists in this test.
                let bytes = unsafe { std::slice::from_raw_parts_mut(ptr.as_ptr(), 64 << 10) };
                assert!(bytes.iter().all(|&b| b == 0));
                bytes[0] = index as u8;
                bytes[(64 << 10) - 1] = 1;
            }
            let end = region.segment_ptr(63).as_ptr().wrapping_add(64 << 10);
            assert_eq!(region.segment_of(NonNull::new(end).unwrap()), None);
        }
    }
}
