//! The `taskbench` command line.
//!
//! Exit codes: 0 ok, 1 the run failed (a task failed, or did not end) or
//! `compare` found a regression, 2 bad usage or bad input.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use taskbench::bench::builtin::{self, BUILTIN};
use taskbench::bench::channel::{run_channel, ChannelRun};
use taskbench::bench::report::{self, Format};
use taskbench::bench::trace_file::{self, JobTrace};
use taskbench::bench::{
    chart, run_profile_with, run_sweep, Profile, Progress, RunOptions, RunResult, Status,
};
use taskbench::metrics::CountingAllocator;
use taskbench::network::Partitioner;

mod cli_flink;

#[global_allocator]
static ALLOC: CountingAllocator<mimalloc::MiMalloc> = CountingAllocator(mimalloc::MiMalloc);

/// Apache Flink's task runtime in one process, and a benchmark engine
/// around it.
#[derive(Debug, Parser)]
#[command(
    version,
    about,
    after_help = "Exit codes: 0 ok, 1 the run failed, 2 bad usage or input."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs a profile (default: the built-in quickstart) and prints its figures.
    Run(RunCommand),
    /// Runs every point of a profile's sweep axes; writes JSON and SVG charts.
    Sweep(SweepArgs),
    /// Holds a result against a baseline of the same profile; exits 1 on a
    /// regression, 2 when the two cannot be compared.
    Compare(CompareArgs),
    /// Lists the built-in profiles and those in ./profiles.
    List,
    /// Checks a profile (and overrides) without running it.
    Validate(ProfileArgs),
    /// Two threads, one partition → one gate, no task runtime: the raw data
    /// path (serializer, pool, rings, deserializer).
    Demo(DemoArgs),
    /// The same profiles on real Apache Flink: a MiniCluster here, or a
    /// Flink cluster through its REST API.
    #[command(subcommand)]
    Flink(cli_flink::FlinkCommand),
}

#[derive(Debug, Args)]
struct ProfileArgs {
    /// A profile file, or the name of a built-in profile (see `list`).
    profile: Option<String>,
    /// Overrides a profile field, e.g. `--set network.segment_size=64KiB`
    /// or `--set vertices.source.parallelism=2` (repeatable).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    set: Vec<String>,
}

#[derive(Debug, Args)]
struct OutputArgs {
    /// Writes the result to FILE (`-` for stdout; the table then goes to
    /// stderr). Rewritten after every repetition.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Format of `--output`.
    #[arg(long, value_enum, default_value = "json")]
    format: Format,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Debug, Args)]
struct MeasureArgs {
    /// Measured repetitions (overrides `measure.repetitions`).
    #[arg(long, short)]
    repetitions: Option<u32>,
    /// Warm-up runs (overrides `measure.warmup`).
    #[arg(long, short)]
    warmup: Option<u32>,
}

impl MeasureArgs {
    /// The profile fields these flags override.
    fn fields(&self) -> [(&'static str, Option<u32>); 2] {
        [
            ("measure.repetitions", self.repetitions),
            ("measure.warmup", self.warmup),
        ]
    }
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    profile: ProfileArgs,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    measure: MeasureArgs,
}

#[derive(Debug, Args)]
struct RunCommand {
    #[command(flatten)]
    run: RunArgs,
    /// Records every task thread's timeline in each measured repetition and
    /// writes it to FILE as Chrome trace-event JSON (open it in
    /// ui.perfetto.dev): busy, idle, soft and hard back-pressure, parks and
    /// wake-ups, buffers in use, flows from a flush to its read.
    #[arg(long, value_name = "FILE", help_heading = "Profiling")]
    trace: Option<PathBuf>,
    /// Events each task thread's timeline holds per repetition; events
    /// beyond are dropped and counted (the buffers are allocated before the
    /// tasks run, so tracing allocates nothing while measuring).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1_000_000,
        value_parser = clap::value_parser!(u64).range(1..=100_000_000),
        requires = "trace",
        help_heading = "Profiling"
    )]
    trace_events: u64,
    /// Also runs the profile on Apache Flink, interleaved with taskbench in
    /// one session (round k: taskbench, then Flink's JVM k), and prints the
    /// ratio per figure.
    #[arg(long, help_heading = "Flink")]
    vs_flink: bool,
    /// With --vs-flink: writes Flink's result (JSON) to FILE.
    #[arg(
        long,
        value_name = "FILE",
        requires = "vs_flink",
        help_heading = "Flink"
    )]
    flink_output: Option<PathBuf>,
    #[command(flatten)]
    flink: cli_flink::FlinkArgs,
}

#[derive(Debug, Args)]
struct SweepArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Directory for the JSON result (unless --output) and the charts.
    #[arg(long, default_value = "results")]
    dir: PathBuf,
}

#[derive(Debug, Args)]
struct CompareArgs {
    /// The baseline result (JSON from `run` or `sweep`).
    baseline: PathBuf,
    /// The result to judge.
    current: PathBuf,
    /// Smallest change that counts, in percent; a change must also exceed
    /// twice either run's relative standard deviation (flink-benchmarks' rule).
    #[arg(long, default_value_t = 4.0)]
    threshold: f64,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Records to send.
    #[arg(long, default_value_t = 20_000_000)]
    records: u64,
    /// Bytes per record (at least 8).
    #[arg(long, default_value_t = 100)]
    record_size: usize,
    /// Subpartitions (= input channels), round-robin.
    #[arg(long, default_value_t = 1)]
    channels: usize,
    /// Segment size in bytes (power of two, 4096 ..= 1048576).
    #[arg(long, default_value_t = 32 * 1024)]
    segment_size: usize,
}

/// Bad input: exit 2 with one message.
fn usage_error(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => run(args),
        Command::Flink(command) => cli_flink::flink(command),
        Command::Sweep(args) => sweep(args),
        Command::Compare(args) => compare(&args),
        Command::List => list(),
        Command::Validate(args) => validate(&args),
        Command::Demo(args) => demo(&args),
    }
}

fn overrides(args: &ProfileArgs, extra: &[(&str, Option<u32>)]) -> Vec<String> {
    let mut set = args.set.clone();
    for (path, value) in extra {
        if let Some(v) = value {
            set.push(format!("{path}={v}"));
        }
    }
    set
}

fn progress_bar(quiet: bool) -> ProgressBar {
    let visible = !quiet && std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
    let bar = ProgressBar::with_draw_target(
        None,
        if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix} [{bar:30}] {pos}/{len} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

/// Writes `text` to `path` whole (a reader never sees half a file).
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let partial = path.with_extension("partial");
    std::fs::write(&partial, text)?;
    std::fs::rename(partial, path)
}

fn render_run(result: &RunResult, format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(result).expect("results serialize") + "\n",
        Format::Csv => report::csv(result),
        Format::Markdown => report::markdown(result),
    }
}

fn to_stdout(output: &OutputArgs) -> bool {
    output.output.as_deref() == Some(Path::new("-"))
}

fn run(args: RunCommand) -> ExitCode {
    if args.vs_flink {
        return cli_flink::run_vs_flink(args);
    }
    let trace = args.trace.clone();
    let options = RunOptions {
        trace_events: if trace.is_some() {
            args.trace_events as usize
        } else {
            0
        },
    };
    let args = args.run;
    let set = overrides(&args.profile, &args.measure.fields());
    let (profile, origin) = match builtin::load(args.profile.profile.as_deref(), &set) {
        Ok(p) => p,
        Err(e) => return usage_error(e),
    };
    if let Some(path) = &trace {
        if let Err(e) = check_output_path(path) {
            return usage_error(format!("--trace {}: {e}", path.display()));
        }
    }
    let bar = progress_bar(args.output.quiet);
    bar.set_prefix(profile.name.clone());
    bar.set_length(u64::from(
        profile.measure.warmup + profile.measure.repetitions,
    ));
    let mut saver = Saver::new(&args.output);
    let outcome = run_profile_with(&profile, &set, &options, &mut |p| {
        show_progress(&bar, &profile, &p);
        if let Progress::Measured(result) = p {
            saver.save(result);
        }
    });
    bar.finish_and_clear();
    match outcome {
        Ok(out) => {
            let code = finish_run(&out.result, &args.output, saver);
            match (&trace, write_trace(trace.as_deref(), &out.traces)) {
                (_, Ok(())) => code,
                (Some(path), Err(e)) => {
                    eprintln!("error: cannot write the trace {}: {e}", path.display());
                    ExitCode::from(1)
                }
                (None, Err(_)) => code,
            }
        }
        Err(e) => {
            eprintln!("error: {origin}: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Refuses an output path that is not a regular file (or nothing yet), or
/// whose directory cannot take a file, before anything runs.
fn check_output_path(path: &Path) -> Result<(), String> {
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() => {
            return Err("exists and is not a regular file; give a file path".into())
        }
        Ok(meta) if meta.permissions().readonly() => return Err("is read-only".into()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.to_string()),
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(format!("{} is not a directory", dir.display())),
        Err(e) => Err(format!("{}: {e}", dir.display())),
    }
}

/// Writes the timelines to `path` (a temporary file beside it, synced,
/// then renamed over it) and says where they went.
fn write_trace(path: Option<&Path>, traces: &[JobTrace]) -> std::io::Result<()> {
    let Some(path) = path else { return Ok(()) };
    let partial = path.with_extension("partial");
    let file = std::fs::File::create(&partial)?;
    let mut out = std::io::BufWriter::new(file);
    let written = trace_file::write(&mut out, traces)
        .and_then(|()| out.into_inner().map_err(|e| e.into_error()))
        .and_then(|file| file.sync_all());
    if let Err(e) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    std::fs::rename(&partial, path)?;
    let events: usize = traces
        .iter()
        .flat_map(|t| &t.threads)
        .map(|t| t.events.len())
        .sum();
    let dropped = trace_file::dropped(traces);
    eprintln!(
        "trace: {} ({events} events{}); open it in https://ui.perfetto.dev",
        path.display(),
        if dropped > 0 {
            format!(", {dropped} dropped: raise --trace-events")
        } else {
            String::new()
        }
    );
    Ok(())
}

/// Moves the progress bar on.
fn show_progress(bar: &ProgressBar, profile: &Profile, p: &Progress<'_>) {
    match p {
        Progress::Warmup { run, of } => bar.set_message(format!("warm-up {}/{of}", run + 1)),
        Progress::Measuring { repetition, of } => {
            bar.inc(u64::from(*repetition == 0) * u64::from(profile.measure.warmup));
            bar.set_message(format!("repetition {}/{of}", repetition + 1));
        }
        Progress::Measured(_) => bar.inc(1),
    }
}

/// Writes a run's result to `--output` after every repetition, keeping the
/// first write error.
struct Saver {
    file: Option<PathBuf>,
    format: Format,
    error: Option<String>,
}

impl Saver {
    fn new(output: &OutputArgs) -> Self {
        Saver {
            file: output.output.clone().filter(|p| p != Path::new("-")),
            format: output.format,
            error: None,
        }
    }

    fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    fn save(&mut self, result: &RunResult) {
        if let Some(path) = &self.file {
            if let Err(e) = write_atomically(path, &render_run(result, self.format)) {
                self.error
                    .get_or_insert(format!("cannot write {}: {e}", path.display()));
            }
        }
    }
}

/// Writes the final result, prints the table (and the result on stdout for
/// `-o -`) and says how the run ended.
fn finish_run(result: &RunResult, output: &OutputArgs, mut saver: Saver) -> ExitCode {
    // Also written when nothing was measured (a failure in warm-up).
    saver.save(result);
    let table = report::table(result);
    if to_stdout(output) {
        eprint!("{table}");
        print!("{}", render_run(result, output.format));
    } else {
        print!("{table}");
    }
    let _ = std::io::stdout().flush();
    if let Some(e) = saver.error {
        eprintln!("error: {e}");
        return ExitCode::from(1);
    }
    if result.status == Status::Failed {
        eprintln!(
            "error: the job failed: {}",
            result.failure.as_deref().unwrap_or("unknown cause")
        );
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

fn sweep(args: SweepArgs) -> ExitCode {
    let (run, dir) = (&args.run, &args.dir);
    let set = overrides(&run.profile, &run.measure.fields());
    let (profile, origin) = match builtin::load(run.profile.profile.as_deref(), &set) {
        Ok(p) => p,
        Err(e) => return usage_error(e),
    };
    if profile.sweep.is_empty() {
        return usage_error(format!(
            "{origin}: the profile has no [[sweep]] axes; use `taskbench run` for one point"
        ));
    }
    let points = profile.sweep_points().len();
    let runs = u64::from(profile.measure.warmup + profile.measure.repetitions);
    let bar = progress_bar(run.output.quiet);
    bar.set_prefix(profile.name.clone());
    bar.set_length(points as u64 * runs);
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(':', "");
    let file = match &run.output.output {
        Some(p) if p == Path::new("-") => None,
        Some(p) => Some(p.clone()),
        None => Some(dir.join(format!(
            "{}-{stamp}.{}",
            profile.name,
            match run.output.format {
                Format::Json => "json",
                Format::Csv => "csv",
                Format::Markdown => "md",
            }
        ))),
    };
    let format = run.output.format;
    let render = |s: &taskbench::bench::SweepResult| match format {
        Format::Json => serde_json::to_string_pretty(s).expect("results serialize") + "\n",
        Format::Csv => report::sweep_csv(s),
        Format::Markdown => report::sweep_markdown(s),
    };
    let mut write_error = None;
    let outcome = run_sweep(
        &profile,
        &set,
        &mut |point, total, p| match p {
            Progress::Warmup { .. } | Progress::Measured(_) => bar.inc(1),
            Progress::Measuring { repetition, of } => {
                bar.set_message(format!(
                    "point {}/{total}, repetition {}/{of}",
                    point + 1,
                    repetition + 1
                ));
            }
        },
        &mut |s| {
            if let Some(path) = &file {
                if let Err(e) = write_atomically(path, &render(s)) {
                    write_error.get_or_insert(format!("cannot write {}: {e}", path.display()));
                }
            }
        },
    );
    bar.finish_and_clear();
    let result = match outcome {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {origin}: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    let table = report::sweep_table(&result);
    if to_stdout(&run.output) {
        eprint!("{table}");
        print!("{}", render(&result));
    } else {
        print!("{table}");
        if let Some(path) = &file {
            println!("\nresult: {}", path.display());
        }
    }
    match chart::sweep_charts(&result, dir) {
        Ok(files) => {
            for f in files {
                eprintln!("chart:  {}", f.display());
            }
        }
        Err(e) => {
            write_error.get_or_insert(e);
        }
    }
    if let Some(e) = write_error {
        eprintln!("error: {e}");
        return ExitCode::from(1);
    }
    if result.status == Status::Failed {
        eprintln!("error: a sweep point failed (see the table)");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

fn compare(args: &CompareArgs) -> ExitCode {
    if !(args.threshold.is_finite() && args.threshold >= 0.0) {
        return usage_error(format!(
            "--threshold {} is not allowed: give a percentage of 0 or more",
            args.threshold
        ));
    }
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    let texts = read(&args.baseline).and_then(|b| Ok((b, read(&args.current)?)));
    let (baseline, current) = match texts {
        Ok(t) => t,
        Err(e) => return usage_error(e),
    };
    let names = (
        args.baseline.display().to_string(),
        args.current.display().to_string(),
    );
    match taskbench::bench::compare::compare(
        (&names.0, &names.1),
        &baseline,
        &current,
        args.threshold,
    ) {
        Ok(comparison) => {
            print!("{}", taskbench::bench::compare::table(&comparison));
            if comparison.has_regression() {
                eprintln!("error: a figure regressed beyond the noise");
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => usage_error(e),
    }
}

fn list() -> ExitCode {
    let mut names: Vec<&str> = Vec::new();
    for (name, text) in BUILTIN {
        match Profile::from_toml(text, name, &[]) {
            Ok(p) => {
                let sweep = if p.sweep.is_empty() { "" } else { " [sweep]" };
                println!("{name:<34} {}{sweep}", p.description);
            }
            Err(e) => println!("{name:<34} (invalid: {e})"),
        }
        names.push(name);
    }
    let local = Path::new("profiles");
    if let Ok(entries) = std::fs::read_dir(local) {
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        for path in files {
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            if names.contains(&stem) {
                continue;
            }
            match Profile::from_file(&path, &[]) {
                Ok(p) => println!("{:<34} {}", path.display(), p.description),
                Err(e) => println!("{:<34} (invalid: {e})", path.display()),
            }
        }
    }
    ExitCode::SUCCESS
}

fn validate(args: &ProfileArgs) -> ExitCode {
    match builtin::load(args.profile.as_deref(), &args.set) {
        Ok((profile, origin)) => {
            let points = profile.sweep_points().len();
            println!(
                "{origin}: ok: '{}', {} vertices, {} edges, {} task thread(s){}",
                profile.name,
                profile.vertices.len(),
                profile.edges.len(),
                profile.task_count(),
                if profile.sweep.is_empty() {
                    String::new()
                } else {
                    format!(", {points} sweep points")
                }
            );
            ExitCode::SUCCESS
        }
        Err(e) => usage_error(e),
    }
}

fn demo(args: &DemoArgs) -> ExitCode {
    let mut run = ChannelRun {
        partitioner: Partitioner::Rebalance,
        channels: args.channels,
        records: args.records,
        record_size: args.record_size,
        ..ChannelRun::default()
    };
    run.network.memory.segment_size = args.segment_size;
    if args.channels == 0 {
        return usage_error("--channels must be at least 1");
    }
    match run_channel(&run) {
        Ok(report) => {
            println!(
                "{} records of {} B over {} channel(s), {} KiB segments",
                report.records,
                args.record_size,
                args.channels,
                args.segment_size / 1024
            );
            println!(
                "  time          {:>12.3} ms",
                report.elapsed.as_secs_f64() * 1e3
            );
            println!("  records/s     {:>12.3} M", report.records_per_sec() / 1e6);
            println!(
                "  bytes/s       {:>12.3} MiB",
                report.bytes_per_sec() / (1 << 20) as f64
            );
            let share = |ns: u64| 100.0 * ns as f64 / report.elapsed.as_nanos() as f64;
            println!(
                "  writer waited {:>11.1} % for a buffer or credit ({} waits)",
                share(report.partition.hard_back_pressured_ns),
                report.partition.hard_back_pressure_waits
            );
            println!(
                "  allocations   {:>12} (during the run)",
                report.allocations.allocations
            );
            println!("  pools full    {:>12}", report.pools_full);
            ExitCode::SUCCESS
        }
        Err(e) => usage_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
