//! Benchmark profiles: a job, its records, network and runtime settings,
//! how to measure it and what to sweep, as TOML.
//!
//! Every table refuses unknown fields, every field has a default (see
//! `profiles/README.md`), and any field can be overridden with
//! `--set path=value`, where array elements are addressed by their `name`
//! (`vertices.source.parallelism=4`) or index (`edges.0.channels=100`).

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::units::{Size, Span, Timeout};
use crate::job::{ExecutionGraph, JobEdge, JobGraph, JobOptions, JobVertex, Pinning};
use crate::memory::{BufferPool, MemoryConfig, MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE};
use crate::network::{NetworkConfig, Partitioner};
use crate::streaming::{
    AggregateKind, BufferTimeout, FilterFunction, FlatMapFunction, KeyDistribution, MapFunction,
    OperatorSpec, SinkKind, SourceSpec,
};
use crate::sync::WaitStrategy;

/// A benchmark profile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    /// Axes `taskbench sweep` runs over (first axis on the x axis).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sweep: Vec<Axis>,
}

fn yes() -> bool {
    true
}

/// A published flink-benchmarks figure to hold results against.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlinkReference {
    /// Benchmark class and method, e.g. `InputBenchmark.mapRebalanceMapSink`.
    pub benchmark: String,
    /// Its published throughput in records per millisecond.
    pub ops_per_ms: f64,
    /// The machine that figure came from.
    #[serde(default = "flink_machine")]
    pub machine: String,
}

fn flink_machine() -> String {
    "Flink's benchmark machine (4-core bare metal)".into()
}

/// What the sources emit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Distribution {
    /// Every key as often.
    Uniform,
    /// Key of rank `k` with weight `1 / (k + 1)^records.zipf_exponent`.
    Zipf,
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Network {
    /// Segment (buffer) size: a power of two from 4KiB to 1MiB.
    pub segment_size: Size,
    /// Exclusive buffers per input channel.
    pub buffers_per_channel: u32,
    /// Floating buffers per input gate.
    pub floating_buffers: u32,
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
}

impl Default for Network {
    fn default() -> Self {
        let n = NetworkConfig::default();
        Self {
            segment_size: Size(n.memory.segment_size as u64),
            buffers_per_channel: n.buffers_per_channel,
            floating_buffers: n.floating_buffers,
            buffer_timeout: Timeout::After(Duration::from_millis(100)),
            memory: None,
            max_record_size: None,
            huge_pages: true,
            buffers_request_timeout: Span(n.buffers_request_timeout),
        }
    }
}

/// How waiting tasks wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Pin {
    /// `"spread"` or `"none"`.
    Policy(PinPolicy),
    /// Subtask `k` on `cores[k mod len]`.
    Cores(Vec<usize>),
}

/// A named pinning policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PinPolicy {
    /// One core per subtask when there are enough; else unpinned.
    Spread,
    /// Unpinned.
    None,
}

/// Waiting and pinning.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Axis {
    /// The field, as `--set` writes it (`network.segment_size`).
    pub set: String,
    /// Its values, in order.
    pub values: Vec<toml::Value>,
}

/// Why a profile cannot be used. The message names the field.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The file could not be read.
    #[error("cannot read profile {path}: {source}")]
    Read {
        /// The path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not TOML, or not a profile (unknown field, wrong type). The TOML
    /// error names the line and the field.
    #[error("{origin}: {message}")]
    Parse {
        /// The file (or the profile's name).
        origin: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A `--set` that cannot apply.
    #[error("--set {assignment}: {message}")]
    Override {
        /// The assignment as given.
        assignment: String,
        /// Why.
        message: String,
    },
    /// A field's value is not allowed.
    #[error("{field}: {message}")]
    Invalid {
        /// The field's path.
        field: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// A field's value in a file is not allowed.
    #[error("{origin}{}: {field}: {message}", line.map(|l| format!(", line {l}")).unwrap_or_default())]
    InvalidIn {
        /// The file (or the profile's name).
        origin: String,
        /// The field's line, when it can be told.
        line: Option<usize>,
        /// The field's path.
        field: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// A point of the sweep is not a valid profile.
    #[error("sweep point {point}: {source}")]
    SweepPoint {
        /// The point's assignments.
        point: String,
        /// Why it is refused.
        source: Box<ProfileError>,
    },
}

/// The line (1-based) where `field` (`network.segment_size`,
/// `vertices.map.parallelism`, `edges[1].to`) is set in `text`, if one line
/// clearly sets it.
fn field_line(text: &str, field: &str) -> Option<usize> {
    let parts: Vec<&str> = field.split('.').collect();
    let key = parts.last()?.split('[').next()?;
    let sets = |line: &str, key: &str| {
        line.trim_start()
            .strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with('='))
    };
    let lines: Vec<&str> = text.lines().collect();
    // A vertex's field: search from the line naming the vertex to the next table.
    let start = match parts.as_slice() {
        ["vertices", name, _] => {
            let named = |l: &str| sets(l, "name") && l.contains(&format!("\"{name}\""));
            let at = lines.iter().position(|l| named(l))?;
            lines[..at]
                .iter()
                .rposition(|l| l.trim_start().starts_with('['))?
        }
        _ => 0,
    };
    let found: Vec<usize> = lines
        .iter()
        .enumerate()
        .skip(start)
        .take_while(|(i, l)| *i == start || start == 0 || !l.trim_start().starts_with('['))
        .filter(|(_, l)| sets(l, key))
        .map(|(i, _)| i + 1)
        .collect();
    match found.as_slice() {
        [line] => Some(*line),
        [first, ..] if start != 0 => Some(*first),
        _ => None,
    }
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ProfileError {
    ProfileError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

impl Profile {
    /// Reads and checks a profile file, then applies `overrides`.
    pub fn from_file(path: &Path, overrides: &[String]) -> Result<Self, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string(), overrides)
    }

    /// Parses `text` (named `origin` in errors), applies `overrides`, and
    /// validates the result.
    pub fn from_toml(text: &str, origin: &str, overrides: &[String]) -> Result<Self, ProfileError> {
        let parse_error = |e: toml::de::Error| ProfileError::Parse {
            origin: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        };
        // Parsed as a profile first, so a mistake in the file is reported
        // with its line even when overrides follow.
        let profile: Profile = toml::from_str(text).map_err(parse_error)?;
        // A bad value from the file is reported with the file and its line;
        // one a `--set` gave, with the field alone.
        let locate = |e: ProfileError| match e {
            ProfileError::Invalid { field, message }
                if !overrides.iter().any(|o| {
                    // `edges[0].to` is `--set edges.0.to=…`.
                    let path = field.replace('[', ".").replace(']', "");
                    o.split('=').next().is_some_and(|p| p.trim() == path)
                }) =>
            {
                ProfileError::InvalidIn {
                    origin: origin.to_string(),
                    line: field_line(text, &field),
                    field,
                    message,
                }
            }
            other => other,
        };
        if overrides.is_empty() {
            profile.validate().map_err(locate)?;
            profile.validate_sweep()?;
            return Ok(profile);
        }
        let base: toml::Table = toml::from_str(text).map_err(parse_error)?;
        let mut table = base.clone();
        for assignment in overrides {
            apply_override(&mut table, assignment)?;
        }
        let profile = Profile::deserialize(toml::Value::Table(table)).map_err(|e| {
            // Name the first assignment that breaks the profile, applying
            // them one more at a time (the message alone may not say which
            // vertex or edge a type error is in).
            let mut table = base;
            let culprit = overrides.iter().find(|assignment| {
                apply_override(&mut table, assignment).is_ok()
                    && Profile::deserialize(toml::Value::Table(table.clone())).is_err()
            });
            ProfileError::Override {
                assignment: culprit
                    .cloned()
                    .unwrap_or_else(|| overrides.join(" --set ")),
                message: e.to_string().trim_end().to_string(),
            }
        })?;
        profile.validate().map_err(locate)?;
        profile.validate_sweep()?;
        Ok(profile)
    }

    /// Checks every point of the sweep as `sweep` will build it, so a bad
    /// axis is refused before the first point runs.
    fn validate_sweep(&self) -> Result<(), ProfileError> {
        if self.sweep.is_empty() {
            return Ok(());
        }
        let base = self.without_sweep();
        for point in self.sweep_points() {
            self.point(&base, &point)
                .map_err(|e| ProfileError::SweepPoint {
                    point: point.join(" "),
                    source: Box::new(e),
                })?;
        }
        Ok(())
    }

    /// This profile as TOML, its sweep axes left out: the base each point
    /// is built from.
    pub fn without_sweep(&self) -> String {
        let mut base = self.clone();
        base.sweep.clear();
        base.to_toml()
    }

    /// The profile of one sweep point: `base` (from
    /// [`without_sweep`](Self::without_sweep)) with the point's assignments,
    /// checked on its own, and carrying this profile's axes.
    pub fn point(&self, base: &str, point: &[String]) -> Result<Profile, ProfileError> {
        let mut at = Profile::from_toml(base, &self.name, point)?;
        at.sweep = self.sweep.clone();
        Ok(at)
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

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ProfileError> {
        if self.name.trim().is_empty() {
            return Err(invalid("name", "is empty; give the profile a name"));
        }
        let r = &self.records;
        let n = &self.network;
        let segment = n.segment_size.bytes();
        if !segment.is_power_of_two()
            || !(MIN_SEGMENT_SIZE as u64..=MAX_SEGMENT_SIZE as u64).contains(&segment)
        {
            return Err(invalid(
                "network.segment_size",
                format!(
                    "{} is not allowed: use a power of two from 4KiB to 1MiB",
                    n.segment_size
                ),
            ));
        }
        if n.buffers_per_channel == 0 {
            return Err(invalid(
                "network.buffers_per_channel",
                "is 0: every input channel needs at least 1 exclusive buffer",
            ));
        }
        if let Some(max) = n.max_record_size {
            if max.bytes() == 0 || max.bytes() > MAX_RECORD_SIZE {
                return Err(invalid(
                    "network.max_record_size",
                    format!("{max} is not allowed: use 1B to {}", Size(MAX_RECORD_SIZE)),
                ));
            }
        }
        let min_size = if self.measure.latency { 16 } else { 8 };
        if r.size.bytes() < min_size {
            return Err(invalid(
                "records.size",
                format!(
                    "{} is too small: records need at least {min_size} bytes{}",
                    r.size,
                    if self.measure.latency {
                        " (8 for the value, 8 for the latency timestamp)"
                    } else {
                        " (the value)"
                    }
                ),
            ));
        }
        if let Some(max) = n.max_record_size.filter(|&max| r.size > max) {
            return Err(invalid(
                "records.size",
                format!("{} is larger than network.max_record_size ({max})", r.size),
            ));
        }
        if r.size.bytes() > MAX_RECORD_SIZE {
            return Err(invalid(
                "records.size",
                format!("{} is more than {}", r.size, Size(MAX_RECORD_SIZE)),
            ));
        }
        if r.batch == 0 {
            return Err(invalid(
                "records.batch",
                "is 0: emit at least 1 record per turn",
            ));
        }
        if r.key_space == 0 {
            return Err(invalid(
                "records.key_space",
                "is 0: there must be at least 1 key",
            ));
        }
        if let Some(rate) = r.rate {
            if !(rate.is_finite() && rate >= 1.0) {
                return Err(invalid(
                    "records.rate",
                    format!(
                        "{rate:?} is not allowed: give at least 1 record per second, or leave it unset"
                    ),
                ));
            }
        }
        if !(0.0..=10.0).contains(&r.zipf_exponent) {
            return Err(invalid(
                "records.zipf_exponent",
                format!("{} is not allowed: use 0 to 10", r.zipf_exponent),
            ));
        }
        if r.distribution == Distribution::Zipf && r.key_space > MAX_KEYS {
            return Err(invalid(
                "records.key_space",
                format!(
                    "{} keys is more than {MAX_KEYS} for Zipf-distributed keys (their law is laid out key by key at deployment)",
                    r.key_space
                ),
            ));
        }
        if r.duration.is_some_and(|d| d.0.is_zero()) {
            return Err(invalid(
                "records.duration",
                "is 0: give a positive duration",
            ));
        }
        if self.measure.repetitions == 0 {
            return Err(invalid(
                "measure.repetitions",
                "is 0: measure at least 1 run",
            ));
        }
        for (field, span) in [
            ("runtime.spin_for", self.runtime.spin_for),
            ("runtime.park_after", self.runtime.park_after),
        ] {
            if span.0 > Duration::from_secs(1) {
                return Err(invalid(
                    field,
                    format!("{span} is more than 1s: a wait that long should sleep"),
                ));
            }
        }
        if let Pin::Cores(cores) = &self.runtime.pin {
            if cores.is_empty() {
                return Err(invalid(
                    "runtime.pin",
                    "is an empty core list: give core ids, \"spread\" or \"none\"",
                ));
            }
            let allowed: Vec<usize> = core_affinity::get_core_ids()
                .unwrap_or_default()
                .into_iter()
                .map(|c| c.id)
                .collect();
            if let Some(core) = cores.iter().find(|c| !allowed.contains(c)) {
                return Err(invalid(
                    "runtime.pin",
                    format!(
                        "core {core} is not one this process may run on (allowed: {allowed:?})"
                    ),
                ));
            }
        }
        self.check_topology()?;
        let plan = self.plan()?;
        let max_record = n.max_record_size.unwrap_or(r.size).bytes();
        let spill = plan.channels.len() as u64 * max_record;
        if spill > MAX_SPILL {
            return Err(invalid(
                if n.max_record_size.is_some() {
                    "network.max_record_size"
                } else {
                    "records.size"
                },
                format!(
                    "{} input channels with a spill buffer of {} each need {} at deployment; at most {}: lower the record size or the channel count",
                    plan.channels.len(),
                    Size(max_record),
                    Size(spill),
                    Size(MAX_SPILL)
                ),
            ));
        }
        let busy_sources = || {
            self.vertices
                .iter()
                .filter(|v| v.kind == VertexKind::Source && !v.idle)
        };
        if busy_sources().next().is_none() {
            return Err(invalid(
                "vertices",
                "every source is idle: an idle source stays open until the job's other sources finish, so the job would never end",
            ));
        }
        if r.duration.is_none() && busy_sources().all(|v| self.source_records(v) == Some(0)) {
            return Err(invalid(
                "records.count",
                "is 0 for every source: the job would move no record",
            ));
        }
        if let Some(memory) = n.memory {
            let have = memory.bytes() / segment;
            let need: u64 = plan
                .partitions
                .iter()
                .map(|&(_, subpartitions)| u64::from(BufferPool::default_bounds(subpartitions).0))
                .sum();
            if have < need {
                return Err(invalid(
                    "network.memory",
                    format!(
                        "{memory} is {have} segments of {}, but the job's partitions need at least {need} (subpartitions + 1 each): raise network.memory or leave it unset",
                        n.segment_size
                    ),
                ));
            }
        }
        // What `run` derives from the profile must derive.
        self.job_options_for(&plan)?;
        for (i, axis) in self.sweep.iter().enumerate() {
            if axis.values.is_empty() {
                return Err(invalid(
                    format!("sweep[{i}].values"),
                    "is empty: give the axis at least one value",
                ));
            }
            if axis.set.starts_with("sweep") {
                return Err(invalid(
                    format!("sweep[{i}].set"),
                    "cannot sweep the sweep itself",
                ));
            }
        }
        Ok(())
    }

    fn check_topology(&self) -> Result<(), ProfileError> {
        if self.vertices.is_empty() {
            return Err(invalid("vertices", "the profile has no vertex"));
        }
        let mut names = HashSet::new();
        for v in &self.vertices {
            let field = |f: &str| format!("vertices.{}.{f}", v.name);
            if !names.insert(v.name.as_str()) {
                return Err(invalid(
                    field("name"),
                    "is used by two vertices; names must be unique",
                ));
            }
            if v.parallelism == 0 {
                return Err(invalid(
                    field("parallelism"),
                    "is 0: a vertex needs at least 1 subtask",
                ));
            }
            if v.parallelism > 4096 {
                return Err(invalid(
                    field("parallelism"),
                    format!("{} is more than 4096 subtasks", v.parallelism),
                ));
            }
            if v.records.is_some() && v.kind != VertexKind::Source {
                return Err(invalid(field("records"), "only a source emits records"));
            }
            if v.key_space.is_some() && v.kind != VertexKind::KeyedAggregate {
                return Err(invalid(
                    field("key_space"),
                    "only a keyed-aggregate has keys",
                ));
            }
            if v.key_space == Some(0) {
                return Err(invalid(
                    field("key_space"),
                    "is 0: there must be at least 1 key",
                ));
            }
            if v.kind == VertexKind::KeyedAggregate {
                let (keys, field) = match v.key_space {
                    Some(keys) => (u64::from(keys), field("key_space")),
                    None => (self.records.key_space, "records.key_space".to_string()),
                };
                if keys > MAX_KEYS {
                    return Err(invalid(
                        field,
                        format!(
                            "{keys} keys is more than {MAX_KEYS} for keyed-aggregate '{}' (its state holds a slot per key)",
                            v.name
                        ),
                    ));
                }
            }
            if v.fail_after.is_some() != (v.kind == VertexKind::FailAfter) {
                return Err(invalid(
                    field("fail_after"),
                    "is set exactly on fail-after vertices (how many records pass before the failure)",
                ));
            }
            if v.idle && v.kind != VertexKind::Source {
                return Err(invalid(
                    field("idle"),
                    "is for sources only (a source that stays open without emitting)",
                ));
            }
            if v.idle && v.records.is_some() {
                return Err(invalid(
                    field("records"),
                    "is set on an idle source, which emits nothing: drop one of the two",
                ));
            }
            self.operator(v)?;
        }
        let known = || {
            self.vertices
                .iter()
                .map(|v| v.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        for (i, e) in self.edges.iter().enumerate() {
            for (end, name) in [("from", &e.from), ("to", &e.to)] {
                if !names.contains(name.as_str()) {
                    return Err(invalid(
                        format!("edges[{i}].{end}"),
                        format!("no vertex is named '{name}' (vertices: {})", known()),
                    ));
                }
            }
            if e.channels == 0 {
                return Err(invalid(
                    format!("edges[{i}].channels"),
                    "is 0: an edge needs at least 1 channel per subtask pair",
                ));
            }
        }
        for v in &self.vertices {
            let inputs = self.edges.iter().filter(|e| e.to == v.name).count();
            let outputs = self.edges.iter().filter(|e| e.from == v.name).count();
            match v.kind {
                VertexKind::Source if inputs > 0 => {
                    return Err(invalid(
                        "edges",
                        format!("source '{}' has an input edge; sources have none", v.name),
                    ))
                }
                VertexKind::Sink if outputs > 0 => {
                    return Err(invalid(
                        "edges",
                        format!("sink '{}' has an output edge; sinks have none", v.name),
                    ))
                }
                VertexKind::Source => {}
                _ if inputs == 0 => {
                    return Err(invalid(
                        "edges",
                        format!("'{}' has no input edge; only sources may have none", v.name),
                    ))
                }
                _ => {}
            }
            if v.kind != VertexKind::Sink && outputs == 0 {
                return Err(invalid(
                    "edges",
                    format!("'{}' has no output edge; only sinks may have none", v.name),
                ));
            }
        }
        Ok(())
    }

    /// The operator of a non-source, non-sink vertex; the sink of a sink.
    fn operator(&self, v: &Vertex) -> Result<Option<OperatorSpec>, ProfileError> {
        let field = format!("vertices.{}.function", v.name);
        let function = v.function.as_deref();
        let bad = |allowed: &str| {
            invalid(
                field.clone(),
                format!(
                    "'{}' is not a {:?} function: use {allowed}",
                    function.unwrap_or_default(),
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
            Some("latency") if self.records.size.bytes() >= 16 => Ok(SinkKind::Latency),
            Some("latency") => Err(invalid(
                format!("vertices.{}.function", v.name),
                "a latency sink needs records.size of at least 16 bytes (value and timestamp)",
            )),
            Some(other) => Err(invalid(
                format!("vertices.{}.function", v.name),
                format!("'{other}' is not a sink function: use checksum or latency"),
            )),
        }
    }

    /// Whether any sink records latency.
    pub fn measures_latency(&self) -> bool {
        self.measure.latency
            || self
                .vertices
                .iter()
                .any(|v| v.kind == VertexKind::Sink && v.function.as_deref() == Some("latency"))
    }

    /// The job graph this profile describes.
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
        let mut edges = Vec::with_capacity(self.edges.len());
        for (i, e) in self.edges.iter().enumerate() {
            let missing = |end: &str, name: &str| {
                invalid(
                    format!("edges[{i}].{end}"),
                    format!("no vertex is named '{name}'"),
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
                PartitionerKind::Hash => {
                    Partitioner::hash_keyed(to_parallelism * e.channels, self.records.key_space)
                }
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
        graph
            .validate()
            .map_err(|e| invalid("topology", e.to_string()))?;
        Ok(graph)
    }

    /// How the job runs: network memory sized for the job unless
    /// `network.memory` says otherwise.
    pub fn job_options(&self) -> Result<JobOptions, ProfileError> {
        self.job_options_for(&self.plan()?)
    }

    /// The job's execution plan (chained tasks, partitions, channels).
    fn plan(&self) -> Result<ExecutionGraph, ProfileError> {
        ExecutionGraph::build(&self.job_graph()?).map_err(|e| invalid("topology", e.to_string()))
    }

    /// [`job_options`](Self::job_options) for an already built `plan`.
    fn job_options_for(&self, plan: &ExecutionGraph) -> Result<JobOptions, ProfileError> {
        let n = &self.network;
        let segment = n.segment_size.bytes();
        let total = match n.memory {
            Some(memory) => memory.bytes() / segment,
            None => plan
                .partitions
                .iter()
                .map(|&(_, subpartitions)| u64::from(BufferPool::default_bounds(subpartitions).1))
                .sum::<u64>()
                .max(1),
        };
        let total_segments = u32::try_from(total).map_err(|_| {
            invalid(
                "network.memory",
                format!(
                    "{total} segments of {} is more than the {} this build supports",
                    n.segment_size,
                    u32::MAX
                ),
            )
        })?;
        let r = &self.runtime;
        Ok(JobOptions {
            network: NetworkConfig {
                memory: MemoryConfig {
                    segment_size: segment as usize,
                    total_segments,
                    huge_pages: n.huge_pages,
                },
                buffers_per_channel: n.buffers_per_channel,
                floating_buffers: n.floating_buffers,
                max_record_size: n.max_record_size.unwrap_or(self.records.size).bytes() as usize,
                buffers_request_timeout: n.buffers_request_timeout.0,
            },
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
            checkpointing: None,
            checkpoint_dir: None,
        })
    }

    /// Subtasks after chaining (threads the job starts).
    pub fn task_count(&self) -> usize {
        self.job_graph()
            .ok()
            .and_then(|g| ExecutionGraph::build(&g).ok())
            .map_or(0, |p| p.subtasks())
    }

    /// Every point of the sweep: the `--set` assignments of each, first
    /// axis varying slowest.
    pub fn sweep_points(&self) -> Vec<Vec<String>> {
        let mut points = vec![Vec::new()];
        for axis in &self.sweep {
            points = points
                .into_iter()
                .flat_map(|point| {
                    axis.values.iter().map(move |value| {
                        let mut p = point.clone();
                        p.push(format!("{}={}", axis.set, value_text(value)));
                        p
                    })
                })
                .collect();
        }
        points
    }
}

/// A TOML value as `--set` takes it (strings unquoted).
pub fn value_text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Applies one `path=value` assignment to a profile's TOML table. The value
/// is read as TOML (`4`, `true`, `[0, 1]`, `"x"`), or else as a bare string.
pub fn apply_override(table: &mut toml::Table, assignment: &str) -> Result<(), ProfileError> {
    let fail = |message: String| ProfileError::Override {
        assignment: assignment.to_string(),
        message,
    };
    let (path, text) = assignment
        .split_once('=')
        .ok_or_else(|| fail("expected path=value, e.g. network.segment_size=64KiB".into()))?;
    let path: Vec<&str> = path.trim().split('.').collect();
    if path.iter().any(|p| p.is_empty()) {
        return Err(fail("the path has an empty part".into()));
    }
    let text = text.trim();
    let value = toml::from_str::<toml::Table>(&format!("v = {text}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(text.to_string()));
    set_path(table, &path, value).map_err(fail)
}

fn set_path(table: &mut toml::Table, path: &[&str], value: toml::Value) -> Result<(), String> {
    let (key, rest) = path.split_first().expect("paths are not empty");
    if rest.is_empty() {
        table.insert((*key).to_string(), value);
        return Ok(());
    }
    let entry = table
        .entry((*key).to_string())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    match entry {
        toml::Value::Table(t) => set_path(t, rest, value),
        toml::Value::Array(items) => {
            // Array elements are chosen by name, or else by index.
            let (selector, rest) = rest.split_first().expect("rest is not empty");
            let at = items
                .iter()
                .position(|item| item.get("name").and_then(toml::Value::as_str) == Some(*selector))
                .or_else(|| selector.parse::<usize>().ok().filter(|&i| i < items.len()))
                .ok_or_else(|| format!("'{key}' has no element named or numbered '{selector}'"))?;
            if rest.is_empty() {
                return Err(format!(
                    "name a field of {key}.{selector}, e.g. {key}.{selector}.parallelism"
                ));
            }
            match &mut items[at] {
                toml::Value::Table(t) => set_path(t, rest, value),
                _ => Err(format!("{key}.{selector} is not a table")),
            }
        }
        _ => Err(format!("'{key}' is a value, not a table")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAP_SINK: &str = r#"
name = "map-sink"
[[vertices]]
name = "source"
kind = "source"
[[vertices]]
name = "map"
kind = "map"
[[vertices]]
name = "sink"
kind = "sink"
[[edges]]
from = "source"
to = "map"
[[edges]]
from = "map"
to = "sink"
"#;

    #[test]
    fn a_job_may_have_a_million_channels_but_not_one_more() {
        let with = |p_source: u32| {
            Profile::from_toml(
                MAP_SINK,
                "test",
                &[
                    format!("vertices.source.parallelism={p_source}"),
                    "vertices.map.parallelism=1024".into(),
                    "vertices.sink.parallelism=1024".into(),
                    "edges.0.partitioner=rebalance".into(),
                    "records.count=1".into(),
                ],
            )
        };
        // 1024 × 1024 channels on the rebalance edge; map -> sink chains.
        assert!(with(1024).is_ok());
        let refused = with(1025).unwrap_err().to_string();
        assert!(refused.contains("1049600 channels"), "{refused}");
        // A forward edge at the same parallelism is one channel a subtask.
        assert!(Profile::from_toml(
            MAP_SINK,
            "test",
            &[
                "vertices.source.parallelism=4096".into(),
                "vertices.map.parallelism=4096".into(),
                "vertices.sink.parallelism=4096".into(),
                "chaining=false".into(),
                "records.count=1".into(),
            ],
        )
        .is_ok());
    }

    #[test]
    fn a_bad_value_is_found_on_its_line() {
        let text = format!("{MAP_SINK}[network]\nsegment_size = \"3KiB\"\n");
        let line = text
            .lines()
            .position(|l| l.starts_with("segment_size"))
            .unwrap()
            + 1;
        assert_eq!(field_line(&text, "network.segment_size"), Some(line));
        // A vertex's field: within that vertex's table.
        let text = MAP_SINK.replace("kind = \"map\"", "kind = \"map\"\nparallelism = 0");
        let line = text
            .lines()
            .position(|l| l.starts_with("parallelism"))
            .unwrap()
            + 1;
        assert_eq!(field_line(&text, "vertices.map.parallelism"), Some(line));
        assert_eq!(field_line(&text, "vertices.sink.parallelism"), None);
        // Set on several lines: no guess.
        assert_eq!(field_line(&text, "edges[1].to"), None);
        let err = Profile::from_toml(&text, "p.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("p.toml, line {line}: vertices.map.parallelism")),
            "{err}"
        );
    }

    #[test]
    fn a_minimal_profile_gets_flinks_defaults() {
        let p = Profile::from_toml(MAP_SINK, "test", &[]).unwrap();
        assert_eq!(p.network.segment_size, Size(32 << 10));
        assert_eq!(p.network.buffers_per_channel, 2);
        assert_eq!(p.network.floating_buffers, 8);
        assert_eq!(
            p.network.buffer_timeout,
            Timeout::After(Duration::from_millis(100))
        );
        assert!(p.chaining);
        let graph = p.job_graph().unwrap();
        assert_eq!(graph.edges[0].partitioner, Partitioner::Forward);
        assert_eq!(
            graph.vertices[0].source.unwrap().records,
            Some(DEFAULT_RECORDS)
        );
        assert_eq!(
            p.task_count(),
            1,
            "source, map and sink chain into one task"
        );
    }

    #[test]
    fn overrides_reach_named_array_elements_and_nested_tables() {
        let p = Profile::from_toml(
            MAP_SINK,
            "test",
            &[
                "vertices.sink.parallelism=2".into(),
                "edges.1.partitioner=rebalance".into(),
                "network.segment_size=64KiB".into(),
                "runtime.pin=[0]".into(),
                "records.count=5".into(),
            ],
        )
        .unwrap();
        assert_eq!(p.vertices[2].parallelism, 2);
        assert_eq!(p.edges[1].partitioner, Some(PartitionerKind::Rebalance));
        assert_eq!(p.network.segment_size, Size(64 << 10));
        assert_eq!(p.runtime.pin, Pin::Cores(vec![0]));
        assert_eq!(p.task_count(), 3);
        // The profile as run round-trips through TOML.
        assert_eq!(Profile::from_toml(&p.to_toml(), "again", &[]).unwrap(), p);
    }

    #[test]
    fn mistakes_are_named() {
        let err = |text: &str, overrides: &[&str]| {
            let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
            Profile::from_toml(text, "p.toml", &o)
                .unwrap_err()
                .to_string()
        };
        let unknown = err(&format!("{MAP_SINK}\n[network]\nsegmnt_size = 4096\n"), &[]);
        assert!(
            unknown.contains("segmnt_size") && unknown.contains("line"),
            "{unknown}"
        );
        let parallelism = err(MAP_SINK, &["vertices.map.parallelism=0"]);
        assert!(
            parallelism.contains("vertices.map.parallelism"),
            "{parallelism}"
        );
        let segment = err(MAP_SINK, &["network.segment_size=3000"]);
        assert!(
            segment.contains("network.segment_size") && segment.contains("power of two"),
            "{segment}"
        );
        let missing = err(MAP_SINK, &["edges.0.to=nowhere"]);
        assert!(
            missing.contains("edges[0].to") && missing.contains("nowhere"),
            "{missing}"
        );
        let bad_set = err(MAP_SINK, &["vertices.nosuch.parallelism=2"]);
        assert!(
            bad_set.contains("--set") && bad_set.contains("nosuch"),
            "{bad_set}"
        );
        let no_eq = err(MAP_SINK, &["network.segment_size"]);
        assert!(no_eq.contains("path=value"), "{no_eq}");
        let wrong_type = err(MAP_SINK, &["vertices.map.parallelism=many"]);
        assert!(
            wrong_type.contains("parallelism") || wrong_type.contains("invalid type"),
            "{wrong_type}"
        );
        let big = err(
            MAP_SINK,
            &["records.size=2MiB", "network.max_record_size=1MiB"],
        );
        assert!(
            big.contains("records.size") && big.contains("max_record_size"),
            "{big}"
        );
        let memory = err(
            MAP_SINK,
            &["network.memory=32KiB", "vertices.sink.parallelism=4"],
        );
        assert!(memory.contains("network.memory"), "{memory}");
        let cycle = err(
            &format!("{MAP_SINK}\n[[edges]]\nfrom = \"sink\"\nto = \"map\"\n"),
            &[],
        );
        assert!(cycle.contains("sink 'sink' has an output edge"), "{cycle}");
    }

    #[test]
    fn sweep_points_vary_the_first_axis_slowest() {
        let text = format!(
            "{MAP_SINK}\n[[sweep]]\nset = \"vertices.source.parallelism\"\nvalues = [1, 2]\n[[sweep]]\nset = \"network.segment_size\"\nvalues = [\"4KiB\", \"1MiB\"]\n"
        );
        let p = Profile::from_toml(&text, "sweep", &[]).unwrap();
        let points = p.sweep_points();
        assert_eq!(points.len(), 4);
        assert_eq!(
            points[1],
            vec![
                "vertices.source.parallelism=1".to_string(),
                "network.segment_size=1MiB".to_string()
            ]
        );
        for point in points {
            Profile::from_toml(&text, "sweep", &point).unwrap();
        }
    }
}
