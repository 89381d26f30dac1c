//! `stigmer server token create|list|revoke`: the API tokens of a server's data directory or
//! database, managed whether the server runs or not.

use clap::{Args, Subcommand};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use super::super::output::{self, OutputArgs};
use super::super::{CommandContext, CommandError, common, help};
use super::{Place, PlaceArgs};
use crate::server::{Role, TokenError, Tokens};

/// `stigmer server token create|list|revoke`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token; it is printed once and only its hash is kept.
    #[command(after_help = help::after(
        &[
            "stigmer server token create --org acme --role admin --name ana",
            "stigmer server token create --org acme --role editor --name ci --expires 90d > ci-token.txt",
            "stigmer server token create --org acme --role worker --store postgres://stigmer@db/stigmer",
        ],
        &[help::COLOR, help::HOME, help::STORE],
    ))]
    Create(TokenCreateArgs),
    /// List tokens (never the tokens themselves).
    #[command(after_help = help::after(
        &[
            "stigmer server token list",
            "stigmer server token list --data /var/lib/stigmer -o json",
        ],
        &[help::COLOR, help::HOME, help::STORE],
    ))]
    List(TokenListArgs),
    /// Revoke a token by id; it stops working at once.
    #[command(after_help = help::after(
        &[
            "stigmer server token revoke 3f2a9c1d",
        ],
        &[help::COLOR, help::HOME, help::STORE],
    ))]
    Revoke(TokenRevokeArgs),
}

/// `stigmer server token list`.
#[derive(Debug, Args)]
pub struct TokenListArgs {
    #[command(flatten)]
    pub place: PlaceArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// A token as `token list` prints it: never the token, nor its hash.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TokenView {
    id: String,
    name: String,
    org: String,
    role: &'static str,
    created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revoked_at: Option<Timestamp>,
    /// `active`, `expired` or `revoked`.
    state: &'static str,
}

/// `stigmer server token create`.
#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// The org the token acts in
    #[arg(long)]
    pub org: String,
    /// What it may do: viewer reads, editor also applies, admin also reads the audit log; worker
    /// only runs executions (`stigmer worker`); events only sends events
    #[arg(long, default_value = "editor", value_parser = ["admin", "editor", "viewer", "worker", "events"])]
    pub role: String,
    /// Who holds it (recorded as the actor of its changes) [default: token-<id>]
    #[arg(long)]
    pub name: Option<String>,
    /// How long it works: 30d, 12h, … [default: forever]
    #[arg(long, value_name = "DURATION", value_parser = common::parse_positive_duration)]
    pub expires: Option<std::time::Duration>,
    #[command(flatten)]
    pub place: PlaceArgs,
}

/// `stigmer server token revoke`.
#[derive(Debug, Args)]
pub struct TokenRevokeArgs {
    /// The token's id, from `stigmer server token list`
    pub id: String,
    #[command(flatten)]
    pub place: PlaceArgs,
}

/// Runs `stigmer server token …`.
pub async fn run(ctx: &CommandContext, command: &TokenCommand) -> Result<(), CommandError> {
    let place = match command {
        TokenCommand::Create(args) => &args.place,
        TokenCommand::List(args) => &args.place,
        TokenCommand::Revoke(args) => &args.place,
    };
    // Making the first token is how a server starts: the database's schema is made for it.
    let tokens = tokens(&place.resolve(ctx), matches!(command, TokenCommand::Create(_))).await?;
    match command {
        TokenCommand::Create(args) => {
            let role: Role = args.role.parse().map_err(|role| token_error(TokenError::BadRole(role)))?;
            let expires = args
                .expires
                .map(SignedDuration::try_from)
                .transpose()
                .map_err(|_| CommandError::user("--expires is out of range"))?;
            let (token, record) = tokens
                .create(&args.org, role, args.name.as_deref(), expires, Timestamp::now())
                .await
                .map_err(token_error)?;
            ctx.err(&format!(
                "created token {} for org {} ({}){}; it is shown once, keep it safe:\n",
                record.id,
                record.org,
                record.role.as_str(),
                record.expires_at.map(|at| format!(", expires {}", common::time(at))).unwrap_or_default()
            ))?;
            ctx.out(&format!("{token}\n"))
        }
        TokenCommand::List(args) => list(ctx, &tokens, &args.output).await,
        TokenCommand::Revoke(args) => {
            let record = tokens.revoke(&args.id, Timestamp::now()).await.map_err(token_error)?;
            ctx.out(&format!("revoked token {} ({}, org {})\n", record.id, record.name, record.org))
        }
    }
}

/// The tokens of a data directory or a database, whose schema is brought up to date first
/// (`migrate`) or must be this binary's.
async fn tokens(place: &Place, migrate: bool) -> Result<Tokens, CommandError> {
    Ok(match place {
        Place::Directory(data) => Tokens::in_dir(data),
        Place::Database(options) => {
            let database = super::connect(options).await?;
            let ready = if migrate { database.migrate().await.map(drop) } else { database.check_schema().await };
            ready.map_err(|e| super::store_error(e, options))?;
            Tokens::in_database(database.tokens())
        }
    })
}

async fn list(ctx: &CommandContext, tokens: &Tokens, output: &OutputArgs) -> Result<(), CommandError> {
    let now = Timestamp::now();
    let listed: Vec<TokenView> = tokens
        .list()
        .await
        .map_err(token_error)?
        .into_iter()
        .map(|t| TokenView {
            state: match (t.revoked_at, t.expires_at) {
                (Some(_), _) => "revoked",
                (None, Some(at)) if at <= now => "expired",
                (None, _) => "active",
            },
            id: t.id,
            name: t.name,
            org: t.org,
            role: t.role.as_str(),
            created_at: t.created_at,
            expires_at: t.expires_at,
            revoked_at: t.revoked_at,
        })
        .collect();
    if output::is_empty_table(output.output, &listed) {
        return ctx.err("No tokens found.\n");
    }
    let table = |wide: bool| {
        let time = |at: Timestamp| common::time_in(at, wide);
        let rows = listed.iter().map(|t| {
            let state = match (t.revoked_at, t.expires_at) {
                (Some(at), _) => format!("revoked {}", time(at)),
                (None, Some(at)) => format!("{} {}", if at <= now { "expired" } else { "expires" }, time(at)),
                (None, None) => "active".to_owned(),
            };
            vec![t.id.clone(), t.org.clone(), t.role.to_owned(), t.name.clone(), time(t.created_at), state]
        });
        common::table(&["ID", "ORG", "ROLE", "NAME", "CREATED", "STATE"], rows)
    };
    ctx.out(&output::list(output.output, &listed, table, |t| t.id.clone())?)
}

pub(super) fn token_error(error: TokenError) -> CommandError {
    let hint = match &error {
        TokenError::UnknownId(_) => Some("see the ids with `stigmer server token list`"),
        TokenError::BadOrg { .. } => Some("org names use lower-case letters, digits and '-'"),
        TokenError::Io { .. } => Some("check the data directory's permissions, or pass --data DIR"),
        TokenError::Store(_) => Some("check --store (or STIGMER_STORE_URL) and that the database is up"),
        TokenError::Damaged { .. } | TokenError::Random(_) | TokenError::BadRole(_) => None,
    };
    let error = CommandError::new(super::super::ErrorKind::User, error);
    match hint {
        Some(hint) => error.hint(hint),
        None => error,
    }
}
