//! The profile's stages together: defaults, overrides, the engine's
//! verdicts mapped to fields, lines in files, sweeps.

use std::time::Duration;

use super::error::field_line;
use super::*;
use crate::network::Partitioner;

const MAP_SINK: &str = r#"
name = "map-sink"
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

#[test]
fn a_job_may_have_a_million_channels_but_not_one_more() {
    let with = |p_source: u32| {
        Profile::from_toml(
            MAP_SINK,
            "test",
            &[
                format!("vertices.source.parallelism={p_source}"),
                "vertices.map.parallelism=1024".into(),
                "vertices.sink.parallelism=1024".into(),
                "edges.0.partitioner=rebalance".into(),
                "records.count=1".into(),
                // The smallest network memory such a job may have.
                "network.segment_size=4KiB".into(),
                "network.memory=4100MiB".into(),
            ],
        )
    };
    // 1024 × 1024 channels on the rebalance edge; map -> sink chains.
    assert!(with(1024).is_ok());
    let refused = with(1025).unwrap_err().to_string();
    assert!(refused.contains("1049600 channels"), "{refused}");
    // A forward edge at the same parallelism is one channel a subtask.
    assert!(Profile::from_toml(
        MAP_SINK,
        "test",
        &[
            "vertices.source.parallelism=4096".into(),
            "vertices.map.parallelism=4096".into(),
            "vertices.sink.parallelism=4096".into(),
            "chaining=false".into(),
            "records.count=1".into(),
        ],
    )
    .is_ok());
}

#[test]
fn a_bad_value_is_found_on_its_line() {
    let text = format!("{MAP_SINK}[network]\nsegment_size = \"3KiB\"\n");
    let line = text
        .lines()
        .position(|l| l.starts_with("segment_size"))
        .unwrap()
        + 1;
    assert_eq!(field_line(&text, "network.segment_size"), Some(line));
    // A vertex's field: within that vertex's table.
    let text = MAP_SINK.replace("kind = \"map\"", "kind = \"map\"\nparallelism = 0");
    let line = text
        .lines()
        .position(|l| l.starts_with("parallelism"))
        .unwrap()
        + 1;
    assert_eq!(field_line(&text, "vertices.map.parallelism"), Some(line));
    // Of several lines setting `to`, the second edge's.
    let to = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with("to ="))
        .nth(1)
        .unwrap()
        .0
        + 1;
    assert_eq!(field_line(&text, "edges[1].to"), Some(to));
    let err = Profile::from_toml(&text, "p.toml", &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!("p.toml, line {line}: vertices.map.parallelism")),
        "{err}"
    );
}

#[test]
fn a_minimal_profile_gets_flinks_defaults() {
    let p = Profile::from_toml(MAP_SINK, "test", &[]).unwrap();
    assert_eq!(p.network.segment_size, Size(32 << 10));
    assert_eq!(p.network.buffers_per_channel, 2);
    assert_eq!(p.network.floating_buffers, 8);
    assert_eq!(
        p.network.buffer_timeout,
        Timeout::After(Duration::from_millis(100))
    );
    assert!(p.chaining);
    let graph = p.job_graph().unwrap();
    assert_eq!(graph.edges[0].partitioner, Partitioner::Forward);
    assert_eq!(
        graph.vertices[0].source.unwrap().records,
        Some(DEFAULT_RECORDS)
    );
    assert_eq!(
        p.task_count(),
        1,
        "source, map and sink chain into one task"
    );
}

#[test]
fn overrides_reach_named_array_elements_and_nested_tables() {
    let p = Profile::from_toml(
        MAP_SINK,
        "test",
        &[
            "vertices.sink.parallelism=2".into(),
            "edges.1.partitioner=rebalance".into(),
            "network.segment_size=64KiB".into(),
            "runtime.pin=[0]".into(),
            "records.count=5".into(),
        ],
    )
    .unwrap();
    assert_eq!(p.vertices[2].parallelism, 2);
    assert_eq!(p.edges[1].partitioner, Some(PartitionerKind::Rebalance));
    assert_eq!(p.network.segment_size, Size(64 << 10));
    assert_eq!(p.runtime.pin, Pin::Cores(vec![0]));
    assert_eq!(p.task_count(), 3);
    // The profile as run round-trips through TOML.
    assert_eq!(Profile::from_toml(&p.to_toml(), "again", &[]).unwrap(), p);
}

#[test]
fn mistakes_are_named() {
    let err = |text: &str, overrides: &[&str]| {
        let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        Profile::from_toml(text, "p.toml", &o)
            .unwrap_err()
            .to_string()
    };
    let unknown = err(&format!("{MAP_SINK}\n[network]\nsegmnt_size = 4096\n"), &[]);
    assert!(
        unknown.contains("segmnt_size") && unknown.contains("line"),
        "{unknown}"
    );
    let parallelism = err(MAP_SINK, &["vertices.map.parallelism=0"]);
    assert!(
        parallelism.contains("vertices.map.parallelism"),
        "{parallelism}"
    );
    let segment = err(MAP_SINK, &["network.segment_size=3000"]);
    assert!(
        segment.contains("network.segment_size") && segment.contains("power of two"),
        "{segment}"
    );
    let missing = err(MAP_SINK, &["edges.0.to=nowhere"]);
    assert!(
        missing.contains("edges[0].to") && missing.contains("nowhere"),
        "{missing}"
    );
    let bad_set = err(MAP_SINK, &["vertices.nosuch.parallelism=2"]);
    assert!(
        bad_set.contains("--set") && bad_set.contains("nosuch"),
        "{bad_set}"
    );
    let no_eq = err(MAP_SINK, &["network.segment_size"]);
    assert!(no_eq.contains("path=value"), "{no_eq}");
    let wrong_type = err(MAP_SINK, &["vertices.map.parallelism=many"]);
    assert!(
        wrong_type.contains("parallelism") || wrong_type.contains("invalid type"),
        "{wrong_type}"
    );
    let big = err(
        MAP_SINK,
        &["records.size=2MiB", "network.max_record_size=1MiB"],
    );
    assert!(
        big.contains("records.size") && big.contains("max_record_size"),
        "{big}"
    );
    let memory = err(
        MAP_SINK,
        &["network.memory=32KiB", "vertices.sink.parallelism=4"],
    );
    assert!(memory.contains("network.memory"), "{memory}");
    let cycle = err(
        &format!("{MAP_SINK}\n[[edges]]\nfrom = \"sink\"\nto = \"map\"\n"),
        &[],
    );
    assert!(
        cycle.contains("sink vertex 'sink' cannot have outputs"),
        "{cycle}"
    );
}

#[test]
fn sweep_points_vary_the_first_axis_slowest() {
    let text = format!(
        "{MAP_SINK}\n[[sweep]]\nset = \"vertices.source.parallelism\"\nvalues = [1, 2]\n[[sweep]]\nset = \"network.segment_size\"\nvalues = [\"4KiB\", \"1MiB\"]\n"
    );
    let p = Profile::from_toml(&text, "sweep", &[]).unwrap();
    let points = p.sweep_points();
    assert_eq!(points.len(), 4);
    assert_eq!(
        points[1],
        vec![
            "vertices.source.parallelism=1".to_string(),
            "network.segment_size=1MiB".to_string()
        ]
    );
    for point in points {
        Profile::from_toml(&text, "sweep", &point).unwrap();
    }
}
