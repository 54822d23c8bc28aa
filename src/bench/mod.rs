//! The benchmark engine: profiles, runs, results and reports, and the
//! two-thread channel run behind `taskbench demo`; the same profiles on
//! real Apache Flink ([`flink`]).
//!
//! A run's stages, one module each: [`builtin`] and [`profile`] read the
//! profile, [`output`] checks where results go, [`engine`] measures,
//! [`report`] prints the table, [`export`] renders JSON, CSV or Markdown
//! and [`chart`] draws a sweep; [`compare`] judges two results.

#![forbid(unsafe_code)]

pub mod ab;
pub mod builtin;
pub mod changepoint;
pub mod channel;
pub mod chart;
pub mod checkpoint_figures;
pub mod compare;
pub mod engine;
pub mod export;
pub mod figures;
pub mod flink;
pub mod history;
pub mod history_chart;
pub mod input;
pub mod instructions;
pub mod output;
pub mod profile;
pub mod ranks;
pub mod report;
pub mod result;
pub mod testbed;
pub mod trace_file;
pub mod units;
pub mod validate;
pub mod verdict;

pub use engine::{
    run_profile, run_profile_with, run_profile_with_latency, run_sweep, Progress, RunError,
    RunOptions, RunOutput,
};
pub use profile::{Profile, ProfileError};
pub use result::{json_schema, Engine, ResultFile, RunResult, Status, SweepResult, SCHEMA_VERSION};
