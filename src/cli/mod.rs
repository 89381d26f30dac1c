//! The command line: one file per command, settings resolved once, and the only place that
//! writes to the terminal. Commands call the library and render its data and errors.

mod agent;
mod apply;
mod approval;
mod audit;
mod backend;
mod common;
mod completion;
mod config;
mod context;
mod delete;
mod describe;
mod diff;
mod drift;
mod error;
mod event;
mod execution;
mod export;
mod follow;
mod get;
mod help;
mod history;
mod import;
mod init;
mod logging;
mod login;
mod logout;
mod output;
mod placement;
mod render;
mod rollback;
mod schedule;
mod schema;
mod secret;
mod server;
mod settings;
mod status;
mod ui;
mod usage;
mod validate;
mod watch;
mod whoami;
mod worker;
mod workflow;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use error::{CommandError, ErrorKind};
// What `validate` prints for a diagnostic; public so the manifest fuzz target renders exactly that.
pub use render::{Style, diagnostic as render_diagnostic};
pub use settings::{ColorChoice, GlobalArgs, Settings};

/// stigmer: agents, skills, MCP servers, environments and workflows as YAML manifests,
/// reconciled into a local store or a shared server, and run.
#[derive(Debug, Parser)]
#[command(
    name = "stigmer",
    version,
    about = "The open execution plane for AI agents and workflows.",
    long_about = "The open execution plane for AI agents and workflows.\n\nAgents, skills, MCP servers, \
                  environments and workflows are YAML manifests in a directory; stigmer reconciles them into \
                  a local store or a shared server, and runs them.",
    propagate_version = true,
    after_help = help::after(
    &[
        "stigmer init my-project && cd my-project",
        "stigmer apply -f .                     # reconcile the manifests into the local store",
        "stigmer get agents",
        "stigmer agent execute triage-bot \"Triage: the login page is down\"",
        "stigmer workflow run triage --input '{\"ticket\": {\"id\": 1, \"text\": \"down\"}}'",
        "stigmer login --endpoint https://stigmer.example.com --org acme < token.txt",
        "stigmer help COMMAND                   # every command's options, examples and variables",
    ],
    &[help::COLOR, help::HOME, help::BACKEND, help::SECRETS, help::MODEL],
))]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// stigmer's commands.
// Each command's help text is the doc comment of its args struct, in the command's own file;
// a doc comment here would replace it.
#[allow(missing_docs)]
#[derive(Debug, Subcommand)]
pub enum Command {
    Apply(apply::ApplyArgs),
    Diff(diff::DiffArgs),
    Drift(drift::DriftArgs),
    Get(get::GetArgs),
    Describe(describe::DescribeArgs),
    Delete(delete::DeleteArgs),
    Export(export::ExportArgs),
    Import(import::ImportArgs),
    History(history::HistoryArgs),
    Rollback(rollback::RollbackArgs),
    Agent(agent::AgentArgs),
    Validate(validate::ValidateArgs),
    Schema(schema::SchemaArgs),
    Init(init::InitArgs),
    Secret(secret::SecretArgs),
    Server(Box<server::ServerArgs>),
    Login(login::LoginArgs),
    Logout(logout::LogoutArgs),
    Context(context::ContextArgs),
    Whoami(whoami::WhoamiArgs),
    Audit(audit::AuditArgs),
    Usage(usage::UsageArgs),
    Status(status::StatusArgs),
    Workflow(workflow::WorkflowArgs),
    Execution(execution::ExecutionArgs),
    Worker(worker::WorkerArgs),
    Schedule(schedule::ScheduleArgs),
    Event(event::EventArgs),
    Ui(ui::UiArgs),
    Completion(completion::CompletionArgs),
}

/// What every command receives: resolved settings and the terminal streams.
pub struct CommandContext {
    /// Settings resolved from flags, environment and defaults.
    pub settings: Settings,
}

impl CommandContext {
    /// Writes to standard output; a closed pipe (`| head`) is not an error worth reporting.
    pub fn out(&self, text: &str) -> Result<(), CommandError> {
        write_stream(&mut std::io::stdout().lock(), text)
    }

    /// Writes to standard error.
    pub fn err(&self, text: &str) -> Result<(), CommandError> {
        write_stream(&mut std::io::stderr().lock(), text)
    }
}

async fn dispatch(ctx: &CommandContext, command: &Command) -> Result<(), CommandError> {
    match command {
        Command::Apply(args) => apply::run(ctx, args).await,
        Command::Diff(args) => diff::run(ctx, args).await,
        Command::Drift(args) => drift::run(ctx, args).await,
        Command::Get(args) => get::run(ctx, args).await,
        Command::Describe(args) => describe::run(ctx, args).await,
        Command::Delete(args) => delete::run(ctx, args).await,
        Command::Export(args) => export::run(ctx, args).await,
        Command::Import(args) => import::run(ctx, args).await,
        Command::History(args) => history::run(ctx, args).await,
        Command::Rollback(args) => rollback::run(ctx, args).await,
        Command::Agent(args) => agent::run(ctx, args).await,
        Command::Validate(args) => validate::run(ctx, args).await,
        Command::Schema(args) => schema::run(ctx, args).await,
        Command::Init(args) => init::run(ctx, args).await,
        Command::Secret(args) => secret::run(ctx, args).await,
        Command::Server(args) => server::run(ctx, args).await,
        Command::Login(args) => login::run(ctx, args).await,
        Command::Logout(args) => logout::run(ctx, args).await,
        Command::Context(args) => context::run(ctx, args).await,
        Command::Whoami(args) => whoami::run(ctx, args).await,
        Command::Audit(args) => audit::run(ctx, args).await,
        Command::Usage(args) => usage::run(ctx, args).await,
        Command::Status(args) => status::run(ctx, args).await,
        Command::Workflow(args) => workflow::run(ctx, args).await,
        Command::Execution(args) => execution::run(ctx, args).await,
        Command::Worker(args) => worker::run(ctx, args).await,
        Command::Schedule(args) => schedule::run(ctx, args).await,
        Command::Event(args) => event::run(ctx, args).await,
        Command::Ui(args) => ui::run(ctx, args).await,
        Command::Completion(args) => completion::run(ctx, args).await,
    }
}

fn write_stream(stream: &mut dyn Write, text: &str) -> Result<(), CommandError> {
    match stream.write_all(text.as_bytes()).and_then(|()| stream.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CommandError::io("cannot write output", e)),
        _ => Ok(()),
    }
}

/// Runs a parsed command line and returns the process exit code.
#[must_use]
pub fn run(cli: &Cli) -> ExitCode {
    let ctx = CommandContext { settings: Settings::resolve(&cli.global) };
    // A server serves many clients at once; every other command does one thing at a time.
    let mut runtime = match cli.command {
        Command::Server(_) | Command::Worker(_) => tokio::runtime::Builder::new_multi_thread(),
        _ => tokio::runtime::Builder::new_current_thread(),
    };
    let result = match runtime.enable_all().build() {
        Ok(runtime) => runtime.block_on(dispatch(&ctx, &cli.command)),
        Err(e) => Err(CommandError::io("cannot start the async runtime", e)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            if let Some(text) = error.render(ctx.settings.color_stderr) {
                // Nothing more can be done if stderr itself is gone.
                let _ = ctx.err(&text);
            }
            ExitCode::from(error.exit_code())
        }
    }
}
