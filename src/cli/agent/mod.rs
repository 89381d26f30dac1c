//! `stigmer agent …`: commands about agents.

mod create;
mod execute;

use clap::{Args, Subcommand};

use super::{CommandContext, CommandError};

/// Work with agents.
#[derive(Debug, Args)]
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
