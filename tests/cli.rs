//! The `taskbench` command line as users meet it: results on stdout as
//! valid JSON matching the documented schema, a failing job exit 1, and
//! sweeps that write their JSON and charts. Bad input is in
//! `bad_profiles.rs` (profiles) and `bad_input.rs` (issue 13's kinds).
#![cfg(not(loom))]

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn taskbench() -> Command {
    let mut cmd = Command::cargo_bin("taskbench").expect("the binary is built");
    cmd.env("CI", "true");
    cmd
}

/// A quick version of a profile: few records, one repetition, no warm-up.
fn quick(cmd: &mut Command) -> &mut Command {
    cmd.args(["-r", "1", "-w", "0", "--set", "records.count=50000"])
}

const MAP_SINK: &str = r#"
name = "t"
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

fn profile_file(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn json_stdout(cmd: &mut Command) -> Value {
    let out = cmd.assert().success().get_output().stdout.clone();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.starts_with("{\n  \"schema_version\": 2,"),
        "schema_version comes first: {}",
        &text[..text.len().min(80)]
    );
    serde_json::from_str(&text).expect("stdout is valid JSON")
}

#[test]
fn run_writes_a_result_matching_the_schema_to_stdout() {
    let result = json_stdout(quick(taskbench().args([
        "run",
        "quickstart",
        "--output",
        "-",
    ])));
    assert_eq!(result["kind"], "run");
    assert_eq!(result["status"], "complete");
    assert_eq!(result["profile"]["name"], "quickstart");
    assert_eq!(result["profile"]["records"]["count"], 50_000);
    for field in [
        "cpu_model",
        "logical_cores",
        "cores_available",
        "task_threads",
        "virtualized",
        "kernel",
        "build_profile",
        "date",
    ] {
        assert!(!result["testbed"][field].is_null(), "testbed.{field}");
    }
    let reps = result["repetitions"].as_array().unwrap();
    assert_eq!(reps.len(), 1);
    assert_eq!(reps[0]["records"], 50_000);
    let summary = &result["summary"];
    for stat in ["records_per_sec", "records_per_ms", "bytes_per_sec"] {
        let s = &summary[stat];
        let (median, min, max) = (
            s["median"].as_f64().unwrap(),
            s["min"].as_f64().unwrap(),
            s["max"].as_f64().unwrap(),
        );
        assert!(
            median > 0.0 && min <= median && median <= max,
            "{stat}: {s}"
        );
    }
    assert_eq!(summary["allocations_during_measurement"], 0);
    assert_eq!(summary["pools_full"], true);
    let tasks = summary["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 2, "quickstart runs two tasks");
    for t in tasks {
        assert_eq!(t["state"], "FINISHED");
        let shares = ["busy_pct", "idle_pct", "back_pressured_pct"]
            .iter()
            .map(|f| t[*f].as_f64().unwrap())
            .sum::<f64>();
        assert!((shares - 100.0).abs() < 0.01, "{t}");
        // A thread is on a core for at most its loop's time, and every task
        // ends inside the data window.
        let cpu = t["cpu_pct"].as_f64().expect("Linux has thread CPU clocks");
        assert!(cpu > 0.0 && cpu <= 100.0, "{t}");
        assert!(t["cpu_ms"].as_f64().unwrap() > 0.0, "{t}");
        let ended = t["ended_ms"].as_f64().unwrap();
        let window_ms = reps[0]["seconds"].as_f64().unwrap() * 1e3;
        assert!(ended >= 0.0 && ended <= window_ms + 1e-6, "{t}");
    }
    // The tasks kept some of the cores busy, never more than there are.
    let cores = result["testbed"]["cores_available"]
        .as_array()
        .unwrap()
        .len() as f64;
    let busy = summary["cores_busy"]["median"].as_f64().unwrap();
    assert!(busy > 0.0 && busy <= cores + 0.1, "{busy} of {cores}");
    // The data window ends when the last task does.
    let last = tasks
        .iter()
        .map(|t| t["ended_ms"].as_f64().unwrap())
        .fold(0.0, f64::max);
    let window_ms = reps[0]["seconds"].as_f64().unwrap() * 1e3;
    assert!((last - window_ms).abs() < 1e-3, "{last} vs {window_ms}");
}

#[test]
fn latency_profiles_report_percentiles() {
    let result = json_stdout(taskbench().args([
        "run",
        "network-latency-1to1",
        "-r",
        "1",
        "-w",
        "0",
        "--set",
        "records.count=20000",
        "--output",
        "-",
    ]));
    let l = &result["summary"]["latency_ns"];
    let p = |k: &str| l[k].as_u64().unwrap();
    assert_eq!(p("samples"), 20_000);
    assert!(p("p50") <= p("p90") && p("p90") <= p("p99") && p("p99") <= p("p999"));
    assert!(p("p999") <= p("max"));
    // The machine's stall floor, measured in the tasks' own waits.
    let floor = &result["summary"]["stall_floor_ns"];
    let f = |k: &str| floor[k].as_u64().unwrap();
    assert!(f("samples") > 0, "{floor}");
    assert!(f("p50") <= f("p99") && f("p99") <= f("max"));
}

/// `run --trace`: a Chrome trace-event document with one named track per
/// task thread, nested slices (a hard back-pressure wait inside a busy
/// stretch, a park inside a wait) and flows from flushes to reads; the run
/// still allocates nothing while measuring.
#[test]
fn a_traced_run_writes_a_timeline_per_task() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("run.trace.json");
    // A slow consumer: the source blocks for buffers (hard back-pressure)
    // and the consumer's waits park.
    let result = json_stdout(taskbench().args([
        "run",
        "map-rebalance-map-sink",
        "-r",
        "1",
        "-w",
        "0",
        "--set",
        "records.count=50000",
        "--set",
        "records.size=200B",
        "--set",
        "vertices.map-2.kind=flat-map",
        "--set",
        "vertices.map-2.function=\"explode-64\"",
        "--set",
        "runtime.wait=\"spin-park\"",
        "--trace",
        trace.to_str().unwrap(),
        "--output",
        "-",
    ]));
    assert_eq!(result["summary"]["allocations_during_measurement"], 0);
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&trace).unwrap())
        .expect("the trace is valid JSON");
    let events = doc["traceEvents"].as_array().unwrap();
    let tracks: Vec<&str> = events
        .iter()
        .filter(|e| e["name"] == "thread_name")
        .map(|e| e["args"]["name"].as_str().unwrap())
        .collect();
    let tasks: Vec<String> = result["summary"]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| format!("{} (1/1)", t["name"].as_str().unwrap()))
        .collect();
    assert_eq!(tracks, tasks, "one track per task thread, named after it");
    let slices = |tid: u64, name: &str| -> Vec<(f64, f64)> {
        events
            .iter()
            .filter(|e| e["ph"] == "X" && e["tid"] == tid && e["name"] == name)
            .map(|e| (e["ts"].as_f64().unwrap(), e["dur"].as_f64().unwrap()))
            .collect()
    };
    let within = |tid: u64, (ts, dur): (f64, f64), outer: &str| {
        slices(tid, outer)
            .iter()
            .any(|&(ots, odur)| ots <= ts && ts + dur <= ots + odur + 1e-3)
    };
    // Track 1 is the source (the first vertex).
    let blocked = slices(1, "hard back-pressure");
    assert!(!blocked.is_empty(), "the source blocked for buffers");
    assert!(
        blocked.iter().all(|&s| within(1, s, "busy")),
        "a blocked emit nests in the busy stretch around it"
    );
    for tid in 1..=tasks.len() as u64 {
        for park in slices(tid, "park") {
            assert!(
                within(tid, park, "idle") || within(tid, park, "soft back-pressure"),
                "a park nests in the wait around it: {park:?}"
            );
        }
    }
    let flows = |ph: &str| {
        events
            .iter()
            .filter(|e| e["cat"] == "flow" && e["ph"] == ph)
            .count()
    };
    assert!(flows("s") > 0 && flows("f") > 0, "flushes flow to reads");
}

#[test]
fn csv_and_markdown_formats() {
    let out = quick(taskbench().args(["run", "map-sink", "--output", "-", "--format", "csv"]))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let csv = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("profile,point,repetition,records,"));
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[1].starts_with("map-sink,"), "{csv}");
    quick(taskbench().args(["run", "map-sink", "--output", "-", "--format", "markdown"]))
        .assert()
        .success()
        .stdout(predicate::str::starts_with(
            "| profile | point | records/ms",
        ));
}

#[test]
fn the_table_goes_to_stdout_and_the_file_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out/result.json");
    quick(taskbench().args(["run", "--output", file.to_str().unwrap()]))
        .assert()
        .success()
        .stdout(
            predicate::str::contains("records/ms").and(predicate::str::contains("allocations")),
        );
    let result: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(result["status"], "complete");
}

#[test]
fn list_and_validate() {
    let listed = taskbench()
        .arg("list")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let listed = String::from_utf8(listed).unwrap();
    for name in [
        "quickstart",
        "network-throughput-100ch-100ms",
        "network-throughput-1000ch-1ms",
        "network-throughput-1000ch-100ms",
        "network-skewed",
        "network-broadcast",
        "network-latency-1to1",
        "map-sink",
        "map-rebalance-map-sink",
        "two-input-map-sink",
        "two-input-one-idle-map-sink",
        "multi-input-map-sink",
        "latency-vs-load",
    ] {
        assert!(
            listed.lines().any(|l| l.starts_with(name)),
            "{name} not listed"
        );
    }
    taskbench()
        .args([
            "validate",
            "map-sink",
            "--set",
            "vertices.source.parallelism=2",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("ok"));
}

#[test]
fn a_failing_task_fails_the_run_with_exit_1_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let text = MAP_SINK.replace(
        "kind = \"map\"",
        "kind = \"map\"\n[[vertices]]\nname = \"boom\"\nkind = \"fail-after\"\nfail_after = 1000",
    ) + "[[edges]]\nfrom = \"map\"\nto = \"boom\"\n";
    // map now feeds both sink and boom; give boom an output.
    let text = text + "[[vertices]]\nname = \"sink-2\"\nkind = \"sink\"\n[[edges]]\nfrom = \"boom\"\nto = \"sink-2\"\n";
    let path = profile_file(dir.path(), "fail.toml", &text);
    let out = quick(taskbench().args(["run", &path, "--output", "-"]))
        .assert()
        .code(1)
        .get_output()
        .clone();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("the job failed") && stderr.contains("boom"),
        "{stderr}"
    );
    assert!(stderr.contains("failed after 1000 records"), "{stderr}");
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["status"], "failed");
    assert!(result["failure"].as_str().unwrap().contains("boom"));
}

#[test]
fn sweep_writes_json_and_charts() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{MAP_SINK}[records]\ncount = 20000\nsize = 16\n[measure]\nwarmup = 0\nrepetitions = 2\nlatency = true\n[[sweep]]\nset = \"network.segment_size\"\nvalues = [\"4KiB\", \"64KiB\"]\n[[sweep]]\nset = \"edges.1.partitioner\"\nvalues = [\"forward\", \"rebalance\"]\n"
    );
    let path = profile_file(dir.path(), "sweep.toml", &text);
    let out_dir = dir.path().join("results");
    taskbench()
        .args(["sweep", &path, "--dir", out_dir.to_str().unwrap()])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "network.segment_size=64KiB  edges.1.partitioner=rebalance",
        ));
    let mut files: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(files.contains(&"t-throughput.svg".to_string()));
    assert!(files.contains(&"t-latency.svg".to_string()));
    let json = files.iter().find(|f| f.ends_with(".json")).unwrap();
    let sweep: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join(json)).unwrap()).unwrap();
    assert_eq!(sweep["kind"], "sweep");
    assert_eq!(sweep["status"], "complete");
    let points = sweep["points"].as_array().unwrap();
    assert_eq!(points.len(), 4);
    for p in points {
        assert_eq!(p["result"]["summary"]["allocations_during_measurement"], 0);
        assert_eq!(p["result"]["repetitions"].as_array().unwrap().len(), 2);
    }
    let svg = std::fs::read_to_string(out_dir.join("t-throughput.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("records/ms") && svg.contains("64KiB"));
    // No axes: refused.
    let plain = profile_file(dir.path(), "plain.toml", MAP_SINK);
    taskbench()
        .args(["sweep", &plain])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no [[sweep]] axes"));
}

/// Every top-level field the schema in profiles/README.md documents is in
/// the result, and every field of the result is documented.
#[test]
fn the_result_matches_its_documented_schema() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/profiles/README.md"))
        .unwrap();
    let schema = doc
        .split("## The result (JSON, `schema_version` 2)")
        .nth(1)
        .expect("the schema section");
    let documented: Vec<String> = schema
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(|f| f.trim_end_matches("[]").to_string())
        .collect();
    let result = json_stdout(quick(
        taskbench().args(["run", "map-sink", "--output", "-"]),
    ));
    let fields: Vec<String> = result.as_object().unwrap().keys().cloned().collect();
    for f in &fields {
        assert!(documented.contains(f), "result field {f} is not documented");
    }
    // `failure` only when failed, `flink` only in a Flink result,
    // `instructions` only from `run --instructions`.
    for f in documented
        .iter()
        .filter(|f| !["failure", "tasks", "flink", "instructions"].contains(&f.as_str()))
    {
        assert!(fields.contains(f), "documented field {f} is missing");
    }
    let rep = result["repetitions"][0].as_object().unwrap();
    let task = rep["tasks"][0].as_object().unwrap();
    let row = |name: &str| {
        schema
            .lines()
            .find(|l| l.starts_with(&format!("| `{name}")))
            .unwrap()
            .to_string()
    };
    for key in rep.keys() {
        assert!(
            row("repetitions[]").contains(&format!("`{key}`")),
            "repetition field {key}"
        );
    }
    for key in task.keys() {
        assert!(
            row("tasks[]").contains(&format!("`{key}`")),
            "task field {key}"
        );
    }
    for key in result["summary"].as_object().unwrap().keys() {
        assert!(
            row("summary").contains(&format!("`{key}`")),
            "summary field {key}"
        );
    }
}

#[test]
fn a_restarted_run_counts_its_throughput_over_every_attempt() {
    let dir = tempfile::tempdir().unwrap();
    // 20,000 records over ~200 ms; the map fails at its 15,000th, long
    // after checkpoints every 2 ms completed, and the restarted map (its
    // count starts again) passes the rest.
    let text = MAP_SINK.replace(
        "kind = \"map\"",
        "kind = \"fail-after\"\nfail_after = 15000",
    ) + "[records]\ncount = 20000\nrate = 100000\n\
           [checkpoint]\ninterval = \"2ms\"\nrestart_attempts = 1\nrestart_delay = \"300ms\"\n";
    let path = profile_file(dir.path(), "restart.toml", &text);
    let result =
        json_stdout(taskbench().args(["run", &path, "-r", "1", "-w", "0", "--output", "-"]));
    assert_eq!(result["status"], "complete");
    let rep = &result["repetitions"][0];
    assert_eq!(rep["restarts"], 1);
    assert_eq!(rep["records"], 20_000, "exactly once over the restart");
    // Restored sink counts hold the first attempt's records: the window is
    // the whole run, the restart delay in it.
    let seconds = rep["seconds"].as_f64().unwrap();
    assert!(seconds >= 0.3, "{seconds} s leaves out the restart");
    let rate = rep["records_per_sec"].as_f64().unwrap();
    assert!((rate - 20_000.0 / seconds).abs() < 1.0, "{rate}");
    // The table says so.
    let table = taskbench()
        .args([
            "run",
            &path,
            "-r",
            "1",
            "-w",
            "0",
            "--set",
            "checkpoint.restart_delay=0ms",
        ])
        .output()
        .unwrap();
    assert!(table.status.success());
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(
        table.contains("\n  restarts      1, each from the latest completed checkpoint"),
        "{table}"
    );
    // With no restart left, the failure says how many were used.
    let no_more = taskbench()
        .args([
            "run",
            &path,
            "-r",
            "1",
            "-w",
            "0",
            "--set",
            "vertices.map.fail_after=5",
        ])
        .args(["--set", "checkpoint.restart_delay=0ms"])
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&no_more.get_output().stderr).to_string();
    // (The restart restores a checkpoint only if one completed within the
    // first 5 records, which the timing decides.)
    assert!(
        stderr.contains("operator fail-after failed after 5 records (after 1 restart(s), ")
            && stderr.contains(" from a checkpoint)"),
        "{stderr}"
    );
}

#[test]
fn checkpoints_failing_past_the_tolerable_number_fail_the_run_naming_why() {
    // The slow sink keeps the job back-pressured, so an aligned checkpoint
    // takes tens of milliseconds: with a 1 ms timeout checkpoints expire.
    let run = |extra: &[&str]| {
        taskbench()
            .args([
                "run",
                "checkpoint-single-input-aligned",
                "-r",
                "1",
                "-w",
                "0",
            ])
            .args(["--set", "records.duration=\"300ms\"", "--quiet"])
            .args(["--set", "checkpoint.timeout=1ms"])
            .args(extra.iter().flat_map(|s| ["--set", s]))
            .output()
            .unwrap()
    };
    // Flink's default tolerates none: the first expired one fails the run.
    let failed = run(&[]);
    assert_eq!(failed.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("checkpoint-coordinator: checkpoint")
            && stderr.contains("expired after 1ms")
            && stderr.contains("checkpoint.tolerable_failed_checkpoints"),
        "{stderr}"
    );
    // Tolerating them, the run ends, every checkpoint aborted and counted.
    let tolerated = run(&["checkpoint.tolerable_failed_checkpoints=1000000"]);
    assert!(tolerated.status.success(), "{tolerated:?}");
    let table = String::from_utf8_lossy(&tolerated.stdout);
    assert!(table.contains(" aborted"), "{table}");
}
