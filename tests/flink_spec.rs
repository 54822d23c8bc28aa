//! The Flink job spec (`taskbench flink spec`): every vertex kind, edge kind
//! and option as the Java job reads it, and each profile Flink cannot
//! express refused by the field's name. No JVM needed.

use taskbench::bench::builtin::builtin;
use taskbench::bench::flink::{check_cluster_network, JobSpec};
use taskbench::bench::profile::{Distribution, PartitionerKind, VertexKind};
use taskbench::bench::Profile;

fn profile(toml: &str, set: &[&str]) -> Profile {
    let set: Vec<String> = set.iter().map(|s| s.to_string()).collect();
    Profile::from_toml(toml, "test", &set).expect("a valid profile")
}

fn spec(toml: &str, set: &[&str]) -> JobSpec {
    JobSpec::from_profile(&profile(toml, set)).expect("Flink can run it")
}

/// `field: message` of the refusal.
fn refusal(toml: &str, set: &[&str]) -> String {
    JobSpec::from_profile(&profile(toml, set))
        .expect_err("Flink cannot run it")
        .to_string()
}

/// source → map → filter → flat-map ⇒ keyed-aggregate → fail-after → sink,
/// listed out of order (the spec puts producers first).
const EVERY_KIND: &str = r#"
name = "every-kind"
[records]
count = 1000
size = 16
[measure]
latency = true
[[vertices]]
name = "sink"
kind = "sink"
[[vertices]]
name = "fail"
kind = "fail-after"
fail_after = 500
[[vertices]]
name = "source"
kind = "source"
parallelism = 2
records = 700
[[vertices]]
name = "inc"
kind = "map"
function = "increment"
parallelism = 2
[[vertices]]
name = "third"
kind = "filter"
function = "one-in-3"
parallelism = 2
[[vertices]]
name = "explode"
kind = "flat-map"
function = "explode-3"
parallelism = 2
[[vertices]]
name = "agg"
kind = "keyed-aggregate"
function = "sum"
[[edges]]
from = "source"
to = "inc"
[[edges]]
from = "inc"
to = "third"
[[edges]]
from = "third"
to = "explode"
[[edges]]
from = "explode"
to = "agg"
partitioner = "hash"
[[edges]]
from = "agg"
to = "fail"
[[edges]]
from = "fail"
to = "sink"
"#;

#[test]
fn every_vertex_kind_with_its_function_in_topological_order() {
    let s = spec(EVERY_KIND, &[]);
    /// Name, kind, parallelism, function, records, fail_after.
    type Row<'a> = (
        &'a str,
        VertexKind,
        u32,
        Option<&'a str>,
        Option<u64>,
        Option<u64>,
    );
    let rows: Vec<Row> = s
        .vertices
        .iter()
        .map(|v| {
            (
                v.name.as_str(),
                v.kind,
                v.parallelism,
                v.function.as_deref(),
                v.records,
                v.fail_after,
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("source", VertexKind::Source, 2, None, Some(700), None),
            ("inc", VertexKind::Map, 2, Some("increment"), None, None),
            ("third", VertexKind::Filter, 2, Some("one-in-3"), None, None),
            (
                "explode",
                VertexKind::FlatMap,
                2,
                Some("explode-3"),
                None,
                None
            ),
            (
                "agg",
                VertexKind::KeyedAggregate,
                1,
                Some("sum"),
                None,
                None
            ),
            ("fail", VertexKind::FailAfter, 1, None, None, Some(500)),
            ("sink", VertexKind::Sink, 1, Some("latency"), None, None),
        ]
    );
    assert_eq!(s.max_parallelism(), 2);
    assert!(s.latency);
    assert!(!spec(EVERY_KIND, &["measure.latency=false"]).latency);
    assert_eq!(
        s.sinks().map(|v| v.name.as_str()).collect::<Vec<_>>(),
        ["sink"]
    );
}

#[test]
fn functions_get_their_defaults() {
    let s = spec(
        EVERY_KIND,
        &[
            "vertices.inc.function=multiply-by-two",
            "vertices.third.function=even",
            "vertices.explode.function=explode-2",
            "vertices.agg.function=count",
            "measure.latency=false",
        ],
    );
    let explicit: Vec<Option<String>> = s.vertices.iter().map(|v| v.function.clone()).collect();
    let toml = EVERY_KIND
        .replace("function = \"increment\"\n", "")
        .replace("function = \"one-in-3\"\n", "")
        .replace("function = \"explode-3\"\n", "")
        .replace("function = \"sum\"\n", "")
        .replace("latency = true", "latency = false");
    let defaults: Vec<Option<String>> = spec(&toml, &[])
        .vertices
        .iter()
        .map(|v| v.function.clone())
        .collect();
    assert_eq!(defaults, explicit);
    assert_eq!(defaults[6].as_deref(), Some("checksum"));
}

const FAN_OUT: &str = r#"
name = "fan-out"
[[vertices]]
name = "source"
kind = "source"
parallelism = 2
[[vertices]]
name = "a"
kind = "map"
parallelism = 2
[[vertices]]
name = "b"
kind = "map"
parallelism = 2
[[vertices]]
name = "c"
kind = "map"
parallelism = 3
[[vertices]]
name = "d"
kind = "map"
parallelism = 2
[[vertices]]
name = "e"
kind = "map"
parallelism = 2
[[vertices]]
name = "sink"
kind = "sink"
parallelism = 2
[[edges]]
from = "source"
to = "a"
[[edges]]
from = "a"
to = "b"
partitioner = "rebalance"
[[edges]]
from = "b"
to = "c"
[[edges]]
from = "c"
to = "d"
partitioner = "rescale"
[[edges]]
from = "d"
to = "e"
partitioner = "broadcast"
[[edges]]
from = "e"
to = "sink"
partitioner = "hash"
[[edges]]
from = "a"
to = "sink"
"#;

#[test]
fn every_edge_kind_and_whether_taskbench_chains_it() {
    let s = spec(FAN_OUT, &[]);
    let edges: Vec<(&str, &str, PartitionerKind, bool)> = s
        .edges
        .iter()
        .map(|e| (e.from.as_str(), e.to.as_str(), e.partitioner, e.chained))
        .collect();
    use PartitionerKind::*;
    assert_eq!(
        edges,
        [
            // Forward, equal parallelism, one input: chained.
            ("source", "a", Forward, true),
            ("a", "b", Rebalance, false),
            // Unequal parallelism: Flink's default, rebalance.
            ("b", "c", Rebalance, false),
            ("c", "d", Rescale, false),
            ("d", "e", Broadcast, false),
            ("e", "sink", Hash, false),
            // Forward, but 'a' has two outputs and 'sink' two inputs:
            // taskbench does not chain it (the Java job starts a new chain).
            ("a", "sink", Forward, false),
        ]
    );
    // Chaining off: nothing is chained.
    let off = spec(FAN_OUT, &["chaining=false"]);
    assert!(!off.chaining && off.edges.iter().all(|e| !e.chained));
    assert!(s.chaining);
}

/// The built-in map-sink profile, 1000 records.
fn map_sink() -> String {
    builtin("map-sink")
        .unwrap()
        .replace("count = 15_000_000", "count = 1000")
}

#[test]
fn record_and_network_options_reach_the_spec() {
    let s = spec(&map_sink(), &[]);
    assert_eq!(s.spec_version, 1);
    assert_eq!(s.name, "map-sink");
    let r = &s.records;
    assert_eq!((r.size, r.batch, r.key_space), (8, 1024, 1024));
    assert_eq!((r.duration_ms, r.rate, r.skew_after), (None, None, None));
    assert_eq!(r.distribution, Distribution::Uniform);
    let n = &s.network;
    assert_eq!(
        (
            n.buffer_timeout_ms,
            n.segment_size,
            n.buffers_per_channel,
            n.floating_buffers,
            n.memory
        ),
        (100, 32768, 2, 8, None)
    );
    assert!(s.not_applied.is_empty());

    let s = spec(
        &map_sink(),
        &[
            "records.duration=2500ms",
            "records.size=64",
            "records.batch=7",
            "records.rate=1234.5",
            "records.skew_after=100",
            "records.key_space=77",
            "records.distribution=zipf",
            "records.zipf_exponent=1.5",
            "network.segment_size=64KiB",
            "network.buffers_per_channel=4",
            "network.floating_buffers=16",
            "network.memory=64MiB",
            "network.buffer_timeout=5ms",
            "network.huge_pages=false",
            "runtime.wait=busy-spin",
            "runtime.pin=none",
        ],
    );
    let r = &s.records;
    assert_eq!((r.size, r.batch, r.key_space), (64, 7, 77));
    assert_eq!(
        (r.duration_ms, r.rate, r.skew_after),
        (Some(2500), Some(1234.5), Some(100))
    );
    assert_eq!((r.distribution, r.zipf_exponent), (Distribution::Zipf, 1.5));
    assert_eq!(s.vertices[0].records, Some(1000));
    let n = &s.network;
    assert_eq!(
        (
            n.buffer_timeout_ms,
            n.segment_size,
            n.buffers_per_channel,
            n.floating_buffers,
            n.memory
        ),
        (5, 65536, 4, 16, Some(64 << 20))
    );
    assert_eq!(
        s.not_applied,
        ["network.huge_pages", "runtime.wait", "runtime.pin"]
    );
    let options = n.cluster_options();
    let get = |k: &str| {
        options
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("taskmanager.memory.segment-size"), Some("65536b"));
    assert_eq!(
        get("taskmanager.network.memory.buffers-per-channel"),
        Some("4")
    );
    assert_eq!(
        get("taskmanager.network.memory.floating-buffers-per-gate"),
        Some("16")
    );
    assert_eq!(get("taskmanager.memory.network.min"), Some("67108864b"));
    assert_eq!(get("taskmanager.memory.network.max"), Some("67108864b"));

    // Buffer timeouts: 0 flushes every record, none only full buffers.
    assert_eq!(
        spec(&map_sink(), &["network.buffer_timeout=0ms"])
            .network
            .buffer_timeout_ms,
        0
    );
    assert_eq!(
        spec(&map_sink(), &["network.buffer_timeout=none"])
            .network
            .buffer_timeout_ms,
        -1
    );
    // A source without records.count runs the default count.
    let dropped = map_sink().replace("count = 1000", "");
    assert_eq!(spec(&dropped, &[]).vertices[0].records, Some(10_000_000));
    // With a duration and no count: until the duration.
    let timed = map_sink().replace("count = 1000", "duration = \"3s\"");
    assert_eq!(spec(&timed, &[]).vertices[0].records, None);
}

#[test]
fn the_spec_is_json_the_java_job_reads() {
    let s = spec(EVERY_KIND, &[]);
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["vertices"][4]["kind"], "keyed-aggregate");
    assert_eq!(json["edges"][3]["partitioner"], "hash");
    assert_eq!(json["records"]["distribution"], "uniform");
    assert!(json["records"]["rate"].is_null());
    let back: JobSpec = serde_json::from_value(json).unwrap();
    assert_eq!(back, s);
}

#[test]
fn what_flink_cannot_express_is_refused_by_name() {
    let cases: &[(&str, &[&str], &str)] = &[
        (
            &map_sink(),
            &["edges.0.partitioner=rebalance", "edges.0.channels=4"],
            "edges[0].channels: 4 channels",
        ),
        (
            &map_sink(),
            &["network.buffer_timeout=1500us"],
            "network.buffer_timeout: ",
        ),
        (
            &map_sink().replace("count = 1000", "duration = \"10500us\""),
            &[],
            "records.duration: ",
        ),
        (
            EVERY_KIND,
            &["edges.3.partitioner=rebalance"],
            "edges[3].partitioner: is rebalance into keyed-aggregate 'agg'",
        ),
        (
            EVERY_KIND,
            &["vertices.agg.key_space=10"],
            "vertices.agg.key_space: 10 differs",
        ),
    ];
    for (toml, set, expected) in cases {
        let message = refusal(toml, set);
        assert!(message.starts_with(expected), "{set:?}: {message}");
    }
    // A keyed aggregate with two inputs.
    let two = EVERY_KIND.replace(
        "[[edges]]\nfrom = \"agg\"",
        "[[edges]]\nfrom = \"source\"\nto = \"agg\"\npartitioner = \"hash\"\n[[edges]]\nfrom = \"agg\"",
    );
    assert!(refusal(&two, &[]).starts_with("vertices.agg.kind: keyed-aggregate 'agg' has 2 inputs"));
}

#[test]
fn a_remote_cluster_must_already_have_the_profiles_network() {
    let defaults = spec(&map_sink(), &[]);
    check_cluster_network(&defaults, &[]).expect("Flink's defaults are taskbench's");
    let config = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
    check_cluster_network(
        &defaults,
        &config("taskmanager.memory.segment-size", "32 kb"),
    )
    .unwrap();
    let e = check_cluster_network(
        &defaults,
        &config("taskmanager.memory.segment-size", "64kb"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("network.segment_size: is 32768, but the cluster runs with taskmanager.memory.segment-size = 65536"), "{e}");
    let more = spec(&map_sink(), &["network.floating_buffers=16"]);
    let e = check_cluster_network(&more, &[]).unwrap_err().to_string();
    assert!(e.starts_with("network.floating_buffers: "), "{e}");
    check_cluster_network(
        &more,
        &config("taskmanager.network.memory.floating-buffers-per-gate", "16"),
    )
    .unwrap();
    let memory = spec(&map_sink(), &["network.memory=64MiB"]);
    let e = check_cluster_network(&memory, &[]).unwrap_err().to_string();
    assert!(e.starts_with("network.memory: "), "{e}");
}
