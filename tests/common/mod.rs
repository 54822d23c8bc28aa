//! Helpers shared by the CLI tests of results: the binary, a quick real
//! result, and figures rewritten so a result stays consistent.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

/// The binary, outside any progress bar.
pub fn taskbench() -> Command {
    let mut cmd = Command::cargo_bin("taskbench").expect("the binary is built");
    cmd.env("CI", "true");
    cmd
}

/// The binary's path, for a test that starts it as a plain process (to
/// signal it).
pub fn binary() -> PathBuf {
    assert_cmd::cargo::cargo_bin("taskbench")
}

/// A real quickstart result of `repetitions` × `records`, with `sets`.
pub fn quick_result(
    dir: &Path,
    name: &str,
    records: u64,
    repetitions: u32,
    sets: &[&str],
) -> PathBuf {
    let path = dir.join(name);
    let mut cmd = taskbench();
    cmd.args(["run", "quickstart", "-w", "0", "--quiet"])
        .args(["-r", &repetitions.to_string()])
        .args(["--set", &format!("records.count={records}")]);
    for s in sets {
        cmd.args(["--set", s]);
    }
    cmd.arg("--output").arg(&path).assert().success();
    path
}

/// The JSON of a file.
pub fn read(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Writes `value` to `dir/name`.
pub fn write(dir: &Path, name: &str, value: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(value).unwrap()).unwrap();
    path
}

/// Gives every repetition the throughput `rates[i]` (records/s), with
/// `seconds` and every rate made to match, so the file stays valid.
pub fn set_rates(result: &mut Value, rates: &[f64]) {
    let reps = result["repetitions"].as_array_mut().unwrap();
    assert_eq!(reps.len(), rates.len(), "one rate per repetition");
    for (r, &rate) in reps.iter_mut().zip(rates) {
        let records = r["records"].as_f64().unwrap();
        let bytes = r["bytes"].as_f64().unwrap();
        let seconds = records / rate;
        r["seconds"] = seconds.into();
        r["records_per_sec"] = (records / seconds).into();
        r["records_per_ms"] = (records / seconds / 1e3).into();
        r["bytes_per_sec"] = (bytes / seconds).into();
    }
}

/// Scales every repetition's time by `factor` (rates by its inverse).
pub fn scale_time(result: &mut Value, factor: f64) {
    let rates: Vec<f64> = result["repetitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["records_per_sec"].as_f64().unwrap() / factor)
        .collect();
    set_rates(result, &rates);
}

/// Drops core time per record from every repetition (so only the
/// throughput figures are judged).
pub fn drop_core_time(result: &mut Value) {
    for r in result["repetitions"].as_array_mut().unwrap() {
        r.as_object_mut().unwrap().remove("core_ns_per_record");
    }
}
