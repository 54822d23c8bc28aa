//! Runs a profile: warm-up jobs, then measured repetitions, each deployed
//! through the task executor and torn down; turns each job's result into
//! figures.

use std::time::Instant;

use hdrhistogram::Histogram;

use super::checkpoint_figures::CheckpointFigures;
use super::profile::FlinkFigure;
use super::profile::{Pin, PinPolicy, Profile, ProfileError};
use super::result::{
    Bottleneck, CoresBound, Engine, Latency, Repetition, RunResult, Stats, Status, Summary,
    SweepPoint, SweepResult, TaskMetrics, SCHEMA_VERSION,
};
use super::testbed::Testbed;
use super::trace_file::JobTrace;
use crate::job::{run_job_on, JobError, JobResult};
use crate::network::ShuffleEnvironment;
use crate::sync::stall::{self, StallRecord};
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
                JobError::Graph(_)
                | JobError::Network(_)
                | JobError::Pinning { .. }
                | JobError::CheckpointDirectory(_),
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

/// How a run is carried out, beyond what its profile says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// Events each task thread's timeline holds in every measured
    /// repetition (0: no timeline). The buffers are allocated before the
    /// tasks' loops start.
    pub trace_events: usize,
}

/// What [`run_profile_with`] returns.
#[derive(Debug)]
pub struct RunOutput {
    /// The figures.
    pub result: RunResult,
    /// Every measured record's latency, when measured.
    pub latency: Option<Histogram<u64>>,
    /// One timeline per measured repetition, with `trace_events` set.
    pub traces: Vec<JobTrace>,
}

/// [`run_profile`], also returning every measured record's latency.
pub fn run_profile_with_latency(
    profile: &Profile,
    overrides: &[String],
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<(RunResult, Option<Histogram<u64>>), RunError> {
    run_profile_with(profile, overrides, &RunOptions::default(), progress)
        .map(|out| (out.result, out.latency))
}

/// Runs `profile` as [`run_profile`] does, with `options`. In a latency run
/// the tasks' waits also record the machine's stall floor
/// ([`crate::sync::stall`]).
pub fn run_profile_with(
    profile: &Profile,
    overrides: &[String],
    run_options: &RunOptions,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<RunOutput, RunError> {
    let graph = profile.job_graph()?;
    let mut options = profile.job_options()?;
    let pinning = match &profile.runtime.pin {
        Pin::Policy(PinPolicy::Spread) => "spread".to_string(),
        Pin::Policy(PinPolicy::None) => "none".to_string(),
        Pin::Cores(cores) => format!("{cores:?}"),
    };
    let mut out = RunOutput {
        result: RunResult::started(profile, overrides, Engine::Taskbench, pinning),
        latency: None,
        traces: Vec::new(),
    };
    let result = &mut out.result;
    // The network memory lives as long as the run, as a TaskManager's does.
    let mapped = Instant::now();
    let shuffle = Arc::new(ShuffleEnvironment::new(options.network).map_err(JobError::from)?);
    result.network_setup_ms = mapped.elapsed().as_secs_f64() * 1e3;
    let mut floor: Option<Histogram<u64>> = None;
    let (mut checkpoints, mut checkpoints_skipped) = (Vec::new(), 0);
    let warmup = profile.measure.warmup;
    let repetitions = profile.measure.repetitions;
    for run in 0..warmup + repetitions {
        progress(Progress::before(run, warmup, repetitions));
        let measured = run >= warmup;
        options.trace_events = if measured {
            run_options.trace_events
        } else {
            0
        };
        let started = Instant::now();
        let mut job = run_job_on(&graph, &options, &shuffle)?;
        let wall = started.elapsed();
        if let Some(failure) = &job.failure {
            result.status = Status::Failed;
            result.failure = Some(match job.restarts {
                0 => failure.clone(),
                n => {
                    // A restart with no checkpoint completed yet starts over.
                    let restored = job.restored_from.iter().flatten().count();
                    format!("{failure} (after {n} restart(s), {restored} from a checkpoint)")
                }
            });
            return Ok(out);
        }
        if !measured {
            continue;
        }
        if run_options.trace_events > 0 {
            out.traces.push(JobTrace {
                label: format!("repetition {}", run - warmup + 1),
                threads: job
                    .subtasks
                    .iter_mut()
                    .filter_map(|s| s.trace.take())
                    .collect(),
            });
        }
        let job_latency = merged_latency(&job);
        let mut repetition = repetition(
            run - warmup,
            profile,
            &job,
            wall.as_secs_f64(),
            &job_latency,
        );
        let stalls: Vec<StallRecord> = job
            .subtasks
            .iter_mut()
            .filter_map(|s| s.stalls.take())
            .collect();
        if let (false, Some(start), Some(window)) =
            (stalls.is_empty(), job.data_start(), job.data_window())
        {
            let delays = stall::floor(&stalls, (start, start + window));
            repetition.stall_floor_ns = Latency::of(&delays);
            merge_latency(&mut floor, Some(&delays));
        }
        if let Some(c) = &profile.checkpoint {
            let (kept, skipped) = CheckpointFigures::counted(&job.checkpoints, c.skip_first);
            repetition.checkpoints = Some(CheckpointFigures::of(&kept, skipped));
            checkpoints.extend(kept);
            checkpoints_skipped += skipped;
        }
        merge_latency(&mut out.latency, job_latency.as_ref());
        result.repetitions.push(repetition);
        let mut summary = summarize(profile, &result.repetitions, out.latency.as_ref());
        summary.stall_floor_ns = floor.as_ref().and_then(Latency::of);
        if profile.checkpoint.is_some() {
            let figures = CheckpointFigures::of(&checkpoints, checkpoints_skipped);
            // No checkpoint counted: no figure to set beside Flink's.
            if let Some(flink) = profile
                .flink
                .as_ref()
                .filter(|f| f.figure == FlinkFigure::Checkpoints && figures.completed > 0)
            {
                summary.flink_ratio = Some(figures.checkpoints_per_sec / 1e3 / flink.ops_per_ms);
            }
            summary.checkpoints = Some(figures);
        }
        result.summary = Some(summary);
        if run + 1 == warmup + repetitions {
            result.status = Status::Complete;
        }
        progress(Progress::Measured(result));
    }
    Ok(out)
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
    let seconds = match job.data_window() {
        // Restored sink counts hold what the attempts before delivered.
        Some(window) if job.restarts == 0 => window.as_secs_f64(),
        _ => job.elapsed.as_secs_f64(),
    }
    .max(1e-9);
    let bytes = records.saturating_mul(profile.records.size.bytes());
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
        core_ns_per_record: core_ns_per_record(job, records),
        latency_ns: latency.as_ref().and_then(Latency::of),
        stall_floor_ns: None,
        checkpoints: None,
        restarts: job.restarts,
        allocations: job.subtasks.iter().map(|s| s.loop_allocations).sum(),
        snapshot_allocations: job.subtasks.iter().map(|s| s.snapshot_allocations).sum(),
        pools_full: job.pools_full,
        tasks: job
            .subtasks
            .iter()
            .map(|s| task_metrics(s, data_start))
            .collect(),
    }
}

/// Every task's busy CPU time over the records that reached the sinks.
/// A task's busy CPU time is the smaller of two upper bounds: its thread's
/// CPU time (which also counts spinning while idle) and its busy wall time
/// (which also counts time descheduled mid-turn).
fn core_ns_per_record(job: &JobResult, records: u64) -> Option<f64> {
    let busy: Option<f64> = job
        .subtasks
        .iter()
        .map(|s| {
            s.loop_cpu
                .map(|cpu| (cpu.as_nanos() as f64).min(s.mailbox.busy_ns as f64))
        })
        .sum();
    busy.filter(|_| records > 0).map(|ns| ns / records as f64)
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
        soft_back_pressured_pct: Some(pct(m.soft_back_pressured_ns)),
        hard_back_pressured_pct: Some(pct(m.hard_back_pressured_ns)),
        parks: Some(m.parks),
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
        debloated_buffer_size: s
            .result
            .as_ref()
            .and_then(|r| r.debloated)
            .map(|(size, _)| u64::from(size)),
    }
}

/// The summary of `reps`; `latency` holds every measured record's latency.
pub fn summarize(
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
        core_ns_per_record: reps
            .iter()
            .map(|r| r.core_ns_per_record)
            .collect::<Option<Vec<_>>>()
            .map(|ns| Stats::of(&ns)),
        latency_ns: latency.and_then(Latency::of),
        stall_floor_ns: None,
        bottleneck: bottleneck(profile, &median.tasks),
        cores_bound: cores_bound(reps, &median.tasks),
        allocations_during_measurement: reps.iter().map(|r| r.allocations).sum(),
        pools_full: reps.iter().all(|r| r.pools_full),
        tasks: median.tasks.clone(),
        flink_ratio: profile
            .flink
            .as_ref()
            .filter(|f| f.ops_per_ms > 0.0 && f.figure == FlinkFigure::Records)
            .map(|f| records_per_ms.median / f.ops_per_ms),
        checkpoints: None,
    }
}

/// A task counts as back-pressured from this share of its time on, and as
/// not back-pressured below it (Flink's web UI calls under 10 % "OK").
const BACK_PRESSURED_PCT: f64 = 10.0;
/// A task busier than this is doing the work that limits the job.
const BUSY_PCT: f64 = 50.0;

/// Flink's back-pressure rule over the tasks of one repetition: the first
/// task (from the sources on) that is busy and not back-pressured while a
/// task upstream of it is back-pressured; with nothing back-pressured, the
/// busiest source, if busy. `None` when every task mostly waits (an
/// offered rate, not the job, bounds it).
pub(crate) fn bottleneck(profile: &Profile, tasks: &[TaskMetrics]) -> Option<Bottleneck> {
    let vertices = |task: &TaskMetrics| -> Vec<String> {
        task.name.split(" -> ").map(str::to_string).collect()
    };
    let upstream_of = |task: &TaskMetrics| -> Vec<&TaskMetrics> {
        let mine = vertices(task);
        tasks
            .iter()
            .filter(|other| {
                let theirs = vertices(other);
                theirs != mine
                    && profile
                        .edges
                        .iter()
                        .any(|e| theirs.contains(&e.from) && mine.contains(&e.to))
            })
            .collect()
    };
    let limited = tasks.iter().filter_map(|task| {
        if task.back_pressured_pct >= BACK_PRESSURED_PCT || task.busy_pct < BUSY_PCT {
            return None;
        }
        let upstream: Vec<(String, f64)> = upstream_of(task)
            .into_iter()
            .filter(|u| u.back_pressured_pct >= BACK_PRESSURED_PCT)
            .map(|u| (format!("{} #{}", u.name, u.subtask), u.back_pressured_pct))
            .collect();
        (!upstream.is_empty()).then_some((task, upstream))
    });
    let most = limited.max_by(|(_, a), (_, b)| {
        let top = |u: &[(String, f64)]| u.iter().map(|(_, p)| *p).fold(0.0, f64::max);
        top(a).total_cmp(&top(b))
    });
    if let Some((task, upstream)) = most {
        return Some(Bottleneck {
            task: task.name.clone(),
            subtask: task.subtask,
            busy_pct: task.busy_pct,
            upstream,
        });
    }
    let nothing_pressed = tasks
        .iter()
        .all(|t| t.back_pressured_pct < BACK_PRESSURED_PCT);
    tasks
        .iter()
        .filter(|t| nothing_pressed && t.busy_pct >= BUSY_PCT && upstream_of(t).is_empty())
        .max_by(|a, b| a.busy_pct.total_cmp(&b.busy_pct))
        .map(|source| Bottleneck {
            task: source.name.clone(),
            subtask: source.subtask,
            busy_pct: source.busy_pct,
            upstream: Vec::new(),
        })
}

/// Whether more task threads than cores kept the cores busy (90 % of them,
/// median over repetitions): then tasks take turns on cores, and a task's
/// busy share includes time it waited for one (its CPU share says how much
/// it got).
fn cores_bound(reps: &[Repetition], tasks: &[TaskMetrics]) -> Option<CoresBound> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let cores = core_affinity::get_core_ids().map_or(cores, |ids| ids.len().max(1));
    let busy = Stats::of(
        &reps
            .iter()
            .map(|r| r.cores_busy)
            .collect::<Option<Vec<_>>>()?,
    )
    .median;
    (tasks.len() > cores && busy >= 0.9 * cores as f64).then_some(CoresBound {
        tasks: tasks.len() as u32,
        cores: cores as u32,
        cores_busy: busy,
    })
}
