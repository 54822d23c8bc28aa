//! SIGINT and SIGTERM: the run stops at once, as before, but first the
//! result measured so far is written, marked `interrupted`; the exit code
//! is the shell's for the signal (130, 143). A child process in progress
//! (an `ab` run, callgrind) is stopped first with its process group, so
//! nothing goes on measuring after the tool has ended.

use std::sync::atomic::{AtomicBool, Ordering};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use super::save;
use super::term::note;

/// Set by the signal thread before it does anything else.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

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
                // Release: pairs with the Acquire in `interrupted`.
                INTERRUPTED.store(true, Ordering::Release);
                taskbench::child::stop_all();
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

/// Whether SIGINT or SIGTERM has arrived.
pub fn interrupted() -> bool {
    // Acquire: pairs with the Release in `install`'s signal thread.
    INTERRUPTED.load(Ordering::Acquire)
}

/// Once a signal has arrived, the signal thread ends the process (with the
/// signal's exit code); a thread that would otherwise end it (say, because
/// the child the signal killed failed) waits here for that instead.
pub fn park_if_interrupted() {
    while interrupted() {
        std::thread::park();
    }
}
