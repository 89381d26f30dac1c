//! `stigmer server migrate-store`: copy a data directory's every org into a PostgreSQL
//! database, and check the copy.

use std::path::PathBuf;

use clap::Args;

use super::super::{CommandContext, CommandError, ErrorKind, common, help, settings};
use super::{connect, store_error};
use crate::server::migration::{CopyError, copy_directory};
use crate::store::postgres::PgOptions;

/// Copy a data directory's every org into a PostgreSQL database, and check the copy.
///
/// Copies each org's resources with their revisions, inventories and audit log, its secrets
/// (still sealed: the master key stays outside the database, so the servers on it need the same
/// one), its executions with their histories, queues and schedules, and every token. Each org
/// is copied in one transaction and read back: its row counts and SHA-256 digests, table by
/// table, must match the directory's, or nothing of it is written. Rows already there are kept,
/// so running it again copies nothing new and checks again. Stop the server on the directory
/// first.
#[derive(Debug, Args)]
#[command(after_help = help::after(
    &[
        "stigmer server migrate-store --from /var/lib/stigmer --to postgres://stigmer@db.internal/stigmer",
        "STIGMER_MASTER_KEY=$(cat /var/lib/stigmer/master.key) stigmer server --store postgres://…",
    ],
    &[help::COLOR, help::HOME, help::STORE],
))]
pub struct MigrateStoreArgs {
    /// The data directory to copy
    #[arg(long, value_name = "DIR")]
    pub from: PathBuf,
    /// The database to copy into [default: `STIGMER_STORE_URL`]
    #[arg(long, value_name = "URL")]
    pub to: Option<String>,
}

/// Runs `stigmer server migrate-store`.
pub async fn run(ctx: &CommandContext, args: &MigrateStoreArgs) -> Result<(), CommandError> {
    if !args.from.join("orgs").is_dir() && !args.from.join("tokens.json").is_file() {
        return Err(CommandError::user(format!(
            "{} holds no server data (no orgs/, no tokens.json)",
            args.from.display()
        ))
        .hint("--from takes a `stigmer server --data` directory"));
    }
    let url = settings::store_url(args.to.as_deref()).ok_or_else(|| {
        CommandError::user("no database to copy into").hint("name it with --to postgres://… or STIGMER_STORE_URL")
    })?;
    let options = PgOptions { url, pool: 2 };
    let database = connect(&options).await?;
    database.migrate().await.map_err(|e| store_error(e, &options))?;
    let copied = copy_directory(&args.from, &database).await.map_err(|error| match error {
        CopyError::Org { org, source } => CommandError::new(ErrorKind::Failed, CopyError::Org { org, source })
            .hint("orgs named before it were copied whole; fix the cause and run it again"),
        other @ CopyError::Tokens(_) => CommandError::new(ErrorKind::Failed, other),
    })?;
    let count = |org: &[crate::store::transfer::TableSum], table: &str| {
        org.iter().find(|sum| sum.table == table).map_or(0, |sum| sum.rows).to_string()
    };
    let rows = copied.orgs.iter().map(|(org, sums)| {
        vec![
            org.clone(),
            count(sums, "resources"),
            count(sums, "revisions"),
            count(sums, "audit"),
            count(sums, "secrets"),
            count(sums, "executions"),
            count(sums, "execution_events"),
            "matches".to_owned(),
        ]
    });
    ctx.out(&common::table(
        &["ORG", "RESOURCES", "REVISIONS", "AUDIT", "SECRETS", "EXECUTIONS", "EVENTS", "CHECK"],
        rows,
    ))?;
    ctx.out(&format!(
        "copied {} org{} and {} token{} into {}; every table's rows and digest match\n",
        copied.orgs.len(),
        if copied.orgs.len() == 1 { "" } else { "s" },
        copied.tokens,
        if copied.tokens == 1 { "" } else { "s" },
        database.describe()
    ))
}
