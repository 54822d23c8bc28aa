//! The source function of a source task: emits a batch of records per
//! mailbox turn, optionally at a fixed offered rate.

use std::time::{Duration, Instant};

use super::record;
use super::{ChainError, OperatorChain};
use crate::checkpoint::StateError;

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
    /// Distinct keys (`value % key_space`), for skew and key distributions.
    pub key_space: u64,
    /// How keys are distributed over the key space.
    pub keys: KeyDistribution,
    /// Stamp records with their emit time (needs `record_size >= 16`).
    pub timestamps: bool,
    /// Emit nothing and stay open until the job's other sources finished
    /// (told by a [`Mail::EndOfInput`](crate::mailbox::Mail::EndOfInput)):
    /// an open, silent input (flink-benchmarks' `QueuingLongSource`), not
    /// a finished one.
    pub idle: bool,
    /// Induce checkpoint `n` itself once it emitted `n × K` records
    /// (Flink's `ExternallyInducedSource`: the source, not the
    /// coordinator's timer, decides where checkpoints cut its stream).
    pub checkpoint_every: Option<u64>,
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
            keys: KeyDistribution::Uniform,
            timestamps: false,
            idle: false,
            checkpoint_every: None,
        }
    }
}

/// How a source's keys (`value % key_space`) are distributed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum KeyDistribution {
    /// Values count up, so keys cycle through the key space evenly.
    Uniform,
    /// Key `k` (0-based rank) is drawn with weight `1 / (k + 1)^exponent`;
    /// values stay unique (`sequence * key_space + key`).
    Zipf {
        /// The skew: 0 is uniform, 1 is the classic Zipf law.
        exponent: f64,
    },
}

/// Keys drawn from a Zipf law, laid out once at setup: the quantiles of
/// `ZIPF_TABLE` evenly spaced probabilities, shuffled so equal keys do not
/// come in runs. Sources read it cyclically (no random numbers per record).
const ZIPF_TABLE: usize = 1 << 14;

fn zipf_keys(key_space: u64, exponent: f64) -> Vec<u32> {
    let n = key_space.clamp(1, u64::from(u32::MAX)) as usize;
    let mut cdf = Vec::with_capacity(n);
    let mut total = 0.0f64;
    for k in 0..n {
        total += 1.0 / ((k + 1) as f64).powf(exponent);
        cdf.push(total);
    }
    let mut keys: Vec<u32> = (0..ZIPF_TABLE)
        .map(|i| {
            let u = (i as f64 + 0.5) / ZIPF_TABLE as f64 * total;
            cdf.partition_point(|&c| c < u).min(n - 1) as u32
        })
        .collect();
    // A fixed xorshift permutation: repeatable runs, no runs of one key.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..keys.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        keys.swap(i, (state % (i as u64 + 1)) as usize);
    }
    keys
}

/// Whether a source has more to emit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceStatus {
    /// Emitted a batch; more to come now.
    MoreAvailable,
    /// Ahead of its offered rate: nothing to emit before `Instant`.
    WaitUntil(Instant),
    /// An idle source waiting for the job's other sources to finish.
    Idle,
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
    /// Zipf keys, read cyclically; empty for uniform keys.
    zipf: Vec<u32>,
    /// An idle source was told the other sources finished.
    released: bool,
    /// The last checkpoint this source induced.
    induced: u64,
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
            zipf: match spec.keys {
                KeyDistribution::Uniform => Vec::new(),
                KeyDistribution::Zipf { exponent } => zipf_keys(spec.key_space, exponent),
            },
            released: false,
            induced: 0,
            spec,
        }
    }

    /// Tells an idle source that the job's other sources finished: it
    /// finishes at its next turn.
    pub fn end_input(&mut self) {
        self.released = true;
    }

    /// Whether this is an idle source still waiting to be released.
    pub fn is_idle(&self) -> bool {
        self.spec.idle && !self.released
    }

    /// Value `value` with its key drawn from the Zipf table at `seq`.
    #[inline(always)]
    fn zipf_value(&self, value: u64, seq: u64) -> u64 {
        let key = self.zipf[seq as usize & (ZIPF_TABLE - 1)];
        value * self.spec.key_space.max(1) + u64::from(key)
    }

    /// Records emitted so far (the source's position in a checkpoint).
    pub fn emitted(&self) -> u64 {
        self.emitted
    }

    /// Rewinds to a checkpoint's position: the next record emitted is the
    /// one after the last record before the barrier (Flink's source reader
    /// restoring its split's offset).
    ///
    /// # Errors
    ///
    /// A position past the records this source emits in all: the state is
    /// not this source's (it would never end).
    pub fn restore_position(&mut self, emitted: u64) -> Result<(), StateError> {
        if let Some(total) = self.spec.records.filter(|&total| emitted > total) {
            return Err(StateError::Mismatch(format!(
                "source position {emitted} is past the source's {total} records"
            )));
        }
        self.emitted = emitted;
        if let Some(every) = self.spec.checkpoint_every.filter(|&k| k > 0) {
            self.induced = emitted / every;
        }
        Ok(())
    }

    /// The checkpoint this source induces now, if its position reached the
    /// next multiple of `checkpoint_every` (batches stop there).
    pub fn induced_checkpoint(&mut self) -> Option<u64> {
        let every = self.spec.checkpoint_every.filter(|&k| k > 0)?;
        let due = self.emitted / every;
        (due > self.induced).then(|| {
            self.induced = due;
            due
        })
    }

    /// Emits one batch into `chain` (one clock read per batch).
    pub fn emit_batch(&mut self, chain: &mut OperatorChain) -> Result<SourceStatus, ChainError> {
        if self.spec.idle {
            return Ok(if self.released {
                SourceStatus::Finished
            } else {
                SourceStatus::Idle
            });
        }
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
        if let Some(every) = self.spec.checkpoint_every.filter(|&k| k > 0) {
            // A batch ends where the next induced checkpoint cuts.
            batch = batch.min(every - self.emitted % every);
        }
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
        if chain.measures_latency() {
            // A sink chained to the source measures against this batch's
            // clock read (a sink behind a gate reads its own per buffer).
            chain.set_clock(now.saturating_duration_since(self.epoch).as_nanos() as u64);
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
            if !self.zipf.is_empty() {
                for (i, v) in chunk.iter_mut().enumerate() {
                    *v = self.zipf_value(*v, seq + i as u64);
                }
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
            let mut value = self.first + seq * self.stride;
            if !self.zipf.is_empty() {
                value = self.zipf_value(value, seq);
            }
            if self.spec.skew_after.is_some_and(|after| seq >= after) {
                value *= self.spec.key_space.max(1);
            }
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

    /// `records` stamped records at 1000/s into a chained latency sink.
    fn rate_limited_into_latency_sink(records: u64) -> (SourceFunction, OperatorChain) {
        let spec = SourceSpec {
            records: Some(records),
            rate: Some(1000.0),
            batch: 100,
            record_size: 16,
            timestamps: true,
            ..SourceSpec::default()
        };
        let chain = OperatorChain::new(&[], ChainEnd::Sink(SinkKind::Latency), Vec::new(), 64);
        (SourceFunction::new(spec, 0, 1, Instant::now()), chain)
    }

    #[test]
    fn a_position_past_the_sources_records_is_not_restored() {
        let (mut source, _) = rate_limited_into_latency_sink(10);
        assert!(source.restore_position(10).is_ok(), "at its end: finished");
        assert_eq!(source.emitted(), 10);
        for past in [11, u64::MAX] {
            let e = source.restore_position(past).unwrap_err().to_string();
            assert!(e.contains(&format!("source position {past}")), "{e}");
            assert_eq!(source.emitted(), 10, "left where it was");
        }
    }

    #[test]
    fn a_rate_limited_source_waits_for_its_schedule() {
        let (mut source, mut chain) = rate_limited_into_latency_sink(10);
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
            SourceStatus::Idle => panic!("a busy source is never idle"),
        }
    }

    #[test]
    fn a_sink_chained_to_the_source_measures_how_late_records_left() {
        let (mut source, mut chain) = rate_limited_into_latency_sink(20);
        source.emit_batch(&mut chain).unwrap();
        // Records come due every millisecond; leave them waiting 8 ms.
        std::thread::sleep(Duration::from_millis(8));
        source.emit_batch(&mut chain).unwrap();
        let sink = chain.sink_result().unwrap();
        let latency = sink.latency.unwrap();
        assert_eq!(latency.len(), sink.records);
        // The first record due after the sleep began waited most of it.
        assert!(latency.max() >= 6_000_000, "max {} ns", latency.max());
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
    #[test]
    fn zipf_keys_favour_low_ranks_and_keep_values_unique() {
        for record_size in [8, 16] {
            let spec = SourceSpec {
                records: Some(100_000),
                record_size,
                key_space: 100,
                keys: KeyDistribution::Zipf { exponent: 1.0 },
                ..SourceSpec::default()
            };
            let mut chain = OperatorChain::new(
                &[super::super::OperatorSpec::KeyedAggregate {
                    kind: super::super::AggregateKind::Count,
                    key_space: 100,
                }],
                ChainEnd::Sink(SinkKind::Checksum),
                Vec::new(),
                64,
            );
            let mut source = SourceFunction::new(spec, 0, 1, Instant::now());
            while source.emit_batch(&mut chain).unwrap() == SourceStatus::MoreAvailable {}
            assert_eq!(chain.sink_result().unwrap().records, 100_000);
            let mut counts = [0u32; 100];
            for i in 0..100_000u64 {
                counts[(source.zipf_value(i, i) % 100) as usize] += 1;
            }
            // Zipf(1) over 100 keys: key 0 has 1/H(100) ≈ 19.3 % of the
            // records, key 9 a tenth of that, key 99 a hundredth.
            let share = |k: usize| f64::from(counts[k]) / 100_000.0;
            assert!((share(0) - 0.193).abs() < 0.01, "{}", share(0));
            assert!((share(9) / share(0) - 0.1).abs() < 0.02);
            assert!(counts[99] > 0 && counts[99] < counts[0] / 50);
            // Values stay unique: sequence * key_space + key.
            assert_ne!(source.zipf_value(1, 1), source.zipf_value(2, 2));
        }
    }
}
