//! The CI formats of `run` and `sweep`: Bencher Metric Format and
//! github-action-benchmark's custom tools, one direction a file.
#![cfg(not(loom))]

mod common;

use common::taskbench;
use serde_json::Value;

fn run(format: &str) -> Value {
    let out = taskbench()
        .args([
            "run",
            "quickstart",
            "-r",
            "2",
            "-w",
            "0",
            "--set",
            "records.count=20000",
        ])
        .args(["--quiet", "--output", "-", "--format", format])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn bmf_names_a_benchmark_per_run_and_a_measure_per_figure() {
    let bmf = run("bmf");
    let q = &bmf["quickstart"];
    for measure in ["throughput", "bytes-per-sec", "core-ns-per-record"] {
        let m = &q[measure];
        let (lo, v, hi) = (
            m["lower_value"].as_f64().unwrap(),
            m["value"].as_f64().unwrap(),
            m["upper_value"].as_f64().unwrap(),
        );
        assert!(lo <= v && v <= hi && lo > 0.0, "{measure}: {m}");
    }
}

#[test]
fn github_action_benchmark_splits_the_directions() {
    let bigger = run("github-action-benchmark");
    let names: Vec<&str> = bigger
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["quickstart records_per_sec", "quickstart bytes_per_sec"]
    );
    assert_eq!(bigger[0]["unit"], "records/s");
    assert!(bigger[0]["value"].as_f64().unwrap() > 0.0);
    let smaller = run("github-action-benchmark-smaller");
    assert_eq!(smaller[0]["name"], "quickstart core_ns_per_record");
    assert_eq!(smaller[0]["unit"], "ns");
}

#[test]
fn a_sweep_has_a_benchmark_per_point() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.json");
    taskbench()
        .args([
            "sweep",
            "sweep-tasks-segments",
            "-r",
            "1",
            "-w",
            "0",
            "--quiet",
        ])
        .args(["--set", "records.count=10000", "--format", "bmf", "--dir"])
        .arg(dir.path())
        .arg("--output")
        .arg(&out)
        .assert()
        .success();
    let bmf: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let points = bmf.as_object().unwrap();
    assert!(points.len() > 1, "{bmf}");
    assert!(
        points
            .keys()
            .all(|k| k.starts_with("sweep-tasks-segments [")),
        "{bmf}"
    );
}
