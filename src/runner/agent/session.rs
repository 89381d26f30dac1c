//! Sessions: a conversation with an agent continued across executions. A `Session` resource
//! names it; its messages are the recorded events of the completed executions that ran in it,
//! so a session reads the same from a laptop or a server. A new execution carries the
//! conversation it continues (see [`super::definition`]), so the worker that runs it reads no
//! other execution.

use std::sync::Arc;

use super::conversation::AgentEvent;
use super::provider::excerpt;
use crate::backend::{Backend, BackendError, ExecutionQuery, ExecutionStatus, ResourceQuery};
use crate::model::{AnyResource, Kind, ResourceRef, Session, SessionSpec};
use crate::reconcile::{self, ReconcileError};

/// Why a session cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The session belongs to another agent.
    #[error("session `{session}` is a conversation with `{owner}`, not `{agent}`")]
    OtherAgent {
        /// The session.
        session: String,
        /// Whose it is.
        owner: String,
        /// Who was asked to continue it.
        agent: String,
    },
    /// The session's name is not a valid resource name.
    #[error("session name \"{name}\" {why}")]
    BadName {
        /// The name.
        name: String,
        /// Why.
        why: String,
    },
    /// Creating the session failed.
    #[error(transparent)]
    Reconcile(#[from] ReconcileError),
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// Opens session `name` for `agent` (the target's name, as its executions record it): creates
/// it when it does not exist yet, and returns the agent's own steps in its completed executions,
/// in order (what [`super::conversation::messages_from_events`] makes the conversation of). An execution that was
/// claimed again after its worker died ran its turn again from its last park: only the steps
/// that count do (see [`crate::backend::approval::effective`]).
///
/// # Errors
/// The name is invalid, the session belongs to another agent, or the backend failed.
pub async fn open<B: Backend>(
    backend: &B,
    name: &str,
    agent: &str,
    target: &str,
    subject: &str,
) -> Result<Vec<AgentEvent>, SessionError> {
    crate::model::meta::check_name(name)
        .map_err(|why| SessionError::BadName { name: name.to_owned(), why: why.to_string() })?;
    let Some(stored) = backend.get(Kind::Session, name).await? else {
        let spec = SessionSpec { agent_ref: ResourceRef::named(agent), subject: Some(subject_of(subject)) };
        let observed = backend.list(&ResourceQuery { kinds: vec![Kind::Session], ..ResourceQuery::default() }).await?;
        let plan = reconcile::plan_create(&Session::new(name.to_owned(), spec).into(), &observed)?;
        reconcile::apply(backend, &plan, false).await?;
        return Ok(Vec::new());
    };
    if let Ok(AnyResource::Session(session)) =
        AnyResource::from_value(Kind::Session, Arc::unwrap_or_clone(stored.manifest))
        && session.spec.agent_ref.name != agent
    {
        return Err(SessionError::OtherAgent {
            session: name.to_owned(),
            owner: session.spec.agent_ref.name,
            agent: agent.to_owned(),
        });
    }
    let query = ExecutionQuery {
        target: Some(target.to_owned()),
        status: Some(ExecutionStatus::Completed),
        definitions: true,
        ..ExecutionQuery::default()
    };
    let mut steps = Vec::new();
    for record in backend.execution_list(&query).await? {
        let in_session = record.definition.as_ref().and_then(|d| d.get("session")).and_then(|s| s.as_str());
        if in_session != Some(name) {
            continue;
        }
        let events = backend.execution_events(&record.id, 0, None).await?;
        let recorded: Vec<AgentEvent> = crate::backend::approval::effective(&events)
            .into_iter()
            .filter_map(|event| serde_json::from_value::<AgentEvent>(event.clone()).ok())
            .collect();
        // The root agent is the one the run's message went to: under the name it had then (an
        // agent renamed since keeps its sessions).
        let root = recorded.iter().find_map(|event| match event {
            AgentEvent::UserMessage { agent, call: None, .. } => Some(agent.clone()),
            _ => None,
        });
        let Some(root) = root else { continue };
        steps.extend(recorded.into_iter().filter(|event| event.agent() == root).map(|event| event.as_agent(agent)));
    }
    Ok(steps)
}

/// A session's subject: the first line of its first message, shortened.
fn subject_of(message: &str) -> String {
    excerpt(message.lines().next().unwrap_or_default(), 60)
}
