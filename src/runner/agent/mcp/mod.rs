//! The MCP client of the agent runner: from an agent's MCP server definitions (inline, or shared
//! `McpServer` resources with their usages) to tools the model can call.
//!
//! ```text
//! McpServerConfig ─resolve(variables)─► ResolvedMcpServer ─connect─► McpConnection ─┐
//!   (from_definition / from_usage)        (${VAR} replaced)          (one server)    ├► McpToolset
//!                                                                                   ┘  server__tool → call
//! ```
//!
//! - A stdio server is a child process: the runner's environment plus the resolved
//!   `envPlaceholders`, its working directory, stderr kept (the last 4 KiB) for error messages,
//!   killed when dropped and stopped gracefully by `shutdown`.
//! - A streamable HTTP server gets the resolved headers and query parameters; its
//!   `timeoutSeconds` bounds initialization and every request.
//! - A tool call never fails: the tool's own error, a protocol error, a timeout or a crashed
//!   server come back as an error *outcome* whose text the agent loop hands to the model.
//!
//! Secret values never appear in `Debug` output or in messages: resolved settings are held as
//! `SecretValue`s, errors name variables and fields, and text from a server or the network is
//! masked before it is shown. This module does no printing and keeps no state between runs.

mod config;
mod connection;
mod error;
mod http;
mod placeholders;
mod process;
mod tools;
mod toolset;

#[cfg(test)]
mod tests;

pub use config::{McpServerConfig, McpTransport, ResolvedMcpServer};
pub use connection::{ConnectOptions, McpConnection};
pub use error::{McpError, StderrTail};
pub use placeholders::{PlaceholderProblem, Variables};
pub use tools::{McpTool, ToolCallOutcome, exposed_tool_name};
pub use toolset::McpToolset;
