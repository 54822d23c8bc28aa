//! The source function of a source task: emits a batch of records per
//! mailbox turn, optionally at a fixed offered rate.

use std::time::{Duration, Instant};

use super::record;
use super::{ChainError, OperatorChain};

/// What a source emits, as a deployment descriptor carries it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SourceSpec {
    /// Records to emit (per subtask); `None` runs until `duration` ends.
    pub records: Option<u64>,
    /// How long to run; `None` runs until `records` are emitted.
    pub duration: Option<Duration>,
    /// Bytes per record (at least 8).
    pub record_size: usize,
    /// Records per mailbox turn.
    pub batch: u32,
    /// Offered load in records per second (per subtask); `None` = as fast
    /// as possible. Latency runs use a fixed rate, and stamp each record
    /// with its *intended* emit time, so a stalled pipeline cannot hide its
    /// stall (coordinated-omission correction, as wrk2 does).
    pub rate: Option<f64>,
    /// After this many records, emit only values that hash to key 0
    /// (`value * key_space`), as flink-benchmarks' skewed source does.
    pub skew_after: Option<u64>,
    /// Distinct values used for keys when skewing.
    pub key_space: u64,
    /// Stamp records with their emit time (needs `record_size >= 16`).
    pub timestamps: bool,
}

impl Default for SourceSpec {
    fn default() -> Self {
        Self {
            records: Some(1_000_000),
            duration: None,
            record_size: 8,
            batch: 1024,
            rate: None,
            skew_after: None,
            key_space: 1024,
            timestamps: false,
        }
    }
}

/// Whether a source has more to emit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceStatus {
    /// Emitted a batch; more to come now.
    MoreAvailable,
    /// Ahead of its offered rate: nothing to emit before `Instant`.
    WaitUntil(Instant),
    /// Done.
    Finished,
}

/// A running source: the next sequence number and the record it rewrites.
#[derive(Debug)]
pub struct SourceFunction {
    spec: SourceSpec,
    /// Sequence numbers this subtask emits: `first + i * stride`.
    first: u64,
    stride: u64,
    emitted: u64,
    record: Vec<u8>,
    started: Option<Instant>,
    epoch: Instant,
}

impl SourceFunction {
    /// Subtask `index` of `parallelism` emits values `index, index +
    /// parallelism, …`, so values are unique across subtasks. `epoch` is the
    /// job's time origin for timestamps.
    pub fn new(spec: SourceSpec, index: u32, parallelism: u32, epoch: Instant) -> Self {
        Self {
            first: u64::from(index),
            stride: u64::from(parallelism.max(1)),
            emitted: 0,
            record: vec![0u8; spec.record_size.max(record::VALUE_BYTES)],
            started: None,
            epoch,
            spec,
        }
    }

    /// Records emitted so far.
    pub fn emitted(&self) -> u64 {
        self.emitted
    }

    /// Emits one batch into `chain` (one clock read per batch).
    pub fn emit_batch(&mut self, chain: &mut OperatorChain) -> Result<SourceStatus, ChainError> {
        let now = Instant::now();
        let started = *self.started.get_or_insert(now);
        if self
            .spec
            .duration
            .is_some_and(|d| now.duration_since(started) >= d)
        {
            return Ok(SourceStatus::Finished);
        }
        let mut batch = u64::from(self.spec.batch.max(1));
        if let Some(total) = self.spec.records {
            batch = batch.min(total - self.emitted);
            if batch == 0 {
                return Ok(SourceStatus::Finished);
            }
        }
        let mut stamp = now;
        if let Some(rate) = self.spec.rate.filter(|r| *r > 0.0) {
            // Intended time of the next record; emit what is due, at most a batch.
            let interval = 1.0 / rate;
            let due_at = started + Duration::from_secs_f64(self.emitted as f64 * interval);
            if due_at > now {
                return Ok(SourceStatus::WaitUntil(due_at));
            }
            let due = ((now - due_at).as_secs_f64() / interval) as u64 + 1;
            batch = batch.min(due);
            stamp = due_at;
        }
        if self.record.len() == record::VALUE_BYTES {
            self.emit_values(batch, chain)?;
        } else {
            self.emit_records(batch, stamp, chain)?;
        }
        self.emitted += batch;
        Ok(SourceStatus::MoreAvailable)
    }

    /// 8-byte records (no room for a timestamp): values are generated a
    /// batch at a time into an array the chain takes whole.
    #[inline(always)]
    fn emit_values(&self, batch: u64, chain: &mut OperatorChain) -> Result<(), ChainError> {
        let mut values = [0u64; OperatorChain::VALUE_BATCH];
        let mut seq = self.emitted;
        let end = self.emitted + batch;
        while seq < end {
            let n = (end - seq).min(values.len() as u64) as usize;
            let chunk = &mut values[..n];
            let mut value = self.first + seq * self.stride;
            for slot in chunk.iter_mut() {
                *slot = value;
                value += self.stride;
            }
            if let Some(after) = self.spec.skew_after.filter(|&a| a < seq + n as u64) {
                let key_space = self.spec.key_space.max(1);
                let from = after.saturating_sub(seq) as usize;
                chunk[from..].iter_mut().for_each(|v| *v *= key_space);
            }
            chain.process_values(chunk)?;
            seq += n as u64;
        }
        Ok(())
    }

    /// Records of any other size, one at a time, stamped when asked.
    fn emit_records(
        &mut self,
        batch: u64,
        stamp: Instant,
        chain: &mut OperatorChain,
    ) -> Result<(), ChainError> {
        let stamp_ns = stamp.saturating_duration_since(self.epoch).as_nanos() as u64;
        let per_record_ns = self.spec.rate.map_or(0, |r| (1e9 / r) as u64);
        for i in 0..batch {
            let seq = self.emitted + i;
            let value = match self.spec.skew_after {
                Some(after) if seq >= after => {
                    (self.first + seq * self.stride) * self.spec.key_space.max(1)
                }
                _ => self.first + seq * self.stride,
            };
            record::set_value(&mut self.record, value);
            if self.spec.timestamps {
                record::set_timestamp(&mut self.record, stamp_ns + i * per_record_ns);
            }
            chain.process(&self.record)?;
        }
        Ok(())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::streaming::{ChainEnd, SinkKind};

    fn sink() -> OperatorChain {
        OperatorChain::new(&[], ChainEnd::Sink(SinkKind::Checksum), Vec::new(), 64)
    }

    #[test]
    fn emits_exactly_its_records_in_batches_with_unique_values() {
        let spec = SourceSpec {
            records: Some(2500),
            batch: 1000,
            ..SourceSpec::default()
        };
        let mut chain = sink();
        let mut source = SourceFunction::new(spec, 1, 3, Instant::now());
        let mut turns = 0;
        while source.emit_batch(&mut chain).unwrap() == SourceStatus::MoreAvailable {
            turns += 1;
        }
        assert_eq!(turns, 3);
        let result = chain.sink_result().unwrap();
        assert_eq!(result.records, 2500);
        assert_eq!(
            result.checksum,
            (0..2500u64).map(|i| 1 + 3 * i).sum::<u64>()
        );
    }

    #[test]
    fn a_rate_limited_source_waits_for_its_schedule() {
        let spec = SourceSpec {
            records: Some(10),
            rate: Some(1000.0),
            batch: 100,
            record_size: 16,
            timestamps: true,
            ..SourceSpec::default()
        };
        let mut chain = OperatorChain::new(&[], ChainEnd::Sink(SinkKind::Latency), Vec::new(), 64);
        let mut source = SourceFunction::new(spec, 0, 1, Instant::now());
        assert_eq!(
            source.emit_batch(&mut chain).unwrap(),
            SourceStatus::MoreAvailable
        );
        assert!(
            source.emitted() >= 1 && source.emitted() < 10,
            "{}",
            source.emitted()
        );
        match source.emit_batch(&mut chain).unwrap() {
            SourceStatus::WaitUntil(at) => assert!(at > Instant::now() - Duration::from_millis(1)),
            SourceStatus::MoreAvailable => {} // the machine was slow: records were due
            SourceStatus::Finished => panic!("10 records at 1000/s take ~10 ms"),
        }
    }

    #[test]
    fn a_skewed_source_sends_everything_to_one_key_after_the_threshold() {
        let spec = SourceSpec {
            records: Some(20),
            skew_after: Some(10),
            key_space: 8,
            ..SourceSpec::default()
        };
        let mut chain = OperatorChain::new(
            &[super::super::OperatorSpec::Filter(
                super::super::FilterFunction::OneIn(8),
            )],
            ChainEnd::Sink(SinkKind::Checksum),
            Vec::new(),
            64,
        );
        let mut source = SourceFunction::new(spec, 0, 1, Instant::now());
        while source.emit_batch(&mut chain).unwrap() == SourceStatus::MoreAvailable {}
        // Values 0 and 8 before the threshold, all 10 after it.
        assert_eq!(chain.sink_result().unwrap().records, 2 + 10);
    }
}
