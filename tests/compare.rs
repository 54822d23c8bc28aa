//! `taskbench compare` on the issue's three inputs that failed before, and
//! every verdict and exit code: 0 no regression, 2 bad input, 3 a
//! regression (or, with `--strict`, an inconclusive figure).
#![cfg(not(loom))]

mod common;

use common::{drop_core_time, quick_result, read, scale_time, set_rates, taskbench, write};
use predicates::prelude::*;

#[test]
fn a_changed_buffer_timeout_is_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let base = quick_result(dir.path(), "base.json", 50_000, 1, &[]);
    let zero = quick_result(
        dir.path(),
        "zero.json",
        50_000,
        1,
        &["network.buffer_timeout=0ms"],
    );
    taskbench()
        .arg("compare")
        .args([&base, &zero])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("different configurations (network.buffer_timeout)")
                .and(predicate::str::contains("--allow-config-change")),
        );
    taskbench()
        .arg("compare")
        .args([&base, &zero])
        .arg("--allow-config-change")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "configurations differ in network.buffer_timeout",
        ));
    // Another repetition count is not another configuration.
    let more = quick_result(dir.path(), "more.json", 50_000, 2, &[]);
    taskbench()
        .arg("compare")
        .args([&base, &more])
        .assert()
        .success();
}

#[test]
fn a_noisy_baseline_against_itself_divided_by_50_is_a_regression() {
    let dir = tempfile::tempdir().unwrap();
    // Five repetitions with the issue's 69 % spread, fixed rather than left
    // to the machine: a CI run once had one repetition 60x slower than
    // another, and then no interval can tell a 50x drop.
    let real = quick_result(dir.path(), "real.json", 3_000, 5, &[]);
    let mut noisy = read(&real);
    drop_core_time(&mut noisy);
    set_rates(&mut noisy, &[12.0e6, 4.0e6, 9.0e6, 22.0e6, 4.5e6]);
    let base = write(dir.path(), "base.json", &noisy);
    let mut slow = noisy.clone();
    scale_time(&mut slow, 50.0);
    let slow = write(dir.path(), "slow.json", &slow);
    taskbench()
        .arg("compare")
        .args([&base, &slow])
        .assert()
        .code(3)
        .stdout(predicate::str::is_match(r"records_per_sec .* -98\.0%.*REGRESSION").unwrap())
        .stderr(predicate::str::contains("regression: "));
    // The mirror image: an improvement, exit 0.
    taskbench()
        .arg("compare")
        .args([&slow, &base])
        .assert()
        .success()
        .stdout(predicate::str::is_match(r"records_per_sec .*improvement").unwrap());
    // Rates divided without the seconds to match: bad input, naming the field.
    let mut edited = read(&base);
    for r in edited["repetitions"].as_array_mut().unwrap() {
        r["records_per_sec"] = (r["records_per_sec"].as_f64().unwrap() / 50.0).into();
    }
    let edited = write(dir.path(), "edited.json", &edited);
    taskbench()
        .arg("compare")
        .args([&base, &edited])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "repetitions[0].records_per_sec is",
        ));
}

#[test]
fn one_repetition_a_side_is_inconclusive() {
    let dir = tempfile::tempdir().unwrap();
    let a = quick_result(dir.path(), "a.json", 50_000, 1, &[]);
    let mut b = read(&a);
    scale_time(&mut b, 1.0 / 0.086); // the −91.4 % of the issue
    let b = write(dir.path(), "b.json", &b);
    taskbench()
        .arg("compare")
        .args([&a, &b])
        .assert()
        .success()
        .stdout(
            predicate::str::is_match(r"records_per_sec .*inconclusive")
                .unwrap()
                .and(predicate::str::contains(
                    "too noisy: at least 3 more repetitions a side for an interval to exist",
                )),
        );
    taskbench()
        .arg("compare")
        .args([&a, &b])
        .arg("--strict")
        .assert()
        .code(3)
        .stderr(predicate::str::contains(
            "inconclusive, which --strict does not pass",
        ));
}

#[test]
fn tight_results_are_unchanged_and_a_small_drop_needs_the_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let base = quick_result(dir.path(), "base.json", 20_000, 5, &[]);
    let mut a = read(&base);
    drop_core_time(&mut a);
    set_rates(&mut a, &[1.000e6, 1.001e6, 1.002e6, 1.003e6, 1.004e6]);
    let mut b = a.clone();
    let a = write(dir.path(), "a.json", &a);
    let same = write(dir.path(), "same.json", &b);
    taskbench()
        .arg("compare")
        .args([&a, &same])
        .arg("--strict")
        .assert()
        .success()
        .stdout(predicate::str::is_match(r"records_per_sec .*unchanged").unwrap());
    // 3 % slower: a regression at the default 2 %, unchanged at 5 %.
    scale_time(&mut b, 1.03);
    let slower = write(dir.path(), "slower.json", &b);
    taskbench()
        .arg("compare")
        .args([&a, &slower])
        .assert()
        .code(3);
    taskbench()
        .arg("compare")
        .args([&a, &slower])
        .args(["--threshold", "5"])
        .assert()
        .success()
        .stdout(predicate::str::is_match(r"records_per_sec .*unchanged").unwrap());
}

#[test]
fn bad_figures_and_mismatched_files_are_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let base = quick_result(dir.path(), "base.json", 20_000, 2, &[]);
    let mut bad = read(&base);
    bad["repetitions"][1]["overhead_ms"] = (-1.0).into();
    let bad = write(dir.path(), "bad.json", &bad);
    taskbench()
        .arg("compare")
        .args([&base, &bad])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "bad.json: repetitions[1].overhead_ms is -1, out of range",
        ));
    let mut empty = read(&base);
    empty["repetitions"] = serde_json::json!([]);
    let empty = write(dir.path(), "empty.json", &empty);
    taskbench()
        .arg("compare")
        .args([&base, &empty])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("repetitions has no values"));
    // Schema version 1 (before the checkpoint, Flink and debloating
    // fields) is still read; a version from the future is not.
    let mut old = read(&base);
    old["schema_version"] = 1.into();
    let old = write(dir.path(), "old.json", &old);
    taskbench()
        .arg("compare")
        .args([&old, &base])
        .assert()
        .success();
    let mut future = read(&base);
    future["schema_version"] = 3.into();
    let future = write(dir.path(), "future.json", &future);
    taskbench()
        .arg("compare")
        .args([&base, &future])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "schema_version 3, this taskbench reads 1 to 2",
        ));
    let junk = write(dir.path(), "junk.json", &serde_json::json!({}));
    taskbench()
        .arg("compare")
        .args([&base, &junk])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("schema_version"));
    // Still being written, on another CPU: compared, with warnings.
    let mut running = read(&base);
    running["status"] = "running".into();
    running["testbed"]["cpu_model"] = "another CPU".into();
    let running = write(dir.path(), "running.json", &running);
    taskbench()
        .arg("compare")
        .args([&base, &running])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("not a complete result (status \"running\")")
                .and(predicate::str::contains("testbeds differ in cpu_model")),
        );
}

#[test]
fn help_and_readme_state_the_exit_codes() {
    let help = taskbench().arg("--help").output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    assert!(
        help.contains("2 bad usage or input, 3 a regression"),
        "{help}"
    );
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(
        readme.contains("| 3 | a regression"),
        "README's exit-code table names 3"
    );
}
