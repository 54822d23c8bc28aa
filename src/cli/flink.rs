//! `taskbench flink spec|run` and `taskbench run --vs-flink`.

use clap::{Args, Subcommand};
use indicatif::ProgressBar;
use taskbench::bench::builtin;
use taskbench::bench::export::Format;
use taskbench::bench::flink::rest::parse_cluster_url;
use taskbench::bench::flink::vs::{ratio_table, run_side_by_side, Side};
use taskbench::bench::flink::{run_flink, FlinkOptions, JobSpec};
use taskbench::bench::{report, Progress};

use super::run::ended;
use super::save::{Saver, Target};
use super::term::{print, print_or_note, progress_bar, show_progress};
use super::{load, CliError, Loaded, ProfileArgs, RunArgs, RunCommand};

#[derive(Debug, Subcommand)]
pub enum FlinkCommand {
    /// Prints the profile as the JSON job spec Flink's job is built from
    /// (refused, naming the field, when Flink's API cannot express it).
    Spec(ProfileArgs),
    /// Runs a profile on Apache Flink (a local MiniCluster, or --cluster)
    /// with taskbench's measurement scheme; the result is taskbench's, with
    /// `"engine": "flink"`. Installs Flink from PyPI on first use.
    Run(FlinkRunArgs),
}

#[derive(Debug, Args)]
pub struct FlinkRunArgs {
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    flink: FlinkArgs,
}

/// How to run Flink.
#[derive(Debug, Args)]
#[command(next_help_heading = "Flink")]
pub struct FlinkArgs {
    /// MiniCluster JVMs the jobs run in, one after the other, each with the
    /// profile's warm-up jobs and repetitions (JIT state differs between
    /// JVMs); with --vs-flink, the rounds. Default 3, or 1 with --cluster.
    #[arg(long, value_name = "N")]
    forks: Option<u32>,
    /// The apache-flink-libraries version installed and run locally
    /// (default 2.3.0).
    #[arg(long, value_name = "VERSION")]
    flink_version: Option<String>,
    /// A Flink cluster's REST address: the job is uploaded and run there
    /// instead of in a local MiniCluster.
    #[arg(long, value_name = "http://HOST:PORT")]
    cluster: Option<String>,
    /// JVM options of the local MiniCluster, separated by spaces.
    #[arg(
        long,
        value_name = "OPTIONS",
        default_value = "-Xms2g -Xmx2g",
        allow_hyphen_values = true
    )]
    jvm_opts: String,
    /// How long one Flink job may run before it is canceled and the run
    /// fails (e.g. 90s, 10m).
    #[arg(long, value_name = "DURATION", default_value = "10m")]
    job_timeout: humantime::Duration,
}

impl FlinkArgs {
    fn options(&self) -> Result<FlinkOptions, String> {
        let cluster = self
            .cluster
            .as_deref()
            .map(parse_cluster_url)
            .transpose()
            .map_err(|e| e.to_string())?;
        let forks = match (self.forks, &cluster) {
            (Some(0), _) => return Err("--forks 0: run at least 1 JVM".into()),
            (Some(n), Some(_)) if n > 1 => {
                return Err(format!(
                    "--forks {n} starts MiniCluster JVMs, and a remote cluster's JVMs are its own: use --repetitions for more jobs"
                ))
            }
            (Some(n), _) if n > 100 => return Err(format!("--forks {n}: at most 100 JVMs")),
            (Some(n), _) => n,
            (None, Some(_)) => 1,
            (None, None) => 3,
        };
        if self.job_timeout.is_zero() {
            return Err("--job-timeout 0: give a jobs time to run, e.g. 10m".into());
        }
        Ok(FlinkOptions {
            flink_version: self.flink_version.clone(),
            cluster,
            forks,
            jvm_options: self
                .jvm_opts
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            job_timeout: *self.job_timeout,
            ..FlinkOptions::default()
        })
    }
}

pub fn flink(command: FlinkCommand) -> Result<(), CliError> {
    match command {
        FlinkCommand::Spec(args) => spec(&args),
        FlinkCommand::Run(args) => run(args),
    }
}

fn spec(args: &ProfileArgs) -> Result<(), CliError> {
    let (profile, origin) = builtin::load(args.profile.as_deref(), &args.set)?;
    let spec = JobSpec::from_profile(&profile)
        .map_err(|e| CliError::Usage(format!("{origin}: Flink cannot run this profile: {e}")))?;
    print(&format!(
        "{}\n",
        serde_json::to_string_pretty(&spec).expect("a spec serializes")
    ))
}

/// A profile and its Flink options.
fn load_with(run: &RunArgs, flink: &FlinkArgs) -> Result<(Loaded, FlinkOptions), CliError> {
    let loaded = load(&run.profile, &run.measure)?;
    let options = flink.options().map_err(CliError::Usage)?;
    Ok((loaded, options))
}

/// Prints a status line above the progress bar (unless --quiet).
fn status_printer(bar: &ProgressBar, quiet: bool) -> impl FnMut(&str) + '_ {
    move |message: &str| {
        if !quiet {
            bar.suspend(|| super::term::note(message));
        }
    }
}

fn run(args: FlinkRunArgs) -> Result<(), CliError> {
    let (loaded, options) = load_with(&args.run, &args.flink)?;
    let output = &args.run.output;
    let target = Target::check(output.output.as_deref())?;
    let to_stdout = matches!(target, Some(Target::Stdout));
    let saver = Saver::new(target, output.format);
    let profile = &loaded.profile;
    let bar = progress_bar(
        output.quiet,
        format!("{} on Flink", profile.name),
        profile.jobs() * u64::from(options.forks),
    );
    let outcome = run_flink(
        profile,
        &loaded.overrides,
        options,
        &mut status_printer(&bar, output.quiet),
        &mut |p| {
            show_progress(&bar, profile, &p);
            if let Progress::Measured(result) = p {
                saver.measured(result);
            }
        },
    );
    bar.finish_and_clear();
    let result = match outcome {
        Ok(result) => result,
        Err(e) => {
            saver.failed(&e.to_string());
            return CliError::all(vec![
                Err(CliError::flink(&loaded.origin, e)),
                saver.finish(),
            ]);
        }
    };
    saver.measured(&result);
    CliError::all(vec![
        print_or_note(&report::table(&result), to_stdout),
        saver.finish(),
        ended(&result, "the job"),
    ])
}

pub fn run_vs_flink(args: RunCommand) -> Result<(), CliError> {
    let (loaded, options) = load_with(&args.run, &args.flink)?;
    let output = &args.run.output;
    let target = Target::check(output.output.as_deref())?;
    let to_stdout = matches!(target, Some(Target::Stdout));
    let flink_target = match args.flink_output.as_deref() {
        Some(p) if p == std::path::Path::new("-") => {
            return Err(CliError::Usage(
                "--flink-output -: give a file (stdout carries taskbench's result)".into(),
            ))
        }
        other => Target::check(other)?,
    };
    let saver = Saver::new(target, output.format);
    let flink_saver = Saver::new(flink_target, Format::Json);
    let profile = &loaded.profile;
    let bar = progress_bar(
        output.quiet,
        format!("{} vs Flink", profile.name),
        2 * profile.jobs() * u64::from(options.forks),
    );
    let outcome = run_side_by_side(
        profile,
        &loaded.overrides,
        options,
        &mut status_printer(&bar, output.quiet),
        &mut |side, p| {
            show_progress(&bar, profile, &p);
            if let (Side::Flink, Progress::Measured(result)) = (side, &p) {
                flink_saver.measured(result);
            }
        },
    );
    bar.finish_and_clear();
    let (ours, flink) = outcome.map_err(|e| CliError::flink(&loaded.origin, e))?;
    saver.measured(&ours);
    flink_saver.measured(&flink);
    let text = format!(
        "{}\n{}{}",
        report::table(&ours),
        report::table(&flink),
        ratio_table(&ours, &flink)
    );
    CliError::all(vec![
        print_or_note(&text, to_stdout),
        saver.finish(),
        flink_saver.finish(),
        ended(&ours, "the job"),
        ended(&flink, "the Flink job"),
    ])
}
