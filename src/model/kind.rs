//! The kinds of resource stigmer knows, their dependency order and the names people type for them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A kind of resource.
///
/// The declarative kinds are listed in dependency order: a resource may only refer to kinds
/// listed before its own, so applying in this order (and deleting in reverse) never leaves a
/// dangling reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Kind {
    /// Key/value configuration and secret references, bound to instances.
    Environment,
    /// Instructions and files an agent can use.
    Skill,
    /// A Model Context Protocol server agents can take tools from.
    McpServer,
    /// An LLM with instructions, tools, skills and sub-agents.
    Agent,
    /// An agent bound to environments.
    AgentInstance,
    /// A Serverless Workflow 1.0 document.
    Workflow,
    /// A workflow bound to environments.
    WorkflowInstance,
    /// A conversation kept across agent executions (runtime).
    Session,
    /// One run of an agent (runtime).
    AgentExecution,
    /// One run of a workflow (runtime).
    WorkflowExecution,
}

impl Kind {
    /// Every kind: declarative ones in dependency order, then runtime ones.
    pub const ALL: [Self; 10] = [
        Self::Environment,
        Self::Skill,
        Self::McpServer,
        Self::Agent,
        Self::AgentInstance,
        Self::Workflow,
        Self::WorkflowInstance,
        Self::Session,
        Self::AgentExecution,
        Self::WorkflowExecution,
    ];

    /// The kinds that are applied from manifests, in dependency order.
    pub const DECLARATIVE: [Self; 7] = [
        Self::Environment,
        Self::Skill,
        Self::McpServer,
        Self::Agent,
        Self::AgentInstance,
        Self::Workflow,
        Self::WorkflowInstance,
    ];

    /// The name written in manifests (`kind: McpServer`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Environment => "Environment",
            Self::Skill => "Skill",
            Self::McpServer => "McpServer",
            Self::Agent => "Agent",
            Self::AgentInstance => "AgentInstance",
            Self::Workflow => "Workflow",
            Self::WorkflowInstance => "WorkflowInstance",
            Self::Session => "Session",
            Self::AgentExecution => "AgentExecution",
            Self::WorkflowExecution => "WorkflowExecution",
        }
    }

    /// The lower-case name used in resource addresses (`agent/support-bot`) and on the CLI.
    #[must_use]
    pub const fn cli_name(self) -> &'static str {
        match self {
            Self::Environment => "environment",
            Self::Skill => "skill",
            Self::McpServer => "mcpserver",
            Self::Agent => "agent",
            Self::AgentInstance => "agentinstance",
            Self::Workflow => "workflow",
            Self::WorkflowInstance => "workflowinstance",
            Self::Session => "session",
            Self::AgentExecution => "agentexecution",
            Self::WorkflowExecution => "workflowexecution",
        }
    }

    /// Short names accepted on the command line besides the singular and plural.
    const fn short_names(self) -> &'static [&'static str] {
        match self {
            Self::Environment => &["env", "envs"],
            Self::McpServer => &["mcp", "mcps"],
            Self::AgentInstance => &["ai", "instance"],
            Self::Workflow => &["wf", "wfs"],
            Self::WorkflowInstance => &["wfi"],
            Self::Skill | Self::Agent | Self::Session => &[],
            Self::AgentExecution => &["ae", "execution"],
            Self::WorkflowExecution => &["wfe", "wfx"],
        }
    }

    /// Whether resources of this kind are applied from manifests (rather than created by runs).
    #[must_use]
    pub fn is_declarative(self) -> bool {
        Self::DECLARATIVE.contains(&self)
    }

    /// Position in dependency order (runtime kinds come last).
    #[must_use]
    pub fn order(self) -> usize {
        Self::ALL.iter().position(|k| *k == self).unwrap_or(Self::ALL.len())
    }

    /// Parses the kind as written in a manifest: the exact name, as in Kubernetes.
    #[must_use]
    pub fn from_manifest(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Parses a kind as typed on the command line: case-insensitive, singular or plural, with or
    /// without `-`/`_` between words, or a short name (`agents`, `mcp-server`, `wf`).
    #[must_use]
    pub fn from_cli(name: &str) -> Option<Self> {
        let folded: String = name.chars().filter(|c| *c != '-' && *c != '_').flat_map(char::to_lowercase).collect();
        Self::ALL.into_iter().find(|kind| {
            let singular = kind.cli_name();
            folded == singular
                || folded.strip_suffix('s') == Some(singular)
                || kind.short_names().contains(&folded.as_str())
        })
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A kind name that matches no kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown kind \"{0}\"")]
pub struct UnknownKind(pub String);

impl FromStr for Kind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_cli(s).ok_or_else(|| UnknownKind(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_names_are_case_insensitive_with_plurals_and_aliases() {
        for (typed, kind) in [
            ("agent", Kind::Agent),
            ("Agents", Kind::Agent),
            ("AGENT", Kind::Agent),
            ("mcpserver", Kind::McpServer),
            ("mcp-servers", Kind::McpServer),
            ("mcp_server", Kind::McpServer),
            ("McpServer", Kind::McpServer),
            ("env", Kind::Environment),
            ("environments", Kind::Environment),
            ("wf", Kind::Workflow),
            ("workflow-instances", Kind::WorkflowInstance),
            ("sessions", Kind::Session),
        ] {
            assert_eq!(Kind::from_cli(typed), Some(kind), "{typed}");
        }
        assert_eq!(Kind::from_cli("agentz"), None);
        assert_eq!(Kind::from_cli(""), None);
    }

    #[test]
    fn manifest_kinds_are_exact() {
        assert_eq!(Kind::from_manifest("McpServer"), Some(Kind::McpServer));
        assert_eq!(Kind::from_manifest("mcpserver"), None);
    }

    #[test]
    fn dependency_order_puts_targets_first() {
        assert!(Kind::Environment.order() < Kind::Agent.order());
        assert!(Kind::Agent.order() < Kind::Workflow.order());
        assert!(Kind::WorkflowInstance.order() < Kind::Session.order());
    }
}
