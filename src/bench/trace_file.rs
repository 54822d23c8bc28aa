//! Writes task timelines as Chrome trace-event JSON (`taskbench run
//! --trace FILE`), which ui.perfetto.dev and chrome://tracing open: one
//! process per measured repetition, one track per task thread named after
//! the task, slices for busy, idle, soft and hard back-pressure, parks and
//! wake-ups, a counter of buffers in use per task, and flows from a flush
//! to the read that consumed it.

use std::io::{self, Write};

use serde::Serialize;

use crate::metrics::trace::{Event, ThreadTrace};

/// The timelines of one job: a measured repetition.
#[derive(Clone, Debug)]
pub struct JobTrace {
    /// Its name in the trace ("repetition 1").
    pub label: String,
    /// One timeline per task thread, in deployment order.
    pub threads: Vec<ThreadTrace>,
}

#[derive(Serialize)]
struct Meta<'a> {
    name: &'static str,
    ph: &'static str,
    pid: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    tid: Option<usize>,
    args: MetaArgs<'a>,
}

#[derive(Serialize)]
struct MetaArgs<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct Record<'a> {
    name: &'a str,
    cat: &'static str,
    ph: &'static str,
    pid: usize,
    tid: usize,
    /// Microseconds.
    ts: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    dur: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    /// Flow events bind to the slice that encloses them.
    #[serde(skip_serializing_if = "Option::is_none")]
    bp: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    args: Option<CounterArgs>,
}

/// One trace event: metadata (names) or a record.
#[derive(Serialize)]
#[serde(untagged)]
enum Item<'a> {
    Meta(Meta<'a>),
    Record(Record<'a>),
}

#[derive(Serialize)]
struct CounterArgs {
    value: u64,
}

/// Events that did not fit a thread's buffer, over all jobs.
pub fn dropped(jobs: &[JobTrace]) -> u64 {
    jobs.iter()
        .flat_map(|j| &j.threads)
        .map(|t| t.dropped)
        .sum()
}

/// Writes `jobs` as one Chrome trace-event JSON document. Times are
/// relative to each job's start; events come thread by thread.
pub fn write(out: &mut impl Write, jobs: &[JobTrace]) -> io::Result<()> {
    out.write_all(b"{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n")?;
    let mut first = true;
    let mut emit = |out: &mut dyn Write, value: &Item<'_>| -> io::Result<()> {
        if !std::mem::take(&mut first) {
            out.write_all(b",\n")?;
        }
        serde_json::to_writer(out, value).map_err(io::Error::from)
    };
    for (p, job) in jobs.iter().enumerate() {
        let pid = p + 1;
        emit(
            out,
            &Item::Meta(Meta {
                name: "process_name",
                ph: "M",
                pid,
                tid: None,
                args: MetaArgs { name: &job.label },
            }),
        )?;
        for (t, thread) in job.threads.iter().enumerate() {
            let tid = t + 1;
            emit(
                out,
                &Item::Meta(Meta {
                    name: "thread_name",
                    ph: "M",
                    pid,
                    tid: Some(tid),
                    args: MetaArgs { name: &thread.name },
                }),
            )?;
            let counter_name = format!("buffers in use: {}", thread.name);
            for event in &thread.events {
                let us = |ns: u64| ns as f64 / 1e3;
                let record = match *event {
                    Event::Slice {
                        kind,
                        start,
                        duration,
                    } => Record {
                        name: kind.name(),
                        cat: "task",
                        ph: "X",
                        pid,
                        tid,
                        ts: us(start),
                        dur: Some(us(duration)),
                        id: None,
                        bp: None,
                        args: None,
                    },
                    Event::Counter { at, value, .. } => Record {
                        name: &counter_name,
                        cat: "buffers",
                        ph: "C",
                        pid,
                        tid,
                        ts: us(at),
                        dur: None,
                        id: None,
                        bp: None,
                        args: Some(CounterArgs { value }),
                    },
                    Event::FlowStart { id, at } | Event::FlowEnd { id, at } => Record {
                        name: "flush → read",
                        cat: "flow",
                        ph: if matches!(event, Event::FlowStart { .. }) {
                            "s"
                        } else {
                            "f"
                        },
                        pid,
                        tid,
                        ts: us(at),
                        dur: None,
                        id: Some(id),
                        bp: Some("e"),
                        args: None,
                    },
                };
                emit(out, &Item::Record(record))?;
            }
        }
    }
    write!(
        out,
        "\n],\"otherData\":{{\"producer\":\"taskbench {}\",\"dropped_events\":{}}}}}\n",
        env!("CARGO_PKG_VERSION"),
        dropped(jobs)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::trace::{Counter, Kind};
    use std::time::Instant;

    #[test]
    fn every_thread_is_a_named_track_and_flows_pair_up() {
        let thread = |name: &str, events: Vec<Event>| ThreadTrace {
            name: name.into(),
            epoch: Instant::now(),
            events,
            dropped: 1,
        };
        let jobs = [JobTrace {
            label: "repetition 1".into(),
            threads: vec![
                thread(
                    "source (1/1)",
                    vec![
                        Event::FlowStart { id: 7, at: 1_500 },
                        Event::Slice {
                            kind: Kind::Busy,
                            start: 1_000,
                            duration: 2_000,
                        },
                        Event::Counter {
                            counter: Counter::BuffersInUse,
                            at: 1_200,
                            value: 3,
                        },
                    ],
                ),
                thread(
                    "sink (1/1)",
                    vec![
                        Event::Slice {
                            kind: Kind::Park,
                            start: 100,
                            duration: 400,
                        },
                        Event::Slice {
                            kind: Kind::Idle,
                            start: 0,
                            duration: 3_000,
                        },
                        Event::FlowEnd { id: 7, at: 3_100 },
                    ],
                ),
            ],
        }];
        let mut out = Vec::new();
        write(&mut out, &jobs).unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let events = doc["traceEvents"].as_array().unwrap();
        let names: Vec<&str> = events
            .iter()
            .filter(|e| e["name"] == "thread_name")
            .map(|e| e["args"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["source (1/1)", "sink (1/1)"]);
        let slice = events.iter().find(|e| e["name"] == "busy").unwrap();
        assert_eq!(
            (slice["ts"].as_f64(), slice["dur"].as_f64()),
            (Some(1.0), Some(2.0))
        );
        let flows: Vec<(&str, u64)> = events
            .iter()
            .filter(|e| e["cat"] == "flow")
            .map(|e| (e["ph"].as_str().unwrap(), e["tid"].as_u64().unwrap()))
            .collect();
        assert_eq!(flows, [("s", 1), ("f", 2)]);
        assert_eq!(doc["otherData"]["dropped_events"], 2);
        let counter = events.iter().find(|e| e["ph"] == "C").unwrap();
        assert_eq!(counter["args"]["value"], 3);
    }
}
