//! Two threads, one partition → one gate, every partitioner, 1–4
//! subpartitions, records of mixed sizes (some spanning segments), with and
//! without flushes (which hand the consumer views of segments the producer
//! keeps writing): every
//! record arrives exactly once, in order per channel, on the channel its
//! partitioner picks; every pool is full afterwards; nothing allocates
//! between the start of the run and the end of input.

#![cfg(not(loom))]

use std::sync::{Arc, Barrier};

use taskbench::memory::{BufferPool, MemoryConfig, SegmentPool};
use taskbench::metrics::{AllocationCount, CountingAllocator};
use taskbench::network::partition::key_group;
use taskbench::network::{
    local_channel, ChannelAvailability, InputGate, NetworkConfig, Partitioner, Poll, RecordWriter,
    ResultPartition,
};
use taskbench::sync::{Parker, WaitStrategy};

#[global_allocator]
static ALLOC: CountingAllocator<std::alloc::System> = CountingAllocator(std::alloc::System);

const RECORDS: u64 = if cfg!(miri) { 2_000 } else { 1_000_000 };
const MAX_RECORD: usize = 48 << 10;

/// Deterministic mixed sizes: mostly small, some around 1–3 KiB, a few
/// larger than a 32 KiB segment.
fn record_size(seq: u64) -> usize {
    let h = seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
    match seq % 1000 {
        0 => 33_000 + (h % 15_000) as usize,
        1..=50 => 1_000 + (h % 2_000) as usize,
        _ => 8 + (h % 120) as usize,
    }
}

fn key(seq: u64) -> u64 {
    seq.wrapping_mul(31) ^ 0x5555
}

/// Fills `record` with `seq` followed by a pattern derived from it.
fn fill(record: &mut [u8], seq: u64) {
    record[..8].copy_from_slice(&seq.to_le_bytes());
    for (i, byte) in record[8..].iter_mut().enumerate() {
        *byte = (seq as u8).wrapping_add(i as u8);
    }
}

fn check(record: &[u8]) -> u64 {
    let seq = u64::from_le_bytes(record[..8].try_into().unwrap());
    assert_eq!(record.len(), record_size(seq), "length of record {seq}");
    for (i, &byte) in record[8..].iter().enumerate() {
        assert_eq!(
            byte,
            (seq as u8).wrapping_add(i as u8),
            "byte {i} of record {seq}"
        );
    }
    seq
}

fn expected_channel(partitioner: Partitioner, channels: usize, seq: u64) -> Option<usize> {
    match partitioner {
        Partitioner::Forward => Some(0),
        Partitioner::Rebalance | Partitioner::Rescale => Some((seq % channels as u64) as usize),
        Partitioner::Hash {
            max_parallelism, ..
        } => Some(
            key_group::assign_key_to_operator(key(seq), max_parallelism, channels as u32) as usize,
        ),
        Partitioner::Broadcast => None,
    }
}

/// How often the producer flushes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flush {
    /// Only full segments and the end of input (buffer timeout "none").
    Never,
    /// `flush_all` after every `n`-th record (a buffer timeout).
    Every(u64),
    /// After every record (buffer timeout 0).
    Always,
}

fn run(partitioner: Partitioner, channels: usize, segment_size: usize, wait: WaitStrategy) {
    run_flushing(partitioner, channels, segment_size, wait, Flush::Never);
}

fn run_flushing(
    partitioner: Partitioner,
    channels: usize,
    segment_size: usize,
    wait: WaitStrategy,
    flush: Flush,
) {
    let network = NetworkConfig {
        memory: MemoryConfig {
            segment_size,
            total_segments: 256,
            huge_pages: false,
        },
        max_record_size: MAX_RECORD,
        ..NetworkConfig::default()
    };
    // A buffer every few records is slow by design; fewer show as much.
    let records = if flush != Flush::Never {
        RECORDS / 10
    } else {
        RECORDS
    };
    let segments = Arc::new(SegmentPool::new(&network.memory).unwrap());
    let producer_parker = Arc::new(Parker::new());
    let consumer_parker = Arc::new(Parker::new());
    let (min, max) = BufferPool::default_bounds(channels as u32);
    let pool =
        Arc::new(BufferPool::new(segments.clone(), min, max, producer_parker.clone()).unwrap());
    let availability = Arc::new(ChannelAvailability::new(channels, consumer_parker));
    let (outputs, inputs): (Vec<_>, Vec<_>) = (0..channels as u32)
        .map(|c| {
            local_channel(
                network.channel_credit(),
                pool.clone(),
                &availability,
                c,
                MAX_RECORD,
            )
        })
        .unzip();
    let partition = ResultPartition::new(pool.clone(), outputs, MAX_RECORD, producer_parker, wait);
    let mut writer = RecordWriter::new(partition, partitioner, 0);
    writer.set_flush_always(flush == Flush::Always);
    let mut gate = InputGate::new(availability, inputs);
    let start = Arc::new(Barrier::new(3));

    let producer = {
        let start = start.clone();
        std::thread::spawn(move || {
            let mut record = vec![0u8; MAX_RECORD];
            start.wait();
            let at_start = AllocationCount::thread_now();
            for seq in 0..records {
                let record = &mut record[..record_size(seq)];
                fill(record, seq);
                writer.emit(key(seq), record).unwrap();
                if let Flush::Every(n) = flush {
                    if seq % n == 0 {
                        writer.flush_all();
                    }
                }
            }
            writer.finish().unwrap();
            (writer, AllocationCount::thread_now().since(at_start))
        })
    };
    let consumer = {
        let start = start.clone();
        std::thread::spawn(move || {
            // Sequence numbers of the buffer being read, checked against the
            // channel once `poll` says which it was. Sized at setup.
            let mut seen = Vec::with_capacity(segment_size / 5 + 2);
            let mut next_seq = vec![0u64; channels];
            let mut counts = vec![0u64; channels];
            let mut checksum = 0u64;
            let mut waiter = wait.waiter();
            start.wait();
            let at_start = AllocationCount::thread_now();
            loop {
                seen.clear();
                match gate.poll(|record| seen.push(check(record))).unwrap() {
                    Poll::Records { channel, records } => {
                        assert_eq!(records, seen.len());
                        for &seq in &seen {
                            if let Some(expected) = expected_channel(partitioner, channels, seq) {
                                assert_eq!(channel, expected, "record {seq} on the wrong channel");
                            }
                            assert!(
                                seq >= next_seq[channel],
                                "record {seq} out of order on channel {channel}"
                            );
                            next_seq[channel] = seq + 1;
                            checksum = checksum.wrapping_add(seq);
                        }
                        counts[channel] += records as u64;
                        waiter = wait.waiter();
                    }
                    Poll::Event { .. } | Poll::Priority => {}
                    Poll::Empty => {
                        let parker = gate.parker().clone();
                        waiter.wait(&parker, || gate.has_input(), None);
                    }
                    Poll::Finished => break,
                }
            }
            let allocations = AllocationCount::thread_now().since(at_start);
            (counts, checksum, allocations, gate)
        })
    };
    start.wait();
    let (counts, checksum, consumer_allocations, gate) = consumer.join().unwrap();
    let (writer, producer_allocations) = producer.join().unwrap();

    let case = format!(
        "{partitioner:?} × {channels} channels, {segment_size} B segments, {wait:?}, {flush:?}"
    );
    assert_eq!(
        producer_allocations.plus(consumer_allocations).allocations,
        0,
        "{case}: allocations on the data path"
    );
    let copies = if partitioner == Partitioner::Broadcast {
        channels as u64
    } else {
        1
    };
    assert_eq!(
        counts.iter().sum::<u64>(),
        records * copies,
        "{case}: record count"
    );
    let sum = (0..records).fold(0u64, |a, s| a.wrapping_add(s));
    assert_eq!(checksum, sum.wrapping_mul(copies), "{case}: checksum");
    if partitioner == Partitioner::Broadcast {
        assert!(counts.iter().all(|&c| c == records), "{case}: {counts:?}");
    }
    let metrics = writer.partition().metrics();
    assert_eq!(metrics.records_out, records, "{case}");
    assert_eq!(gate.metrics().records_in, records * copies, "{case}");
    assert_eq!(metrics.pool_size, max, "{case}");
    assert!(
        (1..=max).contains(&metrics.max_buffers_in_use),
        "{case}: {metrics:?}"
    );
    assert!(
        metrics.hard_back_pressure_waits == 0 || metrics.hard_back_pressured_ns > 0,
        "{case}: {metrics:?}"
    );
    if flush == Flush::Always {
        // Each record is made readable on its own, and on every channel for
        // broadcast: at least one buffer per record copy.
        assert!(
            metrics.buffers_out >= records * copies,
            "{case}: {metrics:?}"
        );
    }

    drop(writer);
    drop(gate);
    assert!(pool.is_full(), "{case}: partition pool not full");
    drop(pool);
    assert!(segments.is_full(), "{case}: segment pool not full");
}

fn all_partitioners(channels: usize, segment_size: usize) {
    all_partitioners_flushing(channels, segment_size, Flush::Never);
}

fn all_partitioners_flushing(channels: usize, segment_size: usize, flush: Flush) {
    for partitioner in [
        Partitioner::Rebalance,
        Partitioner::Rescale,
        Partitioner::hash_for(channels as u32),
        Partitioner::Broadcast,
    ] {
        let wait = WaitStrategy::default();
        run_flushing(partitioner, channels, segment_size, wait, flush);
    }
}

#[test]
fn forward_one_channel() {
    run(Partitioner::Forward, 1, 32 << 10, WaitStrategy::default());
}

#[test]
fn one_channel_4k_segments() {
    all_partitioners(1, 4 << 10);
}

#[test]
fn two_channels_32k_segments() {
    all_partitioners(2, 32 << 10);
}

#[test]
fn three_channels_64k_segments() {
    all_partitioners(3, 64 << 10);
}

#[test]
fn four_channels_1m_segments() {
    all_partitioners(4, 1 << 20);
}

#[test]
fn spin_yield_and_busy_spin_waits() {
    run(
        Partitioner::Rebalance,
        4,
        4 << 10,
        WaitStrategy::SpinYield { spins: 16 },
    );
    run(Partitioner::Rebalance, 2, 4 << 10, WaitStrategy::BusySpin);
}

#[test]
fn flushes_every_few_records_hand_over_views() {
    let wait = WaitStrategy::default();
    run_flushing(Partitioner::Forward, 1, 4096, wait, Flush::Every(3));
    all_partitioners_flushing(1, 4096, Flush::Every(3));
    all_partitioners_flushing(3, 4096, Flush::Every(5));
}

#[test]
fn flushing_after_every_record_hands_over_views() {
    all_partitioners_flushing(2, 32 << 10, Flush::Always);
}
