//! `stigmer agent …`: commands about agents.

mod create;
mod execute;

pub(super) use execute::run_here as resume;

use clap::{Args, Subcommand};

use super::help;
use super::{CommandContext, CommandError};

/// Create and run agents.
///
/// Agents are usually declared in manifests and applied; these commands make one from flags
/// and run one on a message.
#[derive(Debug, Args)]
#[command(after_help = help::after(
    &[
        "stigmer agent create helper --instructions \"Answer briefly.\"",
        "stigmer agent execute helper \"What is stigmer?\"",
    ],
    &[help::COLOR, help::HOME, help::BACKEND, help::SECRETS, help::MODEL],
))]
pub struct AgentArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: AgentCommand,
}

/// The agent commands.
// Each command's help text is the doc comment of its args struct.
#[allow(missing_docs)]
#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    Create(create::CreateArgs),
    Execute(execute::ExecuteArgs),
}

/// Runs `stigmer agent …`.
pub async fn run(ctx: &CommandContext, args: &AgentArgs) -> Result<(), CommandError> {
    match &args.command {
        AgentCommand::Create(args) => create::run(ctx, args).await,
        AgentCommand::Execute(args) => execute::run(ctx, args).await,
    }
}
