//! Flink's `RecordWriter`: a partition plus the partitioner that routes each
//! record.

use super::{ChannelSelector, KeyGroupRoute, Partitioner, ResultPartition, Selection, WriteError};
use crate::network::event::Event;

/// Routes records to subpartitions by a [`Partitioner`] and writes them.
#[derive(Debug)]
pub struct RecordWriter {
    partition: ResultPartition,
    selector: ChannelSelector,
    /// Flush after every record (Flink's buffer timeout 0).
    flush_always: bool,
    /// The hash route without divisions, where the partitioner allows one.
    key_groups: Option<KeyGroupRoute>,
}

impl RecordWriter {
    /// A writer over `partition`; round-robin partitioners start at channel
    /// `start`.
    pub fn new(partition: ResultPartition, partitioner: Partitioner, start: usize) -> Self {
        let selector = ChannelSelector::new(partitioner, partition.num_subpartitions(), start);
        Self {
            partition,
            key_groups: selector.key_group_route(),
            selector,
            flush_always: false,
        }
    }

    /// Make every record readable as soon as it is written (buffer timeout
    /// 0): one publish per record, or per batch on the batch paths, which
    /// write a batch in one pass and publish before they would wait.
    pub fn set_flush_always(&mut self, flush_always: bool) {
        self.flush_always = flush_always;
    }

    /// Whether to publish what was written before blocking for capacity
    /// (every buffer timeout but `none`; see
    /// [`ResultPartition::set_flush_before_wait`]).
    pub fn set_flush_before_wait(&mut self, flush: bool) {
        self.partition.set_flush_before_wait(flush);
    }

    /// Writes one record with routing key `key` (ignored unless hashing).
    #[inline]
    pub fn emit(&mut self, key: u64, record: &[u8]) -> Result<(), WriteError> {
        match self.selector.select(key) {
            Selection::One(index) => {
                self.partition.emit(index, record)?;
                if self.flush_always {
                    self.partition.flush(index);
                }
            }
            Selection::All => {
                self.partition.emit_broadcast(record)?;
                if self.flush_always {
                    self.partition.flush_all();
                }
            }
        }
        Ok(())
    }

    /// Writes a batch of 8-byte records given as their values (each value is
    /// also its routing key). Into a single channel (forward, or any
    /// partitioner over one subpartition) the batch is framed in one pass
    /// per segment; rebalance, rescale and hash route and frame each record
    /// in one loop; broadcast goes record by record as [`emit`](Self::emit).
    /// Under buffer timeout 0 a batch is published once, after its pass.
    #[inline]
    pub fn emit_values(&mut self, values: &[u64]) -> Result<(), WriteError> {
        let partitioner = self.selector.partitioner();
        let single = partitioner == Partitioner::Forward
            || (self.partition.num_subpartitions() == 1 && partitioner != Partitioner::Broadcast);
        if single {
            self.partition.emit_values(0, values)?;
            if self.flush_always {
                self.partition.flush(0);
            }
            return Ok(());
        }
        let selector = &mut self.selector;
        let routed = match partitioner {
            Partitioner::Rebalance | Partitioner::Rescale => {
                let channels = self.partition.num_subpartitions();
                let next = selector.next_mut();
                let mut turn = *next;
                let result = self.partition.emit_values_routed(values, |_| {
                    let channel = turn;
                    turn += 1;
                    if turn == channels {
                        turn = 0;
                    }
                    channel
                });
                *next = turn;
                Some(result)
            }
            Partitioner::Hash {
                max_parallelism,
                key_space,
            } => Some(match self.key_groups {
                Some(route) => self
                    .partition
                    .emit_values_routed(values, |value| route.channel(value)),
                None => self.partition.emit_values_routed(values, |value| {
                    selector.hash(value, max_parallelism, key_space)
                }),
            }),
            Partitioner::Forward | Partitioner::Broadcast => None,
        };
        if let Some(result) = routed {
            result?;
            if self.flush_always {
                self.partition.flush_all();
            }
            return Ok(());
        }
        for &value in values {
            self.emit(value, &value.to_le_bytes())?;
        }
        Ok(())
    }

    /// Writes one record to every channel whatever the partitioner (a
    /// broadcast partitioner shares one copy; others copy per channel, as
    /// Flink's `broadcastEmit` does).
    pub fn broadcast_emit(&mut self, record: &[u8]) -> Result<(), WriteError> {
        if self.selector.partitioner() == Partitioner::Broadcast {
            return self.partition.emit_broadcast(record);
        }
        for index in 0..self.partition.num_subpartitions() {
            self.partition.emit(index, record)?;
        }
        Ok(())
    }

    /// Sends an event to every channel, after the records before it.
    pub fn broadcast_event(&mut self, event: Event) -> Result<(), WriteError> {
        self.partition.broadcast_event(event)
    }

    /// Makes everything written so far readable (a buffer timeout).
    pub fn flush_all(&mut self) {
        self.partition.flush_all()
    }

    /// Finishes every segment and ends every channel with `EndOfPartition`.
    pub fn finish(&mut self) -> Result<(), WriteError> {
        self.partition.finish()
    }

    /// How records are routed.
    pub fn partitioner(&self) -> Partitioner {
        self.selector.partitioner()
    }

    /// Whether each consumer subtask reads a fixed part of this writer's
    /// stream (forward and rescale: pointwise) or all of it (broadcast):
    /// edges on which Flink does not take unaligned checkpoints, since
    /// their in-flight data could not be redistributed on rescaling.
    pub fn is_pointwise_or_broadcast(&self) -> bool {
        matches!(
            self.partitioner(),
            Partitioner::Forward | Partitioner::Rescale | Partitioner::Broadcast
        )
    }

    /// The partition written to.
    pub fn partition(&self) -> &ResultPartition {
        &self.partition
    }

    /// The partition written to, mutably.
    pub fn partition_mut(&mut self) -> &mut ResultPartition {
        &mut self.partition
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::memory::{BufferPool, MemoryConfig, SegmentPool};
    use crate::network::{local_channel, ChannelAvailability, InputGate, Poll};

    use crate::sync::{Arc, Parker, WaitStrategy};

    /// A region of 16 segments of 4 KiB.
    fn sixteen_segments() -> Arc<SegmentPool> {
        let memory = MemoryConfig {
            segment_size: 4096,
            total_segments: 16,
            huge_pages: false,
        };
        Arc::new(SegmentPool::new(&memory).unwrap())
    }

    /// A forward writer into one channel of ring capacity `credit`, its
    /// gate, and its pool.
    fn one_channel(credit: usize) -> (RecordWriter, InputGate, Arc<BufferPool>) {
        let parker = Arc::new(Parker::new());
        let pool = Arc::new(BufferPool::new(sixteen_segments(), 2, 8, parker.clone()).unwrap());
        let availability = Arc::new(ChannelAvailability::new(1, Arc::new(Parker::new())));
        let (output, input) = local_channel(credit, pool.clone(), &availability, 0, 64);
        let partition = ResultPartition::new(
            pool.clone(),
            vec![output],
            64,
            parker,
            WaitStrategy::default(),
        );
        let writer = RecordWriter::new(partition, Partitioner::Forward, 0);
        (writer, InputGate::new(availability, vec![input]), pool)
    }

    /// Values of the records read until the gate is empty or finished.
    fn drain(gate: &mut InputGate) -> Vec<u64> {
        let mut values = Vec::new();
        loop {
            let poll = gate
                .poll(|r| values.push(u64::from_le_bytes(r.try_into().unwrap())))
                .unwrap();
            if matches!(poll, Poll::Empty | Poll::Finished) {
                return values;
            }
        }
    }

    #[test]
    fn a_segment_enters_the_channel_once_and_flushes_only_publish() {
        let (mut writer, mut gate, pool) = one_channel(4);
        for v in 0..4u64 {
            writer.emit(v, &v.to_le_bytes()).unwrap();
            writer.flush_all();
            let m = writer.partition().metrics();
            assert_eq!(
                (m.segments_out, m.buffers_out),
                (1, v + 1),
                "after flush {v}"
            );
            assert_eq!(pool.segments_in_use(), 1);
        }
        assert_eq!(drain(&mut gate), [0, 1, 2, 3]);
        writer.flush_all();
        assert_eq!(
            writer.partition().metrics().buffers_out,
            4,
            "a flush with nothing new sends nothing"
        );
        writer.emit(4, &4u64.to_le_bytes()).unwrap();
        assert_eq!(drain(&mut gate), [] as [u64; 0], "written, not flushed");
        writer.finish().unwrap();
        assert_eq!(drain(&mut gate), [4]);
        assert!(pool.is_full(), "the reader recycled the finished segment");
        drop((writer, gate));
        assert!(pool.is_full());
    }

    #[test]
    fn a_full_segment_is_sent_without_a_flush() {
        let (mut writer, mut gate, pool) = one_channel(10);
        // 4 KiB segments hold 341 frames of 12 bytes with 4 bytes to spare:
        // the 342nd record spans into the next segment, which finishes the
        // first.
        for v in 0..341u64 {
            writer.emit(v, &v.to_le_bytes()).unwrap();
        }
        assert_eq!(drain(&mut gate).len(), 0);
        writer.emit(341, &341u64.to_le_bytes()).unwrap();
        let m = writer.partition().metrics();
        assert_eq!((m.segments_out, m.buffers_out), (2, 1));
        assert_eq!(drain(&mut gate), (0..341).collect::<Vec<u64>>());
        assert_eq!(pool.segments_in_use(), 1, "the first segment came back");
        drop((writer, gate));
        assert!(pool.is_full());
    }

    #[test]
    fn a_full_ring_makes_the_partition_unavailable_until_its_reader_catches_up() {
        // Flink's subpartition over maxBuffersPerChannel: the pool has free
        // segments, but the task must stop between records.
        let (mut writer, mut gate, pool) = one_channel(2);
        for v in 0..341u64 {
            writer.emit(v, &v.to_le_bytes()).unwrap();
        }
        assert!(writer.partition().is_available(), "one segment queued of 2");
        writer.emit(341, &341u64.to_le_bytes()).unwrap();
        assert_eq!(writer.partition().metrics().segments_out, 2);
        assert!(pool.is_available(), "segments are free");
        assert!(
            !writer.partition().is_available(),
            "the ring is full: unavailable"
        );
        assert_eq!(drain(&mut gate).len(), 341);
        assert!(writer.partition().is_available(), "the reader made room");
        // An event that fills the ring counts too.
        writer.flush_all();
        drain(&mut gate);
        writer
            .partition_mut()
            .broadcast_event(crate::network::Event::EndOfData)
            .unwrap();
        assert!(
            !writer.partition().is_available(),
            "segment and event: full"
        );
        drain(&mut gate);
        assert!(writer.partition().is_available());
        drop((writer, gate));
        assert!(pool.is_full());
    }

    /// Emits a 10 KiB record (three 4 KiB segments with the one open)
    /// after a flushed small one, into a pool of 2 segments allowing
    /// `overdraft` more, with the writer's parker interrupted: any wait
    /// fails the emit.
    fn spanning_record(overdraft: u32) -> (Result<(), WriteError>, RecordWriter, InputGate) {
        let parker = Arc::new(Parker::new());
        let pool = BufferPool::with_overdraft(sixteen_segments(), 2, 2, 3, parker.clone()).unwrap();
        let pool = Arc::new(pool);
        let availability = Arc::new(ChannelAvailability::new(1, Arc::new(Parker::new())));
        // Credit 2, overdraft 3 and an event slot.
        let (output, input) = local_channel(6, pool.clone(), &availability, 0, 16 << 10);
        let mut partition = ResultPartition::new(
            pool,
            vec![output],
            16 << 10,
            parker.clone(),
            WaitStrategy::default(),
        )
        .with_channel_credit(2);
        partition.set_max_overdraft_buffers(overdraft);
        let mut writer = RecordWriter::new(partition, Partitioner::Forward, 0);
        writer.emit(1, &1u64.to_le_bytes()).unwrap();
        writer.flush_all();
        assert!(writer.partition().is_available(), "1 of 2 segments out");
        parker.interrupt();
        let result = writer.emit(2, &[7u8; 10 << 10]);
        (result, writer, InputGate::new(availability, vec![input]))
    }

    #[test]
    fn a_record_spanning_segments_finishes_on_overdraft_instead_of_blocking() {
        let (result, mut writer, mut gate) = spanning_record(3);
        result.expect("no wait: the third segment is an overdraft one");
        let pool = writer.partition().pool().clone();
        let m = writer.partition().metrics();
        assert_eq!((m.hard_back_pressure_waits, m.segments_out), (0, 3));
        assert_eq!(pool.overdraft_segments(), 1);
        assert!(
            !writer.partition().is_available(),
            "overdraft out and 3 buffers queued on a credit of 2"
        );
        writer.flush_all();
        let mut lengths = Vec::new();
        while let Poll::Records { .. } = gate.poll(|r| lengths.push(r.len())).unwrap() {}
        assert_eq!(lengths, [8, 10 << 10]);
        assert_eq!(
            pool.overdraft_segments(),
            0,
            "the first segment back repaid it"
        );
        assert!(writer.partition().is_available());
        drop((writer, gate));
        assert!(pool.is_full());
        assert_eq!(
            pool.segment_pool().available_segments(),
            16 - 2,
            "the overdraft went home; the pool keeps its own two"
        );

        // A source's writer (overdraft 0) has to wait for the third.
        let (result, writer, gate) = spanning_record(0);
        assert!(matches!(result, Err(WriteError::Interrupted)), "{result:?}");
        let pool = writer.partition().pool().clone();
        assert_eq!(pool.overdraft_segments(), 0);
        drop((writer, gate));
        assert!(pool.is_full());
    }

    #[test]
    fn a_gone_consumer_leaves_the_segments_to_the_writer() {
        let (mut writer, gate, pool) = one_channel(4);
        writer.emit(1, &1u64.to_le_bytes()).unwrap();
        writer.flush_all();
        writer.emit(2, &2u64.to_le_bytes()).unwrap();
        drop(gate);
        assert_eq!(pool.segments_in_use(), 1, "the writer still writes it");
        drop(writer);
        assert!(pool.is_full());
    }

    #[test]
    fn a_reader_gone_mid_segment_leaves_it_to_the_writer_and_vice_versa() {
        // The reader read part of the head segment and goes; the writer,
        // which still writes it, gets it back when it closes.
        let (mut writer, mut gate, pool) = one_channel(4);
        writer.emit(1, &1u64.to_le_bytes()).unwrap();
        writer.flush_all();
        assert_eq!(drain(&mut gate), [1]);
        drop(gate);
        writer.emit(2, &2u64.to_le_bytes()).unwrap();
        writer.flush_all();
        drop(writer);
        assert!(pool.is_full());
        // The writer goes first: the reader gets the finished segment back.
        let (mut writer, gate, pool) = one_channel(4);
        writer.emit(1, &1u64.to_le_bytes()).unwrap();
        drop(writer);
        assert_eq!(pool.segments_in_use(), 1);
        drop(gate);
        assert!(pool.is_full());
    }

    /// What each channel received, record by record.
    fn per_channel(gate: &mut InputGate) -> Vec<Vec<u64>> {
        let mut channels = vec![Vec::new(); gate.num_channels()];
        let mut seen = Vec::new();
        loop {
            seen.clear();
            let poll = gate
                .poll(|r| seen.push(u64::from_le_bytes(r.try_into().unwrap())))
                .unwrap();
            match poll {
                Poll::Records { channel, .. } => channels[channel].extend_from_slice(&seen),
                Poll::Event { .. } | Poll::Priority => {}
                Poll::Empty | Poll::Finished => return channels,
            }
        }
    }

    /// A writer over `channels` channels of a shared 4 KiB-segment pool.
    fn writer_over(channels: usize, partitioner: Partitioner) -> (RecordWriter, InputGate) {
        let memory = MemoryConfig {
            segment_size: 4096,
            total_segments: 64,
            huge_pages: false,
        };
        let segments = Arc::new(SegmentPool::new(&memory).unwrap());
        let parker = Arc::new(Parker::new());
        let pool = Arc::new(BufferPool::new(segments, 8, 32, parker.clone()).unwrap());
        let availability = Arc::new(ChannelAvailability::new(channels, Arc::new(Parker::new())));
        let (outputs, inputs): (Vec<_>, Vec<_>) = (0..channels as u32)
            .map(|c| local_channel(10, pool.clone(), &availability, c, 64))
            .unzip();
        let partition = ResultPartition::new(pool, outputs, 64, parker, WaitStrategy::default());
        let writer = RecordWriter::new(partition, partitioner, 1);
        (writer, InputGate::new(availability, inputs))
    }

    #[test]
    fn routed_value_batches_match_record_by_record_writes() {
        for partitioner in [
            Partitioner::Rebalance,
            Partitioner::Rescale,
            Partitioner::hash_for(3),
            Partitioner::hash_keyed(3, 7),
        ] {
            let values: Vec<u64> = (0..3000u64).map(|v| v.wrapping_mul(0x9e37_79b9)).collect();
            let (mut batched, mut batched_gate) = writer_over(3, partitioner);
            let (mut single, mut single_gate) = writer_over(3, partitioner);
            // Batches of uneven sizes, read as they come, so segments fill,
            // records span segments and rings never run out of room.
            let mut received = 0;
            for chunk in values.chunks(97) {
                batched.emit_values(chunk).unwrap();
                for &v in chunk {
                    single.emit(v, &v.to_le_bytes()).unwrap();
                }
                let (a, b) = (
                    per_channel(&mut batched_gate),
                    per_channel(&mut single_gate),
                );
                assert_eq!(a, b, "{partitioner:?}");
                received += a.iter().map(Vec::len).sum::<usize>();
            }
            assert!(received > 0, "full segments went over before the end");
            batched.finish().unwrap();
            single.finish().unwrap();
            let (a, b) = (
                per_channel(&mut batched_gate),
                per_channel(&mut single_gate),
            );
            assert_eq!(a, b, "{partitioner:?}");
            received += a.iter().map(Vec::len).sum::<usize>();
            assert_eq!(received, values.len(), "{partitioner:?}");
            assert_eq!(batched.partition().metrics(), single.partition().metrics());
        }
    }

    #[test]
    fn flush_always_publishes_every_record_and_every_batch() {
        let (mut writer, mut gate, pool) = one_channel(10);
        for flush_always in [false, true] {
            writer.set_flush_always(flush_always);
            let sent = writer.partition().metrics().buffers_out;
            for v in 0..3u64 {
                writer.emit(v, &v.to_le_bytes()).unwrap();
                let readable = drain(&mut gate);
                // Without flushing, nothing is readable until a segment fills.
                assert_eq!(readable, if flush_always { vec![v] } else { vec![] });
            }
            // A batch of 8-byte records is published once, after its pass.
            writer.emit_values(&[10, 11, 12]).unwrap();
            let published = writer.partition().metrics().buffers_out - sent;
            assert_eq!(published, if flush_always { 4 } else { 0 });
            writer.flush_all();
            let tail = drain(&mut gate);
            assert_eq!(tail.len(), if flush_always { 3 } else { 6 });
        }
        drop((writer, gate));
        assert!(pool.is_full());
    }
}
