//! `taskbench run`: load → check outputs → measure (saving as it goes) →
//! table → result → trace → how the job ended.

use taskbench::bench::output::OutputFile;
use taskbench::bench::trace_file::{self, JobTrace};
use taskbench::bench::{report, run_profile_with, Progress, RunOptions, RunResult, Status};

use super::save::{Saver, Target};
use super::term::{note, print_or_note, progress_bar, show_progress};
use super::{flink, load, CliError, RunCommand};

pub fn run(args: RunCommand) -> Result<(), CliError> {
    if args.vs_flink {
        return flink::run_vs_flink(args);
    }
    let loaded = load(&args.run.profile, &args.run.measure)?;
    let target = Target::check(args.run.output.output.as_deref())?;
    let to_stdout = matches!(target, Some(Target::Stdout));
    let trace = args.trace.as_deref().map(OutputFile::check).transpose()?;
    let saver = Saver::new(target, args.run.output.format);

    let profile = &loaded.profile;
    let options = RunOptions {
        trace_events: if trace.is_some() {
            args.trace_events as usize
        } else {
            0
        },
    };
    let bar = progress_bar(args.run.output.quiet, profile.name.clone(), profile.jobs());
    let outcome = run_profile_with(profile, &loaded.overrides, &options, &mut |p| {
        show_progress(&bar, profile, &p);
        if let Progress::Measured(result) = p {
            saver.measured(result);
        }
    });
    bar.finish_and_clear();
    let out = match outcome {
        Ok(out) => out,
        Err(e) => {
            // What was measured before the error stays, marked failed.
            saver.failed(&e.to_string());
            return CliError::all(vec![Err(CliError::run(&loaded.origin, e)), saver.finish()]);
        }
    };

    saver.measured(&out.result);
    CliError::all(vec![
        print_or_note(&report::table(&out.result), to_stdout),
        saver.finish(),
        write_trace(trace.as_ref(), &out.traces),
        ended(&out.result, "the job"),
    ])
}

/// How a result's job ended, as an error when it failed.
pub fn ended(result: &RunResult, what: &str) -> Result<(), CliError> {
    match result.status {
        Status::Failed => Err(CliError::Failed(format!(
            "{what} failed: {}",
            result.failure.as_deref().unwrap_or("unknown cause")
        ))),
        _ => Ok(()),
    }
}

/// Writes the timelines and says where they went.
fn write_trace(file: Option<&OutputFile>, traces: &[JobTrace]) -> Result<(), CliError> {
    let Some(file) = file else { return Ok(()) };
    file.write_with(|mut out| trace_file::write(&mut out, traces))?;
    let events: usize = traces
        .iter()
        .flat_map(|t| &t.threads)
        .map(|t| t.events.len())
        .sum();
    let dropped = trace_file::dropped(traces);
    note(&format!(
        "trace: {} ({events} events{}); open it in https://ui.perfetto.dev",
        file.path().display(),
        if dropped > 0 {
            format!(", {dropped} dropped: raise --trace-events")
        } else {
            String::new()
        }
    ));
    Ok(())
}
