//! `stigmer worker`: run a server's executions on this machine; `stigmer worker list`: the
//! workers a server knows, with their last heartbeat.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::common;
use super::help;
use super::output::{self, OutputArgs};
use super::settings::ENV_TOKEN;
use super::{CommandContext, CommandError, ErrorKind};
use crate::backend::{Backend, BackendError, DEFAULT_QUEUE};
use crate::cli::backend::AnyBackend;
use crate::remote::{RemoteBackend, RemoteOptions};
use crate::worker::pool::{self, One, Report, WorkerConfig};

/// Run a server's workflow executions on this machine.
///
/// Claims executions from the server's queue, runs them, and appends their history under a
/// lease renewed every third of its length. When this worker dies, its executions are resumed
/// by another one once their leases lapse: completed tasks are not run again. Needs a token of
/// the worker role (`stigmer server token create --role worker`), from `STIGMER_TOKEN` or the
/// current context.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, after_help = help::after(
    &[
        "stigmer worker --endpoint https://stigmer.example.com     # STIGMER_TOKEN: a worker token",
        "stigmer worker --endpoint http://127.0.0.1:7234 --concurrency 8 --queue gpu",
        "stigmer worker list",
    ],
    &[help::COLOR, help::HOME, help::BACKEND],
))]
pub struct WorkerArgs {
    /// What else to do.
    #[command(subcommand)]
    pub command: Option<WorkerCommand>,
    /// The server to work for [default: the current context's]
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// How many executions to run at once
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: u32,
    /// The queues to serve (repeatable)
    #[arg(long = "queue", value_name = "QUEUE", default_value = DEFAULT_QUEUE)]
    pub queues: Vec<String>,
    /// How long a claim on an execution lasts unless renewed (every third of it)
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = common::parse_positive_duration)]
    pub lease: Duration,
}

/// `stigmer worker …`.
#[derive(Debug, Subcommand)]
pub enum WorkerCommand {
    /// List the workers that claimed work on the server, with their last heartbeat.
    #[command(after_help = help::after(
        &["stigmer worker list", "stigmer worker list -o json"],
        &[help::COLOR, help::HOME, help::BACKEND],
    ))]
    List {
        #[command(flatten)]
        output: OutputArgs,
    },
}

/// Runs `stigmer worker`.
pub async fn run(ctx: &CommandContext, args: &WorkerArgs) -> Result<(), CommandError> {
    match &args.command {
        Some(WorkerCommand::List { output }) => list(ctx, output).await,
        None => work(ctx, args).await,
    }
}

async fn work(ctx: &CommandContext, args: &WorkerArgs) -> Result<(), CommandError> {
    super::logging::init_logging(super::logging::LogFormat::Text, ctx.settings.color_stderr);
    let backend = match &args.endpoint {
        Some(endpoint) => {
            let token = std::env::var(ENV_TOKEN).ok().filter(|t| !t.is_empty()).ok_or_else(|| {
                CommandError::user(format!("--endpoint is given but {ENV_TOKEN} is not set"))
                    .hint("make a token with `stigmer server token create --org ORG --role worker`")
            })?;
            let options = RemoteOptions { endpoint: endpoint.clone(), token, org: None, ca_cert: None };
            RemoteBackend::new(&options)?
        }
        None => match ctx.settings.backend()? {
            AnyBackend::Remote(remote) => remote,
            AnyBackend::Local(_) => {
                return Err(CommandError::user("a worker runs a server's executions, and no server is given")
                    .hint("pass --endpoint URL with STIGMER_TOKEN, or log in with `stigmer login`"));
            }
        },
    };
    let id = format!("{}-{}", pool::host(), std::process::id());
    let config = pool_config(id.clone(), args.queues.clone(), args.concurrency, args.lease, &ctx.settings.home)?;
    ctx.err(&format!(
        "stigmer worker {id} serving queue{} {} of {} ({} at once)\n",
        if args.queues.len() == 1 { "" } else { "s" },
        args.queues.join(", "),
        backend.endpoint(),
        args.concurrency
    ))?;
    let served = pool::serve(Arc::new(One(backend)), config, Arc::new(log), common::shutdown()).await;
    match served {
        Ok(()) => Ok(()),
        Err(error) => {
            tracing::error!(%error, "the server refused this worker; it stops claiming");
            let hint = match &error {
                BackendError::Incompatible(_) => "run a stigmer worker of the server's version",
                _ => "make a worker token with `stigmer server token create --org ORG --role worker`",
            };
            Err(CommandError::new(ErrorKind::User, error).hint(hint))
        }
    }
}

/// How a pool of `workers` slots works, with workspaces under the stigmer home.
pub(super) fn pool_config(
    id: String,
    queues: Vec<String>,
    workers: u32,
    lease: Duration,
    home: &Path,
) -> Result<WorkerConfig, CommandError> {
    Ok(WorkerConfig {
        id,
        queues,
        concurrency: workers,
        lease,
        // Well inside the server's longest wait, so an idle worker asks again at once.
        wait: Duration::from_secs(20),
        workspaces: home.join("workspaces"),
        prices: super::config::Config::load(home)?.model_prices,
    })
}

/// Logs what a pool reports: one line per execution claimed and ended.
pub(super) fn log(report: Report) {
    match report {
        Report::Claimed { id, attempt } if attempt > 1 => tracing::info!(execution = id, attempt, "resuming"),
        Report::Claimed { id, attempt } => tracing::info!(execution = id, attempt, "claimed"),
        Report::Finished { id, status } => tracing::info!(execution = id, status, "finished"),
        Report::LeaseLost { id, reason } => tracing::warn!(execution = id, reason, "lease lost; stopped"),
        Report::Trouble(message) => tracing::warn!(message, "trouble"),
    }
}

async fn list(ctx: &CommandContext, output: &OutputArgs) -> Result<(), CommandError> {
    let backend = ctx.settings.backend()?;
    let mut workers = backend.worker_list().await?;
    workers.sort_by_key(|w| std::cmp::Reverse(w.last_seen));
    if output::is_empty_table(output.output, &workers) {
        return ctx.err("No workers found.\n");
    }
    let table = |wide: bool| {
        let mut header = vec!["ID", "HOST", "VERSION", "QUEUES", "RUNNING", "LAST HEARTBEAT"];
        if wide {
            header.push("CONCURRENCY");
        }
        let rows = workers.iter().map(|w| {
            let mut row = vec![
                w.id.clone(),
                w.host.clone(),
                w.version.clone(),
                w.queues.join(","),
                w.running.to_string(),
                common::time_in(w.last_seen, wide),
            ];
            if wide {
                row.push(w.concurrency.to_string());
            }
            row
        });
        common::table(&header, rows)
    };
    ctx.out(&output::list(output.output, &workers, table, |w| w.id.clone())?)
}
