//! The MCP servers of one agent run, together: every enabled tool under its exposed name, and a
//! call by that name routed back to its server.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use super::McpError;
use super::config::ResolvedMcpServer;
use super::connection::{ConnectOptions, McpConnection};
use super::tools::{McpTool, ToolCallOutcome};

/// Connected MCP servers and the tools they offer the model.
#[derive(Debug)]
pub struct McpToolset {
    connections: Vec<McpConnection>,
    /// Exposed tool name → (connection, tool) indexes.
    routes: HashMap<String, (usize, usize)>,
}

impl McpToolset {
    /// Connects to every server, in order. If one fails, those already started are shut down.
    ///
    /// # Errors
    /// The first server that cannot be used, or two tools that would share an exposed name.
    pub async fn connect(servers: &[ResolvedMcpServer], options: &ConnectOptions) -> Result<Self, McpError> {
        let mut connections = Vec::with_capacity(servers.len());
        for server in servers {
            match McpConnection::connect(server, options).await {
                Ok(connection) => connections.push(connection),
                Err(error) => {
                    shutdown_all(connections).await;
                    return Err(error);
                }
            }
        }
        match routes(&connections) {
            Ok(routes) => Ok(Self { connections, routes }),
            Err(error) => {
                shutdown_all(connections).await;
                Err(error)
            }
        }
    }

    /// A toolset of connections made elsewhere (dropped, and so killed, on error).
    ///
    /// # Errors
    /// [`McpError::DuplicateToolName`] when two tools would share an exposed name (two servers of
    /// the same name).
    pub fn new(connections: Vec<McpConnection>) -> Result<Self, McpError> {
        let routes = routes(&connections)?;
        Ok(Self { connections, routes })
    }

    /// Every enabled tool of every server, servers in order.
    pub fn tools(&self) -> impl Iterator<Item = &McpTool> {
        self.connections.iter().flat_map(McpConnection::tools)
    }

    /// The connections, in order.
    pub fn connections(&self) -> &[McpConnection] {
        &self.connections
    }

    /// Calls the tool the model knows as `exposed_name`; see [`McpConnection::call_tool`]. An
    /// unknown name is an error outcome too.
    pub async fn call(&self, exposed_name: &str, arguments: Value, timeout: Duration) -> ToolCallOutcome {
        let route = self.routes.get(exposed_name).and_then(|&(connection, tool)| {
            let connection = self.connections.get(connection)?;
            Some((connection, connection.tools().get(tool)?))
        });
        let Some((connection, tool)) = route else {
            let text = format!("there is no tool \"{exposed_name}\"");
            return ToolCallOutcome { text, is_error: true, duration: Duration::ZERO };
        };
        connection.call_tool(&tool.name, arguments, timeout).await
    }

    /// Shuts every server down (see [`McpConnection::shutdown`]).
    ///
    /// # Errors
    /// The first server whose process could not be stopped; the others are still stopped.
    pub async fn shutdown(self) -> Result<(), McpError> {
        let mut first_error = None;
        for connection in self.connections {
            if let Err(error) = connection.shutdown().await {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

fn routes(connections: &[McpConnection]) -> Result<HashMap<String, (usize, usize)>, McpError> {
    let mut routes: HashMap<String, (usize, usize)> = HashMap::new();
    for (c, connection) in connections.iter().enumerate() {
        for (t, tool) in connection.tools().iter().enumerate() {
            if let Some(&(other, _)) = routes.get(&tool.exposed_name) {
                return Err(McpError::DuplicateToolName {
                    name: tool.exposed_name.clone(),
                    first: connections[other].server().to_owned(),
                    second: connection.server().to_owned(),
                });
            }
            routes.insert(tool.exposed_name.clone(), (c, t));
        }
    }
    Ok(routes)
}

async fn shutdown_all(connections: Vec<McpConnection>) {
    for connection in connections {
        // Already failing; a process that resists is killed when dropped anyway.
        let _ = connection.shutdown().await;
    }
}
