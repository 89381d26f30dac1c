//! `stigmer server`: serve the backend contract to teams and CI; `stigmer server token …`:
//! manage the API tokens of a data directory (also while no server runs).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use super::common;
use super::help;
use super::logging::{LogFormat, init_logging};
use super::output::{self, OutputArgs};
use super::{CommandContext, CommandError, ErrorKind};
use crate::server::{self, Role, ServerConfig, TlsIdentity, TokenError, Tokens};

/// Run a stigmer server: the same store and commands, shared over gRPC with API tokens.
///
/// Each org's resources, secrets and executions live in a store of their own under the data
/// directory; tokens made with `stigmer server token create` say which org a caller acts in.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, after_help = help::after(
    &[
        "stigmer server token create --org acme --role admin",
        "stigmer server --listen 0.0.0.0:7234 --tls-cert cert.pem --tls-key key.pem",
        "STIGMER_LOG=debug stigmer server --data /var/lib/stigmer --log-format json",
    ],
    &[help::COLOR, help::HOME, help::SERVER],
))]
pub struct ServerArgs {
    /// Token management.
    #[command(subcommand)]
    pub command: Option<ServerCommand>,
    /// The address to listen on (port 0 picks a free port; the address is printed)
    #[arg(long, default_value = "127.0.0.1:7234")]
    pub listen: SocketAddr,
    /// The data directory: tokens and every org's store [default: `$STIGMER_HOME/server`]
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// PEM certificate chain, to serve TLS (with --tls-key)
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key, to serve TLS (with --tls-cert)
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The largest request accepted, in MiB
    #[arg(
        long,
        value_name = "MIB",
        default_value_t = server::DEFAULT_MAX_REQUEST / (1024 * 1024),
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
    )]
    pub max_request_mib: usize,
    /// How long one call may take, in seconds; a client that stalls mid-request is cut off
    #[arg(long, value_name = "SECONDS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_secs: u64,
    /// The page cache of each org's store, in MiB: what memory the server gives each org's data
    #[arg(
        long,
        value_name = "MIB",
        default_value_t = server::DEFAULT_STORE_CACHE / (1024 * 1024),
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
    )]
    pub store_cache_mib: usize,
    /// Also serve HTTP here: `POST /v1/events`, `/metrics`, `/healthz`, `/readyz` (port 0 picks
    /// a free port; the address is printed)
    #[arg(long, value_name = "ADDR")]
    pub http_listen: Option<SocketAddr>,
    /// How many executions the server runs at once with its own workers (0: it only stores;
    /// `stigmer worker` processes run them)
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub workers: u32,
    /// The queues the server's own workers serve (repeatable)
    #[arg(long = "queue", value_name = "QUEUE", default_value = crate::backend::DEFAULT_QUEUE)]
    pub queues: Vec<String>,
    /// How long a worker's claim on an execution lasts unless renewed (every third of it)
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = common::parse_positive_duration)]
    pub lease: std::time::Duration,
    /// Log format
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// `stigmer server token …`.
#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Manage API tokens (works while the server runs or not).
    #[command(subcommand, after_help = help::after(
        &[
            "stigmer server token create --org acme --role editor --name ci",
            "stigmer server token list",
            "stigmer server token revoke 3f2a9c1d",
        ],
        &[help::COLOR, help::HOME],
    ))]
    Token(TokenCommand),
}

/// `stigmer server token create|list|revoke`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token; it is printed once and only its hash is kept.
    #[command(after_help = help::after(
        &[
            "stigmer server token create --org acme --role admin --name ana",
            "stigmer server token create --org acme --role editor --name ci --expires 90d > ci-token.txt",
        ],
        &[help::COLOR, help::HOME],
    ))]
    Create(TokenCreateArgs),
    /// List tokens (never the tokens themselves).
    #[command(after_help = help::after(
        &[
            "stigmer server token list",
            "stigmer server token list --data /var/lib/stigmer -o json",
        ],
        &[help::COLOR, help::HOME],
    ))]
    List(TokenListArgs),
    /// Revoke a token by id; it stops working at once.
    #[command(after_help = help::after(
        &[
            "stigmer server token revoke 3f2a9c1d",
        ],
        &[help::COLOR, help::HOME],
    ))]
    Revoke(TokenRevokeArgs),
}

/// Where the server's data is.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// The data directory [default: `$STIGMER_HOME/server`]
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
}

/// `stigmer server token list`.
#[derive(Debug, Args)]
pub struct TokenListArgs {
    #[command(flatten)]
    pub data: DataArgs,
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
    pub data: DataArgs,
}

/// `stigmer server token revoke`.
#[derive(Debug, Args)]
pub struct TokenRevokeArgs {
    /// The token's id, from `stigmer server token list`
    pub id: String,
    #[command(flatten)]
    pub data: DataArgs,
}

/// Runs `stigmer server`.
pub async fn run(ctx: &CommandContext, args: &ServerArgs) -> Result<(), CommandError> {
    let data = |given: &Option<PathBuf>| given.clone().unwrap_or_else(|| ctx.settings.home.join("server"));
    match &args.command {
        Some(ServerCommand::Token(command)) => token(
            ctx,
            command,
            &data(&match command {
                TokenCommand::Create(a) => a.data.data.clone(),
                TokenCommand::List(a) => a.data.data.clone(),
                TokenCommand::Revoke(a) => a.data.data.clone(),
            }),
        ),
        None => serve(ctx, args, data(&args.data)).await,
    }
}

async fn serve(ctx: &CommandContext, args: &ServerArgs, data: PathBuf) -> Result<(), CommandError> {
    init_logging(args.log_format, ctx.settings.color_stderr);
    // Everything that can be checked is checked before the socket is bound and anything created.
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(
            TlsIdentity::read(cert, key)
                .map_err(|e| CommandError::new(ErrorKind::User, e).hint("--tls-cert and --tls-key take PEM files"))?,
        ),
        _ => None,
    };
    if std::fs::metadata(&data).is_ok_and(|meta| !meta.is_dir()) {
        return Err(CommandError::user(format!("the data directory {} is not a directory", data.display()))
            .hint("pass --data DIR with a directory (it is created when missing)"));
    }
    let config = ServerConfig {
        data: data.clone(),
        tls,
        max_request: args.max_request_mib.saturating_mul(1024 * 1024),
        key: crate::secrets::KeySource::from_env_or_file(data.join("master.key")),
        request_timeout: std::time::Duration::from_secs(args.request_timeout_secs),
        store_cache: args.store_cache_mib.saturating_mul(1024 * 1024),
    };
    let listener = server::bind(args.listen).await.map_err(|e| {
        CommandError::user(e.to_string()).hint("pick another address with --listen, e.g. --listen 127.0.0.1:0")
    })?;
    let address = listener.local_addr().map_err(|e| CommandError::io("cannot read the listening address", e))?;
    let scheme = if config.tls.is_some() { "https" } else { "http" };
    ctx.out(&format!("stigmer server listening on {scheme}://{address} (data in {})\n", data.display()))?;
    if Tokens::new(&data).list().is_ok_and(|tokens| tokens.is_empty()) {
        ctx.err(&format!(
            "hint: no tokens yet; make one with `stigmer server token create --org ORG --role admin --data {}`\n",
            data.display()
        ))?;
    }
    let http = match args.http_listen {
        Some(address) => Some(server::bind(address).await.map_err(|e| {
            CommandError::user(e.to_string()).hint("pick another address with --http-listen, e.g. 127.0.0.1:0")
        })?),
        None => None,
    };
    if let Some(http) = &http {
        let address = http.local_addr().map_err(|e| CommandError::io("cannot read the listening address", e))?;
        ctx.out(&format!("stigmer server http on http://{address} (/v1/events, /metrics, /healthz, /readyz)\n"))?;
    }
    let service = server::service(&config).map_err(|e| CommandError::user(e.to_string()))?;
    tracing::info!(%address, tls = config.tls.is_some(), workers = args.workers, "serving");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let workers = (args.workers > 0).then(|| {
        let config = super::worker::pool_config(
            format!("server-{}-{}", crate::worker::pool::host(), std::process::id()),
            args.queues.clone(),
            args.workers,
            args.lease,
            &ctx.settings.home,
        );
        let source = Arc::new(crate::worker::pool::Orgs(service.clone()));
        let mut stopped = stopped.clone();
        tokio::spawn(crate::worker::pool::serve(source, config, Arc::new(super::worker::log), async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }))
    });
    let scheduling = {
        let mut stopped = stopped.clone();
        tokio::spawn(server::scheduler::run(service.clone(), async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }))
    };
    let http = http.map(|listener| {
        let mut stopped = stopped.clone();
        tokio::spawn(server::http::serve(service.clone(), listener, async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }))
    });
    let serving = server::serve(&config, service, listener, async {
        common::shutdown().await;
        let _ = stop.send(true);
    });
    let served = serving.await;
    if let Some(workers) = workers {
        let _ = workers.await;
    }
    let _ = scheduling.await;
    if let Some(http) = http {
        let _ = http.await;
    }
    served.map_err(|e| CommandError::user(e.to_string()).hint("check the TLS certificate and key (PEM files)"))?;
    tracing::info!("stopped");
    Ok(())
}

fn token(ctx: &CommandContext, command: &TokenCommand, data: &std::path::Path) -> Result<(), CommandError> {
    let tokens = Tokens::new(data);
    match command {
        TokenCommand::Create(args) => {
            let role: Role = args.role.parse().map_err(token_error)?;
            let expires = args
                .expires
                .map(SignedDuration::try_from)
                .transpose()
                .map_err(|_| CommandError::user("--expires is out of range"))?;
            let (token, record) =
                tokens.create(&args.org, role, args.name.as_deref(), expires, Timestamp::now()).map_err(token_error)?;
            ctx.err(&format!(
                "created token {} for org {} ({}){}; it is shown once, keep it safe:\n",
                record.id,
                record.org,
                record.role.as_str(),
                record.expires_at.map(|at| format!(", expires {}", common::time(at))).unwrap_or_default()
            ))?;
            ctx.out(&format!("{token}\n"))
        }
        TokenCommand::List(args) => {
            let now = Timestamp::now();
            let listed: Vec<TokenView> = tokens
                .list()
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
            if output::is_empty_table(args.output.output, &listed) {
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
            ctx.out(&output::list(args.output.output, &listed, table, |t| t.id.clone())?)
        }
        TokenCommand::Revoke(args) => {
            let record = tokens.revoke(&args.id, Timestamp::now()).map_err(token_error)?;
            ctx.out(&format!("revoked token {} ({}, org {})\n", record.id, record.name, record.org))
        }
    }
}

fn token_error(error: TokenError) -> CommandError {
    let hint = match &error {
        TokenError::UnknownId(_) => Some("see the ids with `stigmer server token list`"),
        TokenError::BadOrg { .. } => Some("org names use lower-case letters, digits and '-'"),
        TokenError::Io { .. } => Some("check the data directory's permissions, or pass --data DIR"),
        TokenError::Damaged { .. } | TokenError::Random(_) | TokenError::BadRole(_) => None,
    };
    let error = CommandError::new(super::ErrorKind::User, error);
    match hint {
        Some(hint) => error.hint(hint),
        None => error,
    }
}
