//! How many task threads of this process are running rather than waiting,
//! against how many cores the process may use: whether a waiting task
//! would keep a core from a task that has work.

use std::cell::Cell;

use super::CachePadded;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Task threads running (not waiting). A task counts itself from the start
/// of its loop to its end, minus its waits that outlast their first round.
static RUNNING: CachePadded<AtomicUsize> = CachePadded::new(AtomicUsize::new(0));
/// Cores the process may use; 0 until a job sets it (then nothing counts
/// as full).
static CORES: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Whether the calling thread is a counted task thread.
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

/// Sets the cores the process's task threads share (read once, at the start
/// of a job, from the process's allowed cores).
pub fn set_cores(cores: usize) {
    CORES.store(cores, Ordering::Relaxed);
}

/// Counts the calling thread as a running task until the returned guard is
/// dropped (a task's loop).
pub fn running_task() -> RunningTask {
    RUNNING.fetch_add(1, Ordering::Relaxed);
    COUNTED.with(|c| c.set(true));
    RunningTask(())
}

/// A task thread counted as running; see [`running_task`].
#[derive(Debug)]
#[must_use = "the task counts as running while this lives"]
pub struct RunningTask(());

impl Drop for RunningTask {
    fn drop(&mut self) {
        COUNTED.with(|c| c.set(false));
        RUNNING.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Whether the tasks that run now take every core: a task that waits would
/// keep a core from one of them by spinning or yielding on it, and should
/// park instead. A hint (Relaxed: the count moves all the time).
#[inline]
pub fn cores_taken() -> bool {
    let cores = CORES.load(Ordering::Relaxed);
    cores != 0 && RUNNING.load(Ordering::Relaxed) >= cores
}

/// The calling task thread stops counting as running while it waits; the
/// count is restored when the returned guard drops. Nothing for a thread
/// that is not a counted task.
#[inline]
pub(super) fn waiting() -> Option<Waiting> {
    COUNTED.with(Cell::get).then(|| {
        RUNNING.fetch_sub(1, Ordering::Relaxed);
        Waiting(())
    })
}

/// A counted task that waits; see [`waiting`].
#[derive(Debug)]
pub(super) struct Waiting(());

impl Drop for Waiting {
    #[inline]
    fn drop(&mut self) {
        RUNNING.fetch_add(1, Ordering::Relaxed);
    }
}
