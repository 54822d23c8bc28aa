//! Tests of the input processor: idle and busy inputs, barrier alignment,
//! unaligned barriers overtaking queued data, aborted alignments.

use super::*;
use crate::checkpoint::{Alignment, CheckpointOptions};
use crate::memory::MemoryConfig;
use crate::network::{
    GateKey, NetworkConfig, PartitionKey, Partitioner, RecordWriter, ShuffleEnvironment,
};
use crate::streaming::{ChainEnd, SinkKind};
use crate::sync::{Arc, Parker, WaitStrategy};

/// Two producers, each wired to its own single-channel gate.
fn two_inputs() -> (
    RecordWriter,
    RecordWriter,
    InputProcessor,
    Arc<ShuffleEnvironment>,
) {
    two_inputs_since(Instant::now())
}

/// [`two_inputs`] whose job clock starts at `epoch`.
fn two_inputs_since(
    epoch: Instant,
) -> (
    RecordWriter,
    RecordWriter,
    InputProcessor,
    Arc<ShuffleEnvironment>,
) {
    let env = Arc::new(
        ShuffleEnvironment::new(NetworkConfig {
            memory: MemoryConfig {
                segment_size: 4096,
                total_segments: 32,
                huge_pages: false,
            },
            ..NetworkConfig::default()
        })
        .unwrap(),
    );
    let consumer = Arc::new(Parker::new());
    let mut writers = Vec::new();
    let mut gates = Vec::new();
    for i in 0..2 {
        env.register_partition(PartitionKey(i), 1).unwrap();
        env.register_gate(GateKey(i), 1, consumer.clone()).unwrap();
        env.connect(PartitionKey(i), 0, GateKey(i), 0).unwrap();
        gates.push(env.create_gate(GateKey(i)).unwrap());
        let partition = env
            .create_partition(
                PartitionKey(i),
                Arc::new(Parker::new()),
                WaitStrategy::default(),
            )
            .unwrap();
        writers.push(RecordWriter::new(partition, Partitioner::Forward, 0));
    }
    let b = writers.pop().unwrap();
    let a = writers.pop().unwrap();
    (a, b, InputProcessor::new(gates, epoch), env)
}

#[test]
fn an_idle_input_never_stalls_the_other() {
    let (mut busy, mut idle, mut input, env) = two_inputs();
    let mut chain = OperatorChain::new(&[], ChainEnd::Sink(SinkKind::Checksum), Vec::new(), 64);
    for v in 0..1000u64 {
        busy.emit(v, &v.to_le_bytes()).unwrap();
    }
    busy.finish().unwrap();
    let mut turns = 0;
    while chain.sink_result().unwrap().records < 1000 {
        let status = input.process(&mut chain).unwrap();
        assert_ne!(
            status,
            InputStatus::EndOfInput,
            "the idle input is not finished"
        );
        turns += 1;
        assert!(turns < 10_000, "the busy input was stalled");
    }
    assert_eq!(
        chain.sink_result().unwrap().checksum,
        (0..1000u64).sum::<u64>()
    );
    // Drain the busy gate's end, then the idle input is all that is left.
    while input.process(&mut chain).unwrap() == InputStatus::MoreAvailable {}
    assert!(!input.is_input_available());
    idle.emit(7, &7u64.to_le_bytes()).unwrap();
    idle.finish().unwrap();
    assert!(input.is_input_available());
    let mut status = InputStatus::MoreAvailable;
    while status != InputStatus::EndOfInput {
        status = input.process(&mut chain).unwrap();
    }
    assert_eq!(chain.sink_result().unwrap().records, 1001);
    drop((busy, idle, input));
    assert!(env.segments().is_full());
}

fn barrier(id: u64, alignment: Alignment) -> Event {
    Event::CheckpointBarrier(CheckpointBarrier {
        id,
        timestamp: 0,
        options: CheckpointOptions {
            alignment,
            ..CheckpointOptions::default()
        },
    })
}

/// Runs the processor until it reports a checkpoint; the sink's
/// checksum then.
fn until_checkpoint(input: &mut InputProcessor, chain: &mut OperatorChain) -> (u64, u64) {
    for _ in 0..1000 {
        if let InputStatus::Checkpoint(b, _) = input.process(chain).unwrap() {
            return (b.id, chain.sink_result().unwrap().checksum);
        }
    }
    panic!("no checkpoint");
}

#[test]
fn aligned_barriers_hold_back_what_follows_them_until_all_arrived() {
    let (mut a, mut b, mut input, env) = two_inputs();
    input.enable_checkpoints(Alignment::Aligned);
    let mut chain = OperatorChain::new(&[], ChainEnd::Sink(SinkKind::Checksum), Vec::new(), 64);
    for v in [1u64, 2] {
        a.emit(v, &v.to_le_bytes()).unwrap();
    }
    a.broadcast_event(barrier(1, Alignment::Aligned)).unwrap();
    a.emit(100, &100u64.to_le_bytes()).unwrap();
    a.flush_all();
    // Input b is behind: 100 must wait until b's barrier came.
    for _ in 0..20 {
        assert!(!matches!(
            input.process(&mut chain).unwrap(),
            InputStatus::Checkpoint(..)
        ));
    }
    assert_eq!(
        chain.sink_result().unwrap().checksum,
        3,
        "100 was held back"
    );
    b.emit(10, &10u64.to_le_bytes()).unwrap();
    b.broadcast_event(barrier(1, Alignment::Aligned)).unwrap();
    assert_eq!(until_checkpoint(&mut input, &mut chain), (1, 13));
    input.resume();
    a.finish().unwrap();
    b.finish().unwrap();
    while input.process(&mut chain).unwrap() != InputStatus::EndOfInput {}
    assert_eq!(chain.sink_result().unwrap().checksum, 113);
    drop((a, b, input));
    assert!(env.segments().is_full());
}

#[test]
fn at_least_once_barriers_hold_nothing_back() {
    let (mut a, mut b, mut input, _env) = two_inputs();
    input.enable_checkpoints(Alignment::Aligned);
    let mut chain = OperatorChain::new(&[], ChainEnd::Sink(SinkKind::Checksum), Vec::new(), 64);
    a.broadcast_event(barrier(1, Alignment::AtLeastOnce))
        .unwrap();
    a.emit(100, &100u64.to_le_bytes()).unwrap();
    a.flush_all();
    // The record after a's barrier is read before b's barrier came.
    for _ in 0..10 {
        assert!(!matches!(
            input.process(&mut chain).unwrap(),
            InputStatus::Checkpoint(..)
        ));
    }
    assert_eq!(chain.sink_result().unwrap().checksum, 100);
    b.broadcast_event(barrier(1, Alignment::AtLeastOnce))
        .unwrap();
    assert_eq!(until_checkpoint(&mut input, &mut chain), (1, 100));
}

#[test]
fn an_unaligned_barrier_overtakes_what_is_queued() {
    let (mut a, mut b, mut input, env) = two_inputs();
    input.enable_checkpoints(Alignment::Unaligned);
    let mut chain = OperatorChain::new(&[], ChainEnd::Sink(SinkKind::Checksum), Vec::new(), 64);
    // a: 1 read before the barrier, 2 and 3 queued before it, 4 after.
    a.emit(1, &1u64.to_le_bytes()).unwrap();
    a.flush_all();
    while chain.sink_result().unwrap().records < 1 {
        input.process(&mut chain).unwrap();
    }
    for v in [2u64, 3] {
        a.emit(v, &v.to_le_bytes()).unwrap();
    }
    a.partition_mut().announce_barrier(1, 0);
    a.emit(4, &4u64.to_le_bytes()).unwrap();
    a.flush_all();
    // The announcement is seen before anything queued is processed.
    let status = input.process(&mut chain).unwrap();
    let InputStatus::Checkpoint(barrier, metrics) = status else {
        panic!("{status:?}");
    };
    assert_eq!((barrier.id, chain.sink_result().unwrap().checksum), (1, 1));
    assert!(metrics.unaligned);
    // b has not announced: what it delivers until it does is captured.
    assert!(input.take_channel_state(1).is_none());
    b.emit(10, &10u64.to_le_bytes()).unwrap();
    b.flush_all();
    let mut complete = false;
    for _ in 0..20 {
        if let InputStatus::ChannelStateComplete(1) = input.process(&mut chain).unwrap() {
            complete = true;
        }
        if chain.sink_result().unwrap().checksum == 20 && !complete {
            b.partition_mut().announce_barrier(1, 0);
        }
    }
    assert!(complete);
    assert_eq!(chain.sink_result().unwrap().checksum, 1 + 2 + 3 + 4 + 10);
    let (state, _) = input.take_channel_state(1).unwrap();
    // Channel state: a's 2 and 3 (queued before its barrier), b's 10.
    let mut replayed = OperatorChain::new(&[], ChainEnd::Sink(SinkKind::Checksum), Vec::new(), 64);
    for s in &state {
        InputProcessor::replay(&mut replayed, &s.bytes).unwrap();
    }
    assert_eq!(replayed.sink_result().unwrap().checksum, 2 + 3 + 10);
    drop((a, b, input));
    assert!(env.segments().is_full());
}

#[test]
fn an_aborted_alignment_unblocks() {
    let (mut a, _b, mut input, _env) = two_inputs();
    input.enable_checkpoints(Alignment::Aligned);
    let mut chain = OperatorChain::new(&[], ChainEnd::Sink(SinkKind::Checksum), Vec::new(), 64);
    a.broadcast_event(barrier(1, Alignment::Aligned)).unwrap();
    a.emit(5, &5u64.to_le_bytes()).unwrap();
    a.flush_all();
    for _ in 0..10 {
        input.process(&mut chain).unwrap();
    }
    assert_eq!(chain.sink_result().unwrap().checksum, 0);
    input.abort_checkpoint(1);
    for _ in 0..10 {
        input.process(&mut chain).unwrap();
    }
    assert_eq!(chain.sink_result().unwrap().checksum, 5);
}

#[test]
fn both_busy_inputs_take_turns() {
    let (mut a, mut b, mut input, _env) = two_inputs();
    let mut seen = Vec::new();
    let mut chain = OperatorChain::new(&[], ChainEnd::Sink(SinkKind::Checksum), Vec::new(), 64);
    for v in 0..4u64 {
        // Both inputs publish a record; each turn reads one input's
        // slice, and the inputs alternate.
        a.emit(v, &v.to_le_bytes()).unwrap();
        a.flush_all();
        b.emit(100 + v, &(100 + v).to_le_bytes()).unwrap();
        b.flush_all();
        for _ in 0..2 {
            let before = chain.sink_result().unwrap().checksum;
            assert_eq!(
                input.process(&mut chain).unwrap(),
                InputStatus::MoreAvailable
            );
            seen.push(chain.sink_result().unwrap().checksum - before);
        }
    }
    assert_eq!(seen, [0, 100, 1, 101, 2, 102, 3, 103]);
}

#[test]
fn an_alignment_timeout_counts_from_the_checkpoints_trigger() {
    let timeout = Alignment::AlignedWithTimeout {
        timeout_us: 500_000,
    };
    let at = |id: u64, timestamp: u64| {
        Event::CheckpointBarrier(CheckpointBarrier {
            id,
            timestamp,
            options: CheckpointOptions {
                alignment: timeout,
                ..CheckpointOptions::default()
            },
        })
    };
    let epoch = Instant::now() - Duration::from_secs(1);
    // Triggered at the epoch, a second ago: its half second is up, so the
    // first barrier turns the checkpoint unaligned at once.
    let (mut a, _b, mut input, _env) = two_inputs_since(epoch);
    input.enable_checkpoints(timeout);
    let mut chain = OperatorChain::new(&[], ChainEnd::Sink(SinkKind::Checksum), Vec::new(), 64);
    a.broadcast_event(at(1, 0)).unwrap();
    let mut unaligned = None;
    for _ in 0..5 {
        if let InputStatus::Checkpoint(b, m) = input.process(&mut chain).unwrap() {
            unaligned = Some((b.id, m.unaligned));
            break;
        }
    }
    assert_eq!(unaligned, Some((1, true)));
    // Triggered now: the deadline is half a second after the trigger,
    // wherever the barrier's first arrival falls, and the task aligns.
    let (mut a, _b, mut input, _env) = two_inputs_since(epoch);
    input.enable_checkpoints(timeout);
    let triggered = epoch.elapsed().as_nanos() as u64;
    a.broadcast_event(at(1, triggered)).unwrap();
    for _ in 0..5 {
        assert!(!matches!(
            input.process(&mut chain).unwrap(),
            InputStatus::Checkpoint(..)
        ));
    }
    assert_eq!(
        input.alignment_deadline(),
        Some(epoch + Duration::from_nanos(triggered) + Duration::from_millis(500))
    );
}

#[test]
fn a_pointwise_channel_stays_aligned_in_an_unaligned_checkpoint() {
    // a: a pointwise edge, whose barrier comes in-band and aligned; b: an
    // all-to-all edge, whose producer announces.
    let (mut a, mut b, mut input, env) = two_inputs();
    input.enable_checkpoints(Alignment::Unaligned);
    let mut chain = OperatorChain::new(&[], ChainEnd::Sink(SinkKind::Checksum), Vec::new(), 64);
    a.emit(1, &1u64.to_le_bytes()).unwrap();
    a.broadcast_event(barrier(1, Alignment::Aligned)).unwrap();
    a.emit(100, &100u64.to_le_bytes()).unwrap();
    a.flush_all();
    b.emit(10, &10u64.to_le_bytes()).unwrap();
    b.flush_all();
    // a's barrier first: a blocks, 100 waits; b's records go on.
    for _ in 0..10 {
        assert!(!matches!(
            input.process(&mut chain).unwrap(),
            InputStatus::Checkpoint(..)
        ));
    }
    assert_eq!(chain.sink_result().unwrap().checksum, 11, "100 held back");
    // b announces: the checkpoint goes unaligned at once; a owes nothing.
    b.emit(20, &20u64.to_le_bytes()).unwrap();
    b.partition_mut().announce_barrier(1, 0);
    b.flush_all();
    let status = input.process(&mut chain).unwrap();
    let InputStatus::Checkpoint(cp, metrics) = status else {
        panic!("{status:?}");
    };
    assert_eq!(cp.id, 1);
    assert!(metrics.unaligned);
    assert_eq!(chain.sink_result().unwrap().checksum, 11);
    let (state, _) = input.take_channel_state(1).expect("complete at once");
    let mut replayed = OperatorChain::new(&[], ChainEnd::Sink(SinkKind::Checksum), Vec::new(), 64);
    for s in &state {
        assert_eq!(s.gate, 1, "only b's channel has in-flight state");
        InputProcessor::replay(&mut replayed, &s.bytes).unwrap();
    }
    assert_eq!(replayed.sink_result().unwrap().checksum, 20);
    // a is unblocked.
    for _ in 0..10 {
        input.process(&mut chain).unwrap();
    }
    assert_eq!(chain.sink_result().unwrap().checksum, 131);

    // Checkpoint 2 the other way round: b announces first, a's records up
    // to its in-band barrier are captured, and its barrier ends the capture.
    b.partition_mut().announce_barrier(2, 0);
    let status = input.process(&mut chain).unwrap();
    assert!(
        matches!(status, InputStatus::Checkpoint(cp, m) if cp.id == 2 && m.unaligned),
        "{status:?}"
    );
    a.emit(5, &5u64.to_le_bytes()).unwrap();
    a.broadcast_event(barrier(2, Alignment::Aligned)).unwrap();
    a.emit(7, &7u64.to_le_bytes()).unwrap();
    a.flush_all();
    let mut complete = false;
    for _ in 0..10 {
        if input.process(&mut chain).unwrap() == InputStatus::ChannelStateComplete(2) {
            complete = true;
        }
    }
    assert!(complete);
    let (state, _) = input.take_channel_state(2).unwrap();
    let mut replayed = OperatorChain::new(&[], ChainEnd::Sink(SinkKind::Checksum), Vec::new(), 64);
    for s in &state {
        InputProcessor::replay(&mut replayed, &s.bytes).unwrap();
    }
    assert_eq!(
        replayed.sink_result().unwrap().checksum,
        5,
        "a's 5, before its barrier"
    );
    assert_eq!(chain.sink_result().unwrap().checksum, 131 + 5 + 7);
    drop((a, b, input));
    assert!(env.segments().is_full());
}

#[test]
fn a_pointwise_channel_stays_aligned_when_an_alignment_times_out() {
    // a: a pointwise edge (in-band, aligned, unannounced barrier); b: an
    // all-to-all edge whose producer announces. Timeout: 200 ms.
    let timeout = Alignment::AlignedWithTimeout {
        timeout_us: 200_000,
    };
    let epoch = Instant::now() - Duration::from_secs(1);
    let (mut a, mut b, mut input, env) = two_inputs_since(epoch);
    input.enable_checkpoints(timeout);
    let mut chain = OperatorChain::new(&[], ChainEnd::Sink(SinkKind::Checksum), Vec::new(), 64);
    // The in-flight state once complete (at once when it was queued).
    let channel_state = |input: &mut InputProcessor, chain: &mut OperatorChain, id| {
        for _ in 0..10 {
            if let Some((state, _)) = input.take_channel_state(id) {
                return state;
            }
            input.process(chain).unwrap();
        }
        panic!("checkpoint {id}'s channel state never completed");
    };
    let replay = |state: &[ChannelState]| {
        let mut replayed =
            OperatorChain::new(&[], ChainEnd::Sink(SinkKind::Checksum), Vec::new(), 64);
        for s in state {
            InputProcessor::replay(&mut replayed, &s.bytes).unwrap();
        }
        replayed.sink_result().unwrap().checksum
    };

    // Checkpoint 1, triggered now: a's barrier first, and a blocks; when
    // the timeout expires the alignment turns unaligned: b's 10 before its
    // barrier is captured, a (arrived) owes nothing and its 100 was held
    // back.
    let now_ns = epoch.elapsed().as_nanos() as u64;
    a.emit(1, &1u64.to_le_bytes()).unwrap();
    a.broadcast_event(Event::CheckpointBarrier(CheckpointBarrier {
        id: 1,
        timestamp: now_ns,
        options: CheckpointOptions::default(),
    }))
    .unwrap();
    a.emit(100, &100u64.to_le_bytes()).unwrap();
    a.flush_all();
    let mut status = InputStatus::MoreAvailable;
    for _ in 0..4 {
        status = input.process(&mut chain).unwrap();
    }
    assert!(!matches!(status, InputStatus::Checkpoint(..)), "{status:?}");
    assert_eq!(chain.sink_result().unwrap().checksum, 1);
    b.emit(10, &10u64.to_le_bytes()).unwrap();
    b.partition_mut().announce_barrier(1, now_ns);
    b.flush_all();
    let deadline = input.alignment_deadline().expect("aligning");
    std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
    let status = input.poll_checkpoints().expect("timed out");
    assert!(
        matches!(status, InputStatus::Checkpoint(cp, m) if cp.id == 1 && m.unaligned),
        "{status:?}"
    );
    b.broadcast_event(barrier(1, timeout)).unwrap();
    let state = channel_state(&mut input, &mut chain, 1);
    assert!(state.iter().all(|s| s.gate == 1), "only b's channel");
    assert_eq!(replay(&state), 10);
    for _ in 0..10 {
        input.process(&mut chain).unwrap();
    }
    assert_eq!(chain.sink_result().unwrap().checksum, 111, "a unblocked");

    // Checkpoint 2 the other way round: b's announcement of a checkpoint
    // triggered at the epoch, a second ago, is overdue and turns it
    // unaligned before a's barrier; a is captured up to its barrier.
    b.partition_mut().announce_barrier(2, 0);
    let status = input.poll_checkpoints().expect("timed out");
    assert!(
        matches!(status, InputStatus::Checkpoint(cp, m) if cp.id == 2 && m.unaligned),
        "{status:?}"
    );
    b.broadcast_event(barrier(2, timeout)).unwrap();
    a.emit(5, &5u64.to_le_bytes()).unwrap();
    a.broadcast_event(barrier(2, Alignment::Aligned)).unwrap();
    a.emit(7, &7u64.to_le_bytes()).unwrap();
    a.flush_all();
    b.flush_all();
    let state = channel_state(&mut input, &mut chain, 2);
    assert_eq!(replay(&state), 5, "a's 5, before its barrier");
    for _ in 0..10 {
        input.process(&mut chain).unwrap();
    }
    assert_eq!(chain.sink_result().unwrap().checksum, 111 + 5 + 7);
    drop((a, b, input));
    assert!(env.segments().is_full());
}
