//! `stigmer context list|use|show`: the saved contexts and which one commands use.

use clap::{Args, Subcommand};
use serde::Serialize;

use super::common;
use super::config::{Config, Context, LOCAL_CONTEXT};
use super::help;
use super::output::{self, OutputArgs};
use super::{CommandContext, CommandError};

/// Show and switch contexts: the local store, or servers saved by `stigmer login`.
#[derive(Debug, Args)]
#[command(after_help = help::after(
    &[
        "stigmer context list",
        "stigmer context use prod",
        "stigmer --context local get agents",
    ],
    &[help::COLOR, help::HOME, help::BACKEND],
))]
pub struct ContextArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ContextCommand,
}

/// `stigmer context …`.
#[derive(Debug, Subcommand)]
pub enum ContextCommand {
    /// List the contexts; `*` marks the current one.
    #[command(after_help = help::after(
        &[
            "stigmer context list",
            "stigmer context list -o json",
        ],
        &[help::COLOR, help::HOME],
    ))]
    List {
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Make a context current.
    #[command(after_help = help::after(
        &[
            "stigmer context use prod",
            "stigmer context use local",
        ],
        &[help::COLOR, help::HOME],
    ))]
    Use {
        /// The context.
        name: String,
    },
    /// Show the context commands use now, and why.
    #[command(after_help = help::after(
        &[
            "stigmer context show",
            "STIGMER_ENDPOINT=https://stigmer.example.com stigmer context show",
        ],
        &[help::COLOR, help::HOME, help::BACKEND],
    ))]
    Show {
        #[command(flatten)]
        output: OutputArgs,
    },
}

/// A context as `list` and `show` print it: never its token, only whether it has one.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ContextView {
    name: String,
    current: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    org: Option<String>,
    has_token: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    ca_cert: Option<String>,
    /// Where `show` found it: the environment, `--context`, or the configuration file.
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<String>,
    /// The local store's file, for the local context.
    #[serde(skip_serializing_if = "Option::is_none")]
    store: Option<String>,
}

impl ContextView {
    fn of(context: &Context, current: &str) -> Self {
        Self {
            name: context.name.clone(),
            current: context.name == current,
            endpoint: context.endpoint.clone(),
            org: context.org.clone(),
            has_token: context.token.is_some(),
            ca_cert: context.ca_cert.as_ref().map(|path| path.display().to_string()),
            source: None,
            store: None,
        }
    }
}

/// Runs `stigmer context`.
pub async fn run(ctx: &CommandContext, args: &ContextArgs) -> Result<(), CommandError> {
    let mut config = Config::load(&ctx.settings.home)?;
    match &args.command {
        ContextCommand::List { output } => {
            let current = config.current().to_owned();
            let contexts: Vec<ContextView> = std::iter::once(Context::local())
                .chain(config.contexts.iter().filter(|c| c.name != LOCAL_CONTEXT).cloned())
                .map(|context| ContextView::of(&context, &current))
                .collect();
            let table = |wide: bool| {
                let mut header = vec!["CURRENT", "NAME", "ENDPOINT", "ORG"];
                if wide {
                    header.extend(["TOKEN", "CA CERT"]);
                }
                let rows = contexts.iter().map(|c| {
                    let mut row = vec![
                        if c.current { "*".to_owned() } else { String::new() },
                        c.name.clone(),
                        c.endpoint.clone().unwrap_or_else(|| "(local store)".to_owned()),
                        c.org.clone().unwrap_or_else(|| "-".to_owned()),
                    ];
                    if wide {
                        row.push(if c.has_token { "set (hidden)" } else { "-" }.to_owned());
                        row.push(c.ca_cert.clone().unwrap_or_else(|| "-".to_owned()));
                    }
                    row
                });
                common::table(&header, rows)
            };
            ctx.out(&output::list(output.output, &contexts, table, |c| c.name.clone())?)
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
        ContextCommand::Show { output } => {
            let context = ctx.settings.context()?;
            let source = if context.name == super::settings::ENV_ENDPOINT {
                format!("from the environment ({})", super::settings::ENV_ENDPOINT)
            } else if ctx.settings.context.is_some() {
                "from --context".to_owned()
            } else {
                format!("current in {}", Config::path(&ctx.settings.home).display())
            };
            let mut view = ContextView::of(&context, &context.name);
            view.store = context.endpoint.is_none().then(|| ctx.settings.local_backend().path().display().to_string());
            let head = format!("context:  {} ({source})\n", context.name);
            view.source = Some(source);
            let text = |_| match &context.endpoint {
                Some(endpoint) => format!(
                    "{head}endpoint: {endpoint}\norg:      {}\ntoken:    {}\n",
                    context.org.as_deref().unwrap_or("(the token's)"),
                    if context.token.is_some() { "set (hidden)" } else { "none" }
                ),
                None => format!("{head}store:    {}\n", view.store.as_deref().unwrap_or_default()),
            };
            ctx.out(&output::one(output.output, &view, text, |view| view.name.clone())?)
        }
    }
}
