//! Stream tasks and their operators.

mod chain;
mod input;
mod operator;
pub mod record;
mod source;
mod stream_task;

pub use chain::{ChainEnd, ChainError, OperatorChain, SinkKind, SinkResult};
pub use input::{InputError, InputProcessor, InputStatus};
pub use operator::{
    AggregateKind, FilterFunction, FlatMapFunction, MapFunction, OperatorFailure, OperatorSpec,
};
pub use source::{KeyDistribution, SourceFunction, SourceSpec, SourceStatus};
pub use stream_task::{
    BufferTimeout, StreamTask, StreamTaskConfig, StreamTaskError, StreamTaskKind, StreamTaskResult,
};
