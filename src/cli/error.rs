//! How a command ends badly, and the exit code each way has.

use std::process::ExitCode;

use taskbench::bench::flink::FlinkError;
use taskbench::bench::output::OutputError;
use taskbench::bench::{ProfileError, RunError};

use super::term::note;

/// Why a command did not succeed.
#[derive(Debug)]
pub enum CliError {
    /// Bad usage or input, found before anything ran: exit 2.
    Usage(String),
    /// The run failed, or a result could not be written: exit 1.
    Failed(String),
    /// `compare`, `ab` or `history check` found a regression (or, with
    /// `--strict`, could not decide): exit 3.
    Regression(String),
    /// Several of the above (each is printed; the worst code wins).
    Several(Vec<CliError>),
    /// Stdout's reader went away (`| head`): end quietly, as Unix tools do.
    ClosedStdout,
}

impl CliError {
    /// A run's error, from `origin` (the profile's file or name).
    pub fn run(origin: &str, e: RunError) -> Self {
        let message = format!("{origin}: {e}");
        match e.exit_code() {
            2 => CliError::Usage(message),
            _ => CliError::Failed(message),
        }
    }

    /// A Flink run's error.
    pub fn flink(origin: &str, e: FlinkError) -> Self {
        let message = format!("{origin}: {e}");
        match e.exit_code() {
            2 => CliError::Usage(message),
            _ => CliError::Failed(message),
        }
    }

    /// The same error with `what` (a file) in front of its message.
    pub fn prefixed(self, what: &str) -> Self {
        match self {
            CliError::Usage(m) => CliError::Usage(format!("{what}: {m}")),
            CliError::Failed(m) => CliError::Failed(format!("{what}: {m}")),
            other => other,
        }
    }

    /// Every error of `outcomes`, or `Ok` when there is none.
    pub fn all(outcomes: Vec<Result<(), CliError>>) -> Result<(), CliError> {
        let mut errors: Vec<CliError> = outcomes.into_iter().filter_map(Result::err).collect();
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(CliError::Several(errors)),
        }
    }

    fn code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Failed(_) => 1,
            CliError::Regression(_) => 3,
            CliError::Several(all) => all.iter().map(CliError::code).max().unwrap_or(1),
            CliError::ClosedStdout => 0,
        }
    }

    fn report(&self) {
        match self {
            CliError::Usage(m) | CliError::Failed(m) => note(&format!("error: {m}")),
            CliError::Regression(m) => note(&format!("regression: {m}")),
            CliError::Several(all) => all.iter().for_each(CliError::report),
            CliError::ClosedStdout => {}
        }
    }

    /// Prints the message(s) and gives the exit code.
    pub fn exit(self) -> ExitCode {
        // A closed stdout ends quietly, whatever else went wrong.
        if let CliError::Several(all) = &self {
            if all.iter().any(|e| matches!(e, CliError::ClosedStdout)) {
                return ExitCode::SUCCESS;
            }
        }
        self.report();
        ExitCode::from(self.code())
    }
}

impl From<ProfileError> for CliError {
    fn from(e: ProfileError) -> Self {
        CliError::Usage(e.to_string())
    }
}

impl From<OutputError> for CliError {
    fn from(e: OutputError) -> Self {
        match e {
            OutputError::Unusable { .. } => CliError::Usage(e.to_string()),
            OutputError::Write { .. } => CliError::Failed(e.to_string()),
        }
    }
}
