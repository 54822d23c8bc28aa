//! `taskbench sweep`: load → check the result file and the charts →
//! measure every point (saving after each) → table → result → charts →
//! how it ended.

use std::path::Path;

use taskbench::bench::chart::Charts;
use taskbench::bench::export::exporter;
use taskbench::bench::output::OutputFile;
use taskbench::bench::profile::shown;
use taskbench::bench::{report, run_sweep, Profile, Progress, Status};

use super::save::{Saver, Target};
use super::term::{note, print_or_note, progress_bar};
use super::{load, CliError, MeasureArgs, SweepArgs};

pub fn sweep(args: SweepArgs) -> Result<(), CliError> {
    let (run, dir) = (&args.run, &args.dir);
    let loaded = load(&run.profile, &run.measure)?;
    let profile = &loaded.profile;
    if profile.sweep.is_empty() {
        return Err(CliError::Usage(format!(
            "{}: the profile has no [[sweep]] axes; use `taskbench run` for one point",
            loaded.origin
        )));
    }
    refuse_swept_overrides(profile, &run.profile.set, &run.measure)?;
    let target = match Target::check(run.output.output.as_deref())? {
        Some(target) => target,
        None => Target::File(OutputFile::check(&dir.join(result_name(
            dir,
            &profile.name,
            exporter(run.output.format).extension(),
            std::time::SystemTime::now(),
        )?))?),
    };
    let to_stdout = matches!(target, Target::Stdout);
    let result_path = match &target {
        Target::File(f) => Some(f.path().to_path_buf()),
        Target::Stdout => None,
    };
    let charts = Charts::check(dir, &profile.name)?;
    let saver = Saver::new(Some(target), run.output.format);

    let points = profile.sweep_points().len() as u64;
    let bar = progress_bar(
        run.output.quiet,
        profile.name.clone(),
        points * profile.jobs(),
    );
    let outcome = run_sweep(
        profile,
        &loaded.overrides,
        &mut |point, total, p| match p {
            Progress::Warmup { .. } | Progress::Measured(_) => bar.inc(1),
            Progress::Measuring { repetition, of } => bar.set_message(format!(
                "point {}/{total}, repetition {}/{of}",
                point + 1,
                repetition + 1
            )),
        },
        &mut |s| saver.swept(s),
    );
    bar.finish_and_clear();
    let result = match outcome {
        Ok(result) => result,
        Err(e) => {
            saver.failed(&e.to_string());
            return CliError::all(vec![Err(CliError::run(&loaded.origin, e)), saver.finish()]);
        }
    };

    let mut table = report::sweep_table(&result);
    if let Some(path) = &result_path {
        table.push_str(&format!("\nresult: {}\n", path.display()));
    }
    let mut outcomes = vec![print_or_note(&table, to_stdout), saver.finish()];
    let (drawn, chart_errors) = charts.draw(&result);
    for f in drawn {
        note(&format!("chart:  {}", f.display()));
    }
    outcomes.extend(chart_errors.into_iter().map(|e| Err(CliError::Failed(e))));
    if result.status == Status::Failed {
        outcomes.push(Err(CliError::Failed(
            "a sweep point failed (see the table)".into(),
        )));
    }
    CliError::all(outcomes)
}

/// An override of a swept field would run every point with the override
/// while labelling it with the axis's value: refused, naming what the user
/// typed.
fn refuse_swept_overrides(
    profile: &Profile,
    sets: &[String],
    measure: &MeasureArgs,
) -> Result<(), CliError> {
    let typed = sets.iter().map(|a| {
        (
            format!("--set {}", shown(a)),
            a.split('=').next().unwrap_or("").to_string(),
        )
    });
    let flags = [
        ("--repetitions", "measure.repetitions", measure.repetitions),
        ("--warmup", "measure.warmup", measure.warmup),
    ]
    .into_iter()
    .filter_map(|(flag, path, v)| Some((format!("{flag} {}", v?), path.to_string())));
    for (given, path) in typed.chain(flags) {
        if let Some(axis) = profile.axis_of(&path) {
            return Err(CliError::Usage(format!(
                "{given}: {} is a sweep axis, set at every point; drop one of the two",
                axis.set
            )));
        }
    }
    Ok(())
}

/// The default result file in `dir`: the profile's name and the time to
/// the millisecond, with `-2`, `-3`, … when a sweep of the same profile in
/// the same millisecond already took the name (a result is never written
/// over).
fn result_name(
    dir: &Path,
    profile: &str,
    extension: &str,
    now: std::time::SystemTime,
) -> Result<String, CliError> {
    let stamp = humantime::format_rfc3339_millis(now)
        .to_string()
        .replace(':', "");
    let base = format!("{profile}-{stamp}");
    if Path::new(&base).components().count() != 1 {
        return Err(CliError::Usage(format!(
            "the profile's name '{profile}' cannot name a file"
        )));
    }
    let name = |n: u32| match n {
        1 => format!("{base}.{extension}"),
        n => format!("{base}-{n}.{extension}"),
    };
    let free = (1..=1000)
        .map(name)
        .find(|f| dir.join(f).symlink_metadata().is_err());
    free.ok_or_else(|| {
        CliError::Usage(format!(
            "{}: 1000 results named {base}-N already",
            dir.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_name_already_taken_gets_the_next_number() {
        let dir = tempfile::tempdir().unwrap();
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_796_000_000_123);
        let name = || result_name(dir.path(), "p", "json", at).unwrap();
        let first = name();
        assert!(
            first.starts_with("p-") && first.ends_with(".123Z.json"),
            "{first}"
        );
        assert!(!first.contains(':'), "{first}");
        std::fs::write(dir.path().join(&first), "").unwrap();
        let second = name();
        assert_eq!(second, first.replace(".json", "-2.json"));
        std::os::unix::fs::symlink("nowhere", dir.path().join(&second)).unwrap();
        assert_eq!(name(), first.replace(".json", "-3.json"));
        assert!(result_name(dir.path(), "a/b", "json", at).is_err());
    }
}
