//! The terminal: stdout that tolerates a reader going away, stderr notes,
//! and the progress bar (only on a terminal, and not in CI).

use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use taskbench::bench::{Profile, Progress};

use super::CliError;

/// Writes `text` to stdout. A closed pipe (`| head`) is
/// [`CliError::ClosedStdout`], which ends the program quietly.
pub fn print(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(CliError::ClosedStdout),
        Err(e) => Err(CliError::Failed(format!("cannot write to stdout: {e}"))),
    }
}

/// Writes a report for people (a table, a verdict) to stdout, made
/// [`safe`].
pub fn print_report(text: &str) -> Result<(), CliError> {
    print(&safe(text))
}

/// Writes a report for people to stdout, or to stderr when stdout carries
/// the result; made [`safe`] either way.
pub fn print_or_note(text: &str, stdout_taken: bool) -> Result<(), CliError> {
    if stdout_taken {
        let _ = std::io::stderr().write_all(safe(text).as_bytes());
        Ok(())
    } else {
        print_report(text)
    }
}

/// One line on stderr, made [`safe`]; a stderr that cannot take it is
/// ignored.
pub fn note(line: &str) {
    let _ = writeln!(std::io::stderr(), "{}", safe(line));
}

/// `text` with control characters other than line breaks and tabs, and
/// the bidirectional overrides, escaped, whatever put them there (a path,
/// a TOML parser's quote of a line, a name read from a result file): text
/// for a terminal cannot clear it, move the cursor or reorder what it
/// shows.
pub fn safe(text: &str) -> String {
    let bidi = |c: char| matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    text.chars()
        .flat_map(|c| match c {
            '\n' | '\t' => vec![c],
            c if c.is_control() || bidi(c) => c.escape_default().collect(),
            c => vec![c],
        })
        .collect()
}

/// A progress bar on stderr, drawn only on a terminal, outside CI, and
/// without `--quiet`.
pub fn progress_bar(quiet: bool, prefix: String, length: u64) -> ProgressBar {
    let visible = !quiet && std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
    let bar = ProgressBar::with_draw_target(
        Some(length),
        if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix} [{bar:30}] {pos}/{len} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(prefix);
    bar
}

/// Moves the progress bar of a run on.
pub fn show_progress(bar: &ProgressBar, profile: &Profile, p: &Progress<'_>) {
    match p {
        Progress::Warmup { run, of } => bar.set_message(format!("warm-up {}/{of}", run + 1)),
        Progress::Measuring { repetition, of } => {
            bar.inc(u64::from(*repetition == 0) * u64::from(profile.measure.warmup));
            bar.set_message(format!("repetition {}/{of}", repetition + 1));
        }
        Progress::Measured(_) => bar.inc(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_for_a_terminal_cannot_steer_it() {
        assert_eq!(
            safe("q\u{202e}evil\x1b[31mred\u{7}\n\tok"),
            "q\\u{202e}evil\\u{1b}[31mred\\u{7}\n\tok"
        );
    }
}
