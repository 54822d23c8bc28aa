//! `taskbench run`: load → check outputs → measure (saving as it goes) →
//! table → result → trace → how the job ended.

use std::ffi::OsString;

use taskbench::bench::engine::summarize;
use taskbench::bench::instructions;
use taskbench::bench::output::OutputFile;
use taskbench::bench::result::Instructions;
use taskbench::bench::trace_file::{self, JobTrace};
use taskbench::bench::{report, run_profile_with, Progress, RunOptions, RunResult, Status};

use super::save::{Saver, Target};
use super::term::{note, print_or_note, progress_bar, show_progress};
use super::{flink, load, CliError, RunCommand};

pub fn run(args: RunCommand) -> Result<(), CliError> {
    if args.vs_flink {
        return flink::run_vs_flink(args);
    }
    if args.instructions {
        return instructions(&args);
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

/// `run --instructions`: load → check valgrind and the output → one
/// callgrind child per run → table → result.
fn instructions(args: &RunCommand) -> Result<(), CliError> {
    let loaded = load(&args.run.profile, &args.run.measure)?;
    instructions::check_valgrind().map_err(|e| CliError::Usage(e.to_string()))?;
    let target = Target::check(args.run.output.output.as_deref())?;
    let to_stdout = matches!(target, Some(Target::Stdout));
    let saver = Saver::new(target, args.run.output.format);
    let exe = std::env::current_exe()
        .map_err(|e| CliError::Failed(format!("cannot find this executable: {e}")))?;
    let mut child: Vec<OsString> = vec!["run".into()];
    child.extend(args.run.profile.profile.iter().map(OsString::from));
    for s in &args.run.profile.set {
        child.extend(["--set".into(), s.into()]);
    }
    child.extend(["-w", "0", "-r", "1", "--quiet"].map(OsString::from));
    let runs = args.run.measure.repetitions.unwrap_or(1);
    let mut result: Option<RunResult> = None;
    let mut counts = Instructions {
        tool: "callgrind".into(),
        counted: instructions::COUNTED.map(String::from).to_vec(),
        runs: Vec::new(),
        records: Vec::new(),
        per_record: Vec::new(),
    };
    for run in 0..runs {
        let counted = instructions::count(&exe, &child).map_err(|e| {
            let message = format!("{}: {e}", loaded.origin);
            match e.exit_code() {
                2 => CliError::Usage(message),
                _ => CliError::Failed(message),
            }
        })?;
        ended(&counted.result, "the job under callgrind")?;
        let records: u64 = counted.result.repetitions.iter().map(|r| r.records).sum();
        counts.runs.push(counted.instructions);
        counts.records.push(records);
        counts
            .per_record
            .push(counted.instructions as f64 / records.max(1) as f64);
        let r = result.get_or_insert(counted.result.clone());
        if run > 0 {
            r.repetitions
                .extend(counted.result.repetitions.into_iter().map(|mut rep| {
                    rep.index = run;
                    rep
                }));
        }
    }
    let mut result = result.expect("at least one run");
    result.overrides.clone_from(&loaded.overrides);
    result.warmup_runs = 0;
    result.summary = Some(summarize(&loaded.profile, &result.repetitions, None));
    result.instructions = Some(counts);
    saver.measured(&result);
    CliError::all(vec![
        print_or_note(&report::table(&result), to_stdout),
        saver.finish(),
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
