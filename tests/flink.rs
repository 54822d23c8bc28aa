//! Profiles on real Apache Flink against taskbench's own runs of them:
//! the same records and checksums, the same records at each sink subtask.
//!
//! These install what they need on first use (the apache-flink-libraries
//! wheel from PyPI into the cache directory, taskbench's job compiled with
//! javac) and fail, saying what is missing, on a machine without Java 17
//! (Debian's openjdk-17-jdk-headless) or PyPI; `.ci/run` installs the JDK.
//! They run one at a time: each starts Flink JVMs on a small machine.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;
use taskbench::bench::builtin::builtin;
use taskbench::bench::flink::cluster::Cluster;
use taskbench::bench::flink::job::run_job;
use taskbench::bench::flink::rest::RestClient;
use taskbench::bench::flink::{cache_dir, Installation, JobSpec, DEFAULT_FLINK_VERSION};
use taskbench::bench::{run_profile, Profile, RunResult};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn install() -> Installation {
    Installation::prepare(DEFAULT_FLINK_VERSION, &cache_dir(), &mut |s| {
        eprintln!("{s}")
    })
    .unwrap_or_else(|e| panic!("Flink cannot be installed here: {e}"))
}

fn taskbench() -> Command {
    let mut c = Command::cargo_bin("taskbench").unwrap();
    c.env("CI", "true");
    c
}

/// Runs `taskbench ARGS -o FILE` and reads the JSON result.
fn result_of(args: &[&str], dir: &Path, name: &str) -> (Value, std::process::Output) {
    let file = dir.join(name);
    let out = taskbench()
        .args(args)
        .arg("-o")
        .arg(&file)
        .output()
        .unwrap();
    let text = std::fs::read_to_string(&file).unwrap_or_else(|_| {
        panic!(
            "taskbench {args:?} wrote no result: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (serde_json::from_str(&text).unwrap(), out)
}

/// (task name without Flink's "Source: ", subtask) → records out, for tasks
/// whose chain ends in a sink.
fn sink_subtasks(tasks: &Value) -> BTreeMap<(String, u64), u64> {
    tasks
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["name"].as_str().unwrap().ends_with("sink"))
        .map(|t| {
            let name = t["name"].as_str().unwrap().trim_start_matches("Source: ");
            (
                (name.to_string(), t["subtask"].as_u64().unwrap()),
                t["records_out"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// taskbench's own totals for `profile`: (records, checksum).
fn taskbench_totals(profile: &Profile) -> (u64, u64) {
    let result: RunResult = run_profile(profile, &[], &mut |_| {}).unwrap();
    let r = &result.repetitions[0];
    (r.records, r.checksum)
}

#[test]
fn flink_run_on_a_minicluster_matches_taskbench_record_for_record() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    install();
    let dir = tempfile::tempdir().unwrap();
    let set = ["--set", "records.count=200000"];
    let mut flink_args = vec!["flink", "run", "keyed-count-zipf"];
    flink_args.extend(set);
    flink_args.extend(["--forks", "1", "-w", "1", "-r", "2", "--jvm-opts", "-Xmx1g"]);
    let (flink, out) = result_of(&flink_args, dir.path(), "flink.json");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut ours_args = vec!["run", "keyed-count-zipf"];
    ours_args.extend(set);
    ours_args.extend(["-w", "0", "-r", "1", "--quiet"]);
    let (ours, out) = result_of(&ours_args, dir.path(), "taskbench.json");
    assert!(out.status.success());

    assert_eq!(flink["engine"], "flink");
    assert_eq!(ours["engine"], "taskbench");
    assert_eq!(flink["status"], "complete");
    let info = &flink["flink"];
    assert_eq!(info["flink_version"], DEFAULT_FLINK_VERSION);
    assert!(
        info["jvm_version"].as_str().unwrap().contains("17"),
        "{info}"
    );
    assert!(info["cluster"].as_str().unwrap().contains("MiniCluster"));
    assert_eq!(info["forks"], 1);
    assert_eq!(info["jobs"].as_array().unwrap().len(), 3);
    assert_eq!(info["jobs"][0]["warmup"], true);
    assert_eq!(flink["warmup_runs"], 1);
    let reps = flink["repetitions"].as_array().unwrap();
    assert_eq!(reps.len(), 2);
    // 2 sources × 200,000 records, Zipf keys: a count per key.
    let expected = &ours["repetitions"][0];
    assert_eq!(expected["records"], 400_000);
    for r in reps {
        assert_eq!(r["records"], expected["records"]);
        assert_eq!(r["checksum"], expected["checksum"]);
        assert!(r["records_per_sec"].as_f64().unwrap() > 0.0);
        // Flink's key groups send each key to the subtask taskbench sends it to.
        assert_eq!(
            sink_subtasks(&r["tasks"]),
            sink_subtasks(&expected["tasks"])
        );
        for t in r["tasks"].as_array().unwrap() {
            let shares: f64 = ["busy_pct", "idle_pct", "back_pressured_pct"]
                .iter()
                .map(|k| t[k].as_f64().unwrap())
                .sum();
            assert!((shares - 100.0).abs() < 0.01 || shares == 0.0, "{t}");
        }
    }
    // `compare` takes a Flink result like any other, and says the engines differ.
    let out = taskbench()
        .args(["compare"])
        .arg(dir.path().join("taskbench.json"))
        .arg(dir.path().join("flink.json"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_ne!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("engines differ: taskbench vs Flink"),
        "{text}"
    );
}

#[test]
fn a_jvm_that_ends_at_once_is_reported_as_ended_not_as_slow() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    install();
    let out = taskbench()
        .args(["flink", "run", "map-sink", "--set", "records.count=1000"])
        .args(["--forks", "1", "-w", "0", "-r", "1"])
        .args(["--jvm-opts", "-XX:NoSuchOption"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("JVM ended") && stderr.contains("NoSuchOption"),
        "{stderr}"
    );
    assert!(!stderr.contains("did not come up"), "{stderr}");
}

/// Profiles covering every operator, edge kind and record option, each run
/// as one job on a shared MiniCluster and by taskbench.
const SHAPES: &[(&str, &str)] = &[
    (
        "operators",
        r#"name = "operators"
        [records]
        count = 30000
        [[vertices]]
        name = "source"
        kind = "source"
        parallelism = 2
        [[vertices]]
        name = "inc"
        kind = "map"
        function = "increment"
        parallelism = 2
        [[vertices]]
        name = "third"
        kind = "filter"
        function = "one-in-3"
        parallelism = 3
        [[vertices]]
        name = "explode"
        kind = "flat-map"
        function = "explode-3"
        parallelism = 3
        [[vertices]]
        name = "even"
        kind = "filter"
        parallelism = 1
        [[vertices]]
        name = "sink"
        kind = "sink"
        parallelism = 2
        [[edges]]
        from = "source"
        to = "inc"
        [[edges]]
        from = "inc"
        to = "third"
        [[edges]]
        from = "third"
        to = "explode"
        [[edges]]
        from = "explode"
        to = "even"
        partitioner = "rescale"
        [[edges]]
        from = "even"
        to = "sink"
        partitioner = "broadcast"
        "#,
    ),
    (
        "keyed-sum-skewed-bytes",
        r#"name = "keyed-sum"
        chaining = false
        [records]
        count = 50000
        size = 24
        key_space = 97
        skew_after = 40000
        [[vertices]]
        name = "source"
        kind = "source"
        [[vertices]]
        name = "sum"
        kind = "keyed-aggregate"
        function = "sum"
        parallelism = 2
        [[vertices]]
        name = "double"
        kind = "map"
        parallelism = 2
        [[vertices]]
        name = "sink"
        kind = "sink"
        parallelism = 2
        [[edges]]
        from = "source"
        to = "sum"
        partitioner = "hash"
        [[edges]]
        from = "sum"
        to = "double"
        [[edges]]
        from = "double"
        to = "sink"
        "#,
    ),
    (
        "two-inputs-zipf",
        r#"name = "two-inputs"
        [records]
        count = 20000
        key_space = 500
        distribution = "zipf"
        zipf_exponent = 1.2
        [[vertices]]
        name = "a"
        kind = "source"
        [[vertices]]
        name = "b"
        kind = "source"
        parallelism = 2
        records = 7000
        [[vertices]]
        name = "map"
        kind = "map"
        function = "identity"
        parallelism = 2
        [[vertices]]
        name = "count"
        kind = "keyed-aggregate"
        parallelism = 2
        [[vertices]]
        name = "sink"
        kind = "sink"
        parallelism = 2
        [[edges]]
        from = "a"
        to = "map"
        [[edges]]
        from = "b"
        to = "map"
        partitioner = "hash"
        [[edges]]
        from = "map"
        to = "count"
        partitioner = "hash"
        [[edges]]
        from = "count"
        to = "sink"
        "#,
    ),
];

#[test]
fn every_operator_and_edge_counts_and_checksums_as_taskbench_does() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let install = install();
    let cluster = Cluster::mini(&install, &cache_dir(), 3, &[], &["-Xmx1g".to_string()]).unwrap();
    let rest = RestClient::new(&cluster.url);
    let jar = rest.upload_jar(&install.job_jar).unwrap();
    let timeout = Duration::from_secs(180);
    for (name, toml) in SHAPES {
        let profile = Profile::from_toml(toml, name, &[]).unwrap();
        let spec = serde_json::to_string(&JobSpec::from_profile(&profile).unwrap()).unwrap();
        let job = run_job(&rest, &jar, &spec, timeout).unwrap();
        assert_eq!(job.state, "FINISHED", "{name}: {:?}", job.failure);
        let records: u64 = job.sinks.iter().map(|s| s.records).sum();
        let checksum = job
            .sinks
            .iter()
            .fold(0u64, |a, s| a.wrapping_add(s.checksum));
        assert!(records > 0, "{name}");
        assert_eq!((records, checksum), taskbench_totals(&profile), "{name}");
    }

    // A latency sink behind a rate-limited source: every record timed.
    let set: Vec<String> = [
        "chaining=false",
        "records.count=3000",
        "records.size=16",
        "records.rate=3000",
        "measure.latency=true",
        "vertices.map.function=identity",
        "network.buffer_timeout=0ms",
    ]
    .map(String::from)
    .to_vec();
    let latency = Profile::from_toml(builtin("map-sink").unwrap(), "latency", &set).unwrap();
    let spec = serde_json::to_string(&JobSpec::from_profile(&latency).unwrap()).unwrap();
    let job = run_job(&rest, &jar, &spec, timeout).unwrap();
    let sink = &job.sinks[0];
    assert_eq!((sink.records, sink.checksum), taskbench_totals(&latency));
    let timed: u64 = sink.latency.as_ref().unwrap().iter().map(|(_, n)| n).sum();
    assert_eq!(timed, 3000);
    // 3000 records at 3000/s: the data window is about a second.
    assert!(sink.end_ns - sink.first_ns > 800_000_000, "{sink:?}");

    // A failing operator fails the job, its message kept.
    let failing = Profile::from_toml(
        &SHAPES[0].1.replace(
            "name = \"even\"\n        kind = \"filter\"",
            "name = \"even\"\n        kind = \"fail-after\"\n        fail_after = 100",
        ),
        "failing",
        &[],
    )
    .unwrap();
    let spec = serde_json::to_string(&JobSpec::from_profile(&failing).unwrap()).unwrap();
    let job = run_job(&rest, &jar, &spec, timeout).unwrap();
    assert_eq!(job.state, "FAILED");
    let failure = job.failure.unwrap();
    assert!(
        failure.contains("even")
            && failure.contains("operator fail-after failed after 100 records"),
        "{failure}"
    );
    rest.delete_jar(&jar);
}

#[test]
fn a_standalone_cluster_runs_the_job_through_rest_and_reports_its_metrics() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let install = install();
    let cluster = Cluster::standalone(&install, &cache_dir(), 2, &[]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // 2 × 32,000 records at 4,000/s per source: 8 s, long enough for
    // Flink's per-second meters (updated every 5 s) to show the records.
    let set = [
        "--set",
        "records.count=32000",
        "--set",
        "records.rate=4000",
        "--set",
        "vertices.source.parallelism=2",
        "--set",
        "vertices.count.parallelism=2",
        "--set",
        "vertices.sink.parallelism=2",
    ];
    let mut args = vec![
        "flink",
        "run",
        "keyed-count-zipf",
        "--cluster",
        &cluster.url,
        "-w",
        "0",
        "-r",
        "1",
    ];
    args.extend(set);
    let (flink, out) = result_of(&args, dir.path(), "remote.json");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut ours_args = vec!["run", "keyed-count-zipf", "-w", "0", "-r", "1", "--quiet"];
    ours_args.extend(set);
    let (ours, _) = result_of(&ours_args, dir.path(), "taskbench.json");
    assert_eq!(flink["engine"], "flink");
    assert_eq!(flink["flink"]["cluster"], cluster.url.as_str());
    assert_eq!(flink["repetitions"][0]["records"], 64_000);
    assert_eq!(
        flink["repetitions"][0]["checksum"],
        ours["repetitions"][0]["checksum"]
    );
    let job = &flink["flink"]["jobs"][0];
    assert_eq!(job["state"], "FINISHED");
    assert!(job["duration_ms"].as_f64().unwrap() >= 7500.0, "{job}");
    let metrics = job["metrics"].as_array().unwrap();
    let sinks: Vec<&Value> = metrics
        .iter()
        .filter(|m| m["task"].as_str().unwrap().ends_with("sink"))
        .collect();
    assert_eq!(sinks.len(), 2, "one row per sink subtask: {metrics:?}");
    for sink in &sinks {
        // Sampled once a second while the job runs, but each sample is a
        // round of REST calls that a loaded machine can slow down a lot.
        assert!(sink["samples"].as_u64().unwrap() >= 1, "{sink}");
        for name in [
            "numRecordsInPerSecond",
            "busyTimeMsPerSecond",
            "idleTimeMsPerSecond",
            "backPressuredTimeMsPerSecond",
        ] {
            assert!(sink["means"][name].is_number(), "{name} missing: {sink}");
        }
    }
    // The sinks worked, by Flink's own figures. numRecordsInPerSecond is a
    // MeterView that Flink updates every 5 s over a 60 s window: in a job
    // of ~8 s it can read 0 in every sample, so busy time counts too.
    let worked: f64 = sinks
        .iter()
        .map(|s| {
            s["means"]["numRecordsInPerSecond"].as_f64().unwrap()
                + s["means"]["busyTimeMsPerSecond"].as_f64().unwrap()
        })
        .sum();
    assert!(worked > 0.0, "{sinks:?}");

    // The cluster's network is its own: a profile asking for another is refused.
    let out = taskbench()
        .args(["flink", "run", "map-sink", "--cluster", &cluster.url])
        .args(["--set", "network.segment_size=64KiB"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("network.segment_size") && err.contains("taskmanager.memory.segment-size"),
        "{err}"
    );
}
