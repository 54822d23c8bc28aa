//! Partition → gate throughput: one producer thread serializes 1 KiB (and
//! 8 B) records through a `RecordWriter` into pooled segments, one consumer
//! thread reads them back through an `InputGate`, across segment sizes from
//! 4 KiB to 1 MiB.
//!
//! The physical baseline is a `memcpy` of the same bytes in the same run: it
//! reads and writes every byte once, as the data path does (the writer copies
//! each record into a segment, the reader reads it). Ratios against it, not
//! absolute figures, are what compare across machines.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use taskbench::bench::channel::{run_channel, ChannelRun};
use taskbench::memory::MemoryConfig;
use taskbench::network::{NetworkConfig, Partitioner};

const SEGMENT_SIZES: [usize; 5] = [4 << 10, 32 << 10, 64 << 10, 256 << 10, 1 << 20];
/// Network memory per run: large enough for the pools, small enough to
/// pre-fault quickly.
const REGION: usize = 16 << 20;

fn channel_run(record_size: usize, segment_size: usize, records: u64) -> ChannelRun {
    ChannelRun {
        partitioner: Partitioner::Forward,
        channels: 1,
        records,
        record_size,
        network: NetworkConfig {
            memory: MemoryConfig {
                segment_size,
                total_segments: (REGION / segment_size).max(16) as u32,
                huge_pages: false,
            },
            ..NetworkConfig::default()
        },
        ..ChannelRun::default()
    }
}

/// Times `iters` records through the pipeline (setup and teardown excluded).
fn pipeline(record_size: usize, segment_size: usize, iters: u64) -> Duration {
    let report = run_channel(&channel_run(record_size, segment_size, iters)).expect("channel run");
    assert_eq!(report.records, iters, "every record arrives");
    assert_eq!(
        report.checksum,
        (0..iters).fold(0u64, |a, s| a.wrapping_add(s))
    );
    assert!(report.pools_full);
    report.elapsed
}

/// Times copying `iters × (record_size + 4)` bytes (the framed records) in
/// `segment_size` chunks through a ring of destination segments as large as
/// the pipeline's pool.
///
/// Source and destination are placed half a page apart modulo 4 KiB: when
/// `dst - src` is a multiple of 4 KiB (plus a few bytes), loads alias earlier
/// stores and `memcpy` falls to a fraction of its speed (measured here:
/// 2.3 vs 33 GiB/s), which would flatter the pipeline.
fn memcpy(record_size: usize, segment_size: usize, iters: u64) -> Duration {
    const PAGE: usize = 4096;
    let slots = 10;
    let mut source = vec![7u8; segment_size + PAGE];
    let mut destination = vec![0u8; segment_size * slots + PAGE];
    let src_at = source.as_ptr().align_offset(PAGE);
    let dst_at = (destination.as_ptr().align_offset(PAGE) + PAGE / 2) % PAGE;
    let source = &mut source[src_at..src_at + segment_size];
    let destination = &mut destination[dst_at..dst_at + segment_size * slots];
    destination.fill(1); // fault every page in before timing
    let mut remaining = iters as usize * (record_size + 4);
    let mut slot = 0;
    let start = Instant::now();
    while remaining > 0 {
        let n = remaining.min(segment_size);
        let offset = slot * segment_size;
        destination[offset..offset + n].copy_from_slice(&source[..n]);
        black_box(&destination[offset..offset + n]);
        remaining -= n;
        slot = (slot + 1) % slots;
    }
    let elapsed = start.elapsed();
    black_box(source);
    elapsed
}

fn partition_gate(c: &mut Criterion) {
    for record_size in [1024usize, 8] {
        let mut group = c.benchmark_group(format!("partition_gate/{record_size}B"));
        group.throughput(Throughput::Bytes(record_size as u64));
        group.sample_size(10);
        group.warm_up_time(Duration::from_secs(1));
        group.measurement_time(Duration::from_secs(4));
        for segment_size in SEGMENT_SIZES {
            let id = format!("{}KiB", segment_size >> 10);
            group.bench_function(BenchmarkId::new("taskbench", &id), |b| {
                b.iter_custom(|iters| pipeline(record_size, segment_size, iters))
            });
            group.bench_function(BenchmarkId::new("memcpy", &id), |b| {
                b.iter_custom(|iters| memcpy(record_size, segment_size, iters))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, partition_gate);
criterion_main!(benches);
