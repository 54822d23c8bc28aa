//! Stream tasks and their operators.

mod barrier_handler;
mod chain;
mod input;
mod operator;
pub mod record;
mod source;
mod stream_task;
mod unaligned;

pub use barrier_handler::{BarrierAction, CheckpointBarrierHandler};
pub use chain::{ChainEnd, ChainError, OperatorChain, SinkKind, SinkResult, VerifyCounts};
pub use input::{InputError, InputProcessor, InputStatus};
pub use operator::{
    AggregateKind, FailurePoint, FilterFunction, FlatMapFunction, MapFunction, OperatorFailure,
    OperatorSpec, RestoreError,
};
pub use source::{KeyDistribution, SourceFunction, SourceSpec, SourceStatus};
pub use stream_task::{
    BufferTimeout, StreamTask, StreamTaskConfig, StreamTaskError, StreamTaskKind, StreamTaskResult,
};
