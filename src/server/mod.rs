//! `stigmer server`: the backend contract over gRPC, for teams and CI. Each org's resources live
//! in their own store — a redb file under `DATA/orgs/<org>/`, or the org's rows in a PostgreSQL
//! database that several replicas share — served through the same backend code as the local
//! store; API tokens (`tokens`) say who the caller is, in which org, with which role. The
//! server logs one structured line per call through `tracing`, and prints nothing itself.

mod console;
pub mod http;
pub mod metrics;
pub mod migration;
pub mod scheduler;
mod service;
mod stores;
pub mod tokens;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, Server, ServerTlsConfig};

use crate::proto::v1::backend_service_server::BackendServiceServer;
pub use service::{SERVER_ACTOR, Service};
pub use stores::{ServerBackend, Stores};
pub use tokens::{Refusal, Role, TokenError, TokenRecord, Tokens};

/// The largest request a server accepts by default: a 10,000-resource apply fits many times.
pub const DEFAULT_MAX_REQUEST: usize = 64 * 1024 * 1024;

/// How long calls in flight may take to finish once shutdown begins.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The data directory: tokens and every org's store (unless `database` names a database),
    /// and the master key when no other is given.
    pub data: PathBuf,
    /// The PostgreSQL database that holds everything instead of the data directory.
    pub database: Option<crate::store::postgres::PgOptions>,
    /// PEM certificate chain and private key, to serve TLS.
    pub tls: Option<TlsIdentity>,
    /// The largest request accepted, in bytes; larger ones get `ResourceExhausted`.
    pub max_request: usize,
    /// The master key wrapping each org's secret data key.
    pub key: crate::secrets::KeySource,
    /// How long one call may take, reading its request included: a client that stalls
    /// mid-request is cut off with `Cancelled` instead of holding its call open forever.
    pub request_timeout: std::time::Duration,
    /// The page cache of each org's store, in bytes. Stores stay open for the server's life, so
    /// this bounds what memory follows as their files grow.
    pub store_cache: usize,
}

/// The default [`ServerConfig::store_cache`]: enough for the hot pages of a large org.
pub const DEFAULT_STORE_CACHE: usize = 64 * 1024 * 1024;

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The address cannot be listened on.
    #[error("cannot listen on {address}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A TLS file cannot be read.
    #[error(transparent)]
    TlsFile(#[from] crate::manifest::file::FileError),
    /// A TLS file holds no certificate, or no private key.
    #[error("{} holds no PEM {what}", .path.display())]
    TlsContent {
        /// The file.
        path: PathBuf,
        /// What it should hold: `certificate`, `private key`.
        what: &'static str,
    },
    /// The TLS certificate or key cannot be used for the HTTP side.
    #[error("cannot serve HTTPS with {0}")]
    TlsConfig(String),
    /// The transport failed (including a TLS certificate or key it cannot use).
    #[error("the server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The database cannot be used.
    #[error(transparent)]
    Store(#[from] crate::backend::BackendError),
    /// The data directory cannot be created.
    #[error("cannot create the data directory {}", .path.display())]
    Data {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The largest TLS certificate chain or key file read.
const MAX_TLS_FILE_BYTES: u64 = 1024 * 1024;

/// A PEM certificate chain and private key, read (and checked to hold what they should) before
/// the server binds, so a wrong file is reported before anything is served or created.
#[derive(Debug, Clone)]
pub struct TlsIdentity {
    /// The certificate chain, PEM.
    pub cert: Vec<u8>,
    /// The private key, PEM.
    pub key: Vec<u8>,
}

impl TlsIdentity {
    /// Reads the certificate chain and the key.
    ///
    /// # Errors
    /// A file that cannot be read, is too large, or holds no certificate (no private key).
    pub fn read(cert: &Path, key: &Path) -> Result<Self, ServerError> {
        let read = |path: &Path, what: &'static str, is: fn(&str) -> bool| {
            let bytes = crate::manifest::file::read(path, MAX_TLS_FILE_BYTES)?;
            if !crate::manifest::file::pem_labels(&bytes).iter().any(|label| is(label)) {
                return Err(ServerError::TlsContent { path: path.to_path_buf(), what });
            }
            Ok(bytes)
        };
        Ok(Self {
            cert: read(cert, "certificate", |label| label == "CERTIFICATE")?,
            key: read(key, "private key", |label| label.ends_with("PRIVATE KEY"))?,
        })
    }
}

/// Binds the listening socket, so the caller can say where it listens before serving.
///
/// # Errors
/// The address is taken or not ours.
pub async fn bind(address: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(address).await.map_err(|source| ServerError::Listen { address, source })
}

/// The longest a worker's claim waits for work: well inside the request timeout.
const LONGEST_CLAIM_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// The service for `config` — its data directory created, or its database reached and its
/// schema brought up to date: what [`serve`] serves, and what the server's own workers claim
/// from.
///
/// # Errors
/// The data directory cannot be created, or the database cannot be used.
pub async fn service(config: &ServerConfig) -> Result<Arc<Service>, ServerError> {
    let stores = if let Some(options) = &config.database {
        let database = crate::store::postgres::PgStore::connect(options).await?;
        database.migrate().await?;
        Stores::Postgres(database)
    } else {
        crate::private_fs::create_private_dir(&config.data)
            .map_err(|source| ServerError::Data { path: config.data.clone(), source })?;
        Stores::files(config.data.clone(), config.store_cache)
    };
    let wait = LONGEST_CLAIM_WAIT.min(config.request_timeout / 2);
    Ok(Arc::new(Service::new(stores, config.key.clone(), wait)))
}

/// Serves the contract and gRPC health on `listener` until `shutdown` completes; then stops
/// taking calls, lets the calls in flight finish (a batch commits whole or not at all) and
/// closes the stores.
///
/// # Errors
/// TLS files that cannot be read or used, or a transport failure.
pub async fn serve(
    config: &ServerConfig,
    service: Arc<Service>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    let mut builder = Server::builder().timeout(config.request_timeout);
    if let Some(tls) = &config.tls {
        builder = builder.tls_config(ServerTlsConfig::new().identity(Identity::from_pem(&tls.cert, &tls.key)))?;
    }
    let backend = BackendServiceServer::from_arc(service.clone())
        .max_decoding_message_size(config.max_request)
        .max_encoding_message_size(usize::MAX);
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<BackendServiceServer<Service>>().await;
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let served =
        builder.add_service(health_service).add_service(backend).serve_with_incoming_shutdown(incoming, shutdown).await;
    service.close().await;
    Ok(served?)
}
