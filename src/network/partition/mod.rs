//! The producing side: result partitions, their subpartitions, partitioners
//! and the record writer.

pub mod key_group;
mod partitioner;
mod record_writer;
mod result_partition;

pub use partitioner::{ChannelSelector, KeyGroupRoute, Partitioner, Selection};
pub use record_writer::RecordWriter;
pub use result_partition::{PartitionMetrics, ResultPartition, ResultSubpartition, WriteError};
