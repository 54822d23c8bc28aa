//! Cost of taking a network buffer from a `BufferPool` and giving it back
//! (`taskbench::memory`), the per-buffer overhead every record writer pays.
//!
//! Group `pool`, throughput counted in buffers:
//! * `round_trip`: `request` + `finish` + `recycle` of one buffer on one
//!   thread (the pool's free list stays warm in this core's cache).
//! * `burst_8`: request 8 buffers, then finish and recycle them all, as a
//!   writer that fills several subpartitions before their readers recycle.
//! * `broadcast_4_readers`: request + finish, `share` three more handles and
//!   recycle all four, as a broadcast buffer read by four channels.
//! * `cross_thread_recycle`: the bench thread requests and finishes buffers
//!   and hands them through a ring (`taskbench::network::ring`) to a reader
//!   thread that recycles them, so every segment index crosses cores twice;
//!   the writer spins when the pool (Flink's defaults for one subpartition:
//!   min 2, max 10) is empty. The two threads are pinned to different cores
//!   when there are two.
//!
//! Each benchmark first checks the pool is full again after a run.

use std::hint::spin_loop;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use core_affinity::CoreId;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use taskbench::memory::{BufferBuilder, BufferConsumer, BufferPool, MemoryConfig, SegmentPool};
use taskbench::network::ring::{self, PushError};
use taskbench::sync::Parker;

const SEGMENT_SIZE: usize = 32 << 10;
const TOTAL_SEGMENTS: u32 = 64;
/// Flink's output pool bounds for one subpartition: (1 + 1, 2 × 1 + 8).
const POOL_MIN: u32 = 2;
const POOL_MAX: u32 = 10;
const BURST: usize = 8;
const READERS: usize = 4;

fn segment_pool() -> Arc<SegmentPool> {
    let config = MemoryConfig {
        segment_size: SEGMENT_SIZE,
        total_segments: TOTAL_SEGMENTS,
        huge_pages: false,
    };
    Arc::new(SegmentPool::new(&config).expect("map network memory"))
}

fn buffer_pool(segments: &Arc<SegmentPool>) -> BufferPool {
    BufferPool::new(
        segments.clone(),
        POOL_MIN,
        POOL_MAX,
        Arc::new(Parker::new()),
    )
    .expect("reserve the pool's minimum")
}

#[inline]
fn request(pool: &BufferPool) -> BufferBuilder {
    pool.request().expect("the pool has a free buffer")
}

#[inline]
fn round_trip(pool: &BufferPool) {
    let builder = black_box(request(pool));
    pool.recycle(pool.finish(builder));
}

#[inline]
fn burst(pool: &BufferPool, builders: &mut Vec<BufferBuilder>) {
    builders.extend((0..BURST).map(|_| request(pool)));
    for builder in builders.drain(..) {
        pool.recycle(pool.finish(black_box(builder)));
    }
}

#[inline]
fn broadcast(pool: &BufferPool) {
    let mut first = pool.finish(request(pool));
    let copies: [BufferConsumer; READERS - 1] = std::array::from_fn(|_| pool.share(&mut first));
    pool.recycle(first);
    for copy in copies {
        pool.recycle(black_box(copy));
    }
}

fn assert_full(pool: &BufferPool, what: &str) {
    assert!(pool.is_full(), "{what}: a buffer was not recycled");
}

fn one_thread(c: &mut Criterion) {
    let segments = segment_pool();
    let pool = buffer_pool(&segments);
    let mut builders = Vec::with_capacity(BURST);

    // Check each pattern hands every segment back before timing it.
    round_trip(&pool);
    assert_full(&pool, "round_trip");
    burst(&pool, &mut builders);
    assert_full(&pool, "burst");
    assert!(pool.owned_segments() >= BURST as u32, "burst grew the pool");
    let mut first = pool.finish(request(&pool));
    let second = pool.share(&mut first);
    pool.recycle(first);
    assert!(
        !pool.is_full(),
        "a shared buffer returns after its last handle"
    );
    pool.recycle(second);
    broadcast(&pool);
    assert_full(&pool, "broadcast");

    let mut group = c.benchmark_group("pool");
    group.throughput(Throughput::Elements(1));
    group.bench_function("round_trip", |b| b.iter(|| round_trip(&pool)));
    group.bench_function("broadcast_4_readers", |b| b.iter(|| broadcast(&pool)));
    group.throughput(Throughput::Elements(BURST as u64));
    group.bench_function("burst_8", |b| b.iter(|| burst(&pool, &mut builders)));
    group.finish();

    assert_full(&pool, "after the benchmarks");
    drop(pool);
    assert!(segments.is_full());
}

// ---------------------------------------------------------------------------
// Cross-thread recycling
// ---------------------------------------------------------------------------

const IDLE: u32 = 0;
const READY: u32 = 1;
const GO: u32 = 2;

/// A reader thread that, on each command, pops `n` buffers from the ring and
/// recycles them. It sleeps between runs and spins only during one.
struct Recycler {
    commands: Option<mpsc::Sender<u64>>,
    state: Arc<AtomicU32>,
    thread: Option<JoinHandle<()>>,
}

impl Recycler {
    fn spawn(
        pool: Arc<BufferPool>,
        mut rx: ring::Consumer<BufferConsumer>,
        core: Option<CoreId>,
    ) -> Self {
        let (commands, inbox) = mpsc::channel::<u64>();
        let state = Arc::new(AtomicU32::new(IDLE));
        let shared = state.clone();
        let thread = std::thread::Builder::new()
            .name("pool-recycler".into())
            .spawn(move || {
                if let Some(core) = core {
                    core_affinity::set_for_current(core);
                }
                while let Ok(n) = inbox.recv() {
                    shared.store(READY, Ordering::Release);
                    while shared.load(Ordering::Acquire) != GO {
                        spin_loop();
                    }
                    let mut recycled = 0;
                    while recycled < n {
                        match rx.pop() {
                            Some(buffer) => {
                                pool.recycle(buffer);
                                recycled += 1;
                            }
                            None => spin_loop(),
                        }
                    }
                }
            })
            .expect("spawn recycler thread");
        Self {
            commands: Some(commands),
            state,
            thread: Some(thread),
        }
    }

    /// Writes `n` buffers through the ring and returns the time until the
    /// last one is back in the pool.
    fn run(&self, pool: &BufferPool, tx: &mut ring::Producer<BufferConsumer>, n: u64) -> Duration {
        self.state.store(IDLE, Ordering::Relaxed);
        self.commands
            .as_ref()
            .expect("recycler running")
            .send(n)
            .expect("recycler thread alive");
        while self.state.load(Ordering::Acquire) != READY {
            spin_loop();
        }
        let start = Instant::now();
        self.state.store(GO, Ordering::Release);
        for _ in 0..n {
            let builder = loop {
                match pool.request() {
                    Some(builder) => break builder,
                    None => spin_loop(),
                }
            };
            let mut buffer = pool.finish(builder);
            while let Err(PushError::Full(back)) = tx.push(buffer) {
                buffer = back;
                spin_loop();
            }
        }
        while !pool.is_full() {
            spin_loop();
        }
        start.elapsed()
    }
}

impl Drop for Recycler {
    fn drop(&mut self) {
        drop(self.commands.take());
        if std::thread::panicking() {
            return;
        }
        if let Some(thread) = self.thread.take() {
            thread.join().expect("recycler thread panicked");
        }
    }
}

fn cross_thread(c: &mut Criterion) {
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let recycler_core = match cores.as_slice() {
        [writer, reader, ..] => {
            core_affinity::set_for_current(*writer);
            Some(*reader)
        }
        _ => {
            eprintln!("pool: fewer than two cores, threads are not pinned");
            None
        }
    };

    let segments = segment_pool();
    let pool = Arc::new(buffer_pool(&segments));
    // Room for every buffer the pool may lend, so only the pool limits.
    let (mut tx, rx) = ring::channel::<BufferConsumer>(POOL_MAX as usize);
    let recycler = Recycler::spawn(pool.clone(), rx, recycler_core);

    recycler.run(&pool, &mut tx, 10_000);
    assert_full(&pool, "cross_thread_recycle");

    let mut group = c.benchmark_group("pool");
    group.throughput(Throughput::Elements(1));
    group.bench_function("cross_thread_recycle", |b| {
        b.iter_custom(|iters| recycler.run(&pool, &mut tx, iters))
    });
    group.finish();

    drop(recycler);
    drop(tx);
    assert_full(&pool, "after cross_thread_recycle");
}

criterion_group!(benches, one_thread, cross_thread);
criterion_main!(benches);
