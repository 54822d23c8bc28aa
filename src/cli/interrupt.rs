//! SIGINT and SIGTERM: the run stops at once, as before, but first the
//! result measured so far is written, marked `interrupted`; the exit code
//! is the shell's for the signal (130, 143).

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use super::save;
use super::term::note;

/// Starts the thread that waits for SIGINT or SIGTERM. Without it (the
/// handler could not be installed) the signals keep their default action,
/// which also ends the run at once.
pub fn install() {
    let Ok(mut signals) = Signals::new([SIGINT, SIGTERM]) else {
        return;
    };
    let started = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                save::interrupt_all();
                note(&format!(
                    "interrupted by {}",
                    if signal == SIGINT {
                        "SIGINT"
                    } else {
                        "SIGTERM"
                    }
                ));
                std::process::exit(128 + signal);
            }
        });
    if started.is_err() {
        note("warning: no signal thread; an interrupted run leaves the result of its last write");
    }
}
