//! Flink's `TaskSlotTable`: the executor's slots, each bound to a core, and
//! the tasks running in them.

use std::collections::HashMap;

use super::ids::{AllocationId, ExecutionAttemptId, JobId};

/// What can go wrong with a slot.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SlotError {
    /// The slot index does not exist.
    #[error("slot {index} does not exist (the executor has {slots} slots)")]
    NoSuchSlot {
        /// The index asked for.
        index: usize,
        /// Slots in the table.
        slots: usize,
    },
    /// The slot is allocated to another allocation.
    #[error("slot {index} is already allocated to {allocation} of {job}")]
    AlreadyAllocated {
        /// The slot.
        index: usize,
        /// Its current job.
        job: JobId,
        /// Its current allocation.
        allocation: AllocationId,
    },
    /// No slot holds this allocation.
    #[error("no slot allocated for {job} and {allocation}")]
    SlotNotFound {
        /// The job.
        job: JobId,
        /// The allocation.
        allocation: AllocationId,
    },
    /// The slot was allocated but not activated.
    #[error("the slot of {allocation} is allocated but not active")]
    SlotNotActive {
        /// The allocation.
        allocation: AllocationId,
    },
    /// The slot still runs tasks.
    #[error("the slot of {allocation} still runs {tasks} task(s)")]
    SlotBusy {
        /// The allocation.
        allocation: AllocationId,
        /// Tasks still in it.
        tasks: usize,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SlotState {
    Free,
    Allocated,
    Active,
}

#[derive(Debug)]
struct Slot<T> {
    core: Option<usize>,
    state: SlotState,
    job: Option<JobId>,
    allocation: Option<AllocationId>,
    tasks: HashMap<ExecutionAttemptId, T>,
}

/// The slots of one executor and the tasks they hold (`T` is the task
/// handle; the table only stores it).
#[derive(Debug)]
pub struct TaskSlotTable<T> {
    slots: Vec<Slot<T>>,
}

impl<T> TaskSlotTable<T> {
    /// One slot per entry of `cores` (`None`: the slot's task is not pinned).
    pub fn new(cores: impl IntoIterator<Item = Option<usize>>) -> Self {
        Self {
            slots: cores
                .into_iter()
                .map(|core| Slot {
                    core,
                    state: SlotState::Free,
                    job: None,
                    allocation: None,
                    tasks: HashMap::new(),
                })
                .collect(),
        }
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the table has no slot.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Allocates slot `index` to `allocation` of `job` (idempotent for the
    /// same allocation).
    pub fn allocate_slot(
        &mut self,
        index: usize,
        job: JobId,
        allocation: AllocationId,
    ) -> Result<(), SlotError> {
        let slots = self.slots.len();
        let slot = self
            .slots
            .get_mut(index)
            .ok_or(SlotError::NoSuchSlot { index, slots })?;
        match (slot.state, slot.job, slot.allocation) {
            (SlotState::Free, ..) => {
                slot.state = SlotState::Allocated;
                slot.job = Some(job);
                slot.allocation = Some(allocation);
                Ok(())
            }
            (_, Some(j), Some(a)) if j == job && a == allocation => Ok(()),
            (_, Some(job), Some(allocation)) => Err(SlotError::AlreadyAllocated {
                index,
                job,
                allocation,
            }),
            _ => unreachable!("an allocated slot has a job and an allocation"),
        }
    }

    /// Marks the slot of (`job`, `allocation`) active; false if there is no
    /// such slot (Flink's `tryMarkSlotActive`).
    pub fn try_mark_slot_active(&mut self, job: JobId, allocation: AllocationId) -> bool {
        match self.find_mut(job, allocation) {
            Some(slot) => {
                slot.state = SlotState::Active;
                true
            }
            None => false,
        }
    }

    /// Frees the slot of `allocation` if it runs no task.
    pub fn free_slot(&mut self, job: JobId, allocation: AllocationId) -> Result<(), SlotError> {
        let slot = self
            .find_mut(job, allocation)
            .ok_or(SlotError::SlotNotFound { job, allocation })?;
        if !slot.tasks.is_empty() {
            return Err(SlotError::SlotBusy {
                allocation,
                tasks: slot.tasks.len(),
            });
        }
        slot.state = SlotState::Free;
        slot.job = None;
        slot.allocation = None;
        Ok(())
    }

    /// The core of the slot of (`job`, `allocation`).
    pub fn core_of(&self, job: JobId, allocation: AllocationId) -> Option<Option<usize>> {
        self.find(job, allocation).map(|slot| slot.core)
    }

    /// Adds a task to the active slot of (`job`, `allocation`). Returns
    /// `Ok(false)` if a task with the same execution id is already there
    /// (Flink's `addTask`).
    pub fn add_task(
        &mut self,
        job: JobId,
        allocation: AllocationId,
        execution: ExecutionAttemptId,
        task: T,
    ) -> Result<bool, SlotError> {
        if self.slots.iter().any(|s| s.tasks.contains_key(&execution)) {
            return Ok(false);
        }
        let slot = self
            .find_mut(job, allocation)
            .ok_or(SlotError::SlotNotFound { job, allocation })?;
        if slot.state != SlotState::Active {
            return Err(SlotError::SlotNotActive { allocation });
        }
        slot.tasks.insert(execution, task);
        Ok(true)
    }

    /// Removes a task (when it reached a final state).
    pub fn remove_task(&mut self, execution: ExecutionAttemptId) -> Option<T> {
        self.slots
            .iter_mut()
            .find_map(|s| s.tasks.remove(&execution))
    }

    /// The task with this execution id.
    pub fn task(&self, execution: ExecutionAttemptId) -> Option<&T> {
        self.slots.iter().find_map(|s| s.tasks.get(&execution))
    }

    /// Every task in the table.
    pub fn tasks(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().flat_map(|s| s.tasks.values())
    }

    fn find(&self, job: JobId, allocation: AllocationId) -> Option<&Slot<T>> {
        self.slots
            .iter()
            .find(|s| s.job == Some(job) && s.allocation == Some(allocation))
    }

    fn find_mut(&mut self, job: JobId, allocation: AllocationId) -> Option<&mut Slot<T>> {
        self.slots
            .iter_mut()
            .find(|s| s.job == Some(job) && s.allocation == Some(allocation))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    const JOB: JobId = JobId(1);
    const A: AllocationId = AllocationId(10);
    const B: AllocationId = AllocationId(11);

    #[test]
    fn slots_go_free_allocated_active_and_back() {
        let mut table = TaskSlotTable::<&str>::new([Some(0), Some(1)]);
        assert!(!table.try_mark_slot_active(JOB, A), "nothing allocated yet");
        table.allocate_slot(0, JOB, A).unwrap();
        table.allocate_slot(0, JOB, A).unwrap();
        assert!(matches!(
            table.allocate_slot(0, JOB, B),
            Err(SlotError::AlreadyAllocated { index: 0, .. })
        ));
        assert_eq!(
            table.add_task(JOB, A, ExecutionAttemptId(1), "t1"),
            Err(SlotError::SlotNotActive { allocation: A })
        );
        assert!(table.try_mark_slot_active(JOB, A));
        assert_eq!(
            table.add_task(JOB, A, ExecutionAttemptId(1), "t1"),
            Ok(true)
        );
        assert_eq!(
            table.add_task(JOB, A, ExecutionAttemptId(1), "again"),
            Ok(false)
        );
        assert_eq!(table.core_of(JOB, A), Some(Some(0)));
        assert!(matches!(
            table.free_slot(JOB, A),
            Err(SlotError::SlotBusy { tasks: 1, .. })
        ));
        assert_eq!(table.remove_task(ExecutionAttemptId(1)), Some("t1"));
        table.free_slot(JOB, A).unwrap();
        assert_eq!(table.core_of(JOB, A), None);
        assert_eq!(
            table.allocate_slot(5, JOB, A),
            Err(SlotError::NoSuchSlot { index: 5, slots: 2 })
        );
    }
}
