//! Flink's `OperatorChain`: the operators of one task called directly, one
//! after the other, ending in the task's outputs or in a sink.

use hdrhistogram::Histogram;

pub(crate) use super::operator::VALUE_BATCH;
use super::operator::{self, Operator, OperatorFailure, OperatorSpec};
use super::record;
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
}

/// The sink at the end of a chain.
#[derive(Debug)]
struct Sink {
    records: u64,
    checksum: u64,
    latency: Option<Histogram<u64>>,
    /// The clock, read once per input buffer by the task (never per record).
    now_ns: u64,
}

impl Sink {
    fn new(kind: SinkKind) -> Self {
        let latency = (kind == SinkKind::Latency).then(|| {
            // 1 ns .. 100 s at 3 significant digits: sized here, never grows.
            Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
        });
        Self {
            records: 0,
            checksum: 0,
            latency,
            now_ns: 0,
        }
    }

    #[inline(always)]
    fn accept(&mut self, input: &[u8]) {
        self.records += 1;
        self.checksum = self.checksum.wrapping_add(record::value(input));
        if let Some(histogram) = &mut self.latency {
            if let Some(emitted) = record::timestamp(input).filter(|&t| t != 0) {
                histogram.saturating_record(self.now_ns.saturating_sub(emitted).max(1));
            }
        }
    }

    /// `accept` for a batch of 8-byte records (which carry no timestamp).
    #[inline(always)]
    fn accept_values(&mut self, values: &[u64]) {
        self.records += values.len() as u64;
        self.checksum = values
            .iter()
            .fold(self.checksum, |sum, &v| sum.wrapping_add(v));
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

    /// What the sink counted, if the chain ends in one.
    pub fn sink_result(&self) -> Option<SinkResult> {
        self.sink.as_ref().map(|s| SinkResult {
            records: s.records,
            checksum: s.checksum,
            latency: s.latency.clone(),
        })
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
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
