//! A back-pressured writer waits without spinning forever: recycling wakes
//! it, an interrupt (cancellation) ends the wait, and a consumer that goes
//! away releases it. Pools are full afterwards in every case.
#![cfg(not(loom))]

use std::sync::mpsc;
use std::time::{Duration, Instant};

use taskbench::memory::{BufferPool, MemoryConfig, SegmentPool};
use taskbench::network::{
    local_channel, ChannelAvailability, InputGate, Partitioner, Poll, RecordWriter,
    ResultPartition, WriteError,
};
use taskbench::sync::{Arc, Parker, WaitStrategy};

/// Guards against a hang: a test that would hang fails instead.
const GUARD: Duration = Duration::from_secs(20);

struct Job {
    writer: RecordWriter,
    gate: InputGate,
    pool: Arc<BufferPool>,
    segments: Arc<SegmentPool>,
    producer: Arc<Parker>,
}

/// One partition of one subpartition → a gate, 4 KiB segments, credit 4,
/// a pool of at most 3 segments: a few KiB of records exhaust the pool
/// (each segment enters the channel once, so the pool runs out before the
/// credit does).
fn job(wait: WaitStrategy) -> Job {
    let memory = MemoryConfig {
        segment_size: 4096,
        total_segments: 8,
        huge_pages: false,
    };
    let segments = Arc::new(SegmentPool::new(&memory).unwrap());
    let producer = Arc::new(Parker::new());
    let pool = Arc::new(BufferPool::new(segments.clone(), 2, 3, producer.clone()).unwrap());
    let availability = Arc::new(ChannelAvailability::new(1, Arc::new(Parker::new())));
    let (output, input) = local_channel(4, pool.clone(), &availability, 0, 1024);
    let partition = ResultPartition::new(pool.clone(), vec![output], 1024, producer.clone(), wait);
    Job {
        writer: RecordWriter::new(partition, Partitioner::Forward, 0),
        gate: InputGate::new(availability, vec![input]),
        pool,
        segments,
        producer,
    }
}

/// Writes 1 KiB records until the writer fails; reports the error.
fn write_until_error(mut writer: RecordWriter) -> (WriteError, RecordWriter) {
    let record = [1u8; 1000];
    loop {
        if let Err(e) = writer.emit(0, &record) {
            return (e, writer);
        }
    }
}

#[test]
fn interrupt_ends_a_back_pressured_wait() {
    for wait in [
        WaitStrategy::default(),
        WaitStrategy::SpinYield { spins: 4 },
        WaitStrategy::BusySpin,
    ] {
        let Job {
            writer,
            gate,
            pool,
            segments,
            producer,
        } = job(wait);
        let (done, result) = mpsc::channel();
        let thread = std::thread::spawn(move || done.send(write_until_error(writer)).unwrap());
        // Let it fill the ring and the pool, then cancel.
        while pool.is_available() {
            std::thread::yield_now();
        }
        producer.interrupt();
        let (err, writer) = result
            .recv_timeout(GUARD)
            .expect("interrupted writer returns");
        assert!(matches!(err, WriteError::Interrupted), "{wait:?}: {err}");
        thread.join().unwrap();
        drop((writer, gate));
        assert!(pool.is_full(), "{wait:?}");
        drop(pool);
        assert!(segments.is_full(), "{wait:?}");
    }
}

#[test]
fn a_consumer_that_goes_away_releases_the_writer() {
    let Job {
        writer,
        gate,
        pool,
        segments,
        ..
    } = job(WaitStrategy::default());
    let (done, result) = mpsc::channel();
    let thread = std::thread::spawn(move || done.send(write_until_error(writer)).unwrap());
    while pool.is_available() {
        std::thread::yield_now();
    }
    drop(gate);
    let (err, writer) = result
        .recv_timeout(GUARD)
        .expect("writer notices the consumer is gone");
    assert!(
        matches!(err, WriteError::ConsumerGone { subpartition: 0 }),
        "{err}"
    );
    assert!(err
        .to_string()
        .contains("consumer of subpartition 0 is gone"));
    thread.join().unwrap();
    drop(writer);
    assert!(pool.is_full());
    drop(pool);
    assert!(segments.is_full());
}

#[test]
fn recycling_wakes_a_parked_writer_and_back_pressure_is_counted() {
    let Job {
        writer,
        mut gate,
        pool,
        producer,
        ..
    } = job(WaitStrategy::SpinPark {
        spins: 0,
        yields: 0,
    });
    const RECORDS: usize = 200;
    let thread = std::thread::spawn(move || {
        let mut writer = writer;
        for _ in 0..RECORDS {
            writer.emit(0, &[3u8; 1000]).unwrap();
        }
        writer.finish().unwrap();
        writer
    });
    // Nothing is read until the writer has parked on the exhausted pool
    // (or its full ring), so the wait surely happens.
    let start = Instant::now();
    while !producer.is_parked() {
        assert!(start.elapsed() < GUARD, "the writer never parked");
        std::thread::yield_now();
    }
    let mut received = 0;
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut waiter = WaitStrategy::default().waiter();
        loop {
            match gate.poll(|r| {
                assert_eq!(r, [3u8; 1000]);
                received += 1;
            }) {
                Ok(Poll::Finished) => break,
                Ok(Poll::Empty) => {
                    let parker = gate.parker().clone();
                    waiter.wait(&parker, || gate.has_input(), None);
                }
                Ok(_) => {}
                Err(e) => panic!("{e}"),
            }
        }
        tx.send(received).unwrap();
        gate
    });
    assert_eq!(rx.recv_timeout(GUARD).expect("job finishes"), RECORDS);
    let writer = thread.join().unwrap();
    let gate = reader.join().unwrap();
    let metrics = writer.partition().metrics();
    assert_eq!(metrics.records_out, RECORDS as u64);
    assert!(
        metrics.hard_back_pressured_ns > 0 && metrics.hard_back_pressure_waits > 0,
        "the wait was counted: {metrics:?}"
    );
    // The reader took at least one slice per published buffer, never more
    // bytes than were sent.
    assert!(gate.metrics().buffers_in >= metrics.buffers_out);
    assert_eq!(gate.metrics().bytes_in, metrics.bytes_out);
    drop((writer, gate));
    assert!(pool.is_full());
}
