//! The job a profile describes, in the engine's types. The engine's
//! constructors judge the job's shape (graph, channels, segment size,
//! buffers); their typed errors are mapped here to the profile's fields.

use super::error::{invalid, ProfileError};
use super::{Distribution, PartitionerKind, Pin, PinPolicy, Profile, Vertex, VertexKind, WaitKind};
use crate::job::{ExecutionGraph, GraphError, JobEdge, JobGraph, JobOptions, JobVertex, Pinning};
use crate::memory::{BufferPool, MemoryConfig, MemoryError};
use crate::network::{NetworkConfig, NetworkConfigError, Partitioner};
use crate::streaming::{
    AggregateKind, BufferTimeout, FilterFunction, FlatMapFunction, KeyDistribution, MapFunction,
    OperatorSpec, SinkKind, SourceSpec,
};
use crate::sync::WaitStrategy;

use super::super::units::{Size, Timeout};

impl Profile {
    /// The operator of a non-source, non-sink vertex; checks a sink's
    /// function.
    pub(super) fn operator(&self, v: &Vertex) -> Result<Option<OperatorSpec>, ProfileError> {
        let field = format!("vertices.{}.function", v.name);
        let function = v.function.as_deref();
        let bad = |allowed: &str| {
            invalid(
                field.clone(),
                format!(
                    "'{}' is not a {:?} function: use {allowed}",
                    function.unwrap_or_default().escape_debug(),
                    v.kind
                ),
            )
        };
        let spec = match v.kind {
            VertexKind::Source | VertexKind::FailAfter if function.is_some() => {
                return Err(invalid(
                    field,
                    "sources and fail-after vertices take no function",
                ))
            }
            VertexKind::Source => None,
            VertexKind::Sink => {
                self.sink_kind(v)?;
                None
            }
            VertexKind::Map => Some(OperatorSpec::Map(
                match function.unwrap_or("multiply-by-two") {
                    "multiply-by-two" => MapFunction::MultiplyByTwo,
                    "increment" => MapFunction::Increment,
                    "identity" => MapFunction::Identity,
                    _ => return Err(bad("multiply-by-two, increment or identity")),
                },
            )),
            VertexKind::Filter => Some(OperatorSpec::Filter(match function.unwrap_or("even") {
                "even" => FilterFunction::EvenValues,
                f => match f.strip_prefix("one-in-").and_then(|n| n.parse().ok()) {
                    Some(n) if n > 0 => FilterFunction::OneIn(n),
                    _ => return Err(bad("even or one-in-N (N ≥ 1)")),
                },
            })),
            VertexKind::FlatMap => {
                let f = function.unwrap_or("explode-2");
                match f.strip_prefix("explode-").and_then(|n| n.parse().ok()) {
                    Some(n) if (1..=1024).contains(&n) => {
                        Some(OperatorSpec::FlatMap(FlatMapFunction::Explode(n)))
                    }
                    _ => return Err(bad("explode-N (1 ≤ N ≤ 1024)")),
                }
            }
            VertexKind::KeyedAggregate => Some(OperatorSpec::KeyedAggregate {
                kind: match function.unwrap_or("count") {
                    "count" => AggregateKind::Count,
                    "sum" => AggregateKind::Sum,
                    _ => return Err(bad("count or sum")),
                },
                key_space: v
                    .key_space
                    .unwrap_or(self.records.key_space.min(u64::from(u32::MAX)) as u32),
            }),
            VertexKind::FailAfter => Some(OperatorSpec::FailAfter {
                records: v.fail_after.unwrap_or(0),
            }),
        };
        Ok(spec)
    }

    fn sink_kind(&self, v: &Vertex) -> Result<SinkKind, ProfileError> {
        let latency = self.measure.latency;
        match v.function.as_deref() {
            None if latency => Ok(SinkKind::Latency),
            None | Some("checksum") => Ok(SinkKind::Checksum),
            Some(f) if f.starts_with("slow-") => {
                let us = f
                    .strip_prefix("slow-")
                    .and_then(|n| n.strip_suffix("us"))
                    .and_then(|n| n.parse::<u32>().ok())
                    .filter(|&us| (1..=1_000_000).contains(&us))
                    .ok_or_else(|| {
                        invalid(
                            format!("vertices.{}.function", v.name),
                            format!(
                                "'{}': write slow-Nus with N from 1 to 1000000 (µs per record)",
                                f.escape_debug()
                            ),
                        )
                    })?;
                Ok(SinkKind::Slow { wait_ns: us * 1000 })
            }
            Some("latency") if self.records.size.bytes() >= 16 => Ok(SinkKind::Latency),
            Some("latency") => Err(invalid(
                format!("vertices.{}.function", v.name),
                "a latency sink needs records.size of at least 16 bytes (value and timestamp)",
            )),
            Some(other) => Err(invalid(
                format!("vertices.{}.function", v.name),
                format!(
                    "'{}' is not a sink function: use checksum, latency or slow-Nus",
                    other.escape_debug()
                ),
            )),
        }
    }

    /// The job graph this profile describes, checked by the engine.
    pub fn job_graph(&self) -> Result<JobGraph, ProfileError> {
        let index = |name: &str| self.vertices.iter().position(|v| v.name == name);
        let latency = self.measures_latency();
        let mut vertices = Vec::with_capacity(self.vertices.len());
        for v in &self.vertices {
            let source = (v.kind == VertexKind::Source).then(|| SourceSpec {
                records: self.source_records(v),
                duration: self.records.duration.map(|d| d.0),
                record_size: self.records.size.bytes() as usize,
                batch: self.records.batch,
                rate: self.records.rate,
                skew_after: self.records.skew_after,
                key_space: self.records.key_space,
                keys: match self.records.distribution {
                    Distribution::Uniform => KeyDistribution::Uniform,
                    Distribution::Zipf => KeyDistribution::Zipf {
                        exponent: self.records.zipf_exponent,
                    },
                },
                timestamps: latency,
                idle: v.idle,
                checkpoint_every: self.checkpoint.as_ref().and_then(|c| c.induced_every),
            });
            let sink = match v.kind {
                VertexKind::Sink => Some(self.sink_kind(v)?),
                _ => None,
            };
            vertices.push(JobVertex {
                name: v.name.clone(),
                parallelism: v.parallelism,
                source,
                operators: self.operator(v)?.into_iter().collect(),
                sink,
            });
        }
        let known = || {
            self.vertices
                .iter()
                .map(|v| v.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut edges = Vec::with_capacity(self.edges.len());
        for (i, e) in self.edges.iter().enumerate() {
            let missing = |end: &str, name: &str| {
                invalid(
                    format!("edges[{i}].{end}"),
                    format!(
                        "no vertex is named '{}' (vertices: {})",
                        name.escape_debug(),
                        known()
                    ),
                )
            };
            let from = index(&e.from).ok_or_else(|| missing("from", &e.from))?;
            let to = index(&e.to).ok_or_else(|| missing("to", &e.to))?;
            let to_parallelism = self.vertices[to].parallelism;
            let kind =
                e.partitioner
                    .unwrap_or(if self.vertices[from].parallelism == to_parallelism {
                        PartitionerKind::Forward
                    } else {
                        PartitionerKind::Rebalance
                    });
            let partitioner = match kind {
                PartitionerKind::Forward => Partitioner::Forward,
                PartitionerKind::Rebalance => Partitioner::Rebalance,
                PartitionerKind::Rescale => Partitioner::Rescale,
                PartitionerKind::Hash => Partitioner::hash_keyed(
                    to_parallelism.saturating_mul(e.channels),
                    self.records.key_space,
                ),
                PartitionerKind::Broadcast => Partitioner::Broadcast,
            };
            edges.push(JobEdge {
                channels: e.channels,
                ..JobEdge::new(from, to, partitioner)
            });
        }
        let graph = JobGraph {
            name: self.name.clone(),
            vertices,
            edges,
            chaining: self.chaining,
            buffer_timeout: match self.network.buffer_timeout {
                Timeout::Never => BufferTimeout::Never,
                Timeout::After(d) if d.is_zero() => BufferTimeout::EveryRecord,
                Timeout::After(d) => BufferTimeout::Interval(d),
            },
        };
        graph.validate().map_err(|e| self.graph_error(e))?;
        Ok(graph)
    }

    /// The field an engine's graph error is about.
    fn graph_error(&self, e: GraphError) -> ProfileError {
        let edge = |from: &str, to: &str, field: &str| {
            self.edges
                .iter()
                .position(|x| x.from == from && x.to == to)
                .map_or_else(|| "edges".to_string(), |i| format!("edges[{i}].{field}"))
        };
        let field = match &e {
            GraphError::Empty => "vertices".to_string(),
            GraphError::ZeroParallelism(name) => format!("vertices.{name}.parallelism"),
            GraphError::Channels { from, to, .. } => edge(from, to, "channels"),
            GraphError::ForwardParallelism { from, to, .. } => edge(from, to, "partitioner"),
            _ => "edges".to_string(),
        };
        invalid(field, e.to_string())
    }

    /// The job's execution plan (chained tasks, partitions, channels).
    pub(super) fn plan(&self) -> Result<ExecutionGraph, ProfileError> {
        let graph = self.job_graph()?;
        ExecutionGraph::build(&graph).map_err(|e| self.graph_error(e))
    }

    /// How the job runs: network memory sized for the job unless
    /// `network.memory` says otherwise.
    pub fn job_options(&self) -> Result<JobOptions, ProfileError> {
        self.job_options_for(&self.plan()?)
    }

    /// The network configuration with `total_segments` segments.
    fn network_config(&self, total_segments: u32) -> NetworkConfig {
        let n = &self.network;
        NetworkConfig {
            memory: MemoryConfig {
                segment_size: usize::try_from(n.segment_size.bytes()).unwrap_or(usize::MAX),
                total_segments,
                huge_pages: n.huge_pages,
            },
            buffers_per_channel: n.buffers_per_channel,
            floating_buffers: n.floating_buffers,
            max_overdraft_buffers: n.max_overdraft_buffers,
            max_record_size: n.max_record_size.unwrap_or(self.records.size).bytes() as usize,
            buffers_request_timeout: n.buffers_request_timeout.0,
            debloat: n.debloat.as_ref().and_then(|d| d.config()),
        }
    }

    /// The engine's checks of the network sizes, mapped to their fields.
    pub(super) fn check_network_config(&self) -> Result<(), ProfileError> {
        self.network_config(1).validate().map_err(|e| match &e {
            NetworkConfigError::Memory(MemoryError::SegmentSize { .. }) => invalid(
                "network.segment_size",
                format!("{}: {e}", self.network.segment_size),
            ),
            NetworkConfigError::NoChannelBuffers | NetworkConfigError::CreditTooSmall(_) => {
                invalid("network.buffers_per_channel", e.to_string())
            }
            NetworkConfigError::NoRecordSize => invalid("network.max_record_size", e.to_string()),
            NetworkConfigError::Overdraft(_) => {
                invalid("network.max_overdraft_buffers", e.to_string())
            }
            // The size as written: the engine's field is 32-bit.
            NetworkConfigError::Debloat {
                field: "min_buffer_size",
                ..
            } => invalid(
                "network.debloat.min_buffer_size",
                format!(
                    "{} is not within 64B..=segment_size ({})",
                    self.network
                        .debloat
                        .as_ref()
                        .map_or(Size(0), |d| d.min_buffer_size),
                    self.network.segment_size
                ),
            ),
            NetworkConfigError::Debloat { field, problem } => {
                invalid(format!("network.debloat.{field}"), problem.clone())
            }
            _ => invalid("network", e.to_string()),
        })
    }

    /// [`job_options`](Self::job_options) for an already built `plan`.
    pub(super) fn job_options_for(
        &self,
        plan: &ExecutionGraph,
    ) -> Result<JobOptions, ProfileError> {
        let n = &self.network;
        let segment = n.segment_size.bytes();
        let total = match n.memory {
            Some(memory) => memory.bytes() / segment,
            None => plan
                .partitions
                .iter()
                .map(|&(_, subpartitions)| {
                    // The pool's maximum and its overdraft (a source's
                    // overdraft goes unused; the few segments are kept
                    // simple rather than exact).
                    u64::from(BufferPool::default_bounds(subpartitions).1)
                        + u64::from(n.max_overdraft_buffers)
                })
                .sum::<u64>()
                .max(1),
        };
        let field = if n.memory.is_some() {
            "network.memory"
        } else {
            "network.segment_size"
        };
        let total_segments = u32::try_from(total).map_err(|_| {
            invalid(
                field,
                format!(
                    "{total} segments of {} is more than the {} this build supports",
                    n.segment_size,
                    u32::MAX
                ),
            )
        })?;
        let network = self.network_config(total_segments);
        let region = network.memory.region_bytes() as u64;
        let machine = machine_memory();
        if region > machine {
            return Err(invalid(
                field,
                format!(
                    "the job's network memory, {} segments of {}, is {}; this machine has {}: lower the segment size, the channels or network.memory",
                    total,
                    n.segment_size,
                    Size(region),
                    Size(machine)
                ),
            ));
        }
        let r = &self.runtime;
        Ok(JobOptions {
            network,
            wait: match r.wait {
                WaitKind::BusySpin => WaitStrategy::BusySpin,
                WaitKind::SpinYield => WaitStrategy::SpinYield { spins: r.spins },
                WaitKind::SpinPark => WaitStrategy::SpinPark {
                    spins: r.spins,
                    yields: r.yields,
                },
                WaitKind::Adaptive => WaitStrategy::Adaptive {
                    spin_ns: r.spin_for.0.as_nanos().min(u128::from(u32::MAX)) as u32,
                    yield_ns: r.park_after.0.as_nanos().min(u128::from(u32::MAX)) as u32,
                },
            },
            pinning: match &r.pin {
                Pin::Policy(PinPolicy::Spread) => Pinning::Spread,
                Pin::Policy(PinPolicy::None) => Pinning::None,
                Pin::Cores(cores) => Pinning::Cores(cores.clone()),
            },
            cancel_timeout: r.cancel_timeout.0,
            trace_events: 0,
            stall_probe: self.measures_latency(),
            checkpointing: self.checkpoint.as_ref().map(|c| c.config()),
            checkpoint_dir: self.checkpoint.as_ref().and_then(|c| c.dir.clone()),
        })
    }

    /// Subtasks after chaining (threads the job starts).
    pub fn task_count(&self) -> usize {
        self.plan().map_or(0, |p| p.subtasks())
    }
}

/// The machine's memory in bytes (all of it, when it cannot be told).
fn machine_memory() -> u64 {
    let mut system = sysinfo::System::new();
    system.refresh_memory();
    match system.total_memory() {
        0 => u64::MAX,
        bytes => bytes,
    }
}
