//! Memory configuration and its errors.

use std::io;

/// Smallest segment size: one 4 KiB page.
pub const MIN_SEGMENT_SIZE: usize = 4 << 10;
/// Largest segment size: 1 MiB.
pub const MAX_SEGMENT_SIZE: usize = 1 << 20;

/// How much network memory to map and how to cut it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryConfig {
    /// Bytes per segment: a power of two from 4 KiB to 1 MiB (default 32 KiB,
    /// Flink's `taskmanager.memory.segment-size`).
    pub segment_size: usize,
    /// Number of segments in the region (Flink's network memory / segment size).
    pub total_segments: u32,
    /// Back the region with huge pages when the OS has them (falls back to
    /// normal pages otherwise).
    pub huge_pages: bool,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            segment_size: 32 << 10,
            total_segments: 2048,
            huge_pages: false,
        }
    }
}

impl MemoryConfig {
    /// Checks the configuration, naming the offending value.
    pub fn validate(&self) -> Result<(), MemoryError> {
        let size = self.segment_size;
        if !size.is_power_of_two() || !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&size) {
            return Err(MemoryError::SegmentSize { size });
        }
        if self.total_segments == 0 {
            return Err(MemoryError::NoSegments);
        }
        Ok(())
    }

    /// Distance between the starts of two neighbouring segments: the
    /// segment plus one cache line (see [`SEGMENT_PAD`]).
    pub fn segment_stride(&self) -> usize {
        self.segment_size + SEGMENT_PAD
    }

    /// Bytes the region maps.
    pub fn region_bytes(&self) -> usize {
        self.segment_stride() * self.total_segments as usize
    }
}

/// Padding after each segment, so segments do not all start at the same
/// cache set. With power-of-two strides, a writer round-robining over many
/// channels writes the same offset of every open segment, and all those
/// lines fall into one set of each cache level: at 1000 channels they no
/// longer fit even the last-level cache's ways and every record's store went
/// to memory. One line of padding moves each segment one set further.
pub const SEGMENT_PAD: usize = 64;

/// Why network memory could not be set up or handed out.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// The segment size is not a power of two in range.
    #[error(
        "segment size {size} bytes is not allowed: use a power of two from 4 KiB (4096) to 1 MiB (1048576)"
    )]
    SegmentSize {
        /// The rejected size.
        size: usize,
    },
    /// Zero segments were asked for.
    #[error("network memory needs at least one segment")]
    NoSegments,
    /// The OS refused the mapping.
    #[error("could not map {bytes} bytes of network memory: {source}")]
    Map {
        /// Bytes asked for.
        bytes: usize,
        /// What the OS said.
        source: io::Error,
    },
    /// A pool's minimum cannot be met from the free segments.
    #[error(
        "insufficient network buffers: a buffer pool needs {required} segments but only {available} of {total} are free; \
         raise the total segment count or use fewer channels"
    )]
    InsufficientSegments {
        /// Segments the pool needs at least.
        required: u32,
        /// Segments free in the global pool.
        available: u32,
        /// Segments in the region.
        total: u32,
    },
    /// A pool's bounds are inconsistent.
    #[error("buffer pool bounds are invalid: min {min} must be at least 1 and at most max {max}")]
    PoolBounds {
        /// Requested minimum.
        min: u32,
        /// Requested maximum.
        max: u32,
    },
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn segment_sizes_are_checked() {
        for (size, ok) in [
            (4096, true),
            (32 << 10, true),
            (1 << 20, true),
            (2048, false),
            (2 << 20, false),
            (12 << 10, false),
            (0, false),
        ] {
            let config = MemoryConfig {
                segment_size: size,
                ..MemoryConfig::default()
            };
            match config.validate() {
                Ok(()) => assert!(ok, "{size} should be refused"),
                Err(e) => {
                    assert!(!ok, "{size} should be accepted");
                    assert!(e.to_string().contains(&size.to_string()), "{e}");
                }
            }
        }
    }

    #[test]
    fn zero_segments_is_refused() {
        let config = MemoryConfig {
            total_segments: 0,
            ..MemoryConfig::default()
        };
        assert!(matches!(config.validate(), Err(MemoryError::NoSegments)));
    }
}
