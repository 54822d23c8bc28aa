//! Flink's `ExecutionState`: the life of one task, as one atomic.

use std::fmt;

use crate::sync::atomic::{AtomicU8, Ordering};

/// Where a task is in its life (Flink's `ExecutionState`, without the
/// scheduler-only states SCHEDULED and RECONCILING).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ExecutionState {
    /// Created by `submit_task`, thread not yet running.
    Created = 0,
    /// Setting up partitions, gates and the invokable.
    Deploying = 1,
    /// Restoring state, opening operators.
    Initializing = 2,
    /// Processing records.
    Running = 3,
    /// Finished normally (final).
    Finished = 4,
    /// Being canceled.
    Canceling = 5,
    /// Canceled (final).
    Canceled = 6,
    /// Failed with a cause (final).
    Failed = 7,
}

impl ExecutionState {
    const ALL: [ExecutionState; 8] = [
        ExecutionState::Created,
        ExecutionState::Deploying,
        ExecutionState::Initializing,
        ExecutionState::Running,
        ExecutionState::Finished,
        ExecutionState::Canceling,
        ExecutionState::Canceled,
        ExecutionState::Failed,
    ];

    /// Every state, in declaration order.
    pub fn all() -> [ExecutionState; 8] {
        Self::ALL
    }

    fn from_u8(value: u8) -> Self {
        Self::ALL[value as usize]
    }

    /// Whether the state is final: FINISHED, CANCELED or FAILED.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            ExecutionState::Finished | ExecutionState::Canceled | ExecutionState::Failed
        )
    }

    /// Whether a task may go from `self` to `to`, as `Task.java` moves it:
    ///
    /// * the happy path CREATED → DEPLOYING → INITIALIZING → RUNNING → FINISHED;
    /// * cancellation: CREATED, DEPLOYING, INITIALIZING or RUNNING → CANCELING
    ///   → CANCELED, and CREATED → CANCELED directly (never started);
    /// * failure: any non-final state → FAILED (CANCELING included: an error
    ///   while canceling still fails the task);
    /// * nothing leaves a final state.
    pub fn can_transition_to(self, to: ExecutionState) -> bool {
        use ExecutionState::*;
        match (self, to) {
            (Created, Deploying)
            | (Deploying, Initializing)
            | (Initializing, Running)
            | (Running, Finished) => true,
            (Created | Deploying | Initializing | Running, Canceling) => true,
            (Created | Canceling, Canceled) => true,
            (from, Failed) => !from.is_terminal(),
            _ => false,
        }
    }
}

impl fmt::Display for ExecutionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            ExecutionState::Created => "CREATED",
            ExecutionState::Deploying => "DEPLOYING",
            ExecutionState::Initializing => "INITIALIZING",
            ExecutionState::Running => "RUNNING",
            ExecutionState::Finished => "FINISHED",
            ExecutionState::Canceling => "CANCELING",
            ExecutionState::Canceled => "CANCELED",
            ExecutionState::Failed => "FAILED",
        };
        f.write_str(name)
    }
}

/// A refused transition: the state was not what the caller expected, or the
/// move is not legal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("illegal task state transition {from} -> {to} (state is {actual})")]
pub struct IllegalTransition {
    /// The state the caller expected.
    pub from: ExecutionState,
    /// The state asked for.
    pub to: ExecutionState,
    /// The state found.
    pub actual: ExecutionState,
}

/// An `ExecutionState` changed only by compare-and-swap along legal
/// transitions (Flink's `Task.transitionState`).
#[derive(Debug)]
pub struct AtomicExecutionState(AtomicU8);

impl AtomicExecutionState {
    /// Starts in `state`.
    pub fn new(state: ExecutionState) -> Self {
        Self(AtomicU8::new(state as u8))
    }

    /// The current state.
    pub fn load(&self) -> ExecutionState {
        // Acquire: pairs with the AcqRel exchange in `transition`, so whoever
        // sees a state sees what was published before the move into it.
        ExecutionState::from_u8(self.0.load(Ordering::Acquire))
    }

    /// Moves `from` → `to` if the state is `from` and the move is legal.
    pub fn transition(
        &self,
        from: ExecutionState,
        to: ExecutionState,
    ) -> Result<(), IllegalTransition> {
        let refused = |actual| IllegalTransition { from, to, actual };
        if !from.can_transition_to(to) {
            return Err(refused(self.load()));
        }
        // AcqRel: Release publishes the work done in `from` to whoever loads
        // `to`; Acquire pairs with the previous transition's Release.
        self.0
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
            .map_err(|actual| refused(ExecutionState::from_u8(actual)))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::ExecutionState::*;
    use super::*;

    /// Every pair of states: the legal moves succeed, every other is refused.
    #[test]
    fn every_transition_is_legal_or_refused() {
        let legal = [
            (Created, Deploying),
            (Deploying, Initializing),
            (Initializing, Running),
            (Running, Finished),
            (Created, Canceling),
            (Deploying, Canceling),
            (Initializing, Canceling),
            (Running, Canceling),
            (Created, Canceled),
            (Canceling, Canceled),
            (Created, Failed),
            (Deploying, Failed),
            (Initializing, Failed),
            (Running, Failed),
            (Canceling, Failed),
        ];
        for from in ExecutionState::all() {
            for to in ExecutionState::all() {
                let expected = legal.contains(&(from, to));
                assert_eq!(from.can_transition_to(to), expected, "{from} -> {to}");
                let state = AtomicExecutionState::new(from);
                let result = state.transition(from, to);
                assert_eq!(result.is_ok(), expected, "{from} -> {to}");
                assert_eq!(state.load(), if expected { to } else { from });
                if let Err(e) = result {
                    assert_eq!(
                        e.to_string(),
                        format!("illegal task state transition {from} -> {to} (state is {from})")
                    );
                }
            }
        }
    }

    #[test]
    fn a_stale_expectation_is_refused_and_reports_the_actual_state() {
        let state = AtomicExecutionState::new(Running);
        let err = state.transition(Deploying, Initializing).unwrap_err();
        assert_eq!(err.actual, Running);
        assert_eq!(state.load(), Running);
    }

    #[test]
    fn final_states_are_terminal() {
        for s in ExecutionState::all() {
            assert_eq!(s.is_terminal(), matches!(s, Finished | Canceled | Failed));
        }
    }
}
