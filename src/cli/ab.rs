//! `taskbench ab`: check the sides → run them as separate processes,
//! interleaved and paired ([`taskbench::bench::ab`]), the result saved
//! after every run → per-pair ratios and the verdict → the result → exit
//! 0, 3 (a regression), or 1 (a run failed: the result keeps the runs
//! before it, marked failed).
//!
//! Each run is `BINARY run [PROFILE] --quiet --output - --format json`
//! with the side's `--set`s, so either side can be another build; its
//! figure is the median over the run's repetitions.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use clap::Args;
use taskbench::bench::ab::{self, AbResult, Budget, Order, Side, SideInfo, Stop};
use taskbench::bench::builtin;
use taskbench::bench::export::Format;
use taskbench::bench::figures;
use taskbench::bench::profile::shown;
use taskbench::bench::result::{check_schema_version, RunResult, Stats, Status};
use taskbench::bench::validate;
use taskbench::bench::verdict::{self, Direction, Verdict};
use taskbench::bench::ProfileError;

use super::interrupt::park_if_interrupted;
use super::save::{Saver, Target};
use super::term::{note, print_or_note};
use super::{percentage, CliError};

/// `taskbench ab`.
#[derive(Debug, Args)]
pub struct AbArgs {
    /// A profile file, or the name of a built-in profile (default:
    /// quickstart).
    pub profile: Option<String>,
    /// The baseline build (A); default: this taskbench.
    #[arg(long, value_name = "BINARY")]
    pub baseline: Option<PathBuf>,
    /// The candidate build (B); default: the baseline.
    #[arg(long, value_name = "BINARY")]
    pub candidate: Option<PathBuf>,
    /// Overrides a profile field on both sides (repeatable).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<String>,
    /// Overrides a profile field for A only (repeatable).
    #[arg(long = "a-set", value_name = "PATH=VALUE")]
    pub a_set: Vec<String>,
    /// Overrides a profile field for B only (repeatable).
    #[arg(long = "b-set", value_name = "PATH=VALUE")]
    pub b_set: Vec<String>,
    /// Measured repetitions of each run (default: the profile's).
    #[arg(long, short, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub repetitions: Option<u32>,
    /// Warm-up runs of each run (default: the profile's).
    #[arg(long, short, value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub warmup: Option<u32>,
    /// The figure compared: records_per_sec, bytes_per_sec,
    /// core_ns_per_record or latency_p99_ns (with --instructions:
    /// instructions_per_record).
    #[arg(long, default_value = "records_per_sec")]
    pub figure: String,
    /// Counts instructions per record under callgrind (`run
    /// --instructions`): deterministic, so one pair can decide.
    #[arg(long)]
    pub instructions: bool,
    /// Run order within pairs.
    #[arg(long, value_enum, default_value = "abba")]
    pub order: OrderArg,
    /// Seed of `--order random`.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Most runs of both sides together (at least 2).
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u64).range(2..=100_000))]
    pub max_runs: u64,
    /// Most wall time, e.g. `120s` or `10m`; a pair that would end past it
    /// is not started.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    pub max_time: Duration,
    /// Smallest change that counts, in percent (default 2, or 0.5 with
    /// --instructions).
    #[arg(long, value_parser = percentage)]
    pub threshold: Option<f64>,
    /// An inconclusive verdict fails (exit 3) instead of passing.
    #[arg(long)]
    pub strict: bool,
    /// Writes the session (every run, the pairing, the verdict) to FILE
    /// (`-` for stdout).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Format of `--output`.
    #[arg(long, value_enum, default_value = "json")]
    pub format: Format,
    /// No line per run on stderr.
    #[arg(long)]
    pub quiet: bool,
}

/// `--order`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OrderArg {
    /// A B, B A, A B, …
    Abba,
    /// A seeded coin per pair.
    Random,
}

/// The two sides as processes.
struct Processes {
    commands: [Vec<OsString>; 2],
    figure: String,
    quiet: bool,
    /// `--max-time`, and when it is spent: a run still going then is
    /// stopped.
    max_time: Duration,
    deadline: Instant,
}

impl Processes {
    fn command(&self, side: Side) -> &[OsString] {
        &self.commands[side as usize]
    }
}

impl ab::Runner for Processes {
    type Error = String;

    fn run(&mut self, side: Side) -> Result<f64, String> {
        let argv = self.command(side);
        let out = taskbench::child::run(
            Command::new(&argv[0]).args(&argv[1..]),
            Some(self.deadline),
            None,
        );
        park_if_interrupted();
        let out = out.map_err(|e| format!("cannot run {}: {e}", argv[0].to_string_lossy()))?;
        if out.timed_out {
            return Err(format!(
                "still running when --max-time ({}) was spent; stopped",
                humantime::format_duration(self.max_time)
            ));
        }
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
            return Err(format!(
                "{} ({})",
                out.status,
                tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
            ));
        }
        let value = figure_of(&out.stdout, &self.figure)?;
        if !self.quiet {
            note(&format!("{side:?}: {value:.6e}"));
        }
        Ok(value)
    }
}

/// The median of `figure` over the repetitions of a run's JSON result.
fn figure_of(stdout: &[u8], figure: &str) -> Result<f64, String> {
    let not_a_run =
        |e: &dyn std::fmt::Display| format!("its output is not a run's JSON result: {e}");
    let value: serde_json::Value = serde_json::from_slice(stdout).map_err(|e| not_a_run(&e))?;
    check_schema_version(&value).map_err(|e| not_a_run(&e))?;
    if value.get("kind").and_then(|k| k.as_str()) != Some("run") {
        return Err(not_a_run(&format!(
            "its kind is {}",
            value.get("kind").unwrap_or(&serde_json::Value::Null)
        )));
    }
    let run: RunResult = serde_json::from_value(value).map_err(|e| not_a_run(&e))?;
    if run.status != Status::Complete {
        let why = run
            .failure
            .as_deref()
            .map(|f| format!(": {f}"))
            .unwrap_or_default();
        let status = format!("{:?}", run.status).to_lowercase();
        return Err(format!("its result is {status}, not complete{why}"));
    }
    if run.instructions.is_none() {
        validate::repetitions(&run.repetitions).map_err(|e| e.to_string())?;
    }
    let all = figures::of_run(&run);
    let found = all.iter().find(|f| f.name == figure).ok_or_else(|| {
        let names: Vec<&str> = all.iter().map(|f| f.name).collect();
        format!(
            "its result has no figure {figure} (it has {})",
            names.join(", ")
        )
    })?;
    validate::positive(figure, &found.values).map_err(|e| e.to_string())?;
    Ok(Stats::of(&found.values).median)
}

const FIGURES: [&str; 5] = [
    "records_per_sec",
    "bytes_per_sec",
    "core_ns_per_record",
    "latency_p99_ns",
    "instructions_per_record",
];

pub fn ab(args: AbArgs) -> Result<(), CliError> {
    let figure = if args.instructions {
        "instructions_per_record".to_string()
    } else {
        args.figure.clone()
    };
    if !FIGURES.contains(&figure.as_str()) || (figure.starts_with("instr") != args.instructions) {
        return Err(CliError::Usage(format!(
            "--figure {}: give one of {} (instructions_per_record goes with --instructions)",
            figure.escape_debug(),
            FIGURES[..4].join(", ")
        )));
    }
    let direction = Direction::of_figure(&figure);
    let one_way = match args.format {
        Format::GithubActionBenchmark => {
            Some((Direction::BiggerIsBetter, "github-action-benchmark-smaller"))
        }
        Format::GithubActionBenchmarkSmaller => {
            Some((Direction::SmallerIsBetter, "github-action-benchmark"))
        }
        _ => None,
    };
    if let Some((writes, other)) =
        one_way.filter(|(writes, _)| args.output.is_some() && *writes != direction)
    {
        let way = |d| {
            if d == Direction::BiggerIsBetter {
                "bigger"
            } else {
                "smaller"
            }
        };
        return Err(CliError::Usage(format!(
            "--format {} writes only figures where {} is better, and in {figure} {} is: use --format {other}",
            clap::ValueEnum::to_possible_value(&args.format).map_or_else(String::new, |v| v.get_name().to_string()),
            way(writes),
            way(direction)
        )));
    }
    let commands = commands(&args)?;
    let target = Target::check(args.output.as_deref())?;
    let settings = ab::Settings {
        order: match args.order {
            OrderArg::Abba => Order::Abba,
            OrderArg::Random => Order::Random { seed: args.seed },
        },
        budget: Budget {
            max_runs: args.max_runs as usize,
            max_time: Some(args.max_time),
        },
        direction,
        verdict: verdict::Settings {
            min_effect: args.threshold.map_or(
                if args.instructions {
                    verdict::DEFAULT_EXACT_MIN_EFFECT
                } else {
                    verdict::DEFAULT_MIN_EFFECT
                },
                |t| t / 100.0,
            ),
            ..verdict::Settings::default()
        },
        exact_tolerance: args.instructions.then_some(verdict::EXACT_TOLERANCE),
    };
    let mut session = AbResult::new(&figure, settings);
    session.profile = args.profile.clone().unwrap_or_else(|| "quickstart".into());
    session.sides = [Side::A, Side::B]
        .into_iter()
        .map(|side| SideInfo {
            side,
            command: commands[side as usize]
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
        })
        .collect();
    let mut processes = Processes {
        commands,
        figure,
        quiet: args.quiet,
        max_time: args.max_time,
        deadline: Instant::now() + args.max_time,
    };
    let to_stdout = matches!(target, Some(Target::Stdout));
    // Saved from its first run on, and once more when it ends: a failed
    // session is written even without a run (its `failure` says why); one
    // interrupted before its first run leaves an earlier file at
    // `--output` as it was, as `run` does.
    let saver = Saver::new(target, args.format);
    let outcome = ab::run(&mut processes, &mut session, &mut |s| saver.ab(s));
    saver.ab(&session);
    CliError::all(vec![
        print_or_note(&report(&session), to_stdout),
        saver.finish(),
        match outcome {
            Ok(()) => ended(&session, args.strict),
            Err(e) => Err(CliError::Failed(e.to_string())),
        },
    ])
}

/// The command line of each side's runs, the profile and `--set`s checked
/// here first (bad input is exit 2 before any run).
fn commands(args: &AbArgs) -> Result<[Vec<OsString>; 2], CliError> {
    let this = std::env::current_exe()
        .map_err(|e| CliError::Failed(format!("cannot find this executable: {e}")))?;
    let a_bin = args.baseline.clone().unwrap_or(this);
    let b_bin = args.candidate.clone().unwrap_or_else(|| a_bin.clone());
    for bin in [&a_bin, &b_bin] {
        use std::os::unix::fs::PermissionsExt;
        let problem = match std::fs::metadata(bin) {
            Ok(m) if !m.is_file() => "not a file",
            Ok(m) if m.permissions().mode() & 0o111 == 0 => "not executable",
            Ok(_) => continue,
            Err(_) => "not a file",
        };
        return Err(CliError::Usage(format!(
            "{}: {problem}; give the path of a taskbench binary",
            bin.display()
        )));
    }
    if args.max_time < Duration::from_secs(1) {
        return Err(CliError::Usage(format!(
            "--max-time {} leaves no time for a pair; give at least 1s (default 120s)",
            humantime::format_duration(args.max_time)
        )));
    }
    let side = |bin: &PathBuf, own: &[String], flag: &str| -> Result<Vec<OsString>, CliError> {
        let sets: Vec<String> = args.set.iter().chain(own).cloned().collect();
        let (profile, origin) =
            builtin::load(args.profile.as_deref(), &sets).map_err(|e| blame(e, args, own, flag))?;
        if args.figure == "latency_p99_ns" && !profile.measures_latency() {
            return Err(CliError::Usage(format!(
                "--figure latency_p99_ns: {origin} measures no latency (set measure.latency=true)"
            )));
        }
        let mut argv: Vec<OsString> = vec![bin.clone().into(), "run".into()];
        argv.extend(args.profile.iter().map(OsString::from));
        for s in &sets {
            argv.extend(["--set".into(), s.into()]);
        }
        for (flag, v) in [("-r", args.repetitions), ("-w", args.warmup)] {
            if let Some(v) = v {
                argv.extend([flag.into(), v.to_string().into()]);
            }
        }
        if args.instructions {
            argv.push("--instructions".into());
        }
        argv.extend(["--quiet", "--output", "-", "--format", "json"].map(OsString::from));
        Ok(argv)
    };
    Ok([
        side(&a_bin, &args.a_set, "--a-set")?,
        side(&b_bin, &args.b_set, "--b-set")?,
    ])
}

/// A side's profile error, blaming what was typed: an assignment of the
/// side's own (`flag`, i.e. `--a-set` or `--b-set`) is named by that flag,
/// and an error the side's assignments cause only together with the
/// profile says which ones.
fn blame(e: ProfileError, args: &AbArgs, own: &[String], flag: &str) -> CliError {
    let mut message = e.to_string();
    for s in own.iter().filter(|s| !args.set.contains(s)) {
        let typed = format!("--set {}", shown(s));
        if message.contains(&typed) {
            message = message.replace(&typed, &format!("{flag} {}", shown(s)));
            return CliError::Usage(message);
        }
    }
    let without_own = builtin::load(args.profile.as_deref(), &args.set).is_ok();
    if without_own && !own.is_empty() {
        let given: Vec<String> = own.iter().map(|s| format!("{flag} {}", shown(s))).collect();
        message = format!("{message} (with {})", given.join(" "));
    }
    CliError::Usage(message)
}

/// Every pair's ratio, then the verdict with its interval.
fn report(r: &AbResult) -> String {
    let mut out = format!("{} A/B, {} (B / A per pair):\n", r.profile, r.figure);
    for (i, p) in r.pairs.iter().enumerate() {
        let first = if p.a < p.b { "AB" } else { "BA" };
        let _ = writeln!(
            out,
            "  pair {:>3} {first}  A {:.6e}  B {:.6e}  ratio {:.4}",
            i + 1,
            r.runs[p.a].figure,
            r.runs[p.b].figure,
            p.ratio
        );
    }
    let why = match r.stop {
        Some(Stop::Decided) => "decided",
        Some(Stop::MaxRuns) => "--max-runs spent",
        Some(Stop::MaxTime) => "--max-time spent",
        None => "a run failed",
    };
    let elapsed = r.runs.last().map_or(0.0, |x| x.elapsed_secs);
    let _ = match &r.judgement {
        Some(j) => writeln!(
            out,
            "verdict: {j}\n({} runs in {elapsed:.1} s, {why})",
            r.runs.len()
        ),
        None => writeln!(out, "verdict: inconclusive: no pair was run ({why})"),
    };
    out
}

fn ended(r: &AbResult, strict: bool) -> Result<(), CliError> {
    match r.verdict() {
        Verdict::Regression => Err(CliError::Regression(format!(
            "B is worse than A in {}",
            r.figure
        ))),
        Verdict::Inconclusive if strict => Err(CliError::Regression(
            "inconclusive, which --strict does not pass".into(),
        )),
        _ => Ok(()),
    }
}
