//! `taskbench flink run`: a profile on real Flink with taskbench's
//! measurement scheme (forks × (warm-up jobs + measured repetitions)), the
//! outcome as taskbench's result with `engine: "flink"`.

use std::path::PathBuf;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::super::engine::{merge_latency, summarize};
use super::super::profile::Profile;
use super::super::result::{Engine, Latency, Repetition, RunResult, Status, TaskMetrics};
use super::super::Progress;
use super::cluster::Cluster;
use super::install::{cache_dir, Installation, DEFAULT_FLINK_VERSION};
use super::job::{bucket_value, run_job, JobOutcome, SampledMetrics};
use super::rest::RestClient;
use super::spec::JobSpec;
use super::FlinkError;

/// How `taskbench flink run` runs Flink.
#[derive(Clone, Debug)]
pub struct FlinkOptions {
    /// The apache-flink-libraries version for a local run (a remote
    /// cluster's own version is used for its job).
    pub flink_version: Option<String>,
    /// A Flink cluster's REST address (checked); `None` runs a MiniCluster.
    pub cluster: Option<String>,
    /// MiniCluster JVMs, one after the other (1 for a remote cluster).
    pub forks: u32,
    /// JVM options of a MiniCluster.
    pub jvm_options: Vec<String>,
    /// How long one job may run before it is canceled.
    pub job_timeout: Duration,
    /// Where Flink is installed and the job built.
    pub cache: PathBuf,
}

impl Default for FlinkOptions {
    fn default() -> Self {
        FlinkOptions {
            flink_version: None,
            cluster: None,
            forks: 3,
            jvm_options: vec!["-Xms2g".into(), "-Xmx2g".into()],
            job_timeout: Duration::from_secs(600),
            cache: cache_dir(),
        }
    }
}

/// Where a `flink` result ran: the result's `flink` field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FlinkInfo {
    /// Flink's version.
    pub flink_version: String,
    /// The JobManager's JVM, as the cluster reports it.
    pub jvm_version: String,
    /// `"local MiniCluster (1 TaskManager, N slot(s))"`, or the REST address.
    pub cluster: String,
    /// MiniCluster JVMs the jobs ran in.
    pub forks: u32,
    /// Every job, warm-up ones included, in order.
    pub jobs: Vec<FlinkJob>,
}

/// One Flink job of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FlinkJob {
    /// 0-based fork (JVM).
    pub fork: u32,
    /// Flink's job id.
    pub job_id: String,
    /// Discarded warm-up job.
    pub warmup: bool,
    /// Final state.
    pub state: String,
    /// Flink's job duration (INITIALIZING to the end), ms.
    pub duration_ms: f64,
    /// Running subtasks' metrics, sampled once a second.
    pub metrics: Vec<SampledMetrics>,
}

/// A Flink run in progress: the job built, the result growing fork by fork.
pub struct FlinkRunner {
    spec_json: String,
    spec: JobSpec,
    install: Installation,
    options: FlinkOptions,
    remote: Option<RestClient>,
    result: RunResult,
    latency: Option<Histogram<u64>>,
}

impl FlinkRunner {
    /// Checks that Flink can run `profile`, installs Flink and builds the
    /// job (`status` hears what takes time), and for a remote cluster
    /// checks that it answers and is configured as the profile asks.
    pub fn new(
        profile: &Profile,
        overrides: &[String],
        options: FlinkOptions,
        status: &mut dyn FnMut(&str),
    ) -> Result<Self, FlinkError> {
        let spec = JobSpec::from_profile(profile)?;
        let remote = options.cluster.as_deref().map(RestClient::new);
        let version = match &remote {
            Some(rest) => {
                let version = rest.flink_version()?;
                if let Some(asked) = options.flink_version.as_ref().filter(|v| **v != version) {
                    return Err(FlinkError::Usage(format!(
                        "--flink-version {asked}: the cluster at {} runs Flink {version}; leave --flink-version out",
                        rest.base()
                    )));
                }
                super::check_cluster_network(&spec, &rest.cluster_config()?)?;
                version
            }
            None => options
                .flink_version
                .clone()
                .unwrap_or_else(|| DEFAULT_FLINK_VERSION.to_string()),
        };
        let install = Installation::prepare(&version, &options.cache, status)?;
        let pinning = "none (Flink's threads)".to_string();
        let mut result = RunResult::started(profile, overrides, Engine::Flink, pinning);
        result.flink = Some(FlinkInfo {
            flink_version: version,
            jvm_version: String::new(),
            cluster: match &remote {
                Some(rest) => rest.base().to_string(),
                None => format!(
                    "local MiniCluster (1 TaskManager, {} slot(s))",
                    spec.max_parallelism()
                ),
            },
            forks: 0,
            jobs: Vec::new(),
        });
        Ok(FlinkRunner {
            spec_json: serde_json::to_string(&spec).expect("a spec serializes"),
            spec,
            install,
            options,
            remote,
            result,
            latency: None,
        })
    }

    /// The result so far.
    pub fn result(&self) -> &RunResult {
        &self.result
    }

    /// The result, complete unless a job failed.
    pub fn finish(mut self) -> RunResult {
        if self.result.status == Status::Running {
            self.result.status = Status::Complete;
        }
        self.result
    }

    /// Runs one fork: a fresh MiniCluster JVM (or the remote cluster),
    /// `measure.warmup` jobs discarded, `measure.repetitions` measured.
    /// Returns false when a job failed (the result then says why).
    pub fn run_fork(&mut self, progress: &mut dyn FnMut(Progress<'_>)) -> Result<bool, FlinkError> {
        let fork = self.flink().forks;
        let local = match &self.remote {
            Some(_) => None,
            None => Some(Cluster::mini(
                &self.install,
                &self.options.cache,
                self.spec.max_parallelism(),
                &self.spec.network.cluster_options(),
                &self.options.jvm_options,
            )?),
        };
        let rest = match (&self.remote, &local) {
            (Some(rest), _) => rest.clone(),
            (None, Some(cluster)) => RestClient::new(&cluster.url),
            (None, None) => unreachable!("a run is local or remote"),
        };
        if self.flink().jvm_version.is_empty() {
            self.flink_mut().jvm_version = rest
                .jvm_version()
                .unwrap_or_else(|| self.install.java_version.clone());
        }
        self.flink_mut().forks += 1;
        let jar = rest.upload_jar(&self.install.job_jar)?;
        let outcome = self.run_jobs(&rest, &jar, fork, progress);
        rest.delete_jar(&jar);
        outcome
    }

    fn run_jobs(
        &mut self,
        rest: &RestClient,
        jar: &str,
        fork: u32,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<bool, FlinkError> {
        let warmup = self.result.profile.measure.warmup;
        let repetitions = self.result.profile.measure.repetitions;
        for run in 0..warmup + repetitions {
            progress(Progress::before(run, warmup, repetitions));
            let job = run_job(rest, jar, &self.spec_json, self.options.job_timeout)?;
            self.flink_mut().jobs.push(FlinkJob {
                fork,
                job_id: job.job_id.clone(),
                warmup: run < warmup,
                state: job.state.clone(),
                duration_ms: job.duration_ms,
                metrics: job.sampled.clone(),
            });
            if let Some(failure) = job.failure {
                self.result.status = Status::Failed;
                self.result.failure = Some(failure);
                return Ok(false);
            }
            if run < warmup {
                continue;
            }
            let index = self.result.repetitions.len() as u32;
            let (repetition, latency) = repetition(index, &self.result.profile, &job);
            merge_latency(&mut self.latency, latency.as_ref());
            self.result.repetitions.push(repetition);
            self.result.summary = Some(summarize(
                &self.result.profile,
                &self.result.repetitions,
                self.latency.as_ref(),
            ));
            progress(Progress::Measured(&self.result));
        }
        Ok(true)
    }

    fn flink(&self) -> &FlinkInfo {
        self.result
            .flink
            .as_ref()
            .expect("a Flink run has its info")
    }

    fn flink_mut(&mut self) -> &mut FlinkInfo {
        self.result
            .flink
            .as_mut()
            .expect("a Flink run has its info")
    }
}

/// Runs `profile` on Flink: `options.forks` forks, each with the profile's
/// warm-up jobs and repetitions.
pub fn run_flink(
    profile: &Profile,
    overrides: &[String],
    options: FlinkOptions,
    status: &mut dyn FnMut(&str),
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<RunResult, FlinkError> {
    let forks = options.forks.max(1);
    let mut runner = FlinkRunner::new(profile, overrides, options, status)?;
    for fork in 0..forks {
        status(&format!("Flink fork {}/{forks}", fork + 1));
        if !runner.run_fork(progress)? {
            break;
        }
    }
    Ok(runner.finish())
}

/// A measured job as taskbench's repetition, and its latency histogram.
fn repetition(
    index: u32,
    profile: &Profile,
    job: &JobOutcome,
) -> (Repetition, Option<Histogram<u64>>) {
    let records: u64 = job.sinks.iter().map(|s| s.records).sum();
    let checksum = job
        .sinks
        .iter()
        .fold(0u64, |sum, s| sum.wrapping_add(s.checksum));
    let first = job
        .sinks
        .iter()
        .map(|s| s.first_ns)
        .filter(|&t| t > 0)
        .min();
    let end = job.sinks.iter().map(|s| s.end_ns).max();
    // The data window: the first record's emit time (or arrival) to the
    // last sink's end of input; the job's duration when no record arrived.
    let seconds = match (first, end) {
        (Some(first), Some(end)) if end > first => (end - first) as f64 / 1e9,
        _ => job.duration_ms / 1e3,
    }
    .max(1e-9);
    let mut latency: Option<Histogram<u64>> = None;
    for buckets in job.sinks.iter().filter_map(|s| s.latency.as_ref()) {
        let h = latency.get_or_insert_with(|| {
            Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
        });
        for &(bucket, count) in buckets {
            h.saturating_record_n(bucket_value(bucket).max(1), count);
        }
    }
    let bytes = records.saturating_mul(profile.records.size.bytes());
    let tasks = job
        .subtasks
        .iter()
        .map(|s| {
            let total = (s.busy_ms + s.idle_ms + s.back_pressured_ms).max(1e-9);
            let sunk: u64 = job
                .sinks
                .iter()
                .filter(|k| k.subtask == s.subtask && ends_in(&s.task, &k.vertex))
                .map(|k| k.records)
                .sum();
            TaskMetrics {
                name: s.task.clone(),
                subtask: s.subtask,
                state: s.state.clone(),
                records_in: s.records_in,
                records_out: if s.records_out == 0 {
                    sunk
                } else {
                    s.records_out
                },
                buffers_out: 0,
                busy_pct: 100.0 * s.busy_ms / total,
                idle_pct: 100.0 * s.idle_ms / total,
                back_pressured_pct: 100.0 * s.back_pressured_ms / total,
                soft_back_pressured_pct: None,
                hard_back_pressured_pct: None,
                parks: None,
                pool_size: 0,
                pool_max_in_use: 0,
                buffer_waits: 0,
                allocations: 0,
                cpu_pct: None,
                cpu_ms: None,
                ended_ms: s
                    .end_ms
                    .zip(first)
                    .map(|(end, first)| (end - first as f64 / 1e6).max(0.0)),
                debloated_buffer_size: None,
            }
        })
        .collect();
    let repetition = Repetition {
        index,
        records,
        bytes,
        checksum,
        seconds,
        records_per_sec: records as f64 / seconds,
        records_per_ms: records as f64 / seconds / 1e3,
        bytes_per_sec: bytes as f64 / seconds,
        overhead_ms: (job.duration_ms - seconds * 1e3).max(0.0),
        cores_busy: None,
        core_ns_per_record: None,
        latency_ns: latency.as_ref().and_then(Latency::of),
        stall_floor_ns: None,
        allocations: 0,
        pools_full: true,
        tasks,
        checkpoints: None,
        restarts: 0,
        snapshot_allocations: 0,
    };
    (repetition, latency)
}

/// Whether Flink task `task` (`Source: a -> b -> c`) ends in operator `name`.
fn ends_in(task: &str, name: &str) -> bool {
    task.rsplit(" -> ")
        .next()
        .map(|last| last.strip_prefix("Source: ").unwrap_or(last))
        == Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_is_matched_to_the_sink_it_ends_in() {
        assert!(ends_in("Source: source -> map -> sink", "sink"));
        assert!(ends_in("sink", "sink"));
        assert!(ends_in("map -> sink", "sink"));
        assert!(!ends_in("map -> sink", "map"));
        assert!(!ends_in("sinker", "sink"));
    }
}
