//! `McpServer`: a Model Context Protocol server, started over stdio, reached over streamable
//! HTTP, or run as a container. `${VAR}` placeholders are resolved at run time.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::environment::{EnvironmentSpec, VariableSpec};
use super::kind::Kind;
use super::resource::{Resource, ResourceSpec};

/// An `McpServer` resource.
pub type McpServer = Resource<McpServerSpec>;

/// A shared MCP server that agents use through `mcpServerUsages`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct McpServerSpec {
    /// What the server offers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Start the server as a local process speaking MCP over stdin/stdout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdio: Option<StdioTransport>,
    /// Reach the server over MCP's streamable HTTP transport.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpTransport>,
    /// Run the server as a container speaking MCP over stdio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerTransport>,
    /// Tools enabled when a usage does not choose; all tools when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub default_enabled_tools: Vec<String>,
    /// Variables the server needs (API keys, URLs), resolved from environments and secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_spec: Option<EnvironmentSpec>,
    /// Variables the server needs, in Stigmer's shape: name → description, secret, optional,
    /// default. Its `${VAR}` placeholders resolve from them; read together with `envSpec`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub env: IndexMap<String, VariableSpec>,
}

/// A server started as a local process.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StdioTransport {
    /// The program to run (`npx`, `uvx`, a path).
    pub command: String,
    /// Its arguments; `${VAR}` placeholders are resolved at run time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Working directory of the process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Environment variables of the process, usually `${VAR}` placeholders.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub env_placeholders: IndexMap<String, String>,
}

/// A server reached over streamable HTTP.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpTransport {
    /// The server's MCP endpoint; may hold `${VAR}` placeholders.
    pub url: String,
    /// HTTP headers sent with every request (`Authorization: Bearer ${TOKEN}`).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub headers: IndexMap<String, String>,
    /// Query parameters added to the URL.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub query_params: IndexMap<String, String>,
    /// Timeout for each request, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u32>,
}

/// A server run as a container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DockerTransport {
    /// The image to run.
    pub image: String,
    /// Arguments passed to the container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Environment variables of the container, usually `${VAR}` placeholders.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub env_placeholders: IndexMap<String, String>,
    /// Volumes to mount.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<VolumeMount>,
    /// Ports to publish.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortMapping>,
    /// Container network to join.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Name to give the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
}

/// A host directory mounted into a container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumeMount {
    /// Path on the host.
    pub host_path: String,
    /// Path in the container.
    pub container_path: String,
    /// Mount read-only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
}

/// A container port published on the host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortMapping {
    /// Port on the host.
    pub host_port: u16,
    /// Port in the container.
    pub container_port: u16,
    /// `tcp` (default) or `udp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

impl ResourceSpec for McpServerSpec {
    const KIND: Kind = Kind::McpServer;
}

impl McpServerSpec {
    /// A server started as `command args…`.
    #[must_use]
    pub fn stdio(command: impl Into<String>, args: impl IntoIterator<Item = impl Into<String>>) -> Self {
        let stdio = StdioTransport {
            command: command.into(),
            args: args.into_iter().map(Into::into).collect(),
            ..StdioTransport::default()
        };
        Self { stdio: Some(stdio), ..Self::default() }
    }

    /// A server reached over streamable HTTP at `url`.
    #[must_use]
    pub fn http(url: impl Into<String>) -> Self {
        Self { http: Some(HttpTransport { url: url.into(), ..HttpTransport::default() }), ..Self::default() }
    }

    /// Sets the description.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// The transports set, by field name; exactly one is expected.
    #[must_use]
    pub fn transports(&self) -> Vec<&'static str> {
        transports(self.stdio.is_some(), self.http.is_some(), self.docker.is_some())
    }
}

/// Names of the transports that are set, in field order.
pub(crate) fn transports(stdio: bool, http: bool, docker: bool) -> Vec<&'static str> {
    [("stdio", stdio), ("http", http), ("docker", docker)]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
}
