//! `taskbench ab` driven by deterministic stand-ins for the two builds:
//! shell scripts that print a fixed result (a real one, its figures
//! rewritten), one of a list in turn, and log how they were called. No
//! test depends on timing.
#![cfg(all(unix, not(loom)))]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{drop_core_time, quick_result, read, set_rates, taskbench};
use predicates::prelude::*;
use serde_json::Value;

/// A stand-in binary `name` printing `outputs[k % len]` on its k-th call
/// and logging its arguments to `name.log`.
fn stand_in(dir: &Path, name: &str, outputs: &[Value]) -> PathBuf {
    for (k, out) in outputs.iter().enumerate() {
        std::fs::write(dir.join(format!("{name}.{k}.json")), out.to_string()).unwrap();
    }
    let text = format!(
        "#!/bin/sh\nd='{dir}'\nn=$(cat \"$d/{name}.count\" 2>/dev/null || echo 0)\necho $((n + 1)) > \"$d/{name}.count\"\necho \"$@\" >> \"$d/{name}.log\"\ncat \"$d/{name}.$((n % {len})).json\"\n",
        dir = dir.display(),
        len = outputs.len()
    );
    script(dir, name, &text)
}

/// An executable shell script `name` in `dir`.
fn script(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A real result with every repetition at `rate` records/s.
fn at_rate(template: &Value, rate: f64) -> Value {
    let mut v = template.clone();
    drop_core_time(&mut v);
    let n = v["repetitions"].as_array().unwrap().len();
    set_rates(&mut v, &vec![rate; n]);
    v
}

fn template(dir: &Path) -> Value {
    read(&quick_result(dir, "template.json", 20_000, 2, &[]))
}

#[test]
fn a_slower_candidate_is_a_regression_after_six_pairs_in_abba_order() {
    let dir = tempfile::tempdir().unwrap();
    let t = template(dir.path());
    let a = stand_in(dir.path(), "a", &[at_rate(&t, 1e6)]);
    let b = stand_in(dir.path(), "b", &[at_rate(&t, 0.9e6)]);
    let out = dir.path().join("ab.json");
    taskbench()
        .args(["ab", "quickstart", "--quiet", "--baseline"])
        .arg(&a)
        .arg("--candidate")
        .arg(&b)
        .arg("--output")
        .arg(&out)
        .assert()
        .code(3)
        .stdout(
            predicate::str::contains("pair   1 AB")
                .and(predicate::str::contains("pair   2 BA"))
                .and(predicate::str::contains("ratio 0.9000"))
                .and(predicate::str::contains("verdict: regression -10.0 %"))
                .and(predicate::str::contains("12 runs")),
        );
    let r = read(&out);
    assert_eq!(r["kind"], "ab");
    assert_eq!(r["profile"], "quickstart");
    assert_eq!(r["judgement"]["verdict"], "regression");
    assert_eq!(r["stop"], "decided");
    let sides: Vec<&str> = r["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["side"].as_str().unwrap())
        .collect();
    assert_eq!(sides[..8], ["A", "B", "B", "A", "A", "B", "B", "A"]);
    assert_eq!(r["pairs"].as_array().unwrap().len(), 6);
    let log = std::fs::read_to_string(dir.path().join("a.log")).unwrap();
    assert!(
        log.lines()
            .all(|l| l == "run quickstart --quiet --output - --format json"),
        "{log}"
    );
    assert_eq!(log.lines().count(), 6);
}

#[test]
fn the_same_build_against_itself_is_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let t = template(dir.path());
    let a = stand_in(dir.path(), "a", &[at_rate(&t, 1e6)]);
    taskbench()
        .args(["ab", "--quiet", "--strict", "--baseline"])
        .arg(&a)
        .assert()
        .success()
        .stdout(predicate::str::contains("verdict: unchanged +0.0 %"));
}

#[test]
fn a_noisy_pair_spends_the_budget_and_is_inconclusive() {
    let dir = tempfile::tempdir().unwrap();
    let t = template(dir.path());
    let a = stand_in(dir.path(), "a", &[at_rate(&t, 1e6)]);
    let b = stand_in(
        dir.path(),
        "b",
        &[at_rate(&t, 0.8e6), at_rate(&t, 1.25e6), at_rate(&t, 0.97e6)],
    );
    let run = |strict: bool| {
        let mut cmd = taskbench();
        cmd.args([
            "ab",
            "--quiet",
            "--max-runs",
            "10",
            "--order",
            "random",
            "--baseline",
        ])
        .arg(&a)
        .arg("--candidate")
        .arg(&b);
        if strict {
            cmd.arg("--strict");
        }
        cmd.assert()
    };
    run(false).success().stdout(
        predicate::str::contains("verdict: inconclusive")
            .and(predicate::str::contains("(10 runs in"))
            .and(predicate::str::contains("--max-runs spent")),
    );
    run(true)
        .code(3)
        .stderr(predicate::str::contains("--strict"));
}

#[test]
fn a_and_b_sets_reach_only_their_side() {
    let dir = tempfile::tempdir().unwrap();
    let t = template(dir.path());
    let a = stand_in(dir.path(), "a", &[at_rate(&t, 1e6)]);
    taskbench()
        .args([
            "ab",
            "quickstart",
            "--quiet",
            "-r",
            "3",
            "--set",
            "records.count=1000",
        ])
        .args(["--b-set", "network.buffer_timeout=0ms", "--max-runs", "2"])
        .arg("--baseline")
        .arg(&a)
        .assert()
        .success();
    let log = std::fs::read_to_string(dir.path().join("a.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2, "{log}");
    assert_eq!(
        lines[0],
        "run quickstart --set records.count=1000 -r 3 --quiet --output - --format json"
    );
    assert_eq!(
        lines[1],
        "run quickstart --set records.count=1000 --set network.buffer_timeout=0ms -r 3 --quiet --output - --format json"
    );
    // A bad --b-set is bad input before any run.
    taskbench()
        .args(["ab", "--b-set", "network.nope=1", "--baseline"])
        .arg(&a)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("nope"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("a.log")).unwrap(),
        log
    );
}

#[test]
fn a_failing_run_is_exit_1_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let bad = script(
        dir.path(),
        "bad",
        "#!/bin/sh\necho 'task map failed' >&2\nexit 1\n",
    );
    let earlier = dir.path().join("earlier.json");
    std::fs::write(&earlier, "{}").unwrap();
    taskbench()
        .args(["ab", "--quiet", "--baseline"])
        .arg(&bad)
        .arg("--output")
        .arg(&earlier)
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("run 0 (A) failed")
                .and(predicate::str::contains("task map failed")),
        );
    // A failed session is written even without a run: its failure says why.
    let r = read(&earlier);
    assert_eq!(r["status"], "failed");
    assert_eq!(r["runs"].as_array().unwrap().len(), 0);
    assert!(
        r["failure"].as_str().unwrap().contains("task map failed"),
        "{r}"
    );
    let t = template(dir.path());
    let junk = stand_in(dir.path(), "junk", &[serde_json::json!({"kind": "run"})]);
    let good = stand_in(dir.path(), "good", &[at_rate(&t, 1e6)]);
    let out = dir.path().join("ab.json");
    taskbench()
        .args(["ab", "--quiet", "--baseline"])
        .arg(&good)
        .arg("--candidate")
        .arg(&junk)
        .arg("--output")
        .arg(&out)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "run 1 (B) failed: its output is not a run's JSON result",
        ));
    // The session is written all the same: the run before it, marked failed.
    let r = read(&out);
    assert_eq!(r["schema_version"], 2);
    assert_eq!(r["status"], "failed");
    assert!(
        r["failure"]
            .as_str()
            .unwrap()
            .starts_with("run 1 (B) failed: its output is not a run's JSON result"),
        "{r}"
    );
    assert_eq!(r["runs"].as_array().unwrap().len(), 1);
    assert_eq!(r["runs"][0]["side"], "A");
    assert!(r.get("stop").is_none(), "{r}");
}

#[test]
fn a_result_that_is_not_a_complete_run_is_a_failed_run() {
    let dir = tempfile::tempdir().unwrap();
    let t = template(dir.path());
    let good = stand_in(dir.path(), "good", &[at_rate(&t, 1e6)]);
    for (edit, says) in [
        (
            ("status", serde_json::json!("failed")),
            "its result is failed, not complete",
        ),
        (
            ("status", serde_json::json!("running")),
            "its result is running, not complete",
        ),
        (
            ("kind", serde_json::json!("sweep")),
            "its kind is \"sweep\"",
        ),
        (("schema_version", serde_json::json!(9)), "schema_version 9"),
    ] {
        let mut v = at_rate(&t, 1e6);
        v[edit.0] = edit.1;
        let name = format!("bad-{}", edit.0);
        let bad = stand_in(dir.path(), &name, &[v]);
        taskbench()
            .args(["ab", "--quiet", "--baseline"])
            .arg(&good)
            .arg("--candidate")
            .arg(&bad)
            .assert()
            .code(1)
            .stderr(
                predicate::str::contains("run 1 (B) failed").and(predicate::str::contains(says)),
            );
    }
}

#[test]
fn a_run_still_going_when_max_time_is_spent_is_stopped_with_what_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let t = template(dir.path());
    let a = stand_in(dir.path(), "a", &[at_rate(&t, 1e6)]);
    // B's `sleep` runs in the background and holds the output pipe: only
    // stopping B's whole process group ends the run.
    let b = script(
        dir.path(),
        "b",
        &format!(
            "#!/bin/sh\nsleep 120 &\necho $! > '{}/sleep.pid'\nwait\n",
            dir.path().display()
        ),
    );
    let out = dir.path().join("ab.json");
    let started = std::time::Instant::now();
    taskbench()
        .args(["ab", "--quiet", "--max-time", "2s", "--baseline"])
        .arg(&a)
        .arg("--candidate")
        .arg(&b)
        .arg("--output")
        .arg(&out)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "run 1 (B) failed: still running when --max-time (2s) was spent; stopped",
        ));
    assert!(started.elapsed().as_secs() < 60);
    let r = read(&out);
    assert_eq!(r["status"], "failed");
    assert_eq!(r["runs"].as_array().unwrap().len(), 1);
    assert_ends(&std::fs::read_to_string(dir.path().join("sleep.pid")).unwrap());
}

#[test]
fn inputs_ab_cannot_use_are_refused_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ab.json");
    let out = out.to_str().unwrap();
    for (args, says) in [
        (
            vec!["--output", out, "--format", "github-action-benchmark-smaller"],
            "--format github-action-benchmark-smaller writes only figures where smaller is better, and in records_per_sec bigger is: use --format github-action-benchmark",
        ),
        (
            vec!["--figure", "core_ns_per_record", "--output", out, "--format", "github-action-benchmark"],
            "use --format github-action-benchmark-smaller",
        ),
        (vec!["--max-time", "1ns"], "--max-time 1ns leaves no time for a pair"),
        (vec!["--a-set", "nosuch.field=1"], "error: --a-set nosuch.field=1: unknown field"),
        (
            vec!["--b-set", "measure.latency=true"],
            "records need at least 16 bytes (8 for the value, 8 for the latency timestamp) (with --b-set measure.latency=true)",
        ),
    ] {
        taskbench()
            .arg("ab")
            .args(&args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(says));
    }
    assert!(!std::path::Path::new(out).exists());
}

/// Waits until process `pid` is gone (or a zombie until whoever inherited
/// it reaps it); fails after 10 s.
fn assert_ends(pid: &str) {
    let stat = format!("/proc/{}/stat", pid.trim());
    let waited = std::time::Instant::now();
    while std::fs::read_to_string(&stat).is_ok_and(|s| !s.contains(") Z ")) {
        assert!(waited.elapsed().as_secs() < 10, "process {pid} still runs");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn sigterm_writes_the_session_marked_interrupted_and_kills_the_run_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    let t = template(dir.path());
    let a = stand_in(dir.path(), "a", &[at_rate(&t, 1e6)]);
    // B answers its first run, then hangs in its second (run 2 in ABBA
    // order), its pid written down.
    std::fs::write(dir.path().join("b.json"), at_rate(&t, 1e6).to_string()).unwrap();
    let b = script(
        dir.path(),
        "b",
        &format!(
            "#!/bin/sh
d='{}'
if [ -e \"$d/b.ran\" ]; then echo $$ > \"$d/b.tmp\"; mv \"$d/b.tmp\" \"$d/b.pid\"; exec sleep 120; fi
touch \"$d/b.ran\"
cat \"$d/b.json\"\n",
            dir.path().display()
        ),
    );
    let out = dir.path().join("ab.json");
    let session = std::process::Command::new(common::binary())
        .args(["ab", "--quiet", "--baseline"])
        .arg(&a)
        .arg("--candidate")
        .arg(&b)
        .arg("--output")
        .arg(&out)
        .env("CI", "true")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid_file = dir.path().join("b.pid");
    let waited = std::time::Instant::now();
    while !pid_file.exists() {
        assert!(
            waited.elapsed().as_secs() < 60,
            "B's second run never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let hung = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &session.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let ended = session.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&ended.stderr);
    assert_eq!(ended.status.code(), Some(143), "{stderr}");
    assert!(stderr.contains("interrupted by SIGTERM"), "{stderr}");
    let r = read(&out);
    assert_eq!(r["status"], "interrupted");
    assert_eq!(r["runs"].as_array().unwrap().len(), 2);
    assert_eq!(r["pairs"].as_array().unwrap().len(), 1);
    assert!(r.get("stop").is_none() && r.get("failure").is_none(), "{r}");
    // The hung run was killed, not left measuring.
    assert_ends(&hung);
}

#[test]
fn instruction_counts_decide_in_one_pair() {
    let dir = tempfile::tempdir().unwrap();
    let t = template(dir.path());
    let counted = |per_record: f64| {
        let mut v = at_rate(&t, 1e6);
        v["instructions"] = serde_json::json!({
            "tool": "callgrind", "counted": ["*StreamTask::invoke*"],
            "runs": [(per_record * 40_000.0) as u64], "records": [40_000],
            "per_record": [per_record]
        });
        v
    };
    let a = stand_in(dir.path(), "a", &[counted(20.0)]);
    let b = stand_in(dir.path(), "b", &[counted(20.2)]);
    taskbench()
        .args(["ab", "--quiet", "--instructions", "--baseline"])
        .arg(&a)
        .arg("--candidate")
        .arg(&b)
        .assert()
        .code(3)
        .stdout(
            predicate::str::contains("verdict: regression +1.0 %")
                .and(predicate::str::contains("(2 runs in")),
        );
    let log = std::fs::read_to_string(dir.path().join("a.log")).unwrap();
    assert!(log.contains("--instructions"), "{log}");
}

#[test]
fn ci_formats_carry_the_ratio_and_its_interval() {
    let dir = tempfile::tempdir().unwrap();
    let t = template(dir.path());
    let a = stand_in(dir.path(), "a", &[at_rate(&t, 1e6)]);
    let b = stand_in(dir.path(), "b", &[at_rate(&t, 1.1e6)]);
    let run = |format: &str| -> Value {
        let out = taskbench()
            .args([
                "ab",
                "--quiet",
                "--output",
                "-",
                "--format",
                format,
                "--baseline",
            ])
            .arg(&a)
            .arg("--candidate")
            .arg(&b)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let bmf = run("bmf");
    let ratio = &bmf["quickstart A/B"]["throughput-ratio"];
    assert!(
        (ratio["value"].as_f64().unwrap() - 1.1).abs() < 1e-9,
        "{bmf}"
    );
    assert!(ratio["lower_value"].as_f64().is_some());
    let gab = run("github-action-benchmark");
    assert_eq!(gab[0]["name"], "quickstart A/B records_per_sec ratio");
    assert!((gab[0]["value"].as_f64().unwrap() - 1.1).abs() < 1e-9);
}
