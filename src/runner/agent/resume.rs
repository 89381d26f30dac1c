//! What an agent execution recorded before this run, read so the run carries on where it
//! stopped: after a park for approval, each agent (and each sub-agent call in flight) continues
//! its conversation from its recorded steps instead of asking the model again.

use serde_json::Value;

use super::event::AgentEvent;
use crate::backend::approval::{self, ApprovalDecision, ApprovalRequest};

/// The steps an execution recorded that count (see [`approval::effective`]), oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Past {
    events: Vec<AgentEvent>,
    /// Whether the history masks secret values (the run has some): a recorded call whose
    /// arguments show the mask may have held one, which the history no longer knows.
    masked: bool,
}

/// Where an agent's conversation starts: the execution's own message, or a parent's call of it
/// as a sub-agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry<'a> {
    /// The agent the execution runs.
    Root,
    /// A sub-agent, for its parent's call with this id.
    Call(&'a str),
}

impl Past {
    /// Nothing recorded: a fresh run.
    pub const NONE: Self = Self { events: Vec::new(), masked: false };

    /// The steps of a history (sequence number, event), the events that do not count left out;
    /// `masked`: the history was recorded with the run's secret values masked.
    #[must_use]
    pub fn of(history: &[(u64, Value)], masked: bool) -> Self {
        let events = approval::effective(history)
            .into_iter()
            .filter_map(|event| serde_json::from_value::<AgentEvent>(event.clone()).ok())
            .collect();
        Self { events, masked }
    }

    /// Whether recorded `arguments` may have lost a secret value to the mask: making the call
    /// with them would pass `***` where the model wrote the secret.
    #[must_use]
    pub fn lost_a_secret(&self, arguments: &Value) -> bool {
        self.masked && arguments.to_string().contains(crate::secrets::Redactor::MASK)
    }

    /// The steps of `agent`'s conversation entered at `entry` that never ended (no answer yet),
    /// when it started: what that conversation resumes from.
    #[must_use]
    pub fn unfinished(&self, agent: &str, entry: Entry<'_>) -> Option<Vec<&AgentEvent>> {
        let start = self.events.iter().rposition(|event| match event {
            AgentEvent::UserMessage { agent: who, call, .. } => {
                who == agent
                    && match entry {
                        Entry::Root => call.is_none(),
                        Entry::Call(id) => call.as_deref() == Some(id),
                    }
            }
            _ => false,
        })?;
        let steps: Vec<&AgentEvent> = self.events[start..].iter().filter(|event| event.agent() == agent).collect();
        let answered = steps.iter().any(|event| matches!(event, AgentEvent::Answer { .. }));
        (!answered).then_some(steps)
    }
}

/// What was asked and decided about the calls of one answer: the steps after it.
#[derive(Debug, Default)]
pub struct Asked<'a> {
    requests: Vec<&'a ApprovalRequest>,
    decisions: Vec<ApprovalDecision>,
}

impl<'a> Asked<'a> {
    /// The requests and decisions among `steps` (those after the answer whose calls they are).
    pub fn among(steps: &[&'a AgentEvent]) -> Self {
        let mut asked = Self::default();
        for step in steps {
            match step {
                AgentEvent::ApprovalRequested(request) => asked.requests.push(request),
                AgentEvent::ApprovalDecided(decision) => asked.decisions.push(decision.clone()),
                _ => {}
            }
        }
        asked
    }

    /// The request made for call `id`.
    pub fn request(&self, id: &str) -> Option<&'a ApprovalRequest> {
        self.requests.iter().rev().find(|request| request.call_id == id).copied()
    }

    /// The decision made on call `id` (the first one counts).
    pub fn decision(&self, id: &str) -> Option<&ApprovalDecision> {
        self.decisions.iter().find(|decision| decision.call_id == id)
    }

    /// Records a decision made in this run (a deadline that passed).
    pub fn decided(&mut self, decision: ApprovalDecision) {
        self.decisions.push(decision);
    }
}
