//! What a record hand-off between two task threads costs at buffer timeout
//! 0, next to the two reference points of the same run:
//!
//! * `core_to_core`: two threads ping-pong a counter through one cache
//!   line, spinning: the cheapest hand-off the machine has (a cache-line
//!   transfer each way).
//! * `park_unpark`: the same ping-pong where each side sleeps in
//!   `Parker::park_unless` until the other wakes it: what a hand-off costs
//!   when every one is a system call and a wake-up.
//! * `channel`: a record through the runtime's data path and back: thread A
//!   emits an 8-byte record into a `ResultPartition` with buffer timeout 0
//!   (`RecordWriter::set_flush_always`), thread B reads it from its
//!   `InputGate`, waiting by the default adaptive `WaitStrategy`, and emits
//!   it back through a second channel. One segment per channel is reused
//!   by hundreds of records, so what is timed is the publish, the
//!   notification on the nothing-to-read edge, the slice and the
//!   deserializer: the BufferBuilder/BufferConsumer protocol.
//!
//! Each iteration is one round trip; halve it for one hand-off. The threads
//! are pinned to two different cores when there are two.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use core_affinity::CoreId;
use criterion::{criterion_group, criterion_main, Criterion};
use taskbench::memory::{BufferPool, MemoryConfig, SegmentPool};
use taskbench::network::{
    local_channel, ChannelAvailability, InputGate, Partitioner, Poll, RecordWriter, ResultPartition,
};
use taskbench::sync::{Arc, CachePadded, Parker, WaitStrategy};

/// Round trips in the check run before any timing.
const CHECK: u64 = 20_000;

fn pin(core: Option<CoreId>) {
    if let Some(core) = core {
        core_affinity::set_for_current(core);
    }
}

/// Two distinct cores, read once: `get_core_ids` reads the calling thread's
/// allowed set, which shrinks to one core once the bench thread is pinned.
fn cores() -> (Option<CoreId>, Option<CoreId>) {
    static CORES: std::sync::OnceLock<Vec<CoreId>> = std::sync::OnceLock::new();
    let ids = CORES.get_or_init(|| core_affinity::get_core_ids().unwrap_or_default());
    match ids.as_slice() {
        [a, b, ..] => (Some(*a), Some(*b)),
        _ => (None, None),
    }
}

/// `n` round trips of a counter between two spinning threads.
fn core_to_core(n: u64) -> Duration {
    let ball = Arc::new(CachePadded::new(AtomicU64::new(0)));
    let (a, b) = cores();
    let echo = {
        let ball = ball.clone();
        std::thread::spawn(move || {
            pin(b);
            for i in 0..n {
                // Acquire/Release: pairs with the bench thread's stores.
                while ball.load(Ordering::Acquire) != 2 * i + 1 {
                    std::hint::spin_loop();
                }
                ball.store(2 * i + 2, Ordering::Release);
            }
        })
    };
    pin(a);
    let start = Instant::now();
    for i in 0..n {
        ball.store(2 * i + 1, Ordering::Release);
        while ball.load(Ordering::Acquire) != 2 * i + 2 {
            std::hint::spin_loop();
        }
    }
    let elapsed = start.elapsed();
    echo.join().unwrap();
    elapsed
}

/// `n` round trips where each side parks until the other unparks it.
fn park_unpark(n: u64) -> Duration {
    let ball = Arc::new(CachePadded::new(AtomicU64::new(0)));
    let parkers = Arc::new([Parker::new(), Parker::new()]);
    let (a, b) = cores();
    let echo = {
        let (ball, parkers) = (ball.clone(), parkers.clone());
        std::thread::spawn(move || {
            pin(b);
            for i in 0..n {
                let mine = || ball.load(Ordering::Acquire) == 2 * i + 1;
                while !mine() {
                    parkers[1].park_unless(mine, None);
                }
                ball.store(2 * i + 2, Ordering::Release);
                parkers[0].unpark();
            }
        })
    };
    pin(a);
    let start = Instant::now();
    for i in 0..n {
        ball.store(2 * i + 1, Ordering::Release);
        parkers[1].unpark();
        let mine = || ball.load(Ordering::Acquire) == 2 * i + 2;
        while !mine() {
            parkers[0].park_unless(mine, None);
        }
    }
    let elapsed = start.elapsed();
    echo.join().unwrap();
    elapsed
}

/// One direction: a writer at buffer timeout 0 into a gate.
fn channel(writer: &Arc<Parker>, reader: &Arc<Parker>) -> (RecordWriter, InputGate) {
    let memory = MemoryConfig {
        segment_size: 32 << 10,
        total_segments: 16,
        huge_pages: false,
    };
    let segments = Arc::new(SegmentPool::new(&memory).expect("map network memory"));
    let pool = Arc::new(BufferPool::new(segments, 2, 10, writer.clone()).expect("pool"));
    let availability = Arc::new(ChannelAvailability::new(1, reader.clone()));
    let (output, input) = local_channel(10, pool.clone(), &availability, 0, 8);
    let partition = ResultPartition::new(
        pool,
        vec![output],
        8,
        writer.clone(),
        WaitStrategy::default(),
    );
    let mut writer = RecordWriter::new(partition, Partitioner::Forward, 0);
    writer.set_flush_always(true);
    (writer, InputGate::new(availability, vec![input]))
}

/// Waits for the next record of `gate` by the default strategy.
fn receive(gate: &mut InputGate) -> u64 {
    let mut waiter = WaitStrategy::default().waiter();
    loop {
        let mut value = None;
        match gate
            .poll(|r| value = Some(u64::from_le_bytes(r.try_into().expect("8 bytes"))))
            .expect("well-formed")
        {
            Poll::Records { .. } => {
                if let Some(value) = value {
                    return value;
                }
            }
            Poll::Empty => {
                let parker = gate.parker().clone();
                waiter.wait(&parker, || gate.has_input(), None);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// `n` round trips of a record through two channels at buffer timeout 0.
fn channel_round_trips(n: u64) -> Duration {
    let (a_parker, b_parker) = (Arc::new(Parker::new()), Arc::new(Parker::new()));
    let (mut to_b, mut at_b) = channel(&a_parker, &b_parker);
    let (mut to_a, mut at_a) = channel(&b_parker, &a_parker);
    let (a, b) = cores();
    let echo = std::thread::spawn(move || {
        pin(b);
        for _ in 0..n {
            let v = receive(&mut at_b);
            to_a.emit(v, &(v + 1).to_le_bytes()).expect("emit");
        }
        (to_a, at_b)
    });
    pin(a);
    let start = Instant::now();
    for i in 0..n {
        to_b.emit(i, &i.to_le_bytes()).expect("emit");
        assert_eq!(receive(&mut at_a), i + 1, "the echo of record {i}");
    }
    let elapsed = start.elapsed();
    let (to_a, at_b) = echo.join().unwrap();
    drop((to_a, to_b, at_a, at_b));
    elapsed
}

fn handoff(c: &mut Criterion) {
    cores();
    // Every record comes back, in order, before anything is timed.
    channel_round_trips(CHECK);
    let mut group = c.benchmark_group("handoff_round_trip");
    group.measurement_time(Duration::from_secs(4));
    group.bench_function("core_to_core", |b| b.iter_custom(core_to_core));
    group.bench_function("park_unpark", |b| b.iter_custom(park_unpark));
    group.bench_function("channel_timeout_0", |b| b.iter_custom(channel_round_trips));
    group.finish();
}

criterion_group!(benches, handoff);
criterion_main!(benches);
