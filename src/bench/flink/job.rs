//! One Flink job through the REST API: submitted, polled to its end (its
//! running subtasks' metrics sampled on the way), then read back: the
//! sinks' accumulators, every subtask's final figures, the failure if any.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::cluster::METRICS_INTERVAL_MS;
use super::rest::RestClient;
use super::FlinkError;

/// The metrics sampled while a job runs (Flink's names).
pub const SAMPLED_METRICS: [&str; 4] = [
    "numRecordsInPerSecond",
    "busyTimeMsPerSecond",
    "idleTimeMsPerSecond",
    "backPressuredTimeMsPerSecond",
];

/// Sums of sampled metrics per (task, subtask): samples, sum per metric.
type Samples = BTreeMap<(String, u32), (u32, BTreeMap<String, f64>)>;

/// How often the job's state is polled.
const POLL: Duration = Duration::from_millis(100);

/// One running subtask's sampled metrics, averaged over the samples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SampledMetrics {
    /// The Flink task (job vertex) name.
    pub task: String,
    /// Subtask index.
    pub subtask: u32,
    /// Samples taken (one per second while the job ran; 0 for a job
    /// shorter than the cluster's metric fetch interval).
    pub samples: u32,
    /// Mean of each metric over its samples, by Flink's metric name
    /// (`numRecordsInPerSecond` in records/s, the others in ms/s).
    pub means: BTreeMap<String, f64>,
}

/// What one sink subtask counted (its accumulator).
#[derive(Clone, Debug, PartialEq)]
pub struct SinkCount {
    /// Sink vertex.
    pub vertex: String,
    /// Subtask index.
    pub subtask: u32,
    /// Records that reached it.
    pub records: u64,
    /// Wrapping sum of their values.
    pub checksum: u64,
    /// Its first record's emit time (or arrival), wall-clock ns; 0 if none came.
    pub first_ns: u64,
    /// Its end of input, wall-clock ns.
    pub end_ns: u64,
    /// Latency histogram: (bucket, count), for a latency sink.
    pub latency: Option<Vec<(u32, u64)>>,
}

/// One subtask's final figures (`/jobs/:id/vertices/:vid`).
#[derive(Clone, Debug, PartialEq)]
pub struct SubtaskRow {
    /// Flink task name (`Source: source -> map`).
    pub task: String,
    /// Subtask index.
    pub subtask: u32,
    /// Final state.
    pub state: String,
    /// Records read from its input gates.
    pub records_in: u64,
    /// Records written to its outputs.
    pub records_out: u64,
    /// Flink's accumulated busy, idle and back-pressured time, ms.
    pub busy_ms: f64,
    /// See `busy_ms`.
    pub idle_ms: f64,
    /// See `busy_ms`.
    pub back_pressured_ms: f64,
    /// When it ended, epoch ms.
    pub end_ms: Option<f64>,
}

/// A finished (or failed) job.
#[derive(Clone, Debug)]
pub struct JobOutcome {
    /// Flink's job id.
    pub job_id: String,
    /// Final state (`FINISHED`, `FAILED`, `CANCELED`).
    pub state: String,
    /// The failing task and its cause, if it failed.
    pub failure: Option<String>,
    /// Flink's job duration (INITIALIZING to the end), ms.
    pub duration_ms: f64,
    /// Every sink subtask.
    pub sinks: Vec<SinkCount>,
    /// Every subtask.
    pub subtasks: Vec<SubtaskRow>,
    /// Metrics sampled while it ran.
    pub sampled: Vec<SampledMetrics>,
}

fn u64_at(v: &Value, key: &str) -> u64 {
    v.get(key)
        .and_then(|x| x.as_u64().or_else(|| x.as_f64().map(|f| f as u64)))
        .unwrap_or(0)
}

fn f64_at(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

/// The job's vertices: (id, name, parallelism).
fn vertices(details: &Value) -> Vec<(String, String, u32)> {
    details
        .get("vertices")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter_map(|v| {
                    Some((
                        v.get("id")?.as_str()?.to_string(),
                        v.get("name")?.as_str()?.to_string(),
                        u64_at(v, "parallelism") as u32,
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Submits `spec` (the job spec's JSON) from the uploaded jar and waits for
/// the job's end, at most `timeout` (then cancels it).
pub fn run_job(
    rest: &RestClient,
    jar_id: &str,
    spec: &str,
    timeout: Duration,
) -> Result<JobOutcome, FlinkError> {
    let args = ["--spec".to_string(), spec.to_string()];
    let job = rest.run_jar(jar_id, "TaskbenchJob", &args)?;
    let started = Instant::now();
    let mut samples = Samples::new();
    let mut last_sample = Instant::now();
    let details = loop {
        let details = rest.get(&format!("/jobs/{job}"))?;
        let state = details.get("state").and_then(Value::as_str).unwrap_or("");
        if matches!(state, "FINISHED" | "FAILED" | "CANCELED" | "SUSPENDED") {
            break details;
        }
        if started.elapsed() > timeout {
            rest.cancel(&job);
            return Err(FlinkError::Cluster(format!(
                "job {job} did not end within {} s (--job-timeout); it was canceled",
                timeout.as_secs()
            )));
        }
        if state == "RUNNING" && last_sample.elapsed() >= Duration::from_millis(METRICS_INTERVAL_MS)
        {
            last_sample = Instant::now();
            sample(rest, &job, &details, &mut samples);
        }
        std::thread::sleep(POLL);
    };
    let state = details
        .get("state")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut subtasks = Vec::new();
    for (id, name, _) in vertices(&details) {
        let vertex = rest.get(&format!("/jobs/{job}/vertices/{id}"))?;
        for s in vertex
            .get("subtasks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let metrics = s.get("metrics").cloned().unwrap_or(Value::Null);
            subtasks.push(SubtaskRow {
                task: name.clone(),
                subtask: u64_at(s, "subtask") as u32,
                state: s
                    .get("status")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                records_in: u64_at(&metrics, "read-records"),
                records_out: u64_at(&metrics, "write-records"),
                busy_ms: f64_at(&metrics, "accumulated-busy-time").unwrap_or(0.0),
                idle_ms: f64_at(&metrics, "accumulated-idle-time").unwrap_or(0.0),
                back_pressured_ms: f64_at(&metrics, "accumulated-backpressured-time")
                    .unwrap_or(0.0),
                end_ms: f64_at(s, "end-time").filter(|&t| t > 0.0),
            });
        }
    }
    let failure = if state == "FINISHED" {
        None
    } else {
        Some(failure(rest, &job, &state))
    };
    Ok(JobOutcome {
        sinks: sink_counts(&rest.get(&format!("/jobs/{job}/accumulators"))?)?,
        duration_ms: f64_at(&details, "duration").unwrap_or(0.0),
        job_id: job,
        state,
        failure,
        subtasks,
        sampled: samples
            .into_iter()
            .map(|((task, subtask), (n, sums))| SampledMetrics {
                task,
                subtask,
                samples: n,
                means: sums
                    .into_iter()
                    .map(|(k, sum)| (k, sum / f64::from(n.max(1))))
                    .collect(),
            })
            .collect(),
    })
}

/// One sample of every running subtask's metrics, added into `into`.
fn sample(rest: &RestClient, job: &str, details: &Value, into: &mut Samples) {
    for (id, name, parallelism) in vertices(details) {
        for subtask in 0..parallelism {
            // Best effort: a subtask that just finished has no metrics left.
            let Ok(values) = rest.subtask_metrics(job, &id, subtask, &SAMPLED_METRICS) else {
                continue;
            };
            if values.is_empty() {
                continue;
            }
            let entry = into.entry((name.clone(), subtask)).or_default();
            entry.0 += 1;
            for (metric, value) in values {
                *entry.1.entry(metric).or_insert(0.0) += value;
            }
        }
    }
}

/// The failing task and its cause, from `/jobs/:id/exceptions`: the
/// innermost `Caused by` line is the operator's own message.
fn failure(rest: &RestClient, job: &str, state: &str) -> String {
    let Ok(exceptions) = rest.get(&format!("/jobs/{job}/exceptions")) else {
        return format!("the job ended {state}");
    };
    let entry = exceptions.pointer("/exceptionHistory/entries/0");
    let trace = entry
        .and_then(|e| e.get("stacktrace"))
        .or_else(|| exceptions.get("root-exception"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let cause = trace
        .lines()
        .rfind(|l| l.starts_with("Caused by: "))
        .or_else(|| trace.lines().next())
        .unwrap_or("no exception reported")
        .trim_start_matches("Caused by: ");
    let cause = cause.split_once(": ").map_or(cause, |(class, message)| {
        if class.contains('.') && !class.contains(' ') {
            message
        } else {
            cause
        }
    });
    // The global entry (recovery suppressed) names no task; the task's own
    // failure is among its concurrent exceptions.
    let named = |e: &Value| Some((e.get("taskName")?.as_str()?.to_string(), e.clone()));
    let tasks: Vec<(String, Value)> = entry
        .into_iter()
        .chain(
            entry
                .and_then(|e| e.get("concurrentExceptions"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        )
        .filter_map(named)
        .collect();
    let task = tasks
        .iter()
        .find(|(_, e)| {
            e.get("stacktrace")
                .and_then(Value::as_str)
                .is_some_and(|t| t.contains(cause))
        })
        .or(tasks.first());
    match task {
        Some((task, _)) => format!("task {task} failed: {cause}"),
        None => format!("the job ended {state}: {cause}"),
    }
}

/// The sinks' accumulators (`taskbench/sink/VERTEX/SUBTASK`).
fn sink_counts(accumulators: &Value) -> Result<Vec<SinkCount>, FlinkError> {
    let mut sinks = Vec::new();
    for a in accumulators
        .get("user-task-accumulators")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = a.get("name").and_then(Value::as_str).unwrap_or("");
        let Some(rest) = name.strip_prefix("taskbench/sink/") else {
            continue;
        };
        let Some((vertex, subtask)) = rest.rsplit_once('/') else {
            continue;
        };
        let bad = |why: String| FlinkError::Cluster(format!("accumulator {name}: {why}"));
        let text = a.get("value").and_then(Value::as_str).unwrap_or("");
        let v: Value = serde_json::from_str(text).map_err(|e| bad(format!("{e} in {text:?}")))?;
        let latency = match v.get("latency").and_then(Value::as_str) {
            None => None,
            Some(buckets) => Some(
                buckets
                    .split(',')
                    .filter(|b| !b.is_empty())
                    .map(|b| {
                        let (i, n) = b.split_once(':')?;
                        Some((i.parse().ok()?, n.parse().ok()?))
                    })
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| bad(format!("bad latency buckets {buckets:?}")))?,
            ),
        };
        sinks.push(SinkCount {
            vertex: vertex.to_string(),
            subtask: subtask.parse().map_err(|_| bad("bad subtask".into()))?,
            records: u64_at(&v, "records"),
            checksum: u64_at(&v, "checksum"),
            first_ns: u64_at(&v, "first_ns"),
            end_ns: u64_at(&v, "end_ns"),
            latency,
        });
    }
    sinks.sort_by(|a, b| (&a.vertex, a.subtask).cmp(&(&b.vertex, b.subtask)));
    Ok(sinks)
}

/// The latency a histogram bucket of the Java sink stands for, ns: exact
/// below 2048, else the middle of its 1/1024-of-an-octave range.
pub fn bucket_value(bucket: u32) -> u64 {
    const SUB: u32 = 1024;
    if bucket < 2 * SUB {
        return u64::from(bucket);
    }
    let k = bucket - 2 * SUB;
    let shift = k / SUB + 1; // the octave's exponent minus 10
    let sub = u64::from(SUB + k % SUB);
    (sub << shift) + (1u64 << shift) / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Java sink's bucket of a latency (TaskbenchRecords.SinkResult.bucket).
    fn bucket(ns: u64) -> u32 {
        if ns < 2048 {
            return ns as u32;
        }
        let exponent = 63 - ns.leading_zeros();
        let shift = exponent - 10;
        2048 + (exponent - 11) * 1024 + ((ns >> shift) - 1024) as u32
    }

    #[test]
    fn buckets_stand_for_their_latency_within_a_tenth_of_a_percent() {
        for ns in [
            1u64,
            2047,
            2048,
            2049,
            4095,
            4096,
            100_000,
            1_234_567,
            99_999_999_999,
        ] {
            let v = bucket_value(bucket(ns));
            let error = (v as f64 - ns as f64).abs() / ns as f64;
            assert!(error < 0.001, "{ns} -> bucket {} -> {v}", bucket(ns));
        }
    }

    #[test]
    fn sink_accumulators_are_read_back() {
        let answer = serde_json::json!({"user-task-accumulators": [
            {"name": "taskbench/sink/sink/1", "type": "SinkResult",
             "value": "{\"records\":3,\"checksum\":18446744073709551615,\"first_ns\":5,\"end_ns\":9,\"latency\":\"7:2,3000:1\"}"},
            {"name": "taskbench/sink/a/b/0", "type": "SinkResult",
             "value": "{\"records\":1,\"checksum\":2,\"first_ns\":0,\"end_ns\":0,\"latency\":null}"},
            {"name": "something-else", "type": "LongCounter", "value": "1"}
        ]});
        let sinks = sink_counts(&answer).unwrap();
        assert_eq!(sinks.len(), 2);
        assert_eq!((sinks[0].vertex.as_str(), sinks[0].subtask), ("a/b", 0));
        assert_eq!(sinks[1].checksum, u64::MAX);
        assert_eq!(sinks[1].latency, Some(vec![(7, 2), (3000, 1)]));
        let bad = serde_json::json!({"user-task-accumulators": [
            {"name": "taskbench/sink/s/0", "value": "{\"latency\":\"x\"}"}]});
        assert!(sink_counts(&bad)
            .unwrap_err()
            .to_string()
            .contains("taskbench/sink/s/0"));
    }
}
