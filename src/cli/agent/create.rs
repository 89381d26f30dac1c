//! `stigmer agent create`: make an agent without a manifest.

use clap::Args;

use super::super::help;
use super::super::{CommandContext, CommandError};
use crate::backend::{Backend, ResourceQuery};
use crate::model::{Agent, AgentSpec, ModelConfig};
use crate::reconcile;

/// Create an agent from flags, without a manifest.
///
/// The agent belongs to no apply set, so no `apply --prune` deletes it; `export` includes it.
#[derive(Debug, Args)]
#[command(after_help = help::after(
    &[
        "stigmer agent create my-agent --instructions \"You summarize support tickets.\"",
        "stigmer agent create helper --instructions \"Help.\" --model ollama/qwen2.5-coder:7b --skill tone-of-voice",
    ],
    &[help::COLOR, help::HOME, help::BACKEND],
))]
pub struct CreateArgs {
    /// The agent's name.
    pub name: String,
    /// The system instructions.
    #[arg(long)]
    pub instructions: String,
    /// What the agent is for.
    #[arg(long)]
    pub description: Option<String>,
    /// The model, as `provider/name` or just `name`.
    #[arg(long)]
    pub model: Option<String>,
    /// A skill the agent uses (repeatable).
    #[arg(long = "skill", value_name = "NAME")]
    pub skills: Vec<String>,
    /// An MCP server the agent uses (repeatable).
    #[arg(long = "mcp-server", value_name = "NAME")]
    pub mcp_servers: Vec<String>,
}

/// Runs `stigmer agent create`.
pub async fn run(ctx: &CommandContext, args: &CreateArgs) -> Result<(), CommandError> {
    crate::model::meta::check_name(&args.name)
        .map_err(|e| CommandError::user(format!("agent name \"{}\" {e}", args.name)))?;
    let mut spec = AgentSpec::new(args.instructions.clone());
    spec.description.clone_from(&args.description);
    spec.model = args.model.as_deref().map(|model| match model.split_once('/') {
        Some((provider, name)) => {
            ModelConfig { provider: Some(provider.to_owned()), name: Some(name.to_owned()), ..ModelConfig::default() }
        }
        None => ModelConfig { name: Some(model.to_owned()), ..ModelConfig::default() },
    });
    for skill in &args.skills {
        spec = spec.skill(skill.clone());
    }
    for server in &args.mcp_servers {
        spec = spec.mcp_server(server.clone(), Vec::<String>::new());
    }
    let backend = ctx.settings.backend()?;
    let observed = backend.list(&ResourceQuery::all()).await?;
    let plan = reconcile::plan_create(&Agent::new(args.name.clone(), spec).into(), &observed)?;
    reconcile::apply(&backend, &plan, false).await?;
    ctx.out(&format!("agent/{} created\n", args.name))
}
