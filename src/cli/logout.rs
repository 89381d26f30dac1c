//! `stigmer logout`: forget a server context and its token.

use clap::Args;

use super::config::{Config, LOCAL_CONTEXT};
use super::help;
use super::{CommandContext, CommandError};

/// Log out: forget a context and its token.
///
/// Removes the context (the current one by default) and its token from the configuration. When
/// it was current, the local store becomes current.
#[derive(Debug, Args)]
#[command(after_help = help::after(
    &["stigmer logout", "stigmer logout staging"],
    &[help::COLOR, help::HOME],
))]
pub struct LogoutArgs {
    /// The context to remove [default: the current one]
    pub name: Option<String>,
}

/// Runs `stigmer logout`.
pub async fn run(ctx: &CommandContext, args: &LogoutArgs) -> Result<(), CommandError> {
    let mut config = Config::load(&ctx.settings.home)?;
    let name = args.name.clone().unwrap_or_else(|| config.current().to_owned());
    if name == LOCAL_CONTEXT {
        return Err(CommandError::user("the local context has no login to forget")
            .hint("name the context to log out of; see `stigmer context list`"));
    }
    let before = config.contexts.len();
    config.contexts.retain(|c| c.name != name);
    if config.contexts.len() == before {
        return Err(CommandError::user(format!("there is no context named {name:?}"))
            .hint("see the contexts with `stigmer context list`"));
    }
    if config.current_context.as_deref() == Some(name.as_str()) {
        config.current_context = None;
    }
    config.save(&ctx.settings.home)?;
    ctx.out(&format!("logged out of context {name}; its token is removed; current context: {}\n", config.current()))
}
