//! `Agent`: an LLM with instructions, tools from MCP servers, skills and sub-agents.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::environment::{Declarations, EnvironmentSpec, VariableSpec};
use super::kind::Kind;
use super::mcp_server::{DockerTransport, HttpTransport, StdioTransport, transports};
use super::reference::{Reference, ResourceRef};
use super::resource::{Resource, ResourceSpec};

/// An `Agent` resource.
pub type Agent = Resource<AgentSpec>;

/// What an agent is and what it may use.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentSpec {
    /// What the agent does, for people and for parent agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// URL of an icon shown in user interfaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon_url: Option<String>,
    /// The system instructions the model follows.
    pub instructions: String,
    /// Which model runs the agent; the provider's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelConfig>,
    /// MCP servers defined inline, for this agent only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mcp_servers: Vec<McpServerDefinition>,
    /// Shared `McpServer` resources this agent uses, with the tools it may call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mcp_server_usages: Vec<McpServerUsage>,
    /// Skills added to the agent's instructions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skill_refs: Vec<ResourceRef>,
    /// Agents this agent can delegate to; each is offered to it as a tool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub_agents: Vec<SubAgent>,
    /// Variables the agent needs, with optional defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_spec: Option<EnvironmentSpec>,
    /// Variables the agent needs, in Stigmer's shape: name → description, secret, optional,
    /// default. Read together with `envSpec`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub env: IndexMap<String, VariableSpec>,
    /// Which MCP tool calls need a person's approval: `listed` (the default: as each usage's
    /// `toolApprovalOverrides` say), `always` (every one) or `never`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_approval: Option<ToolApproval>,
    /// How long a call waits for approval before it is rejected, as an ISO 8601 duration
    /// (`PT15M`); forever when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_timeout: Option<String>,
    /// Most model answers a run may take, its sub-agents' included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_turns: Option<u64>,
    /// Most tokens (input and output) a run may spend, its sub-agents' included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Most a run may cost under the price table (`model_prices` in the runner's
    /// `config.yaml`); a run of a model with no price is stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost: Option<f64>,
    /// Longest a run may take, as an ISO 8601 duration (`PT10M`); waiting for a person is not
    /// counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<String>,
}

/// The limits of one run, from its agent (or instance): unset ones do not apply.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RunLimits {
    /// Most model answers, sub-agents' included.
    pub max_turns: Option<u64>,
    /// Most tokens (input and output), sub-agents' included.
    pub max_tokens: Option<u64>,
    /// Most cost, under the price table.
    pub max_cost: Option<f64>,
    /// Longest the run may take (waiting for a person not counted).
    pub max_duration: Option<std::time::Duration>,
}

/// Which tool calls of an agent need a person's approval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ToolApproval {
    /// As each usage's `toolApprovalOverrides` say.
    #[default]
    Listed,
    /// Every MCP tool call.
    Always,
    /// None.
    Never,
}

impl AgentSpec {
    /// The approval timeout, when one is set and reads as a duration.
    #[must_use]
    pub fn approval_timeout(&self) -> Option<std::time::Duration> {
        self.approval_timeout.as_deref().and_then(|text| super::dsl::duration::iso8601(text).ok())
    }

    /// The run limits it sets.
    #[must_use]
    pub fn run_limits(&self) -> RunLimits {
        RunLimits {
            max_turns: self.max_turns,
            max_tokens: self.max_tokens,
            max_cost: self.max_cost,
            max_duration: self.max_duration.as_deref().and_then(|text| super::dsl::duration::iso8601(text).ok()),
        }
    }
}

/// The model behind an agent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelConfig {
    /// `ollama`, `openai` (or any OpenAI-compatible server) or `anthropic`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The model's name at that provider (`qwen2.5-coder:7b`, `claude-sonnet-4-5`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Sampling temperature, 0 to 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 2.0))]
    pub temperature: Option<f64>,
    /// Most tokens the model may produce per answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_tokens: Option<u32>,
    /// Base URL of the provider's API, when not the provider's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
}

/// An MCP server defined inside an agent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct McpServerDefinition {
    /// Name of the server within this agent; prefixes its tools and is what sub-agents select.
    pub name: String,
    /// Start the server as a local process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdio: Option<StdioTransport>,
    /// Reach the server over streamable HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpTransport>,
    /// Run the server as a container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerTransport>,
    /// Tools the agent may call; all when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub enabled_tools: Vec<String>,
}

impl McpServerDefinition {
    /// The transports set, by field name; exactly one is expected.
    #[must_use]
    pub fn transports(&self) -> Vec<&'static str> {
        transports(self.stdio.is_some(), self.http.is_some(), self.docker.is_some())
    }
}

/// Use of a shared `McpServer` resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct McpServerUsage {
    /// The `McpServer` used.
    pub mcp_server_ref: ResourceRef,
    /// Tools the agent may call; the server's `defaultEnabledTools` when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub enabled_tools: Vec<String>,
    /// Which tools need a person's approval before each call, as in Stigmer: a listed tool
    /// follows its `requiresApproval`, and once the list is given, a tool missing from it needs
    /// approval. Absent: no tool does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_approval_overrides: Option<Vec<ToolApprovalOverride>>,
}

/// Whether calling `tool` needs approval under a usage's overrides (see
/// [`McpServerUsage::tool_approval_overrides`]), and the message for whoever approves it.
#[must_use]
pub fn approval<'a>(overrides: Option<&'a [ToolApprovalOverride]>, tool: &str) -> Option<Option<&'a str>> {
    match overrides?.iter().find(|o| o.tool_name == tool) {
        Some(listed) => listed.requires_approval.then_some(listed.message.as_deref()),
        None => Some(None),
    }
}

/// Whether one tool of a used MCP server needs approval.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ToolApprovalOverride {
    /// The tool's name, as the server lists it.
    pub tool_name: String,
    /// Each call needs a person's approval.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub requires_approval: bool,
    /// What the person approving is told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A sub-agent: defined inline, or another `Agent` by reference.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubAgent {
    /// Name of the sub-agent; the parent calls it as a tool of this name.
    pub name: String,
    /// What the sub-agent does; the parent reads this to decide when to delegate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Instructions of an inline sub-agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// Model of an inline sub-agent; the parent's when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelConfig>,
    /// Names of the parent's MCP servers (inline or used) this sub-agent may use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mcp_servers: Vec<String>,
    /// Per MCP server, the tools this sub-agent may call.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub mcp_tool_selections: IndexMap<String, ToolSelection>,
    /// Skills of an inline sub-agent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skill_refs: Vec<ResourceRef>,
    /// Another `Agent` to use as this sub-agent, instead of an inline definition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_ref: Option<ResourceRef>,
}

/// A choice of tools from one MCP server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ToolSelection {
    /// The tools enabled.
    pub enabled_tools: Vec<String>,
}

impl ResourceSpec for AgentSpec {
    const KIND: Kind = Kind::Agent;

    fn references(&self) -> Vec<Reference> {
        let mut out = Vec::new();
        for (i, usage) in self.mcp_server_usages.iter().enumerate() {
            out.push(Reference::to(
                &[Kind::McpServer],
                &usage.mcp_server_ref,
                format!("/spec/mcpServerUsages/{i}/mcpServerRef"),
            ));
        }
        for (i, skill) in self.skill_refs.iter().enumerate() {
            out.push(Reference::to(&[Kind::Skill], skill, format!("/spec/skillRefs/{i}")));
        }
        for (i, sub) in self.sub_agents.iter().enumerate() {
            for (j, skill) in sub.skill_refs.iter().enumerate() {
                out.push(Reference::to(&[Kind::Skill], skill, format!("/spec/subAgents/{i}/skillRefs/{j}")));
            }
            if let Some(agent) = &sub.agent_ref {
                out.push(Reference::to(&[Kind::Agent], agent, format!("/spec/subAgents/{i}/agentRef")));
            }
        }
        out
    }
}

impl AgentSpec {
    /// An agent with these instructions.
    #[must_use]
    pub fn new(instructions: impl Into<String>) -> Self {
        Self { instructions: instructions.into(), ..Self::default() }
    }

    /// Sets the description.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Sets the provider and model name.
    #[must_use]
    pub fn model(mut self, provider: impl Into<String>, name: impl Into<String>) -> Self {
        let model = self.model.get_or_insert_with(ModelConfig::default);
        model.provider = Some(provider.into());
        model.name = Some(name.into());
        self
    }

    /// Adds a skill by name.
    #[must_use]
    pub fn skill(mut self, name: impl Into<String>) -> Self {
        self.skill_refs.push(ResourceRef::named(name));
        self
    }

    /// Uses a shared MCP server, restricted to `tools` (all of its default tools when empty).
    #[must_use]
    pub fn mcp_server(mut self, name: impl Into<String>, tools: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.mcp_server_usages.push(McpServerUsage {
            mcp_server_ref: ResourceRef::named(name),
            enabled_tools: tools.into_iter().map(Into::into).collect(),
            tool_approval_overrides: None,
        });
        self
    }

    /// Adds a sub-agent.
    #[must_use]
    pub fn sub_agent(mut self, sub_agent: SubAgent) -> Self {
        self.sub_agents.push(sub_agent);
        self
    }

    /// The variables a run of this agent needs: its own `envSpec` and `env` first (so it can give
    /// a server's variable a default), then those of the shared MCP servers it uses, given by
    /// address (`mcpserver/NAME`).
    pub fn declarations<'a>(
        &'a self,
        address: &str,
        servers: impl IntoIterator<Item = (String, &'a super::McpServerSpec)>,
    ) -> Declarations {
        let mut declared = Declarations::default();
        declared.env_spec(address, self.env_spec.as_ref()).env(address, &self.env);
        for (server, spec) in servers {
            declared.env_spec(&server, spec.env_spec.as_ref()).env(&server, &spec.env);
        }
        declared
    }

    /// Names an inline sub-agent may select MCP servers by: inline definitions and usages.
    #[must_use]
    pub fn mcp_server_names(&self) -> Vec<&str> {
        self.mcp_servers
            .iter()
            .map(|s| s.name.as_str())
            .chain(self.mcp_server_usages.iter().map(|u| u.mcp_server_ref.name.as_str()))
            .collect()
    }
}

impl SubAgent {
    /// An inline sub-agent.
    #[must_use]
    pub fn inline(name: impl Into<String>, description: impl Into<String>, instructions: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: Some(description.into()),
            instructions: Some(instructions.into()),
            ..Self::default()
        }
    }

    /// Lets the sub-agent use one of the parent's MCP servers.
    #[must_use]
    pub fn mcp_server(mut self, name: impl Into<String>) -> Self {
        self.mcp_servers.push(name.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_overrides_are_listed_an_unlisted_tool_needs_approval() {
        assert_eq!(approval(None, "create_issue"), None, "no list: nothing is gated");
        let overrides = [
            ToolApprovalOverride { tool_name: "search".into(), requires_approval: false, message: None },
            ToolApprovalOverride {
                tool_name: "delete_repo".into(),
                requires_approval: true,
                message: Some("deletes a repository".into()),
            },
        ];
        assert_eq!(approval(Some(&overrides), "search"), None);
        assert_eq!(approval(Some(&overrides), "delete_repo"), Some(Some("deletes a repository")));
        assert_eq!(approval(Some(&overrides), "create_issue"), Some(None), "missing from the list: gated");
        assert_eq!(approval(Some(&[]), "search"), Some(None), "an empty list gates every tool");
    }
}
