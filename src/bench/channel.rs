//! One producer thread writes records through a [`RecordWriter`] into a
//! partition of `n` subpartitions; one consumer thread reads them from a gate
//! of `n` channels. The smallest complete data path: serializer, pool,
//! rings, availability, deserializer, recycling.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use crate::memory::{BufferPool, SegmentPool};
use crate::metrics::AllocationCount;
use crate::network::{
    local_channel, ChannelAvailability, InputGate, NetworkConfig, NetworkConfigError, Partitioner,
    Poll, RecordWriter, ResultPartition,
};
use crate::sync::{Arc, Parker, WaitStrategy};

/// What to run.
#[derive(Clone, Debug)]
pub struct ChannelRun {
    /// How records are routed.
    pub partitioner: Partitioner,
    /// Subpartitions = input channels.
    pub channels: usize,
    /// Records to write.
    pub records: u64,
    /// Bytes per record (at least 8: the first 8 carry a sequence number).
    pub record_size: usize,
    /// Network sizes.
    pub network: NetworkConfig,
    /// How both threads wait.
    pub wait: WaitStrategy,
    /// Pin producer and consumer to the first two allowed cores.
    pub pin: bool,
}

impl Default for ChannelRun {
    fn default() -> Self {
        Self {
            partitioner: Partitioner::Rebalance,
            channels: 1,
            records: 20_000_000,
            record_size: 100,
            network: NetworkConfig::default(),
            wait: WaitStrategy::default(),
            pin: true,
        }
    }
}

/// What a run measured.
#[derive(Clone, Copy, Debug)]
pub struct ChannelReport {
    /// Records the consumer received (broadcast: every channel's copy).
    pub records: u64,
    /// Record payload bytes received.
    pub bytes: u64,
    /// From the start signal to the last record read.
    pub elapsed: Duration,
    /// Wrapping sum of the received sequence numbers.
    pub checksum: u64,
    /// Allocations between the start signal and the end of input.
    pub allocations: AllocationCount,
    /// Whether every pool was full again after the run.
    pub pools_full: bool,
    /// The writer's counters (back-pressure time among them).
    pub partition: crate::network::partition::PartitionMetrics,
}

impl ChannelReport {
    /// Records per second.
    pub fn records_per_sec(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64()
    }

    /// Payload bytes per second.
    pub fn bytes_per_sec(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64()
    }
}

/// Why a channel run could not run or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum ChannelRunError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] NetworkConfigError),
    /// Memory could not be set up.
    #[error(transparent)]
    Memory(#[from] crate::memory::MemoryError),
    /// The record size is below the 8 bytes a sequence number needs, or
    /// above the largest record a channel carries.
    #[error("record size {size} is not allowed: use 8 bytes (the sequence number) to {max} (network.max_record_size)")]
    RecordSize {
        /// The size asked for.
        size: usize,
        /// The largest allowed.
        max: usize,
    },
    /// A thread failed.
    #[error("{0}")]
    Failed(String),
}

/// Runs `run` once.
pub fn run_channel(run: &ChannelRun) -> Result<ChannelReport, ChannelRunError> {
    run.network.validate()?;
    if run.record_size < 8 || run.record_size > run.network.max_record_size {
        return Err(ChannelRunError::RecordSize {
            size: run.record_size,
            max: run.network.max_record_size,
        });
    }
    let segments = Arc::new(SegmentPool::new(&run.network.memory)?);
    let producer_parker = Arc::new(Parker::new());
    let consumer_parker = Arc::new(Parker::new());
    let n = run.channels as u32;
    let (min, max) = BufferPool::default_bounds(n);
    let pool = Arc::new(BufferPool::new(
        segments.clone(),
        min,
        max,
        producer_parker.clone(),
    )?);
    let availability = Arc::new(ChannelAvailability::new(run.channels, consumer_parker));
    let (outputs, inputs): (Vec<_>, Vec<_>) = (0..n)
        .map(|channel| {
            local_channel(
                run.network.channel_credit(),
                pool.clone(),
                &availability,
                channel,
                run.network.max_record_size,
            )
        })
        .unzip();
    let partition = ResultPartition::new(
        pool.clone(),
        outputs,
        run.network.max_record_size,
        producer_parker,
        run.wait,
    );
    let mut writer = RecordWriter::new(partition, run.partitioner, 0);
    let mut gate = InputGate::new(availability, inputs);

    let cores = if run.pin {
        core_affinity::get_core_ids().unwrap_or_default()
    } else {
        Vec::new()
    };
    let (producer_core, consumer_core) = (cores.first().copied(), cores.get(1).copied());
    let start = std::sync::Arc::new(Barrier::new(3));
    let records = run.records;
    let record_size = run.record_size;
    let wait = run.wait;

    let producer = {
        let start = start.clone();
        std::thread::Builder::new()
            .name("demo-producer".into())
            .spawn(move || {
                if let Some(core) = producer_core {
                    core_affinity::set_for_current(core);
                }
                let mut record = vec![0u8; record_size];
                start.wait();
                for seq in 0..records {
                    record[..8].copy_from_slice(&seq.to_le_bytes());
                    writer.emit(seq, &record)?;
                }
                writer.finish()?;
                Ok::<_, crate::network::WriteError>(writer)
            })
            .map_err(|e| ChannelRunError::Failed(e.to_string()))?
    };
    let consumer = {
        let start = start.clone();
        std::thread::Builder::new()
            .name("demo-consumer".into())
            .spawn(move || {
                if let Some(core) = consumer_core {
                    core_affinity::set_for_current(core);
                }
                start.wait();
                let began = Instant::now();
                let (mut count, mut bytes, mut checksum) = (0u64, 0u64, 0u64);
                let mut waiter = wait.waiter();
                loop {
                    let poll = gate.poll(|record| {
                        count += 1;
                        bytes += record.len() as u64;
                        let seq: [u8; 8] = record[..8].try_into().expect("8-byte prefix");
                        checksum = checksum.wrapping_add(u64::from_le_bytes(seq));
                    })?;
                    match poll {
                        Poll::Finished => break,
                        Poll::Empty => {
                            let parker = gate.parker().clone();
                            waiter.wait(&parker, || gate.has_input(), None);
                        }
                        _ => waiter = wait.waiter(),
                    }
                }
                let elapsed = began.elapsed();
                let allocations_at_end = AllocationCount::now();
                Ok::<_, crate::network::gate::GateError>((
                    count,
                    bytes,
                    checksum,
                    elapsed,
                    allocations_at_end,
                    gate,
                ))
            })
            .map_err(|e| ChannelRunError::Failed(e.to_string()))?
    };
    start.wait();
    let allocations_at_start = AllocationCount::now();

    let consumed = consumer.join();
    let produced = producer.join();
    let (count, bytes, checksum, elapsed, allocations_at_end, gate) = consumed
        .map_err(|_| ChannelRunError::Failed("consumer thread panicked".into()))?
        .map_err(|e| ChannelRunError::Failed(e.to_string()))?;
    let writer = produced
        .map_err(|_| ChannelRunError::Failed("producer thread panicked".into()))?
        .map_err(|e| ChannelRunError::Failed(e.to_string()))?;
    let partition = writer.partition().metrics();
    drop(writer);
    drop(gate);
    let pools_full = pool.is_full();
    drop(pool);
    Ok(ChannelReport {
        records: count,
        bytes,
        elapsed,
        checksum,
        allocations: allocations_at_end.since(allocations_at_start),
        pools_full: pools_full && segments.is_full(),
        partition,
    })
}
