//! Flink's `OperatorChain`: the operators of one task called directly, one
//! after the other, ending in the task's outputs or in a sink.

use hdrhistogram::Histogram;

pub(crate) use super::operator::VALUE_BATCH;
use super::operator::{self, Operator, OperatorFailure, OperatorSpec, RestoreError};
use super::record;
use crate::checkpoint::{StateError, StateReader, StateWriter};
use crate::network::{RecordWriter, WriteError};

/// Why a record could not go through the chain.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// An operator failed.
    #[error(transparent)]
    Operator(#[from] OperatorFailure),
    /// Writing to an output failed.
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// What a sink does with the records that reach it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinkKind {
    /// Counts records and sums their values (a checksum).
    Checksum,
    /// As `Checksum`, and records each timestamped record's latency in an
    /// HDR histogram.
    Latency,
    /// As `Checksum`, after waiting `wait_ns` per record, yielding the core
    /// meanwhile (the slow sink of Flink's checkpointing benchmarks, which
    /// builds back-pressure).
    Slow {
        /// Nanoseconds per record.
        wait_ns: u32,
    },
    /// As `Checksum`, and checks exactly-once delivery of what `sources`
    /// source subtasks emitted, `per_source` records each (values `s +
    /// i × sources`): counts lost, duplicated and out-of-order records
    /// (order per source subtask: meaningful where the path from each
    /// source subtask to this sink keeps order, as forward edges do). The
    /// seen-set is part of the sink's snapshot.
    Verify {
        /// Source parallelism.
        sources: u32,
        /// Records each source subtask emits.
        per_source: u64,
    },
}

/// What a verifying sink found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VerifyCounts {
    /// Distinct expected records seen.
    pub distinct: u64,
    /// Expected records never seen (expected − distinct; meaningful for a
    /// sink of parallelism 1).
    pub lost: u64,
    /// Records seen more than once, or not expected at all.
    pub duplicated: u64,
    /// Records that arrived after a later record of the same source subtask.
    pub out_of_order: u64,
}

/// The exactly-once checker of a [`SinkKind::Verify`] sink.
#[derive(Clone, Debug)]
struct Verifier {
    sources: u64,
    per_source: u64,
    /// One bit per expected record.
    seen: Vec<u64>,
    /// Per source subtask: the highest index seen, plus one.
    next: Vec<u64>,
    counts: VerifyCounts,
}

impl Verifier {
    fn new(sources: u32, per_source: u64) -> Self {
        let sources = u64::from(sources.max(1));
        let bits = sources.saturating_mul(per_source);
        Self {
            sources,
            per_source,
            seen: vec![0; bits.div_ceil(64) as usize],
            next: vec![0; sources as usize],
            counts: VerifyCounts::default(),
        }
    }

    #[inline]
    fn record(&mut self, value: u64) {
        let (source, index) = (value % self.sources, value / self.sources);
        if index >= self.per_source {
            self.counts.duplicated += 1;
            return;
        }
        let bit = source * self.per_source + index;
        let (word, mask) = ((bit / 64) as usize, 1u64 << (bit % 64));
        if self.seen[word] & mask != 0 {
            self.counts.duplicated += 1;
            return;
        }
        self.seen[word] |= mask;
        self.counts.distinct += 1;
        let next = &mut self.next[source as usize];
        if index < *next {
            self.counts.out_of_order += 1;
        } else {
            *next = index + 1;
        }
    }

    fn counts(&self) -> VerifyCounts {
        VerifyCounts {
            lost: self.sources * self.per_source - self.counts.distinct,
            ..self.counts
        }
    }

    fn snapshot(&self, w: &mut StateWriter) {
        w.u64s(&self.seen);
        w.u64s(&self.next);
        w.u64(self.counts.distinct);
        w.u64(self.counts.duplicated);
        w.u64(self.counts.out_of_order);
    }

    fn restore(&mut self, r: &mut StateReader<'_>) -> Result<(), StateError> {
        r.u64s_into("verifying sink's seen-set", &mut self.seen)?;
        r.u64s_into("verifying sink's positions", &mut self.next)?;
        self.counts.distinct = r.u64("verifying sink's count")?;
        self.counts.duplicated = r.u64("verifying sink's duplicates")?;
        self.counts.out_of_order = r.u64("verifying sink's out-of-order count")?;
        self.check_restored()
    }

    /// Whether restored state is one this verifier could have written: its
    /// count is the records its seen-set holds (no bit past the expected
    /// records) and no position is past a source's records.
    fn check_restored(&self) -> Result<(), StateError> {
        let bits = self.sources * self.per_source;
        let stray = match (self.seen.last(), bits % 64) {
            (Some(&last), used) if used > 0 => last >> used,
            _ => 0,
        };
        let held: u64 = self.seen.iter().map(|w| u64::from(w.count_ones())).sum();
        let mismatch = |what: String| Err(StateError::Mismatch(what));
        if stray != 0 {
            return mismatch(format!(
                "the verifying sink's seen-set marks records past the {bits} expected"
            ));
        }
        if held != self.counts.distinct {
            return mismatch(format!(
                "the verifying sink's count {} is not the {held} records its seen-set holds",
                self.counts.distinct
            ));
        }
        if let Some(next) = self.next.iter().find(|&&n| n > self.per_source) {
            return mismatch(format!(
                "a verifying sink's source position {next} is past the source's {} records",
                self.per_source
            ));
        }
        Ok(())
    }
}

/// The end of a chain: a sink, or the task's record writers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChainEnd {
    /// The chain ends in a sink.
    Sink(SinkKind),
    /// The chain ends in the task's outputs (one writer per outgoing edge).
    Outputs,
}

/// What a sink counted.
#[derive(Clone, Debug)]
pub struct SinkResult {
    /// Records that reached the sink.
    pub records: u64,
    /// Wrapping sum of their values.
    pub checksum: u64,
    /// Latencies in nanoseconds, when measured.
    pub latency: Option<Histogram<u64>>,
    /// What a verifying sink found.
    pub verify: Option<VerifyCounts>,
}

/// The sink at the end of a chain.
#[derive(Debug)]
struct Sink {
    records: u64,
    checksum: u64,
    latency: Option<Histogram<u64>>,
    verify: Option<Box<Verifier>>,
    /// A slow sink's wait per record.
    wait_ns: u32,
    /// The clock, read once per input buffer by the task (never per record).
    now_ns: u64,
}

impl Sink {
    fn new(kind: SinkKind) -> Self {
        let latency = (kind == SinkKind::Latency).then(|| {
            // 1 ns .. 100 s at 3 significant digits: sized here, never grows.
            Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
        });
        let verify = match kind {
            SinkKind::Verify {
                sources,
                per_source,
            } => Some(Box::new(Verifier::new(sources, per_source))),
            _ => None,
        };
        Self {
            records: 0,
            checksum: 0,
            latency,
            verify,
            wait_ns: match kind {
                SinkKind::Slow { wait_ns } => wait_ns,
                _ => 0,
            },
            now_ns: 0,
        }
    }

    #[inline(always)]
    fn accept(&mut self, input: &[u8]) {
        if self.wait_ns != 0 {
            slow(self.wait_ns, 1);
        }
        self.records += 1;
        self.checksum = self.checksum.wrapping_add(record::value(input));
        if let Some(verify) = &mut self.verify {
            verify.record(record::value(input));
        }
        if let Some(histogram) = &mut self.latency {
            if let Some(emitted) = record::timestamp(input).filter(|&t| t != 0) {
                histogram.saturating_record(self.now_ns.saturating_sub(emitted).max(1));
            }
        }
    }

    /// `accept` for a batch of 8-byte records (which carry no timestamp).
    #[inline(always)]
    fn accept_values(&mut self, values: &[u64]) {
        if self.wait_ns != 0 {
            slow(self.wait_ns, values.len());
        }
        self.records += values.len() as u64;
        self.checksum = values
            .iter()
            .fold(self.checksum, |sum, &v| sum.wrapping_add(v));
        if let Some(verify) = &mut self.verify {
            values.iter().for_each(|&v| verify.record(v));
        }
    }
}

/// Waits `wait_ns` for each of `records` records, yielding the core.
#[cold]
fn slow(wait_ns: u32, records: usize) {
    let wait = std::time::Duration::from_nanos(u64::from(wait_ns) * records as u64);
    let start = std::time::Instant::now();
    while start.elapsed() < wait {
        std::thread::yield_now();
    }
}

/// The operators of a task and where their output goes.
#[derive(Debug)]
pub struct OperatorChain {
    operators: Vec<Operator>,
    sink: Option<Sink>,
    writers: Vec<RecordWriter>,
}

impl OperatorChain {
    /// Instantiates `specs` for records of at most `max_record_size` bytes,
    /// ending in a sink or in `writers`.
    pub fn new(
        specs: &[OperatorSpec],
        end: ChainEnd,
        writers: Vec<RecordWriter>,
        max_record_size: usize,
    ) -> Self {
        Self {
            operators: specs
                .iter()
                .map(|&s| Operator::new(s, max_record_size))
                .collect(),
            sink: match end {
                ChainEnd::Sink(kind) => Some(Sink::new(kind)),
                ChainEnd::Outputs => None,
            },
            writers,
        }
    }

    /// Tells a latency sink the time (ns since the job's epoch) to measure
    /// against until the next call; call once per input buffer, or per
    /// source batch when the sink is chained to the source.
    #[inline]
    pub fn set_clock(&mut self, now_ns: u64) {
        if let Some(sink) = &mut self.sink {
            sink.now_ns = now_ns;
        }
    }

    /// Whether the chain ends in a latency sink (so the task must read the clock).
    pub fn measures_latency(&self) -> bool {
        self.sink.as_ref().is_some_and(|s| s.latency.is_some())
    }

    /// Pushes one record through the chain.
    #[inline]
    pub fn process(&mut self, input: &[u8]) -> Result<(), ChainError> {
        let Self {
            operators,
            sink,
            writers,
        } = self;
        operator::push(
            operators,
            input,
            &mut |out: &[u8]| -> Result<(), ChainError> {
                if let Some(sink) = sink {
                    sink.accept(out);
                    return Ok(());
                }
                let key = record::value(out);
                for writer in writers.iter_mut() {
                    writer.emit(key, out)?;
                }
                Ok(())
            },
        )
    }

    /// Pushes a batch of 8-byte records, given as their values (at most
    /// [`VALUE_BATCH`](Self::VALUE_BATCH)), through the chain: one loop per
    /// operator, then the sink or the writers take the batch at once. The
    /// result is the same as [`process`](Self::process) on each record.
    #[inline]
    pub fn process_values(&mut self, values: &mut [u64]) -> Result<(), ChainError> {
        let Self {
            operators,
            sink,
            writers,
        } = self;
        operator::push_values(
            operators,
            values,
            &mut |out: &[u64]| -> Result<(), ChainError> {
                if let Some(sink) = sink {
                    sink.accept_values(out);
                    return Ok(());
                }
                for writer in writers.iter_mut() {
                    writer.emit_values(out)?;
                }
                Ok(())
            },
        )
    }

    /// The largest batch [`process_values`](Self::process_values) takes.
    pub const VALUE_BATCH: usize = VALUE_BATCH;

    /// The task's record writers.
    pub fn writers(&mut self) -> &mut [RecordWriter] {
        &mut self.writers
    }

    /// The task's record writers, to inspect.
    pub fn writers_ref(&self) -> &[RecordWriter] {
        &self.writers
    }

    /// Whether every output could take a record without waiting (a sink's
    /// always can).
    #[inline]
    pub fn outputs_available(&self) -> bool {
        self.writers.iter().all(|w| w.partition().is_available())
    }

    /// What the sink counted, if the chain ends in one.
    pub fn sink_result(&self) -> Option<SinkResult> {
        self.sink.as_ref().map(|s| SinkResult {
            records: s.records,
            checksum: s.checksum,
            latency: s.latency.clone(),
            verify: s.verify.as_ref().map(|v| v.counts()),
        })
    }

    /// Arms failures injected for execution attempt `attempt`.
    pub fn set_attempt(&mut self, attempt: u32) {
        self.operators
            .iter_mut()
            .for_each(|o| o.set_attempt(attempt));
    }

    /// Writes every operator's state, then the sink's (count, checksum and
    /// a verifying sink's seen-set), in chain order.
    pub fn snapshot(&mut self, w: &mut StateWriter) -> Result<(), OperatorFailure> {
        for op in &mut self.operators {
            op.snapshot(w)?;
        }
        if let Some(sink) = &self.sink {
            w.u64(sink.records);
            w.u64(sink.checksum);
            if let Some(verify) = &sink.verify {
                verify.snapshot(w);
            }
        }
        Ok(())
    }

    /// Reads what [`snapshot`](Self::snapshot) wrote; a sink count past
    /// `max_sink_records` (the job's bound, if it has one) is state that is
    /// not this job's.
    pub fn restore(
        &mut self,
        r: &mut StateReader<'_>,
        max_sink_records: Option<u64>,
    ) -> Result<(), RestoreError> {
        for op in &mut self.operators {
            op.restore(r)?;
        }
        if let Some(sink) = &mut self.sink {
            sink.records = r.u64("sink count")?;
            if let Some(max) = max_sink_records.filter(|&max| sink.records > max) {
                return Err(StateError::Mismatch(format!(
                    "sink count {} is past the {max} records the job's sources can deliver",
                    sink.records
                ))
                .into());
            }
            sink.checksum = r.u64("sink checksum")?;
            if let Some(verify) = &mut sink.verify {
                verify.restore(r)?;
            }
        }
        Ok(())
    }

    /// At end of input, before the outputs end (Flink's `finish` of each
    /// operator).
    pub fn end_input(&self) -> Result<(), OperatorFailure> {
        self.operators.iter().try_for_each(|o| o.end_input())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_sink_count_past_the_jobs_records_is_not_restored() {
        let mut chain = OperatorChain::new(&[], ChainEnd::Sink(SinkKind::Checksum), Vec::new(), 8);
        for v in 0..10u64 {
            chain.process(&v.to_le_bytes()).unwrap();
        }
        let mut w = StateWriter(Vec::new());
        chain.snapshot(&mut w).unwrap();
        let restore = |max| {
            let mut into =
                OperatorChain::new(&[], ChainEnd::Sink(SinkKind::Checksum), Vec::new(), 8);
            into.restore(&mut StateReader::new(&w.0), max)
                .map(|()| into.sink_result().unwrap().records)
        };
        assert_eq!(restore(None).unwrap(), 10);
        assert_eq!(restore(Some(10)).unwrap(), 10);
        let err = restore(Some(9)).unwrap_err().to_string();
        assert!(
            err.contains("sink count 10 is past the 9 records the job's sources can deliver"),
            "{err}"
        );
    }

    #[test]
    fn a_verifier_restores_only_state_it_could_have_written() {
        let mut v = Verifier::new(2, 10);
        for value in [0, 1, 2, 3, 5] {
            v.record(value);
        }
        let mut w = StateWriter(Vec::new());
        v.snapshot(&mut w);
        let restore = |bytes: &[u8]| Verifier::new(2, 10).restore(&mut StateReader::new(bytes));
        restore(&w.0).unwrap();
        // The state is seen-set, positions, then the three counts: forge
        // the count of distinct records (which `lost` subtracts from the
        // expected 20) past what the seen-set holds.
        let forged = |at_end: usize, value: u64| {
            let mut bytes = w.0.clone();
            let at = bytes.len() - at_end;
            bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
            bytes
        };
        let err = restore(&forged(24, 21)).unwrap_err().to_string();
        assert!(err.contains("count 21 is not the 5 records"), "{err}");
        let mut stray = Verifier::new(2, 10);
        stray.seen[0] |= 1 << 40;
        stray.counts.distinct = 1;
        let mut w = StateWriter(Vec::new());
        stray.snapshot(&mut w);
        let err = restore(&w.0).unwrap_err().to_string();
        assert!(err.contains("past the 20 expected"), "{err}");
        let mut ahead = Verifier::new(2, 10);
        ahead.next[1] = 11;
        let mut w = StateWriter(Vec::new());
        ahead.snapshot(&mut w);
        let err = restore(&w.0).unwrap_err().to_string();
        assert!(err.contains("position 11 is past the source's 10"), "{err}");
    }
    use crate::streaming::{FilterFunction, MapFunction};

    #[test]
    fn a_chain_ending_in_a_sink_counts_and_checksums() {
        let specs = [
            OperatorSpec::Map(MapFunction::MultiplyByTwo),
            OperatorSpec::Filter(FilterFunction::OneIn(4)),
        ];
        let mut chain =
            OperatorChain::new(&specs, ChainEnd::Sink(SinkKind::Checksum), Vec::new(), 8);
        for v in 0..10u64 {
            chain.process(&v.to_le_bytes()).unwrap();
        }
        // 2v divisible by 4 for v in {0, 2, 4, 6, 8}: values 0, 4, 8, 12, 16.
        let result = chain.sink_result().unwrap();
        assert_eq!((result.records, result.checksum), (5, 40));
        assert!(result.latency.is_none());

        let mut batch =
            OperatorChain::new(&specs, ChainEnd::Sink(SinkKind::Checksum), Vec::new(), 8);
        batch
            .process_values(&mut (0..10u64).collect::<Vec<_>>())
            .unwrap();
        let result = batch.sink_result().unwrap();
        assert_eq!((result.records, result.checksum), (5, 40));
    }

    #[test]
    fn a_latency_sink_measures_against_the_buffer_clock() {
        let mut chain = OperatorChain::new(&[], ChainEnd::Sink(SinkKind::Latency), Vec::new(), 16);
        assert!(chain.measures_latency());
        let mut input = [0u8; 16];
        record::set_value(&mut input, 1);
        record::set_timestamp(&mut input, 1_000);
        chain.set_clock(6_000);
        chain.process(&input).unwrap();
        chain.process(&[0u8; 8]).unwrap(); // no timestamp: counted, not timed
        let result = chain.sink_result().unwrap();
        assert_eq!(result.records, 2);
        let latency = result.latency.unwrap();
        assert_eq!(latency.len(), 1);
        assert!(latency.equivalent(latency.max(), 5_000));
    }
}
