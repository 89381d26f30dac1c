//! `stigmer audit`: the log of every change — who, when, what, from where.

use clap::Args;

use super::common::{self, parse_duration};
use super::{CommandContext, CommandError};
use crate::backend::Backend;

/// Show the audit log, oldest first: every change with its actor, apply set and (on a server)
/// the address it came from. On a server this needs an admin token.
///
/// Examples:
///   stigmer audit
///   stigmer audit --since 1h
///   stigmer audit --since 2026-11-01T00:00:00Z
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct AuditArgs {
    /// Only entries from this long ago (30m, 24h, 7d) or since this RFC 3339 time
    #[arg(long, value_name = "DURATION|TIME")]
    pub since: Option<String>,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

/// Runs `stigmer audit`.
pub async fn run(ctx: &CommandContext, args: &AuditArgs) -> Result<(), CommandError> {
    let since = args.since.as_deref().map(since).transpose()?;
    let entries = ctx.settings.backend()?.audit(since).await?;
    if args.json {
        return ctx.out(&common::json(&entries)?);
    }
    let rows = entries.into_iter().map(|e| {
        vec![
            common::time(e.at),
            format!("{:?}", e.action).to_lowercase(),
            e.target,
            e.actor,
            e.apply_set.unwrap_or_else(|| "-".to_owned()),
            e.address.unwrap_or_else(|| "-".to_owned()),
        ]
    });
    ctx.out(&common::table(&["AT", "ACTION", "TARGET", "ACTOR", "SET", "FROM"], rows))
}

fn since(text: &str) -> Result<jiff::Timestamp, CommandError> {
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
