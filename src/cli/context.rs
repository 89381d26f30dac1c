//! `stigmer context list|use|show`: the saved contexts and which one commands use.

use clap::{Args, Subcommand};

use super::common;
use super::config::{Config, Context, LOCAL_CONTEXT};
use super::{CommandContext, CommandError};

/// Show and switch contexts: the local store, or servers saved by `stigmer login`.
///
/// Examples:
///   stigmer context list
///   stigmer context use prod
///   stigmer --context local get agents
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ContextArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ContextCommand,
}

/// `stigmer context …`.
#[derive(Debug, Subcommand)]
pub enum ContextCommand {
    /// List the contexts; `*` marks the current one.
    List,
    /// Make a context current.
    Use {
        /// The context.
        name: String,
    },
    /// Show the context commands use now, and why.
    Show,
}

/// Runs `stigmer context`.
pub async fn run(ctx: &CommandContext, args: &ContextArgs) -> Result<(), CommandError> {
    let mut config = Config::load(&ctx.settings.home)?;
    match &args.command {
        ContextCommand::List => {
            let current = config.current().to_owned();
            let contexts = std::iter::once(Context::local())
                .chain(config.contexts.iter().filter(|c| c.name != LOCAL_CONTEXT).cloned());
            let rows = contexts.map(|c| {
                vec![
                    if c.name == current { "*".to_owned() } else { String::new() },
                    c.name.clone(),
                    c.endpoint.clone().unwrap_or_else(|| "(local store)".to_owned()),
                    c.org.clone().unwrap_or_else(|| "-".to_owned()),
                ]
            });
            ctx.out(&common::table(&["CURRENT", "NAME", "ENDPOINT", "ORG"], rows))
        }
        ContextCommand::Use { name } => {
            if config.context(name).is_none() {
                return Err(CommandError::user(format!("there is no context named {name:?}"))
                    .hint("see the contexts with `stigmer context list`, or add one with `stigmer login`"));
            }
            config.current_context = (name != LOCAL_CONTEXT).then(|| name.clone());
            config.save(&ctx.settings.home)?;
            ctx.out(&format!("context {name} is now current\n"))
        }
        ContextCommand::Show => {
            let context = ctx.settings.context()?;
            let source = if context.name == super::settings::ENV_ENDPOINT {
                format!("from the environment ({})", super::settings::ENV_ENDPOINT)
            } else if ctx.settings.context.is_some() {
                "from --context".to_owned()
            } else {
                format!("current in {}", Config::path(&ctx.settings.home).display())
            };
            let head = format!("context:  {} ({source})\n", context.name);
            let text = match &context.endpoint {
                Some(endpoint) => format!(
                    "{head}endpoint: {endpoint}\norg:      {}\ntoken:    {}\n",
                    context.org.as_deref().unwrap_or("(the token's)"),
                    if context.token.is_some() { "set (hidden)" } else { "none" }
                ),
                None => format!("{head}store:    {}\n", ctx.settings.local_backend().path().display()),
            };
            ctx.out(&text)
        }
    }
}
