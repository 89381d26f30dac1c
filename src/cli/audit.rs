//! `stigmer audit`: the log of every change — who, when, what, from where.

use clap::Args;

use super::common::{self, parse_duration};
use super::help;
use super::output::{self, OutputArgs};
use super::{CommandContext, CommandError};
use crate::backend::Backend;

/// Show the audit log: who changed what, when, and from where.
///
/// Every change, oldest first, with its actor, apply set and (on a server) the address it came
/// from. On a server this needs an admin token.
#[derive(Debug, Args)]
#[command(after_help = help::after(
    &[
        "stigmer audit",
        "stigmer audit --since 1h",
        "stigmer audit --since 2026-11-01T00:00:00Z",
    ],
    &[help::COLOR, help::HOME, help::BACKEND],
))]
pub struct AuditArgs {
    /// Only entries from this long ago (30m, 24h, 7d) or since this RFC 3339 time
    #[arg(long, value_name = "DURATION|TIME")]
    pub since: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Runs `stigmer audit`.
pub async fn run(ctx: &CommandContext, args: &AuditArgs) -> Result<(), CommandError> {
    let since = args.since.as_deref().map(since).transpose()?;
    let entries = ctx.settings.backend()?.audit(since).await?;
    let format = args.output.output;
    if output::is_empty_table(format, &entries) {
        return ctx.err("No audit entries found.\n");
    }
    // Wide shows each time to the fraction of a second, which orders changes made together.
    let table = |wide: bool| {
        let rows = entries.iter().map(|e| {
            vec![
                common::time_in(e.at, wide),
                e.action.as_str().to_owned(),
                e.target.clone(),
                e.actor.clone(),
                e.apply_set.clone().unwrap_or_else(|| "-".to_owned()),
                e.address.clone().unwrap_or_else(|| "-".to_owned()),
            ]
        });
        common::table(&["AT", "ACTION", "TARGET", "ACTOR", "SET", "FROM"], rows)
    };
    ctx.out(&output::list(format, &entries, table, |e| e.target.clone())?)
}

pub(super) fn since(text: &str) -> Result<jiff::Timestamp, CommandError> {
    if let Ok(at) = text.parse::<jiff::Timestamp>() {
        return Ok(at);
    }
    let ago = parse_duration(text).map_err(|_| {
        CommandError::user(format!("--since: \"{text}\" is neither a duration nor an RFC 3339 time"))
            .hint("give a duration (24h) or a time (2026-11-01T00:00:00Z)")
    })?;
    let ago = jiff::SignedDuration::try_from(ago).map_err(|_| CommandError::user("--since is out of range"))?;
    jiff::Timestamp::now().checked_sub(ago).map_err(|_| CommandError::user("--since is out of range"))
}
