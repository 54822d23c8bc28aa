//! Results as other tools read them: one [`Exporter`] per format, each in
//! its own file (JSON, CSV, Markdown, and the two CI formats: Bencher
//! Metric Format and github-action-benchmark's custom tools). The terminal
//! table is [`super::report`]'s.

mod bmf;
mod csv;
mod github;
mod json;
mod markdown;

use super::ab::AbResult;
use super::figures::{self, Figure};
use super::result::{RunResult, Stats, SweepResult};

/// Output formats of `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The full result, schema-versioned.
    Json,
    /// One row per repetition.
    Csv,
    /// A summary table.
    Markdown,
    /// Bencher Metric Format: `{benchmark: {measure: {value, lower_value,
    /// upper_value}}}` for `bencher run --adapter json`.
    Bmf,
    /// github-action-benchmark, `tool: customBiggerIsBetter`: the rates.
    GithubActionBenchmark,
    /// github-action-benchmark, `tool: customSmallerIsBetter`: latency,
    /// core time and instructions per record.
    GithubActionBenchmarkSmaller,
}

/// Renders results in one format.
pub trait Exporter: Sync {
    /// A run's result.
    fn run(&self, result: &RunResult) -> String;
    /// A sweep's result.
    fn sweep(&self, sweep: &SweepResult) -> String;
    /// An A/B session's result.
    fn ab(&self, result: &AbResult) -> String;
    /// The extension of a file in this format (`json`).
    fn extension(&self) -> &'static str;
}

/// The exporter of `format`.
pub fn exporter(format: Format) -> &'static dyn Exporter {
    match format {
        Format::Json => &json::Json,
        Format::Csv => &csv::Csv,
        Format::Markdown => &markdown::Markdown,
        Format::Bmf => &bmf::Bmf,
        Format::GithubActionBenchmark => &github::Github { bigger: true },
        Format::GithubActionBenchmarkSmaller => &github::Github { bigger: false },
    }
}

/// Every point of a result to export: its benchmark name and its run.
fn points(sweep: &SweepResult) -> impl Iterator<Item = (String, &RunResult)> {
    sweep.points.iter().map(move |p| {
        (
            format!("{} [{}]", sweep.profile.name, p.overrides.join(", ")),
            &p.result,
        )
    })
}

/// A run's figures, each with its statistics (none before a repetition).
fn measured(run: &RunResult) -> Vec<(Figure, Stats)> {
    figures::of_run(run)
        .into_iter()
        .map(|f| {
            let stats = Stats::of(&f.values);
            (f, stats)
        })
        .collect()
}

/// The unit a figure is counted in.
fn unit(figure: &str) -> &'static str {
    match figure {
        "records_per_sec" => "records/s",
        "bytes_per_sec" => "bytes/s",
        "instructions_per_record" => "instructions/record",
        _ => "ns",
    }
}
