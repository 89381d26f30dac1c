//! `stigmer server`: serve the backend contract to teams and CI; `stigmer server token …`:
//! manage the API tokens (also while no server runs); `stigmer server migrate` and
//! `migrate-store`: bring a store's schema up to date, and move a data directory into a
//! database.

mod migrate;
mod migrate_store;
mod token;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};

use super::common;
use super::help;
use super::logging::{LogFormat, init_logging};
use super::settings;
use super::{CommandContext, CommandError, ErrorKind};
use crate::backend::BackendError;
use crate::server::{self, ServerConfig, TlsIdentity};
use crate::store::postgres::{PgOptions, PgStore};

/// Run a stigmer server: the same store and commands, shared over gRPC with API tokens.
///
/// Each org's resources, secrets and executions live in a store of their own under the data
/// directory, or in a PostgreSQL database (`--store`) that any number of servers share behind a
/// load balancer; tokens made with `stigmer server token create` say which org a caller acts
/// in.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, after_help = help::after(
    &[
        "stigmer server token create --org acme --role admin",
        "stigmer server --listen 0.0.0.0:7234 --tls-cert cert.pem --tls-key key.pem",
        "stigmer server --store 'postgres://stigmer@db.internal/stigmer?sslmode=verify-full' --workers 4",
        "STIGMER_LOG=debug stigmer server --data /var/lib/stigmer --log-format json",
    ],
    &[help::COLOR, help::HOME, help::SERVER, help::STORE],
))]
pub struct ServerArgs {
    /// Token management, migrations.
    #[command(subcommand)]
    pub command: Option<ServerCommand>,
    /// The address to listen on (port 0 picks a free port; the address is printed)
    #[arg(long, default_value = "127.0.0.1:7234")]
    pub listen: SocketAddr,
    /// Where the data is: a directory, or a database
    #[command(flatten)]
    pub place: PlaceArgs,
    /// The most connections to the database this server holds (with --store)
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub store_pool: u32,
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
    /// (in a data directory)
    #[arg(
        long,
        value_name = "MIB",
        default_value_t = server::DEFAULT_STORE_CACHE / (1024 * 1024),
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
    )]
    pub store_cache_mib: usize,
    /// Also serve HTTP here: the web console at `/`, `POST /v1/events`, `/metrics`, `/healthz`,
    /// `/readyz` (port 0 picks a free port; the address is printed)
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
    /// How often the server probes the health of what its agents depend on (MCP servers, model
    /// endpoints, secrets), besides soon after every apply (0: never)
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = common::parse_duration)]
    pub health_interval: std::time::Duration,
    /// Log format
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// `stigmer server token|migrate|migrate-store`.
#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Manage API tokens (works while the server runs or not).
    #[command(subcommand, after_help = help::after(
        &[
            "stigmer server token create --org acme --role editor --name ci",
            "stigmer server token list",
            "stigmer server token revoke 3f2a9c1d",
        ],
        &[help::COLOR, help::HOME, help::STORE],
    ))]
    Token(token::TokenCommand),
    /// Bring a store's schema up to this stigmer's version.
    Migrate(migrate::MigrateArgs),
    /// Copy a data directory's every org into a PostgreSQL database, and check the copy.
    MigrateStore(migrate_store::MigrateStoreArgs),
}

/// Where a server's data is: `--data DIR` or `--store URL`.
#[derive(Debug, Clone, Args)]
pub struct PlaceArgs {
    /// The data directory: tokens and every org's store, and the master key unless
    /// `STIGMER_MASTER_KEY` is set [default: `$STIGMER_HOME/server`]
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// A PostgreSQL database to keep everything in instead (the master key stays outside it):
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=verify-full]`
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
}

/// Where a server's data is, resolved.
#[derive(Debug, Clone)]
pub enum Place {
    /// A data directory.
    Directory(PathBuf),
    /// A database.
    Database(PgOptions),
}

impl PlaceArgs {
    /// `--store` (else `STIGMER_STORE_URL`) names a database; otherwise the data directory.
    pub fn resolve(&self, ctx: &CommandContext) -> Place {
        self.resolve_with_pool(ctx, 4)
    }

    fn resolve_with_pool(&self, ctx: &CommandContext, pool: u32) -> Place {
        match settings::store_url(self.store.as_deref()) {
            Some(url) => Place::Database(PgOptions { url, pool }),
            None => Place::Directory(self.directory(ctx)),
        }
    }

    /// The data directory: where the master key is, whichever place holds the data.
    pub fn directory(&self, ctx: &CommandContext) -> PathBuf {
        self.data.clone().unwrap_or_else(|| ctx.settings.home.join("server"))
    }
}

/// Connects to the database, with the error a person can act on.
pub(super) async fn connect(options: &PgOptions) -> Result<PgStore, CommandError> {
    PgStore::connect(options).await.map_err(|error| store_error(error, options))
}

/// A database failure as the CLI reports it, with what to check.
pub(super) fn store_error(error: BackendError, options: &PgOptions) -> CommandError {
    let hint = match &error {
        BackendError::Unavailable(_) => {
            "check that PostgreSQL runs and that --store (or STIGMER_STORE_URL) names its host, port and database"
        }
        BackendError::Incompatible(message) if message.contains("upgrade") => {
            "run a newer stigmer against this database"
        }
        BackendError::Incompatible(_) => {
            "run `stigmer server migrate --store URL` with a role that may change the schema"
        }
        BackendError::Storage(message) if message.contains("privilege") || message.contains("permission") => {
            "the role needs CREATE on the database (or a schema `stigmer` it owns) and rights on its tables"
        }
        BackendError::Storage(message) if message.contains("not a PostgreSQL URL") => {
            "--store takes postgres://USER[:PASSWORD]@HOST[:PORT]/DB, with sslmode=… in its query for TLS"
        }
        _ => "check --store (or STIGMER_STORE_URL)",
    };
    let _ = options;
    CommandError::new(ErrorKind::Io, error).hint(hint)
}

/// Runs `stigmer server`.
pub async fn run(ctx: &CommandContext, args: &ServerArgs) -> Result<(), CommandError> {
    match &args.command {
        Some(ServerCommand::Token(command)) => token::run(ctx, command).await,
        Some(ServerCommand::Migrate(command)) => migrate::run(ctx, command).await,
        Some(ServerCommand::MigrateStore(command)) => migrate_store::run(ctx, command).await,
        None => serve(ctx, args).await,
    }
}

async fn serve(ctx: &CommandContext, args: &ServerArgs) -> Result<(), CommandError> {
    init_logging(args.log_format, ctx.settings.color_stderr);
    let place = args.place.resolve_with_pool(ctx, args.store_pool);
    let data = args.place.directory(ctx);
    // Everything that can be checked is checked before the socket is bound and anything created.
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(
            TlsIdentity::read(cert, key)
                .map_err(|e| CommandError::new(ErrorKind::User, e).hint("--tls-cert and --tls-key take PEM files"))?,
        ),
        _ => None,
    };
    if matches!(place, Place::Directory(_)) && std::fs::metadata(&data).is_ok_and(|meta| !meta.is_dir()) {
        return Err(CommandError::user(format!("the data directory {} is not a directory", data.display()))
            .hint("pass --data DIR with a directory (it is created when missing)"));
    }
    let database = match &place {
        Place::Database(options) => Some(options.clone()),
        Place::Directory(_) => None,
    };
    let config = ServerConfig {
        data: data.clone(),
        database: database.clone(),
        tls,
        max_request: args.max_request_mib.saturating_mul(1024 * 1024),
        key: crate::secrets::KeySource::from_env_or_file(data.join("master.key")),
        request_timeout: std::time::Duration::from_secs(args.request_timeout_secs),
        store_cache: args.store_cache_mib.saturating_mul(1024 * 1024),
    };
    // A database that cannot be used is said before anything listens; a data directory is
    // created only once the address is ours.
    let ready = match &database {
        Some(options) => Some(service(&config, options).await?),
        None => None,
    };
    let listener = server::bind(args.listen).await.map_err(|e| {
        CommandError::user(e.to_string()).hint("pick another address with --listen, e.g. --listen 127.0.0.1:0")
    })?;
    let address = listener.local_addr().map_err(|e| CommandError::io("cannot read the listening address", e))?;
    let service = match ready {
        Some(service) => service,
        None => server::service(&config).await.map_err(|e| CommandError::user(e.to_string()))?,
    };
    let scheme = if config.tls.is_some() { "https" } else { "http" };
    let (holds, flag) = match service.database() {
        Some(database) => (database.describe().to_owned(), "--store URL".to_owned()),
        None => (data.display().to_string(), format!("--data {}", data.display())),
    };
    ctx.out(&format!("stigmer server listening on {scheme}://{address} (data in {holds})\n"))?;
    if service.tokens().list().await.is_ok_and(|tokens| tokens.is_empty()) {
        ctx.err(&format!(
            "hint: no tokens yet; make one with `stigmer server token create --org ORG --role admin {flag}`\n"
        ))?;
    }
    let http = match args.http_listen {
        Some(address) => Some(server::bind(address).await.map_err(|e| {
            CommandError::user(e.to_string()).hint("pick another address with --http-listen, e.g. 127.0.0.1:0")
        })?),
        None => None,
    };
    // The HTTP side serves TLS with the gRPC side's certificate.
    let https = match (&http, &config.tls) {
        (Some(_), Some(tls)) => Some(
            server::http::acceptor(tls)
                .map_err(|e| CommandError::user(e.to_string()).hint("--tls-cert and --tls-key take PEM files"))?,
        ),
        _ => None,
    };
    if let Some(http) = &http {
        let address = http.local_addr().map_err(|e| CommandError::io("cannot read the listening address", e))?;
        ctx.out(&format!(
            "stigmer server http on {scheme}://{address} (console at /, /v1/events, /metrics, /healthz, /readyz)\n"
        ))?;
    }
    tracing::info!(%address, tls = config.tls.is_some(), workers = args.workers, "serving");
    if let (Some(_), crate::secrets::KeySource::File(key)) = (service.database(), &config.key) {
        // Replicas seal and open each other's secrets: they need one key, and a file made here
        // is this machine's alone.
        tracing::warn!(
            key = %key.display(),
            "the master key is this replica's file; give every replica of the database the same key (STIGMER_MASTER_KEY)"
        );
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let pool = super::worker::pool_config(
        format!("server-{}-{}", crate::worker::pool::host(), std::process::id()),
        args.queues.clone(),
        args.workers,
        args.lease,
        &ctx.settings.home,
    )?;
    let workers = (args.workers > 0).then(|| {
        let source = Arc::new(crate::worker::pool::Orgs(service.clone()));
        let mut stopped = stopped.clone();
        tokio::spawn(crate::worker::pool::serve(source, pool, Arc::new(super::worker::log), async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }))
    });
    let health = (!args.health_interval.is_zero()).then(|| {
        let mut stopped = stopped.clone();
        tokio::spawn(crate::worker::health::run(service.clone(), args.health_interval, async move {
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
        tokio::spawn(server::http::serve(service.clone(), listener, https.clone(), async move {
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
    if let Some(health) = health {
        let _ = health.await;
    }
    if let Some(http) = http {
        let _ = http.await;
    }
    served.map_err(|e| CommandError::user(e.to_string()).hint("check the TLS certificate and key (PEM files)"))?;
    tracing::info!("stopped");
    Ok(())
}

/// The service on a database: reached, its schema brought up to date.
async fn service(config: &ServerConfig, options: &PgOptions) -> Result<Arc<server::Service>, CommandError> {
    server::service(config).await.map_err(|error| match error {
        server::ServerError::Store(error) => store_error(error, options),
        other => CommandError::user(other.to_string()),
    })
}
