//! Stream tasks and their operators.

mod operator;
pub mod record;

pub use operator::{AggregateKind, FilterFunction, FlatMapFunction, MapFunction, OperatorSpec};
