//! loom models of the lock-free protocols: the SPSC ring (hand-off and
//! close), the parker (no lost wake-up), the segment pool's wait for
//! segments given back, pool recycling with shared
//! (broadcast) segments, the gate's availability queue end to end, and the
//! BufferBuilder/BufferConsumer protocol: the reader slicing while the
//! writer appends and flushes, finish and recycle (to a writer waiting for
//! that very segment), end of partition after a partial slice, a broadcast
//! segment read by two channels, channels wired before their producer
//! binds its pool (the late-bound recycler jobs use), and an overdraft
//! repaid while a reader recycles.
//!
//! Run: `scripts/loom.sh` (or
//! `cargo test --features loom --test loom`).
#![cfg(loom)]

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use loom::thread;

use taskbench::memory::{BufferPool, MemoryConfig, SegmentPool, SegmentWait};
use taskbench::network::ring::{self, PushError};
use taskbench::network::{
    local_channel, ChannelAvailability, GateKey, InputGate, NetworkConfig, PartitionKey,
    Partitioner, Poll, RecordWriter, ResultPartition, ShuffleEnvironment,
};
use taskbench::sync::{Parker, WaitStrategy};

/// Runs a model with a preemption bound of 3, or `LOOM_MAX_PREEMPTIONS`.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder.check(f);
}

/// A setup waiting for segments and a pool giving its segments back: no
/// lost wake-up (a lost one leaves the waiter parked for good, which loom
/// reports as a deadlock).
#[test]
fn a_pool_given_back_wakes_a_waiting_setup() {
    model(|| {
        let config = MemoryConfig {
            segment_size: 4096,
            total_segments: 2,
            huge_pages: false,
        };
        let global = Arc::new(SegmentPool::new(&config).unwrap());
        let held = BufferPool::new(global.clone(), 2, 2, Arc::new(Parker::new())).unwrap();
        let releaser = thread::spawn(move || drop(held));
        let parker = Arc::new(Parker::new());
        while global.wait_for_segments(2, &parker, None) != SegmentWait::Available {}
        releaser.join().unwrap();
        assert!(global.is_full());
    });
}

#[test]
fn ring_hands_over_every_item_in_order() {
    model(|| {
        let (mut tx, mut rx) = ring::channel::<u32>(2);
        let producer = thread::spawn(move || {
            for i in 0..3 {
                let mut item = i;
                while let Err(PushError::Full(back)) = tx.push(item) {
                    item = back;
                    thread::yield_now();
                }
            }
        });
        let mut expected = 0;
        while expected < 3 {
            match rx.pop() {
                Some(v) => {
                    assert_eq!(v, expected);
                    expected += 1;
                }
                None => thread::yield_now(),
            }
        }
        producer.join().unwrap();
        assert_eq!(rx.pop(), None);
    });
}

#[test]
fn ring_leftovers_go_to_exactly_one_closer() {
    model(|| {
        let (mut tx, mut rx) = ring::channel::<u32>(2);
        let producer = thread::spawn(move || {
            tx.push(1).unwrap();
            tx.push(2).unwrap();
            tx.close().count()
        });
        let popped = rx.pop().map_or(0, |_| 1);
        let mine = rx.close().count();
        let theirs = producer.join().unwrap();
        assert_eq!(popped + mine + theirs, 2, "every item is seen exactly once");
    });
}

#[test]
fn parker_never_loses_a_wake_up() {
    model(|| {
        let parker = Arc::new(Parker::new());
        let ready = Arc::new(AtomicBool::new(false));
        let producer = {
            let (parker, ready) = (parker.clone(), ready.clone());
            thread::spawn(move || {
                ready.store(true, Ordering::Release);
                parker.unpark();
            })
        };
        while !ready.load(Ordering::Acquire) {
            parker.park_unless(|| ready.load(Ordering::Acquire), None);
        }
        producer.join().unwrap();
    });
}

#[test]
fn interrupt_wakes_a_parked_thread() {
    model(|| {
        let parker = Arc::new(Parker::new());
        let canceller = {
            let parker = parker.clone();
            thread::spawn(move || parker.interrupt())
        };
        while !parker.is_interrupted() {
            parker.park_unless(|| false, None);
        }
        canceller.join().unwrap();
    });
}

fn segments(total: u32) -> Arc<SegmentPool> {
    let config = MemoryConfig {
        segment_size: 4096,
        total_segments: total,
        huge_pages: false,
    };
    Arc::new(SegmentPool::new(&config).unwrap())
}

#[test]
fn shared_buffer_comes_back_once_and_wakes_the_writer() {
    model(|| {
        let parker = Arc::new(Parker::new());
        let pool = Arc::new(BufferPool::new(segments(1), 1, 1, parker.clone()).unwrap());
        let mut builder = pool.request().unwrap();
        builder.append(&[42]);
        let mut first = pool.finish(builder);
        let second = pool.share(&mut first);
        let readers: Vec<_> = [first, second]
            .into_iter()
            .map(|mut consumer| {
                let pool = pool.clone();
                thread::spawn(move || {
                    let (buffer, finished) = consumer.build();
                    assert_eq!((buffer.unwrap().as_slice(), finished), (&[42][..], true));
                    pool.recycle(consumer);
                })
            })
            .collect();
        // The writer waits for its only segment as a back-pressured task does.
        let builder = loop {
            if let Some(builder) = pool.request() {
                break builder;
            }
            parker.park_unless(|| pool.is_available(), None);
        };
        assert!(
            pool.request().is_none(),
            "the segment came back exactly once"
        );
        pool.discard(builder);
        readers.into_iter().for_each(|r| r.join().unwrap());
        assert!(pool.is_full());
    });
}

/// Overdraft (Flink's overdraft buffers): the owner overdraws while a
/// reader recycles the pool's own segment. Whichever way they interleave,
/// the overdraft is repaid exactly once, no segment is lost or doubled, and
/// the pool ends available and full.
#[test]
fn an_overdraft_is_repaid_once_while_a_reader_recycles() {
    model(|| {
        let global = segments(2);
        let parker = Arc::new(Parker::new());
        let pool =
            Arc::new(BufferPool::with_overdraft(global.clone(), 1, 1, 1, parker.clone()).unwrap());
        let mut own = pool.request().unwrap();
        own.append(&[1]);
        let mut consumer = pool.finish(own);
        let reader = thread::spawn({
            let pool = pool.clone();
            move || {
                let (buffer, finished) = consumer.build();
                assert_eq!((buffer.unwrap().as_slice(), finished), (&[1][..], true));
                pool.recycle(consumer);
            }
        });
        // The own segment (if back already) or the overdraft one.
        let next = pool.request().expect("own or overdraft");
        let another = pool.request();
        pool.discard(next);
        if let Some(b) = another {
            pool.discard(b);
        }
        reader.join().unwrap();
        assert!(pool.is_available(), "nothing out: available again");
        assert_eq!(pool.overdraft_segments(), 0, "repaid");
        assert!(pool.is_full());
        assert_eq!(global.available_segments(), 1, "the pool keeps its one");
    });
}

/// The largest record the gate models' channels carry.
const RECORD_MAX: usize = 4096;

/// How the gate models' consumer waits: straight to the parker.
const PARK: WaitStrategy = WaitStrategy::SpinPark {
    spins: 0,
    yields: 0,
};

/// A writer over `channels` channels of ring capacity `credit`, their gate,
/// and the pool (`min`..`max` segments of a 2-segment region).
fn writer_and_gate(
    channels: u32,
    credit: usize,
    (min, max): (u32, u32),
    partitioner: Partitioner,
) -> (RecordWriter, InputGate, Arc<BufferPool>) {
    let producer_parker = Arc::new(Parker::new());
    let pool = Arc::new(BufferPool::new(segments(2), min, max, producer_parker.clone()).unwrap());
    let availability = Arc::new(ChannelAvailability::new(
        channels as usize,
        Arc::new(Parker::new()),
    ));
    let (outputs, inputs): (Vec<_>, Vec<_>) = (0..channels)
        .map(|c| local_channel(credit, pool.clone(), &availability, c, RECORD_MAX))
        .unzip();
    let partition = ResultPartition::new(pool.clone(), outputs, RECORD_MAX, producer_parker, PARK);
    let writer = RecordWriter::new(partition, partitioner, 0);
    (writer, InputGate::new(availability, inputs), pool)
}

/// Runs `produce` on a thread of its own; returns its handle and the flag it
/// sets (Release) once `produce` returned.
fn spawn_producer(
    mut writer: RecordWriter,
    produce: impl FnOnce(&mut RecordWriter) + Send + 'static,
) -> (thread::JoinHandle<RecordWriter>, Arc<AtomicBool>) {
    let done = Arc::new(AtomicBool::new(false));
    let handle = thread::spawn({
        let done = done.clone();
        move || {
            produce(&mut writer);
            // Release: pairs with the Acquire load in `join_producer`.
            done.store(true, Ordering::Release);
            writer
        }
    });
    (handle, done)
}

/// Joins a producer that may unpark the calling thread. Its last unpark may
/// still be on its way; loom would let it wake this thread inside `join`
/// (see `mailbox::join_producers`), so first yield until it is done.
fn join_producer(handle: thread::JoinHandle<RecordWriter>, done: &AtomicBool) {
    // Acquire: pairs with the Release store in `spawn_producer`.
    while !done.load(Ordering::Acquire) {
        thread::yield_now();
    }
    drop(handle.join().unwrap());
}

/// Reads the gate until every channel ended, parking when it is empty;
/// returns each channel's records (their first bytes), in arrival order.
fn read_to_end(gate: &mut InputGate) -> Vec<Vec<u8>> {
    let mut seen = vec![Vec::new(); gate.num_channels()];
    let mut batch = Vec::new();
    let mut waiter = PARK.waiter();
    loop {
        batch.clear();
        match gate.poll(|r| batch.push(r[0])) {
            Ok(Poll::Finished) => return seen,
            Ok(Poll::Records { channel, .. }) => seen[channel].extend_from_slice(&batch),
            Ok(Poll::Empty) => {
                let parker = gate.parker().clone();
                waiter.wait(&parker, || gate.has_input(), None);
            }
            Ok(Poll::Event { .. } | Poll::Priority) => {}
            Err(e) => panic!("{e}"),
        }
    }
}

/// An unaligned barrier overtakes what is queued while the reader reads:
/// the writer publishes record 1, announces checkpoint 1 at the position
/// after it, then writes record 2. Whenever the reader takes the
/// announcement, record 2 has not been processed, and what the reader
/// processed plus what it copies from the queue up to the barrier is
/// exactly record 1: the snapshot's cut is the barrier's.
#[test]
fn an_unaligned_barrier_overtakes_queued_buffers_while_the_reader_reads() {
    model(|| {
        let (writer, mut gate, pool) = writer_and_gate(1, 4, (2, 2), Partitioner::Forward);
        let (producer, done) = spawn_producer(writer, |writer| {
            writer.emit(0, &[1]).unwrap();
            writer.partition_mut().announce_barrier(1, 0);
            writer.emit(0, &[2]).unwrap();
            writer.finish().unwrap();
        });
        let mut processed = Vec::new();
        let mut cut = None;
        let mut batch = Vec::new();
        let mut waiter = PARK.waiter();
        // As the task's input processor: announcements are taken before each
        // read, and whenever a read holds a slice back for one.
        let take = |gate: &InputGate, processed: &Vec<u8>, cut: &mut Option<(Vec<u8>, Vec<u8>)>| {
            let mut announced = None;
            gate.announcements(|c, a| announced = Some((c, a)));
            if let Some((channel, (id, _, position))) = announced {
                assert_eq!((channel, id, position), (0, 1, 5), "after [len][1]");
                *cut = Some((processed.clone(), gate.in_flight(0, position)));
            }
        };
        loop {
            if gate.has_priority() {
                take(&gate, &processed, &mut cut);
            }
            batch.clear();
            match gate.poll(|r| batch.push(r[0])) {
                Ok(Poll::Finished) => break,
                Ok(Poll::Records { .. }) => processed.extend_from_slice(&batch),
                Ok(Poll::Priority) => take(&gate, &processed, &mut cut),
                Ok(Poll::Empty) => {
                    let parker = gate.parker().clone();
                    waiter.wait(&parker, || gate.has_input(), None);
                }
                Ok(Poll::Event { .. }) => {}
                Err(e) => panic!("{e}"),
            }
        }
        join_producer(producer, &done);
        assert_eq!(processed, [1, 2]);
        let (before, queued) = cut.expect("the announcement was seen");
        // Processed before the cut, or persisted as in-flight: record 1
        // exactly once, record 2 never.
        let mut at_cut = before;
        if !queued.is_empty() {
            assert_eq!(queued.len(), 5);
            at_cut.push(queued[4]);
        }
        assert_eq!(at_cut, [1]);
        drop(gate);
        assert!(pool.is_full());
    });
}

#[test]
fn gate_sees_every_buffer_and_event_without_lost_wake_ups() {
    model(|| {
        let (writer, mut gate, pool) = writer_and_gate(1, 1, (1, 1), Partitioner::Forward);
        let (producer, done) = spawn_producer(writer, |writer| {
            writer.emit(0, &[7]).unwrap();
            writer.finish().unwrap();
        });
        let seen = read_to_end(&mut gate);
        join_producer(producer, &done);
        assert_eq!(seen, [vec![7]]);
        drop(gate);
        assert!(pool.is_full());
    });
}

/// The reader slices the head segment while the writer appends and
/// publishes into it, and the end of the partition follows a partial
/// slice: every record arrives once, in order, and the segment comes back
/// once, after the writer finished it and the reader read it to the end.
#[test]
fn reader_slices_while_the_writer_appends_and_flushes() {
    model(|| {
        let (writer, mut gate, pool) = writer_and_gate(1, 4, (2, 2), Partitioner::Forward);
        let (producer, done) = spawn_producer(writer, |writer| {
            writer.emit(0, &[1]).unwrap();
            writer.flush_all();
            writer.emit(0, &[2]).unwrap();
            writer.flush_all();
            writer.emit(0, &[3]).unwrap();
            writer.finish().unwrap();
        });
        let seen = read_to_end(&mut gate);
        join_producer(producer, &done);
        assert_eq!(seen, [vec![1, 2, 3]]);
        assert!(pool.is_full(), "the reader recycled the finished segment");
        drop(gate);
        assert!(pool.is_full());
    });
}

/// A pool of one segment: the writer fills it, finishes it and waits for
/// it to come back before it can write the rest of a spanning record. The
/// reader must be told of the finish (even with no new bytes), read the
/// segment to its end, recycle it and wake the writer: a lost step leaves
/// one side parked for good, which loom reports as a deadlock.
#[test]
fn a_finished_segment_comes_back_to_the_writer_waiting_for_it() {
    model(|| {
        let (writer, mut gate, pool) = writer_and_gate(1, 2, (1, 1), Partitioner::Forward);
        let (producer, done) = spawn_producer(writer, |writer| {
            writer.emit(0, &[1; 3000]).unwrap();
            // Spans into the next segment: the first must come back first.
            writer.emit(0, &[2; 3000]).unwrap();
            writer.finish().unwrap();
        });
        let seen = read_to_end(&mut gate);
        join_producer(producer, &done);
        assert_eq!(seen, [vec![1, 2]]);
        drop(gate);
        assert!(pool.is_full());
    });
}

/// `flush_all` over two channels (one fence for both), then the end: every
/// record arrives once, on its channel, and both segments come back.
#[test]
fn flush_all_over_two_channels_with_one_fence() {
    model(|| {
        let (writer, mut gate, pool) = writer_and_gate(2, 4, (2, 2), Partitioner::Rebalance);
        let (producer, done) = spawn_producer(writer, |writer| {
            writer.emit(0, &[1]).unwrap();
            writer.emit(0, &[2]).unwrap();
            writer.flush_all();
            writer.emit(0, &[3]).unwrap();
            writer.finish().unwrap();
        });
        let seen = read_to_end(&mut gate);
        join_producer(producer, &done);
        assert_eq!(seen, [vec![1, 3], vec![2]]);
        assert!(pool.is_full(), "both segments came back");
        drop(gate);
        assert!(pool.is_full());
    });
}

/// One broadcast segment, a consumer of it in each of two channels: both
/// read the record, and the segment comes back once, after the second.
#[test]
fn a_broadcast_segment_is_read_by_both_channels_and_freed_once() {
    model(|| {
        let (writer, mut gate, pool) = writer_and_gate(2, 2, (1, 1), Partitioner::Broadcast);
        let (producer, done) = spawn_producer(writer, |writer| {
            writer.emit(0, &[5]).unwrap();
            writer.flush_all();
            writer.finish().unwrap();
        });
        let seen = read_to_end(&mut gate);
        join_producer(producer, &done);
        assert_eq!(seen, [vec![5], vec![5]]);
        drop(gate);
        assert!(pool.is_full());
    });
}

/// Channels wired through the shuffle environment before either side sets
/// up, as a job deploys them: the consumer builds its gate and reads while
/// the producer claims its pool and binds it to the channel's recycler. The
/// reader recycles into the pool the producer bound.
#[test]
fn the_late_bound_recycler_sees_the_pool_its_producer_bound() {
    model(|| {
        let env = Arc::new(
            ShuffleEnvironment::new(NetworkConfig {
                memory: MemoryConfig {
                    segment_size: 4096,
                    total_segments: 2,
                    huge_pages: false,
                },
                buffers_per_channel: 1,
                floating_buffers: 1,
                max_record_size: 64,
                ..NetworkConfig::default()
            })
            .unwrap(),
        );
        let consumer = Arc::new(Parker::new());
        env.register_partition(PartitionKey(1), 1).unwrap();
        env.register_gate(GateKey(1), 1, consumer).unwrap();
        env.connect(PartitionKey(1), 0, GateKey(1), 0).unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let producer = {
            let (env, done) = (env.clone(), done.clone());
            thread::spawn(move || {
                let partition = env
                    .create_partition(PartitionKey(1), Arc::new(Parker::new()), PARK)
                    .unwrap();
                let mut writer = RecordWriter::new(partition, Partitioner::Forward, 0);
                writer.emit(0, &[9]).unwrap();
                writer.finish().unwrap();
                drop(writer);
                // Release: pairs with the Acquire load below.
                done.store(true, Ordering::Release);
            })
        };
        let mut gate = env.create_gate(GateKey(1)).unwrap();
        let seen = read_to_end(&mut gate);
        // Acquire: pairs with the producer's Release store.
        while !done.load(Ordering::Acquire) {
            thread::yield_now();
        }
        producer.join().unwrap();
        assert_eq!(seen, [vec![9]]);
        drop(gate);
        assert!(env.segments().is_full());
    });
}

/// The task mailbox and its loop: no lost wake-up, `has_mail` keeps its
/// promise, and close never strands a mail.
mod mailbox {
    use std::convert::Infallible;

    use loom::sync::atomic::{AtomicUsize, Ordering};
    use loom::thread::JoinHandle;

    use super::{model, thread, Arc, Parker, WaitStrategy};
    use taskbench::mailbox::{
        ActionStatus, LoopExit, Mail, MailboxDefaultAction, MailboxError, MailboxProcessor,
        MailboxState, TaskMailbox,
    };

    /// Joins producers that may unpark the calling thread. A parker's
    /// `unpark` can come after the woken thread has moved on (a stray token
    /// std ignores); loom, unlike std, lets it wake a thread blocked in
    /// `join` and then fails its own assertion. So first yield until every
    /// producer has counted itself `done` after its last put.
    fn join_producers<T>(producers: Vec<JoinHandle<T>>, done: &AtomicUsize) -> Vec<T> {
        // Acquire: pairs with the producers' Release increment.
        while done.load(Ordering::Acquire) < producers.len() {
            thread::yield_now();
        }
        producers.into_iter().map(|p| p.join().unwrap()).collect()
    }

    /// Idles (and parks) until one mail arrived, then finishes.
    struct UntilMail {
        mails: usize,
    }

    impl MailboxDefaultAction for UntilMail {
        type Error = Infallible;

        fn run_default_action(&mut self) -> Result<ActionStatus, Infallible> {
            Ok(if self.mails > 0 {
                ActionStatus::Finished
            } else {
                ActionStatus::NothingAvailable
            })
        }

        fn handle_mail(&mut self, mail: Mail) -> Result<(), Infallible> {
            assert_eq!(mail, Mail::Action { id: 7 });
            self.mails += 1;
            Ok(())
        }

        fn is_input_available(&self) -> bool {
            false
        }

        fn is_output_available(&self) -> bool {
            true
        }
    }

    #[test]
    fn put_wakes_a_task_waiting_in_its_loop() {
        model(|| {
            let mailbox = Arc::new(TaskMailbox::new(1, Arc::new(Parker::new())));
            let done = Arc::new(AtomicUsize::new(0));
            let producer = {
                let (mailbox, done) = (mailbox.clone(), done.clone());
                thread::spawn(move || {
                    mailbox.put(Mail::Action { id: 7 }).unwrap();
                    // Release: pairs with the Acquire load in `join_producers`.
                    done.fetch_add(1, Ordering::Release);
                })
            };
            // Parks at once, so every interleaving of put and park is explored.
            let wait = WaitStrategy::SpinPark {
                spins: 0,
                yields: 0,
            };
            let mut processor = MailboxProcessor::new(mailbox, wait);
            let mut action = UntilMail { mails: 0 };
            let exit = processor.run_mailbox_loop(&mut action);
            assert_eq!(
                exit.unwrap_or_else(|never| match never {}),
                LoopExit::Finished
            );
            assert_eq!(action.mails, 1);
            join_producers(vec![producer], &done);
        });
    }

    #[test]
    fn has_mail_means_try_take_succeeds_with_two_producers() {
        model(|| {
            let parker = Arc::new(Parker::new());
            let mailbox = Arc::new(TaskMailbox::new(1, parker.clone()));
            let done = Arc::new(AtomicUsize::new(0));
            let producers: Vec<_> = [true, false]
                .into_iter()
                .map(|first| {
                    let (mailbox, done) = (mailbox.clone(), done.clone());
                    thread::spawn(move || {
                        if first {
                            mailbox.put_first(Mail::Cancel).unwrap();
                        } else {
                            mailbox.put(Mail::Timer { id: 1 }).unwrap();
                        }
                        // Release: pairs with the Acquire load in `join_producers`.
                        done.fetch_add(1, Ordering::Release);
                    })
                })
                .collect();
            let mut taken = Vec::new();
            while taken.len() < 2 {
                if mailbox.has_mail() {
                    let mail = mailbox.try_take();
                    assert!(mail.is_some(), "has_mail promised a mail");
                    taken.extend(mail);
                } else {
                    parker.park_unless(|| mailbox.has_mail(), None);
                }
            }
            join_producers(producers, &done);
            assert!(taken.contains(&Mail::Cancel));
            assert!(taken.contains(&Mail::Timer { id: 1 }));
            assert!(!mailbox.has_mail());
            assert_eq!(mailbox.try_take(), None);
        });
    }

    #[test]
    fn close_racing_a_put_neither_loses_nor_strands_the_mail() {
        model(|| {
            let mailbox = Arc::new(TaskMailbox::new(1, Arc::new(Parker::new())));
            let producer = {
                let mailbox = mailbox.clone();
                thread::spawn(move || mailbox.put(Mail::Timer { id: 1 }))
            };
            let dropped: Vec<_> = mailbox.close().collect();
            match producer.join().unwrap() {
                Ok(()) => assert_eq!(dropped, [Mail::Timer { id: 1 }]),
                Err(err) => {
                    assert_eq!(
                        err,
                        MailboxError::Closed {
                            mail: Mail::Timer { id: 1 },
                            state: MailboxState::Closed
                        }
                    );
                    assert!(dropped.is_empty());
                }
            }
            assert!(!mailbox.has_mail());
        });
    }
}
