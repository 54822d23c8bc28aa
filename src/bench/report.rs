//! Results as people read them: the terminal tables of a run and a sweep.
//! Formats other tools read are [`super::export`]'s.

use std::fmt::Write as _;

use super::checkpoint_figures::CheckpointFigures;
use super::profile::FlinkFigure;

use super::result::{Engine, Latency, RunResult, Stats, Status, SweepResult};

/// `1234567.8` → `"1,234,568"`.
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.abs());
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if value < 0.0 && digits != "0" {
        out.insert(0, '-');
    }
    out
}

/// Nanoseconds with a readable unit.
pub fn nanos(ns: f64) -> String {
    match ns {
        n if n < 1e3 => format!("{n:.0} ns"),
        n if n < 1e6 => format!("{:.1} µs", n / 1e3),
        n if n < 1e9 => format!("{:.2} ms", n / 1e6),
        n => format!("{:.2} s", n / 1e9),
    }
}

/// Bytes per second with a binary unit.
pub fn byte_rate(bps: f64) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    const MIB: f64 = (1u64 << 20) as f64;
    if bps >= GIB {
        format!("{:.2} GiB/s", bps / GIB)
    } else {
        format!("{:.1} MiB/s", bps / MIB)
    }
}

fn latency_line(l: &Latency) -> String {
    format!(
        "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  ({} samples)",
        nanos(l.p50 as f64),
        nanos(l.p90 as f64),
        nanos(l.p99 as f64),
        nanos(l.p999 as f64),
        nanos(l.max as f64),
        thousands(l.samples as f64)
    )
}

fn spread(s: &Stats) -> String {
    format!(
        "± {:.1} %   (min {}  max {})",
        s.rsd_pct,
        thousands(s.min),
        thousands(s.max)
    )
}

/// The terminal table of a run.
pub fn table(result: &RunResult) -> String {
    let p = &result.profile;
    let t = &result.testbed;
    let mut out = String::new();
    let _ = writeln!(out, "{}", p.name);
    if !p.description.is_empty() {
        let _ = writeln!(out, "  {}", p.description);
    }
    let measured = match result.repetitions.first() {
        Some(r) => format!(
            "{} repetition(s) after {} warm-up · {} records each",
            result.repetitions.len(),
            result.warmup_runs,
            thousands(r.records as f64)
        ),
        None => "no repetition measured".to_string(),
    };
    let _ = writeln!(
        out,
        "  {} task thread(s) on {} core(s) ({}{}) · {measured}",
        t.task_threads,
        t.cores_available.len(),
        t.cpu_model,
        if t.virtualized { ", VM" } else { "" },
    );
    let restarts: u32 = result.repetitions.iter().map(|r| r.restarts).sum();
    if restarts > 0 {
        let _ = writeln!(
            out,
            "  restarts      {restarts}, each from the latest completed checkpoint (task rows show the last attempt)"
        );
    }
    if let Some(f) = &result.flink {
        let _ = writeln!(
            out,
            "  engine: Apache Flink {} · {} · {} JVM(s) · {}",
            f.flink_version, f.cluster, f.forks, f.jvm_version
        );
    }
    if let Some(failure) = &result.failure {
        let _ = writeln!(out, "\n  FAILED: {failure}");
    }
    let Some(s) = &result.summary else {
        return out;
    };
    out.push('\n');
    let _ = writeln!(
        out,
        "  throughput    {} records/ms  {}",
        thousands(s.records_per_ms.median),
        spread(&s.records_per_ms)
    );
    let _ = writeln!(
        out,
        "                {:.2} M records/s   {}",
        s.records_per_sec.median / 1e6,
        byte_rate(s.bytes_per_sec.median)
    );
    if let (Some(flink), Some(ratio)) = (&p.flink, s.flink_ratio) {
        let published = match flink.figure {
            FlinkFigure::Records => format!("{} records/ms", thousands(flink.ops_per_ms)),
            FlinkFigure::Checkpoints => format!("{:.1} checkpoints/s", flink.ops_per_ms * 1e3),
        };
        let _ = writeln!(
            out,
            "  vs Flink      {:.2}× {} ({} on {})",
            ratio, flink.benchmark, published, flink.machine
        );
    }
    if let Some(c) = &s.checkpoints {
        checkpoint_lines(&mut out, c);
    }
    if let Some(l) = &s.latency_ns {
        let _ = writeln!(out, "  latency       {}", latency_line(l));
    }
    if let Some(floor) = &s.stall_floor_ns {
        // The floor records "no stall" as 1 ns.
        let at = |ns: u64| {
            if ns <= 1 {
                "0".to_string()
            } else {
                nanos(ns as f64)
            }
        };
        let _ = writeln!(
            out,
            "  stall floor   p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
            at(floor.p50),
            at(floor.p90),
            at(floor.p99),
            at(floor.p999),
            at(floor.max)
        );
        let ratio = s
            .latency_ns
            .map(|l| {
                format!(
                    "; the job's p99.9 is {:.1}× the floor's",
                    l.p999 as f64 / floor.p999.max(1) as f64
                )
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "                (what the machine's own stalls of a runnable thread add to a record, seen by the tasks' waits{ratio})"
        );
    }
    let measured_here = result.engine == Engine::Taskbench;
    if measured_here {
        let _ = writeln!(
            out,
            "  overhead      {:.1} ms deploy + tear-down per job (median); network memory set up once in {:.1} ms",
            s.overhead_ms.median, result.network_setup_ms
        );
    } else {
        let _ = writeln!(
            out,
            "  overhead      {:.1} ms per job (median): Flink's job duration beyond the data window",
            s.overhead_ms.median
        );
    }
    if let Some(core) = &s.core_ns_per_record {
        let wall = Stats::of(
            &result
                .repetitions
                .iter()
                .map(|r| 1e9 / r.records_per_sec.max(f64::MIN_POSITIVE))
                .collect::<Vec<_>>(),
        );
        let _ = writeln!(
            out,
            "  per record    wall {:.2} ns ± {:.1} %   core {:.2} ns ± {:.1} % (the tasks' busy CPU time)",
            wall.median, wall.rsd_pct, core.median, core.rsd_pct
        );
    }
    if let Some(i) = &result.instructions {
        let per = Stats::of(&i.per_record);
        let _ = writeln!(
            out,
            "  instructions  {:.2} per record ({} callgrind run(s), ± {:.3} %; data path only)",
            per.median,
            i.runs.len(),
            per.rsd_pct
        );
        let _ = writeln!(
            out,
            "                (the times above were measured under valgrind: not figures)"
        );
    }
    if let Some(cores) = &s.cores_busy {
        let _ = writeln!(
            out,
            "  cores busy    {:.2} of {} (median; the tasks' CPU time over the time their loops ran)",
            cores.median,
            result.testbed.cores_available.len()
        );
    }
    // Flink's allocations and buffer pools are not measured.
    if measured_here {
        let _ = writeln!(
            out,
            "  allocations   {} during measurement",
            s.allocations_during_measurement
        );
        let _ = writeln!(
            out,
            "  pools         {}",
            if s.pools_full {
                "every segment back after every job"
            } else {
                "NOT FULL after a job: segments were lost"
            }
        );
    }
    out.push('\n');
    let width = s
        .tasks
        .iter()
        .map(|t| t.name.len() + 4)
        .max()
        .unwrap_or(4)
        .max(8);
    let _ = writeln!(
        out,
        "  {:<width$}  {:>7}  {:>7}  {:>7}  {:>7}  {:>7}  {:>7}  {:>9}  {:>13}  {:>13}  {:>11}  {:>6}",
        "task",
        "busy",
        "idle",
        "soft bp",
        "hard bp",
        "cpu",
        "parks",
        "ended",
        "records in",
        "records out",
        "pool peak",
        "allocs"
    );
    let pct = |p: Option<f64>| p.map_or("–".to_string(), |p| format!("{p:.1}%"));
    for task in &s.tasks {
        // Where soft and hard are not told apart (Flink), all is soft.
        let soft = task
            .soft_back_pressured_pct
            .or(Some(task.back_pressured_pct));
        let _ = writeln!(
            out,
            "  {:<width$}  {:>6.1}%  {:>6.1}%  {:>7}  {:>7}  {:>7}  {:>7}  {:>9}  {:>13}  {:>13}  {:>11}  {:>6}",
            format!("{} #{}", task.name, task.subtask),
            task.busy_pct,
            task.idle_pct,
            pct(soft),
            pct(task.hard_back_pressured_pct),
            task.cpu_pct
                .map_or("–".to_string(), |pct| format!("{pct:.1}%")),
            task.parks.map_or("–".to_string(), |n| thousands(n as f64)),
            task.ended_ms
                .map_or("–".to_string(), |ms| format!("{ms:.1} ms")),
            thousands(task.records_in as f64),
            thousands(task.records_out as f64),
            if task.pool_size == 0 {
                "–".to_string()
            } else {
                format!("{}/{}", task.pool_max_in_use, task.pool_size)
            },
            if measured_here {
                task.allocations.to_string()
            } else {
                "–".to_string()
            }
        );
    }
    let debloated: Vec<String> = s
        .tasks
        .iter()
        .filter_map(|t| {
            let size = t.debloated_buffer_size?;
            Some(format!(
                "{} #{} {} B",
                t.name,
                t.subtask,
                thousands(size as f64)
            ))
        })
        .collect();
    if !debloated.is_empty() {
        let _ = writeln!(
            out,
            "\n  debloated     buffer sizes the gates last asked for: {}",
            debloated.join(", ")
        );
    }
    if let Some(b) = &s.bottleneck {
        let why = if b.upstream.is_empty() {
            "a source kept busy, nothing back-pressured".to_string()
        } else {
            let up: Vec<String> = b
                .upstream
                .iter()
                .map(|(task, pct)| format!("{task} {pct:.0} %"))
                .collect();
            format!("busy while upstream is back-pressured: {}", up.join(", "))
        };
        let _ = writeln!(
            out,
            "\n  bottleneck    {} #{} ({:.0} % busy; {why})",
            b.task, b.subtask, b.busy_pct
        );
    }
    if let Some(c) = &s.cores_bound {
        let shares: Vec<String> = s
            .tasks
            .iter()
            .filter_map(|t| Some(format!("{} #{} {:.0} %", t.name, t.subtask, t.cpu_pct?)))
            .collect();
        let _ = writeln!(
            out,
            "  bound by cores: {} task threads kept {:.2} of {} cores busy; they take turns, each on a core for its CPU share: {}",
            c.tasks,
            c.cores_busy,
            c.cores,
            shares.join(", ")
        );
    }
    out
}

/// The terminal table of a sweep: one line per point.
pub fn sweep_table(sweep: &SweepResult) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} (sweep, {} points)",
        sweep.profile.name,
        sweep.points.len()
    );
    let latency = sweep.points.iter().any(|p| {
        p.result
            .summary
            .as_ref()
            .is_some_and(|s| s.latency_ns.is_some())
    });
    let width = sweep
        .points
        .iter()
        .map(|p| p.overrides.join("  ").len())
        .max()
        .unwrap_or(5)
        .max(5);
    let _ = write!(
        out,
        "  {:<width$}  {:>12}  {:>7}  {:>6}",
        "point", "records/ms", "± %", "allocs"
    );
    if latency {
        let _ = write!(out, "  {:>10}  {:>10}  {:>10}", "p50", "p99", "p99.9");
    }
    out.push('\n');
    for point in &sweep.points {
        let label = point.overrides.join("  ");
        match (&point.result.summary, point.result.status) {
            (Some(s), _) => {
                let _ = write!(
                    out,
                    "  {:<width$}  {:>12}  {:>7.1}  {:>6}",
                    label,
                    thousands(s.records_per_ms.median),
                    s.records_per_ms.rsd_pct,
                    s.allocations_during_measurement
                );
                if let Some(l) = s.latency_ns.as_ref().filter(|_| latency) {
                    let _ = write!(
                        out,
                        "  {:>10}  {:>10}  {:>10}",
                        nanos(l.p50 as f64),
                        nanos(l.p99 as f64),
                        nanos(l.p999 as f64)
                    );
                }
                out.push('\n');
            }
            (None, Status::Failed) => {
                let _ = writeln!(
                    out,
                    "  {label:<width$}  FAILED: {}",
                    point.result.failure.as_deref().unwrap_or("unknown")
                );
            }
            (None, _) => {
                let _ = writeln!(out, "  {label:<width$}  (no measurement)");
            }
        }
    }
    out
}

/// The checkpoints of a run, two lines.
fn checkpoint_lines(out: &mut String, c: &CheckpointFigures) {
    if c.completed == 0 {
        let _ = writeln!(
            out,
            "  checkpoints   none counted · {} aborted, {} skipped",
            c.aborted, c.skipped
        );
        return;
    }
    let ms = |v: f64| format!("{v:.3} ms");
    let _ = writeln!(
        out,
        "  checkpoints   {:.1}/s: end-to-end {} (p90 {}, max {}) · {} completed, {} aborted, {} skipped",
        c.checkpoints_per_sec,
        ms(c.end_to_end_ms.median),
        ms(c.end_to_end_ms.p90),
        ms(c.end_to_end_ms.max),
        c.completed,
        c.aborted,
        c.skipped
    );
    let _ = writeln!(
        out,
        "                start delay {} · alignment {} · sync {} · async {} · state {} · in-flight persisted {} · unaligned {} of {}",
        ms(c.start_delay_ms.median),
        ms(c.alignment_ms.median),
        ms(c.sync_ms.median),
        ms(c.async_ms.median),
        bytesize::ByteSize(c.state_size.median as u64),
        bytesize::ByteSize(c.persisted_in_flight.median as u64),
        c.unaligned,
        c.completed
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_none_of_which_counted_print_no_figures() {
        let mut out = String::new();
        checkpoint_lines(&mut out, &CheckpointFigures::of(&[], 3));
        assert_eq!(out, "  checkpoints   none counted · 0 aborted, 3 skipped\n");
        let one = crate::checkpoint::CheckpointStats {
            end_to_end_ns: 2_000_000,
            ..Default::default()
        };
        let mut out = String::new();
        checkpoint_lines(&mut out, &CheckpointFigures::of(&[one], 0));
        assert!(
            out.starts_with("  checkpoints   500.0/s: end-to-end 2.000 ms"),
            "{out}"
        );
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(1_234_567.8), "1,234,568");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(-1000.0), "-1,000");
        assert_eq!(thousands(0.2), "0");
        assert_eq!(nanos(850.0), "850 ns");
        assert_eq!(nanos(12_345.0), "12.3 µs");
        assert_eq!(nanos(2_500_000.0), "2.50 ms");
        assert_eq!(byte_rate(3.0 * (1u64 << 30) as f64), "3.00 GiB/s");
    }
}
