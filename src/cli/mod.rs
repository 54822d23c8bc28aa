//! The commands of the `taskbench` binary. Each reads as its stages: load
//! the profile, check where results go (before any job runs), measure while
//! saving, print the table, write the result, say how it ended.

pub mod ab;
pub mod compare;
pub mod demo;
pub mod error;
pub mod flink;
pub mod history;
pub mod inspect;
pub mod interrupt;
pub mod run;
pub mod save;
pub mod sweep;
pub mod term;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use taskbench::bench::builtin;
use taskbench::bench::export::Format;
use taskbench::bench::profile::{MAX_RECORDS, MAX_REPETITIONS, MAX_WARMUP};
use taskbench::bench::Profile;

pub use error::CliError;

/// The exit codes, as `--help` shows them.
pub const EXIT_CODES: &str = "Exit codes: 0 ok (no regression), 1 the run failed or a result could not be written, 2 bad usage or input, 3 a regression (compare, ab, history check; with --strict also an inconclusive verdict), 130/143 interrupted by SIGINT/SIGTERM (the result so far is written, status \"interrupted\"; one interrupted before anything was measured leaves an earlier file as it was).";

/// Apache Flink's task runtime in one process, and a benchmark engine
/// around it.
#[derive(Debug, Parser)]
#[command(
    version,
    about,
    after_help = EXIT_CODES
)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// What `taskbench` does.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs a profile (default: the built-in quickstart) and prints its figures.
    Run(RunCommand),
    /// Runs every point of a profile's sweep axes; writes JSON and SVG charts.
    Sweep(SweepArgs),
    /// Holds a result against a baseline: each figure's change with a
    /// confidence interval and a verdict; exits 3 on a regression, 2 when
    /// the two cannot be compared.
    Compare(CompareArgs),
    /// Runs two builds (or two configurations) as separate processes,
    /// interleaved and paired, until the verdict is decided or the budget
    /// is spent; exits 3 on a regression.
    Ab(ab::AbArgs),
    /// Results over time in an SQLite file: add, show (table and SVG
    /// trend charts), check (change points; exits 3 when the newest regime
    /// is a regression).
    History(history::HistoryArgs),
    /// Lists the built-in profiles and those in ./profiles.
    List,
    /// Checks a profile (and overrides) without running it.
    Validate(ProfileArgs),
    /// Prints the JSON Schema of result files (runs and sweeps).
    Schema,
    /// Two threads, one partition → one gate, no task runtime: the raw data
    /// path (serializer, pool, rings, deserializer).
    Demo(DemoArgs),
    /// The same profiles on real Apache Flink: a MiniCluster here, or a
    /// Flink cluster through its REST API.
    #[command(subcommand)]
    Flink(flink::FlinkCommand),
}

/// Which profile, with which overrides.
#[derive(Debug, Args)]
pub struct ProfileArgs {
    /// A profile file, or the name of a built-in profile (see `list`).
    pub profile: Option<String>,
    /// Overrides a profile field, e.g. `--set network.segment_size=64KiB`
    /// or `--set vertices.source.parallelism=2` (repeatable).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<String>,
}

/// Where the result goes.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Writes the result to FILE (`-` for stdout; the table then goes to
    /// stderr). FILE must be a regular file or not exist; it is checked
    /// before the first job, and replaced whole (a temporary file beside
    /// it, synced, renamed) as repetitions end and at the end.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Format of `--output`.
    #[arg(long, value_enum, default_value = "json")]
    pub format: Format,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// How many jobs run.
#[derive(Debug, Args)]
pub struct MeasureArgs {
    /// Measured repetitions (overrides `measure.repetitions`).
    #[arg(long, short, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_REPETITIONS)))]
    pub repetitions: Option<u32>,
    /// Warm-up runs (overrides `measure.warmup`).
    #[arg(long, short, value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_WARMUP)))]
    pub warmup: Option<u32>,
}

/// A profile run's arguments.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub profile: ProfileArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub measure: MeasureArgs,
}

/// `taskbench run`.
#[derive(Debug, Args)]
pub struct RunCommand {
    #[command(flatten)]
    pub run: RunArgs,
    /// Records every task thread's timeline in each measured repetition and
    /// writes it to FILE as Chrome trace-event JSON (open it in
    /// ui.perfetto.dev): busy, idle, soft and hard back-pressure, parks and
    /// wake-ups, buffers in use, flows from a flush to its read.
    #[arg(long, value_name = "FILE", help_heading = "Profiling")]
    pub trace: Option<PathBuf>,
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
    pub trace_events: u64,
    /// Counts instructions per record instead of timing: the run again
    /// under valgrind's callgrind, counting only the tasks' data path, not
    /// their waits (deterministic within ±0.1 %). `-r N` makes N callgrind
    /// runs of one repetition each.
    #[arg(long, conflicts_with_all = ["trace", "vs_flink"], help_heading = "Profiling")]
    pub instructions: bool,
    /// Also runs the profile on Apache Flink, interleaved with taskbench in
    /// one session (round k: taskbench, then Flink's JVM k), and prints the
    /// ratio per figure.
    #[arg(long, help_heading = "Flink")]
    pub vs_flink: bool,
    /// With --vs-flink: writes Flink's result (JSON) to FILE.
    #[arg(
        long,
        value_name = "FILE",
        requires = "vs_flink",
        help_heading = "Flink"
    )]
    pub flink_output: Option<PathBuf>,
    #[command(flatten)]
    pub flink: flink::FlinkArgs,
}

/// `taskbench sweep`.
#[derive(Debug, Args)]
pub struct SweepArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Directory for the JSON result (unless --output) and the charts.
    #[arg(long, default_value = "results")]
    pub dir: PathBuf,
}

/// `taskbench compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The baseline result (JSON from `run` or `sweep`).
    pub baseline: PathBuf,
    /// The result to judge.
    pub current: PathBuf,
    /// Smallest change that counts, in percent: a regression or an
    /// improvement needs its whole 95 % interval beyond it, "unchanged"
    /// its whole interval within it.
    #[arg(long, default_value_t = 2.0, value_parser = percentage)]
    pub threshold: f64,
    /// Smallest change in instructions per record that counts, in percent
    /// (the counts are deterministic within ±0.1 %).
    #[arg(long, default_value_t = 0.5, value_parser = percentage)]
    pub instructions_threshold: f64,
    /// An inconclusive verdict fails (exit 3) instead of passing.
    #[arg(long)]
    pub strict: bool,
    /// Compares results whose effective configurations differ (the
    /// differing fields are listed); refused otherwise (exit 2).
    #[arg(long)]
    pub allow_config_change: bool,
}

/// A percentage from 0 to 1000, checked where the flag is parsed.
pub fn percentage(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if (0.0..=1000.0).contains(&p) => Ok(p),
        _ => Err("give a percentage from 0 to 1000".into()),
    }
}

/// `taskbench demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Records to send (1 to 10^12).
    #[arg(long, default_value_t = 20_000_000, value_parser = clap::value_parser!(u64).range(1..=MAX_RECORDS))]
    pub records: u64,
    /// Bytes per record (8 to 64 MiB).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(8..=64 << 20))]
    pub record_size: u64,
    /// Subpartitions (= input channels), round-robin (1 to 65536).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub channels: u32,
    /// Segment size in bytes (power of two, 4096 ..= 1048576).
    #[arg(long, default_value_t = 32 * 1024, value_parser = clap::value_parser!(u64).range(4096..=1 << 20))]
    pub segment_size: u64,
}

/// A loaded profile: flags applied, and the assignments that made it.
pub struct Loaded {
    /// The profile as it will run.
    pub profile: Profile,
    /// Where it came from (a file or a built-in name), for messages.
    pub origin: String,
    /// Every assignment: the `--set`s, then what `-r`/`-w` set.
    pub overrides: Vec<String>,
}

/// Reads the profile, applies the overrides and the measure flags, and
/// checks it all.
pub fn load(profile: &ProfileArgs, measure: &MeasureArgs) -> Result<Loaded, CliError> {
    let (loaded, origin) = builtin::load(profile.profile.as_deref(), &profile.set)?;
    let profile_with_flags = loaded.with_measure(measure.repetitions, measure.warmup)?;
    let mut overrides = profile.set.clone();
    for (path, value) in [
        ("measure.repetitions", measure.repetitions),
        ("measure.warmup", measure.warmup),
    ] {
        if let Some(v) = value {
            overrides.push(format!("{path}={v}"));
        }
    }
    Ok(Loaded {
        profile: profile_with_flags,
        origin,
        overrides,
    })
}
