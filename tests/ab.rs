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
    let script = format!(
        "#!/bin/sh\nd='{dir}'\nn=$(cat \"$d/{name}.count\" 2>/dev/null || echo 0)\necho $((n + 1)) > \"$d/{name}.count\"\necho \"$@\" >> \"$d/{name}.log\"\ncat \"$d/{name}.$((n % {len})).json\"\n",
        dir = dir.display(),
        len = outputs.len()
    );
    let path = dir.join(name);
    std::fs::write(&path, script).unwrap();
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
    let bad = dir.path().join("bad");
    std::fs::write(&bad, "#!/bin/sh\necho 'task map failed' >&2\nexit 1\n").unwrap();
    std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o755)).unwrap();
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
    // No run ended: an earlier file is kept, not replaced by an empty session.
    assert_eq!(std::fs::read_to_string(&earlier).unwrap(), "{}");
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
fn sigterm_writes_the_session_marked_interrupted_and_kills_the_run_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    let t = template(dir.path());
    let a = stand_in(dir.path(), "a", &[at_rate(&t, 1e6)]);
    // B answers its first run, then hangs in its second (run 2 in ABBA
    // order), its pid written down.
    std::fs::write(dir.path().join("b.json"), at_rate(&t, 1e6).to_string()).unwrap();
    let b = dir.path().join("b");
    std::fs::write(
        &b,
        format!(
            "#!/bin/sh
d='{}'
if [ -e \"$d/b.ran\" ]; then echo $$ > \"$d/b.tmp\"; mv \"$d/b.tmp\" \"$d/b.pid\"; exec sleep 120; fi
touch \"$d/b.ran\"
cat \"$d/b.json\"\n",
            dir.path().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&b, std::fs::Permissions::from_mode(0o755)).unwrap();
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
    let kill = |args: &[&str]| {
        std::process::Command::new("kill")
            .args(args)
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
    };
    assert!(kill(&["-TERM", &session.id().to_string()]).success());
    let ended = session.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&ended.stderr);
    assert_eq!(ended.status.code(), Some(143), "{stderr}");
    assert!(stderr.contains("interrupted by SIGTERM"), "{stderr}");
    let r = read(&out);
    assert_eq!(r["status"], "interrupted");
    assert_eq!(r["runs"].as_array().unwrap().len(), 2);
    assert_eq!(r["pairs"].as_array().unwrap().len(), 1);
    assert!(r.get("stop").is_none() && r.get("failure").is_none(), "{r}");
    // The hung run was killed, not left measuring (a zombie until init
    // reaps it, so give that a moment).
    let gone = std::time::Instant::now();
    while kill(&["-0", &hung]).success() {
        assert!(gone.elapsed().as_secs() < 30, "run {hung} still alive");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
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
    assert_eq!(
        run("github-action-benchmark-smaller"),
        serde_json::json!([])
    );
}
