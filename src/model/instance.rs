//! `AgentInstance` and `WorkflowInstance`: an agent or workflow bound, by name, to environments
//! (later ones win). Running an agent or workflow by name uses its implicit default instance.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::kind::Kind;
use super::reference::{Reference, ResourceRef};
use super::resource::{Resource, ResourceSpec};

/// An `AgentInstance` resource.
pub type AgentInstance = Resource<AgentInstanceSpec>;

/// A `WorkflowInstance` resource.
pub type WorkflowInstance = Resource<WorkflowInstanceSpec>;

/// An agent bound to environments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentInstanceSpec {
    /// The `Agent` this instance runs, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_ref: Option<ResourceRef>,
    /// The `Agent` this instance runs, by the id the backend gave it (Stigmer's `agent_id`;
    /// `stigmer get agents -o wide` shows ids), instead of `agentRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// What this instance is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `Environment`s providing the agent's variables, in order; later ones win.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment_refs: Vec<ResourceRef>,
    /// Most model answers a run may take, instead of the agent's `maxTurns`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_turns: Option<u64>,
    /// Most tokens a run may spend, instead of the agent's `maxTokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Most a run may cost, instead of the agent's `maxCost`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost: Option<f64>,
    /// Longest a run may take (ISO 8601), instead of the agent's `maxDuration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<String>,
}

/// A workflow bound to environments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkflowInstanceSpec {
    /// The `Workflow` this instance runs.
    pub workflow_ref: ResourceRef,
    /// What this instance is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `Environment`s providing the workflow's variables, in order; later ones win.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment_refs: Vec<ResourceRef>,
}

fn environment_references(refs: &[ResourceRef]) -> impl Iterator<Item = Reference> + '_ {
    refs.iter()
        .enumerate()
        .map(|(i, env)| Reference::to(&[Kind::Environment], env, format!("/spec/environmentRefs/{i}")))
}

impl ResourceSpec for AgentInstanceSpec {
    const KIND: Kind = Kind::AgentInstance;

    fn references(&self) -> Vec<Reference> {
        let by_name =
            self.agent_ref.iter().map(|agent| Reference::to(&[Kind::Agent], agent, "/spec/agentRef".to_owned()));
        let by_id = self.agent_id.iter().map(|id| Reference::id(&[Kind::Agent], id, "/spec/agentId".to_owned()));
        by_name.chain(by_id).chain(environment_references(&self.environment_refs)).collect()
    }
}

impl ResourceSpec for WorkflowInstanceSpec {
    const KIND: Kind = Kind::WorkflowInstance;

    fn references(&self) -> Vec<Reference> {
        std::iter::once(Reference::to(&[Kind::Workflow], &self.workflow_ref, "/spec/workflowRef".to_owned()))
            .chain(environment_references(&self.environment_refs))
            .collect()
    }
}

impl AgentInstanceSpec {
    /// An instance of the agent named `agent`.
    #[must_use]
    pub fn new(agent: impl Into<String>) -> Self {
        Self {
            agent_ref: Some(ResourceRef::named(agent)),
            agent_id: None,
            description: None,
            environment_refs: Vec::new(),
            max_turns: None,
            max_tokens: None,
            max_cost: None,
            max_duration: None,
        }
    }

    /// `agent` with this instance's run limits over its own.
    #[must_use]
    pub fn limiting(&self, mut agent: super::AgentSpec) -> super::AgentSpec {
        agent.max_turns = self.max_turns.or(agent.max_turns);
        agent.max_tokens = self.max_tokens.or(agent.max_tokens);
        agent.max_cost = self.max_cost.or(agent.max_cost);
        agent.max_duration = self.max_duration.clone().or(agent.max_duration);
        agent
    }

    /// Adds an environment (after those already added, so it wins over them).
    #[must_use]
    pub fn environment(mut self, name: impl Into<String>) -> Self {
        self.environment_refs.push(ResourceRef::named(name));
        self
    }
}

impl WorkflowInstanceSpec {
    /// An instance of the workflow named `workflow`.
    #[must_use]
    pub fn new(workflow: impl Into<String>) -> Self {
        Self { workflow_ref: ResourceRef::named(workflow), description: None, environment_refs: Vec::new() }
    }

    /// Adds an environment (after those already added, so it wins over them).
    #[must_use]
    pub fn environment(mut self, name: impl Into<String>) -> Self {
        self.environment_refs.push(ResourceRef::named(name));
        self
    }
}
