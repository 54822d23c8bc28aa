//! The benchmark engine: profiles, runs, results and reports, and the
//! two-thread channel run behind `taskbench demo`.

pub mod builtin;
pub mod channel;
pub mod chart;
pub mod compare;
pub mod engine;
pub mod profile;
pub mod report;
pub mod result;
pub mod testbed;
pub mod units;

pub use engine::{run_profile, run_sweep, Progress, RunError};
pub use profile::{Profile, ProfileError};
pub use result::{RunResult, Status, SweepResult, SCHEMA_VERSION};
