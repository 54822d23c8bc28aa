//! Profiles refused as users write them: unreadable or malformed files,
//! out-of-range values, impossible topologies and bad `--set` overrides each
//! exit 2 from `validate` and `run`, with one message naming the field (and
//! its line, for a file) and what is allowed.
#![cfg(not(loom))]

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;

fn taskbench() -> Command {
    let mut cmd = Command::cargo_bin("taskbench").expect("the binary is built");
    cmd.env("CI", "true");
    cmd
}

const MAP_SINK: &str = r#"
name = "t"
[[vertices]]
name = "source"
kind = "source"
[[vertices]]
name = "map"
kind = "map"
[[vertices]]
name = "sink"
kind = "sink"
[[edges]]
from = "source"
to = "map"
[[edges]]
from = "map"
to = "sink"
"#;

fn profile_file(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Runs `validate` and `run` on `text` with `overrides`: both exit 2 with
/// one message containing every `expected` part, which is returned.
fn refused(text: Option<&str>, overrides: &[&str], expected: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = match text {
        Some(text) => profile_file(dir.path(), "p.toml", text),
        None => dir.path().join("missing.toml").display().to_string(),
    };
    let mut message = String::new();
    for command in ["validate", "run"] {
        let mut cmd = taskbench();
        cmd.args([command, path.as_str()]);
        for o in overrides {
            cmd.args(["--set", o]);
        }
        let out = cmd.assert().code(2).get_output().clone();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.starts_with("error: "), "{stderr}");
        for part in expected {
            assert!(
                stderr.contains(part),
                "{command}: '{part}' not in: {stderr}"
            );
        }
        assert!(!stderr.contains("panicked"), "{stderr}");
        message = stderr;
    }
    message
}

#[test]
fn unreadable_or_malformed_files_are_refused() {
    refused(None, &[], &["cannot read profile", "missing.toml"]);
    refused(Some("this is not toml"), &[], &["line 1"]);
    refused(
        Some(&format!("{MAP_SINK}[network]\nsegmnt_size = 4096\n")),
        &[],
        &["unknown field", "segmnt_size", "line 19"],
    );
    refused(
        Some(&MAP_SINK.replace("kind = \"map\"", "kind = \"map\"\nparallelism = \"two\"")),
        &[],
        &["invalid type", "line 9"],
    );
    refused(
        Some(&MAP_SINK.replace("kind = \"map\"", "kind = \"mapp\"")),
        &[],
        &["unknown variant", "mapp", "flat-map"],
    );
}

#[test]
fn out_of_range_values_are_refused_naming_the_field() {
    refused(
        Some(MAP_SINK),
        &["vertices.map.parallelism=0"],
        &["vertices.map.parallelism", "is 0"],
    );
    refused(
        Some(MAP_SINK),
        &["network.segment_size=3000"],
        &["network.segment_size", "power of two"],
    );
    refused(
        Some(MAP_SINK),
        &["records.size=2MiB", "network.max_record_size=1MiB"],
        &["records.size", "network.max_record_size"],
    );
    refused(
        Some(MAP_SINK),
        &[
            "network.memory=64KiB",
            "edges.1.partitioner=rebalance",
            "vertices.sink.parallelism=3",
        ],
        &["network.memory", "need at least"],
    );
    refused(
        Some(MAP_SINK),
        &["network.buffers_per_channel=0"],
        &["network.buffers_per_channel"],
    );
    refused(
        Some(MAP_SINK),
        &["runtime.park_after=\"2s\""],
        &["runtime.park_after", "more than 1s"],
    );
    refused(
        Some(MAP_SINK),
        &["vertices.map.idle=true"],
        &["vertices.map.idle", "sources only"],
    );
    refused(
        Some(MAP_SINK),
        &["vertices.source.idle=true"],
        &["every source is idle"],
    );
    refused(
        Some(MAP_SINK),
        &["records.rate=1e-300"],
        &["records.rate", "at least 1 record per second"],
    );
    refused(
        Some(MAP_SINK),
        &["records.zipf_exponent=nan"],
        &["records.zipf_exponent", "0 to 10"],
    );
    refused(
        Some(MAP_SINK),
        &["records.distribution=zipf", "records.key_space=99999999999"],
        &["records.key_space", "Zipf"],
    );
    refused(
        Some(MAP_SINK),
        &["records.size=3GiB"],
        &["records.size", "more than 64MiB"],
    );
    // A hundred channels, each with a spill buffer of the record size.
    refused(
        Some(MAP_SINK),
        &[
            "records.size=64MiB",
            "edges.0.partitioner=rebalance",
            "edges.0.channels=100",
        ],
        &["records.size", "spill buffer", "at most 4GiB"],
    );
    refused(
        Some(MAP_SINK),
        &["records.count=0"],
        &["records.count", "no record"],
    );
    refused(
        Some(MAP_SINK),
        &["runtime.pin=[999]"],
        &["runtime.pin", "core 999"],
    );
    refused(
        Some(MAP_SINK),
        &["network.memory=281474976710656"],
        &["network.memory", "this build supports"],
    );
    // A bad value in the file names the file and its line.
    refused(
        Some(&format!("{MAP_SINK}[network]\nsegment_size = \"3KiB\"\n")),
        &[],
        &["p.toml, line 19: network.segment_size", "power of two"],
    );
    // Every sweep point is checked before the first one runs.
    refused(
        Some(&format!(
            "{MAP_SINK}[[sweep]]\nset = \"network.segment_size\"\nvalues = [\"32KiB\", \"3KiB\"]\n"
        )),
        &[],
        &["sweep point network.segment_size=3KiB", "power of two"],
    );
    // A value the field cannot take, named as the axis's, not as a --set.
    refused(
        Some(&format!(
            "{MAP_SINK}[[sweep]]\nset = \"records.batch\"\nvalues = [1, \"x\"]\n"
        )),
        &[],
        &["sweep point records.batch=x: invalid type: string \"x\""],
    );
    // A file's value that only one point makes wrong: named by field, not
    // by a line of the profile as the point rewrote it.
    let out = refused(
        Some(&format!(
            "{MAP_SINK}[checkpoint]\nmode = \"aligned\"\naligned_timeout = \"1ms\"\n\
             [[sweep]]\nset = \"checkpoint.mode\"\nvalues = [\"aligned\", \"unaligned\"]\n"
        )),
        &[],
        &["sweep point checkpoint.mode=unaligned: checkpoint.aligned_timeout: only an aligned"],
    );
    assert!(!out.contains(", line "), "{out}");
}

#[test]
fn impossible_topologies_are_refused() {
    let cycle = format!(
        "{}\n[[vertices]]\nname = \"map-b\"\nkind = \"map\"\n[[edges]]\nfrom = \"map\"\nto = \"map-b\"\n[[edges]]\nfrom = \"map-b\"\nto = \"map\"\n",
        MAP_SINK
    );
    refused(Some(&cycle), &[], &["cycle"]);
    refused(
        Some(MAP_SINK),
        &["edges.0.to=nowhere"],
        &["edges[0].to", "nowhere"],
    );
    let sink_out = format!("{MAP_SINK}\n[[edges]]\nfrom = \"sink\"\nto = \"map\"\n");
    refused(
        Some(&sink_out),
        &[],
        &["edges", "sink vertex 'sink' cannot have outputs"],
    );
    let source_in = format!("{MAP_SINK}\n[[edges]]\nfrom = \"map\"\nto = \"source\"\n");
    refused(
        Some(&source_in),
        &[],
        &["edges", "source vertex 'source' cannot have inputs"],
    );
    refused(
        Some(MAP_SINK),
        &["edges.1.channels=4"],
        &["'map' -> 'sink' has 4 channels"],
    );
    // Counted before any channel is laid out: refused at once, not after
    // gigabytes of channel tables.
    refused(
        Some(MAP_SINK),
        &[
            "vertices.source.parallelism=4096",
            "vertices.map.parallelism=4096",
            "edges.0.partitioner=rebalance",
            "edges.0.channels=100",
        ],
        &[
            "alone has 1677721600",
            "'source' -> 'map'",
            "at most 1048576",
        ],
    );
}

#[test]
fn bad_overrides_are_refused() {
    refused(
        Some(MAP_SINK),
        &["network.segment_size"],
        &["--set", "path=value"],
    );
    refused(
        Some(MAP_SINK),
        &["vertices.nosuch.parallelism=2"],
        &["--set", "nosuch"],
    );
    refused(
        Some(MAP_SINK),
        &["network.bogus=1"],
        &["--set", "unknown field", "bogus"],
    );
    // Of several assignments, the one that breaks the profile is named.
    refused(
        Some(MAP_SINK),
        &[
            "vertices.map.parallelism=2",
            "vertices.sink.parallelism=two",
        ],
        &["error: --set vertices.sink.parallelism=two: "],
    );
    taskbench()
        .args(["run", "no-such-profile"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("built-ins: quickstart"));
    taskbench().args(["frobnicate"]).assert().code(2);
}
