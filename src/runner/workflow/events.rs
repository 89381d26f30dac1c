//! Task transitions, as a durable event log will record them: small, serde-serializable, each
//! with the task's name, its JSON-pointer reference and when it happened.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::WorkflowError;

/// One transition of one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskEvent {
    /// When it happened.
    pub at: jiff::Timestamp,
    /// The task's name, e.g. `getUser`.
    pub name: String,
    /// The task's JSON pointer in the document, e.g. `/do/1/fetchUser/try/0/getUser`.
    pub reference: String,
    /// What happened.
    #[serde(flatten)]
    pub transition: Transition,
}

/// What happened to a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "event")]
pub enum Transition {
    /// Its `if` held (or it has none) and it began, after its input was transformed.
    Started {
        /// The transformed input (`$input`).
        input: Value,
    },
    /// It completed.
    Completed {
        /// Its transformed output, passed to the next task.
        output: Value,
    },
    /// It raised an error (caught or not by an enclosing `try`).
    Failed {
        /// The error.
        error: WorkflowError,
    },
    /// Its `if` did not hold; its raw input became its output.
    Skipped,
    /// A `try` task is about to run its tasks again after a caught error.
    Retrying {
        /// The retry about to start: 1 for the first retry.
        attempt: u32,
        /// How long it waits before retrying, in milliseconds.
        delay_ms: u64,
    },
    /// It was still running when a competing fork branch won, and was stopped.
    Cancelled,
    /// An `emit` task published this event.
    Emitted {
        /// The event, every expression of it evaluated.
        #[serde(rename = "cloudEvent")]
        cloud_event: Value,
    },
    /// A `listen` task consumed this event (one such transition per event, before it
    /// completes).
    Consumed {
        /// The event's whole envelope.
        #[serde(rename = "cloudEvent")]
        cloud_event: Value,
    },
}

/// Receives task transitions as they happen. Called from the run's own task, never
/// concurrently; keep it quick (buffer, then write elsewhere) since the run waits for it.
pub trait Observer: Send {
    /// One transition.
    fn observe(&mut self, event: TaskEvent);
}

/// Ignores every event.
impl Observer for () {
    fn observe(&mut self, _: TaskEvent) {}
}

/// Collects every event, in order.
impl Observer for Vec<TaskEvent> {
    fn observe(&mut self, event: TaskEvent) {
        self.push(event);
    }
}
