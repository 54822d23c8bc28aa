//! Benchmark profiles: a job, its records, network and runtime settings,
//! how to measure it and what to sweep, as TOML.
//!
//! Every table refuses unknown fields, every field has a default (see
//! `profiles/README.md`), and any field can be overridden with
//! `--set path=value`, where array elements are addressed by their `name`
//! (`vertices.source.parallelism=4`) or index (`edges.0.channels=100`).
//!
//! A profile is read in stages, one file each: the schema here; the
//! `--set` language ([`set`]); field ranges ([`validate`]); the job it
//! describes, checked by the engine's own constructors ([`job`]); sweep
//! axes ([`sweep`]); and errors located on their line ([`error`]).
//!
//! The profile names the engine's choices with four small enums of its own
//! (`PartitionerKind`, `WaitKind`, `Pin`, and `units::Timeout`) instead of
//! deserializing the engine's types: those live in `network`, `sync`, `job`
//! and `streaming`, which stay free of serde, and their shapes are not the
//! profile's — a hash partitioner is built from the consumers and the key
//! space, a wait strategy from `runtime.spins`, `yields`, `spin_for` and
//! `park_after`, and a timeout is read from a duration or "none" with a
//! message for Flink's bare numbers. [`job`] converts each in a few lines.

mod checkpoint;
mod debloat;
mod error;
mod job;
mod set;
mod sweep;
mod validate;

use std::fmt;
use std::path::Path;
use std::time::Duration;

use schemars::JsonSchema;
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::input::read_regular;
use super::units::{Size, Span, Timeout};
use crate::network::NetworkConfig;

pub use checkpoint::{CheckpointMode, CheckpointSection, MAX_RESTARTS};
pub use debloat::Debloat;
pub use error::{shown, ProfileError};
pub use set::{apply_override, value_text, MAX_PATH_PARTS};
pub use validate::{MAX_RATE, MAX_RECORDS, MAX_REPETITIONS, MAX_WARMUP};

/// A benchmark profile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Short name (results and charts are named after it).
    pub name: String,
    /// One line on what the profile measures.
    #[serde(default)]
    pub description: String,
    /// The flink-benchmarks figure this profile mirrors, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flink: Option<FlinkReference>,
    /// What the sources emit.
    #[serde(default)]
    pub records: Records,
    /// The job's vertices, one operator each.
    pub vertices: Vec<Vertex>,
    /// The job's edges.
    #[serde(default)]
    pub edges: Vec<Edge>,
    /// Fuse chainable vertices into one task (Flink's default: on).
    #[serde(default = "yes")]
    pub chaining: bool,
    /// Network memory and channels.
    #[serde(default)]
    pub network: Network,
    /// Waiting and pinning.
    #[serde(default)]
    pub runtime: Runtime,
    /// Warm-up, repetitions, latency.
    #[serde(default)]
    pub measure: Measure,
    /// Checkpoints and restarts; unset: the job does not checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<CheckpointSection>,
    /// Axes `taskbench sweep` runs over (first axis on the x axis).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sweep: Vec<Axis>,
}

fn yes() -> bool {
    true
}

/// A published flink-benchmarks figure to hold results against.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlinkReference {
    /// Benchmark class and method, e.g. `InputBenchmark.mapRebalanceMapSink`.
    pub benchmark: String,
    /// Its published throughput in records per millisecond.
    pub ops_per_ms: f64,
    /// The machine that figure came from.
    #[serde(default = "flink_machine")]
    pub machine: String,
    /// What one operation is: a record (default) or a checkpoint from
    /// trigger to completion (the checkpointing benchmarks).
    #[serde(default, skip_serializing_if = "FlinkFigure::is_records")]
    pub figure: FlinkFigure,
}

/// What a flink-benchmarks operation counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FlinkFigure {
    /// Records: `ops_per_ms` is records/ms.
    #[default]
    Records,
    /// Checkpoints: `ops_per_ms` is checkpoints/ms.
    Checkpoints,
}

impl FlinkFigure {
    fn is_records(&self) -> bool {
        *self == FlinkFigure::Records
    }
}

fn flink_machine() -> String {
    "Flink's benchmark machine (4-core bare metal)".into()
}

/// What the sources emit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Records {
    /// Records per source subtask (default 10 000 000 when no `duration`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// Run each source subtask this long instead (or until `count`, if both).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<Span>,
    /// Bytes per record, at least 8 (a Flink `Long` is 8).
    pub size: Size,
    /// Distinct keys, `value % key_space` (keyed aggregates, hash edges
    /// and skew use it).
    pub key_space: u64,
    /// How keys are drawn: "uniform" (values count up) or "zipf".
    pub distribution: Distribution,
    /// The Zipf exponent (1.0 is the classic law; 0 is uniform).
    pub zipf_exponent: f64,
    /// Offered load in records/s per source subtask; unset = as fast as possible.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// After this many records per subtask, every record has the same key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skew_after: Option<u64>,
    /// Records a source emits per mailbox turn.
    pub batch: u32,
}

impl Default for Records {
    fn default() -> Self {
        Self {
            count: None,
            duration: None,
            size: Size(8),
            key_space: 1024,
            distribution: Distribution::Uniform,
            zipf_exponent: 1.0,
            rate: None,
            skew_after: None,
            batch: 1024,
        }
    }
}

/// How a source's keys are distributed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Distribution {
    /// Every key as often.
    Uniform,
    /// Key of rank `k` with weight `1 / (k + 1)^records.zipf_exponent`.
    Zipf,
}

/// The most cores a `runtime.pin` list may name.
pub const MAX_PIN_CORES: usize = 4096;

impl<'de> Deserialize<'de> for Pin {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const ACCEPTS: &str = "\"spread\", \"none\" or a list of core ids such as [0, 1]";
        struct PinVisitor;
        impl<'de> Visitor<'de> for PinVisitor {
            type Value = Pin;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(ACCEPTS)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Pin, E> {
                match v {
                    "spread" => Ok(Pin::Policy(PinPolicy::Spread)),
                    "none" => Ok(Pin::Policy(PinPolicy::None)),
                    other => Err(E::custom(format!(
                        "'{other}' is not a pinning: use {ACCEPTS}"
                    ))),
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Pin, A::Error> {
                let mut cores = Vec::new();
                while let Some(core) = seq.next_element::<usize>()? {
                    if cores.len() == MAX_PIN_CORES {
                        return Err(de::Error::custom(format!(
                            "more than {MAX_PIN_CORES} cores: name each core at most once"
                        )));
                    }
                    cores.push(core);
                }
                Ok(Pin::Cores(cores))
            }
        }
        d.deserialize_any(PinVisitor)
    }
}

/// Default records per source subtask.
pub const DEFAULT_RECORDS: u64 = 10_000_000;

/// The largest record a profile may ask for. Every source and operator
/// holds one record's worth of scratch, every input channel a spill buffer
/// for records spanning segments.
pub const MAX_RECORD_SIZE: u64 = 64 << 20;

/// The most keys a keyed aggregate's state or a Zipf law is laid out for.
pub const MAX_KEYS: u64 = 1 << 24;

/// The most memory a job's input channels may set aside for records that
/// span buffers (one spill buffer of the maximum record size each).
pub const MAX_SPILL: u64 = 4 << 30;

/// What a vertex is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum VertexKind {
    /// Emits records.
    Source,
    /// One record in, one out.
    Map,
    /// One record in, zero or one out.
    Filter,
    /// One record in, `n` out.
    FlatMap,
    /// Count or sum per key.
    KeyedAggregate,
    /// Passes `fail_after` records, then fails (fault injection).
    FailAfter,
    /// Consumes records.
    Sink,
}

/// One vertex.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Vertex {
    /// Unique name; task threads are named after it.
    pub name: String,
    /// What it does.
    pub kind: VertexKind,
    /// Subtasks.
    #[serde(default = "one")]
    pub parallelism: u32,
    /// The function: map `multiply-by-two` (default), `increment`,
    /// `identity`; filter `even` (default), `one-in-N`; flat-map
    /// `explode-N` (default `explode-2`); keyed-aggregate `count`
    /// (default), `sum`; sink `checksum` (default), `latency`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// Sources: records per subtask, overriding `records.count`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<u64>,
    /// Keyed aggregates: keys (default `records.key_space`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_space: Option<u32>,
    /// Fail-after: records passed on before failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_after: Option<u64>,
    /// Sources: emit nothing and stay open until the job's other sources
    /// finished: an idle input (flink-benchmarks' `QueuingLongSource`),
    /// open and silent rather than finished.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub idle: bool,
}

fn one() -> u32 {
    1
}

/// How an edge routes records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PartitionerKind {
    /// Subtask `i` to subtask `i`.
    Forward,
    /// Round-robin over all consumers.
    Rebalance,
    /// Round-robin over a local share of consumers.
    Rescale,
    /// Flink's key-group hash.
    Hash,
    /// Every record to every consumer.
    Broadcast,
}

/// One edge.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Edge {
    /// Producing vertex name.
    pub from: String,
    /// Consuming vertex name.
    pub to: String,
    /// Routing; default forward for equal parallelism, else rebalance
    /// (Flink's rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitioner: Option<PartitionerKind>,
    /// Channels between each producer and consumer subtask (Flink's
    /// network benchmarks read 100 or 1000 subpartitions of every writer
    /// over one union gate).
    #[serde(default = "one")]
    pub channels: u32,
}

/// Network memory and channels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Network {
    /// Segment (buffer) size: a power of two from 4KiB to 1MiB.
    pub segment_size: Size,
    /// Exclusive buffers per input channel.
    pub buffers_per_channel: u32,
    /// Floating buffers per input gate.
    pub floating_buffers: u32,
    /// Overdraft buffers a task may take past its output pool to finish a
    /// record spanning segments (Flink's
    /// `taskmanager.network.memory.max-overdraft-buffers-per-gate`);
    /// sources use none.
    pub max_overdraft_buffers: u32,
    /// When partial buffers are sent: a duration, or "none".
    pub buffer_timeout: Timeout,
    /// Network memory; unset = what every partition's pool may grow to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<Size>,
    /// Largest record a channel carries; unset = `records.size` (every
    /// channel sizes its spill buffer for a record spanning segments to
    /// this, so 1 MiB over 4000 channels would be 4 GiB).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_record_size: Option<Size>,
    /// Back network memory with huge pages: reserved ones when the OS has
    /// them, else transparent ones. On by default: a writer round-robins
    /// over every subpartition's open segment, and with 4 KiB pages 1000
    /// channels miss the TLB on nearly every record.
    pub huge_pages: bool,
    /// How long a task setting up may wait for network memory before it
    /// fails (Flink's `taskmanager.network.memory.buffers-request-timeout`).
    pub buffers_request_timeout: Span,
    /// Buffer debloating (`[network.debloat]`); unset: off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debloat: Option<Debloat>,
}

impl Default for Network {
    fn default() -> Self {
        let n = NetworkConfig::default();
        Self {
            segment_size: Size(n.memory.segment_size as u64),
            buffers_per_channel: n.buffers_per_channel,
            floating_buffers: n.floating_buffers,
            max_overdraft_buffers: n.max_overdraft_buffers,
            buffer_timeout: Timeout::After(Duration::from_millis(100)),
            memory: None,
            max_record_size: None,
            huge_pages: true,
            buffers_request_timeout: Span(n.buffers_request_timeout),
            debloat: None,
        }
    }
}

/// How waiting tasks wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum WaitKind {
    /// Spin forever.
    BusySpin,
    /// Spin, then yield.
    SpinYield,
    /// Spin, yield, then park.
    SpinPark,
    /// Spin for `spin_for`, yield until `park_after`, then park.
    Adaptive,
}

/// Where task threads run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Pin {
    /// `"spread"` or `"none"`.
    Policy(PinPolicy),
    /// Subtask `k` on `cores[k mod len]`.
    Cores(Vec<usize>),
}

/// A named pinning policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PinPolicy {
    /// One core per subtask when there are enough; else unpinned.
    Spread,
    /// Unpinned.
    None,
}

/// Waiting and pinning.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Runtime {
    /// How waiting tasks wait. Adaptive by default: spin for `spin_for`,
    /// then yield while other tasks leave a core free, and park after
    /// `park_after`, or at once when the running tasks take every core
    /// (with more task threads than cores, the job runner also cuts the
    /// spinning to nothing). Measured on 2 cores, source -> map -> sink at
    /// buffer timeout 0: 395 M records/s and a 3.5 µs median latency at a
    /// paced 100 000 records/s, where parking after a short spin gave 228 M
    /// and 17 µs, and yielding for the whole millisecond 138 M.
    pub wait: WaitKind,
    /// Spin rounds before yielding or parking.
    pub spins: u32,
    /// Yields before parking (spin-park).
    pub yields: u32,
    /// Adaptive: how long a wait spins before it yields.
    pub spin_for: Span,
    /// Adaptive: how long into a wait the task parks.
    pub park_after: Span,
    /// "spread", "none", or a list of core ids.
    pub pin: Pin,
    /// How long a canceled task may take to end.
    pub cancel_timeout: Span,
}

impl Default for Runtime {
    fn default() -> Self {
        Self {
            wait: WaitKind::Adaptive,
            spins: 64,
            yields: 8,
            spin_for: Span(Duration::from_micros(20)),
            park_after: Span(Duration::from_millis(1)),
            pin: Pin::Policy(PinPolicy::Spread),
            cancel_timeout: Span(Duration::from_secs(30)),
        }
    }
}

/// How a profile is measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Measure {
    /// Whole runs before measuring, discarded.
    pub warmup: u32,
    /// Measured runs.
    pub repetitions: u32,
    /// Record end-to-end latency at the sinks (records need 16 bytes for
    /// the timestamp). With `records.rate` set, records carry their
    /// intended emit time, which corrects for coordinated omission.
    pub latency: bool,
}

impl Default for Measure {
    fn default() -> Self {
        Self {
            warmup: 1,
            repetitions: 5,
            latency: false,
        }
    }
}

/// One sweep axis: a `--set` path and the values it takes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Axis {
    /// The field, as `--set` writes it (`network.segment_size`).
    pub set: String,
    /// Its values, in order.
    #[schemars(with = "Vec<serde_json::Value>")]
    pub values: Vec<toml::Value>,
}

/// The largest profile file read: a profile is a page of TOML, and a
/// larger file (or a device that never ends) is not one.
pub const MAX_PROFILE_BYTES: u64 = 1 << 20;

impl Profile {
    /// Reads and checks a profile file, then applies `overrides`. Only a
    /// regular file of at most [`MAX_PROFILE_BYTES`] is read, so a FIFO or
    /// a device given by mistake is refused instead of read forever.
    pub fn from_file(path: &Path, overrides: &[String]) -> Result<Self, ProfileError> {
        let text = read_regular(
            path,
            MAX_PROFILE_BYTES,
            "a profile's .toml file (a page of TOML)",
        )
        .map_err(|source| ProfileError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string(), overrides)
    }

    /// Parses `text` (named `origin` in errors), applies `overrides`, and
    /// validates the result: every field's range, then the job through the
    /// engine's own checks, then every sweep point.
    pub fn from_toml(text: &str, origin: &str, overrides: &[String]) -> Result<Self, ProfileError> {
        let source = error::Source { text, origin };
        // Parsed as a profile first, so a mistake in the file is reported
        // with its line even when overrides follow.
        let profile: Profile = toml::from_str(text).map_err(|e| source.parse_error(e))?;
        let profile = match overrides {
            [] => profile,
            _ => set::apply_all(text, origin, overrides)?,
        };
        profile
            .validate()
            .map_err(|e| source.locate(e, overrides))?;
        profile.check_sweep()?;
        Ok(profile)
    }

    /// This profile as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a profile serializes")
    }

    /// Records per subtask of a source vertex.
    pub fn source_records(&self, vertex: &Vertex) -> Option<u64> {
        vertex
            .records
            .or(self.records.count)
            .or(match self.records.duration {
                Some(_) => None,
                None => Some(DEFAULT_RECORDS),
            })
    }

    /// Whether any sink records latency.
    pub fn measures_latency(&self) -> bool {
        self.measure.latency
            || self
                .vertices
                .iter()
                .any(|v| v.kind == VertexKind::Sink && v.function.as_deref() == Some("latency"))
    }

    /// Warm-up jobs and measured repetitions together (each at most
    /// [`MAX_WARMUP`] and [`MAX_REPETITIONS`], so the sum cannot wrap).
    pub fn jobs(&self) -> u64 {
        u64::from(self.measure.warmup) + u64::from(self.measure.repetitions)
    }
}

#[cfg(test)]
mod tests;
