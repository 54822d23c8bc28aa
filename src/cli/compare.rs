//! `taskbench compare`: read both files → check them → judge every figure
//! → table → exit 0, 2 (bad input) or 3 (a regression, or with `--strict`
//! an undecided figure).

use std::path::Path;

use taskbench::bench::compare::{self as judge, Options};
use taskbench::bench::input::read_regular;
use taskbench::bench::verdict::{self, Verdict};

use super::term::print_report;
use super::{CliError, CompareArgs};

/// The largest result file `compare` reads (a run of 100 000 repetitions
/// is well below).
pub const MAX_RESULT_BYTES: u64 = 1 << 30;

/// A result file's text: a regular file only, of bounded size.
pub fn read_result(path: &Path) -> Result<String, CliError> {
    read_regular(path, MAX_RESULT_BYTES, "a result's .json file")
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))
}

pub fn compare(args: &CompareArgs) -> Result<(), CliError> {
    let baseline = read_result(&args.baseline)?;
    let current = read_result(&args.current)?;
    let names = (
        args.baseline.display().to_string(),
        args.current.display().to_string(),
    );
    let options = Options {
        settings: verdict::Settings {
            min_effect: args.threshold / 100.0,
            ..verdict::Settings::default()
        },
        exact_min_effect: args.instructions_threshold / 100.0,
        allow_config_change: args.allow_config_change,
    };
    let comparison = judge::compare((&names.0, &names.1), &baseline, &current, &options)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    print_report(&judge::table(&comparison))?;
    let regressions = comparison.count(Verdict::Regression);
    if regressions > 0 {
        return Err(CliError::Regression(format!(
            "{regressions} figure(s) regressed beyond {} %",
            args.threshold
        )));
    }
    let undecided = comparison.count(Verdict::Inconclusive);
    if args.strict && undecided > 0 {
        return Err(CliError::Regression(format!(
            "{undecided} figure(s) inconclusive, which --strict does not pass"
        )));
    }
    Ok(())
}
