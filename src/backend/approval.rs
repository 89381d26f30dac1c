//! Tool calls that wait for a person: an agent execution asks for approval of the calls its
//! overrides gate, then *parks* — `waiting`, holding no worker — until every call it asked about
//! is decided; the decision requeues it and a worker carries on from its history.
//!
//! The history is the truth, as for every execution: a request and a decision are events in it
//! (`approvalRequested`, `approvalDecided`), and the run that resumes reads them there. A park
//! is a checkpoint: what a run recorded before it parked counts; what an attempt recorded and
//! never parked (its worker died) does not — the next worker runs from the last park again
//! (see [`effective`]).
//!
//! Decisions are exact: a decision is written only while the execution is parked and only if
//! its history still ends where the decider read it, so two people deciding the same call at
//! once cannot both win.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Backend, BackendError, ExecutionRecord, ExecutionStatus};

/// The worker a parked execution's lease names: a park with a deadline holds a lease of no
/// worker until it, so the claim that wakes lapsed executions wakes this one when it passes.
pub const PARKED: &str = "(awaiting approval)";

/// A tool call waiting for a person, as the history records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalRequest {
    /// The agent that asked (`lead/researcher` for a sub-agent).
    pub agent: String,
    /// The call's id, as the model gave it.
    pub call_id: String,
    /// The tool, as the model named it (`github__create_issue`).
    pub tool: String,
    /// Its arguments (secrets already masked, as everything recorded is).
    pub arguments: Value,
    /// The override's message for whoever decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When it is rejected if nobody decides (the agent's `approvalTimeout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Timestamp>,
}

/// What was decided about a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalDecision {
    /// The agent that asked.
    pub agent: String,
    /// The call.
    pub call_id: String,
    /// Run it (or give the model the refusal).
    pub approved: bool,
    /// Why it was rejected (the model reads it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who decided: the backend's actor (a person, a token), or `timeout`.
    pub by: String,
    /// When.
    pub at: Timestamp,
}

impl ApprovalDecision {
    /// What the model is told when the call is not run.
    #[must_use]
    pub fn refusal(&self) -> String {
        match (&self.reason, self.by.as_str()) {
            (_, "timeout") => "the call was not run: nobody approved it in time".to_owned(),
            (Some(reason), _) => format!("the call was not run: {} rejected it: {reason}", self.by),
            (None, _) => format!("the call was not run: {} rejected it", self.by),
        }
    }
}

/// The `event` tag of a request in the history.
pub const REQUESTED: &str = "approvalRequested";
/// The `event` tag of a decision in the history.
pub const DECIDED: &str = "approvalDecided";
/// The `event` tag of a park in the history.
pub const PARKED_EVENT: &str = "parked";

/// A request with what became of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Approval {
    /// The execution.
    pub execution: String,
    /// The request.
    pub request: ApprovalRequest,
    /// When it was asked.
    pub asked_at: Option<Timestamp>,
    /// The decision, once made.
    pub decision: Option<ApprovalDecision>,
}

/// The events of a history that count, oldest first: every park is a checkpoint, so an attempt
/// that ended in a park counts whole, as do the decisions made while parked; an attempt that
/// ended without parking (its worker died, and a later claim started over) does not; the last
/// attempt, still running or finished, does.
pub fn effective(events: &[(u64, Value)]) -> Vec<&Value> {
    let mut kept: Vec<&Value> = Vec::new();
    let mut attempt: Vec<&Value> = Vec::new();
    for (_, event) in events {
        match event.get("event").and_then(Value::as_str) {
            Some("claimed") => attempt.clear(),
            Some(PARKED_EVENT) => {
                kept.append(&mut attempt);
                kept.push(event);
            }
            // Written while parked, by whoever decided: never part of an attempt.
            Some(DECIDED | "signal") => kept.push(event),
            _ => attempt.push(event),
        }
    }
    kept.append(&mut attempt);
    kept
}

/// Every approval an execution's history asked for, in order, each with its decision.
pub fn approvals(execution: &str, events: &[(u64, Value)]) -> Vec<Approval> {
    let mut out: Vec<Approval> = Vec::new();
    for event in effective(events) {
        match event.get("event").and_then(Value::as_str) {
            Some(REQUESTED) => {
                if let Ok(request) = serde_json::from_value::<ApprovalRequest>(event.clone()) {
                    let asked_at = event.get("at").and_then(|at| serde_json::from_value(at.clone()).ok());
                    out.push(Approval { execution: execution.to_owned(), request, asked_at, decision: None });
                }
            }
            Some(DECIDED) => {
                if let Ok(decision) = serde_json::from_value::<ApprovalDecision>(event.clone())
                    && let Some(open) = out.iter_mut().find(|a| {
                        a.decision.is_none()
                            && a.request.call_id == decision.call_id
                            && a.request.agent == decision.agent
                    })
                {
                    open.decision = Some(decision);
                }
            }
            _ => {}
        }
    }
    out
}

/// Whether an execution is parked: waiting, and held by no worker.
#[must_use]
pub fn is_parked(record: &ExecutionRecord) -> bool {
    record.status == ExecutionStatus::Waiting && record.lease.as_ref().is_none_or(|lease| lease.worker == PARKED)
}

/// A decision asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Run the calls, or not.
    pub approve: bool,
    /// Why not: what the model reads.
    pub reason: Option<String>,
}

/// Why a decision could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    /// The execution does not wait for any approval.
    #[error("execution {id} is not waiting for an approval (it is {status})")]
    NotWaiting {
        /// The execution.
        id: String,
        /// How it stands.
        status: &'static str,
    },
    /// The call named is not one waiting.
    #[error("execution {id} has no call {call} waiting for approval; waiting: {waiting}")]
    NoSuchCall {
        /// The execution.
        id: String,
        /// The call asked for.
        call: String,
        /// The calls waiting.
        waiting: String,
    },
    /// The backend failed, or has no such execution.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

impl ApprovalError {
    /// What to do about it.
    #[must_use]
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::NotWaiting { .. } => Some("`stigmer execution approvals` lists the calls waiting".to_owned()),
            Self::NoSuchCall { .. } => Some("pass one of the waiting calls with --call".to_owned()),
            Self::Backend(BackendError::Conflict { .. }) => {
                Some("someone decided meanwhile; `stigmer execution approvals` shows what is still waiting".to_owned())
            }
            Self::Backend(_) => None,
        }
    }
}

/// Decides the calls execution `id` waits on — `call`, or all of them — and requeues it once
/// none is left waiting. Returns the requests decided.
///
/// # Errors
/// It does not exist or is not parked, the call is not one waiting, someone decided meanwhile
/// ([`BackendError::Conflict`]), or the backend failed.
pub async fn decide<B: Backend>(
    backend: &B,
    id: &str,
    call: Option<&str>,
    verdict: &Verdict,
) -> Result<Vec<ApprovalRequest>, ApprovalError> {
    let record = backend
        .execution_get(id)
        .await?
        .ok_or_else(|| BackendError::NotFound { address: format!("execution/{id}") })?;
    let not_waiting = || ApprovalError::NotWaiting { id: id.to_owned(), status: record.status.as_str() };
    if !is_parked(&record) {
        return Err(not_waiting());
    }
    let events = backend.execution_events(id, 0, None).await?;
    let after = events.last().map_or(0, |(sequence, _)| *sequence);
    let waiting: Vec<ApprovalRequest> =
        approvals(id, &events).into_iter().filter(|a| a.decision.is_none()).map(|a| a.request).collect();
    if waiting.is_empty() {
        return Err(not_waiting());
    }
    let chosen: Vec<ApprovalRequest> = match call {
        None => waiting.clone(),
        Some(call) => waiting.iter().filter(|r| r.call_id == call).cloned().collect(),
    };
    if chosen.is_empty() {
        let listed: Vec<&str> = waiting.iter().map(|r| r.call_id.as_str()).collect();
        return Err(ApprovalError::NoSuchCall {
            id: id.to_owned(),
            call: call.unwrap_or_default().to_owned(),
            waiting: listed.join(", "),
        });
    }
    let decisions = chosen
        .iter()
        .map(|request| Decision {
            agent: request.agent.clone(),
            call_id: request.call_id.clone(),
            tool: request.tool.clone(),
            approved: verdict.approve,
            reason: verdict.reason.clone(),
        })
        .collect();
    let requeue = chosen.len() == waiting.len();
    backend.execution_decide(id, after, decisions, requeue).await?;
    Ok(chosen)
}

/// One decision as a caller sends it: who decided, and when, the backend fills in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The agent that asked.
    pub agent: String,
    /// The call.
    pub call_id: String,
    /// The tool (for the audit log).
    pub tool: String,
    /// Run it, or not.
    pub approved: bool,
    /// Why not.
    pub reason: Option<String>,
}

impl Decision {
    /// The decision as the history records it, made by `by` at `at`.
    #[must_use]
    pub fn recorded(&self, by: &str, at: Timestamp) -> ApprovalDecision {
        ApprovalDecision {
            agent: self.agent.clone(),
            call_id: self.call_id.clone(),
            approved: self.approved,
            reason: self.reason.clone(),
            by: by.to_owned(),
            at,
        }
    }
}

/// Every approval the executions `records` asked for, read from their histories.
///
/// # Errors
/// The backend failed.
pub async fn listed<B: Backend>(backend: &B, records: &[ExecutionRecord]) -> Result<Vec<Approval>, BackendError> {
    let mut out = Vec::new();
    for record in records {
        let events = backend.execution_events(&record.id, 0, None).await?;
        out.extend(approvals(&record.id, &events));
    }
    Ok(out)
}

/// An event of the history, tagged: a request, a decision or a park.
///
/// # Errors
/// It cannot be encoded.
pub fn tagged(
    tag: &str,
    at: Timestamp,
    body: &impl Serialize,
) -> Result<Box<serde_json::value::RawValue>, BackendError> {
    let mut value = serde_json::to_value(body).map_err(|e| BackendError::Storage(format!("cannot encode: {e}")))?;
    if let Value::Object(fields) = &mut value {
        fields.insert("event".to_owned(), Value::String(tag.to_owned()));
        fields.insert("at".to_owned(), serde_json::to_value(at).unwrap_or(Value::Null));
    }
    serde_json::value::to_raw_value(&value).map_err(|e| BackendError::Storage(format!("cannot encode: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn numbered(events: Vec<Value>) -> Vec<(u64, Value)> {
        (1..).zip(events).collect()
    }

    #[test]
    fn a_park_is_a_checkpoint_and_a_dead_attempt_does_not_count() {
        let events = numbered(vec![
            json!({"event": "claimed", "attempt": 1}),
            json!({"event": "userMessage", "agent": "a", "text": "go"}),
            json!({"event": REQUESTED, "agent": "a", "callId": "c1", "tool": "t", "arguments": {}}),
            json!({"event": PARKED_EVENT}),
            json!({"event": DECIDED, "agent": "a", "callId": "c1", "approved": true, "by": "ana", "at": "2026-01-01T00:00:00Z"}),
            json!({"event": "claimed", "attempt": 2}),
            json!({"event": "toolResult", "agent": "a", "callId": "c1"}),
            // The worker died here; attempt 3 starts again from the park.
            json!({"event": "claimed", "attempt": 3}),
            json!({"event": "toolResult", "agent": "a", "callId": "c1", "again": true}),
        ]);
        let kept: Vec<&str> = effective(&events).iter().filter_map(|e| e["event"].as_str()).collect();
        assert_eq!(kept, ["userMessage", REQUESTED, PARKED_EVENT, DECIDED, "toolResult"]);
        assert_eq!(effective(&events).last().unwrap()["again"], true);
        let listed = approvals("x", &events);
        assert_eq!(listed.len(), 1);
        assert!(listed[0].decision.as_ref().is_some_and(|d| d.approved && d.by == "ana"));
    }

    #[test]
    fn a_request_of_an_attempt_that_never_parked_is_not_waiting() {
        let events = numbered(vec![
            json!({"event": "claimed", "attempt": 1}),
            json!({"event": REQUESTED, "agent": "a", "callId": "c1", "tool": "t", "arguments": {}}),
            json!({"event": "claimed", "attempt": 2}),
        ]);
        assert!(approvals("x", &events).is_empty());
    }
}
