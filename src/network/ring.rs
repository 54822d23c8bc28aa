//! The SPSC ring that carries buffers and events from one subpartition to
//! one input channel.
//!
//! Its capacity is the channel's credit: a full ring back-pressures the
//! writer. The design follows rtrb: head and tail live on their own cache
//! lines, and each side keeps a cached copy of the other side's index that it
//! reloads only when the ring looks full (producer) or empty (consumer), so
//! in steady state a push or pop touches no shared line but its own.

use std::fmt;
use std::mem::MaybeUninit;

use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::{Arc, CachePadded, UnsafeCell};

/// Why a push did not happen; hands the value back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushError<T> {
    /// The ring is full (no credit).
    Full(T),
    /// This half was closed.
    Closed(T),
}

impl<T> PushError<T> {
    /// The value that was not pushed.
    pub fn into_inner(self) -> T {
        match self {
            PushError::Full(value) | PushError::Closed(value) => value,
        }
    }
}

struct Shared<T> {
    /// Next slot the consumer reads. Written by the consumer only.
    head: CachePadded<AtomicUsize>,
    /// Next slot the producer writes. Written by the producer only.
    tail: CachePadded<AtomicUsize>,
    /// Halves still open; the last to close owns what is left in the ring.
    open_halves: AtomicUsize,
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
    mask: usize,
    capacity: usize,
}

/// Marks one half closed; returns what is left in the ring if it was the
/// last half, so exactly one side disposes of the remaining items.
fn close_half<T>(shared: &Arc<Shared<T>>) -> Remaining<T> {
    // AcqRel: the Release half pairs with the Acquire half of the other
    // side's decrement, so the last closer sees every slot write or read the
    // other side made before closing.
    let last = shared.open_halves.fetch_sub(1, Ordering::AcqRel) == 1;
    if !last {
        return Remaining::empty(shared);
    }
    Remaining {
        shared: Arc::clone(shared),
        head: shared.head.load(Ordering::Relaxed),
        tail: shared.tail.load(Ordering::Relaxed),
    }
}

impl<T> Shared<T> {
    /// The slot for free-running index `index`.
    #[inline]
    fn slot(&self, index: usize) -> &UnsafeCell<MaybeUninit<T>> {
        // SAFETY: `index & mask < slots.len()` since `slots.len() == mask + 1`.
        unsafe { self.slots.get_unchecked(index & self.mask) }
    }
}

/// Creates a ring holding up to `capacity` items (at least 1).
///
/// # Panics
/// If `capacity` is 0 or too large to round up to a power of two.
pub fn channel<T>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    assert!(capacity > 0, "a ring needs a capacity of at least 1");
    let slots = capacity
        .checked_next_power_of_two()
        .expect("ring capacity too large");
    let shared = Arc::new(Shared {
        head: CachePadded::new(AtomicUsize::new(0)),
        tail: CachePadded::new(AtomicUsize::new(0)),
        open_halves: AtomicUsize::new(2),
        slots: (0..slots)
            .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
            .collect(),
        mask: slots - 1,
        capacity,
    });
    (
        Producer {
            shared: shared.clone(),
            tail: 0,
            cached_head: 0,
            closed: false,
        },
        Consumer {
            shared,
            head: 0,
            cached_tail: 0,
            closed: false,
        },
    )
}

/// The writing half of a ring. `Send`, not `Clone`.
pub struct Producer<T> {
    shared: Arc<Shared<T>>,
    /// Our own tail (the shared one is a published copy).
    tail: usize,
    /// Last head seen; the ring may have more room than this says, never less.
    cached_head: usize,
    /// Whether `close` was called; a closed half touches no slot again.
    closed: bool,
}

// SAFETY: the producer only writes slots the consumer is not reading (between tail and head + capacity) and hands them over with a Release store; moving it to another thread is fine when `T` may move.
unsafe impl<T: Send> Send for Producer<T> {}

impl<T> Producer<T> {
    /// Pushes one item, or hands it back if the ring is full.
    #[inline]
    pub fn push(&mut self, value: T) -> Result<(), PushError<T>> {
        if self.free_slots_cached() == 0 && self.reload_head() == 0 {
            return Err(PushError::Full(value));
        }
        if self.closed {
            return Err(PushError::Closed(value));
        }
        self.write(value);
        self.publish();
        Ok(())
    }

    /// Pushes items from `items` while there is room, publishing them with a
    /// single store; returns how many were pushed.
    #[inline]
    pub fn push_batch(&mut self, items: &mut impl Iterator<Item = T>) -> usize {
        if self.closed {
            return 0;
        }
        let mut pushed = 0;
        // Fill what the cached head allows; when that runs out with items
        // left, look at the consumer's progress once more.
        for _ in 0..2 {
            let room = match self.free_slots_cached() {
                0 => self.reload_head(),
                room => room,
            };
            let mut written = 0;
            while written < room {
                match items.next() {
                    Some(value) => self.write(value),
                    None => break,
                }
                written += 1;
            }
            pushed += written;
            if written < room {
                break;
            }
        }
        if pushed > 0 {
            self.publish();
        }
        pushed
    }

    /// Free slots, refreshing the view of the consumer's progress.
    pub fn free_slots(&mut self) -> usize {
        self.reload_head()
    }

    /// Whether at least `n` slots are free, refreshing the view of the
    /// consumer only when the cached one says no.
    #[inline]
    pub fn has_free_slots(&mut self, n: usize) -> bool {
        self.free_slots_cached() >= n || self.reload_head() >= n
    }

    /// Whether the consumer has taken everything pushed, refreshing the
    /// view of the consumer.
    #[inline]
    pub fn is_drained(&mut self) -> bool {
        self.free_slots_cached() == self.capacity() || self.reload_head() == self.capacity()
    }

    /// Whether the ring is full, refreshing the view of the consumer.
    #[inline]
    pub fn is_full(&mut self) -> bool {
        self.free_slots_cached() == 0 && self.reload_head() == 0
    }

    /// Whether a push would succeed now, without touching the producer's
    /// state (usable from the park re-check through `&self`).
    #[inline]
    pub fn has_room(&self) -> bool {
        // Acquire: pairs with `Consumer::publish`.
        self.tail
            .wrapping_sub(self.shared.head.load(Ordering::Acquire))
            < self.shared.capacity
    }

    /// Items pushed and not yet taken (`&self`, like
    /// [`has_room`](Self::has_room)).
    #[inline]
    pub fn queued(&self) -> usize {
        // Acquire: pairs with `Consumer::publish`.
        self.tail
            .wrapping_sub(self.shared.head.load(Ordering::Acquire))
    }

    /// How many items the ring holds at most.
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// Whether the consumer half has been dropped or closed.
    pub fn is_abandoned(&self) -> bool {
        self.shared.open_halves.load(Ordering::Relaxed) < 2
    }

    /// Closes this half: nothing is pushed any more. If the consumer is
    /// already gone, the items it never read are handed back (so their memory
    /// can be recycled); otherwise the returned iterator is empty and the
    /// consumer will see them. Closing twice returns nothing the second time.
    pub fn close(&mut self) -> Remaining<T> {
        if std::mem::replace(&mut self.closed, true) {
            return Remaining::empty(&self.shared);
        }
        close_half(&self.shared)
    }

    #[inline]
    fn free_slots_cached(&self) -> usize {
        self.shared.capacity - self.tail.wrapping_sub(self.cached_head)
    }

    #[cold]
    fn reload_head(&mut self) -> usize {
        // Acquire: pairs with the Release store of `head` in
        // `Consumer::publish`; the consumer's reads of the slots it freed
        // happen before we overwrite them.
        self.cached_head = self.shared.head.load(Ordering::Acquire);
        self.free_slots_cached()
    }

    /// Writes the slot at `tail` (known to be free) without publishing it.
    #[inline]
    fn write(&mut self, value: T) {
        self.shared.slot(self.tail).with_mut(|slot| {
            // SAFETY: `tail - head < capacity`, so the consumer does not read this slot until `tail` is published past it.
            unsafe { slot.write(MaybeUninit::new(value)) }
        });
        self.tail = self.tail.wrapping_add(1);
    }

    #[inline]
    fn publish(&self) {
        // Release: pairs with the Acquire load of `tail` in
        // `Consumer::reload_tail`; the slot writes happen before the consumer
        // reads them.
        self.shared.tail.store(self.tail, Ordering::Release);
    }
}

impl<T> Drop for Producer<T> {
    fn drop(&mut self) {
        drop(self.close());
    }
}

impl<T> fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("capacity", &self.shared.capacity)
            .field("tail", &self.tail)
            .finish()
    }
}

/// The reading half of a ring. `Send`, not `Clone`.
pub struct Consumer<T> {
    shared: Arc<Shared<T>>,
    /// Our own head (the shared one is a published copy).
    head: usize,
    /// Last tail seen; the ring may hold more than this says, never less.
    cached_tail: usize,
    /// Whether `close` was called; a closed half touches no slot again.
    closed: bool,
}

// SAFETY: the consumer only reads slots the producer has published (between head and tail) and frees them with a Release store; moving it to another thread is fine when `T` may move.
unsafe impl<T: Send> Send for Consumer<T> {}

impl<T> Consumer<T> {
    /// Pops the oldest item, if any.
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        if self.head == self.cached_tail && self.reload_tail() == 0 {
            return None;
        }
        if self.closed {
            return None;
        }
        let value = self.read();
        self.publish();
        Some(value)
    }

    /// The oldest item, left in the ring: the consumer may change it in
    /// place (a reader's position in a buffer it reads in slices), and its
    /// slot stays occupied until [`pop`](Self::pop), so the item still
    /// counts against the credit and, should the consumer close meanwhile,
    /// goes back with the ring's leftovers.
    #[inline]
    pub fn peek_mut(&mut self) -> Option<&mut T> {
        if self.closed || (self.head == self.cached_tail && self.reload_tail() == 0) {
            return None;
        }
        let slot = self.shared.slot(self.head);
        // SAFETY: `head < tail` as published by the producer, so the slot holds an initialised item; the producer does not touch it until `head` is published past it, and `&mut self` makes this the only reference.
        Some(slot.with_mut(|slot| unsafe { (*slot).assume_init_mut() }))
    }

    /// The oldest item, through `&self` (the park re-check): the published
    /// tail is loaded, not cached.
    #[inline]
    pub fn peek(&self) -> Option<&T> {
        // Acquire: pairs with `Producer::publish`.
        if self.closed || self.shared.tail.load(Ordering::Acquire) == self.head {
            return None;
        }
        let slot = self.shared.slot(self.head);
        // SAFETY: as in `peek_mut`; only shared access is handed out here, and the consumer's `&mut` methods cannot run while it lives.
        Some(slot.with(|slot| unsafe { (*slot).assume_init_ref() }))
    }

    /// The `n`-th oldest item (0 is [`peek`](Self::peek)'s), left in the
    /// ring: an unaligned checkpoint reads what is queued without taking it.
    pub fn peek_at(&self, n: usize) -> Option<&T> {
        // Acquire: pairs with `Producer::publish`.
        let tail = self.shared.tail.load(Ordering::Acquire);
        if self.closed || tail.wrapping_sub(self.head) <= n {
            return None;
        }
        let slot = self.shared.slot(self.head.wrapping_add(n));
        // SAFETY: `head + n < tail` as published by the producer, so the slot holds an initialised item the producer does not touch until `head` passes it; only shared access is handed out, and the consumer's `&mut` methods cannot run while it lives.
        Some(slot.with(|slot| unsafe { (*slot).assume_init_ref() }))
    }

    /// Pops up to `max` items into `sink`, freeing their slots with a single
    /// store; returns how many were popped.
    #[inline]
    pub fn pop_batch(&mut self, max: usize, mut sink: impl FnMut(T)) -> usize {
        if self.closed {
            return 0;
        }
        let mut ready = self.cached_tail.wrapping_sub(self.head);
        if ready < max {
            ready = self.reload_tail();
        }
        let n = ready.min(max);
        for _ in 0..n {
            sink(self.read());
        }
        if n > 0 {
            self.publish();
        }
        n
    }

    /// Items ready to pop, refreshing the view of the producer.
    #[inline]
    pub fn len(&mut self) -> usize {
        self.reload_tail()
    }

    /// Whether nothing is ready, refreshing the view of the producer.
    #[inline]
    pub fn is_empty(&mut self) -> bool {
        self.head == self.cached_tail && self.reload_tail() == 0
    }

    /// Whether anything is ready, without touching the consumer's state
    /// (usable from the park re-check through `&self`).
    #[inline]
    pub fn has_items(&self) -> bool {
        // Acquire: pairs with `Producer::publish`.
        self.shared.tail.load(Ordering::Acquire) != self.head
    }

    /// The channel's credit: how many items the ring holds at most.
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// Whether the producer half has been dropped or closed.
    pub fn is_abandoned(&self) -> bool {
        self.shared.open_halves.load(Ordering::Relaxed) < 2
    }

    /// Closes this half: nothing is popped any more. If the producer is
    /// already gone, the items left in the ring are handed back; otherwise the
    /// iterator is empty and the producer gets back what it pushed when it
    /// closes. Closing twice returns nothing the second time.
    pub fn close(&mut self) -> Remaining<T> {
        if std::mem::replace(&mut self.closed, true) {
            return Remaining::empty(&self.shared);
        }
        // Publish how far we read, so the last closer starts there.
        self.publish();
        close_half(&self.shared)
    }

    #[cold]
    fn reload_tail(&mut self) -> usize {
        // Acquire: pairs with the Release store of `tail` in
        // `Producer::publish`; the producer's slot writes happen before our
        // reads.
        self.cached_tail = self.shared.tail.load(Ordering::Acquire);
        self.cached_tail.wrapping_sub(self.head)
    }

    /// Moves the item out of the slot at `head` (known to be published).
    #[inline]
    fn read(&mut self) -> T {
        let value = self.shared.slot(self.head).with(|slot| {
            // SAFETY: `head < tail` as published by the producer, so the slot holds an initialised item that no one else reads or writes.
            unsafe { slot.read().assume_init() }
        });
        self.head = self.head.wrapping_add(1);
        value
    }

    #[inline]
    fn publish(&self) {
        // Release: pairs with the Acquire load of `head` in
        // `Producer::reload_head`; our reads of the freed slots happen before
        // the producer overwrites them.
        self.shared.head.store(self.head, Ordering::Release);
    }
}

impl<T> Drop for Consumer<T> {
    fn drop(&mut self) {
        drop(self.close());
    }
}

impl<T> fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("capacity", &self.shared.capacity)
            .field("head", &self.head)
            .finish()
    }
}

/// Items left in a ring whose other half had already closed; yields them in
/// order and drops whatever is not taken.
pub struct Remaining<T> {
    shared: Arc<Shared<T>>,
    head: usize,
    tail: usize,
}

impl<T> Remaining<T> {
    fn empty(shared: &Arc<Shared<T>>) -> Self {
        Remaining {
            shared: Arc::clone(shared),
            head: 0,
            tail: 0,
        }
    }
}

impl<T> Iterator for Remaining<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        if self.head == self.tail {
            return None;
        }
        let value = self.shared.slot(self.head).with(|slot| {
            // SAFETY: both halves are closed and `head < tail`, so the slot holds an initialised item that only this iterator can reach.
            unsafe { slot.read().assume_init() }
        });
        self.head = self.head.wrapping_add(1);
        Some(value)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.tail.wrapping_sub(self.head);
        (n, Some(n))
    }
}

impl<T> Drop for Remaining<T> {
    fn drop(&mut self) {
        self.for_each(drop);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    #[test]
    fn capacity_is_the_exact_credit_not_the_slot_count() {
        for capacity in [1, 2, 3, 10, 16] {
            let (mut tx, mut rx) = channel(capacity);
            for i in 0..capacity {
                tx.push(i).unwrap();
            }
            assert_eq!(tx.push(99), Err(PushError::Full(99)));
            assert_eq!(rx.len(), capacity);
            assert_eq!(rx.pop(), Some(0));
            tx.push(100).unwrap();
            assert!(tx.is_full());
        }
    }

    #[test]
    fn batches_keep_order_and_respect_capacity() {
        let (mut tx, mut rx) = channel(5);
        let mut items = 0..8;
        assert_eq!(tx.push_batch(&mut items), 5);
        assert_eq!(items.next(), Some(5));
        let mut got = Vec::new();
        assert_eq!(rx.pop_batch(3, |v| got.push(v)), 3);
        assert_eq!(tx.push_batch(&mut (10..20)), 3);
        assert_eq!(rx.pop_batch(usize::MAX, |v| got.push(v)), 5);
        assert_eq!(got, [0, 1, 2, 3, 4, 10, 11, 12]);
        assert!(rx.is_empty());
    }

    #[test]
    fn the_last_half_to_close_gets_what_is_left() {
        let (mut tx, mut rx) = channel(4);
        tx.push(1).unwrap();
        tx.push(2).unwrap();
        tx.push(3).unwrap();
        assert_eq!(rx.pop(), Some(1));
        assert!(!tx.is_abandoned());
        assert_eq!(rx.close().count(), 0, "the producer is still open");
        assert_eq!(rx.pop(), None, "a closed consumer pops nothing");
        assert!(tx.is_abandoned());
        assert_eq!(tx.close().collect::<Vec<_>>(), [2, 3]);
        assert_eq!(tx.close().count(), 0, "closing twice hands back nothing");
        assert_eq!(tx.push(9), Err(PushError::Closed(9)));

        let (mut tx, mut rx) = channel(4);
        tx.push(7).unwrap();
        assert_eq!(tx.close().count(), 0);
        assert_eq!(rx.close().collect::<Vec<_>>(), [7]);
    }

    #[test]
    fn leftover_items_are_dropped_once() {
        let marker = std::sync::Arc::new(());
        let (mut tx, rx) = channel(4);
        for _ in 0..3 {
            tx.push(marker.clone()).unwrap();
        }
        drop(rx);
        assert_eq!(std::sync::Arc::strong_count(&marker), 4);
        drop(tx);
        assert_eq!(std::sync::Arc::strong_count(&marker), 1);
    }

    #[test]
    fn two_threads_hand_over_every_item_in_order() {
        const N: u64 = if cfg!(miri) { 1_000 } else { 1_000_000 };
        let (mut tx, mut rx) = channel(64);
        let producer = std::thread::spawn(move || {
            for i in 0..N {
                let mut value = i;
                while let Err(PushError::Full(v)) = tx.push(value) {
                    value = v;
                    std::hint::spin_loop();
                }
            }
        });
        let mut expected = 0;
        while expected < N {
            rx.pop_batch(16, |v| {
                assert_eq!(v, expected);
                expected += 1;
            });
        }
        producer.join().unwrap();
        assert!(rx.is_empty());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Push(u32),
        Pop,
        PushBatch(u8),
        PopBatch(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            any::<u32>().prop_map(Op::Push),
            Just(Op::Pop),
            any::<u8>().prop_map(|n| Op::PushBatch(n % 12)),
            any::<u8>().prop_map(|n| Op::PopBatch(n % 12)),
        ]
    }

    proptest! {
        /// The ring behaves like a `VecDeque` bounded at its capacity.
        #[test]
        fn ring_matches_a_bounded_vecdeque(capacity in 1usize..20, ops in proptest::collection::vec(op(), 0..200)) {
            let (mut tx, mut rx) = channel(capacity);
            let mut model = VecDeque::new();
            let mut next = 0u32;
            for op in ops {
                match op {
                    Op::Push(v) => {
                        let result = tx.push(v);
                        if model.len() < capacity {
                            prop_assert!(result.is_ok());
                            model.push_back(v);
                        } else {
                            prop_assert_eq!(result, Err(PushError::Full(v)));
                        }
                    }
                    Op::Pop => prop_assert_eq!(rx.pop(), model.pop_front()),
                    Op::PushBatch(n) => {
                        let items: Vec<u32> = (0..n as u32).map(|i| next + i).collect();
                        next += n as u32;
                        let pushed = tx.push_batch(&mut items.iter().copied());
                        let expected = (capacity - model.len()).min(n as usize);
                        prop_assert_eq!(pushed, expected);
                        model.extend(&items[..pushed]);
                    }
                    Op::PopBatch(n) => {
                        let mut got = Vec::new();
                        let popped = rx.pop_batch(n as usize, |v| got.push(v));
                        let expected: Vec<u32> = (0..popped).filter_map(|_| model.pop_front()).collect();
                        prop_assert_eq!(popped, got.len());
                        prop_assert_eq!(got, expected);
                        prop_assert!(popped == (n as usize).min(popped + model.len()));
                    }
                }
                prop_assert_eq!(rx.len(), model.len());
                prop_assert_eq!(tx.free_slots(), capacity - model.len());
            }
        }
    }
}
