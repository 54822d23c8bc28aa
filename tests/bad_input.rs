//! Bad input, kind by kind (issue 13's corpus): each is refused before any
//! job runs with exit 2 and one message naming the field or flag and what
//! is allowed — never a panic, an abort, a hang or a silent acceptance.
#![cfg(not(loom))]

use std::path::Path;

use assert_cmd::Command;

fn taskbench() -> Command {
    let mut cmd = Command::cargo_bin("taskbench").expect("the binary is built");
    cmd.env("CI", "true");
    cmd.timeout(std::time::Duration::from_secs(120));
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
[records]
count = 1000
[measure]
warmup = 0
repetitions = 1
"#;

fn file(dir: &Path, text: &str) -> String {
    let path = dir.join("p.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// `taskbench ARGS` exits 2 before running anything, with one message on
/// stderr holding every `expected` part and no panic.
fn refused(args: &[&str], expected: &[&str]) -> String {
    let out = taskbench().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for part in expected {
        assert!(stderr.contains(part), "{args:?}: '{part}' not in: {stderr}");
    }
    assert!(
        out.stdout.is_empty(),
        "refused before running: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

/// `validate` and `run` on the profile `text` with `sets` are refused.
fn profile_refused(text: &str, sets: &[&str], expected: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), text);
    for command in ["validate", "run"] {
        let mut args = vec![command, path.as_str()];
        for s in sets {
            args.extend(["--set", s]);
        }
        refused(&args, expected);
    }
}

#[test]
fn kind_1_what_would_panic_or_abort_is_refused() {
    // A NUL byte in a vertex name (a thread name cannot hold one).
    profile_refused(
        &MAP_SINK.replace("name = \"map\"", "name = \"m\\u0000p\""),
        &[],
        &["vertices[1].name", "control character"],
    );
    // A credit that would wrap to 0.
    profile_refused(
        MAP_SINK,
        &[
            "network.buffers_per_channel=4294967295",
            "network.floating_buffers=1",
        ],
        &["network.buffers_per_channel", "1 to 1024"],
    );
    profile_refused(
        MAP_SINK,
        &["network.floating_buffers=4294967295"],
        &["network.floating_buffers", "0 to 1024"],
    );
    // More overdraft than rings are sized for.
    profile_refused(
        MAP_SINK,
        &["network.max_overdraft_buffers=4294967295"],
        &["network.max_overdraft_buffers", "1024"],
    );
    // Debloating: a period past what an Instant can hold, no samples, a
    // minimum above a segment.
    profile_refused(
        MAP_SINK,
        &["network.debloat.period=\"500000000000y\""],
        &["network.debloat.period", "more than a day"],
    );
    profile_refused(
        MAP_SINK,
        &["network.debloat.samples=0"],
        &["network.debloat.samples", "1..=10000"],
    );
    profile_refused(
        MAP_SINK,
        &["network.debloat.min_buffer_size=\"1MiB\""],
        &["network.debloat.min_buffer_size", "segment_size"],
    );
    // A deadline past what an Instant can hold.
    profile_refused(
        MAP_SINK,
        &["network.buffer_timeout=\"500000000000y\""],
        &["network.buffer_timeout", "more than a day"],
    );
    profile_refused(
        MAP_SINK,
        &["runtime.cancel_timeout=\"100000d\""],
        &["runtime.cancel_timeout", "more than a day"],
    );
    // A path 30 000 levels deep, and a value as deep.
    let deep = format!("{}x=1", "a.".repeat(30_000));
    let stderr = refused(&["validate", "map-sink", "--set", &deep], &["30001 parts"]);
    assert!(
        stderr.len() < 1000,
        "the message repeats a bounded part: {stderr}"
    );
    let nested = format!(
        "records.count={}1{}",
        "[".repeat(30_000),
        "]".repeat(30_000)
    );
    refused(
        &["validate", "map-sink", "--set", &nested],
        &["more than 32 deep"],
    );
    // A channel count past u32 (truncated before, then a 64 GiB table).
    refused(
        &["demo", "--channels", "4294967296"],
        &["--channels", "1..=65536"],
    );
    refused(
        &["demo", "--channels", "65536", "--record-size", "1048576"],
        &["spill buffers"],
    );
    refused(
        &["demo", "--channels", "65536", "--segment-size", "1048576"],
        &["need 64.0 GiB of network memory; at most 4.0 GiB"],
    );
}

#[test]
fn kind_2_what_would_never_finish_is_refused() {
    profile_refused(
        MAP_SINK,
        &["records.count=9223372036854775807"],
        &["records.count", "1 to 1000000000000"],
    );
    profile_refused(
        MAP_SINK,
        &["records.count=18446744073709551615"],
        &["records.count", "beyond every field's range"],
    );
    profile_refused(
        &MAP_SINK.replace("count = 1000", "count = 18446744073709551615"),
        &[],
        &["records.count", "1 to 1000000000000"],
    );
    profile_refused(
        MAP_SINK,
        &["vertices.source.records=9223372036854775807"],
        &["vertices.source.records"],
    );
    // A rate whose due-record count would wrap to 0.
    profile_refused(
        MAP_SINK,
        &["records.rate=1e300"],
        &["records.rate", "at most 1e9"],
    );
    profile_refused(MAP_SINK, &["records.rate=inf"], &["records.rate"]);
    profile_refused(MAP_SINK, &["records.batch=4294967295"], &["records.batch"]);
}

#[test]
fn kind_3_out_of_range_values_are_not_accepted_silently() {
    let with_flink =
        format!("{MAP_SINK}[flink]\nbenchmark = \"InputBenchmark.mapSink\"\nops_per_ms = 1000\n");
    for bad in ["nan", "inf", "-inf", "0", "-5"] {
        profile_refused(
            &with_flink,
            &[&format!("flink.ops_per_ms={bad}")],
            &["flink.ops_per_ms", "positive number"],
        );
    }
    profile_refused(
        MAP_SINK,
        &["records.count=0", "records.duration=\"1ms\""],
        &["records.count", "no record"],
    );
    profile_refused(
        MAP_SINK,
        &["vertices.source.records=0"],
        &["vertices.source.records"],
    );
    refused(&["demo", "--records", "0"], &["--records"]);
    // Warm-up plus repetitions would wrap.
    refused(
        &["run", "map-sink", "-w", "4294967295", "-r", "1"],
        &["--warmup", "4294967295"],
    );
    refused(&["run", "map-sink", "-r", "0"], &["--repetitions"]);
    profile_refused(
        MAP_SINK,
        &["measure.repetitions=4294967295"],
        &["measure.repetitions"],
    );
    profile_refused(MAP_SINK, &["runtime.spins=4294967295"], &["runtime.spins"]);
}

#[test]
fn kind_4_names_must_be_printable_and_present() {
    for (bad, why) in [
        ("\\u001b[2J\\u001b[Hfake", "control character"),
        ("a\\u0000b", "control character"),
        ("line\\nforged", "control character"),
        ("", "is empty"),
        ("   ", "is empty"),
    ] {
        let profile_name = MAP_SINK.replace("name = \"t\"", &format!("name = \"{bad}\""));
        profile_refused(&profile_name, &[], &["name", why]);
        let vertex = MAP_SINK.replace("name = \"sink\"", &format!("name = \"{bad}\""));
        let vertex = vertex.replace("to = \"sink\"", &format!("to = \"{bad}\""));
        profile_refused(&vertex, &[], &["vertices[2].name", why]);
    }
    // No message echoes a control character raw.
    let dir = tempfile::tempdir().unwrap();
    let path = file(
        dir.path(),
        &MAP_SINK.replace("name = \"t\"", "name = \"\\u001b[2J\""),
    );
    let stderr = refused(&["validate", &path], &["name"]);
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
    // Nor does one repeat what was typed raw: a --set, a path.
    for set in [
        "name=\u{1b}[2J",
        "records.count=\u{1b}[2J",
        "vertices.source.parallelism=\u{1b}[2Jx\nerror: forged",
        "a\u{1b}.b=1",
    ] {
        let stderr = refused(&["validate", "map-sink", "--set", set], &["\\u{1b}"]);
        assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
        assert!(!stderr.contains("\nerror: forged"), "{stderr:?}");
    }
    let stderr = refused(&["validate", "/nonexistent/\u{1b}[2J.toml"], &["\\u{1b}"]);
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
    profile_refused(
        &MAP_SINK.replace("name = \"t\"", "name = \"t\"\ndescription = \"a\\u0007b\""),
        &[],
        &["description", "control character"],
    );
}

#[test]
fn kind_5_sweep_axes_are_each_set_once_with_distinct_values() {
    let axis = |set: &str, values: &str| format!("[[sweep]]\nset = \"{set}\"\nvalues = {values}\n");
    let twice = format!(
        "{MAP_SINK}{}{}",
        axis("network.segment_size", "[\"4KiB\"]"),
        axis("network.segment_size", "[\"8KiB\"]")
    );
    profile_refused(&twice, &[], &["sweep[1].set", "earlier axis"]);
    let spaced = format!(
        "{MAP_SINK}{}{}",
        axis("network.segment_size", "[\"4KiB\"]"),
        axis(" network . segment_size", "[\"8KiB\"]")
    );
    profile_refused(&spaced, &[], &["sweep[1].set", "earlier axis"]);
    // A vertex named or numbered: one field.
    let aliased = format!(
        "{MAP_SINK}{}{}",
        axis("vertices.map.parallelism", "[1, 2]"),
        axis("vertices.1.parallelism", "[1, 3]")
    );
    profile_refused(&aliased, &[], &["sweep[1].set", "earlier axis"]);
    let duplicate = format!(
        "{MAP_SINK}{}",
        axis("network.segment_size", "[\"4KiB\", \"8KiB\", \"4KiB\"]")
    );
    profile_refused(&duplicate, &[], &["sweep[0].values", "4KiB is given twice"]);
    // One value written two ways runs one job under two labels.
    let spelled = format!(
        "{MAP_SINK}{}",
        axis("network.segment_size", "[\"8KiB\", 8192]")
    );
    profile_refused(
        &spelled,
        &[],
        &[
            "network.segment_size=8KiB",
            "network.segment_size=8192",
            "run the same job",
        ],
    );
    let many = format!(
        "{MAP_SINK}{}{}{}",
        axis(
            "records.batch",
            &format!("{:?}", (1..=100).collect::<Vec<_>>())
        ),
        axis(
            "records.count",
            &format!("{:?}", (1..=100).collect::<Vec<_>>())
        ),
        axis("records.key_space", "[1, 2]")
    );
    profile_refused(&many, &[], &["sweep", "more than 10000 points"]);
    // An override of a swept field is refused by `sweep`, naming what was typed.
    let dir = tempfile::tempdir().unwrap();
    let swept = file(
        dir.path(),
        &format!(
            "{MAP_SINK}{}",
            axis("network.segment_size", "[\"4KiB\", \"8KiB\"]")
        ),
    );
    refused(
        &["sweep", &swept, "--set", "network.segment_size=16KiB"],
        &["--set network.segment_size=16KiB", "sweep axis"],
    );
    let by_index = file(
        dir.path(),
        &format!("{MAP_SINK}{}", axis("vertices.1.parallelism", "[1, 2]")),
    );
    refused(
        &["sweep", &by_index, "--set", "vertices.map.parallelism=2"],
        &["--set vertices.map.parallelism=2", "sweep axis"],
    );
    let reps = file(
        dir.path(),
        &format!("{MAP_SINK}{}", axis("measure.repetitions", "[1, 2]")),
    );
    refused(
        &["sweep", &reps, "-r", "3"],
        &["--repetitions 3", "sweep axis"],
    );
}

#[test]
fn kind_11_messages_say_what_is_accepted_and_blame_what_was_typed() {
    profile_refused(
        MAP_SINK,
        &["runtime.pin=\"everywhere\""],
        &["runtime.pin", "\"spread\", \"none\" or a list of core ids"],
    );
    profile_refused(
        &format!("{MAP_SINK}[runtime]\npin = {{ cores = 1 }}\n"),
        &[],
        &[
            "line 24",
            "pin =",
            "\"spread\", \"none\" or a list of core ids",
        ],
    );
    // `--set measure=1 -r 1` blames the --set, never a --set nobody typed.
    let stderr = refused(
        &["run", "map-sink", "--set", "measure=1", "-r", "1"],
        &[
            "--set measure=1",
            "measure is a table",
            "measure.repetitions=…",
        ],
    );
    assert!(!stderr.contains("--set measure.repetitions"), "{stderr}");
    // An earlier assignment that replaced a table is named.
    refused(
        &[
            "validate",
            "map-sink",
            "--set",
            "vertices=1",
            "--set",
            "vertices.source.parallelism=2",
        ],
        &["--set vertices=1", "vertices.source.parallelism=2"],
    );
    // Types are said as the numbers they take, not as Rust types.
    let stderr = refused(
        &[
            "validate",
            "map-sink",
            "--set",
            "vertices.source.parallelism=-3",
        ],
        &["expected a whole number from 0 to 4294967295"],
    );
    assert!(!stderr.contains("u32"), "{stderr}");
    profile_refused(
        &MAP_SINK.replace("count = 1000", "count = \"many\""),
        &[],
        &["line 19", "expected a whole number"],
    );
    // A record too large is not "too small".
    let stderr = refused(
        &["demo", "--record-size", "70000000"],
        &["--record-size", "8..=67108864"],
    );
    assert!(!stderr.contains("too small"), "{stderr}");
    // Flink's bare millisecond numbers for the buffer timeout.
    profile_refused(
        MAP_SINK,
        &["network.buffer_timeout=0"],
        &[
            "network.buffer_timeout",
            "write \"0ms\" (flush every record) or \"none\"",
        ],
    );
    profile_refused(
        MAP_SINK,
        &["network.buffer_timeout=-1"],
        &["network.buffer_timeout", "write \"none\""],
    );
    profile_refused(
        &format!("{MAP_SINK}[network]\nbuffer_timeout = 100\n"),
        &[],
        &["buffer_timeout", "\"100ms\"", "line 24"],
    );
}

#[test]
fn a_large_record_and_many_channels_run_in_the_demo() {
    taskbench()
        .args(["demo", "--record-size", "2000000", "--records", "20"])
        .assert()
        .success();
    // Past the default 2048 segments: the demo maps what its pool needs.
    taskbench()
        .args([
            "demo",
            "--channels",
            "8192",
            "--records",
            "50000",
            "--record-size",
            "8",
        ])
        .assert()
        .success()
        .stdout(predicates::str::contains("pools full            true"));
}

#[test]
fn profiles_that_are_not_regular_files_are_not_read() {
    refused(
        &["validate", "/dev/zero"],
        &["/dev/zero", "not a regular file"],
    );
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.toml");
    std::fs::write(&big, format!("name = \"x\"\n#{}\n", "-".repeat(2 << 20))).unwrap();
    refused(&["validate", big.to_str().unwrap()], &["larger than 1MiB"]);
    // A FIFO is refused at once, not waited on for a writer.
    let fifo = dir.path().join("fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo");
    let fifo = fifo.to_str().unwrap();
    refused(&["validate", fifo], &["fifo", "not a regular file"]);
    refused(&["compare", fifo, fifo], &["fifo", "not a regular file"]);
    refused(
        &["compare", "/dev/zero", "/dev/zero"],
        &["/dev/zero", "not a regular file"],
    );
}

#[test]
fn compare_thresholds_are_percentages() {
    for bad in ["nan", "inf", "1e308", "-5", "1001", "four"] {
        refused(
            &["compare", "a.json", "b.json", &format!("--threshold={bad}")],
            &["--threshold", "a percentage from 0 to 1000"],
        );
    }
}

/// What a fresh pair of eyes found in the checkpoint, debloating, credit
/// and history inputs: each refused with exit 2 and a message naming it.
#[test]
fn checkpoint_network_and_history_inputs_are_refused_by_name() {
    // A credit of 1 would leave the output waiting on the buffer it fills.
    profile_refused(
        MAP_SINK,
        &[
            "network.buffers_per_channel=1",
            "network.floating_buffers=0",
        ],
        &["network.buffers_per_channel", "credit of at least 2"],
    );
    profile_refused(
        MAP_SINK,
        &["network.debloat.target=\"2h\""],
        &["network.debloat.target", "1h"],
    );
    profile_refused(
        MAP_SINK,
        &["network.debloat.min_buffer_size=\"5GiB\""],
        &["network.debloat.min_buffer_size", "5GiB", "segment_size"],
    );
    profile_refused(
        MAP_SINK,
        &["checkpoint.timeout=\"1ns\""],
        &["checkpoint.timeout", "1ms to 24h"],
    );
    for (set, says) in [
        ("checkpoint=1", "checkpoint is a table"),
        ("network.debloat=1", "network.debloat is a table"),
    ] {
        refused(&["validate", "map-sink", "--set", set], &[says]);
    }
    profile_refused(
        &MAP_SINK.replace("[records]", "[network]\ndebloat = 5\n[records]"),
        &[],
        &["a [network.debloat] table"],
    );

    // Checkpoint directories that cannot be created.
    let dir = tempfile::tempdir().unwrap();
    let regular = dir.path().join("regular");
    std::fs::write(&regular, b"").unwrap();
    let dangling = dir.path().join("dangling");
    std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
    for (path, says) in [
        (regular.join("sub"), "is not a directory"),
        (dangling.clone(), "symbolic link to nothing"),
    ] {
        let set = format!("checkpoint.dir={:?}", path.display().to_string());
        profile_refused(MAP_SINK, &[&set], &["checkpoint.dir", says]);
    }
    profile_refused(
        MAP_SINK,
        &["checkpoint.dir=\"a\\u0000b\""],
        &["checkpoint.dir", "NUL"],
    );
    profile_refused(
        MAP_SINK,
        &["checkpoint.dir=\"ck\\u001b[2J\""],
        &["checkpoint.dir", "control character"],
    );
    // Short enough to create, too long for the files under it.
    let long = format!("/tmp/{}", vec!["c".repeat(200); 20].join("/"));
    profile_refused(
        MAP_SINK,
        &[&format!("checkpoint.dir={long:?}")],
        &["checkpoint.dir", "bytes long", "limit of 4096 bytes"],
    );
    profile_refused(
        MAP_SINK,
        &["checkpoint.tolerable_failed_checkpoints=1000001"],
        &["checkpoint.tolerable_failed_checkpoints", "0 to 1000000"],
    );
    // Only creating it tells: the run's first job, still exit 2.
    refused(
        &[
            "run",
            "map-sink",
            "--set",
            "checkpoint.dir=\"/proc/taskbench-no-such-dir\"",
        ],
        &["checkpoint directory cannot be created", "/proc/taskbench"],
    );

    // History: a database that is not a regular file, or not a database.
    let fifo = dir.path().join("fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    let garbage = dir.path().join("garbage.sqlite");
    std::fs::write(&garbage, vec![7u8; 4096]).unwrap();
    let mut dbs = vec![
        (dir.path().to_path_buf(), "not a regular file"),
        (garbage, "not an SQLite database"),
    ];
    if made.is_ok_and(|s| s.success()) {
        dbs.push((fifo, "not a regular file"));
    }
    for (db, says) in dbs {
        let db = db.display().to_string();
        refused(&["history", "show", "--no-charts", "--db", &db], &[says]);
    }
    assert!(
        !dir.path().join("fifo-journal").exists(),
        "nothing is written beside a FIFO"
    );
    let charts = regular.display().to_string();
    let db = dir.path().join("h.sqlite").display().to_string();
    refused(
        &["history", "show", "--charts", &charts, "--db", &db],
        &["--charts", "not a directory"],
    );
    let dangling_db = dangling.display().to_string();
    let under_file = regular.join("h.sqlite").display().to_string();
    for (db, says) in [
        (&dangling_db, "symbolic link to nothing"),
        (&under_file, "is not a directory"),
    ] {
        refused(&["history", "show", "--no-charts", "--db", db], &[says]);
    }
    // A result that is not complete.
    let interrupted = dir.path().join("interrupted.json");
    let out = taskbench()
        .args(["run", "map-sink", "-r", "1", "-w", "0", "--quiet"])
        .args([
            "--set",
            "records.count=1000",
            "--output",
            "-",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(r#""status": "complete""#), "{text}");
    std::fs::write(
        &interrupted,
        text.replace(r#""status": "complete""#, r#""status": "interrupted""#),
    )
    .unwrap();
    let interrupted = interrupted.display().to_string();
    refused(
        &["history", "add", "--db", &db, &interrupted],
        &["status interrupted", "only complete results"],
    );
    // ab: a candidate that cannot run, a budget of no time, a figure the
    // profile does not measure — before any run.
    let noexec = dir.path().join("noexec");
    std::fs::write(&noexec, "#!/bin/sh\n").unwrap();
    let noexec = noexec.display().to_string();
    refused(
        &["ab", "map-sink", "--candidate", &noexec],
        &["not executable"],
    );
    refused(&["ab", "map-sink", "--max-time", "0s"], &["--max-time"]);
    refused(
        &["ab", "map-sink", "--figure", "latency_p99_ns"],
        &["latency_p99_ns", "measures no latency"],
    );
    // A result of a schema this taskbench does not read.
    let future = dir.path().join("future.json");
    std::fs::write(&future, br#"{"schema_version": 99, "kind": "run"}"#).unwrap();
    let future = future.display().to_string();
    refused(
        &["history", "add", "--db", &db, &future],
        &["schema_version 99", "reads 1 to"],
    );
}
