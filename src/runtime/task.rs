//! Flink's `Task`: one subtask's thread, its `ExecutionState` machine and
//! `doRun`.

use std::sync::{mpsc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::deployment::TaskDeploymentDescriptor;
use super::ids::ExecutionAttemptId;
use super::{AtomicExecutionState, ExecutionState};
use crate::checkpoint::TaskStateManager;
use crate::mailbox::{LoopExit, Mail, MailboxMetrics, MailboxProcessor, TaskMailbox};
use crate::metrics::trace::{self, ThreadTrace};
use crate::metrics::{thread_cpu_time, AllocationCount};
use crate::network::{RecordWriter, ShuffleEnvironment};
use crate::streaming::{StreamTask, StreamTaskResult};
use crate::sync::stall::{self, StallRecord};
use crate::sync::{Arc, Parker, WaitStrategy};

/// A task's state change, reported to whoever runs the job (Flink's
/// `TaskManagerActions.updateTaskExecutionState`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskStateUpdate {
    /// The task.
    pub execution_id: ExecutionAttemptId,
    /// Its new state.
    pub state: ExecutionState,
    /// Why it failed, for `Failed`.
    pub cause: Option<String>,
}

/// What a terminated task leaves behind.
#[derive(Clone, Debug)]
pub struct TaskOutcome {
    /// The final state.
    pub state: ExecutionState,
    /// Why it failed, if it did.
    pub cause: Option<String>,
    /// What the stream task did (absent if it never ran).
    pub result: Option<StreamTaskResult>,
    /// Busy/idle/back-pressured time of its mailbox loop.
    pub mailbox: MailboxMetrics,
    /// Allocations the task thread made while its mailbox loop ran (from
    /// the per-thread counter; 0 unless a `CountingAllocator` is installed).
    pub loop_allocations: u64,
    /// CPU time the task thread used while its mailbox loop ran (`None` if
    /// the loop never ran or the platform has no thread CPU clock).
    pub loop_cpu: Option<Duration>,
    /// The thread's timeline, when the job was traced.
    pub trace: Option<ThreadTrace>,
    /// The stalls its waits saw, when probed.
    pub stalls: Option<StallRecord>,
}

/// A task that did not reach a final state within the cancellation
/// timeout: the watchdog's fatal error (Flink's `TaskCancelerWatchDog`).
#[derive(Debug, thiserror::Error)]
#[error(
    "task {execution} did not terminate within {timeout:?}; it is still {state} \
     (a task that ignores cancellation is a fatal error of its executor)"
)]
pub struct TaskNotTerminated {
    /// The task.
    pub execution: ExecutionAttemptId,
    /// The timeout.
    pub timeout: Duration,
    /// Its state when the timeout expired.
    pub state: ExecutionState,
}

/// Settings every task of an executor shares.
#[derive(Clone, Copy, Debug)]
pub struct TaskSettings {
    /// How a task waits for input, output capacity and mail.
    pub wait: WaitStrategy,
    /// Mails per mailbox lane.
    pub mailbox_capacity: usize,
    /// The job's time origin (latency timestamps, trace times).
    pub epoch: Instant,
    /// Events each task thread's timeline trace holds (0: no trace). The
    /// buffer is allocated before the task's loop starts.
    pub trace_events: usize,
    /// Record the machine's stalls in the task's waits
    /// ([`crate::sync::stall`]).
    pub stall_probe: bool,
}

/// One subtask: created by `TaskExecutor::submit_task`, run on its own
/// thread, ended by finishing, failing, or `cancel`/`fail_externally` from
/// any thread.
#[derive(Debug)]
pub struct Task {
    descriptor: TaskDeploymentDescriptor,
    /// Taken by the task thread at setup.
    state_manager: Mutex<Option<TaskStateManager>>,
    state: AtomicExecutionState,
    parker: Arc<Parker>,
    mailbox: Arc<TaskMailbox>,
    shuffle: Arc<ShuffleEnvironment>,
    settings: TaskSettings,
    failure: Mutex<Option<String>>,
    outcome: Mutex<Option<TaskOutcome>>,
    terminated: Condvar,
    updates: Mutex<mpsc::Sender<TaskStateUpdate>>,
    loop_allocations: std::sync::atomic::AtomicU64,
    /// Nanoseconds of CPU time in the loop; `u64::MAX` until measured.
    loop_cpu_ns: std::sync::atomic::AtomicU64,
    /// The timeline recorded on the task thread, handed over at the end.
    trace: Mutex<Option<ThreadTrace>>,
    /// The stalls recorded on the task thread, handed over at the end.
    stalls: Mutex<Option<StallRecord>>,
}

type InvokeResult = (Result<LoopExit, String>, Option<StreamTaskResult>);

/// Runs `invoke`, turning a panic into an error whose cause carries the
/// panic's message.
fn guard_panics(invoke: impl FnOnce() -> InvokeResult) -> InvokeResult {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(invoke)).unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a non-string payload".into());
        (Err(format!("the task panicked: {message}")), None)
    })
}

impl Task {
    /// A task in state CREATED; `parker` is the one its gates were wired
    /// with.
    pub fn new(
        descriptor: TaskDeploymentDescriptor,
        state: Option<TaskStateManager>,
        parker: Arc<Parker>,
        shuffle: Arc<ShuffleEnvironment>,
        settings: TaskSettings,
        updates: mpsc::Sender<TaskStateUpdate>,
    ) -> Self {
        let mailbox = Arc::new(TaskMailbox::new(settings.mailbox_capacity, parker.clone()));
        Self {
            descriptor,
            state_manager: Mutex::new(state),
            state: AtomicExecutionState::new(ExecutionState::Created),
            parker,
            mailbox,
            shuffle,
            settings,
            failure: Mutex::new(None),
            outcome: Mutex::new(None),
            terminated: Condvar::new(),
            updates: Mutex::new(updates),
            loop_allocations: std::sync::atomic::AtomicU64::new(0),
            loop_cpu_ns: std::sync::atomic::AtomicU64::new(u64::MAX),
            trace: Mutex::new(None),
            stalls: Mutex::new(None),
        }
    }

    /// This execution attempt.
    pub fn execution_id(&self) -> ExecutionAttemptId {
        self.descriptor.execution_id
    }

    /// The deployment it was created from.
    pub fn descriptor(&self) -> &TaskDeploymentDescriptor {
        &self.descriptor
    }

    /// The current state.
    pub fn state(&self) -> ExecutionState {
        self.state.load()
    }

    /// The task's mailbox (mails from other threads wake it).
    pub fn mailbox(&self) -> &Arc<TaskMailbox> {
        &self.mailbox
    }

    /// "name (index+1/parallelism)", as Flink names task threads.
    pub fn thread_name(&self) -> String {
        let info = &self.descriptor.task_information;
        format!(
            "{} ({}/{})",
            info.task_name,
            self.descriptor.subtask_index + 1,
            info.parallelism
        )
    }

    /// Flink's `Task.doRun`, on the task's own thread.
    pub fn run(&self) {
        // CREATED → DEPLOYING, or end at once if canceled or failed first.
        loop {
            match self.state.load() {
                ExecutionState::Created => {
                    if self.transition(ExecutionState::Created, ExecutionState::Deploying) {
                        break;
                    }
                }
                ExecutionState::Canceling => {
                    self.transition(ExecutionState::Canceling, ExecutionState::Canceled);
                }
                state if state.is_terminal() => {
                    return self.terminate(None, MailboxMetrics::default())
                }
                state => {
                    self.record_failure(format!("task thread started in state {state}"));
                    self.state_to_failed();
                    return self.terminate(None, MailboxMetrics::default());
                }
            }
        }
        let mut processor = MailboxProcessor::new(self.mailbox.clone(), self.settings.wait);
        // Flink's `doRun` catches every `Throwable`: a panic in setup or in
        // the invokable fails the task like an error does, instead of ending
        // the thread without a final state.
        let (exit, result) = guard_panics(|| self.run_invokable(&mut processor));
        // Everything the invokable held (partitions, gates, pools) is
        // released by now: `run_invokable` dropped the stream task (on a
        // panic, unwinding did).
        match exit {
            Ok(LoopExit::Finished) => {
                if !self.transition(ExecutionState::Running, ExecutionState::Finished) {
                    self.end_canceled_or_failed(None);
                }
            }
            Ok(LoopExit::Canceled) => self.end_canceled_or_failed(None),
            Err(cause) => self.end_canceled_or_failed(Some(cause)),
        }
        self.terminate(result, processor.metrics());
    }

    /// Sets up, restores and invokes; returns how the loop ended and what
    /// the task did. Errors carry the cause.
    fn run_invokable(&self, processor: &mut MailboxProcessor) -> InvokeResult {
        let d = &self.descriptor;
        let setup = || -> Result<StreamTask, String> {
            let mut writers = Vec::with_capacity(d.produced_partitions.len());
            for produced in &d.produced_partitions {
                let partition = self
                    .shuffle
                    .create_partition(produced.key, self.parker.clone(), self.settings.wait)
                    .map_err(|e| e.to_string())?;
                writers.push(RecordWriter::new(
                    partition,
                    produced.partitioner,
                    d.subtask_index as usize,
                ));
            }
            let gates = d
                .input_gates
                .iter()
                .map(|key| self.shuffle.create_gate(*key))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            StreamTask::new(
                &d.task_information.config,
                gates,
                writers,
                self.shuffle.config().max_record_size,
                (d.subtask_index, d.task_information.parallelism),
                self.settings.epoch,
            )
            .map_err(|e| e.to_string())
        };
        let mut task = match setup() {
            Ok(task) => task,
            Err(cause) => return (Err(cause), None),
        };
        task.set_attempt(d.attempt_number);
        let network = self.shuffle.config();
        if let Some(debloat) = network.debloat {
            task.enable_debloating(debloat, network.memory.segment_size as u32);
        }
        if let Some(state) = self.state_manager.lock().expect("state manager").take() {
            task.enable_checkpoints(state);
        }
        if !self.transition(ExecutionState::Deploying, ExecutionState::Initializing) {
            return (Ok(LoopExit::Canceled), None);
        }
        // Flink's `restoreAndInvoke`: state restored before the loop;
        // INITIALIZING -> RUNNING only after.
        if let Err(e) = task.restore() {
            return (Err(e.to_string()), None);
        }
        if !self.transition(ExecutionState::Initializing, ExecutionState::Running) {
            return (Ok(LoopExit::Canceled), None);
        }
        if self.settings.trace_events > 0 {
            trace::install(
                self.thread_name(),
                self.settings.trace_events,
                self.settings.epoch,
            );
        }
        if self.settings.stall_probe {
            stall::install(self.settings.epoch);
        }
        let before = AllocationCount::thread_now();
        let cpu_before = thread_cpu_time();
        let running = crate::sync::occupancy::running_task();
        let exit = match task.invoke(processor) {
            Ok(exit) => Ok(exit),
            // A consumer went away: its task failed or was canceled, and
            // this one is canceled with the rest of the job, not failed.
            Err(e) if e.is_consumer_gone() => {
                self.transition(ExecutionState::Running, ExecutionState::Canceling);
                Ok(LoopExit::Canceled)
            }
            Err(e) => Err(e.to_string()),
        };
        drop(running);
        *self.trace.lock().expect("trace lock") = trace::uninstall();
        *self.stalls.lock().expect("stalls lock") = stall::uninstall();
        if let (Some(before), Some(after)) = (cpu_before, thread_cpu_time()) {
            let ns = after.saturating_sub(before).as_nanos();
            self.loop_cpu_ns.store(
                u64::try_from(ns).unwrap_or(u64::MAX - 1),
                std::sync::atomic::Ordering::Relaxed,
            );
        }
        self.loop_allocations.store(
            AllocationCount::thread_now().since(before).allocations,
            std::sync::atomic::Ordering::Relaxed,
        );
        (exit, Some(task.result()))
    }

    /// Cancels the task from any thread (Flink's `cancelExecution`): a task
    /// not yet started ends CANCELED at once; a running, parked or
    /// back-pressured one is interrupted and ends CANCELED shortly.
    pub fn cancel(&self) {
        loop {
            let state = self.state.load();
            let target = match state {
                ExecutionState::Created => ExecutionState::Canceled,
                ExecutionState::Deploying
                | ExecutionState::Initializing
                | ExecutionState::Running => ExecutionState::Canceling,
                _ => return,
            };
            if self.transition(state, target) {
                break;
            }
        }
        self.interrupt();
    }

    /// Fails the task from any thread with `cause` (Flink's
    /// `failExternally`).
    pub fn fail_externally(&self, cause: impl Into<String>) {
        let cause = cause.into();
        loop {
            let state = self.state.load();
            if state.is_terminal() {
                return;
            }
            self.record_failure(cause.clone());
            if self.transition(state, ExecutionState::Failed) {
                break;
            }
        }
        self.interrupt();
    }

    /// Waits until the task reached a final state; `None` on timeout (the
    /// caller's watchdog reports that as fatal).
    pub fn await_termination(&self, timeout: Duration) -> Option<TaskOutcome> {
        let outcome = self.outcome.lock().expect("outcome lock");
        let (outcome, _) = self
            .terminated
            .wait_timeout_while(outcome, timeout, |o| o.is_none())
            .expect("outcome lock");
        outcome.clone()
    }

    /// Waits until the task reached a final state; a task still running after
    /// `timeout` is the watchdog's fatal error.
    pub fn await_final(&self, timeout: Duration) -> Result<TaskOutcome, TaskNotTerminated> {
        self.await_termination(timeout)
            .ok_or_else(|| TaskNotTerminated {
                execution: self.execution_id(),
                timeout,
                state: self.state(),
            })
    }

    /// The outcome, once terminated.
    pub fn outcome(&self) -> Option<TaskOutcome> {
        self.outcome.lock().expect("outcome lock").clone()
    }

    fn interrupt(&self) {
        self.parker.interrupt();
        let _ = self.mailbox.put_first(Mail::Cancel);
    }

    fn transition(&self, from: ExecutionState, to: ExecutionState) -> bool {
        if self.state.transition(from, to).is_err() {
            return false;
        }
        if !to.is_terminal() {
            self.report(to);
        }
        true
    }

    /// Ends a task that did not finish: CANCELED if it was being canceled
    /// (an error then is the cancellation's doing, e.g. an interrupted
    /// wait, as Flink's `doRun` treats it), FAILED with `cause` otherwise; an
    /// external failure stays FAILED.
    fn end_canceled_or_failed(&self, cause: Option<String>) {
        loop {
            match self.state.load() {
                ExecutionState::Canceling => {
                    if self.transition(ExecutionState::Canceling, ExecutionState::Canceled) {
                        return;
                    }
                }
                state if state.is_terminal() => return,
                _ => {
                    self.record_failure(
                        cause
                            .clone()
                            .unwrap_or_else(|| "the task's loop ended without finishing".into()),
                    );
                    if self.state_to_failed() {
                        return;
                    }
                }
            }
        }
    }

    fn state_to_failed(&self) -> bool {
        let state = self.state.load();
        state.is_terminal() || self.transition(state, ExecutionState::Failed)
    }

    fn record_failure(&self, cause: String) {
        self.failure
            .lock()
            .expect("failure lock")
            .get_or_insert(cause);
    }

    fn report(&self, state: ExecutionState) {
        let cause = (state == ExecutionState::Failed)
            .then(|| self.failure.lock().expect("failure lock").clone())
            .flatten();
        let _ = self
            .updates
            .lock()
            .expect("updates lock")
            .send(TaskStateUpdate {
                execution_id: self.descriptor.execution_id,
                state,
                cause,
            });
    }

    /// Records the outcome, reports the final state, wakes waiters (Flink's
    /// `notifyFinalState` and `terminationFuture.complete`).
    fn terminate(&self, result: Option<StreamTaskResult>, mailbox: MailboxMetrics) {
        self.mailbox.close();
        let state = self.state.load();
        let cause = if state == ExecutionState::Failed {
            self.failure.lock().expect("failure lock").clone()
        } else {
            None
        };
        *self.outcome.lock().expect("outcome lock") = Some(TaskOutcome {
            state,
            cause,
            result,
            mailbox,
            loop_allocations: self
                .loop_allocations
                .load(std::sync::atomic::Ordering::Relaxed),
            loop_cpu: match self.loop_cpu_ns.load(std::sync::atomic::Ordering::Relaxed) {
                u64::MAX => None,
                ns => Some(Duration::from_nanos(ns)),
            },
            trace: self.trace.lock().expect("trace lock").take(),
            stalls: self.stalls.lock().expect("stalls lock").take(),
        });
        self.report(state);
        self.terminated.notify_all();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_panic_in_the_invokable_becomes_the_cause() {
        let (exit, result) = guard_panics(|| panic!("operator bug at record {}", 7));
        assert_eq!(
            exit.unwrap_err(),
            "the task panicked: operator bug at record 7"
        );
        assert!(result.is_none());
        let (exit, _) = guard_panics(|| std::panic::panic_any(42u32));
        assert_eq!(exit.unwrap_err(), "the task panicked: a non-string payload");
        let (exit, _) = guard_panics(|| (Ok(LoopExit::Finished), None));
        assert!(matches!(exit, Ok(LoopExit::Finished)));
    }
}
