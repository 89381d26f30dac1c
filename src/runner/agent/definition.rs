//! What an agent execution runs, as its record keeps it: everything the run needs, read when
//! the execution is created, so any worker can run it with nothing but the record and the
//! secrets sealed with it — on the laptop that asked, or on a server's worker that may read no
//! resource at all.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::conversation::{AgentEvent, DEFAULT_MAX_STEPS, Limits};
use super::launch::LaunchError;
use super::prepare::{self, PrepareError, Target};
use super::resources::{Recording, Resources, Snapshot};
use super::session;
use crate::backend::Backend;
use crate::model::{AgentSpec, AnyResource, Kind};
use crate::runner::environment::{self, Overrides, Resolved};
use crate::secrets::SecretValue;

/// An agent execution's definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentRun {
    /// What was asked for: an agent or an agent instance.
    pub name: String,
    /// The agent that runs, as it was stored (for people reading the record), with its
    /// instance's run limits over its own.
    pub agent: AgentSpec,
    /// The session the run continues.
    pub session: String,
    /// The `--model` flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The most answers the model may give.
    #[serde(default = "default_max_steps")]
    pub max_steps: u32,
    /// The run's variables that are not secret, resolved (secret ones are sealed with the
    /// execution and reach only the worker that holds it).
    #[serde(default)]
    pub env: Vec<(String, String)>,
    /// The stored resources it uses.
    #[serde(default)]
    pub resources: Snapshot,
    /// The agent's steps in the session so far.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<AgentEvent>,
}

fn default_max_steps() -> u32 {
    DEFAULT_MAX_STEPS
}

/// An agent run, ready to be recorded.
pub struct NewRun {
    /// Its definition.
    pub run: AgentRun,
    /// Its input: the message and the session.
    pub input: Value,
    /// Who runs: its record's target (`agent/NAME` or `agentinstance/NAME`).
    pub target: Target,
    /// Its variables (their redactor masks the secret values).
    pub variables: Resolved,
}

/// What a run is asked to do.
pub struct Ask<'a> {
    /// The agent or agent instance.
    pub name: &'a str,
    /// The message.
    pub message: &'a str,
    /// The session it continues.
    pub session: &'a str,
    /// The `--model` flag.
    pub model: Option<&'a str>,
    /// Its limits.
    pub limits: Limits,
    /// `--env` and `--secret`.
    pub overrides: &'a Overrides,
}

impl NewRun {
    /// Reads what running `ask` needs from `backend`, now: the agent and everything it uses,
    /// its variables (an instance's environments and secret references resolved), and the
    /// session (created when it does not exist yet).
    ///
    /// # Errors
    /// The agent or something it uses is missing, a required value is missing, the session
    /// belongs to another agent, or the backend failed.
    pub async fn read<B: Backend>(backend: &B, ask: &Ask<'_>) -> Result<Self, LaunchError> {
        let (resources, target) = snapshot(backend, ask.name).await?;
        let variables =
            environment::resolve(backend, &target.declarations(), &target.environments, ask.overrides).await?;
        let history = session::open(backend, ask.session, &target.name, &target.address, ask.message).await?;
        let env = variables
            .variables
            .iter()
            .filter(|(_, variable)| !variable.secret)
            .map(|(name, variable)| (name.clone(), variable.value.expose().to_owned()))
            .collect();
        let run = AgentRun {
            name: ask.name.to_owned(),
            agent: target.spec.clone(),
            session: ask.session.to_owned(),
            model: ask.model.map(ToOwned::to_owned),
            max_steps: ask.limits.max_steps,
            env,
            resources,
            history,
        };
        let input = serde_json::json!({ "message": ask.message, "session": ask.session });
        Ok(Self { run, input, target, variables })
    }

    /// The secret values the run needs, to seal with its execution.
    pub fn secrets(&self) -> Vec<(String, SecretValue)> {
        let secret = self.variables.variables.iter().filter(|(_, variable)| variable.secret);
        secret.map(|(name, variable)| (name.clone(), variable.value.clone())).collect()
    }
}

/// The target `name` (an agent, or an agent instance) as `resources` hold it now, with
/// everything it uses: its instance's environments, its MCP servers, skills and referenced
/// sub-agents, all the way down.
///
/// # Errors
/// Something it needs is missing or does not read as its kind, or the backend failed.
async fn snapshot<R: Resources>(resources: &R, name: &str) -> Result<(Snapshot, Target), PrepareError> {
    let recording = Recording::new(resources);
    let target = prepare::target(&recording, name).await?;
    let mut agents = vec![target.spec.clone()];
    while let Some(spec) = agents.pop() {
        for reference in crate::model::ResourceSpec::references(&spec) {
            let Some(&kind) = reference.kinds.first() else { continue };
            if reference.by_id || recording.has(kind, &reference.name) {
                continue;
            }
            // Missing ones are left out: preparing says which, and who needs it.
            let manifest = recording.manifest(kind, &reference.name).await?;
            if kind == Kind::Agent
                && let Some(manifest) = manifest
                && let Ok(AnyResource::Agent(agent)) = AnyResource::from_value(Kind::Agent, manifest)
            {
                agents.push(agent.spec);
            }
        }
    }
    Ok((Snapshot::of(recording), target))
}
