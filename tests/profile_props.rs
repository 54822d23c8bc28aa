//! Properties of bad input (DESIGN invariants 5 and 7): whatever a profile
//! field is set to — in the file or by `--set`, with whatever path — the
//! profile loads, or is refused with a message; nothing panics, and
//! nothing takes unbounded time. The command line keeps to exit 0 or 2.
#![cfg(not(loom))]

use std::sync::mpsc;
use std::time::Duration;

use proptest::prelude::*;
use proptest::sample::select;
use taskbench::bench::Profile;

const BASE: &str = r#"
name = "p"
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

/// Every field, by table and key, and a few paths that are not fields.
const FIELDS: &[(&str, &str)] = &[
    ("", "name"),
    ("", "description"),
    ("", "chaining"),
    ("records", "count"),
    ("records", "duration"),
    ("records", "size"),
    ("records", "key_space"),
    ("records", "distribution"),
    ("records", "zipf_exponent"),
    ("records", "rate"),
    ("records", "skew_after"),
    ("records", "batch"),
    ("network", "segment_size"),
    ("network", "buffers_per_channel"),
    ("network", "floating_buffers"),
    ("network", "buffer_timeout"),
    ("network", "memory"),
    ("network", "max_record_size"),
    ("network", "huge_pages"),
    ("network", "buffers_request_timeout"),
    ("runtime", "wait"),
    ("runtime", "spins"),
    ("runtime", "yields"),
    ("runtime", "spin_for"),
    ("runtime", "park_after"),
    ("runtime", "pin"),
    ("runtime", "cancel_timeout"),
    ("measure", "warmup"),
    ("measure", "repetitions"),
    ("measure", "latency"),
    ("flink", "benchmark"),
    ("flink", "ops_per_ms"),
    ("vertices.source", "parallelism"),
    ("vertices.source", "records"),
    ("vertices.source", "idle"),
    ("vertices.map", "kind"),
    ("vertices.map", "function"),
    ("vertices.map", "parallelism"),
    ("vertices.map", "key_space"),
    ("vertices.sink", "function"),
    ("vertices.0", "name"),
    ("edges.0", "partitioner"),
    ("edges.0", "channels"),
    ("edges.1", "to"),
    ("", "measure"),
    ("", "vertices"),
    ("", "sweep"),
    ("nosuch", "field"),
];

/// Values at and past every edge: bounds, overflows, NaN, wrong types,
/// control characters, nesting, path tricks.
const VALUES: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "1024",
    "4096",
    "4097",
    "65536",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "18446744073709551615",
    "1e300",
    "-1e300",
    "nan",
    "inf",
    "-inf",
    "0.5",
    "true",
    "\"\"",
    "\"none\"",
    "\"0ms\"",
    "\"1ms\"",
    "\"25h\"",
    "\"500000000000y\"",
    "\"32KiB\"",
    "\"3KiB\"",
    "\"1GiB\"",
    "\"64MiB\"",
    "\"16EiB\"",
    "[]",
    "[0]",
    "[999]",
    "[0, 0, 0]",
    "[[[[[[1]]]]]]",
    "{}",
    "{ a = 1 }",
    "\"\\u0000\"",
    "\"a\\u001b[2Jb\"",
    "\"../x\"",
    "\"spread\"",
    "\"zipf\"",
    "\"hash\"",
    "\"broadcast\"",
    "\"rescale\"",
    "\"busy-spin\"",
    "\"explode-0\"",
    "\"explode-1025\"",
    "\"one-in-0\"",
    "\"latency\"",
    "\"keyed-aggregate\"",
    "\"fail-after\"",
    "\"source\"",
    "x",
];

/// Runs `load` on its own thread: a panic or a run past `LIMIT` fails the
/// property (a hang is a bug, not a slow test).
fn bounded(load: impl FnOnce() -> Result<usize, String> + Send + 'static) -> Result<usize, String> {
    const LIMIT: Duration = Duration::from_secs(60);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(load());
    });
    match rx.recv_timeout(LIMIT) {
        Ok(outcome) => outcome,
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("loading the profile panicked"),
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("loading the profile did not end"),
    }
}

fn set_path((table, key): (&str, &str)) -> String {
    if table.is_empty() {
        key.to_string()
    } else {
        format!("{table}.{key}")
    }
}

fn assignment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (select(FIELDS), select(VALUES)).prop_map(|(f, v)| format!("{}={v}", set_path(f))),
        2 => (select(FIELDS), "[ -~]{0,16}").prop_map(|(f, v)| format!("{}={v}", set_path(f))),
        1 => "[a-z0-9._=\\[\\]{}\" -]{0,40}",
    ]
}

/// The base profile with `lines` of `[table] key = value` appended.
fn file_with(fields: &[((&str, &str), &str)]) -> String {
    let mut text = BASE.to_string();
    for ((table, key), value) in fields {
        if table.is_empty() || table.contains('.') {
            // Top-level keys must come before any table; vertices and
            // edges are set by `--set` only.
            text = format!("{key} = {value}\n{text}");
        } else {
            text.push_str(&format!("[{table}]\n{key} = {value}\n"));
        }
    }
    text
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_overrides_load_or_are_refused_with_a_message(sets in prop::collection::vec(assignment(), 0..4)) {
        let outcome = bounded(move || {
            Profile::from_toml(BASE, "p.toml", &sets)
                .map(|p| p.task_count())
                .map_err(|e| e.to_string())
        });
        if let Err(message) = outcome {
            prop_assert!(!message.trim().is_empty());
        }
    }

    #[test]
    fn any_field_in_a_file_loads_or_is_refused_with_a_message(
        fields in prop::collection::vec((select(FIELDS), select(VALUES)), 1..4)
    ) {
        let text = file_with(&fields);
        let outcome = bounded(move || {
            Profile::from_toml(&text, "p.toml", &[])
                .map(|p| p.task_count())
                .map_err(|e| e.to_string())
        });
        if let Err(message) = outcome {
            prop_assert!(!message.trim().is_empty());
        }
    }
}

proptest! {
    // Each case starts the binary: a few suffice next to the in-process ones.
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn the_command_line_exits_0_or_2_with_a_message(sets in prop::collection::vec(assignment(), 1..3)) {
        let mut cmd = assert_cmd::Command::cargo_bin("taskbench").unwrap();
        cmd.arg("validate").arg("map-sink").timeout(Duration::from_secs(60));
        for s in &sets {
            cmd.arg("--set").arg(s);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => prop_assert!(String::from_utf8_lossy(&out.stdout).contains(": ok:")),
            Some(2) => prop_assert!(stderr.starts_with("error: ") && !stderr.contains("panicked"), "{}", stderr),
            other => prop_assert!(false, "exit {:?}: {}", other, stderr),
        }
    }
}
