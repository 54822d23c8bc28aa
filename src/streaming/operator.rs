//! Operators: what a vertex does to each record, described by value
//! ([`OperatorSpec`], carried in deployment descriptors) and instantiated
//! per subtask ([`Operator`], with every buffer it needs sized at setup).
//!
//! Dispatch is a `match` on a small enum, not a virtual call. Records of
//! exactly 8 bytes (Flink's `Long`s, the benchmarks' records) go through the
//! chain a batch of values at a time ([`push_values`]): each operator runs
//! one tight loop over the batch, so dispatch is paid per batch and the loops
//! vectorize. Records of any other size go one at a time ([`push`]).

use super::record;
use crate::checkpoint::{StateError, StateReader, StateWriter};
use crate::network::serde::copy_record;

/// What a map does to a record's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapFunction {
    /// Passes the record on unchanged (a copy, as a Flink map returns a new object).
    Identity,
    /// `value * 2` (flink-benchmarks' `MultiplyByTwo`).
    MultiplyByTwo,
    /// `value + 1`.
    Increment,
}

impl MapFunction {
    #[inline(always)]
    fn apply(self, value: u64) -> u64 {
        match self {
            MapFunction::Identity => value,
            MapFunction::MultiplyByTwo => value.wrapping_mul(2),
            MapFunction::Increment => value.wrapping_add(1),
        }
    }

    /// `apply` over a batch, the `match` hoisted out of the loop.
    #[inline(always)]
    fn apply_all(self, values: &mut [u64]) {
        match self {
            MapFunction::Identity => {}
            MapFunction::MultiplyByTwo => values.iter_mut().for_each(|v| *v = v.wrapping_mul(2)),
            MapFunction::Increment => values.iter_mut().for_each(|v| *v = v.wrapping_add(1)),
        }
    }
}

/// Which records a filter keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterFunction {
    /// Records with an even value.
    EvenValues,
    /// One record in `n` (value divisible by `n`).
    OneIn(u64),
}

impl FilterFunction {
    #[inline(always)]
    fn keeps(self, value: u64) -> bool {
        match self {
            FilterFunction::EvenValues => value % 2 == 0,
            FilterFunction::OneIn(n) => n != 0 && value % n == 0,
        }
    }
}

/// What a flat-map makes of one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlatMapFunction {
    /// `n` records with values `value * n + i` for `i` in `0..n`.
    Explode(u32),
}

/// The running aggregate a keyed aggregate keeps per key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggregateKind {
    /// Records seen per key.
    Count,
    /// Sum of values per key.
    Sum,
}

/// An operator that failed while processing a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("operator {operator} failed after {records} records")]
pub struct OperatorFailure {
    /// Which operator.
    pub operator: &'static str,
    /// Records it processed before failing.
    pub records: u64,
}

/// An operator as a deployment descriptor carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OperatorSpec {
    /// One record in, one out.
    Map(MapFunction),
    /// One record in, zero or one out.
    Filter(FilterFunction),
    /// One record in, any number out.
    FlatMap(FlatMapFunction),
    /// Keyed by `value % key_space`; emits the key's updated aggregate as the
    /// record's value (like Flink's keyed `sum`/`reduce`).
    KeyedAggregate {
        /// Count or sum.
        kind: AggregateKind,
        /// Distinct keys; the state is a dense table of this size.
        key_space: u32,
    },
    /// Passes records on, then fails on record `records + 1`: the failing
    /// operator of failure tests (and of fault-injection runs).
    FailAfter {
        /// Records passed on before failing.
        records: u64,
    },
    /// Fails once, at a seeded point, in one execution attempt only (the
    /// failing operator of exactly-once tests: a restarted job passes it).
    FailOnce {
        /// Where it fails.
        point: FailurePoint,
        /// Processing: after this many records in total (restored with the
        /// state, so the point is a position in the stream); snapshot: in
        /// the `at`-th snapshot of the attempt (from 1).
        at: u64,
        /// The execution attempt it fails in (0: the first deployment).
        attempt: u32,
    },
}

/// Where a [`OperatorSpec::FailOnce`] fails (the points Flink's
/// exactly-once tests inject failures at).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailurePoint {
    /// While processing a record.
    Processing,
    /// In a checkpoint's synchronous snapshot.
    Snapshot,
    /// While restoring state.
    Restore,
    /// At end of input (Flink's `close`/`finish`).
    Close,
}

/// An operator of one subtask with its state and scratch space.
#[derive(Debug)]
pub(crate) enum Operator {
    Map {
        function: MapFunction,
        scratch: Vec<u8>,
    },
    Filter {
        function: FilterFunction,
    },
    FlatMap {
        function: FlatMapFunction,
        scratch: Vec<u8>,
    },
    KeyedAggregate {
        kind: AggregateKind,
        state: Vec<u64>,
        scratch: Vec<u8>,
    },
    FailAfter {
        limit: u64,
        seen: u64,
    },
    FailOnce {
        point: FailurePoint,
        at: u64,
        attempt: u32,
        /// Fails in this attempt (set by the chain).
        armed: bool,
        seen: u64,
        snapshots: u64,
    },
}

impl Operator {
    /// Instantiates `spec` for records of at most `max_record_size` bytes.
    pub(crate) fn new(spec: OperatorSpec, max_record_size: usize) -> Self {
        let scratch = || Vec::with_capacity(max_record_size);
        match spec {
            OperatorSpec::Map(function) => Operator::Map {
                function,
                scratch: scratch(),
            },
            OperatorSpec::Filter(function) => Operator::Filter { function },
            OperatorSpec::FlatMap(function) => Operator::FlatMap {
                function,
                scratch: scratch(),
            },
            OperatorSpec::KeyedAggregate { kind, key_space } => Operator::KeyedAggregate {
                kind,
                state: vec![0; key_space.max(1) as usize],
                scratch: scratch(),
            },
            OperatorSpec::FailAfter { records } => Operator::FailAfter {
                limit: records,
                seen: 0,
            },
            OperatorSpec::FailOnce { point, at, attempt } => Operator::FailOnce {
                point,
                at,
                attempt,
                armed: false,
                seen: 0,
                snapshots: 0,
            },
        }
    }
}

impl Operator {
    /// Arms a [`OperatorSpec::FailOnce`] in its execution attempt.
    pub(crate) fn set_attempt(&mut self, current: u32) {
        if let Operator::FailOnce { attempt, armed, .. } = self {
            *armed = *attempt == current;
        }
    }

    fn fails_at(&self, at_point: FailurePoint) -> bool {
        matches!(self, Operator::FailOnce { point, armed: true, .. } if *point == at_point)
    }

    /// Writes the operator's state (Flink's `snapshotState`): a keyed
    /// aggregate's table, a failing operator's position.
    pub(crate) fn snapshot(&mut self, w: &mut StateWriter) -> Result<(), OperatorFailure> {
        match self {
            Operator::KeyedAggregate { state, .. } => w.u64s(state),
            Operator::FailOnce {
                seen,
                snapshots,
                at,
                ..
            } => {
                *snapshots += 1;
                let (seen, snapshots, at) = (*seen, *snapshots, *at);
                if self.fails_at(FailurePoint::Snapshot) && snapshots == at {
                    return Err(fail_once(seen));
                }
                w.u64(seen);
            }
            _ => {}
        }
        Ok(())
    }

    /// Reads what [`snapshot`](Self::snapshot) wrote (Flink's
    /// `initializeState` on restore).
    pub(crate) fn restore(&mut self, r: &mut StateReader<'_>) -> Result<(), RestoreError> {
        if self.fails_at(FailurePoint::Restore) {
            return Err(RestoreError::Operator(fail_once(0)));
        }
        match self {
            Operator::KeyedAggregate { state, .. } => {
                r.u64s_into("keyed aggregate table", state)?
            }
            Operator::FailOnce { seen, .. } => *seen = r.u64("failing operator position")?,
            _ => {}
        }
        Ok(())
    }

    /// At end of input (Flink's `finish`).
    pub(crate) fn end_input(&self) -> Result<(), OperatorFailure> {
        match self {
            Operator::FailOnce { seen, .. } if self.fails_at(FailurePoint::Close) => {
                Err(fail_once(*seen))
            }
            _ => Ok(()),
        }
    }
}

/// Why restoring an operator failed.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The state does not decode or fit.
    #[error(transparent)]
    State(#[from] StateError),
    /// The operator failed (an injected failure).
    #[error(transparent)]
    Operator(#[from] OperatorFailure),
}

/// Pushes `input` through `ops`, handing what comes out of the last one to
/// `emit`. One-in-one-out operators run in a loop (no call per operator, so
/// the whole chain inlines into the task's record loop); only a flat-map
/// recurses, once per record it emits.
#[inline(always)]
pub(crate) fn push<E: From<OperatorFailure>>(
    ops: &mut [Operator],
    input: &[u8],
    emit: &mut impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), E> {
    let mut ops = ops;
    let mut current = input;
    loop {
        let Some((op, rest)) = std::mem::take(&mut ops).split_first_mut() else {
            return emit(current);
        };
        ops = rest;
        match op {
            Operator::Map { function, scratch } => {
                let value = function.apply(record::value(current));
                copy_into(scratch, current);
                record::set_value(scratch, value);
                current = scratch;
            }
            Operator::Filter { function } => {
                if !function.keeps(record::value(current)) {
                    return Ok(());
                }
            }
            Operator::FlatMap {
                function: FlatMapFunction::Explode(n),
                scratch,
            } => return explode(*n, scratch, current, ops, emit),
            Operator::KeyedAggregate {
                kind,
                state,
                scratch,
            } => {
                let value = record::value(current);
                let key = (value % state.len() as u64) as usize;
                let slot = &mut state[key];
                *slot = match kind {
                    AggregateKind::Count => slot.wrapping_add(1),
                    AggregateKind::Sum => slot.wrapping_add(value),
                };
                let aggregate = *slot;
                copy_into(scratch, current);
                record::set_value(scratch, aggregate);
                current = scratch;
            }
            Operator::FailAfter { limit, seen } => {
                if *seen == *limit {
                    return Err(OperatorFailure {
                        operator: "fail-after",
                        records: *seen,
                    }
                    .into());
                }
                *seen += 1;
            }
            Operator::FailOnce {
                point,
                armed,
                at,
                seen,
                ..
            } => {
                if *armed && *point == FailurePoint::Processing && *seen == *at {
                    return Err(fail_once(*seen).into());
                }
                *seen += 1;
            }
        }
    }
}

fn fail_once(records: u64) -> OperatorFailure {
    OperatorFailure {
        operator: "fail-once",
        records,
    }
}

/// A flat-map's records through the rest of the chain. Kept out of line so
/// that `push` is not itself recursive and inlines into the task's loop.
#[inline(never)]
fn explode<E: From<OperatorFailure>>(
    n: u32,
    scratch: &mut Vec<u8>,
    input: &[u8],
    rest: &mut [Operator],
    emit: &mut impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), E> {
    let base = record::value(input).wrapping_mul(u64::from(n));
    copy_into(scratch, input);
    for i in 0..u64::from(n) {
        record::set_value(scratch, base.wrapping_add(i));
        push(rest, scratch, emit)?;
    }
    Ok(())
}

/// Values per batch on the 8-byte-record path: 2 KiB, small enough to stay
/// in L1 between operators, large enough that per-batch costs vanish.
pub(crate) const VALUE_BATCH: usize = 256;

/// Pushes a batch of 8-byte records (their values; `values.len() <=
/// VALUE_BATCH`) through `ops`, handing what comes out of the last one to
/// `emit` as one batch. Each operator is one loop over the batch; a filter
/// compacts it in place; a flat-map refills fresh batches for the rest of the
/// chain. A failing operator first lets the records before the failing one
/// through, as the record-at-a-time path does.
#[inline(always)]
pub(crate) fn push_values<E: From<OperatorFailure>>(
    ops: &mut [Operator],
    values: &mut [u64],
    emit: &mut impl FnMut(&[u64]) -> Result<(), E>,
) -> Result<(), E> {
    let mut ops = ops;
    let mut len = values.len();
    let mut failure = None;
    while len > 0 {
        let Some((op, rest)) = std::mem::take(&mut ops).split_first_mut() else {
            emit(&values[..len])?;
            break;
        };
        ops = rest;
        let current = &mut values[..len];
        match op {
            Operator::Map { function, .. } => function.apply_all(current),
            Operator::Filter { function } => len = retain(current, |v| function.keeps(v)),
            Operator::FlatMap {
                function: FlatMapFunction::Explode(n),
                ..
            } => {
                explode_values(*n, current, ops, emit)?;
                break;
            }
            Operator::KeyedAggregate { kind, state, .. } => {
                let keys = state.len() as u64;
                for value in current.iter_mut() {
                    let slot = &mut state[(*value % keys) as usize];
                    *slot = match kind {
                        AggregateKind::Count => slot.wrapping_add(1),
                        AggregateKind::Sum => slot.wrapping_add(*value),
                    };
                    *value = *slot;
                }
            }
            Operator::FailAfter { limit, seen } => {
                let passed = (*limit - *seen).min(len as u64);
                *seen += passed;
                if passed < len as u64 {
                    len = passed as usize;
                    failure = Some(OperatorFailure {
                        operator: "fail-after",
                        records: *seen,
                    });
                }
            }
            Operator::FailOnce {
                point,
                armed,
                at,
                seen,
                ..
            } => {
                let passed = if *armed && *point == FailurePoint::Processing && *seen <= *at {
                    (*at - *seen).min(len as u64)
                } else {
                    len as u64
                };
                *seen += passed;
                if passed < len as u64 {
                    len = passed as usize;
                    failure = Some(fail_once(*seen));
                }
            }
        }
    }
    match failure {
        Some(failure) => Err(failure.into()),
        None => Ok(()),
    }
}

/// Keeps the values `keep` accepts, in order, at the front; returns how many.
#[inline(always)]
fn retain(values: &mut [u64], keep: impl Fn(u64) -> bool) -> usize {
    let mut kept = 0;
    for i in 0..values.len() {
        let value = values[i];
        values[kept] = value;
        kept += usize::from(keep(value));
    }
    kept
}

/// A flat-map over a batch: its output refills batches of at most
/// [`VALUE_BATCH`] for the rest of the chain. Out of line, like `explode`.
#[inline(never)]
fn explode_values<E: From<OperatorFailure>>(
    n: u32,
    input: &[u64],
    rest: &mut [Operator],
    emit: &mut impl FnMut(&[u64]) -> Result<(), E>,
) -> Result<(), E> {
    let mut out = [0u64; VALUE_BATCH];
    let mut len = 0;
    for &value in input {
        let base = value.wrapping_mul(u64::from(n));
        for i in 0..u64::from(n) {
            out[len] = base.wrapping_add(i);
            len += 1;
            if len == VALUE_BATCH {
                push_values(rest, &mut out, emit)?;
                len = 0;
            }
        }
    }
    push_values(rest, &mut out[..len], emit)
}

/// Copies a record into an operator's scratch buffer (capacity reserved at
/// setup for the largest record, so this never allocates). Records of one
/// job mostly share a size, so the steady state is a same-length copy, done
/// with the serializer's small-record copy rather than a `memcpy` call.
#[inline(always)]
fn copy_into(scratch: &mut Vec<u8>, input: &[u8]) {
    if scratch.len() == input.len() {
        copy_record(scratch, input);
    } else {
        scratch.clear();
        scratch.extend_from_slice(input);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn run(specs: &[OperatorSpec], values: &[u64]) -> Vec<u64> {
        let mut ops: Vec<_> = specs.iter().map(|&s| Operator::new(s, 16)).collect();
        let mut out = Vec::new();
        for &v in values {
            push::<OperatorFailure>(&mut ops, &v.to_le_bytes(), &mut |r| {
                out.push(record::value(r));
                Ok(())
            })
            .unwrap();
        }
        out
    }

    /// The same records through the batch path, in batches of `batch`.
    fn run_values(specs: &[OperatorSpec], values: &[u64], batch: usize) -> Vec<u64> {
        let mut ops: Vec<_> = specs.iter().map(|&s| Operator::new(s, 16)).collect();
        let mut out = Vec::new();
        for chunk in values.chunks(batch) {
            push_values::<OperatorFailure>(&mut ops, &mut chunk.to_vec(), &mut |b| {
                assert!(!b.is_empty() && b.len() <= VALUE_BATCH);
                out.extend_from_slice(b);
                Ok(())
            })
            .unwrap();
        }
        out
    }

    #[test]
    fn each_operator_and_a_chain_of_them() {
        let cases: &[(&[OperatorSpec], &[u64], &[u64])] = &[
            (&[], &[1, 2], &[1, 2]),
            (
                &[OperatorSpec::Map(MapFunction::MultiplyByTwo)],
                &[1, 5],
                &[2, 10],
            ),
            (&[OperatorSpec::Map(MapFunction::Increment)], &[1], &[2]),
            (&[OperatorSpec::Map(MapFunction::Identity)], &[7], &[7]),
            (
                &[OperatorSpec::Filter(FilterFunction::EvenValues)],
                &[1, 2, 3, 4],
                &[2, 4],
            ),
            (
                &[OperatorSpec::Filter(FilterFunction::OneIn(3))],
                &[1, 3, 6, 7],
                &[3, 6],
            ),
            (
                &[OperatorSpec::FlatMap(FlatMapFunction::Explode(3))],
                &[2],
                &[6, 7, 8],
            ),
            (
                &[OperatorSpec::KeyedAggregate {
                    kind: AggregateKind::Count,
                    key_space: 2,
                }],
                &[1, 2, 3, 5, 4],
                &[1, 1, 2, 3, 2],
            ),
            (
                &[OperatorSpec::KeyedAggregate {
                    kind: AggregateKind::Sum,
                    key_space: 2,
                }],
                &[1, 2, 3, 4],
                &[1, 2, 4, 6],
            ),
            (
                &[
                    OperatorSpec::FlatMap(FlatMapFunction::Explode(2)),
                    OperatorSpec::Filter(FilterFunction::EvenValues),
                    OperatorSpec::Map(MapFunction::Increment),
                ],
                &[1, 2],
                &[3, 5],
            ),
        ];
        for (specs, input, expected) in cases {
            assert_eq!(run(specs, input), *expected, "{specs:?}");
            for batch in [1, 2, VALUE_BATCH] {
                assert_eq!(run_values(specs, input, batch), *expected, "{specs:?}");
            }
        }
    }

    #[test]
    fn the_batch_path_matches_the_record_path() {
        let specs = [
            OperatorSpec::Map(MapFunction::Increment),
            OperatorSpec::FlatMap(FlatMapFunction::Explode(3)),
            OperatorSpec::Filter(FilterFunction::OneIn(3)),
            OperatorSpec::KeyedAggregate {
                kind: AggregateKind::Sum,
                key_space: 7,
            },
            OperatorSpec::FlatMap(FlatMapFunction::Explode(200)),
            OperatorSpec::Map(MapFunction::MultiplyByTwo),
        ];
        let input: Vec<u64> = (0..1000).collect();
        let expected = run(&specs, &input);
        assert_eq!(expected.len(), 1000 * 200);
        assert_eq!(run_values(&specs, &input, VALUE_BATCH), expected);
        assert_eq!(run_values(&specs, &input, 37), expected);
    }

    #[test]
    fn fail_after_on_a_batch_passes_the_records_before_the_failing_one() {
        let mut ops = vec![
            Operator::new(OperatorSpec::Filter(FilterFunction::EvenValues), 8),
            Operator::new(OperatorSpec::FailAfter { records: 3 }, 8),
        ];
        let mut passed = Vec::new();
        let mut values = [0u64, 1, 2, 3, 4, 5, 6, 7, 8];
        let err = push_values(&mut ops, &mut values, &mut |b: &[u64]| {
            passed.extend_from_slice(b);
            Ok::<_, OperatorFailure>(())
        })
        .unwrap_err();
        assert_eq!(passed, [0, 2, 4]);
        assert_eq!(err.records, 3);
    }

    #[test]
    fn fail_after_passes_records_then_fails() {
        let mut ops = vec![Operator::new(OperatorSpec::FailAfter { records: 2 }, 8)];
        let mut passed = 0;
        let mut emit = |_: &[u8]| -> Result<(), OperatorFailure> {
            passed += 1;
            Ok(())
        };
        assert!(push(&mut ops, &[0; 8], &mut emit).is_ok());
        assert!(push(&mut ops, &[0; 8], &mut emit).is_ok());
        let err = push(&mut ops, &[0; 8], &mut emit).unwrap_err();
        assert_eq!(
            err.to_string(),
            "operator fail-after failed after 2 records"
        );
        assert_eq!(passed, 2);
    }

    #[test]
    fn operators_keep_the_rest_of_the_record() {
        let mut ops = vec![Operator::new(OperatorSpec::Map(MapFunction::Increment), 32)];
        let mut input = [9u8; 24];
        record::set_value(&mut input, 41);
        record::set_timestamp(&mut input, 1234);
        push::<OperatorFailure>(&mut ops, &input, &mut |r| {
            assert_eq!(r.len(), 24);
            assert_eq!(record::value(r), 42);
            assert_eq!(record::timestamp(r), Some(1234));
            assert_eq!(&r[16..], &[9u8; 8]);
            Ok(())
        })
        .unwrap();
    }
}
