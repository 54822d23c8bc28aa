//! The benchmark engine: profiles, runs, results and reports, and the
//! two-thread channel run behind `taskbench demo`.

pub mod channel;
pub mod profile;
pub mod units;

pub use profile::{Profile, ProfileError};
