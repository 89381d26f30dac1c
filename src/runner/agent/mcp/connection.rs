//! One connected MCP server: started (stdio) or reached (streamable HTTP), initialized, its
//! enabled tools listed; tool calls that always come back as an outcome; an explicit shutdown
//! that leaves no process behind.

use std::fmt;
use std::time::{Duration, Instant};

use rmcp::model::{CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation};
use rmcp::service::{ClientInitializeError, RunningService};
use rmcp::transport::DynamicTransportError;
use rmcp::transport::streamable_http_client::StreamableHttpError;
use rmcp::{RoleClient, ServiceError, ServiceExt as _};
use serde_json::Value;

use super::config::{ResolvedMcpServer, ResolvedTransport};
use super::error::StderrTail;
use super::process::{ServerProcess, describe_exit};
use super::tools::{McpTool, ToolCallOutcome, result_text, select_tools};
use super::{McpError, http};
use crate::secrets::Redactor;

/// Timeouts of connecting to and stopping a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    /// How long MCP's initialization may take, and then listing the tools (an HTTP server's
    /// `timeoutSeconds` shortens both).
    pub initialize_timeout: Duration,
    /// How long a stdio server has to exit by itself after its stdin closes, before it is killed.
    pub shutdown_grace: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        // npx/uvx servers may download their package on first start.
        Self { initialize_timeout: Duration::from_mins(1), shutdown_grace: Duration::from_secs(2) }
    }
}

/// A connected MCP server and its enabled tools. Dropping it ends the session and kills a
/// stdio server's process; [`McpConnection::shutdown`] does so gracefully and waits for it.
pub struct McpConnection {
    server: String,
    session: RunningService<RoleClient, ClientConfig>,
    /// The process of a stdio server.
    process: Option<ServerProcess>,
    tools: Vec<McpTool>,
    /// An HTTP server's `timeoutSeconds`.
    request_timeout: Option<Duration>,
    redactor: Redactor,
    shutdown_grace: Duration,
}

impl fmt::Debug for McpConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpConnection")
            .field("server", &self.server)
            .field("pid", &self.pid())
            .field("tools", &self.tools.iter().map(|tool| &tool.name).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl McpConnection {
    /// Starts or reaches the server, initializes the MCP session and lists its enabled tools.
    ///
    /// # Errors
    /// The process cannot start, or exits, fails or stalls during initialization (with the end
    /// of its stderr); an HTTP setting is invalid; the tools cannot be listed; an enabled tool
    /// does not exist. Nothing is left running.
    pub async fn connect(server: &ResolvedMcpServer, options: &ConnectOptions) -> Result<Self, McpError> {
        let name = server.name.clone();
        let client =
            ClientConfig::new(ClientCapabilities::default(), Implementation::new("stigmer", env!("CARGO_PKG_VERSION")));
        let (session, process, request_timeout) = match &server.transport {
            ResolvedTransport::Stdio(settings) => {
                let (process, output, input) = ServerProcess::spawn(&name, settings, server.redactor.clone())?;
                let initialized = tokio::time::timeout(options.initialize_timeout, client.serve((output, input))).await;
                match initialized {
                    Ok(Ok(session)) => (session, Some(process), None),
                    Ok(Err(error)) => {
                        let mut reason = server.redactor.redact(&error_chain(&error));
                        if let Some(status) = process.settled_exit_status().await {
                            reason = format!("the process {} ({reason})", describe_exit(status));
                        }
                        let _ = process.stop(Duration::ZERO).await;
                        return Err(McpError::Initialize { server: name, reason, stderr: process.stderr_tail() });
                    }
                    Err(_) => {
                        let _ = process.stop(Duration::ZERO).await;
                        let timeout = options.initialize_timeout;
                        return Err(McpError::InitializeTimeout {
                            server: name,
                            timeout,
                            stderr: process.stderr_tail(),
                        });
                    }
                }
            }
            ResolvedTransport::Http(settings) => {
                let transport = http::transport(&name, settings)?;
                let timeout =
                    settings.timeout.map_or(options.initialize_timeout, |t| t.min(options.initialize_timeout));
                match tokio::time::timeout(timeout, client.serve(transport)).await {
                    Ok(Ok(session)) => (session, None, settings.timeout),
                    Ok(Err(error)) => {
                        let reason = format!(
                            "cannot initialize a session at {}: {}",
                            settings.url_as_written,
                            server.redactor.redact(&error_chain(&error))
                        );
                        return Err(McpError::Initialize { server: name, reason, stderr: StderrTail::default() });
                    }
                    Err(_) => {
                        return Err(McpError::InitializeTimeout {
                            server: name,
                            timeout,
                            stderr: StderrTail::default(),
                        });
                    }
                }
            }
        };
        let mut connection = Self {
            server: name,
            session,
            process,
            tools: Vec::new(),
            request_timeout,
            redactor: server.redactor.clone(),
            shutdown_grace: options.shutdown_grace,
        };
        let list_timeout = request_timeout.map_or(options.initialize_timeout, |t| t.min(options.initialize_timeout));
        match connection.list_tools(&server.enabled_tools, list_timeout).await {
            Ok(tools) => {
                connection.tools = tools;
                Ok(connection)
            }
            Err(error) => {
                let _ = connection.shutdown().await;
                Err(error)
            }
        }
    }

    async fn list_tools(&self, enabled: &[String], timeout: Duration) -> Result<Vec<McpTool>, McpError> {
        let listed = tokio::time::timeout(timeout, self.session.peer().list_all_tools()).await;
        let offered = match listed {
            Ok(Ok(offered)) => offered,
            Ok(Err(error)) => {
                let (reason, stderr) = self.describe_failure(&error).await;
                return Err(McpError::ListTools { server: self.server.clone(), reason, stderr });
            }
            Err(_) => {
                let reason = format!("no answer within {timeout:?}");
                return Err(McpError::ListTools { server: self.server.clone(), reason, stderr: self.stderr_tail() });
            }
        };
        select_tools(&self.server, offered, enabled)
    }

    /// The server's name.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The enabled tools, in the server's order.
    pub fn tools(&self) -> &[McpTool] {
        &self.tools
    }

    /// The process id of a stdio server.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().and_then(ServerProcess::pid)
    }

    /// Calls `tool` (its name at the server) with `arguments` (a JSON object, or null for none),
    /// giving up after `timeout` (or the server's `timeoutSeconds`, if shorter). Never fails: a
    /// tool error, a protocol error, a timeout or a dead server is an outcome with `is_error`.
    pub async fn call_tool(&self, tool: &str, arguments: Value, timeout: Duration) -> ToolCallOutcome {
        let started = Instant::now();
        let (text, is_error) = match self.call(tool, arguments, timeout).await {
            Ok(text) => (text, false),
            Err(text) => (text, true),
        };
        ToolCallOutcome { text, is_error, duration: started.elapsed() }
    }

    /// The tool's text, or what went wrong (both for the model).
    async fn call(&self, tool: &str, arguments: Value, timeout: Duration) -> Result<String, String> {
        let server = &self.server;
        if !self.tools.iter().any(|enabled| enabled.name == tool) {
            return Err(format!("MCP server \"{server}\" has no enabled tool \"{tool}\""));
        }
        let mut params = CallToolRequestParams::new(tool.to_owned());
        match arguments {
            Value::Object(arguments) => params = params.with_arguments(arguments),
            Value::Null => {}
            _ => return Err(format!("the arguments of tool \"{tool}\" must be a JSON object")),
        }
        if let Some(process) = &self.process
            && let Some(status) = process.exit_status().await
        {
            let stderr = process.stderr_tail();
            return Err(format!(
                "MCP server \"{server}\" is not running: the process {}{stderr}",
                describe_exit(status)
            ));
        }
        let limit = self.request_timeout.map_or(timeout, |t| t.min(timeout));
        // Giving up drops the request, and rmcp then tells the server it is cancelled.
        match tokio::time::timeout(limit, self.session.call_tool(params)).await {
            Ok(Ok(result)) if result.is_error == Some(true) => Err(result_text(&result)),
            Ok(Ok(result)) => Ok(result_text(&result)),
            Ok(Err(ServiceError::McpError(error))) => Err(format!(
                "MCP server \"{server}\" rejected the call to \"{tool}\": {} (JSON-RPC error {})",
                self.redactor.redact(&error.message),
                error.code.0
            )),
            Ok(Err(error)) => {
                let (reason, stderr) = self.describe_failure(&error).await;
                Err(format!("the call to tool \"{tool}\" of MCP server \"{server}\" failed: {reason}{stderr}"))
            }
            Err(_) => Err(format!(
                "tool \"{tool}\" of MCP server \"{server}\" did not answer within {limit:?}; the call was cancelled"
            )),
        }
    }

    /// Why a request failed: for a stdio server whose process ended, how it ended and its stderr.
    async fn describe_failure(&self, error: &ServiceError) -> (String, StderrTail) {
        let reason = self.redactor.redact(&error_chain(error));
        let Some(process) = &self.process else { return (reason, StderrTail::default()) };
        match process.settled_exit_status().await {
            Some(status) => (format!("the server process {} ({reason})", describe_exit(status)), process.stderr_tail()),
            None => (reason, process.stderr_tail()),
        }
    }

    fn stderr_tail(&self) -> StderrTail {
        self.process.as_ref().map(ServerProcess::stderr_tail).unwrap_or_default()
    }

    /// Ends the session (an HTTP server is told to drop it) and, for a stdio server, closes its
    /// stdin, gives it `shutdown_grace` to exit and kills it otherwise. The process is gone
    /// when this returns.
    ///
    /// # Errors
    /// [`McpError::Shutdown`] when the process cannot be killed.
    pub async fn shutdown(mut self) -> Result<(), McpError> {
        // A session that does not close in time is abandoned; the process is dealt with below.
        let _ = self.session.close_with_timeout(self.shutdown_grace).await;
        if let Some(process) = &self.process {
            process
                .stop(self.shutdown_grace)
                .await
                .map_err(|source| McpError::Shutdown { server: self.server.clone(), source })?;
        }
        Ok(())
    }
}

/// An error and its causes as one line in plain words. rmcp's wrappers name Rust types
/// (`Transport [WorkerTransport<…>] error`) and some drop their cause from `source()`, which
/// holds what the user needs ("Connection refused"): skip the former, follow the latter.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(error);
    while let Some(error) = current {
        let (text, next): (Option<String>, Option<&(dyn std::error::Error + 'static)>) =
            if let Some(ServiceError::TransportSend(inner)) = error.downcast_ref::<ServiceError>() {
                (None, Some(inner))
            } else if let Some(ServiceError::TransportClosed) = error.downcast_ref::<ServiceError>() {
                (Some("the connection closed".to_owned()), None)
            } else if let Some(transport) = error.downcast_ref::<DynamicTransportError>() {
                (None, Some(transport.error.as_ref()))
            } else if let Some(ClientInitializeError::TransportError { error, context }) = error.downcast_ref() {
                (Some(context.to_string()), Some(error))
            } else if let Some(StreamableHttpError::Client(inner)) =
                error.downcast_ref::<StreamableHttpError<reqwest::Error>>()
            {
                (None, Some(inner))
            } else {
                (Some(error.to_string()), error.source())
            };
        if let Some(text) = text
            && !parts.last().is_some_and(|last| last.contains(&text))
        {
            parts.push(text);
        }
        current = next;
    }
    parts.join(": ")
}
