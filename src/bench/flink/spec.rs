//! The neutral job spec: a profile as the JSON that `flink/src/TaskbenchJob.java`
//! builds a Flink DataStream job from (`taskbench flink spec` prints it).
//!
//! Everything is resolved here, so the Java side makes no choice of its
//! own: functions carry their defaults, sources their record counts, edges
//! their partitioner and whether taskbench chains them, vertices come in
//! topological order. What Flink's API cannot express is refused with the
//! profile field named ([`Unsupported`]).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::super::profile::{
    Distribution, Network, PartitionerKind, Pin, PinPolicy, Profile, Runtime, VertexKind,
};
use super::super::units::Timeout;
use crate::network::Partitioner;

/// Version of the spec's layout (the Java job reads this one).
pub const SPEC_VERSION: u32 = 1;

/// A profile field Flink cannot take as it is.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Unsupported {
    /// The profile field, as `--set` names it.
    pub field: String,
    /// Why Flink cannot express it, and what would do.
    pub message: String,
}

fn unsupported(field: impl Into<String>, message: impl Into<String>) -> Unsupported {
    Unsupported {
        field: field.into(),
        message: message.into(),
    }
}

/// A job as Flink's DataStream API builds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    /// [`SPEC_VERSION`].
    pub spec_version: u32,
    /// The profile's name (the Flink job's name).
    pub name: String,
    /// `false`: `env.disableOperatorChaining()`.
    pub chaining: bool,
    /// What sources emit.
    pub records: RecordsSpec,
    /// Producers before consumers.
    pub vertices: Vec<VertexSpec>,
    /// One per profile edge, in the profile's order.
    pub edges: Vec<EdgeSpec>,
    /// Buffer timeout (a job setting) and the TaskManager's network options.
    pub network: NetworkSpec,
    /// Whether a sink records latency (then records carry their emit time).
    pub latency: bool,
    /// Profile fields set to something other than their default that have
    /// no Flink counterpart and do not change what the job computes
    /// (taskbench's wait strategies, pinning, huge pages, …).
    pub not_applied: Vec<String>,
}

/// `[records]`, resolved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordsSpec {
    /// Bytes per record: 8 are Flink `Long`s, more are `byte[]` records
    /// laid out as taskbench's (value, timestamp, padding).
    pub size: u64,
    /// Run each source this long (milliseconds), if set.
    pub duration_ms: Option<u64>,
    /// Records a source emits per `pollNext` call.
    pub batch: u32,
    /// Records/s per source subtask, if limited.
    pub rate: Option<f64>,
    /// Records per source subtask after which every record has one key.
    pub skew_after: Option<u64>,
    /// Keys are `value % key_space`.
    pub key_space: u64,
    /// `uniform` or `zipf`.
    pub distribution: Distribution,
    /// The Zipf law's exponent.
    pub zipf_exponent: f64,
}

/// One vertex.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VertexSpec {
    /// Its name (the Flink operator's name).
    pub name: String,
    /// Source, map, filter, flat-map, keyed-aggregate, fail-after or sink.
    pub kind: VertexKind,
    /// Subtasks.
    pub parallelism: u32,
    /// The function with its default filled in (`multiply-by-two`,
    /// `one-in-3`, `explode-2`, `count`, `checksum`, …); none for sources
    /// and fail-after.
    pub function: Option<String>,
    /// Sources: records per subtask (none: until `records.duration_ms`).
    pub records: Option<u64>,
    /// Fail-after: records passed on before failing.
    pub fail_after: Option<u64>,
}

/// One edge.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EdgeSpec {
    /// Producer.
    pub from: String,
    /// Consumer.
    pub to: String,
    /// `forward`, `rebalance`, `rescale`, `hash` (`keyBy(value % key_space)`)
    /// or `broadcast`.
    pub partitioner: PartitionerKind,
    /// Whether taskbench chains it (Flink then does too; where Flink would
    /// chain and taskbench does not, the consumer starts a new chain).
    pub chained: bool,
}

/// Network options.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetworkSpec {
    /// `env.setBufferTimeout`: milliseconds, 0 = flush after every record,
    /// -1 = only full buffers.
    pub buffer_timeout_ms: i64,
    /// `taskmanager.memory.segment-size`, bytes.
    pub segment_size: u64,
    /// `taskmanager.network.memory.buffers-per-channel`.
    pub buffers_per_channel: u32,
    /// `taskmanager.network.memory.floating-buffers-per-gate`.
    pub floating_buffers: u32,
    /// `taskmanager.network.memory.max-overdraft-buffers-per-gate`.
    #[serde(default = "flink_default_overdraft")]
    pub max_overdraft_buffers: u32,
    /// `taskmanager.memory.network.min` and `.max`, bytes, if set.
    pub memory: Option<u64>,
    /// `taskmanager.network.memory.buffer-debloat.*`, if on: target and
    /// period in milliseconds, samples, minimum buffer bytes, threshold %.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debloat: Option<DebloatSpec>,
}

/// Flink's default `max-overdraft-buffers-per-gate` (a spec written
/// before the field).
fn flink_default_overdraft() -> u32 {
    5
}

/// Buffer debloating as Flink configures it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DebloatSpec {
    /// `buffer-debloat.target`, milliseconds.
    pub target_ms: u64,
    /// `buffer-debloat.period`, milliseconds.
    pub period_ms: u64,
    /// `buffer-debloat.samples`.
    pub samples: u32,
    /// `taskmanager.memory.min-segment-size`, bytes.
    pub min_buffer_size: u32,
    /// `buffer-debloat.threshold-percentages`.
    pub threshold_pct: u32,
}

impl NetworkSpec {
    /// The TaskManager options that give this network, as `key=value`.
    pub fn cluster_options(&self) -> Vec<(String, String)> {
        let mut options = vec![
            (
                "taskmanager.memory.segment-size".to_string(),
                format!("{}b", self.segment_size),
            ),
            (
                "taskmanager.network.memory.buffers-per-channel".to_string(),
                self.buffers_per_channel.to_string(),
            ),
            (
                "taskmanager.network.memory.floating-buffers-per-gate".to_string(),
                self.floating_buffers.to_string(),
            ),
            (
                "taskmanager.network.memory.max-overdraft-buffers-per-gate".to_string(),
                self.max_overdraft_buffers.to_string(),
            ),
        ];
        if let Some(memory) = self.memory {
            for key in [
                "taskmanager.memory.network.min",
                "taskmanager.memory.network.max",
            ] {
                options.push((key.to_string(), format!("{memory}b")));
            }
        }
        if let Some(d) = &self.debloat {
            let prefix = "taskmanager.network.memory.buffer-debloat";
            options.extend([
                (format!("{prefix}.enabled"), "true".to_string()),
                (format!("{prefix}.target"), format!("{}ms", d.target_ms)),
                (format!("{prefix}.period"), format!("{}ms", d.period_ms)),
                (format!("{prefix}.samples"), d.samples.to_string()),
                (
                    format!("{prefix}.threshold-percentages"),
                    d.threshold_pct.to_string(),
                ),
                (
                    "taskmanager.memory.min-segment-size".to_string(),
                    format!("{}b", d.min_buffer_size),
                ),
            ]);
        }
        options
    }
}

/// The largest count the Java job reads as a `long`.
const MAX_LONG: u64 = i64::MAX as u64;

fn whole_millis(d: Duration, field: &str) -> Result<u64, Unsupported> {
    if d.subsec_nanos() % 1_000_000 != 0 {
        return Err(unsupported(
            field,
            format!("{d:?} is not a whole number of milliseconds, Flink's unit for it"),
        ));
    }
    u64::try_from(d.as_millis()).map_err(|_| unsupported(field, "is too long for Flink"))
}

fn fits_long(value: Option<u64>, field: &str) -> Result<(), Unsupported> {
    match value {
        Some(v) if v > MAX_LONG => Err(unsupported(
            field,
            format!("{v} is more than Flink's largest long ({MAX_LONG})"),
        )),
        _ => Ok(()),
    }
}

impl JobSpec {
    /// The spec of `profile` (already validated), or the first field Flink
    /// cannot express.
    pub fn from_profile(profile: &Profile) -> Result<Self, Unsupported> {
        let graph = profile
            .job_graph()
            .map_err(|e| unsupported("topology", e.to_string()))?;
        let order = graph
            .topological_order()
            .map_err(|e| unsupported("topology", e.to_string()))?;
        if profile.checkpoint.is_some() {
            return Err(unsupported(
                "checkpoint",
                "the generic Flink job does not configure checkpointing yet",
            ));
        }
        if let Some(v) = profile.vertices.iter().find(|v| {
            v.kind == VertexKind::Sink
                && v.function
                    .as_deref()
                    .is_some_and(|f| f.starts_with("slow-"))
        }) {
            return Err(unsupported(
                format!("vertices.{}.function", v.name),
                "the generic Flink job has no slow sink",
            ));
        }
        let r = &profile.records;
        fits_long(Some(r.key_space), "records.key_space")?;
        fits_long(r.count, "records.count")?;
        fits_long(r.skew_after, "records.skew_after")?;
        let duration_ms = r
            .duration
            .map(|d| whole_millis(d.0, "records.duration"))
            .transpose()?;
        let mut edges = Vec::with_capacity(profile.edges.len());
        for (i, (e, je)) in profile.edges.iter().zip(&graph.edges).enumerate() {
            if e.channels > 1 {
                return Err(unsupported(
                    format!("edges[{i}].channels"),
                    format!(
                        "{} channels per subtask pair: Flink's DataStream API connects two subtasks by one channel",
                        e.channels
                    ),
                ));
            }
            edges.push(EdgeSpec {
                from: e.from.clone(),
                to: e.to.clone(),
                partitioner: match je.partitioner {
                    Partitioner::Forward => PartitionerKind::Forward,
                    Partitioner::Rebalance => PartitionerKind::Rebalance,
                    Partitioner::Rescale => PartitionerKind::Rescale,
                    Partitioner::Hash { .. } => PartitionerKind::Hash,
                    Partitioner::Broadcast => PartitionerKind::Broadcast,
                },
                chained: graph.is_chainable(je),
            });
        }
        let mut vertices = Vec::with_capacity(profile.vertices.len());
        for &index in &order {
            let v = &profile.vertices[index];
            let field = |f: &str| format!("vertices.{}.{f}", v.name);
            fits_long(v.records, &field("records"))?;
            fits_long(v.fail_after, &field("fail_after"))?;
            if v.kind == VertexKind::KeyedAggregate {
                let inputs: Vec<(usize, &EdgeSpec)> = edges
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| e.to == v.name)
                    .collect();
                match inputs.as_slice() {
                    [(_, e)] if e.partitioner == PartitionerKind::Hash => {}
                    [(i, e)] => {
                        return Err(unsupported(
                            format!("edges[{i}].partitioner"),
                            format!(
                                "is {} into keyed-aggregate '{}': Flink keeps keyed state only behind keyBy; use \"hash\"",
                                kebab(&e.partitioner),
                                v.name
                            ),
                        ))
                    }
                    _ => {
                        return Err(unsupported(
                            field("kind"),
                            format!(
                                "keyed-aggregate '{}' has {} inputs: Flink keys one stream (union them before a hash edge)",
                                v.name,
                                inputs.len()
                            ),
                        ))
                    }
                }
                if let Some(keys) = v.key_space.filter(|&k| u64::from(k) != r.key_space) {
                    return Err(unsupported(
                        field("key_space"),
                        format!(
                            "{keys} differs from records.key_space ({}): Flink's keyed state is keyed by the key the hash edge routes on",
                            r.key_space
                        ),
                    ));
                }
            }
            vertices.push(VertexSpec {
                name: v.name.clone(),
                kind: v.kind,
                parallelism: v.parallelism,
                function: function(profile, v.kind, v.function.as_deref()),
                records: match v.kind {
                    VertexKind::Source => profile.source_records(v),
                    _ => None,
                },
                fail_after: v.fail_after,
            });
        }
        let n = &profile.network;
        Ok(JobSpec {
            spec_version: SPEC_VERSION,
            name: profile.name.clone(),
            chaining: profile.chaining,
            records: RecordsSpec {
                size: r.size.bytes(),
                duration_ms,
                batch: r.batch,
                rate: r.rate,
                skew_after: r.skew_after,
                key_space: r.key_space,
                distribution: r.distribution,
                zipf_exponent: r.zipf_exponent,
            },
            vertices,
            edges,
            network: NetworkSpec {
                buffer_timeout_ms: match n.buffer_timeout {
                    Timeout::Never => -1,
                    Timeout::After(d) => whole_millis(d, "network.buffer_timeout")?
                        .try_into()
                        .map_err(|_| unsupported("network.buffer_timeout", "is too long"))?,
                },
                segment_size: n.segment_size.bytes(),
                buffers_per_channel: n.buffers_per_channel,
                floating_buffers: n.floating_buffers,
                max_overdraft_buffers: n.max_overdraft_buffers,
                memory: n.memory.map(|m| m.bytes()),
                debloat: n
                    .debloat
                    .as_ref()
                    .and_then(|d| d.config())
                    .map(|d| DebloatSpec {
                        target_ms: d.target.as_millis() as u64,
                        period_ms: d.period.as_millis() as u64,
                        samples: d.samples,
                        min_buffer_size: d.min_buffer_size,
                        threshold_pct: d.threshold_pct,
                    }),
            },
            latency: profile.measures_latency(),
            not_applied: not_applied(profile),
        })
    }

    /// The largest parallelism: the slots a MiniCluster needs.
    pub fn max_parallelism(&self) -> u32 {
        self.vertices
            .iter()
            .map(|v| v.parallelism)
            .max()
            .unwrap_or(1)
    }

    /// The sink vertices' names.
    pub fn sinks(&self) -> impl Iterator<Item = &VertexSpec> {
        self.vertices.iter().filter(|v| v.kind == VertexKind::Sink)
    }
}

/// How serde names `value` (`"rebalance"`, `"keyed-aggregate"`).
pub(crate) fn kebab<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        other => format!("{other:?}"),
    }
}

/// The function a vertex runs, its default filled in (the profile has
/// already checked it).
fn function(profile: &Profile, kind: VertexKind, given: Option<&str>) -> Option<String> {
    let default = match kind {
        VertexKind::Source | VertexKind::FailAfter => return None,
        VertexKind::Map => "multiply-by-two",
        VertexKind::Filter => "even",
        VertexKind::FlatMap => "explode-2",
        VertexKind::KeyedAggregate => "count",
        VertexKind::Sink if profile.measure.latency => "latency",
        VertexKind::Sink => "checksum",
    };
    Some(given.unwrap_or(default).to_string())
}

/// Fields set away from their defaults that Flink has no counterpart for.
fn not_applied(profile: &Profile) -> Vec<String> {
    let (n, dn) = (&profile.network, Network::default());
    let (rt, drt) = (&profile.runtime, Runtime::default());
    let mut fields = Vec::new();
    let mut differs = |field: &str, differs: bool| {
        if differs {
            fields.push(field.to_string());
        }
    };
    differs("network.huge_pages", n.huge_pages != dn.huge_pages);
    differs("network.max_record_size", n.max_record_size.is_some());
    differs(
        "network.buffers_request_timeout",
        n.buffers_request_timeout != dn.buffers_request_timeout,
    );
    differs("runtime.wait", rt.wait != drt.wait);
    differs("runtime.spins", rt.spins != drt.spins);
    differs("runtime.yields", rt.yields != drt.yields);
    differs("runtime.pin", rt.pin != Pin::Policy(PinPolicy::Spread));
    differs(
        "runtime.cancel_timeout",
        rt.cancel_timeout != drt.cancel_timeout,
    );
    differs("sweep", !profile.sweep.is_empty());
    fields
}
