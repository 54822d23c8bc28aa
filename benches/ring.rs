//! Throughput of the SPSC ring that carries buffers from a subpartition to an
//! input channel (`taskbench::network::ring`), next to `rtrb` (whose design it
//! follows) and crossbeam's `ArrayQueue` (a bounded MPMC queue, the obvious
//! off-the-shelf alternative).
//!
//! * `ring_handoff`: a producer thread hands `N` items to the consumer (the
//!   bench thread), which checks every item arrives in order while it is
//!   timed. Items are `u64` and a 16-byte struct the size of our `Buffer`
//!   handle; capacities are 1024 (a roomy ring) and 16 (a Flink channel's
//!   credit, where the two sides meet the full/empty edge often). The two
//!   threads are pinned to different cores when there are two. The timer
//!   starts once the producer thread is awake and spinning, so thread
//!   wake-up is not counted. `harness_only` runs the same start/stop protocol
//!   and the consumer's checking loop with no queue at all: the ceiling the
//!   harness itself allows.
//! * `ring_single_thread`: fill a ring to capacity and drain it on one
//!   thread: the cost of the operations themselves, without cache-line
//!   transfers.

use std::hint::spin_loop;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use core_affinity::CoreId;
use criterion::measurement::WallTime;
use criterion::{
    black_box, criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, Throughput,
};
use crossbeam_queue::ArrayQueue;
use taskbench::network::ring::{self, PushError};

/// Items handed over in the check run before any timing.
const CHECK_ITEMS: u64 = 200_000;
/// Ring capacities: a roomy ring and a Flink channel's default credit.
const CAPACITIES: [usize; 2] = [1024, 16];

// ---------------------------------------------------------------------------
// Items
// ---------------------------------------------------------------------------

/// What goes through the rings: built from a sequence number, checked
/// against the sequence number the consumer expects.
trait Item: Copy + Send + 'static {
    const NAME: &'static str;
    fn new(seq: u64) -> Self;
    fn is(&self, seq: u64) -> bool;
}

impl Item for u64 {
    const NAME: &'static str = "u64";

    #[inline]
    fn new(seq: u64) -> Self {
        seq
    }

    #[inline]
    fn is(&self, seq: u64) -> bool {
        *self == seq
    }
}

/// Shaped like `taskbench::memory::Buffer` (pointer, segment, length): 16
/// bytes, but `Copy` so the queues can be compared on equal terms.
#[derive(Clone, Copy, Debug)]
struct Handle {
    seq: u64,
    segment: u32,
    len: u32,
}

const _: () = assert!(std::mem::size_of::<Handle>() == 16);

impl Item for Handle {
    const NAME: &'static str = "handle16";

    #[inline]
    fn new(seq: u64) -> Self {
        Handle {
            seq,
            segment: seq as u32,
            len: 32 << 10,
        }
    }

    #[inline]
    fn is(&self, seq: u64) -> bool {
        self.seq == seq && self.segment == seq as u32 && self.len == 32 << 10
    }
}

/// Stops the bench loudly if an item is lost, duplicated or reordered.
#[cold]
#[inline(never)]
fn out_of_order(queue: &str, expected: u64) -> ! {
    panic!("{queue}: item {expected} did not arrive in order");
}

// ---------------------------------------------------------------------------
// Contenders
// ---------------------------------------------------------------------------

/// One queue under test: both halves, and how each side moves `n` items.
trait Queue<T: Item> {
    const NAME: &'static str;
    type Tx: Send + 'static;
    type Rx;
    fn new(capacity: usize) -> (Self::Tx, Self::Rx);
    /// Pushes items `0..n` in order, spinning while the queue is full.
    fn send(tx: &mut Self::Tx, n: u64);
    /// Pops `n` items, checking they are `0..n` in order, spinning while the
    /// queue is empty.
    fn recv(rx: &mut Self::Rx, n: u64);
}

/// Our ring, one item per `push`/`pop`.
struct Ours;

impl<T: Item> Queue<T> for Ours {
    const NAME: &'static str = "taskbench";
    type Tx = ring::Producer<T>;
    type Rx = ring::Consumer<T>;

    fn new(capacity: usize) -> (Self::Tx, Self::Rx) {
        ring::channel(capacity)
    }

    #[inline]
    fn send(tx: &mut Self::Tx, n: u64) {
        for seq in 0..n {
            let mut item = T::new(seq);
            while let Err(PushError::Full(back)) = tx.push(item) {
                item = back;
                spin_loop();
            }
        }
    }

    #[inline]
    fn recv(rx: &mut Self::Rx, n: u64) {
        let mut expected = 0;
        while expected < n {
            match rx.pop() {
                Some(item) => {
                    if !item.is(expected) {
                        out_of_order(<Self as Queue<T>>::NAME, expected);
                    }
                    expected += 1;
                }
                None => spin_loop(),
            }
        }
    }
}

/// Our ring through `push_batch`/`pop_batch`: one index store per batch.
struct OursBatch;

impl<T: Item> Queue<T> for OursBatch {
    const NAME: &'static str = "taskbench_batch";
    type Tx = ring::Producer<T>;
    type Rx = ring::Consumer<T>;

    fn new(capacity: usize) -> (Self::Tx, Self::Rx) {
        ring::channel(capacity)
    }

    #[inline]
    fn send(tx: &mut Self::Tx, n: u64) {
        let mut items = (0..n).map(T::new);
        let mut sent = 0;
        while sent < n {
            match tx.push_batch(&mut items) {
                0 => spin_loop(),
                pushed => sent += pushed as u64,
            }
        }
    }

    #[inline]
    fn recv(rx: &mut Self::Rx, n: u64) {
        let mut expected = 0;
        while expected < n {
            let popped = rx.pop_batch(usize::MAX, |item: T| {
                if !item.is(expected) {
                    out_of_order(<Self as Queue<T>>::NAME, expected);
                }
                expected += 1;
            });
            if popped == 0 {
                spin_loop();
            }
        }
    }
}

/// `rtrb::RingBuffer`, one item per `push`/`pop`.
struct Rtrb;

impl<T: Item> Queue<T> for Rtrb {
    const NAME: &'static str = "rtrb";
    type Tx = rtrb::Producer<T>;
    type Rx = rtrb::Consumer<T>;

    fn new(capacity: usize) -> (Self::Tx, Self::Rx) {
        rtrb::RingBuffer::new(capacity)
    }

    #[inline]
    fn send(tx: &mut Self::Tx, n: u64) {
        for seq in 0..n {
            let mut item = T::new(seq);
            while let Err(rtrb::PushError::Full(back)) = tx.push(item) {
                item = back;
                spin_loop();
            }
        }
    }

    #[inline]
    fn recv(rx: &mut Self::Rx, n: u64) {
        let mut expected = 0;
        while expected < n {
            match rx.pop() {
                Ok(item) => {
                    if !item.is(expected) {
                        out_of_order(<Self as Queue<T>>::NAME, expected);
                    }
                    expected += 1;
                }
                Err(_) => spin_loop(),
            }
        }
    }
}

/// crossbeam's bounded `ArrayQueue`, shared by both threads.
struct Crossbeam;

impl<T: Item> Queue<T> for Crossbeam {
    const NAME: &'static str = "crossbeam_array_queue";
    type Tx = Arc<ArrayQueue<T>>;
    type Rx = Arc<ArrayQueue<T>>;

    fn new(capacity: usize) -> (Self::Tx, Self::Rx) {
        let queue = Arc::new(ArrayQueue::new(capacity));
        (queue.clone(), queue)
    }

    #[inline]
    fn send(tx: &mut Self::Tx, n: u64) {
        for seq in 0..n {
            let mut item = T::new(seq);
            while let Err(back) = tx.push(item) {
                item = back;
                spin_loop();
            }
        }
    }

    #[inline]
    fn recv(rx: &mut Self::Rx, n: u64) {
        let mut expected = 0;
        while expected < n {
            match rx.pop() {
                Some(item) => {
                    if !item.is(expected) {
                        out_of_order(<Self as Queue<T>>::NAME, expected);
                    }
                    expected += 1;
                }
                None => spin_loop(),
            }
        }
    }
}

/// No queue: the producer does nothing and the consumer checks `n` items it
/// makes itself. Measures the harness (start/stop handshake, checking loop).
struct HarnessOnly;

impl<T: Item> Queue<T> for HarnessOnly {
    const NAME: &'static str = "harness_only";
    type Tx = ();
    type Rx = ();

    fn new(_capacity: usize) -> (Self::Tx, Self::Rx) {
        ((), ())
    }

    fn send(_tx: &mut Self::Tx, _n: u64) {}

    #[inline]
    fn recv(_rx: &mut Self::Rx, n: u64) {
        for expected in 0..n {
            let item = black_box(T::new(expected));
            if !item.is(expected) {
                out_of_order(<Self as Queue<T>>::NAME, expected);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Cross-thread harness
// ---------------------------------------------------------------------------

const IDLE: u32 = 0;
const READY: u32 = 1;
const GO: u32 = 2;

/// A producer thread that owns the queue's sending half and, on each
/// command, pushes `n` items once the consumer says go.
struct ProducerThread {
    commands: Option<mpsc::Sender<u64>>,
    state: Arc<AtomicU32>,
    thread: Option<JoinHandle<()>>,
}

impl ProducerThread {
    fn spawn<T: Item, Q: Queue<T>>(mut tx: Q::Tx, core: Option<CoreId>) -> Self {
        let (commands, inbox) = mpsc::channel::<u64>();
        let state = Arc::new(AtomicU32::new(IDLE));
        let shared = state.clone();
        let thread = std::thread::Builder::new()
            .name("ring-producer".into())
            .spawn(move || {
                if let Some(core) = core {
                    core_affinity::set_for_current(core);
                }
                // Sleeps between runs; spins only from READY to the end of a run.
                while let Ok(n) = inbox.recv() {
                    shared.store(READY, Ordering::Release);
                    while shared.load(Ordering::Acquire) != GO {
                        spin_loop();
                    }
                    Q::send(&mut tx, n);
                }
            })
            .expect("spawn producer thread");
        Self {
            commands: Some(commands),
            state,
            thread: Some(thread),
        }
    }

    /// Hands `n` items over and returns how long the consumer took to get
    /// (and check) them all, from the moment the producer was told to go.
    fn run<T: Item, Q: Queue<T>>(&self, rx: &mut Q::Rx, n: u64) -> Duration {
        self.state.store(IDLE, Ordering::Relaxed);
        self.commands
            .as_ref()
            .expect("producer running")
            .send(n)
            .expect("producer thread alive");
        while self.state.load(Ordering::Acquire) != READY {
            spin_loop();
        }
        let start = Instant::now();
        self.state.store(GO, Ordering::Release);
        Q::recv(rx, n);
        start.elapsed()
    }
}

impl Drop for ProducerThread {
    fn drop(&mut self) {
        drop(self.commands.take());
        // After a failed check the producer may be stuck on a full queue:
        // leave it rather than hang the process joining it.
        if std::thread::panicking() {
            return;
        }
        if let Some(thread) = self.thread.take() {
            thread.join().expect("producer thread panicked");
        }
    }
}

/// Two distinct cores (consumer, producer), read once, when there are two.
fn core_pair() -> Option<(CoreId, CoreId)> {
    let cores = core_affinity::get_core_ids()?;
    match cores.as_slice() {
        [consumer, producer, ..] => Some((*consumer, *producer)),
        _ => None,
    }
}

fn handoff<T: Item, Q: Queue<T>>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    capacity: usize,
    producer_core: Option<CoreId>,
) {
    let (tx, mut rx) = Q::new(capacity);
    let producer = ProducerThread::spawn::<T, Q>(tx, producer_core);
    // Check the hand-over is right (every item, in order) before timing it;
    // the timed runs keep checking every item as they go.
    producer.run::<T, Q>(&mut rx, CHECK_ITEMS);
    let id = BenchmarkId::new(format!("{}/{}", Q::NAME, T::NAME), capacity);
    group.bench_function(id, |b| {
        b.iter_custom(|iters| producer.run::<T, Q>(&mut rx, iters))
    });
}

fn ring_handoff(c: &mut Criterion) {
    let cores = core_pair();
    let producer_core = cores.map(|(consumer, producer)| {
        core_affinity::set_for_current(consumer);
        producer
    });
    if producer_core.is_none() {
        eprintln!("ring_handoff: fewer than two cores, threads are not pinned");
    }

    let mut group = c.benchmark_group("ring_handoff");
    group.throughput(Throughput::Elements(1));
    for capacity in CAPACITIES {
        handoff::<u64, Ours>(&mut group, capacity, producer_core);
        handoff::<u64, OursBatch>(&mut group, capacity, producer_core);
        handoff::<u64, Rtrb>(&mut group, capacity, producer_core);
        handoff::<u64, Crossbeam>(&mut group, capacity, producer_core);
        handoff::<Handle, Ours>(&mut group, capacity, producer_core);
        handoff::<Handle, Rtrb>(&mut group, capacity, producer_core);
        handoff::<Handle, Crossbeam>(&mut group, capacity, producer_core);
    }
    handoff::<u64, HarnessOnly>(&mut group, 0, producer_core);
    group.finish();
}

// ---------------------------------------------------------------------------
// Single thread
// ---------------------------------------------------------------------------

/// Fills the ring to `capacity` and drains it, on one thread.
fn fill_drain<T: Item, Q: Queue<T>>(group: &mut BenchmarkGroup<'_, WallTime>, capacity: usize) {
    let (mut tx, mut rx) = Q::new(capacity);
    let n = capacity as u64;
    // `send` never spins here: the ring has room for exactly `n` items.
    Q::send(&mut tx, n);
    Q::recv(&mut rx, n);
    let id = BenchmarkId::new(format!("{}/{}", Q::NAME, T::NAME), capacity);
    group.throughput(Throughput::Elements(n));
    group.bench_function(id, |b| {
        b.iter(|| {
            Q::send(&mut tx, n);
            Q::recv(&mut rx, n);
        })
    });
}

fn ring_single_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("ring_single_thread");
    for capacity in CAPACITIES {
        fill_drain::<u64, Ours>(&mut group, capacity);
        fill_drain::<u64, OursBatch>(&mut group, capacity);
        fill_drain::<u64, Rtrb>(&mut group, capacity);
        fill_drain::<u64, Crossbeam>(&mut group, capacity);
    }
    group.finish();
}

criterion_group!(benches, ring_handoff, ring_single_thread);
criterion_main!(benches);
