//! Bad configuration gets a typed error whose message names the problem.

#![cfg(not(loom))]

use std::sync::Arc;

use taskbench::memory::{BufferPool, MemoryConfig, MemoryError, SegmentPool};
use taskbench::network::serde::SerdeError;
use taskbench::network::{
    local_channel, ChannelAvailability, NetworkConfig, NetworkConfigError, Partitioner,
    RecordWriter, ResultPartition, WriteError,
};
use taskbench::sync::{Parker, WaitStrategy};

fn memory(segment_size: usize, total_segments: u32) -> MemoryConfig {
    MemoryConfig {
        segment_size,
        total_segments,
        huge_pages: false,
    }
}

#[test]
fn segment_size_not_a_power_of_two() {
    let err = SegmentPool::new(&memory(40_000, 4)).unwrap_err();
    assert!(matches!(err, MemoryError::SegmentSize { size: 40_000 }));
    let message = err.to_string();
    assert!(
        message.contains("40000") && message.contains("power of two"),
        "{message}"
    );
}

#[test]
fn segment_size_out_of_range() {
    for size in [2048, 2 << 20] {
        let err = SegmentPool::new(&memory(size, 4)).unwrap_err();
        assert!(matches!(err, MemoryError::SegmentSize { size: s } if s == size));
        assert!(err.to_string().contains("4 KiB (4096) to 1 MiB (1048576)"));
    }
    let config = NetworkConfig {
        memory: memory(1 << 21, 4),
        ..NetworkConfig::default()
    };
    assert!(matches!(
        config.validate(),
        Err(NetworkConfigError::Memory(MemoryError::SegmentSize { .. }))
    ));
}

#[test]
fn fewer_buffers_than_the_channels_need() {
    // Four subpartitions need 5 buffers at least (Flink: subpartitions + 1).
    let segments = Arc::new(SegmentPool::new(&memory(4096, 4)).unwrap());
    let (min, max) = BufferPool::default_bounds(4);
    let err = BufferPool::new(segments.clone(), min, max, Arc::new(Parker::new())).unwrap_err();
    assert!(matches!(
        err,
        MemoryError::InsufficientSegments {
            required: 5,
            available: 4,
            total: 4
        }
    ));
    assert!(err
        .to_string()
        .contains("needs 5 segments but only 4 of 4 are free"));
    assert!(segments.is_full());

    let config = NetworkConfig {
        buffers_per_channel: 0,
        ..NetworkConfig::default()
    };
    let err = config.validate().unwrap_err();
    assert!(matches!(err, NetworkConfigError::NoChannelBuffers));
    assert!(err.to_string().contains("buffers_per_channel"));
}

#[test]
fn record_above_the_maximum() {
    let segments = Arc::new(SegmentPool::new(&memory(4096, 8)).unwrap());
    let parker = Arc::new(Parker::new());
    let pool = Arc::new(BufferPool::new(segments, 2, 4, parker.clone()).unwrap());
    let availability = Arc::new(ChannelAvailability::new(1, Arc::new(Parker::new())));
    let (output, input) = local_channel(4, pool.clone(), &availability, 0, 10_000);
    let partition = ResultPartition::new(
        pool.clone(),
        vec![output],
        10_000,
        parker,
        WaitStrategy::default(),
    );
    let mut writer = RecordWriter::new(partition, Partitioner::Forward, 0);
    let err = writer.emit(0, &[7; 10_001]).unwrap_err();
    assert!(matches!(
        err,
        WriteError::Serde(SerdeError::RecordTooLarge {
            size: 10_001,
            max: 10_000
        })
    ));
    assert!(err
        .to_string()
        .contains("10001 bytes exceeds the maximum record size of 10000"));
    // Nothing was written, and a record at the maximum (spanning three
    // segments) still goes through.
    assert!(!writer.partition().has_unflushed_data());
    writer.emit(0, &[7; 10_000]).unwrap();
    drop((writer, input));
    assert!(pool.is_full());
}
