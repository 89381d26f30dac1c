//! Getting an agent ready to run, the same way for `stigmer agent execute` and for a workflow's
//! `call: agent`: the stored target, its variables resolved (`envSpec` and its MCP servers'
//! defaults < the instance's environments < overrides), the agent prepared with its skills in the
//! workspace, and its MCP servers connected with their placeholders resolved.

use std::path::Path;

use super::conversation::PreparedAgent;
use super::mcp::{ConnectOptions, McpError, McpToolset};
use super::prepare::{self, Inputs, PrepareError, Target};
use super::resources::Resources;
use super::session::SessionError;
use crate::backend::Backend;
use crate::runner::environment::{self, Overrides, ResolveError, Resolved};

/// An agent ready to run. Its MCP servers run until [`Launched::stop`] (or until it is dropped,
/// which kills them).
pub struct Launched {
    /// What was run.
    pub target: Target,
    /// The run's variables (its redactor masks their secret values).
    pub variables: Resolved,
    /// The agent, its tools attached.
    pub agent: PreparedAgent,
    /// Its MCP servers.
    pub toolset: McpToolset,
}

impl Launched {
    /// Stops the MCP servers. A server that does not stop in time is killed; that cannot change
    /// the run's outcome, so it is not an error.
    pub async fn stop(self) {
        let _ = self.toolset.shutdown().await;
    }
}

/// Why an agent could not be made ready.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The agent or something it needs is missing or unusable.
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    /// Variables are missing.
    #[error(transparent)]
    Variables(#[from] ResolveError),
    /// An MCP server could not be configured or started.
    #[error(transparent)]
    Mcp(#[from] McpError),
    /// The session cannot be continued.
    #[error(transparent)]
    Session(#[from] SessionError),
}

impl LaunchError {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Prepare(error) => error.hint(),
            Self::Variables(ResolveError::Missing(_)) | Self::Mcp(McpError::Placeholders { .. }) => {
                Some("give the missing values with --env KEY=VALUE or --secret KEY=VALUE".to_owned())
            }
            Self::Mcp(McpError::Spawn { .. }) => {
                Some("check the server's `stdio.command`: is it installed and on PATH?".to_owned())
            }
            Self::Mcp(McpError::Initialize { .. } | McpError::InitializeTimeout { .. }) => {
                Some("the server started but did not speak MCP; run its command by hand to see why".to_owned())
            }
            Self::Variables(_) | Self::Mcp(_) | Self::Session(_) => None,
        }
    }

    /// Whether the fault is in what the user asked for (a missing agent or value) rather than in
    /// something that failed while starting.
    pub fn is_input(&self) -> bool {
        !matches!(self, Self::Mcp(error) if !matches!(error, McpError::Placeholders { .. }))
    }
}

/// Makes agent (or agent instance) `name` ready to run.
///
/// # Errors
/// See [`LaunchError`].
pub async fn launch<B: Backend>(
    backend: &B,
    name: &str,
    model_flag: Option<&str>,
    overrides: &Overrides,
    workspace: &Path,
) -> Result<Launched, LaunchError> {
    let target = prepare::target(backend, name).await?;
    let variables = environment::resolve(backend, &target.declarations(), &target.environments, overrides).await?;
    start(backend, target, variables, model_flag, workspace).await
}

/// Makes `target` ready to run with its variables already resolved: its agent prepared from
/// `resources` (its skills placed in `workspace`) and its MCP servers started.
///
/// # Errors
/// See [`LaunchError`].
pub async fn start<R: Resources>(
    resources: &R,
    target: Target,
    variables: Resolved,
    model_flag: Option<&str>,
    workspace: &Path,
) -> Result<Launched, LaunchError> {
    let lookup = |name: &str| {
        variables
            .variables
            .get(name)
            .map(|variable| variable.value.expose().to_owned())
            .or_else(|| std::env::var(name).ok())
    };
    let inputs = Inputs { model_flag, lookup: &lookup, workspace: Some(workspace) };
    let mut agent = prepare::prepare(resources, &target.name, &target.spec, &inputs).await?;
    let servers =
        agent.all_mcp_servers().iter().map(|server| server.resolve(&variables)).collect::<Result<Vec<_>, _>>()?;
    let toolset = McpToolset::connect(&servers, &ConnectOptions::default()).await?;
    agent.attach_tools(&toolset);
    Ok(Launched { target, variables, agent, toolset })
}

/// Runs agents for a workflow's `call: agent` tasks, from `backend`: each call launches the
/// agent (no session), runs it to its final answer and stops its MCP servers.
pub struct WorkflowAgents<B> {
    backend: B,
    /// Where each call gets its workspace.
    workspaces: std::path::PathBuf,
}

impl<B> WorkflowAgents<B> {
    /// Agents from `backend`, with workspaces under `workspaces`.
    pub fn new(backend: B, workspaces: std::path::PathBuf) -> Self {
        Self { backend, workspaces }
    }
}

impl<B: Backend + Sync> crate::runner::workflow::AgentCaller for WorkflowAgents<B> {
    fn call(
        &self,
        call: crate::runner::workflow::AgentCall,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<String, String>> + Send + '_>> {
        Box::pin(async move {
            let workspace = self.workspaces.join(uuid::Uuid::new_v4().to_string());
            let overrides = Overrides { env: call.env, secret: Vec::new() };
            let launched = launch(&self.backend, &call.agent, call.model.as_deref(), &overrides, &workspace)
                .await
                .map_err(|error| match error.hint() {
                    Some(hint) => format!("{error} ({hint})"),
                    None => error.to_string(),
                })?;
            let limits = super::conversation::Limits::default();
            let result = super::conversation::converse(
                &launched.agent,
                &launched.toolset,
                Vec::new(),
                call.message,
                limits,
                &mut (),
            )
            .await;
            let redactor = launched.variables.redactor();
            launched.stop().await;
            result.map(|answer| answer.text).map_err(|error| redactor.redact(&error.to_string()))
        })
    }
}
