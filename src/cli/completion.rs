//! `stigmer completion`: shell completion scripts.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::help;
use super::{Cli, CommandContext, CommandError};

/// Print a shell completion script.
#[derive(Debug, Args)]
#[command(after_help = help::after(
    &[
        "stigmer completion bash > ~/.local/share/bash-completion/completions/stigmer",
        "stigmer completion zsh > \"${fpath[1]}/_stigmer\"",
        "stigmer completion fish > ~/.config/fish/completions/stigmer.fish",
    ],
    &[help::COLOR],
))]
pub struct CompletionArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Runs `stigmer completion`.
pub async fn run(ctx: &CommandContext, args: &CompletionArgs) -> Result<(), CommandError> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "stigmer", &mut script);
    ctx.out(&String::from_utf8_lossy(&script))
}
