//! An MCP server as the agent runner uses it: one name, one transport, the enabled tools, built
//! from an inline definition or from a shared `McpServer` and its usage, then resolved against
//! the run's variables. Resolved values are held as [`SecretValue`]s, so `Debug` shows `***`.

use std::time::Duration;

use super::McpError;
use super::placeholders::{Resolver, Variables};
use crate::model::{
    HttpTransport, McpServerDefinition, McpServerSpec, McpServerUsage, StdioTransport, ToolApprovalOverride,
    ToolSelection,
};
use crate::secrets::{Redactor, SecretValue};

/// An MCP server an agent uses, before its placeholders are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpServerConfig {
    /// The name the agent knows it by; prefixes its tools.
    pub name: String,
    /// How to reach it.
    pub transport: McpTransport,
    /// The tools the agent may call; all that the server offers when empty.
    pub enabled_tools: Vec<String>,
    /// Which tools need a person's approval before each call (a usage's
    /// `toolApprovalOverrides`); `None`: none does.
    pub approvals: Option<Vec<ToolApprovalOverride>>,
}

/// How an MCP server is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum McpTransport {
    /// A local process speaking MCP on stdin/stdout.
    Stdio(StdioTransport),
    /// Streamable HTTP.
    Http(HttpTransport),
}

impl McpServerConfig {
    /// A server defined inline in an agent, with the tools it enables.
    pub fn from_definition(definition: &McpServerDefinition) -> Result<Self, McpError> {
        let transport = transport(
            &definition.name,
            definition.stdio.as_ref(),
            definition.http.as_ref(),
            definition.docker.is_some(),
        )?;
        Ok(Self {
            name: definition.name.clone(),
            transport,
            enabled_tools: definition.enabled_tools.clone(),
            approvals: None,
        })
    }

    /// A shared `McpServer` used by an agent: the usage's tools, else the server's
    /// `defaultEnabledTools`, else all.
    pub fn from_usage(usage: &McpServerUsage, server: &McpServerSpec) -> Result<Self, McpError> {
        let name = usage.mcp_server_ref.name.clone();
        let transport = transport(&name, server.stdio.as_ref(), server.http.as_ref(), server.docker.is_some())?;
        let enabled_tools = if usage.enabled_tools.is_empty() {
            server.default_enabled_tools.clone()
        } else {
            usage.enabled_tools.clone()
        };
        Ok(Self { name, transport, enabled_tools, approvals: usage.tool_approval_overrides.clone() })
    }

    /// Whether calling `tool` needs approval, with the message for whoever approves it.
    pub fn approval(&self, tool: &str) -> Option<Option<&str>> {
        crate::model::agent::approval(self.approvals.as_deref(), tool)
    }

    /// The same server for a sub-agent, narrowed to its selection (an empty selection keeps the
    /// parent's tools). It cannot reach beyond what the parent enables.
    pub fn narrowed(&self, selection: &ToolSelection) -> Result<Self, McpError> {
        if selection.enabled_tools.is_empty() {
            return Ok(self.clone());
        }
        let beyond: Vec<String> = if self.enabled_tools.is_empty() {
            Vec::new()
        } else {
            selection.enabled_tools.iter().filter(|tool| !self.enabled_tools.contains(tool)).cloned().collect()
        };
        if !beyond.is_empty() {
            return Err(McpError::NotEnabled { server: self.name.clone(), tools: beyond });
        }
        Ok(Self { enabled_tools: selection.enabled_tools.clone(), ..self.clone() })
    }

    /// Replaces every `${VAR}` in the stdio `args`, `envPlaceholders` values and `workingDir`, or
    /// in the http `url`, `headers` and `queryParams`.
    ///
    /// # Errors
    /// [`McpError::Placeholders`] listing every placeholder without a value, by field.
    pub fn resolve<V: Variables + ?Sized>(&self, variables: &V) -> Result<ResolvedMcpServer, McpError> {
        let mut resolver = Resolver::new(variables);
        let transport = match &self.transport {
            McpTransport::Stdio(stdio) => ResolvedTransport::Stdio(ResolvedStdio {
                command: stdio.command.clone(),
                args: (stdio.args.iter().enumerate())
                    .map(|(i, arg)| resolver.resolve(&format!("stdio.args[{i}]"), arg))
                    .collect(),
                env: (stdio.env_placeholders.iter())
                    .map(|(key, value)| (key.clone(), resolver.resolve(&format!("stdio.envPlaceholders.{key}"), value)))
                    .collect(),
                working_dir: stdio.working_dir.as_ref().map(|dir| resolver.resolve("stdio.workingDir", dir)),
            }),
            McpTransport::Http(http) => ResolvedTransport::Http(ResolvedHttp {
                url_as_written: http.url.clone(),
                url: resolver.resolve("http.url", &http.url),
                headers: (http.headers.iter())
                    .map(|(name, value)| (name.clone(), resolver.resolve(&format!("http.headers.{name}"), value)))
                    .collect(),
                query_params: (http.query_params.iter())
                    .map(|(name, value)| (name.clone(), resolver.resolve(&format!("http.queryParams.{name}"), value)))
                    .collect(),
                timeout: http.timeout_seconds.filter(|&seconds| seconds > 0).map(|s| Duration::from_secs(s.into())),
            }),
        };
        let (problems, secrets_used) = resolver.finish();
        if !problems.is_empty() {
            return Err(McpError::Placeholders { server: self.name.clone(), problems });
        }
        Ok(ResolvedMcpServer {
            name: self.name.clone(),
            transport,
            enabled_tools: self.enabled_tools.clone(),
            redactor: Redactor::new(secrets_used),
        })
    }
}

/// The one transport a definition sets.
fn transport(
    server: &str,
    stdio: Option<&StdioTransport>,
    http: Option<&HttpTransport>,
    docker: bool,
) -> Result<McpTransport, McpError> {
    match (stdio, http, docker) {
        (Some(stdio), None, false) => Ok(McpTransport::Stdio(stdio.clone())),
        (None, Some(http), false) => Ok(McpTransport::Http(http.clone())),
        (None, None, true) => Err(McpError::DockerUnsupported { server: server.to_owned() }),
        (None, None, false) => Err(McpError::NoTransport { server: server.to_owned() }),
        _ => Err(McpError::SeveralTransports {
            server: server.to_owned(),
            transports: crate::model::mcp_server::transports(stdio.is_some(), http.is_some(), docker),
        }),
    }
}

/// An MCP server with every placeholder resolved, ready to connect to.
#[derive(Debug, Clone)]
pub struct ResolvedMcpServer {
    pub(super) name: String,
    pub(super) transport: ResolvedTransport,
    pub(super) enabled_tools: Vec<String>,
    /// Masks the secret values substituted into the settings, in text from the server or network.
    pub(super) redactor: Redactor,
}

impl ResolvedMcpServer {
    /// The server's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

#[derive(Debug, Clone)]
pub(super) enum ResolvedTransport {
    Stdio(ResolvedStdio),
    Http(ResolvedHttp),
}

#[derive(Debug, Clone)]
pub(super) struct ResolvedStdio {
    pub(super) command: String,
    pub(super) args: Vec<SecretValue>,
    /// Added to the environment the runner itself has.
    pub(super) env: Vec<(String, SecretValue)>,
    pub(super) working_dir: Option<SecretValue>,
}

#[derive(Debug, Clone)]
pub(super) struct ResolvedHttp {
    /// The URL with its placeholders, safe to show in messages.
    pub(super) url_as_written: String,
    pub(super) url: SecretValue,
    pub(super) headers: Vec<(String, SecretValue)>,
    pub(super) query_params: Vec<(String, SecretValue)>,
    /// `timeoutSeconds`: bounds initialization and every request.
    pub(super) timeout: Option<Duration>,
}
