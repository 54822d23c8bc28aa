//! Record framing on one core (`taskbench::network::serde`): how many records
//! per second a task can write into, and read out of, 32 KiB network buffers.
//! Target: at least 200 M records/s each way for 8-byte records.
//!
//! Each iteration handles a stream of records filling about four segments,
//! so records cross buffer boundaries as they do in a job (for 1 KiB records
//! almost every buffer ends inside one).
//! * `serializer`: request a builder, serialize records until it is full,
//!   finish it, recycle it, continue the spanning record in a fresh builder.
//! * `deserializer`: the stream is built once; each iteration reads it again
//!   through fresh consumers (`share`), with `for_each_record` (the task
//!   loop's path) and with `next_record`, summing record lengths, then
//!   recycles the consumers.
//!
//! Throughput is in records; multiply by `size + 4` (frame header) for bytes.
//! A round trip checks every record before anything is timed.

use std::sync::Arc;

use criterion::measurement::WallTime;
use criterion::{
    black_box, criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, Throughput,
};
use taskbench::memory::{BufferConsumer, BufferPool, MemoryConfig, SegmentPool};
use taskbench::network::serde::{RecordDeserializer, RecordSerializer};
use taskbench::sync::Parker;

const SEGMENT_SIZE: usize = 32 << 10;
/// Segments a benchmark's stream of records fills, about.
const STREAM_SEGMENTS: usize = 4;
/// Record sizes: a small key, a typical event, a large row.
const RECORD_SIZES: [usize; 3] = [8, 100, 1024];
const HEADER: usize = 4;
const MAX_RECORD_SIZE: usize = 4 << 10;

/// A segment pool, and a buffer pool that holds the pre-built stream of each
/// record size with room to serialize one more.
fn pools() -> (Arc<SegmentPool>, BufferPool) {
    let buffers = ((RECORD_SIZES.len() + 1) * (STREAM_SEGMENTS + 1)) as u32;
    let config = MemoryConfig {
        segment_size: SEGMENT_SIZE,
        total_segments: buffers,
        huge_pages: false,
    };
    let segments = Arc::new(SegmentPool::new(&config).expect("map network memory"));
    let pool = BufferPool::new(segments.clone(), buffers, buffers, Arc::new(Parker::new()))
        .expect("reserve buffers");
    (segments, pool)
}

/// Records in a stream of `size`-byte records filling about
/// [`STREAM_SEGMENTS`] segments.
fn stream_len(size: usize) -> u64 {
    (STREAM_SEGMENTS * SEGMENT_SIZE / (HEADER + size)) as u64
}

/// A record whose bytes differ, so a misplaced byte is caught.
fn record(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 7 + 3) as u8).collect()
}

/// Serializes `n` copies of `record` into buffers from `pool`, handing each
/// finished buffer (the last one possibly partly filled) to `sink`.
#[inline]
fn serialize_stream(
    pool: &BufferPool,
    serializer: &RecordSerializer,
    record: &[u8],
    n: u64,
    mut sink: impl FnMut(BufferConsumer),
) {
    let mut builder = pool.request().expect("a free buffer");
    for _ in 0..n {
        let mut written = 0;
        while !serializer.serialize(&mut builder, black_box(record), &mut written) {
            sink(pool.finish(builder));
            builder = pool.request().expect("a free buffer");
        }
    }
    sink(pool.finish(builder));
}

/// Reads every record of `stream` through fresh handles (recycled after),
/// calling `f` for each; returns how many records there were.
#[inline]
fn deserialize_stream(
    pool: &BufferPool,
    deserializer: &mut RecordDeserializer,
    stream: &mut [BufferConsumer],
    mut f: impl FnMut(&[u8]),
) -> u64 {
    let mut count = 0;
    for segment in stream.iter_mut() {
        let mut consumer = pool.share(segment);
        deserializer.set_next_buffer(consumer.build().0.expect("published bytes"));
        count += deserializer.for_each_record(&mut f).expect("valid frames") as u64;
        deserializer.take_buffer();
        pool.recycle(consumer);
    }
    count
}

/// Same as [`deserialize_stream`] through `next_record`.
#[inline]
fn deserialize_stream_one_by_one(
    pool: &BufferPool,
    deserializer: &mut RecordDeserializer,
    stream: &mut [BufferConsumer],
    mut f: impl FnMut(&[u8]),
) -> u64 {
    let mut count = 0;
    for segment in stream.iter_mut() {
        let mut consumer = pool.share(segment);
        deserializer.set_next_buffer(consumer.build().0.expect("published bytes"));
        while let Some(record) = deserializer.next_record().expect("valid frames") {
            f(record);
            count += 1;
        }
        deserializer.take_buffer();
        pool.recycle(consumer);
    }
    count
}

/// Serializes a stream and reads it back both ways, checking every record.
fn check_round_trip(pool: &BufferPool, size: usize) -> Vec<BufferConsumer> {
    let serializer = RecordSerializer::new(MAX_RECORD_SIZE);
    let expected = record(size);
    let n = stream_len(size);
    let mut stream = Vec::new();
    serialize_stream(pool, &serializer, &expected, n, |buffer| {
        stream.push(buffer)
    });
    let frames: usize = stream.iter().map(|c| c.readable().unread as usize).sum();
    assert_eq!(
        frames,
        n as usize * (HEADER + size),
        "{size} B: frame bytes"
    );

    let mut deserializer = RecordDeserializer::new(MAX_RECORD_SIZE);
    let read = deserialize_stream(pool, &mut deserializer, &mut stream, |r| {
        assert_eq!(r, expected, "{size} B: record content")
    });
    assert_eq!(read, n, "{size} B: records read with for_each_record");
    assert!(deserializer.check_complete().is_ok());
    let read = deserialize_stream_one_by_one(pool, &mut deserializer, &mut stream, |r| {
        assert_eq!(r, expected, "{size} B: record content")
    });
    assert_eq!(read, n, "{size} B: records read with next_record");
    assert!(deserializer.check_complete().is_ok());
    stream
}

fn serializer_bench(group: &mut BenchmarkGroup<'_, WallTime>, pool: &BufferPool, size: usize) {
    let serializer = RecordSerializer::new(MAX_RECORD_SIZE);
    let record = record(size);
    let n = stream_len(size);
    group.throughput(Throughput::Elements(n));
    group.bench_function(BenchmarkId::new("records", size), |b| {
        b.iter(|| {
            serialize_stream(pool, &serializer, &record, n, |buf| {
                pool.recycle(buf);
            })
        })
    });
}

fn deserializer_bench(
    group: &mut BenchmarkGroup<'_, WallTime>,
    pool: &BufferPool,
    stream: &mut [BufferConsumer],
    size: usize,
) {
    let n = stream_len(size);
    let total_bytes = n as usize * size;
    let mut deserializer = RecordDeserializer::new(MAX_RECORD_SIZE);
    group.throughput(Throughput::Elements(n));
    group.bench_function(BenchmarkId::new("for_each_record", size), |b| {
        b.iter(|| {
            let mut bytes = 0;
            let count = deserialize_stream(pool, &mut deserializer, stream, |r| {
                bytes += black_box(r).len()
            });
            assert_eq!((count, bytes), (n, total_bytes));
        })
    });
    group.bench_function(BenchmarkId::new("next_record", size), |b| {
        b.iter(|| {
            let mut bytes = 0;
            let count = deserialize_stream_one_by_one(pool, &mut deserializer, stream, |r| {
                bytes += black_box(r).len()
            });
            assert_eq!((count, bytes), (n, total_bytes));
        })
    });
}

fn serde(c: &mut Criterion) {
    let (segments, pool) = pools();
    let mut streams: Vec<Vec<BufferConsumer>> = RECORD_SIZES
        .iter()
        .map(|&size| check_round_trip(&pool, size))
        .collect();

    let mut group = c.benchmark_group("serializer");
    for size in RECORD_SIZES {
        serializer_bench(&mut group, &pool, size);
    }
    group.finish();

    let mut group = c.benchmark_group("deserializer");
    for (stream, size) in streams.iter_mut().zip(RECORD_SIZES) {
        deserializer_bench(&mut group, &pool, stream, size);
    }
    group.finish();

    for buffer in streams.into_iter().flatten() {
        pool.recycle(buffer);
    }
    assert!(pool.is_full(), "every buffer is back in its pool");
    drop(pool);
    assert!(segments.is_full());
}

criterion_group!(benches, serde);
criterion_main!(benches);
