//! Flink's shuffle environment for one process: the registry where a job's
//! channels are wired before its tasks run, and from which each task takes
//! its ends when it sets up.
//!
//! Wiring (rings, availability signals) happens when a job is deployed;
//! memory (each partition's buffer pool) is claimed only when the producing
//! task sets up. A task whose pool's minimum is not free waits for segments
//! to come back — in DEPLOYING, interruptible by cancellation — and fails
//! cleanly after `buffers_request_timeout`, as in Flink.

use std::collections::HashMap;

use std::time::{Duration, Instant};

use crate::memory::{BufferPool, MemoryError, SegmentPool, SegmentWait};
use crate::sync::{Arc, Mutex, Parker, WaitStrategy};

use super::event::ChannelItem;
use super::gate::Recycler;
use super::{
    ring, ChannelAvailability, InputChannel, InputGate, NetworkConfig, ResultPartition,
    ResultSubpartition,
};

/// Identifies a result partition within the environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PartitionKey(pub u64);

/// Identifies an input gate within the environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GateKey(pub u64);

/// Why wiring or setting up a channel failed.
#[derive(Debug, thiserror::Error)]
pub enum ShuffleError {
    /// No partition is registered under this key.
    #[error("result partition {0:?} is not registered")]
    UnknownPartition(PartitionKey),
    /// No gate is registered under this key.
    #[error("input gate {0:?} is not registered")]
    UnknownGate(GateKey),
    /// The key is registered twice.
    #[error("{0} is registered twice")]
    Duplicate(String),
    /// A subpartition or channel index is out of range or wired twice.
    #[error("cannot connect {partition:?}[{subpartition}] to {gate:?}[{channel}]: {why}")]
    BadConnection {
        /// The partition.
        partition: PartitionKey,
        /// Its subpartition.
        subpartition: u32,
        /// The gate.
        gate: GateKey,
        /// Its channel.
        channel: u32,
        /// What is wrong.
        why: &'static str,
    },
    /// A subpartition or channel was never wired.
    #[error("{0} has an unconnected channel {1}")]
    Unconnected(String, u32),
    /// The partition's buffer pool could not be set up.
    #[error("result partition {partition:?}: {source}")]
    Memory {
        /// The partition.
        partition: PartitionKey,
        /// What memory said.
        source: MemoryError,
    },
    /// The pool's minimum segments did not become free in time (Flink's
    /// "Timeout triggered when requesting exclusive buffers").
    #[error(
        "result partition {partition:?} timed out after {timeout:?} waiting for network buffers: \
         its buffer pool needs {required} segments but only {available} of {total} are free; \
         raise `buffers_request_timeout` (Flink's taskmanager.network.memory.buffers-request-timeout) \
         or the total segment count, or run fewer channels at once"
    )]
    BuffersRequestTimeout {
        /// The partition.
        partition: PartitionKey,
        /// Segments its pool needs at least.
        required: u32,
        /// Segments free when the wait gave up.
        available: u32,
        /// Segments in the region.
        total: u32,
        /// How long it waited.
        timeout: Duration,
    },
    /// The owning task was interrupted (canceled or failed) while the
    /// partition waited for network buffers.
    #[error(
        "result partition {partition:?}: interrupted while waiting for {required} network buffers"
    )]
    Interrupted {
        /// The partition.
        partition: PartitionKey,
        /// Segments its pool needs at least.
        required: u32,
    },
}

type ProducerEnd = (
    ring::Producer<ChannelItem>,
    Arc<ChannelAvailability>,
    u32,
    Arc<Recycler>,
);
type ConsumerEnd = (ring::Consumer<ChannelItem>, Arc<Recycler>);

#[derive(Debug)]
struct PendingGate {
    availability: Arc<ChannelAvailability>,
    channels: Vec<Option<ConsumerEnd>>,
}

#[derive(Debug, Default)]
struct Registry {
    partitions: HashMap<PartitionKey, Vec<Option<ProducerEnd>>>,
    gates: HashMap<GateKey, PendingGate>,
}

/// The channels of the jobs deployed in this process, and the memory they
/// draw from.
#[derive(Debug)]
pub struct ShuffleEnvironment {
    segments: Arc<SegmentPool>,
    config: NetworkConfig,
    registry: Mutex<Registry>,
}

impl ShuffleEnvironment {
    /// Maps the network memory `config` asks for.
    pub fn new(config: NetworkConfig) -> Result<Self, super::NetworkConfigError> {
        config.validate()?;
        Ok(Self {
            segments: Arc::new(SegmentPool::new(&config.memory)?),
            config,
            registry: Mutex::new(Registry::default()),
        })
    }

    /// The network configuration.
    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    /// The global segment pool.
    pub fn segments(&self) -> &Arc<SegmentPool> {
        &self.segments
    }

    /// Registers a partition of `subpartitions` channels.
    pub fn register_partition(
        &self,
        key: PartitionKey,
        subpartitions: usize,
    ) -> Result<(), ShuffleError> {
        let mut registry = self.registry.lock().expect("registry lock");
        if registry.partitions.contains_key(&key) {
            return Err(ShuffleError::Duplicate(format!("{key:?}")));
        }
        registry
            .partitions
            .insert(key, (0..subpartitions).map(|_| None).collect());
        Ok(())
    }

    /// Registers a gate of `channels` channels whose task parks on `consumer`.
    pub fn register_gate(
        &self,
        key: GateKey,
        channels: usize,
        consumer: Arc<Parker>,
    ) -> Result<(), ShuffleError> {
        let mut registry = self.registry.lock().expect("registry lock");
        if registry.gates.contains_key(&key) {
            return Err(ShuffleError::Duplicate(format!("{key:?}")));
        }
        registry.gates.insert(
            key,
            PendingGate {
                availability: Arc::new(ChannelAvailability::new(channels, consumer)),
                channels: (0..channels).map(|_| None).collect(),
            },
        );
        Ok(())
    }

    /// Wires subpartition `subpartition` of `partition` to channel `channel`
    /// of `gate` with a ring of the configured credit.
    pub fn connect(
        &self,
        partition: PartitionKey,
        subpartition: u32,
        gate: GateKey,
        channel: u32,
    ) -> Result<(), ShuffleError> {
        let bad = |why| ShuffleError::BadConnection {
            partition,
            subpartition,
            gate,
            channel,
            why,
        };
        let mut registry = self.registry.lock().expect("registry lock");
        let Registry { partitions, gates } = &mut *registry;
        let producers = partitions
            .get_mut(&partition)
            .ok_or(ShuffleError::UnknownPartition(partition))?;
        let pending = gates
            .get_mut(&gate)
            .ok_or(ShuffleError::UnknownGate(gate))?;
        let producer_slot = producers
            .get_mut(subpartition as usize)
            .ok_or_else(|| bad("no such subpartition"))?;
        let consumer_slot = pending
            .channels
            .get_mut(channel as usize)
            .ok_or_else(|| bad("no such channel"))?;
        if producer_slot.is_some() || consumer_slot.is_some() {
            return Err(bad("already connected"));
        }
        let (tx, rx) = ring::channel(self.config.ring_capacity());
        let recycler = Arc::new(Recycler::default());
        *producer_slot = Some((tx, pending.availability.clone(), channel, recycler.clone()));
        *consumer_slot = Some((rx, recycler));
        Ok(())
    }

    /// Sets up a registered partition for its producing task: claims the
    /// buffer pool (Flink's default bounds) and binds it as the recycler of
    /// every channel.
    ///
    /// If the pool's minimum is not free, waits on `owner` (the calling
    /// task's parker) for segments to come back, up to the configured
    /// `buffers_request_timeout`; an interrupt of `owner` ends the wait with
    /// [`ShuffleError::Interrupted`]. A minimum larger than the whole region
    /// fails at once.
    pub fn create_partition(
        &self,
        key: PartitionKey,
        owner: Arc<Parker>,
        wait: WaitStrategy,
    ) -> Result<ResultPartition, ShuffleError> {
        let ends = {
            let mut registry = self.registry.lock().expect("registry lock");
            let ends = registry
                .partitions
                .get(&key)
                .ok_or(ShuffleError::UnknownPartition(key))?;
            if let Some(index) = ends.iter().position(Option::is_none) {
                return Err(ShuffleError::Unconnected(format!("{key:?}"), index as u32));
            }
            registry.partitions.remove(&key).expect("checked above")
        };
        let (min, max) = BufferPool::default_bounds(ends.len() as u32);
        let pool = self.claim_pool(key, min, max, &owner)?;
        let pool = Arc::new(pool);
        let subpartitions = ends
            .into_iter()
            .map(|end| {
                let (ring, availability, channel, recycler) = end.expect("checked above");
                recycler.bind(pool.clone());
                ResultSubpartition::new(ring, availability, channel)
            })
            .collect();
        Ok(ResultPartition::new(
            pool,
            subpartitions,
            self.config.max_record_size,
            owner,
            wait,
        )
        .with_channel_credit(self.config.channel_credit()))
    }

    /// Flink's `NetworkBufferPool.requestMemorySegmentsBlocking` for one
    /// partition's pool: all `min` segments at once, or wait.
    fn claim_pool(
        &self,
        partition: PartitionKey,
        min: u32,
        max: u32,
        owner: &Arc<Parker>,
    ) -> Result<BufferPool, ShuffleError> {
        let timeout = self.config.buffers_request_timeout;
        // An unrepresentable deadline (a huge timeout) means no deadline.
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let overdraft = self.config.max_overdraft_buffers;
            match BufferPool::with_overdraft(
                self.segments.clone(),
                min,
                max,
                overdraft,
                owner.clone(),
            ) {
                Ok(pool) => return Ok(pool),
                Err(MemoryError::InsufficientSegments {
                    required, total, ..
                }) if required <= total => {
                    match self.segments.wait_for_segments(required, owner, deadline) {
                        SegmentWait::Available => {}
                        SegmentWait::Interrupted => {
                            return Err(ShuffleError::Interrupted {
                                partition,
                                required,
                            })
                        }
                        SegmentWait::TimedOut { available } => {
                            return Err(ShuffleError::BuffersRequestTimeout {
                                partition,
                                required,
                                available,
                                total,
                                timeout,
                            })
                        }
                    }
                }
                Err(source) => return Err(ShuffleError::Memory { partition, source }),
            }
        }
    }

    /// Sets up a registered gate for its consuming task.
    pub fn create_gate(&self, key: GateKey) -> Result<InputGate, ShuffleError> {
        let pending = {
            let mut registry = self.registry.lock().expect("registry lock");
            let pending = registry
                .gates
                .get(&key)
                .ok_or(ShuffleError::UnknownGate(key))?;
            if let Some(index) = pending.channels.iter().position(Option::is_none) {
                return Err(ShuffleError::Unconnected(format!("{key:?}"), index as u32));
            }
            registry.gates.remove(&key).expect("checked above")
        };
        let channels = pending
            .channels
            .into_iter()
            .map(|end| {
                let (ring, recycler) = end.expect("checked above");
                InputChannel::new(ring, recycler, self.config.max_record_size)
            })
            .collect();
        Ok(InputGate::new(pending.availability, channels))
    }

    /// Drops whatever is still registered (a job that ended before all its
    /// tasks set up), giving any buffer left in an untaken channel back to
    /// its producer's pool. Returns how many partitions and gates were
    /// dropped.
    pub fn release_all(&self) -> (usize, usize) {
        let (partitions, gates) = {
            let mut registry = self.registry.lock().expect("registry lock");
            (
                std::mem::take(&mut registry.partitions),
                std::mem::take(&mut registry.gates),
            )
        };
        let dropped = (partitions.len(), gates.len());
        drop(partitions);
        for (mut ring, recycler) in gates.into_values().flat_map(|g| g.channels).flatten() {
            for item in ring.close() {
                if let ChannelItem::Data(buffer) = item {
                    recycler.recycle(buffer);
                }
            }
        }
        dropped
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::memory::MemoryConfig;
    use crate::network::{Partitioner, Poll, RecordWriter};

    fn environment(total_segments: u32) -> ShuffleEnvironment {
        ShuffleEnvironment::new(NetworkConfig {
            memory: MemoryConfig {
                segment_size: 4096,
                total_segments,
                huge_pages: false,
            },
            ..NetworkConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn two_producers_one_gate_wired_before_either_sets_up() {
        let env = Arc::new(environment(64));
        let consumer = Arc::new(Parker::new());
        env.register_gate(GateKey(1), 2, consumer).unwrap();
        for p in 0..2 {
            env.register_partition(PartitionKey(p), 1).unwrap();
            env.connect(PartitionKey(p), 0, GateKey(1), p as u32)
                .unwrap();
        }
        // The consumer sets up first; the producers later, on their threads.
        let mut gate = env.create_gate(GateKey(1)).unwrap();
        let producers: Vec<_> = (0..2)
            .map(|p| {
                let env = env.clone();
                std::thread::spawn(move || {
                    let partition = env
                        .create_partition(
                            PartitionKey(p),
                            Arc::new(Parker::new()),
                            WaitStrategy::default(),
                        )
                        .unwrap();
                    let mut writer = RecordWriter::new(partition, Partitioner::Forward, 0);
                    for i in 0..10_000u64 {
                        writer.emit(i, &i.to_le_bytes()).unwrap();
                    }
                    writer.finish().unwrap();
                })
            })
            .collect();
        let (mut count, mut sum) = (0u64, 0u64);
        let mut waiter = WaitStrategy::default().waiter();
        loop {
            match gate
                .poll(|r| {
                    count += 1;
                    sum += u64::from_le_bytes(r.try_into().unwrap());
                })
                .unwrap()
            {
                Poll::Finished => break,
                Poll::Empty => {
                    let parker = gate.parker().clone();
                    waiter.wait(&parker, || gate.has_input(), None);
                }
                _ => {}
            }
        }
        producers.into_iter().for_each(|p| p.join().unwrap());
        assert_eq!((count, sum), (20_000, 2 * (0..10_000u64).sum::<u64>()));
        drop(gate);
        assert!(env.segments().is_full());
    }

    #[test]
    fn wiring_mistakes_and_short_memory_are_errors() {
        let env = environment(4);
        env.register_partition(PartitionKey(1), 4).unwrap();
        env.register_gate(GateKey(1), 1, Arc::new(Parker::new()))
            .unwrap();
        assert!(matches!(
            env.register_partition(PartitionKey(1), 1),
            Err(ShuffleError::Duplicate(_))
        ));
        assert!(matches!(
            env.connect(PartitionKey(9), 0, GateKey(1), 0),
            Err(ShuffleError::UnknownPartition(PartitionKey(9)))
        ));
        assert!(matches!(
            env.connect(PartitionKey(1), 7, GateKey(1), 0),
            Err(ShuffleError::BadConnection {
                why: "no such subpartition",
                ..
            })
        ));
        env.connect(PartitionKey(1), 0, GateKey(1), 0).unwrap();
        assert!(matches!(
            env.connect(PartitionKey(1), 1, GateKey(1), 0),
            Err(ShuffleError::BadConnection {
                why: "already connected",
                ..
            })
        ));
        let err = env
            .create_partition(
                PartitionKey(1),
                Arc::new(Parker::new()),
                WaitStrategy::default(),
            )
            .unwrap_err();
        assert!(matches!(err, ShuffleError::Unconnected(_, 1)), "{err}");
        // Four subpartitions need five segments; four exist.
        let env = environment(4);
        env.register_partition(PartitionKey(1), 4).unwrap();
        env.register_gate(GateKey(1), 4, Arc::new(Parker::new()))
            .unwrap();
        for c in 0..4 {
            env.connect(PartitionKey(1), c, GateKey(1), c).unwrap();
        }
        let err = env
            .create_partition(
                PartitionKey(1),
                Arc::new(Parker::new()),
                WaitStrategy::default(),
            )
            .unwrap_err();
        assert!(
            err.to_string().contains("insufficient network buffers"),
            "{err}"
        );
        assert_eq!(env.release_all(), (0, 1));
        assert!(env.segments().is_full());
    }
}
