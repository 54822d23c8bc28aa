//! Flink's `TaskExecutor`: checks deployments, starts task threads pinned
//! to their slots' cores, and keeps the tasks until they terminate.

use std::collections::HashMap;
use std::sync::{mpsc, Mutex};
use std::time::Duration;

use super::deployment::TaskDeploymentDescriptor;
use super::errors::{CancelTaskError, TaskSubmissionError};
use super::ids::{AllocationId, ExecutionAttemptId, JobId, JobMasterId};
use super::job_table::JobTable;
use super::task::{Task, TaskOutcome, TaskSettings, TaskStateUpdate};
use super::{SlotError, TaskSlotTable};
use crate::checkpoint::{CheckpointResponder, TaskStateManager};
use crate::network::ShuffleEnvironment;
use crate::sync::{Arc, Parker};

/// Runs tasks in slots, one thread per task.
#[derive(Debug)]
pub struct TaskExecutor {
    slots: Mutex<TaskSlotTable<Arc<Task>>>,
    jobs: Mutex<JobTable>,
    parkers: Mutex<HashMap<ExecutionAttemptId, Arc<Parker>>>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    shuffle: Arc<ShuffleEnvironment>,
    settings: TaskSettings,
    updates: mpsc::Sender<TaskStateUpdate>,
}

impl TaskExecutor {
    /// An executor with one slot per entry of `cores` (`Some(core)`: tasks in
    /// that slot are pinned to it). Task state changes go to the returned
    /// receiver.
    pub fn new(
        cores: impl IntoIterator<Item = Option<usize>>,
        shuffle: Arc<ShuffleEnvironment>,
        settings: TaskSettings,
    ) -> (Self, mpsc::Receiver<TaskStateUpdate>) {
        let (updates, receiver) = mpsc::channel();
        let executor = Self {
            slots: Mutex::new(TaskSlotTable::new(cores)),
            jobs: Mutex::new(JobTable::default()),
            parkers: Mutex::new(HashMap::new()),
            threads: Mutex::new(Vec::new()),
            shuffle,
            settings,
            updates,
        };
        (executor, receiver)
    }

    /// The shuffle environment tasks set their partitions and gates up in.
    pub fn shuffle(&self) -> &Arc<ShuffleEnvironment> {
        &self.shuffle
    }

    /// Connects `job` to its master `job_master_id` (Flink's job leader
    /// service establishing a connection).
    pub fn connect_job(&self, job: JobId, job_master_id: JobMasterId) {
        self.jobs
            .lock()
            .expect("job table")
            .connect(job, job_master_id);
    }

    /// Connects to `job` with the responder its tasks acknowledge
    /// checkpoints through.
    pub fn connect_job_with_responder(
        &self,
        job: JobId,
        job_master_id: JobMasterId,
        responder: CheckpointResponder,
    ) {
        self.jobs.lock().expect("job table").connect_with_responder(
            job,
            job_master_id,
            Some(responder),
        );
    }

    /// Allocates slot `index` to `allocation` of `job` (Flink's
    /// `requestSlot`).
    pub fn allocate_slot(
        &self,
        index: usize,
        job: JobId,
        allocation: AllocationId,
    ) -> Result<(), SlotError> {
        self.slots
            .lock()
            .expect("slot table")
            .allocate_slot(index, job, allocation)
    }

    /// Frees a slot that runs no task.
    pub fn free_slot(&self, job: JobId, allocation: AllocationId) -> Result<(), SlotError> {
        self.slots
            .lock()
            .expect("slot table")
            .free_slot(job, allocation)
    }

    /// The wake handle of the task that will run as `execution`: gates are
    /// wired with it before the task exists, and the task parks on it.
    pub fn task_parker(&self, execution: ExecutionAttemptId) -> Arc<Parker> {
        self.parkers
            .lock()
            .expect("parkers")
            .entry(execution)
            .or_insert_with(|| Arc::new(Parker::new()))
            .clone()
    }

    /// Flink's `TaskExecutor.submitTask`: every check, then the task thread.
    pub fn submit_task(
        &self,
        tdd: TaskDeploymentDescriptor,
        job_master_id: JobMasterId,
    ) -> Result<Arc<Task>, TaskSubmissionError> {
        let (job, execution, allocation) = (tdd.job_id, tdd.execution_id, tdd.allocation_id);
        let connection = self
            .jobs
            .lock()
            .expect("job table")
            .connection(job)
            .ok_or(TaskSubmissionError::NoJobConnection { job, execution })?;
        if connection.job_master_id != job_master_id {
            return Err(TaskSubmissionError::JobMasterMismatch {
                job,
                execution,
                given: job_master_id,
                expected: connection.job_master_id,
            });
        }
        let mut slots = self.slots.lock().expect("slot table");
        if !slots.try_mark_slot_active(job, allocation) {
            return Err(TaskSubmissionError::NoSlotAllocated { job, allocation });
        }
        if tdd.job_information.job_id != job {
            return Err(TaskSubmissionError::InconsistentJobId {
                descriptor: job,
                information: tdd.job_information.job_id,
            });
        }
        let core = slots.core_of(job, allocation).flatten();
        // The descriptor's restore goes into the task's state manager, with
        // the job's checkpoint responder (Flink's `submitTask`).
        let state = match (&tdd.job_information.checkpointing, connection.responder) {
            (Some(options), Some(responder)) => Some(
                TaskStateManager::new(
                    tdd.task_key(),
                    *options,
                    tdd.task_restore.as_ref().map(|r| r.state.clone()),
                    responder,
                )
                .bounding_sinks_at(tdd.job_information.max_sink_records),
            ),
            _ => None,
        };
        let task = Arc::new(Task::new(
            tdd,
            state,
            self.task_parker(execution),
            self.shuffle.clone(),
            self.settings,
            self.updates.clone(),
        ));
        match slots.add_task(job, allocation, execution, task.clone()) {
            Ok(true) => {}
            Ok(false) => return Err(TaskSubmissionError::DuplicateExecution { execution }),
            Err(source) => return Err(TaskSubmissionError::Slot { execution, source }),
        }
        drop(slots);
        let runner = task.clone();
        let spawned = std::thread::Builder::new()
            .name(task.thread_name())
            .spawn(move || {
                if let Some(id) = core {
                    core_affinity::set_for_current(core_affinity::CoreId { id });
                }
                // A paced source's next record and a flush deadline must
                // not slip by the default 50 µs timer slack.
                crate::sync::precise_timers();
                runner.run();
            });
        match spawned {
            Ok(handle) => {
                self.threads.lock().expect("threads").push(handle);
                Ok(task)
            }
            Err(source) => {
                self.slots
                    .lock()
                    .expect("slot table")
                    .remove_task(execution);
                Err(TaskSubmissionError::Spawn { execution, source })
            }
        }
    }

    /// The task running as `execution`, if any.
    pub fn task(&self, execution: ExecutionAttemptId) -> Option<Arc<Task>> {
        self.slots
            .lock()
            .expect("slot table")
            .task(execution)
            .cloned()
    }

    /// Cancels a task and waits up to `timeout` for its final state; a task
    /// still running then is a fatal error, never silently left behind.
    pub fn cancel_task(
        &self,
        execution: ExecutionAttemptId,
        timeout: Duration,
    ) -> Result<TaskOutcome, CancelTaskError> {
        let task = self
            .task(execution)
            .ok_or(CancelTaskError::UnknownTask { execution })?;
        task.cancel();
        Ok(task.await_final(timeout)?)
    }

    /// Removes a terminated task from its slot (Flink's
    /// `unregisterTaskAndNotifyFinalState`); returns its outcome.
    pub fn remove_terminated(&self, execution: ExecutionAttemptId) -> Option<TaskOutcome> {
        let mut slots = self.slots.lock().expect("slot table");
        let outcome = slots.task(execution)?.outcome()?;
        slots.remove_task(execution);
        self.parkers.lock().expect("parkers").remove(&execution);
        Some(outcome)
    }

    /// Joins every task thread that has been started (after their tasks
    /// terminated), so no thread is left behind.
    pub fn join_threads(&self) {
        let threads = std::mem::take(&mut *self.threads.lock().expect("threads"));
        for thread in threads {
            let _ = thread.join();
        }
    }
}
