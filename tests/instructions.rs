//! `taskbench run --instructions`: counts under callgrind that do not
//! depend on scheduling (skipped, saying so, where valgrind is missing),
//! a change in the work per record seen by `compare`, and exit 2 without
//! valgrind.
#![cfg(not(loom))]

mod common;

use common::{read, taskbench};
use predicates::prelude::*;

fn have_valgrind() -> bool {
    let ok = std::process::Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("valgrind is not installed: instruction counts not tested");
    }
    ok
}

fn counted(dir: &std::path::Path, name: &str, sets: &[&str]) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut cmd = taskbench();
    cmd.args(["run", "quickstart", "--instructions", "-r", "2", "--quiet"])
        .args(["--set", "records.count=300000"]);
    for s in sets {
        cmd.args(["--set", s]);
    }
    cmd.arg("--output")
        .arg(&path)
        .assert()
        .success()
        .stdout(predicate::str::contains("per record (2 callgrind run(s)"));
    path
}

#[test]
fn the_same_binary_counts_the_same_and_a_smaller_batch_is_a_regression() {
    if !have_valgrind() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let base = counted(dir.path(), "base.json", &[]);
    let r = read(&base);
    let per: Vec<f64> = r["instructions"]["per_record"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(per.len(), 2);
    assert!(per[0] > 5.0, "{per:?}");
    assert!((per[0] / per[1] - 1.0).abs() < 1e-3, "{per:?}");
    assert_eq!(r["instructions"]["records"][0], 300_000);
    // Smaller source batches: more per-batch work for every record.
    let small = counted(dir.path(), "small.json", &["records.batch=512"]);
    taskbench()
        .arg("compare")
        .args([&base, &small])
        .arg("--allow-config-change")
        .assert()
        .code(3)
        .stdout(predicate::str::is_match(r"instructions_per_record .*REGRESSION").unwrap());
    taskbench()
        .arg("compare")
        .args([&base, &base])
        .arg("--strict")
        .assert()
        .success()
        .stdout(predicate::str::is_match(r"instructions_per_record .*unchanged").unwrap());
}

#[test]
fn without_valgrind_it_is_exit_2_saying_so() {
    let empty = tempfile::tempdir().unwrap();
    taskbench()
        .args(["run", "quickstart", "--instructions"])
        .env("PATH", empty.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("valgrind cannot be run"));
}
