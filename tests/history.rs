//! `taskbench history add|show|check` over a file database: results added
//! once, a table and an SVG chart per figure, change points naming the
//! first result of the new regime, exit 3 when the newest is a regression.
#![cfg(not(loom))]

mod common;

use std::path::{Path, PathBuf};

use common::{drop_core_time, quick_result, read, set_rates, taskbench, write};
use predicates::prelude::*;
use serde_json::Value;

/// `n` results of three repetitions, the k-th at `level(k)` records/s with
/// a small deterministic wobble, revision `revK`, a minute apart.
fn series(dir: &Path, template: &Value, n: usize, level: impl Fn(usize) -> f64) -> Vec<PathBuf> {
    (0..n)
        .map(|k| {
            let mut v = template.clone();
            drop_core_time(&mut v);
            let l = level(k) * (1.0 + [0.0, 0.004, -0.004, 0.002, -0.002][k % 5]);
            set_rates(&mut v, &[l, l * 1.003, l * 0.997]);
            v["testbed"]["git_revision"] = format!("rev{k:02}").into();
            v["testbed"]["date"] = format!("2026-01-01T{:02}:{:02}:00Z", k / 60, k % 60).into();
            write(dir, &format!("r{k:02}.json"), &v)
        })
        .collect()
}

fn template(dir: &Path) -> Value {
    read(&quick_result(dir, "template.json", 20_000, 3, &[]))
}

#[test]
fn a_five_percent_step_is_found_at_its_first_result_and_fails_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let t = template(dir.path());
    let files = series(dir.path(), &t, 40, |k| if k < 30 { 1e6 } else { 0.95e6 });
    let db = dir.path().join("h/history.sqlite");
    taskbench()
        .args(["history", "--db"])
        .arg(&db)
        .arg("add")
        .args(&files)
        .assert()
        .success()
        .stdout(predicate::str::contains("r00.json: 2 figure(s) added"));
    // Added again: nothing new.
    taskbench()
        .args(["history", "add", "--db"])
        .arg(&db)
        .arg(&files[0])
        .assert()
        .success()
        .stdout(predicate::str::contains("0 figure(s) added"));
    taskbench()
        .args(["history", "check", "quickstart", "--db"])
        .arg(&db)
        .assert()
        .code(3)
        .stdout(
            predicate::str::contains("quickstart · records_per_sec: 40 results, 1 change point(s)")
                .and(predicate::str::contains(
                    "from result 31 (rev30 2026-01-01T00:30:00Z): -5.0 %",
                ))
                .and(predicate::str::contains("REGRESSION")),
        )
        .stderr(predicate::str::contains(
            "the newest regime is a regression",
        ));
    let charts = dir.path().join("charts");
    taskbench()
        .args(["history", "show", "--db"])
        .arg(&db)
        .arg("--charts")
        .arg(&charts)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "quickstart · records_per_sec (40 results)",
        ))
        .stdout(predicate::str::contains("rev39"))
        .stderr(predicate::str::contains("chart: "));
    let svg = std::fs::read_to_string(charts.join("quickstart-records_per_sec.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("change point"),
        "{}",
        &svg[..200]
    );
}

#[test]
fn a_flat_series_has_no_change_point() {
    let dir = tempfile::tempdir().unwrap();
    let t = template(dir.path());
    let files = series(dir.path(), &t, 30, |_| 1e6);
    let db = dir.path().join("history.sqlite");
    taskbench()
        .args(["history", "add", "--db"])
        .arg(&db)
        .args(&files)
        .assert()
        .success();
    taskbench()
        .args(["history", "check", "--window", "20", "--p", "0.01", "--db"])
        .arg(&db)
        .assert()
        .success()
        .stdout(predicate::str::contains("30 results, 0 change point(s)"));
}

#[test]
fn bad_results_and_options_are_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let t = template(dir.path());
    let mut bad = t.clone();
    bad["repetitions"][0]["records_per_sec"] = 1.0.into();
    let bad = write(dir.path(), "bad.json", &bad);
    let db = dir.path().join("history.sqlite");
    taskbench()
        .args(["history", "add", "--db"])
        .arg(&db)
        .arg(&bad)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "bad.json: bad figure: repetitions[0].records_per_sec",
        ));
    for args in [&["--p", "0"][..], &["--p", "1.5"], &["--window", "1"]] {
        taskbench()
            .args(["history", "check"])
            .args(args)
            .arg("--db")
            .arg(&db)
            .assert()
            .code(2);
    }
    // Refused input made no database, and reading makes none either.
    assert!(!db.exists());
    taskbench()
        .args(["history", "show", "--no-charts", "--db"])
        .arg(&db)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no history there yet"));
    assert!(!db.exists());
    // A profile the history does not hold is named.
    let good = write(dir.path(), "good.json", &t);
    taskbench()
        .args(["history", "add", "--db"])
        .arg(&db)
        .arg(&good)
        .assert()
        .success();
    for command in ["show", "check"] {
        taskbench()
            .args(["history", command, "nosuch", "--db"])
            .arg(&db)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(
                "no results of profile 'nosuch' (it has quickstart)",
            ));
    }
}
