//! Where results go (issue 13, kinds 6–10 and 12; DESIGN invariant 6):
//! output paths are checked before the first job, only regular files are
//! written, a failed write keeps the previous version and names the path
//! and the OS error, a closed stdout ends quietly, and SIGINT/SIGTERM
//! leave a valid result marked `interrupted`. Results match the schema
//! `taskbench schema` prints.
#![cfg(not(loom))]

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use common::binary;
use serde_json::Value;

fn taskbench() -> Command {
    let mut cmd = Command::cargo_bin("taskbench").expect("the binary is built");
    cmd.env("CI", "true");
    cmd.timeout(Duration::from_secs(300));
    cmd
}

/// A quick run: few records, one repetition, no warm-up.
const QUICK: [&str; 6] = ["-r", "1", "-w", "0", "--set", "records.count=20000"];

const SWEEP: &str = r#"
name = "s"
[[vertices]]
name = "source"
kind = "source"
[[vertices]]
name = "sink"
kind = "sink"
[[edges]]
from = "source"
to = "sink"
[records]
count = 2000
size = 16
[measure]
warmup = 0
repetitions = 1
latency = true
[[sweep]]
set = "network.segment_size"
values = ["4KiB", "8KiB"]
"#;

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Exit 2 before any job, naming every `expected` part.
fn refused_before_running(args: &[&str], expected: &[&str]) {
    let out = taskbench().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "no table: nothing ran");
    for part in expected {
        assert!(stderr.contains(part), "'{part}' not in: {stderr}");
    }
}

fn schema() -> jsonschema::Validator {
    let out = taskbench()
        .arg("schema")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let schema: Value = serde_json::from_slice(&out).expect("the schema is JSON");
    jsonschema::validator_for(&schema).expect("a valid JSON Schema")
}

fn assert_matches_schema(validator: &jsonschema::Validator, result: &Value) {
    let errors: Vec<String> = validator
        .iter_errors(result)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn results_match_the_published_schema() {
    let validator = schema();
    let run = taskbench()
        .args(["run", "map-sink", "--output", "-"])
        .args(QUICK)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let run: Value = serde_json::from_slice(&run).unwrap();
    assert_matches_schema(&validator, &run);
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("s.toml");
    std::fs::write(&profile, SWEEP).unwrap();
    let sweep = taskbench()
        .args(["sweep", profile.to_str().unwrap(), "--output", "-", "--dir"])
        .arg(dir.path().join("charts"))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let sweep: Value = serde_json::from_slice(&sweep).unwrap();
    assert_eq!(sweep["kind"], "sweep");
    assert_matches_schema(&validator, &sweep);
    // The schema is not a formality: a result missing a field fails it.
    let mut broken = run.clone();
    broken.as_object_mut().unwrap().remove("testbed");
    assert!(!validator.is_valid(&broken));
}

#[test]
fn kind_6_a_profile_name_cannot_lead_outside_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["../../escaped", "/tmp/anywhere", "a\\\\b", ".."] {
        let profile = dir.path().join("p.toml");
        std::fs::write(
            &profile,
            SWEEP.replace("name = \"s\"", &format!("name = \"{name}\"")),
        )
        .unwrap();
        refused_before_running(
            &[
                "sweep",
                profile.to_str().unwrap(),
                "--dir",
                dir.path().join("out").to_str().unwrap(),
            ],
            &["name"],
        );
    }
    assert!(!dir.path().join("out").exists());
    assert!(!dir
        .path()
        .parent()
        .unwrap()
        .join("escaped-throughput.svg")
        .exists());
}

#[test]
fn kind_7_unusable_output_paths_are_found_before_the_first_job() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    refused_before_running(&["run", "map-sink", "--output", d], &["is a directory"]);
    assert!(entries(dir.path()).is_empty(), "no .partial left behind");
    // A path that can only name a directory, though none is there yet.
    let slash = format!("{d}/new.json/");
    refused_before_running(
        &["run", "map-sink", "--output", &slash],
        &["new.json/", "names a directory"],
    );
    assert!(entries(dir.path()).is_empty(), "nothing made");
    refused_before_running(
        &["run", "map-sink", "--output", "/proc/version"],
        &["/proc/version", "is read-only"],
    );
    refused_before_running(
        &["run", "map-sink", "--output", "/proc/taskbench.json"],
        &["/proc/taskbench.json", "does not take new files"],
    );
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let below = file.join("result.json");
    refused_before_running(
        &["run", "map-sink", "--output", below.to_str().unwrap()],
        &["not a directory"],
    );
    refused_before_running(
        &["run", "map-sink", "--trace", below.to_str().unwrap()],
        &["result.json", "not a directory"],
    );
    refused_before_running(
        &[
            "sweep",
            "sweep-tasks-segments",
            "--dir",
            file.to_str().unwrap(),
        ],
        &["not a directory"],
    );
    // A file system that takes no new file (sysfs, or read-only).
    refused_before_running(
        &["run", "map-sink", "--output", "/sys/taskbench-result.json"],
        &["does not take new files"],
    );
}

#[test]
fn kind_8_only_regular_files_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    refused_before_running(
        &["run", "map-sink", "--output", fifo.to_str().unwrap()],
        &["is a FIFO", "regular files only"],
    );
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    for device in ["/dev/null", "/dev/full"] {
        refused_before_running(&["run", "map-sink", "--output", device], &["is a device"]);
        assert!(std::fs::metadata(device)
            .unwrap()
            .file_type()
            .is_char_device());
    }
}

/// `taskbench ARGS` with files limited to `blocks` 512-byte blocks (a
/// disk that fills), SIGXFSZ ignored so writes fail with EFBIG instead.
fn with_file_limit(blocks: u32, args: &[&str]) -> std::process::Output {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -f {blocks}; trap '' XFSZ; exec \"$0\" \"$@\""
        ))
        .arg(binary())
        .args(args)
        .env("CI", "true")
        .output()
        .unwrap()
}

#[test]
fn kind_9_a_full_disk_keeps_the_previous_result_and_names_every_failed_file() {
    let dir = tempfile::tempdir().unwrap();
    let result = dir.path().join("result.json");
    let previous = "{\"previous\": true}\n";
    std::fs::write(&result, previous).unwrap();
    let out = with_file_limit(
        1,
        &[
            &["run", "map-sink", "--output", result.to_str().unwrap()][..],
            &QUICK[..],
        ]
        .concat(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot write {}", result.display()))
            && stderr.contains("File too large"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&result).unwrap(), previous);
    assert_eq!(
        entries(dir.path()),
        vec!["result.json"],
        "no temporary file left"
    );
    // A sweep names its result and each chart that could not be written.
    let profile = dir.path().join("s.toml");
    std::fs::write(&profile, SWEEP).unwrap();
    let charts = dir.path().join("charts");
    let out = with_file_limit(
        1,
        &[
            "sweep",
            profile.to_str().unwrap(),
            "--dir",
            charts.to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for name in [".json", "s-throughput.svg", "s-latency.svg"] {
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with("error: cannot write") && l.contains(name)),
            "{name} not named: {stderr}"
        );
    }
    assert!(
        entries(&charts).is_empty(),
        "no partial file: {:?}",
        entries(&charts)
    );
}

/// Spawns `taskbench ARGS` and closes its stdout before reading anything.
fn with_stdout_closed(args: &[&str]) -> std::process::Output {
    let mut child = std::process::Command::new(binary())
        .args(args)
        .env("CI", "true")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    child.wait_with_output().unwrap()
}

#[test]
fn kind_10_a_closed_stdout_ends_quietly() {
    for args in [vec!["list"], vec!["schema"], vec!["validate", "map-sink"]] {
        let out = with_stdout_closed(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("s.toml");
    std::fs::write(&profile, SWEEP).unwrap();
    let charts = dir.path().join("charts");
    let out = with_stdout_closed(&[
        "sweep",
        profile.to_str().unwrap(),
        "--output",
        "-",
        "--dir",
        charts.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("error"),
        "{stderr}"
    );
}

#[test]
fn kind_12_a_long_run_still_ends_with_every_repetition_written() {
    let dir = tempfile::tempdir().unwrap();
    let result = dir.path().join("r.json");
    taskbench()
        .args([
            "run",
            "map-sink",
            "-r",
            "300",
            "-w",
            "0",
            "--set",
            "records.count=1000",
            "--output",
            result.to_str().unwrap(),
        ])
        .assert()
        .success();
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&result).unwrap()).unwrap();
    assert_eq!(r["status"], "complete");
    assert_eq!(r["repetitions"].as_array().unwrap().len(), 300);
    assert_eq!(r["summary"]["repetitions"], 300);
    assert_eq!(entries(dir.path()), vec!["r.json"]);
}

/// Starts a long run writing to `result`, waits until a repetition is
/// written, sends `signal` and returns the ended child.
fn interrupt(signal: &str, result: &Path) -> std::process::Output {
    let child: Child = std::process::Command::new(binary())
        .args([
            "run",
            "map-sink",
            "-r",
            "100000",
            "-w",
            "0",
            "--set",
            "records.count=100000",
            "--output",
            result.to_str().unwrap(),
        ])
        .env("CI", "true")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let waited = Instant::now();
    while !result.exists() {
        assert!(
            waited.elapsed() < Duration::from_secs(120),
            "no repetition written"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    child.wait_with_output().unwrap()
}

#[test]
fn sigint_and_sigterm_leave_a_valid_result_marked_interrupted() {
    let validator = schema();
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        let dir = tempfile::tempdir().unwrap();
        let result = dir.path().join("r.json");
        let out = interrupt(signal, &result);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{signal}: {stderr}");
        assert!(
            stderr.contains(&format!("interrupted by SIG{signal}")),
            "{stderr}"
        );
        let r: Value = serde_json::from_str(&std::fs::read_to_string(&result).unwrap())
            .expect("the result is whole JSON");
        assert_eq!(r["status"], "interrupted");
        let measured = r["repetitions"].as_array().unwrap().len();
        assert!((1..100_000).contains(&measured), "{measured}");
        assert_matches_schema(&validator, &r);
        assert_eq!(entries(dir.path()), vec!["r.json"]);
    }
}
