//! The benchmark engine: profiles, runs, results and reports, and the
//! two-thread channel run behind `taskbench demo`; the same profiles on
//! real Apache Flink ([`flink`]).

pub mod ab;
pub mod builtin;
pub mod changepoint;
pub mod channel;
pub mod chart;
pub mod compare;
pub mod engine;
pub mod figures;
pub mod flink;
pub mod history;
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
pub use result::{Engine, RunResult, Status, SweepResult, SCHEMA_VERSION};
