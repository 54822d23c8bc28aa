//! The JSON result of `taskbench run` and `taskbench sweep`
//! (schema documented in `profiles/README.md`, versioned by
//! [`SCHEMA_VERSION`], which always comes first).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::checkpoint_figures::CheckpointFigures;
use super::flink::FlinkInfo;
use super::profile::Profile;
use super::testbed::Testbed;

/// Version of the result schema; bumped on any change to it. Version 2
/// added checkpoint figures (`checkpoints`, `snapshot_allocations`), the
/// Flink engine's fields and tasks' `debloated_buffer_size`, all optional:
/// a version-1 file reads as a version-2 one without them.
pub const SCHEMA_VERSION: u32 = 2;

/// The oldest schema version this taskbench reads.
pub const OLDEST_SCHEMA_VERSION: u32 = 1;

/// Whether the parsed result `value` carries a `schema_version` this
/// taskbench reads; the refusal names the version found.
pub fn check_schema_version(value: &serde_json::Value) -> Result<(), String> {
    let version = value
        .get("schema_version")
        .and_then(serde_json::Value::as_u64);
    let readable = u64::from(OLDEST_SCHEMA_VERSION)..=u64::from(SCHEMA_VERSION);
    if version.is_some_and(|v| readable.contains(&v)) {
        return Ok(());
    }
    let found = match value.get("schema_version") {
        _ if !value.is_object() => "missing (the file is not a JSON object)".to_string(),
        None => "missing".to_string(),
        Some(v) => v.to_string(),
    };
    Err(format!(
        "schema_version {found}, this taskbench reads {OLDEST_SCHEMA_VERSION} to {SCHEMA_VERSION}"
    ))
}

// `kind` is the tag results are told apart by; read through the tagged
// `Loaded` enum of `compare` it is consumed, and these fill it back in.
fn run_kind() -> String {
    "run".into()
}

fn sweep_kind() -> String {
    "sweep".into()
}

/// Any result file: a run or a sweep, told apart by `kind`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ResultFile {
    /// `taskbench run` (and `flink run`).
    Run(Box<RunResult>),
    /// `taskbench sweep`.
    Sweep(Box<SweepResult>),
}

/// The JSON Schema of a result file (`taskbench schema` prints it).
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(ResultFile)).expect("a schema is JSON")
}

/// Whether a run is still going, done, or ended by a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Written after each repetition while the run goes on.
    Running,
    /// Every repetition measured.
    Complete,
    /// A task failed; `failure` says which and why.
    Failed,
    /// SIGINT or SIGTERM stopped the run; what was measured before is kept.
    Interrupted,
}

impl Status {
    /// Its name in a result file (`"failed"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Complete => "complete",
            Status::Failed => "failed",
            Status::Interrupted => "interrupted",
        }
    }
}

/// One `taskbench run`: the profile as run, where, and every figure.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct RunResult {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// `"run"`.
    #[serde(default = "run_kind")]
    pub kind: String,
    /// The taskbench version that measured.
    pub taskbench_version: String,
    /// What ran the jobs: taskbench's runtime, or real Apache Flink
    /// (results written before engines were named are taskbench's).
    #[serde(default)]
    pub engine: Engine,
    /// Running, complete or failed.
    pub status: Status,
    /// The failing task and its cause, when `status` is failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// The profile as run (overrides applied).
    pub profile: Profile,
    /// The `--set` overrides given.
    pub overrides: Vec<String>,
    /// The machine and build.
    pub testbed: Testbed,
    /// Warm-up runs made before measuring (not recorded).
    pub warmup_runs: u32,
    /// Mapping and faulting in the network memory, once per run (it
    /// outlives the jobs, as a TaskManager's does), in milliseconds.
    pub network_setup_ms: f64,
    /// Every measured repetition, in order.
    pub repetitions: Vec<Repetition>,
    /// Statistics over the repetitions (present once one is measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
    /// For `engine: "flink"`: Flink's and the JVM's versions, the cluster,
    /// every job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flink: Option<FlinkInfo>,
    /// For `run --instructions`: instructions per record counted under
    /// callgrind (the repetitions' times were then measured under
    /// valgrind and are not figures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<Instructions>,
}

/// Instructions counted by callgrind on the data path only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Instructions {
    /// `callgrind`.
    pub tool: String,
    /// The functions whose instructions count (callgrind's
    /// `--toggle-collect` patterns; a nested one switches counting off).
    pub counted: Vec<String>,
    /// One callgrind run each: instructions counted.
    pub runs: Vec<u64>,
    /// Records that reached the sinks in each run.
    pub records: Vec<u64>,
    /// Instructions per record of each run.
    pub per_record: Vec<f64>,
}

impl RunResult {
    /// A run of `profile` about to start: nothing measured yet.
    pub fn started(
        profile: &Profile,
        overrides: &[String],
        engine: Engine,
        pinning: String,
    ) -> Self {
        RunResult {
            schema_version: SCHEMA_VERSION,
            kind: "run".into(),
            taskbench_version: env!("CARGO_PKG_VERSION").into(),
            engine,
            status: Status::Running,
            failure: None,
            profile: profile.clone(),
            overrides: overrides.to_vec(),
            testbed: Testbed::detect(profile.task_count(), pinning),
            warmup_runs: profile.measure.warmup,
            network_setup_ms: 0.0,
            repetitions: Vec::new(),
            summary: None,
            flink: None,
            instructions: None,
        }
    }
}

/// What ran a result's jobs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// taskbench's own runtime.
    #[default]
    Taskbench,
    /// Apache Flink (`taskbench flink run`); the result's `flink` field
    /// says which version and where.
    Flink,
}

/// One measured run of the job.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Repetition {
    /// 0-based.
    pub index: u32,
    /// Records that reached the sinks.
    pub records: u64,
    /// Record bytes that reached the sinks.
    pub bytes: u64,
    /// Wrapping sum of the values that reached the sinks.
    pub checksum: u64,
    /// How long records flowed: the first source turn to the last end of
    /// input (the throughput denominator). A job that restarted counts
    /// from its first deployment to its end, every attempt and restart
    /// delay in: its sinks' counts include what earlier attempts delivered.
    pub seconds: f64,
    /// `records / seconds`.
    pub records_per_sec: f64,
    /// `records_per_sec / 1000`: flink-benchmarks' unit.
    pub records_per_ms: f64,
    /// `bytes / seconds`.
    pub bytes_per_sec: f64,
    /// Deploying the job and tearing it down (wall time of the whole job,
    /// memory set-up included, minus `seconds`), in milliseconds.
    pub overhead_ms: f64,
    /// Cores the job kept busy: its tasks' CPU time over the time their
    /// loops ran, from the first start to the last end (`null` without a
    /// thread CPU clock).
    #[serde(default)]
    pub cores_busy: Option<f64>,
    /// Core time per record in nanoseconds: every task's busy CPU time
    /// (the smaller of its thread's CPU time and its busy wall time, so
    /// neither a spinning wait nor a descheduled turn counts) over the
    /// records that reached the sinks. Steadier than wall time on a shared
    /// machine (`null` without a thread CPU clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core_ns_per_record: Option<f64>,
    /// Sink latency, when measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ns: Option<Latency>,
    /// The machine's stall floor measured beside a latency run (see
    /// [`Summary::stall_floor_ns`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stall_floor_ns: Option<Latency>,
    /// Allocations made by task threads while their loops ran, outside
    /// snapshot I/O.
    pub allocations: u64,
    /// Allocations checkpoints made (snapshots, copies of in-flight data).
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub snapshot_allocations: u64,
    /// Whether every network segment was back in its pool afterwards.
    pub pools_full: bool,
    /// Every subtask.
    pub tasks: Vec<TaskMetrics>,
    /// The job's checkpoints, when it checkpoints (an additive field:
    /// readers of schema 1 without it see a run without checkpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoints: Option<CheckpointFigures>,
    /// Restarts after failures (with a restart strategy).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub restarts: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

/// Latency percentiles in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Latency {
    /// Records measured.
    pub samples: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
    /// Mean.
    pub mean: f64,
}

impl Latency {
    /// Percentiles of an HDR histogram (`None` when it is empty).
    pub fn of(h: &hdrhistogram::Histogram<u64>) -> Option<Self> {
        (!h.is_empty()).then(|| Latency {
            samples: h.len(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            mean: h.mean(),
        })
    }
}

/// One subtask's figures.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct TaskMetrics {
    /// Task name ("a -> b" for a chain).
    pub name: String,
    /// Subtask index.
    pub subtask: u32,
    /// Final execution state.
    pub state: String,
    /// Records read from input gates.
    pub records_in: u64,
    /// Records written to outputs (or emitted, for a source into a sink chain).
    pub records_out: u64,
    /// Buffers handed to output channels.
    pub buffers_out: u64,
    /// Share of loop time spent working, in percent.
    pub busy_pct: f64,
    /// Share waiting for input, in percent.
    pub idle_pct: f64,
    /// Share waiting for output capacity, in percent: soft plus hard.
    pub back_pressured_pct: f64,
    /// Share not starting a turn because the outputs had no capacity
    /// (Flink's soft back-pressure), in percent (`null` where not measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soft_back_pressured_pct: Option<f64>,
    /// Share blocked inside an emit waiting for a buffer or credit (Flink's
    /// `hardBackPressuredTimeMsPerSecond`), in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hard_back_pressured_pct: Option<f64>,
    /// Waits that put the task thread to sleep in the kernel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parks: Option<u64>,
    /// Buffers its output pools may hold (0 for a task without outputs).
    pub pool_size: u32,
    /// Most buffers its output pools had in use at once.
    pub pool_max_in_use: u32,
    /// Buffer requests that found no free buffer and had to wait (hard
    /// back-pressure).
    pub buffer_waits: u64,
    /// Allocations while the loop ran.
    pub allocations: u64,
    /// Share of its loop time the task's thread was on a core, in percent
    /// (`null` without a thread CPU clock). Below `busy_pct` when tasks
    /// outnumber cores and take turns on them.
    #[serde(default)]
    pub cpu_pct: Option<f64>,
    /// CPU time its thread used in the loop, in milliseconds (`null`
    /// without a thread CPU clock); summed over tasks, the cores a job kept
    /// busy.
    #[serde(default)]
    pub cpu_ms: Option<f64>,
    /// When the task reached the end of its input, in milliseconds from the
    /// start of the data window (`null` if it did not).
    #[serde(default)]
    pub ended_ms: Option<f64>,
    /// With buffer debloating: the buffer size the task's input gates last
    /// asked their producers for, in bytes (Flink's `debloatedBufferSize`;
    /// absent without debloating).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debloated_buffer_size: Option<u64>,
}

/// Median, spread and extremes of one figure over the repetitions.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Stats {
    /// Median.
    pub median: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation relative to the mean, in percent.
    pub rsd_pct: f64,
}

impl Stats {
    /// Statistics of `values` (at least one).
    pub fn of(values: &[f64]) -> Self {
        assert!(!values.is_empty(), "statistics of nothing");
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        let mean = sorted.iter().sum::<f64>() / n as f64;
        let rsd_pct = if n > 1 && mean != 0.0 {
            let var = sorted.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            100.0 * var.sqrt() / mean.abs()
        } else {
            0.0
        };
        Stats {
            median,
            min: sorted[0],
            max: sorted[n - 1],
            mean,
            rsd_pct,
        }
    }
}

/// Statistics over every measured repetition.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    /// Repetitions summarised.
    pub repetitions: u32,
    /// Records per second.
    pub records_per_sec: Stats,
    /// Records per millisecond (flink-benchmarks' unit).
    pub records_per_ms: Stats,
    /// Bytes per second.
    pub bytes_per_sec: Stats,
    /// Deploy + tear-down per job, in milliseconds.
    pub overhead_ms: Stats,
    /// Cores kept busy (see [`Repetition::cores_busy`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cores_busy: Option<Stats>,
    /// Core time per record (see [`Repetition::core_ns_per_record`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core_ns_per_record: Option<Stats>,
    /// Latency over all repetitions' records together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ns: Option<Latency>,
    /// The machine's stall floor, measured beside latency runs: the delay a
    /// record arriving at a random instant would see from the machine's
    /// own stalls of a runnable thread alone (`metrics::stall`); no
    /// percentile of `latency_ns` can be expected below its counterpart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stall_floor_ns: Option<Latency>,
    /// The task that limits the job, by Flink's back-pressure rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bottleneck: Option<Bottleneck>,
    /// Set when the job is bound by cores: more task threads than cores,
    /// and the cores kept busy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cores_bound: Option<CoresBound>,
    /// Allocations by task threads while measuring, all repetitions.
    pub allocations_during_measurement: u64,
    /// Whether every pool was full after every repetition.
    pub pools_full: bool,
    /// The median repetition's per-task figures.
    pub tasks: Vec<TaskMetrics>,
    /// Median records/ms over the Flink figure the profile mirrors
    /// (checkpoints/ms for a checkpointing benchmark's figure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flink_ratio: Option<f64>,
    /// Every repetition's counted checkpoints together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoints: Option<CheckpointFigures>,
}

/// The task that limits a job (Flink's rule: back-pressure points
/// downstream, so the bottleneck is the first task that is busy and not
/// back-pressured while a task upstream of it is back-pressured; with
/// nothing back-pressured, a busy source).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Bottleneck {
    /// Task name.
    pub task: String,
    /// Subtask index.
    pub subtask: u32,
    /// Its busy share, in percent.
    pub busy_pct: f64,
    /// The back-pressured tasks upstream of it, with their back-pressured
    /// share in percent (empty for a source that limits the job).
    pub upstream: Vec<(String, f64)>,
}

/// A job that more task threads than cores keep every core busy on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CoresBound {
    /// Task threads.
    pub tasks: u32,
    /// Cores the process may use.
    pub cores: u32,
    /// Cores the tasks kept busy (median over repetitions).
    pub cores_busy: f64,
}

/// One point of a sweep: its assignments and its run.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct SweepPoint {
    /// The `--set` assignments of this point, one per axis.
    pub overrides: Vec<String>,
    /// The run (its profile has the assignments applied).
    pub result: RunResult,
}

/// One `taskbench sweep`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct SweepResult {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// `"sweep"`.
    #[serde(default = "sweep_kind")]
    pub kind: String,
    /// The taskbench version that measured.
    pub taskbench_version: String,
    /// Running, complete or failed.
    pub status: Status,
    /// The profile swept, before any point's assignments.
    pub profile: Profile,
    /// The machine and build.
    pub testbed: Testbed,
    /// Every point run so far, first axis varying slowest.
    pub points: Vec<SweepPoint>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_name_is_the_one_its_file_holds() {
        for s in [
            Status::Running,
            Status::Complete,
            Status::Failed,
            Status::Interrupted,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }

    #[test]
    fn stats_take_the_middle_and_the_spread() {
        let s = Stats::of(&[3.0, 1.0, 2.0]);
        assert_eq!((s.median, s.min, s.max, s.mean), (2.0, 1.0, 3.0, 2.0));
        assert!((s.rsd_pct - 50.0).abs() < 1e-9, "{}", s.rsd_pct);
        assert_eq!(Stats::of(&[1.0, 4.0]).median, 2.5);
        assert_eq!(Stats::of(&[7.0]).rsd_pct, 0.0);
    }

    #[test]
    fn latency_reads_percentiles_off_the_histogram() {
        let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 1_000_000, 3).unwrap();
        for v in 1..=1000u64 {
            h.record(v).unwrap();
        }
        let l = Latency::of(&h).unwrap();
        assert_eq!(l.samples, 1000);
        assert_eq!((l.p50, l.p90, l.p99, l.max), (500, 900, 990, 1000));
        assert!(Latency::of(&hdrhistogram::Histogram::<u64>::new(3).unwrap()).is_none());
    }
}
