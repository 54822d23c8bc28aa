//! Runs a profile: warm-up jobs, then measured repetitions, each deployed
//! through the task executor and torn down; turns each job's result into
//! figures.

use std::time::Instant;

use hdrhistogram::Histogram;

use super::profile::{Pin, PinPolicy, Profile, ProfileError};
use super::result::{
    Engine, Latency, Repetition, RunResult, Stats, Status, Summary, SweepPoint, SweepResult,
    TaskMetrics, SCHEMA_VERSION,
};
use super::testbed::Testbed;
use crate::job::{run_job_on, JobError, JobResult};
use crate::network::ShuffleEnvironment;
use crate::sync::Arc;

/// What a run is doing, for progress display.
#[derive(Debug)]
pub enum Progress<'a> {
    /// A warm-up job is about to start.
    Warmup {
        /// 0-based.
        run: u32,
        /// Warm-up jobs in all.
        of: u32,
    },
    /// A measured repetition is about to start.
    Measuring {
        /// 0-based.
        repetition: u32,
        /// Repetitions in all.
        of: u32,
    },
    /// A repetition ended; the result so far (write it out now, so a crash
    /// keeps what was measured).
    Measured(&'a RunResult),
}

impl Progress<'_> {
    /// What job `run` (0-based, warm-up jobs first) of a run is.
    pub fn before(run: u32, warmup: u32, repetitions: u32) -> Self {
        if run < warmup {
            Progress::Warmup { run, of: warmup }
        } else {
            Progress::Measuring {
                repetition: run - warmup,
                of: repetitions,
            }
        }
    }
}

/// Why a run could not go on.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The profile is invalid.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// The job could not be deployed as configured.
    #[error("cannot deploy the job: {0}")]
    Deploy(JobError),
    /// A task did not end after being canceled (the watchdog's verdict).
    #[error("{0}")]
    Hung(JobError),
}

impl RunError {
    /// The exit code: 2 for bad input, 1 for a run that went wrong.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Profile(_) => 2,
            RunError::Deploy(
                JobError::Graph(_) | JobError::Network(_) | JobError::Pinning { .. },
            ) => 2,
            RunError::Deploy(_) | RunError::Hung(_) => 1,
        }
    }
}

impl From<JobError> for RunError {
    fn from(e: JobError) -> Self {
        match e {
            JobError::NotTerminated(_) => RunError::Hung(e),
            e => RunError::Deploy(e),
        }
    }
}

/// Runs `profile` (already carrying `overrides`): `measure.warmup` jobs
/// discarded, then `measure.repetitions` measured. A task failure ends the
/// run with a result whose status is [`Status::Failed`].
pub fn run_profile(
    profile: &Profile,
    overrides: &[String],
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<RunResult, RunError> {
    run_profile_with_latency(profile, overrides, progress).map(|(result, _)| result)
}

/// [`run_profile`], and the latency histogram of every measured record
/// (to merge runs, as `run --vs-flink` does).
pub fn run_profile_with_latency(
    profile: &Profile,
    overrides: &[String],
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<(RunResult, Option<Histogram<u64>>), RunError> {
    let graph = profile.job_graph()?;
    let options = profile.job_options()?;
    let pinning = match &profile.runtime.pin {
        Pin::Policy(PinPolicy::Spread) => "spread".to_string(),
        Pin::Policy(PinPolicy::None) => "none".to_string(),
        Pin::Cores(cores) => format!("{cores:?}"),
    };
    let mut result = RunResult::started(profile, overrides, Engine::Taskbench, pinning);
    // The network memory lives as long as the run, as a TaskManager's does.
    let mapped = Instant::now();
    let shuffle = Arc::new(ShuffleEnvironment::new(options.network).map_err(JobError::from)?);
    result.network_setup_ms = mapped.elapsed().as_secs_f64() * 1e3;
    let mut latency: Option<Histogram<u64>> = None;
    let warmup = profile.measure.warmup;
    let repetitions = profile.measure.repetitions;
    for run in 0..warmup + repetitions {
        progress(Progress::before(run, warmup, repetitions));
        let started = Instant::now();
        let job = run_job_on(&graph, &options, &shuffle)?;
        let wall = started.elapsed();
        if let Some(failure) = &job.failure {
            result.status = Status::Failed;
            result.failure = Some(failure.clone());
            return Ok((result, latency));
        }
        if run < warmup {
            continue;
        }
        let job_latency = merged_latency(&job);
        let repetition = repetition(
            run - warmup,
            profile,
            &job,
            wall.as_secs_f64(),
            &job_latency,
        );
        merge_latency(&mut latency, job_latency.as_ref());
        result.repetitions.push(repetition);
        result.summary = Some(summarize(profile, &result.repetitions, latency.as_ref()));
        if run + 1 == warmup + repetitions {
            result.status = Status::Complete;
        }
        progress(Progress::Measured(&result));
    }
    Ok((result, latency))
}

/// Runs every point of `profile`'s sweep; `on_point` sees the sweep after
/// each point (to write it out and draw it).
pub fn run_sweep(
    profile: &Profile,
    overrides: &[String],
    progress: &mut dyn FnMut(usize, usize, Progress<'_>),
    on_point: &mut dyn FnMut(&SweepResult),
) -> Result<SweepResult, RunError> {
    let points = profile.sweep_points();
    let base = profile.without_sweep();
    let mut sweep = SweepResult {
        schema_version: SCHEMA_VERSION,
        kind: "sweep".into(),
        taskbench_version: env!("CARGO_PKG_VERSION").into(),
        status: Status::Running,
        profile: profile.clone(),
        testbed: Testbed::detect(profile.task_count(), String::new()),
        points: Vec::new(),
    };
    let total = points.len();
    for (i, point) in points.into_iter().enumerate() {
        let mut assignments = overrides.to_vec();
        assignments.extend(point.iter().cloned());
        let outcome = profile
            .point(&base, &point)
            .map_err(RunError::from)
            .and_then(|at| run_profile(&at, &assignments, &mut |p| progress(i, total, p)));
        let result = match outcome {
            Ok(result) => result,
            Err(e) => {
                // What was measured stays, marked as ended by a failure.
                sweep.status = Status::Failed;
                on_point(&sweep);
                return Err(e);
            }
        };
        let failed = result.status == Status::Failed;
        sweep.points.push(SweepPoint {
            overrides: point,
            result,
        });
        if failed {
            sweep.status = Status::Failed;
            on_point(&sweep);
            return Ok(sweep);
        }
        if i + 1 == total {
            sweep.status = Status::Complete;
        }
        on_point(&sweep);
    }
    Ok(sweep)
}

/// Adds `h` (if any) into `into`.
pub(crate) fn merge_latency(into: &mut Option<Histogram<u64>>, h: Option<&Histogram<u64>>) {
    match (into.as_mut(), h) {
        (Some(all), Some(h)) => all.add(h).expect("sink histograms share their bounds"),
        (None, Some(h)) => *into = Some(h.clone()),
        (_, None) => {}
    }
}

/// Every sink's latency histogram of a job, merged.
fn merged_latency(job: &JobResult) -> Option<Histogram<u64>> {
    let mut all = None;
    for s in &job.subtasks {
        merge_latency(
            &mut all,
            s.result
                .as_ref()
                .and_then(|r| r.sink.as_ref()?.latency.as_ref()),
        );
    }
    all
}

fn repetition(
    index: u32,
    profile: &Profile,
    job: &JobResult,
    wall: f64,
    latency: &Option<Histogram<u64>>,
) -> Repetition {
    let (records, checksum) = job.sink_totals();
    let seconds = job
        .data_window()
        .map_or(job.elapsed.as_secs_f64(), |d| d.as_secs_f64())
        .max(1e-9);
    let bytes = records * profile.records.size.bytes();
    let data_start = job.data_start();
    Repetition {
        index,
        records,
        bytes,
        checksum,
        seconds,
        records_per_sec: records as f64 / seconds,
        records_per_ms: records as f64 / seconds / 1e3,
        bytes_per_sec: bytes as f64 / seconds,
        overhead_ms: ((wall - seconds) * 1e3).max(0.0),
        cores_busy: job
            .subtasks
            .iter()
            .map(|s| s.loop_cpu)
            .sum::<Option<std::time::Duration>>()
            .zip(job.loops_span())
            .filter(|(_, span)| !span.is_zero())
            .map(|(cpu, span)| cpu.as_secs_f64() / span.as_secs_f64()),
        latency_ns: latency.as_ref().and_then(Latency::of),
        allocations: job.subtasks.iter().map(|s| s.loop_allocations).sum(),
        pools_full: job.pools_full,
        tasks: job
            .subtasks
            .iter()
            .map(|s| task_metrics(s, data_start))
            .collect(),
    }
}

fn task_metrics(s: &crate::job::SubtaskReport, data_start: Option<Instant>) -> TaskMetrics {
    let m = &s.mailbox;
    let total = (m.busy_ns + m.idle_ns + m.back_pressured_ns).max(1) as f64;
    let pct = |ns: u64| 100.0 * ns as f64 / total;
    let outputs = s.result.as_ref().map_or(&[][..], |r| &r.outputs[..]);
    let (records_in, records_out, buffers_out) = s.result.as_ref().map_or((0, 0, 0), |r| {
        let out: u64 = r.outputs.iter().map(|o| o.records_out).sum();
        let sunk = r.sink.as_ref().map_or(0, |k| k.records);
        (
            r.records_in,
            if r.outputs.is_empty() { sunk } else { out },
            r.outputs.iter().map(|o| o.buffers_out).sum(),
        )
    });
    TaskMetrics {
        name: s.name.clone(),
        subtask: s.subtask,
        state: format!("{:?}", s.state).to_uppercase(),
        records_in,
        records_out,
        buffers_out,
        busy_pct: pct(m.busy_ns),
        idle_pct: pct(m.idle_ns),
        back_pressured_pct: pct(m.back_pressured_ns),
        pool_size: outputs.iter().map(|o| o.pool_size).sum(),
        pool_max_in_use: outputs.iter().map(|o| o.max_buffers_in_use).sum(),
        buffer_waits: outputs.iter().map(|o| o.hard_back_pressure_waits).sum(),
        allocations: s.loop_allocations,
        cpu_pct: s
            .loop_cpu
            .map(|cpu| (100.0 * cpu.as_nanos() as f64 / total).min(100.0)),
        cpu_ms: s.loop_cpu.map(|cpu| cpu.as_secs_f64() * 1e3),
        ended_ms: s
            .result
            .as_ref()
            .and_then(|r| r.finished)
            .zip(data_start)
            .map(|(end, start)| end.saturating_duration_since(start).as_secs_f64() * 1e3),
    }
}

/// The summary of `reps`; `latency` holds every measured record's latency.
pub(crate) fn summarize(
    profile: &Profile,
    reps: &[Repetition],
    latency: Option<&Histogram<u64>>,
) -> Summary {
    let figure = |f: fn(&Repetition) -> f64| Stats::of(&reps.iter().map(f).collect::<Vec<_>>());
    let records_per_ms = figure(|r| r.records_per_ms);
    // The repetition closest to the median throughput stands for the tasks.
    let median = reps
        .iter()
        .min_by(|a, b| {
            let d = |r: &Repetition| (r.records_per_ms - records_per_ms.median).abs();
            d(a).total_cmp(&d(b))
        })
        .expect("at least one repetition");
    Summary {
        repetitions: reps.len() as u32,
        records_per_sec: figure(|r| r.records_per_sec),
        records_per_ms,
        bytes_per_sec: figure(|r| r.bytes_per_sec),
        overhead_ms: figure(|r| r.overhead_ms),
        cores_busy: reps
            .iter()
            .map(|r| r.cores_busy)
            .collect::<Option<Vec<_>>>()
            .map(|cores| Stats::of(&cores)),
        latency_ns: latency.and_then(Latency::of),
        allocations_during_measurement: reps.iter().map(|r| r.allocations).sum(),
        pools_full: reps.iter().all(|r| r.pools_full),
        tasks: median.tasks.clone(),
        flink_ratio: profile
            .flink
            .as_ref()
            .filter(|f| f.ops_per_ms > 0.0)
            .map(|f| records_per_ms.median / f.ops_per_ms),
    }
}
