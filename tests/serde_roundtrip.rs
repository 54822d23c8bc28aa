//! Serializer → deserializer round trips over random record sizes,
//! including records spanning several segments and frames whose header is
//! cut by a segment boundary.

#![cfg(not(loom))]

use std::sync::Arc;

use proptest::prelude::*;
use taskbench::memory::{Buffer, BufferPool, MemoryConfig, SegmentPool};
use taskbench::network::serde::{RecordDeserializer, RecordSerializer, SerdeError};
use taskbench::sync::Parker;

const SEGMENT: usize = 4096;
const MAX_RECORD: usize = 3 * SEGMENT;

fn pool(segments: u32) -> BufferPool {
    let config = MemoryConfig {
        segment_size: SEGMENT,
        total_segments: segments,
        huge_pages: false,
    };
    let global = Arc::new(SegmentPool::new(&config).unwrap());
    BufferPool::new(global, segments, segments, Arc::new(Parker::new())).unwrap()
}

/// Serializes `records` into as many buffers as needed, starting with a
/// buffer that already holds `offset` bytes of padding (to move frame
/// boundaries across segment boundaries).
fn serialize(pool: &BufferPool, records: &[Vec<u8>], offset: usize) -> Vec<Buffer> {
    let serializer = RecordSerializer::new(MAX_RECORD);
    let mut buffers = Vec::new();
    let mut builder = pool.request().unwrap();
    let padding = vec![0u8; offset];
    if offset > 0 {
        // A whole padding record, so the stream stays well-formed.
        let mut written = 0;
        assert!(serializer.serialize(&mut builder, &padding, &mut written));
    }
    for record in records {
        serializer.check(record).unwrap();
        let mut written = 0;
        while !serializer.serialize(&mut builder, record, &mut written) {
            buffers.push(pool.finish(builder));
            builder = pool.request().unwrap();
        }
    }
    buffers.push(pool.finish(builder));
    buffers
}

fn record(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| seed.wrapping_add(i as u8)).collect()
}

proptest! {
    #[test]
    fn every_record_comes_back_intact_through_for_each_record(
        sizes in proptest::collection::vec(prop_oneof![0usize..64, 64usize..2048, 2048usize..=MAX_RECORD], 1..40),
        offset in 0usize..SEGMENT - 4,
    ) {
        let pool = pool(200);
        let records: Vec<_> = sizes.iter().enumerate().map(|(i, &n)| record(n, i as u8)).collect();
        let buffers = serialize(&pool, &records, offset);
        let mut deserializer = RecordDeserializer::new(MAX_RECORD);
        let mut got: Vec<Vec<u8>> = Vec::new();
        for buffer in buffers {
            deserializer.set_next_buffer(buffer);
            deserializer.for_each_record(|r| got.push(r.to_vec())).unwrap();
            pool.recycle(deserializer.take_buffer().unwrap());
        }
        deserializer.check_complete().unwrap();
        if offset > 0 {
            prop_assert_eq!(got.remove(0).len(), offset);
        }
        prop_assert_eq!(got, records);
        prop_assert!(pool.is_full());
    }

    #[test]
    fn every_record_comes_back_intact_through_next_record(
        sizes in proptest::collection::vec(0usize..=MAX_RECORD, 1..20),
        offset in 0usize..SEGMENT - 4,
    ) {
        let pool = pool(200);
        let records: Vec<_> = sizes.iter().enumerate().map(|(i, &n)| record(n, i as u8)).collect();
        let buffers = serialize(&pool, &records, offset);
        let mut deserializer = RecordDeserializer::new(MAX_RECORD);
        let mut got: Vec<Vec<u8>> = Vec::new();
        for buffer in buffers {
            deserializer.set_next_buffer(buffer);
            while let Some(r) = deserializer.next_record().unwrap() {
                got.push(r.to_vec());
            }
            pool.recycle(deserializer.take_buffer().unwrap());
        }
        prop_assert!(!deserializer.has_partial_record());
        if offset > 0 {
            prop_assert_eq!(got.remove(0).len(), offset);
        }
        prop_assert_eq!(got, records);
    }
}

/// Every way a 4-byte header can be cut by a segment end.
#[test]
fn headers_cut_at_every_byte_of_a_segment_boundary() {
    for tail in 0..=8 {
        let pool = pool(8);
        // A first record that leaves exactly `tail` bytes free in segment 0.
        let first = record(SEGMENT - 4 - tail, 1);
        let records = vec![first, record(10, 2), record(1, 3)];
        let buffers = serialize(&pool, &records, 0);
        let mut deserializer = RecordDeserializer::new(MAX_RECORD);
        let mut got = Vec::new();
        for buffer in buffers {
            deserializer.set_next_buffer(buffer);
            deserializer
                .for_each_record(|r| got.push(r.to_vec()))
                .unwrap();
            pool.recycle(deserializer.take_buffer().unwrap());
        }
        assert_eq!(got, records, "{tail} bytes free at the boundary");
        assert!(pool.is_full());
    }
}

#[test]
fn a_record_above_the_maximum_is_refused_on_both_sides() {
    let serializer = RecordSerializer::new(100);
    assert_eq!(
        serializer.check(&[0; 101]),
        Err(SerdeError::RecordTooLarge {
            size: 101,
            max: 100
        })
    );
    assert!(serializer.check(&[0; 100]).is_ok());

    // A stream announcing a record larger than the reader's maximum.
    let pool = pool(2);
    let buffers = serialize(&pool, &[record(200, 0)], 0);
    let mut deserializer = RecordDeserializer::new(100);
    for buffer in buffers {
        deserializer.set_next_buffer(buffer);
        let err = deserializer.for_each_record(|_| {}).unwrap_err();
        assert_eq!(
            err,
            SerdeError::RecordTooLarge {
                size: 200,
                max: 100
            }
        );
        assert!(err
            .to_string()
            .contains("exceeds the maximum record size of 100 bytes"));
        pool.recycle(deserializer.take_buffer().unwrap());
    }
}

#[test]
fn a_stream_ending_inside_a_record_is_reported() {
    let pool = pool(4);
    let mut buffers = serialize(&pool, &[record(SEGMENT * 2, 0)], 0);
    let last = buffers.pop().unwrap();
    pool.recycle(last);
    let mut deserializer = RecordDeserializer::new(MAX_RECORD);
    for buffer in buffers {
        deserializer.set_next_buffer(buffer);
        assert_eq!(deserializer.for_each_record(|_| {}).unwrap(), 0);
        pool.recycle(deserializer.take_buffer().unwrap());
    }
    assert!(deserializer.has_partial_record());
    let err = deserializer.check_complete().unwrap_err();
    assert!(matches!(err, SerdeError::Truncated { missing } if missing > 0));
    assert!(pool.is_full());
}
