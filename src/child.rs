//! Child processes the tool waits for: `ab`'s runs and callgrind under
//! `run --instructions`. Each starts in a process group of its own, so
//! that stopping it stops everything it started too (valgrind's tool
//! process, a stand-in script's `sleep`), whether a deadline passed or
//! SIGINT/SIGTERM is ending the tool ([`stop_all`]). A child's scratch
//! directory is removed with it.
//!
use std::io::{self, Read};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

/// A child being waited for, unreaped while it is registered: its pid,
/// which is its process group's id, cannot have been reused.
struct Running {
    token: u64,
    child: Child,
    scratch: Option<PathBuf>,
}

/// Every child being waited for (the tool runs one at a time; tests run
/// several at once).
static RUNNING: Mutex<Vec<Running>> = Mutex::new(Vec::new());

/// Tells registered children apart.
static TOKENS: AtomicU64 = AtomicU64::new(0);

/// Set by [`stop_all`] before it looks for a child to stop.
static STOPPING: AtomicBool = AtomicBool::new(false);

fn running() -> MutexGuard<'static, Vec<Running>> {
    RUNNING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Sends SIGKILL to `child`'s process group.
fn kill_group(child: &Child) {
    let Ok(group) = libc::pid_t::try_from(child.id()) else {
        return;
    };
    // `-group` names the process group the child leads (it was started
    // with `process_group(0)`); the child is not reaped yet, so that group
    // id is still its own.
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe {
        libc::kill(-group, libc::SIGKILL);
    }
}

/// How a child ended.
#[derive(Debug)]
pub struct Ended {
    /// Its exit status (a signal's, when it was stopped).
    pub status: ExitStatus,
    /// Everything it wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything it wrote to stderr.
    pub stderr: Vec<u8>,
    /// It was still running at the deadline, and was stopped.
    pub timed_out: bool,
}

/// Runs `command` to its end in a process group of its own, stdin empty,
/// stdout and stderr collected; stops it (and its group) if it is still
/// running at `deadline`. `scratch` is a directory [`stop_all`] removes
/// if it stops the child.
///
/// # Errors
///
/// Starting the child, reading its output or waiting for it failed.
pub fn run(
    command: &mut Command,
    deadline: Option<Instant>,
    scratch: Option<PathBuf>,
) -> io::Result<Ended> {
    let mut child = command
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let (out, err) = (child.stdout.take(), child.stderr.take());
    // Relaxed: a counter; only uniqueness matters.
    let token = TOKENS.fetch_add(1, Ordering::Relaxed);
    running().push(Running {
        token,
        child,
        scratch,
    });
    // Acquire: pairs with the Release in `stop_all`. A stop that looked
    // before the child was registered found nothing; its flag is seen here.
    if STOPPING.load(Ordering::Acquire) {
        stop_running();
    }
    let timed_out = AtomicBool::new(false);
    let (done, finished) = crossbeam_channel::bounded::<()>(0);
    let (stdout, stderr) = std::thread::scope(|scope| {
        if let Some(deadline) = deadline {
            let timed_out = &timed_out;
            scope.spawn(move || {
                if finished
                    .recv_deadline(deadline)
                    .is_err_and(|e| e.is_timeout())
                {
                    if let Some(r) = running().iter().find(|r| r.token == token) {
                        timed_out.store(true, Ordering::Relaxed);
                        kill_group(&r.child);
                    }
                }
            });
        }
        let stderr = scope.spawn(|| drain(err));
        let stdout = drain(out);
        let stderr = stderr.join().expect("reading a pipe does not panic");
        drop(done); // ends the watchdog's wait
        (stdout, stderr)
    });
    let mut ended = {
        let mut all = running();
        let at = all.iter().position(|r| r.token == token);
        all.swap_remove(at.expect("only its waiter unregisters a child"))
    };
    let status = ended.child.wait()?;
    Ok(Ended {
        status,
        stdout: stdout?,
        stderr: stderr?,
        // Relaxed: the scope's join ordered the watchdog's store before this.
        timed_out: timed_out.load(Ordering::Relaxed),
    })
}

/// Everything a child writes to `pipe` until it closes it.
fn drain(pipe: Option<impl Read>) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    if let Some(mut p) = pipe {
        p.read_to_end(&mut bytes)?;
    }
    Ok(bytes)
}

/// Stops the running child and its group, and removes its scratch
/// directory; every child started from now on is stopped as soon as it is
/// registered. For the signal thread, before the tool exits.
pub fn stop_all() {
    // Release: pairs with the Acquire in `run`.
    STOPPING.store(true, Ordering::Release);
    stop_running();
}

fn stop_running() {
    for r in running().iter() {
        kill_group(&r.child);
        if let Some(dir) = &r.scratch {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn output_and_status_are_collected() {
        let ended = run(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            None,
            None,
        )
        .unwrap();
        assert_eq!(ended.status.code(), Some(3));
        assert_eq!(
            (&ended.stdout[..], &ended.stderr[..]),
            (&b"out\n"[..], &b"err\n"[..])
        );
        assert!(!ended.timed_out);
    }

    #[test]
    fn a_deadline_stops_the_child_and_what_it_started() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        // The script's `sleep` holds the pipes open: only stopping the whole
        // group ends the wait.
        let script = format!("sleep 30 & echo $! > '{}'; wait", pid_file.display());
        let started = Instant::now();
        let ended = run(
            Command::new("sh").args(["-c", &script]),
            Some(Instant::now() + Duration::from_millis(300)),
            None,
        )
        .unwrap();
        assert!(ended.timed_out);
        assert!(started.elapsed() < Duration::from_secs(20));
        let sleeper = std::fs::read_to_string(&pid_file).unwrap();
        // Killed: gone, or a zombie until whoever inherited it reaps it.
        let stat = format!("/proc/{}/stat", sleeper.trim());
        let waited = Instant::now();
        while std::fs::read_to_string(&stat).is_ok_and(|s| !s.contains(") Z ")) {
            assert!(
                waited.elapsed() < Duration::from_secs(10),
                "the script's sleep {} is still running",
                sleeper.trim()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
