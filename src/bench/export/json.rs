//! The full result as pretty JSON, `schema_version` first (the schema is
//! `taskbench schema`'s).

use super::Exporter;
use crate::bench::ab::AbResult;
use crate::bench::result::{RunResult, SweepResult};

/// JSON.
pub struct Json;

fn pretty<T: serde::Serialize>(value: &T) -> String {
    // Every figure is finite (validation refuses what would make one
    // otherwise), and the result types have only string keys.
    serde_json::to_string_pretty(value).expect("results serialize") + "\n"
}

impl Exporter for Json {
    fn run(&self, result: &RunResult) -> String {
        pretty(result)
    }

    fn sweep(&self, sweep: &SweepResult) -> String {
        pretty(sweep)
    }

    fn ab(&self, result: &AbResult) -> String {
        pretty(result)
    }

    fn extension(&self) -> &'static str {
        "json"
    }
}
