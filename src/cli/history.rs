//! `stigmer history`: every revision of a resource.

use clap::Args;

use super::common::{self, parse_kind};
use super::help;
use super::output::{self, OutputArgs};
use super::{CommandContext, CommandError};
use crate::backend::{Backend, BackendError, Revision, address};

/// Show every revision of a resource.
///
/// Oldest first, also after the resource was deleted; `rollback --to GENERATION` re-applies one.
#[derive(Debug, Args)]
#[command(after_help = help::after(
    &[
        "stigmer history agent support-bot",
        "stigmer history agent support-bot -o name     # agent/support-bot@1, @2, …",
        "stigmer rollback agent support-bot --to 3",
    ],
    &[help::COLOR, help::HOME, help::BACKEND],
))]
pub struct HistoryArgs {
    /// The kind.
    pub kind: String,
    /// The name.
    pub name: String,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Runs `stigmer history`.
pub async fn run(ctx: &CommandContext, args: &HistoryArgs) -> Result<(), CommandError> {
    let kind = parse_kind(&args.kind)?;
    let history = ctx.settings.backend()?.history(kind, &args.name).await?;
    if history.is_empty() {
        return Err(BackendError::NotFound { address: address(kind, &args.name) }.into());
    }
    // Wide shows whole hashes and times to the fraction of a second.
    let table = |wide: bool| {
        let rows = history.iter().map(|revision| {
            vec![
                revision.generation.to_string(),
                revision.action.as_str().to_owned(),
                revision.apply_set.clone().unwrap_or_else(|| "-".to_owned()),
                revision.actor.clone(),
                common::time_in(revision.at, wide),
                if wide { revision.hash.clone() } else { revision.hash.chars().take(12).collect() },
            ]
        });
        common::table(&["GENERATION", "ACTION", "SET", "ACTOR", "AT", "HASH"], rows)
    };
    let name = |revision: &Revision| format!("{}@{}", address(kind, &revision.name), revision.generation);
    ctx.out(&output::list(args.output.output, &history, table, name)?)
}
