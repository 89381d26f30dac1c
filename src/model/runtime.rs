//! Runtime kinds: created by running agents and workflows, listed and inspected, never applied
//! from manifests. Their `status` is written by the runners.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::kind::Kind;
use super::reference::ResourceRef;
use super::resource::{Resource, ResourceSpec};

/// A `Session` resource.
pub type Session = Resource<SessionSpec>;
/// An `AgentExecution` resource.
pub type AgentExecution = Resource<AgentExecutionSpec>;
/// A `WorkflowExecution` resource.
pub type WorkflowExecution = Resource<WorkflowExecutionSpec>;

/// A conversation with an agent, continued across executions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionSpec {
    /// The agent or agent instance the conversation is with.
    pub agent_ref: ResourceRef,
    /// A short subject, for listings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// One run of an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentExecutionSpec {
    /// The agent or agent instance run.
    pub agent_ref: ResourceRef,
    /// The session the run continues, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_ref: Option<ResourceRef>,
    /// The user's message.
    pub message: String,
    /// The model used, when chosen on the command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// One run of a workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkflowExecutionSpec {
    /// The workflow or workflow instance run.
    pub workflow_ref: ResourceRef,
    /// The workflow's input.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub input: serde_json::Value,
}

impl ResourceSpec for SessionSpec {
    const KIND: Kind = Kind::Session;
}

impl ResourceSpec for AgentExecutionSpec {
    const KIND: Kind = Kind::AgentExecution;
}

impl ResourceSpec for WorkflowExecutionSpec {
    const KIND: Kind = Kind::WorkflowExecution;
}
