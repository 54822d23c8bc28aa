//! Every field's range, checked where the profile is read (invariant 7):
//! no value that passes can make the engine's arithmetic wrap, a deadline
//! overflow, a thread name panic or a job run forever. The job's shape is
//! the engine's to judge ([`super::job`]); what it costs in memory is
//! checked here against the harness's limits.

use std::collections::HashSet;
use std::time::Duration;

use super::error::{invalid, ProfileError};
use super::{Distribution, Pin, Profile, Vertex, VertexKind, MAX_KEYS, MAX_RECORD_SIZE, MAX_SPILL};
use crate::bench::units::Size;
use crate::job::ExecutionGraph;
use crate::memory::BufferPool;

/// The most records a source subtask may be asked for: at the fastest
/// rate measured here (1.5 G records/s) about 11 minutes. Longer runs give
/// `records.duration`.
pub const MAX_RECORDS: u64 = 1_000_000_000_000;

/// The highest offered rate, records/s per source subtask: one record a
/// nanosecond, the resolution records are stamped with.
pub const MAX_RATE: f64 = 1e9;

/// The most measured repetitions.
pub const MAX_REPETITIONS: u32 = 100_000;

/// The most warm-up jobs.
pub const MAX_WARMUP: u32 = 100_000;

/// The most subtasks of a vertex.
pub const MAX_PARALLELISM: u32 = 4096;

/// The most records a source emits per mailbox turn.
pub const MAX_BATCH: u32 = 1 << 20;

/// The most exclusive buffers per channel, and floating buffers per gate:
/// a channel's ring has a slot for each.
pub const MAX_BUFFERS: u32 = 1024;

/// The most ring slots a job's channels may have together (each channel's
/// ring holds its credit, rounded up to a power of two).
pub const MAX_RING_SLOTS: u64 = 1 << 26;

/// The most spin rounds or yields a wait strategy may be given.
pub const MAX_SPINS: u32 = 1 << 20;

/// The longest name (profile or vertex).
pub const MAX_NAME: usize = 100;

/// `value` within `range`, else "`value` is not allowed: use `lo` to `hi`".
fn within<T: PartialOrd + std::fmt::Display>(
    field: &str,
    value: T,
    range: std::ops::RangeInclusive<T>,
    why: &str,
) -> Result<(), ProfileError> {
    if range.contains(&value) {
        return Ok(());
    }
    Err(invalid(
        field,
        format!(
            "{value} is not allowed: use {} to {}{why}",
            range.start(),
            range.end()
        ),
    ))
}

/// A name shown on terminals and used in thread and file names: not empty,
/// at most [`MAX_NAME`] characters, no control characters (which could
/// clear a terminal or forge lines), none of `forbidden`.
pub(super) fn check_name(field: &str, name: &str, forbidden: &[char]) -> Result<(), ProfileError> {
    if name.trim().is_empty() {
        return Err(invalid(field, "is empty; give a name"));
    }
    if name.chars().count() > MAX_NAME {
        return Err(invalid(
            field,
            format!("is longer than {MAX_NAME} characters"),
        ));
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(invalid(
            field,
            format!(
                "'{}' has a control character ({c:?}); use printable characters",
                name.escape_debug()
            ),
        ));
    }
    if let Some(c) = name.chars().find(|c| forbidden.contains(c)) {
        return Err(invalid(
            field,
            format!("'{name}' has '{c}', which is not allowed in this name"),
        ));
    }
    Ok(())
}

impl Profile {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ProfileError> {
        self.check_names()?;
        self.check_records()?;
        self.check_network()?;
        self.check_runtime()?;
        self.check_measure()?;
        self.check_checkpoint()?;
        self.check_vertices()?;
        let plan = self.plan()?;
        self.check_resources(&plan)?;
        // What `run` derives from the profile must derive.
        self.job_options_for(&plan)?;
        self.check_axes()
    }

    fn check_names(&self) -> Result<(), ProfileError> {
        // Results and charts are files named after the profile.
        check_name("name", &self.name, &['/', '\\'])?;
        if self.name == "." || self.name == ".." {
            return Err(invalid("name", "is not a usable file name"));
        }
        if let Some(c) = self.description.chars().find(|c| c.is_control()) {
            return Err(invalid(
                "description",
                format!("has a control character ({c:?}); keep it to one printable line"),
            ));
        }
        if let Some(f) = &self.flink {
            check_name("flink.benchmark", &f.benchmark, &[])?;
            if f.machine.chars().any(char::is_control) {
                return Err(invalid("flink.machine", "has a control character"));
            }
            if !(f.ops_per_ms.is_finite() && f.ops_per_ms > 0.0) {
                return Err(invalid(
                    "flink.ops_per_ms",
                    format!(
                        "{} is not allowed: give the published records per millisecond, a positive number",
                        f.ops_per_ms
                    ),
                ));
            }
        }
        Ok(())
    }

    fn check_records(&self) -> Result<(), ProfileError> {
        let r = &self.records;
        if r.count == Some(0) {
            return Err(invalid(
                "records.count",
                "is 0: the job would move no record; give at least 1, or leave it unset with records.duration",
            ));
        }
        if let Some(count) = r.count {
            within(
                "records.count",
                count,
                1..=MAX_RECORDS,
                " records per source subtask; for longer runs give records.duration",
            )?;
        }
        if r.duration.is_some_and(|d| d.0.is_zero()) {
            return Err(invalid(
                "records.duration",
                "is 0: give a positive duration",
            ));
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
        if r.size.bytes() > MAX_RECORD_SIZE {
            return Err(invalid(
                "records.size",
                format!("{} is more than {}", r.size, Size(MAX_RECORD_SIZE)),
            ));
        }
        within("records.batch", r.batch, 1..=MAX_BATCH, " records per turn")?;
        if r.key_space == 0 {
            return Err(invalid(
                "records.key_space",
                "is 0: there must be at least 1 key",
            ));
        }
        if let Some(rate) = r.rate {
            if !(rate.is_finite() && (1.0..=MAX_RATE).contains(&rate)) {
                return Err(invalid(
                    "records.rate",
                    format!(
                        "{rate:?} is not allowed: give at least 1 record per second and at most {MAX_RATE:e}, or leave it unset"
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
        Ok(())
    }

    fn check_network(&self) -> Result<(), ProfileError> {
        let n = &self.network;
        // Segment size and buffers per channel: the engine's rules.
        self.check_network_config()?;
        within(
            "network.buffers_per_channel",
            n.buffers_per_channel,
            1..=MAX_BUFFERS,
            " exclusive buffers per input channel",
        )?;
        within(
            "network.floating_buffers",
            n.floating_buffers,
            0..=MAX_BUFFERS,
            " floating buffers per gate",
        )?;
        within(
            "network.max_overdraft_buffers",
            n.max_overdraft_buffers,
            0..=MAX_BUFFERS,
            " overdraft buffers per output",
        )?;
        if let Some(max) = n.max_record_size {
            if max.bytes() == 0 || max.bytes() > MAX_RECORD_SIZE {
                return Err(invalid(
                    "network.max_record_size",
                    format!("{max} is not allowed: use 1B to {}", Size(MAX_RECORD_SIZE)),
                ));
            }
            if self.records.size > max {
                return Err(invalid(
                    "records.size",
                    format!(
                        "{} is larger than network.max_record_size ({max})",
                        self.records.size
                    ),
                ));
            }
        }
        Ok(())
    }

    fn check_runtime(&self) -> Result<(), ProfileError> {
        let rt = &self.runtime;
        within("runtime.spins", rt.spins, 0..=MAX_SPINS, " spin rounds")?;
        within("runtime.yields", rt.yields, 0..=MAX_SPINS, " yields")?;
        for (field, span) in [
            ("runtime.spin_for", rt.spin_for),
            ("runtime.park_after", rt.park_after),
        ] {
            if span.0 > Duration::from_secs(1) {
                return Err(invalid(
                    field,
                    format!("{span} is more than 1s: a wait that long should sleep"),
                ));
            }
        }
        if let Pin::Cores(cores) = &rt.pin {
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
        Ok(())
    }

    pub(super) fn check_measure(&self) -> Result<(), ProfileError> {
        let m = &self.measure;
        if m.repetitions == 0 {
            return Err(invalid(
                "measure.repetitions",
                "is 0: measure at least 1 run",
            ));
        }
        within(
            "measure.repetitions",
            m.repetitions,
            1..=MAX_REPETITIONS,
            "",
        )?;
        within("measure.warmup", m.warmup, 0..=MAX_WARMUP, "")
    }

    fn check_vertices(&self) -> Result<(), ProfileError> {
        if self.vertices.is_empty() {
            return Err(invalid("vertices", "the profile has no vertex"));
        }
        let mut names = HashSet::new();
        for (i, v) in self.vertices.iter().enumerate() {
            // `--set vertices.NAME.field` splits on dots.
            check_name(&format!("vertices[{i}].name"), &v.name, &['.'])?;
            if !names.insert(v.name.as_str()) {
                return Err(invalid(
                    format!("vertices.{}.name", v.name),
                    "is used by two vertices; names must be unique",
                ));
            }
            self.check_vertex(v)?;
        }
        if !self
            .vertices
            .iter()
            .any(|v| v.kind == VertexKind::Source && !v.idle)
        {
            return Err(invalid(
                "vertices",
                "every source is idle: an idle source stays open until the job's other sources finish, so the job would never end",
            ));
        }
        Ok(())
    }

    fn check_vertex(&self, v: &Vertex) -> Result<(), ProfileError> {
        let field = |f: &str| format!("vertices.{}.{f}", v.name);
        if v.parallelism == 0 {
            return Err(invalid(
                field("parallelism"),
                "is 0: a vertex needs at least 1 subtask",
            ));
        }
        if v.parallelism > MAX_PARALLELISM {
            return Err(invalid(
                field("parallelism"),
                format!("{} is more than {MAX_PARALLELISM} subtasks", v.parallelism),
            ));
        }
        if v.records.is_some() && v.kind != VertexKind::Source {
            return Err(invalid(field("records"), "only a source emits records"));
        }
        if let Some(records) = v.records {
            within(
                &field("records"),
                records,
                1..=MAX_RECORDS,
                " records per subtask",
            )?;
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
        Ok(())
    }

    /// What the planned job would take at deployment, against the
    /// harness's limits: spill buffers, ring slots, network memory.
    fn check_resources(&self, plan: &ExecutionGraph) -> Result<(), ProfileError> {
        let n = &self.network;
        let channels = plan.channels.len() as u64;
        let max_record = n.max_record_size.unwrap_or(self.records.size).bytes();
        let spill = channels.saturating_mul(max_record);
        if spill > MAX_SPILL {
            return Err(invalid(
                if n.max_record_size.is_some() {
                    "network.max_record_size"
                } else {
                    "records.size"
                },
                format!(
                    "{channels} input channels with a spill buffer of {} each need {} at deployment; at most {}: lower the record size or the channel count",
                    Size(max_record),
                    Size(spill),
                    Size(MAX_SPILL)
                ),
            ));
        }
        let credit = (u64::from(n.buffers_per_channel + n.floating_buffers)
            + u64::from(n.max_overdraft_buffers)
            + 1)
        .next_power_of_two();
        if channels * credit > MAX_RING_SLOTS {
            return Err(invalid(
                "network.floating_buffers",
                format!(
                    "{channels} channels with a credit of {} buffers each need {} ring slots; at most {MAX_RING_SLOTS}: lower the buffers or the channel count",
                    n.buffers_per_channel + n.floating_buffers,
                    channels * credit
                ),
            ));
        }
        if let Some(memory) = n.memory {
            let segment = n.segment_size.bytes();
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
        Ok(())
    }
}
