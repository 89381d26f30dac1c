//! The steps an agent run reports — what its execution's history records, and what a session
//! and a resumed turn are read back from.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::backend::approval::{ApprovalDecision, ApprovalRequest};

/// What a run reports, step by step. Recorded in the execution's log as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "event", rename_all_fields = "camelCase")]
pub enum AgentEvent {
    /// The message the agent was given.
    UserMessage {
        /// The agent (a sub-agent's name when it is one).
        agent: String,
        /// The message.
        text: String,
        /// For a sub-agent: the parent's call that gave it the message.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call: Option<String>,
    },
    /// One answer of the model.
    AssistantMessage {
        /// The agent.
        agent: String,
        /// The step: 1 for the first answer.
        step: u32,
        /// What it wrote.
        text: String,
        /// The tools it called.
        tool_calls: Vec<RecordedCall>,
        /// The model that answered, as its server named it.
        model: String,
        /// Tokens read and written.
        input_tokens: u64,
        /// Tokens written.
        output_tokens: u64,
        /// Tokens of the prompt read from the provider's cache (a part of `input_tokens`).
        #[serde(default, skip_serializing_if = "is_zero")]
        cached_tokens: u64,
    },
    /// A tool call's result.
    ToolResult {
        /// The agent that called it.
        agent: String,
        /// The call's id.
        call_id: String,
        /// The tool's name, as the model saw it.
        tool: String,
        /// The result as given to the model.
        content: String,
        /// Whether it was an error.
        is_error: bool,
        /// How long the call took.
        duration_ms: u64,
    },
    /// The agent's final answer.
    Answer {
        /// The agent.
        agent: String,
        /// The answer.
        text: String,
    },
    /// A call that waits for a person's approval.
    ApprovalRequested(ApprovalRequest),
    /// A person's decision on such a call (or its deadline passing).
    ApprovalDecided(ApprovalDecision),
}

impl AgentEvent {
    /// The agent whose step it is (its path, `parent/child` for a sub-agent).
    pub fn agent(&self) -> &str {
        match self {
            Self::UserMessage { agent, .. }
            | Self::AssistantMessage { agent, .. }
            | Self::ToolResult { agent, .. }
            | Self::Answer { agent, .. } => agent,
            Self::ApprovalRequested(request) => &request.agent,
            Self::ApprovalDecided(decision) => &decision.agent,
        }
    }

    /// The step as the agent's own under `name` (its executions recorded an old name).
    #[must_use]
    pub fn as_agent(mut self, name: &str) -> Self {
        let agent = match &mut self {
            Self::UserMessage { agent, .. }
            | Self::AssistantMessage { agent, .. }
            | Self::ToolResult { agent, .. }
            | Self::Answer { agent, .. } => agent,
            Self::ApprovalRequested(request) => &mut request.agent,
            Self::ApprovalDecided(decision) => &mut decision.agent,
        };
        name.clone_into(agent);
        self
    }
}

/// A tool call as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedCall {
    /// The call's id.
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// Its arguments.
    pub arguments: Value,
}

#[allow(clippy::trivially_copy_pass_by_ref, reason = "serde's skip_serializing_if takes a reference")]
fn is_zero(count: &u64) -> bool {
    *count == 0
}
