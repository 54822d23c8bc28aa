//! `taskbench history add|show|check`: results over time in an SQLite file
//! ([`taskbench::bench::history`]).

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use taskbench::bench::changepoint;
use taskbench::bench::history::{self, Entry, History, HistoryError};
use taskbench::bench::history_chart;
use taskbench::bench::output::OutputFile;

use super::compare::read_result;
use super::term::{note, print_report};
use super::CliError;

/// `taskbench history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The history database (created when missing).
    #[arg(long, global = true, value_name = "FILE", default_value = history::DEFAULT_PATH)]
    pub db: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub command: HistoryCommand,
}

/// The history's commands.
#[derive(Debug, Subcommand)]
pub enum HistoryCommand {
    /// Adds results (JSON of `run` or `sweep`); a result added before is
    /// not added again.
    Add {
        /// Result files.
        #[arg(required = true)]
        results: Vec<PathBuf>,
    },
    /// Prints every result per figure and draws a trend chart per figure
    /// (SVG: medians, each result's range, change points).
    Show {
        /// Only this profile (a sweep point is `NAME [a=1, b=2]`).
        profile: Option<String>,
        /// Directory for the charts.
        #[arg(long, value_name = "DIR", default_value = "results/history")]
        charts: PathBuf,
        /// No charts.
        #[arg(long)]
        no_charts: bool,
    },
    /// Finds change points per figure (E-divisive means with a t-test, as
    /// Apache Otava); exits 3 when a figure's newest regime is a
    /// regression.
    Check {
        /// Only this profile.
        profile: Option<String>,
        /// Results searched at once.
        #[arg(long, default_value_t = changepoint::DEFAULT_WINDOW as u64, value_parser = clap::value_parser!(u64).range(2..=100_000))]
        window: u64,
        /// Largest p-value a change point may have.
        #[arg(long = "p", default_value_t = changepoint::DEFAULT_MAX_P, value_parser = p_value)]
        max_p: f64,
        /// Smallest relative change kept, in percent.
        #[arg(long, default_value_t = 0.0, value_parser = super::percentage)]
        min_change: f64,
    },
}

fn p_value(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if p > 0.0 && p < 1.0 => Ok(p),
        _ => Err("give a p-value between 0 and 1, e.g. 0.001".into()),
    }
}

impl From<HistoryError> for CliError {
    fn from(e: HistoryError) -> Self {
        match e {
            HistoryError::BadResult(_)
            | HistoryError::Figure(_)
            | HistoryError::Schema { .. }
            | HistoryError::NotAFile(_)
            | HistoryError::BadPath(_)
            | HistoryError::NotADatabase(_) => CliError::Usage(e.to_string()),
            HistoryError::Sqlite(_) | HistoryError::Io(_) => CliError::Failed(e.to_string()),
        }
    }
}

pub fn history(args: HistoryArgs) -> Result<(), CliError> {
    match args.command {
        HistoryCommand::Add { results } => add(&args.db, &results),
        HistoryCommand::Show {
            profile,
            charts,
            no_charts,
        } => show(&args.db, profile.as_deref(), (!no_charts).then_some(charts)),
        HistoryCommand::Check {
            profile,
            window,
            max_p,
            min_change,
        } => check(
            &args.db,
            profile.as_deref(),
            changepoint::Settings {
                window: window as usize,
                max_p,
                min_magnitude: min_change / 100.0,
            },
        ),
    }
}

fn add(db: &std::path::Path, files: &[PathBuf]) -> Result<(), CliError> {
    // Every file is read and checked (added to a history in memory) before
    // the database is opened, let alone made or changed.
    let texts = files
        .iter()
        .map(|f| read_result(f).map(|t| (f, t)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut trial = History::in_memory()?;
    for (file, text) in &texts {
        trial
            .add(text)
            .map_err(|e| CliError::from(e).prefixed(&file.display().to_string()))?;
    }
    let mut h = History::open(db)?;
    let mut out = String::new();
    for (file, text) in texts {
        let added = h
            .add(&text)
            .map_err(|e| CliError::from(e).prefixed(&file.display().to_string()))?;
        let _ = writeln!(out, "{}: {added} figure(s) added", file.display());
    }
    print_report(&out)
}

fn revision(e: &Entry) -> String {
    let r = e.git_revision.as_deref().unwrap_or("unknown");
    format!("{r}{}", if e.dirty { "-dirty" } else { "" })
}

fn show(
    db: &std::path::Path,
    profile: Option<&str>,
    charts: Option<PathBuf>,
) -> Result<(), CliError> {
    if let Some(dir) = charts.as_ref().filter(|d| d.exists() && !d.is_dir()) {
        return Err(CliError::Usage(format!(
            "--charts {}: not a directory; give a folder for the charts (or --no-charts)",
            dir.display()
        )));
    }
    let h = open_existing(db, profile)?;
    let profiles = match profile {
        Some(p) => vec![p.to_string()],
        None => h.profiles()?,
    };
    let mut out = String::new();
    let mut drawn = Vec::new();
    for p in &profiles {
        for f in h.figures(p)? {
            let entries = h.series(p, &f)?;
            let _ = writeln!(out, "{p} · {f} ({} results)", entries.len());
            let _ = writeln!(
                out,
                "  {:<20}  {:<18}  {:>16}  {:>8}  {:>4}",
                "date", "revision", "median", "spread", "reps"
            );
            for e in &entries {
                let _ = writeln!(
                    out,
                    "  {:<20}  {:<18}  {:>16}  {:>7.1}%  {:>4}",
                    e.date,
                    revision(e),
                    if e.median >= 1000.0 {
                        taskbench::bench::report::thousands(e.median)
                    } else {
                        format!("{:.3}", e.median)
                    },
                    e.spread_pct,
                    e.repetitions.len()
                );
            }
            out.push('\n');
            if let Some(dir) = &charts {
                let check = h.check(p, &f, changepoint::Settings::default())?;
                let at: Vec<usize> = check.changes.iter().map(|c| c.point.index).collect();
                let svg = history_chart::trend(&format!("{p} · {f}"), &entries, &at)
                    .map_err(CliError::Failed)?;
                let name = chart_name(&format!("{p}-{f}"));
                std::fs::create_dir_all(dir).map_err(|e| {
                    CliError::Failed(format!("cannot create {}: {e}", dir.display()))
                })?;
                let file = OutputFile::check(&dir.join(format!("{name}.svg")))?;
                file.write(svg.as_bytes())?;
                drawn.push(file.path().display().to_string());
            }
        }
    }
    if profiles.is_empty() {
        let _ = writeln!(
            out,
            "{}: no results yet (taskbench history add RESULT.json)",
            db.display()
        );
    }
    print_report(&out)?;
    for d in drawn {
        note(&format!("chart: {d}"));
    }
    Ok(())
}

/// A history to read: one that exists (reading never makes one), holding
/// `profile` if one is named.
fn open_existing(db: &std::path::Path, profile: Option<&str>) -> Result<History, CliError> {
    if db.symlink_metadata().is_err() {
        let parent = db.parent().filter(|d| !d.as_os_str().is_empty());
        return Err(CliError::Usage(
            match parent.and_then(taskbench::files::directory_problem) {
                Some(problem) => format!("--db {}: {problem}", db.display()),
                None => format!(
                    "{}: no history there yet (taskbench history add RESULT.json starts one)",
                    db.display()
                ),
            },
        ));
    }
    let h = History::open(db)?;
    if let Some(p) = profile {
        let known = h.profiles()?;
        if !known.iter().any(|k| k == p) {
            return Err(CliError::Usage(format!(
                "{}: no results of profile '{}' (it has {})",
                db.display(),
                p,
                if known.is_empty() {
                    "none yet".to_string()
                } else {
                    known.join(", ")
                }
            )));
        }
    }
    Ok(h)
}

/// A chart's file name for `label`: letters, digits, `_` and `-` kept,
/// anything else a `-`, and then, so that labels told apart only by what
/// was replaced (`x y`, `x.y`) do not share a file, 8 hex digits of the
/// label's hash.
fn chart_name(label: &str) -> String {
    let plain: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if plain == label {
        return plain;
    }
    // FNV-1a: stable across builds, unlike std's hasher.
    let hash = label.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    format!("{plain}-{hash:08x}")
}

fn check(
    db: &std::path::Path,
    profile: Option<&str>,
    settings: changepoint::Settings,
) -> Result<(), CliError> {
    let h = open_existing(db, profile)?;
    let checks = h.check_all(profile, settings)?;
    let mut out = String::new();
    let mut regressed = Vec::new();
    for c in &checks {
        let _ = writeln!(
            out,
            "{} · {}: {} results, {} change point(s)",
            c.profile,
            c.figure,
            c.results,
            c.changes.len()
        );
        for ch in &c.changes {
            let _ = writeln!(
                out,
                "  from result {} ({} {}): {:+.1} % (mean {:.4e} → {:.4e}, p = {:.1e}){}",
                ch.point.index + 1,
                revision(&ch.first),
                ch.first.date,
                100.0 * ch.point.relative_change(),
                ch.point.mean_before,
                ch.point.mean_after,
                ch.point.p_value,
                if ch.regression { "  REGRESSION" } else { "" }
            );
        }
        if c.newest_is_regression() {
            regressed.push(format!("{} · {}", c.profile, c.figure));
        }
    }
    if checks.is_empty() {
        let _ = writeln!(out, "{}: no results to check", db.display());
    }
    print_report(&out)?;
    if regressed.is_empty() {
        Ok(())
    } else {
        Err(CliError::Regression(format!(
            "the newest regime is a regression in {}",
            regressed.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_names_of_different_labels_differ() {
        assert_eq!(
            chart_name("quickstart-records_per_sec"),
            "quickstart-records_per_sec"
        );
        let names: Vec<String> = ["x y-f", "x.y-f", "x-y-f"].map(chart_name).to_vec();
        assert!(names[0].starts_with("x-y-f-") && names[1].starts_with("x-y-f-"));
        assert_eq!(names[2], "x-y-f");
        assert!(names[0] != names[1] && names[0] != names[2] && names[1] != names[2]);
    }
}
