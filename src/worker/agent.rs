//! Running a claimed agent execution: its agent made ready from the resources its record
//! carries (no read of the org's resources), its conversation continued from the session the
//! record carries, every step appended under the lease's epoch.
//!
//! A turn is the unit of work: an agent execution taken over from a worker that died runs its
//! turn again from the start (its tools may be called again: at least once per turn), and the
//! session keeps only the attempt that finished.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use super::{Close, Held, Outcome, PrepareError};
use crate::backend::{Backend, Claim, ExecutionStatus};
use crate::runner::agent::conversation::{self, AgentError, AgentEvent, AgentObserver, Answer, Limits};
use crate::runner::agent::definition::AgentRun;
use crate::runner::agent::launch::{self, Launched};
use crate::runner::agent::prepare;
use crate::runner::agent::provider::StreamEvent;
use crate::runner::agent::resume::Past;
use crate::runner::agent::usage::Prices;
use crate::runner::environment::{self, Overrides};
use crate::runner::workflow::record::EventSink;
use crate::secrets::Redactor;

/// Whether an execution's target is an agent (or agent instance) rather than a workflow.
#[must_use]
pub fn is_agent(target: &str) -> bool {
    target.starts_with("agent/") || target.starts_with("agentinstance/")
}

/// A claimed agent execution, ready to run: its agent launched, its MCP servers started.
pub struct PreparedAgent {
    held: Held,
    run: AgentRun,
    message: String,
    launched: Launched,
    redactor: Redactor,
    /// What the execution recorded before: the run carries on from it.
    past: Past,
}

impl PreparedAgent {
    /// The run's redactor: it masks the run's secret values.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// The agent that runs (its steps are recorded under this name).
    pub fn agent(&self) -> &str {
        &self.launched.agent.name
    }

    /// The session it continues.
    pub fn session(&self) -> &str {
        &self.run.session
    }

    /// The model it runs on.
    pub fn model(&self) -> &str {
        &self.launched.agent.settings.model
    }
}

/// Reads a claimed agent execution's definition, resolves its variables (what it was created
/// with, then `extra`), prepares its agent in `workspaces/<id>` and starts its MCP servers.
///
/// # Errors
/// A record with no agent definition, or an agent that cannot be made ready.
pub async fn prepare<B: Backend>(
    backend: &B,
    claim: Claim,
    extra: Overrides,
    lease: Duration,
    workspaces: &Path,
) -> Result<PreparedAgent, PrepareError> {
    let epoch = claim.epoch();
    let record = claim.record;
    let id = record.id.clone();
    let run: AgentRun = record
        .definition
        .clone()
        .ok_or_else(|| "it has no definition".to_owned())
        .and_then(|d| serde_json::from_value(d).map_err(|e| format!("it is not an agent run: {e}")))
        .map_err(|detail| PrepareError::Definition { id: id.clone(), detail })?;
    let message = record.input.get("message").and_then(Value::as_str).unwrap_or_default().to_owned();
    let target = prepare::target(&run.resources, &run.name).await.map_err(launch::LaunchError::from)?;
    let mut overrides = Overrides { env: run.env.clone(), secret: claim.secrets };
    overrides.env.extend(extra.env);
    overrides.secret.extend(extra.secret);
    // Everything was resolved when the execution was created: no environment is read again.
    let variables = environment::resolve(backend, &target.declarations(), &[], &overrides)
        .await
        .map_err(launch::LaunchError::from)?;
    let redactor = variables.redactor();
    let workspace = workspaces.join(&id);
    let launched = launch::start(&run.resources, target, variables, run.model.as_deref(), &workspace).await?;
    let history = backend.execution_events(&id, 0, None).await?;
    let after = history.last().map_or(0, |(sequence, _)| *sequence);
    let past = Past::of(&history, redactor.masks_anything());
    Ok(PreparedAgent { held: Held { id, epoch, lease, after }, run, message, launched, redactor, past })
}

/// Runs a prepared agent execution to its end: every step goes to `observer` and, redacted, to
/// the execution's history under the lease's epoch, as a workflow's transitions do; its MCP
/// servers are stopped at the end.
pub async fn run<B: Backend>(
    backend: &B,
    prepared: PreparedAgent,
    prices: &Prices,
    observer: &mut dyn AgentObserver,
    stop: impl Future<Output = ()>,
) -> Outcome<Result<Answer, AgentError>> {
    let PreparedAgent { held, run, message, launched, redactor, past } = prepared;
    let history = conversation::messages_from_events(&run.history, &launched.agent.name);
    let limits = Limits {
        max_steps: run.max_steps,
        approval_timeout: run.agent.approval_timeout(),
        run: run.agent.run_limits(),
        prices: prices.clone(),
    };
    let work = |sink| {
        let (agent, toolset, past) = (&launched.agent, &launched.toolset, &past);
        async move {
            let mut tee = Tee { sink, observer };
            conversation::resume(agent, toolset, history, message, limits, past, &mut tee).await
        }
    };
    let session = run.session.clone();
    let finish = |result: &Result<Answer, AgentError>| match result {
        Ok(answer) => Close::Finish(
            ExecutionStatus::Completed,
            Some(redactor.redact_json(json!({ "answer": answer.text, "session": session }))),
            None,
        ),
        Err(AgentError::AwaitingApproval { until, .. }) => Close::Park(*until),
        Err(error) => Close::Finish(
            ExecutionStatus::Faulted,
            None,
            Some(
                redactor
                    .redact_json(json!({ "title": "Agent Error", "detail": error.to_string(), "hint": error.hint() })),
            ),
        ),
    };
    let outcome = super::drive(backend, &held, &redactor, None, work, stop, finish).await;
    launched.stop().await;
    outcome
}

/// An agent execution's step as its history keeps it: with when it happened.
#[derive(Serialize)]
struct Stamped<'a> {
    at: jiff::Timestamp,
    #[serde(flatten)]
    event: &'a AgentEvent,
}

/// Every step to the history and to the caller's observer.
struct Tee<'a> {
    sink: EventSink,
    observer: &'a mut dyn AgentObserver,
}

impl AgentObserver for Tee<'_> {
    fn event(&mut self, event: &AgentEvent) {
        self.sink.send(&Stamped { at: jiff::Timestamp::now(), event });
        self.observer.event(event);
    }

    fn stream(&mut self, agent: &str, event: &StreamEvent) {
        self.observer.stream(agent, event);
    }
}
