//! `taskbench flink` and `run --vs-flink` at the command line, where no JVM
//! is needed: the spec, every class of bad input (exit 2, the problem
//! named), and `compare` taking a result whose engine is Flink.

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn taskbench() -> Command {
    let mut cmd = Command::cargo_bin("taskbench").expect("the binary is built");
    cmd.env("CI", "true");
    cmd
}

#[test]
fn flink_spec_prints_the_job_spec() {
    let out = taskbench()
        .args([
            "flink",
            "spec",
            "map-rebalance-map-sink",
            "--set",
            "network.buffer_timeout=0ms",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let spec: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(spec["spec_version"], 1);
    assert_eq!(spec["name"], "map-rebalance-map-sink");
    assert_eq!(spec["network"]["buffer_timeout_ms"], 0);
    let partitioners: Vec<&str> = spec["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["partitioner"].as_str().unwrap())
        .collect();
    assert!(partitioners.contains(&"rebalance"), "{partitioners:?}");
}

#[test]
fn a_profile_flink_cannot_express_is_refused_naming_the_field() {
    for command in [
        &["flink", "spec"][..],
        &["flink", "run"],
        &["run", "--vs-flink"],
    ] {
        taskbench()
            .args(command)
            .arg("network-throughput-100ch-100ms")
            .assert()
            .code(2)
            .stderr(predicate::str::contains(
                "Flink cannot run this profile: edges[0].channels: 100 channels per subtask pair",
            ));
    }
}

#[test]
fn bad_flink_flags_are_refused_before_anything_runs() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--cluster", "localhost:8081"],
            "--cluster \"localhost:8081\" is not a Flink REST address",
        ),
        (&["--cluster", "https://h:8081"], "https is not supported"),
        (
            &["--cluster", "http://h:http"],
            "port \"http\" is not 1..65535",
        ),
        (&["--forks", "0"], "--forks 0"),
        (
            &["--forks", "2", "--cluster", "http://127.0.0.1:9"],
            "--forks 2 starts MiniCluster JVMs",
        ),
        (&["--job-timeout", "0s"], "--job-timeout 0"),
        (
            &["--flink-version", "2.x"],
            "--flink-version \"2.x\" is not a version",
        ),
    ];
    for (flags, message) in cases {
        taskbench()
            .args(["flink", "run", "map-sink"])
            .args(*flags)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(*message));
    }
    taskbench()
        .args(["run", "map-sink", "--flink-output", "x.json"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--vs-flink"));
}

#[test]
fn a_cluster_address_where_no_flink_answers_is_bad_input() {
    // Port 9 (discard) on loopback: nothing listens there.
    taskbench()
        .args([
            "flink",
            "run",
            "map-sink",
            "--cluster",
            "http://127.0.0.1:9",
        ])
        .timeout(std::time::Duration::from_secs(60))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "no Flink REST API answers at http://127.0.0.1:9",
        ));
}

#[test]
fn a_machine_without_a_jdk_is_told_which_package_to_install() {
    let empty = tempfile::tempdir().unwrap();
    taskbench()
        .args(["flink", "run", "map-sink"])
        .env("PATH", empty.path())
        .env_remove("JAVA_HOME")
        .env("TASKBENCH_CACHE", empty.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "java not found (neither in $JAVA_HOME/bin nor on PATH): install Java 17 with Debian's openjdk-17-jdk-headless",
        ));
}

#[test]
fn compare_takes_a_flink_result_and_says_the_engines_differ() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("taskbench.json");
    taskbench()
        .args([
            "run",
            "map-sink",
            "-r",
            "2",
            "-w",
            "0",
            "--set",
            "records.count=100000",
            "--quiet",
            "-o",
        ])
        .arg(&base)
        .assert()
        .success();
    // The same result as a Flink run would write it.
    let mut result: Value = serde_json::from_str(&std::fs::read_to_string(&base).unwrap()).unwrap();
    assert_eq!(result["engine"], "taskbench");
    result["engine"] = "flink".into();
    result["flink"] = serde_json::json!({
        "flink_version": "2.3.0",
        "jvm_version": "OpenJDK 64-Bit Server VM 17",
        "cluster": "local MiniCluster (1 TaskManager, 1 slots)",
        "forks": 1,
        "jobs": [{"fork": 0, "job_id": "j", "warmup": false, "state": "FINISHED",
                  "duration_ms": 12.5, "metrics": [{"task": "t", "subtask": 0, "samples": 1,
                  "means": {"busyTimeMsPerSecond": 1000.0}}]}]
    });
    let current = dir.path().join("flink.json");
    std::fs::write(&current, serde_json::to_string_pretty(&result).unwrap()).unwrap();
    taskbench()
        .arg("compare")
        .arg(&base)
        .arg(&current)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "warning: engines differ: taskbench vs Flink 2.3.0 (local MiniCluster",
        ))
        .stdout(predicate::str::contains("records_per_sec"));
}
