//! Results as other tools read them: one [`Exporter`] per format, each in
//! its own file (JSON, CSV, Markdown). The terminal table is
//! [`super::report`]'s.

mod csv;
mod json;
mod markdown;

use super::result::{RunResult, SweepResult};

/// Output formats of `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The full result, schema-versioned.
    Json,
    /// One row per repetition.
    Csv,
    /// A summary table.
    Markdown,
}

/// Renders results in one format.
pub trait Exporter: Sync {
    /// A run's result.
    fn run(&self, result: &RunResult) -> String;
    /// A sweep's result.
    fn sweep(&self, sweep: &SweepResult) -> String;
    /// The extension of a file in this format (`json`).
    fn extension(&self) -> &'static str;
}

/// The exporter of `format`.
pub fn exporter(format: Format) -> &'static dyn Exporter {
    match format {
        Format::Json => &json::Json,
        Format::Csv => &csv::Csv,
        Format::Markdown => &markdown::Markdown,
    }
}
