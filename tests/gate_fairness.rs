//! The gate serves channels with data round-robin: a busy channel cannot
//! starve the others, and it learns which channels have data without
//! scanning them all.
#![cfg(not(loom))]

use taskbench::memory::{BufferPool, MemoryConfig, SegmentPool};
use taskbench::network::{
    local_channel, ChannelAvailability, Event, InputGate, Poll, ResultPartition, ResultSubpartition,
};
use taskbench::sync::{Arc, Parker, WaitStrategy};

/// A record whose frame fills a 4 KiB segment exactly: each record is a
/// buffer of its own.
const RECORD: usize = 4096 - 4;

fn gate_with_partitions(n: usize) -> (Vec<ResultPartition>, InputGate, Vec<Arc<BufferPool>>) {
    let memory = MemoryConfig {
        segment_size: 4096,
        total_segments: 64,
        huge_pages: false,
    };
    let segments = Arc::new(SegmentPool::new(&memory).unwrap());
    let availability = Arc::new(ChannelAvailability::new(n, Arc::new(Parker::new())));
    let mut partitions = Vec::new();
    let mut inputs = Vec::new();
    let mut pools = Vec::new();
    for channel in 0..n as u32 {
        let parker = Arc::new(Parker::new());
        let pool = Arc::new(BufferPool::new(segments.clone(), 2, 10, parker.clone()).unwrap());
        let (output, input): (ResultSubpartition, _) =
            local_channel(10, pool.clone(), &availability, channel, RECORD);
        partitions.push(ResultPartition::new(
            pool.clone(),
            vec![output],
            RECORD,
            parker,
            WaitStrategy::default(),
        ));
        inputs.push(input);
        pools.push(pool);
    }
    (partitions, InputGate::new(availability, inputs), pools)
}

#[test]
fn channels_with_data_are_served_round_robin() {
    let (mut partitions, mut gate, pools) = gate_with_partitions(3);
    // Channel 0 gets 6 full segments, channels 1 and 2 get 2 each, queued
    // in that order: 0 first, so a FIFO-per-channel gate would serve 0 six
    // times.
    for (index, partition) in partitions.iter_mut().enumerate() {
        let buffers = if index == 0 { 6 } else { 2 };
        for b in 0..buffers {
            let mut record = [index as u8; RECORD];
            record[0] = b as u8;
            partition.emit(0, &record).unwrap();
        }
        assert_eq!(partition.metrics().buffers_out, buffers);
    }
    let mut order = Vec::new();
    loop {
        match gate.poll(|_| {}).unwrap() {
            Poll::Records { channel, records } => {
                assert_eq!(records, 1);
                order.push(channel);
            }
            Poll::Empty => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(order, [0, 1, 2, 0, 1, 2, 0, 0, 0, 0]);
    for partition in &mut partitions {
        partition.finish().unwrap();
    }
    let mut ended = 0;
    while let Poll::Event { event, .. } = gate.poll(|_| {}).unwrap() {
        assert_eq!(event, Event::EndOfPartition);
        ended += 1;
    }
    assert_eq!(ended, 3);
    assert_eq!(gate.poll(|_| {}).unwrap(), Poll::Finished);
    assert!(gate.is_finished());
    drop((partitions, gate));
    assert!(pools.iter().all(|p| p.is_full()));
}
