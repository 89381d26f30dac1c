//! Where a run started from the CLI goes, the same for workflows and agents: queued on a server
//! for its workers (then followed, unless detached), or claimed to run right here in the CLI
//! (the local store, or `--local`) through the same worker code the server uses.

use clap::Args;

use super::follow;
use super::{CommandContext, CommandError, ErrorKind};
use crate::backend::{Backend, Claim, ClaimRequest, DEFAULT_LEASE, ExecutionRecord, ExecutionStatus, WorkerInfo};
use crate::cli::backend::AnyBackend;
use crate::secrets::SecretValue;
use crate::worker::Ended;

/// How a run started from the CLI goes: the flags `workflow run` and `agent execute` share.
#[derive(Debug, Clone, Default, Args)]
pub struct Placement {
    /// On a server: the queue whose workers run it [default: default]
    #[arg(long, value_name = "QUEUE")]
    pub queue: Option<String>,
    /// On a server: queue it, print its id and return instead of following it
    #[arg(long, conflicts_with = "local")]
    pub detach: bool,
    /// On a server: Ctrl-C cancels the execution instead of detaching from it
    #[arg(long)]
    pub cancel_on_interrupt: bool,
    /// Run it in this process even when the context is a server (it is recorded there)
    #[arg(long)]
    pub local: bool,
}

impl Placement {
    /// Whether the run goes in this process: asked for, or the backend has no workers.
    pub fn here(&self, backend: &AnyBackend) -> bool {
        self.local || !backend.runs_executions()
    }
}

/// Queues a new execution on the server (on the placement's queue), its secret values sealed
/// with it, and says so (on
/// stderr when `quiet`, so stdout stays a report). Returns `false` when `--detach` is done.
///
/// # Errors
/// The server refused it.
pub(super) async fn queue(
    ctx: &CommandContext,
    backend: &AnyBackend,
    record: ExecutionRecord,
    secrets: Vec<(String, SecretValue)>,
    placement: &Placement,
    quiet: bool,
) -> Result<bool, CommandError> {
    let mut record = record;
    if let Some(queue) = &placement.queue {
        record.queue.clone_from(queue);
    }
    let (id, queue) = (record.id.clone(), record.queue.clone());
    backend.execution_create(record, secrets).await?;
    let queued = format!("execution {id} queued (queue {queue})\n");
    if placement.detach || quiet {
        ctx.err(&queued)?;
    } else {
        ctx.out(&queued)?;
    }
    if placement.detach {
        ctx.out(&format!("{id}\n"))?;
        ctx.err(&format!("follow it with `stigmer execution logs -f {id}`\n"))?;
        return Ok(false);
    }
    Ok(true)
}

/// Follows execution `id` on the server to its end, handing its events to `show`. Ctrl-C
/// detaches and says how to follow again, or with `cancel_on_interrupt` cancels it; either way
/// the command has failed.
///
/// # Errors
/// Ctrl-C (already reported), or the backend refused.
pub(super) async fn follow_to_end(
    ctx: &CommandContext,
    backend: &AnyBackend,
    id: &str,
    cancel_on_interrupt: bool,
    show: impl FnMut(&[(u64, serde_json::Value)]) -> Result<(), CommandError>,
) -> Result<Box<ExecutionRecord>, CommandError> {
    match follow::events(backend, id, 0, show).await? {
        follow::Followed::Ended(record) => Ok(record),
        follow::Followed::Detached if cancel_on_interrupt => {
            backend.execution_finish(id, None, ExecutionStatus::Cancelled, None, None, Vec::new()).await?;
            ctx.err(&format!("execution {id} cancelled\n"))?;
            Err(CommandError::reported(ErrorKind::Failed))
        }
        follow::Followed::Detached => {
            ctx.err(&format!(
                "detached from execution {id}; it goes on. Follow it again with `stigmer execution logs -f {id}`\n"
            ))?;
            Err(CommandError::reported(ErrorKind::Failed))
        }
    }
}

/// Claims execution `id` for this CLI process, to run it here. A run whose CLI process died
/// may be claimed at once: its lease need not lapse first.
///
/// # Errors
/// Another worker holds it (the hint says how to follow it), or the backend refused.
pub(super) async fn claim_here(backend: &AnyBackend, id: &str) -> Result<Claim, CommandError> {
    let worker = WorkerInfo {
        id: cli_worker(std::process::id()),
        host: crate::worker::pool::host(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        queues: Vec::new(),
        concurrency: 1,
        running: 1,
        last_seen: jiff::Timestamp::UNIX_EPOCH,
    };
    let take_over = backend.execution_get(id).await?.and_then(|r| r.lease).map(|l| l.worker).filter(|w| dead_cli(w));
    let request = ClaimRequest {
        worker,
        lease: DEFAULT_LEASE,
        wait: std::time::Duration::ZERO,
        id: Some(id.to_owned()),
        take_over,
    };
    if let Some(claim) = backend.execution_claim(request).await? {
        return Ok(claim);
    }
    let holder = backend.execution_get(id).await?.and_then(|r| r.lease).map(|l| l.worker);
    Err(CommandError::user(format!(
        "execution {id} is running elsewhere{}",
        holder.map(|h| format!(" (held by {h})")).unwrap_or_default()
    ))
    .hint(format!("follow it with `stigmer execution logs -f {id}`")))
}

/// Why a run here stopped before its end, to tell the user.
pub(super) fn stopped<R>(ended: &Ended<R>) -> Option<String> {
    match ended {
        Ended::Ran(_) => None,
        Ended::Interrupted => Some("interrupted".to_owned()),
        Ended::Cancelled => Some("cancelled with `stigmer execution cancel`".to_owned()),
        Ended::LeaseLost(reason) => Some(format!("taken over: {reason}")),
    }
}

/// The worker id of the CLI process `pid` on this machine.
fn cli_worker(pid: u32) -> String {
    format!("cli-{}-{pid}", crate::worker::pool::host())
}

/// Whether `worker` is a CLI process of this machine that no longer runs.
fn dead_cli(worker: &str) -> bool {
    let Some(pid) = worker.rsplit_once('-').and_then(|(_, pid)| pid.parse::<u32>().ok()) else { return false };
    cli_worker(pid) == worker && cfg!(target_os = "linux") && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}
