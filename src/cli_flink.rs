//! `taskbench flink spec|run` and `taskbench run --vs-flink`.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use indicatif::ProgressBar;
use taskbench::bench::builtin;
use taskbench::bench::flink::rest::parse_cluster_url;
use taskbench::bench::flink::vs::{ratio_table, run_side_by_side, Side};
use taskbench::bench::flink::{run_flink, FlinkOptions, JobSpec};
use taskbench::bench::{report, Profile, Progress};

use super::{
    finish_run, overrides, progress_bar, show_progress, to_stdout, usage_error, ProfileArgs,
    RunArgs, RunCommand, Saver,
};

#[derive(Debug, Subcommand)]
pub(crate) enum FlinkCommand {
    /// Prints the profile as the JSON job spec Flink's job is built from
    /// (refused, naming the field, when Flink's API cannot express it).
    Spec(ProfileArgs),
    /// Runs a profile on Apache Flink (a local MiniCluster, or --cluster)
    /// with taskbench's measurement scheme; the result is taskbench's, with
    /// `"engine": "flink"`. Installs Flink from PyPI on first use.
    Run(FlinkRunArgs),
}

#[derive(Debug, Args)]
pub(crate) struct FlinkRunArgs {
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    flink: FlinkArgs,
}

/// How to run Flink.
#[derive(Debug, Args)]
#[command(next_help_heading = "Flink")]
pub(crate) struct FlinkArgs {
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

pub(crate) fn flink(command: FlinkCommand) -> ExitCode {
    match command {
        FlinkCommand::Spec(args) => spec(&args),
        FlinkCommand::Run(args) => run(args),
    }
}

fn spec(args: &ProfileArgs) -> ExitCode {
    let (profile, origin) = match builtin::load(args.profile.as_deref(), &args.set) {
        Ok(p) => p,
        Err(e) => return usage_error(e),
    };
    match JobSpec::from_profile(&profile) {
        Ok(spec) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&spec).expect("a spec serializes")
            );
            ExitCode::SUCCESS
        }
        Err(e) => usage_error(format!("{origin}: Flink cannot run this profile: {e}")),
    }
}

/// A profile and its Flink options, or the exit code of bad input.
fn load(
    run: &RunArgs,
    flink: &FlinkArgs,
) -> Result<(Profile, String, Vec<String>, FlinkOptions), ExitCode> {
    let set = overrides(&run.profile, &run.measure.fields());
    let (profile, origin) =
        builtin::load(run.profile.profile.as_deref(), &set).map_err(usage_error)?;
    let options = flink.options().map_err(usage_error)?;
    Ok((profile, origin, set, options))
}

/// Prints a status line above the progress bar (unless --quiet).
fn status_printer(bar: &ProgressBar, quiet: bool) -> impl FnMut(&str) + '_ {
    move |message: &str| {
        if !quiet {
            bar.suspend(|| eprintln!("{message}"));
        }
    }
}

fn run(args: FlinkRunArgs) -> ExitCode {
    let (profile, origin, set, options) = match load(&args.run, &args.flink) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let bar = progress_bar(args.run.output.quiet);
    bar.set_prefix(format!("{} on Flink", profile.name));
    bar.set_length(
        u64::from(profile.measure.warmup + profile.measure.repetitions) * u64::from(options.forks),
    );
    let mut saver = Saver::new(&args.run.output);
    let outcome = run_flink(
        &profile,
        &set,
        options,
        &mut status_printer(&bar, args.run.output.quiet),
        &mut |p| {
            show_progress(&bar, &profile, &p);
            if let Progress::Measured(result) = p {
                saver.save(result);
            }
        },
    );
    bar.finish_and_clear();
    match outcome {
        Ok(result) => finish_run(&result, &args.run.output, saver),
        Err(e) => {
            eprintln!("error: {origin}: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

pub(crate) fn run_vs_flink(args: RunCommand) -> ExitCode {
    let (profile, origin, set, options) = match load(&args.run, &args.flink) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let output = &args.run.output;
    let bar = progress_bar(output.quiet);
    bar.set_prefix(format!("{} vs Flink", profile.name));
    bar.set_length(
        2 * u64::from(profile.measure.warmup + profile.measure.repetitions)
            * u64::from(options.forks),
    );
    let saver = Saver::new(output);
    let mut flink_saver = Saver::new(&super::OutputArgs {
        output: args.flink_output.clone(),
        format: report::Format::Json,
        quiet: true,
    });
    let outcome = run_side_by_side(
        &profile,
        &set,
        options,
        &mut status_printer(&bar, output.quiet),
        &mut |side, p| {
            show_progress(&bar, &profile, &p);
            if let (Side::Flink, Progress::Measured(result)) = (side, &p) {
                flink_saver.save(result);
            }
        },
    );
    bar.finish_and_clear();
    let (ours, flink) = match outcome {
        Ok(results) => results,
        Err(e) => {
            eprintln!("error: {origin}: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    let code = finish_run(&ours, output, saver);
    flink_saver.save(&flink);
    let text = format!("\n{}{}", report::table(&flink), ratio_table(&ours, &flink));
    if to_stdout(output) {
        eprint!("{text}");
    } else {
        print!("{text}");
    }
    if let Some(e) = flink_saver.error() {
        eprintln!("error: {e}");
        return ExitCode::from(1);
    }
    if let Some(failure) = &flink.failure {
        eprintln!("error: the Flink job failed: {failure}");
        return ExitCode::from(1);
    }
    code
}
