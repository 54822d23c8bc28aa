//! Serializer → deserializer round trips over random record sizes,
//! including records spanning several segments and frames whose header is
//! cut by a segment boundary.

#![cfg(not(loom))]

use std::sync::Arc;

use proptest::prelude::*;
use taskbench::memory::{BufferConsumer, BufferPool, MemoryConfig, SegmentPool};
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
fn serialize(pool: &BufferPool, records: &[Vec<u8>], offset: usize) -> Vec<BufferConsumer> {
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
        for mut consumer in buffers {
            deserializer.set_next_buffer(consumer.build().0.unwrap());
            deserializer.for_each_record(|r| got.push(r.to_vec())).unwrap();
            deserializer.take_buffer();
            pool.recycle(consumer);
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
        for mut consumer in buffers {
            deserializer.set_next_buffer(consumer.build().0.unwrap());
            while let Some(r) = deserializer.next_record().unwrap() {
                got.push(r.to_vec());
            }
            deserializer.take_buffer();
            pool.recycle(consumer);
        }
        prop_assert!(!deserializer.has_partial_record());
        if offset > 0 {
            prop_assert_eq!(got.remove(0).len(), offset);
        }
        prop_assert_eq!(got, records);
    }
}

proptest! {
    /// The reader slices a segment while the writer appends and publishes
    /// at record boundaries chosen at random (Flink's reader building
    /// buffers from a `BufferConsumer` while the `BufferBuilder` writes on):
    /// every record comes back intact, in order, whatever the cuts.
    #[test]
    fn records_read_in_slices_as_the_writer_publishes_come_back_intact(
        sizes in proptest::collection::vec(0usize..3000, 1..60),
        publish in proptest::collection::vec(any::<bool>(), 60),
    ) {
        let pool = pool(64);
        let serializer = RecordSerializer::new(MAX_RECORD);
        let records: Vec<_> = sizes.iter().enumerate().map(|(i, &n)| record(n, i as u8)).collect();
        let mut deserializer = RecordDeserializer::new(MAX_RECORD);
        let mut got: Vec<Vec<u8>> = Vec::new();
        let mut slices = 0;
        let mut read = |consumer: &mut BufferConsumer, got: &mut Vec<Vec<u8>>| {
            if let (Some(buffer), _) = consumer.build() {
                slices += 1;
                deserializer.set_next_buffer(buffer);
                deserializer.for_each_record(|r| got.push(r.to_vec())).unwrap();
                deserializer.take_buffer();
            }
        };
        let mut builder = pool.request().unwrap();
        let mut consumer = builder.consumer();
        for (record, &publish) in records.iter().zip(&publish) {
            let mut written = 0;
            while !serializer.serialize(&mut builder, record, &mut written) {
                let _ = builder.finish();
                read(&mut consumer, &mut got);
                prop_assert!(consumer.is_consumed());
                pool.recycle(consumer);
                builder = pool.request().unwrap();
                consumer = builder.consumer();
            }
            if publish {
                builder.publish();
                read(&mut consumer, &mut got);
                prop_assert!(!consumer.is_consumed(), "still being written");
            }
        }
        let _ = builder.finish();
        read(&mut consumer, &mut got);
        pool.recycle(consumer);
        prop_assert_eq!(got, records);
        prop_assert!(slices >= 1);
        prop_assert!(pool.is_full());
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
        for mut consumer in buffers {
            deserializer.set_next_buffer(consumer.build().0.unwrap());
            deserializer
                .for_each_record(|r| got.push(r.to_vec()))
                .unwrap();
            deserializer.take_buffer();
            pool.recycle(consumer);
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
    for mut consumer in buffers {
        deserializer.set_next_buffer(consumer.build().0.unwrap());
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
        deserializer.take_buffer();
        pool.recycle(consumer);
    }
}

#[test]
fn a_stream_ending_inside_a_record_is_reported() {
    let pool = pool(4);
    let mut buffers = serialize(&pool, &[record(SEGMENT * 2, 0)], 0);
    let last = buffers.pop().unwrap();
    pool.recycle(last);
    let mut deserializer = RecordDeserializer::new(MAX_RECORD);
    for mut consumer in buffers {
        deserializer.set_next_buffer(consumer.build().0.unwrap());
        assert_eq!(deserializer.for_each_record(|_| {}).unwrap(), 0);
        deserializer.take_buffer();
        pool.recycle(consumer);
    }
    assert!(deserializer.has_partial_record());
    let err = deserializer.check_complete().unwrap_err();
    assert!(matches!(err, SerdeError::Truncated { missing } if missing > 0));
    assert!(pool.is_full());
}
