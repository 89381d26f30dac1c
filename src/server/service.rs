//! The `BackendService` implementation: authenticate the call, pick the caller's org store, run
//! the operation through the same `LocalBackend` the CLI uses locally, and log one line.
//!
//! No business logic lives here: planning happens in the client, below the `Backend` trait on
//! either side; the server only adds who may do what, and where each org's data is.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use tokio::sync::Mutex;
use tonic::{Request, Response, Status};

use super::tokens::{Refusal, Role, TokenRecord, Tokens};
use crate::backend::{
    ApplyBatch, Backend, BackendError, ExecutionQuery, ExecutionRecord, ExecutionStatus, Identity, LocalBackend,
    ResourceQuery,
};
use crate::proto::{self, ORG_HEADER, PROTOCOL, PROTOCOL_HEADER, error_to_status, members_to_wire, v1};
use crate::secrets::{KeySource, SecretValue};
use crate::store::{OpenOptions, Store};

/// What a call needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Reading (also a dry-run apply, which writes nothing).
    Read,
    /// Changing resources.
    Write,
    /// Reading the audit log.
    Admin,
}

/// Who is calling, once the token checks out.
#[derive(Debug, Clone)]
struct Caller {
    token: TokenRecord,
    address: Option<SocketAddr>,
}

/// The service: tokens, and each org's store, opened on first use and kept open.
pub struct Service {
    data: PathBuf,
    /// The master key that wraps each org's data key.
    key: KeySource,
    tokens: Arc<Tokens>,
    stores: Mutex<HashMap<String, Arc<Store>>>,
    /// Each org store's page cache, in bytes.
    store_cache: usize,
}

impl Service {
    /// A service over a data directory.
    /// A service over a data directory, each org store's page cache bounded to `store_cache`
    /// bytes.
    pub fn new(data: PathBuf, key: KeySource, store_cache: usize) -> Self {
        Self { tokens: Arc::new(Tokens::new(&data)), data, key, stores: Mutex::new(HashMap::new()), store_cache }
    }

    /// The org stores opened so far, for the server to close on shutdown.
    pub(super) async fn close(&self) {
        self.stores.lock().await.clear();
    }

    fn authenticate<T>(&self, request: &Request<T>, access: Access) -> Result<Caller, Status> {
        let metadata = request.metadata();
        if let Some(protocol) = metadata.get(PROTOCOL_HEADER).and_then(|v| v.to_str().ok())
            && protocol != PROTOCOL.to_string()
        {
            return Err(error_to_status(&BackendError::Incompatible(format!(
                "the client speaks protocol {protocol}; this server (stigmer {}) speaks protocol {PROTOCOL}",
                env!("CARGO_PKG_VERSION")
            ))));
        }
        let authorization = metadata.get("authorization").and_then(|v| v.to_str().ok());
        let token = self.tokens.verify(authorization, Timestamp::now()).map_err(|refusal| match refusal {
            Refusal::Unavailable => Status::unavailable(refusal.to_string()),
            other => error_to_status(&BackendError::Unauthenticated(other.to_string())),
        })?;
        if let Some(org) = metadata.get(ORG_HEADER).and_then(|v| v.to_str().ok())
            && org != token.org
        {
            return Err(denied(&format!("the token acts in org {}, not in org {org}", token.org)));
        }
        let allowed = match access {
            Access::Read => true,
            Access::Write => token.role >= Role::Editor,
            Access::Admin => token.role == Role::Admin,
        };
        if !allowed {
            let what = match access {
                Access::Admin => "do this (read the audit log, rotate the secret key); that needs an admin token",
                _ => "change resources or use secret values; that needs an editor or admin token",
            };
            let article = if token.role == Role::Viewer { "a" } else { "an" };
            return Err(denied(&format!("{article} {} token cannot {what}", token.role.as_str())));
        }
        Ok(Caller { token, address: request.remote_addr() })
    }

    /// The caller's org store, as a backend acting for the caller.
    async fn backend(&self, caller: &Caller) -> Result<LocalBackend, Status> {
        let org = caller.token.org.clone();
        let mut stores = self.stores.lock().await;
        let store = if let Some(store) = stores.get(&org) {
            store.clone()
        } else {
            let path = self.data.join("orgs").join(&org).join("store.db");
            let options =
                OpenOptions::new(Duration::from_secs(5), format!("stigmer server (pid {})", std::process::id()));
            let cache = self.store_cache;
            let store = tokio::task::spawn_blocking(move || Store::open_with_cache(&path, &options, Some(cache)))
                .await
                .map_err(|e| Status::internal(format!("opening the org's store did not finish: {e}")))?
                .map_err(|e| error_to_status(&e))?;
            let store = Arc::new(store);
            stores.insert(org, store.clone());
            store
        };
        Ok(LocalBackend::shared(store, caller.token.name.clone(), caller.address.map(|a| a.to_string()))
            .in_org(caller.token.org.clone())
            .with_key(self.key.clone()))
    }

    /// Authenticates, runs `operation` on the caller's org and logs the outcome.
    async fn handle<Req, Resp, Op, Fut>(
        &self,
        method: &'static str,
        access: Access,
        request: Request<Req>,
        operation: Op,
    ) -> Result<Response<Resp>, Status>
    where
        Op: FnOnce(LocalBackend, Caller, Req) -> Fut,
        Fut: Future<Output = Result<Resp, Status>>,
    {
        let started = Instant::now();
        let peer = request.remote_addr();
        let caller = self.authenticate(&request, access);
        let (org, actor) = match &caller {
            Ok(c) => (c.token.org.clone(), c.token.name.clone()),
            Err(_) => (String::new(), String::new()),
        };
        let result = match caller {
            Ok(caller) => match self.backend(&caller).await {
                Ok(backend) => operation(backend, caller, request.into_inner()).await,
                Err(status) => Err(status),
            },
            Err(status) => Err(status),
        };
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let peer = peer.map(|p| p.to_string()).unwrap_or_default();
        match &result {
            Ok(_) => tracing::info!(method, org, actor, peer, micros, "ok"),
            Err(status) => {
                tracing::warn!(method, org, actor, peer, micros, code = ?status.code(), message = status.message(), "refused");
            }
        }
        result.map(Response::new)
    }
}

fn denied(message: &str) -> Status {
    error_to_status(&BackendError::PermissionDenied(message.to_owned()))
}

fn failed(error: &BackendError) -> Status {
    error_to_status(error)
}

#[tonic::async_trait]
impl v1::backend_service_server::BackendService for Service {
    async fn list(&self, request: Request<v1::ListRequest>) -> Result<Response<v1::ListResponse>, Status> {
        self.handle("List", Access::Read, request, |backend, _, body| async move {
            let query = ResourceQuery::try_from(body)?;
            let resources = backend.list(&query).await.map_err(|e| failed(&e))?;
            Ok(v1::ListResponse { resources: resources.iter().map(Into::into).collect() })
        })
        .await
    }

    async fn get(&self, request: Request<v1::GetRequest>) -> Result<Response<v1::GetResponse>, Status> {
        self.handle("Get", Access::Read, request, |backend, _, body| async move {
            let kind = proto::kind(&body.kind)?;
            let resource = backend.get(kind, &body.name).await.map_err(|e| failed(&e))?;
            Ok(v1::GetResponse { resource: resource.as_ref().map(Into::into) })
        })
        .await
    }

    async fn apply(&self, request: Request<v1::ApplyRequest>) -> Result<Response<v1::ApplyResponse>, Status> {
        let access = if request.get_ref().dry_run { Access::Read } else { Access::Write };
        self.handle("Apply", access, request, |backend, _, body| async move {
            let batch = ApplyBatch::try_from(body)?;
            // The batch runs to its end on a blocking thread even if the client goes away or the
            // server is shutting down: it commits whole or not at all.
            let receipt = backend.apply(batch).await.map_err(|e| failed(&e))?;
            Ok(v1::ApplyResponse::from(&receipt))
        })
        .await
    }

    async fn history(&self, request: Request<v1::HistoryRequest>) -> Result<Response<v1::HistoryResponse>, Status> {
        self.handle("History", Access::Read, request, |backend, _, body| async move {
            let kind = proto::kind(&body.kind)?;
            let revisions = backend.history(kind, &body.name).await.map_err(|e| failed(&e))?;
            Ok(v1::HistoryResponse { revisions: revisions.iter().map(Into::into).collect() })
        })
        .await
    }

    async fn inventory(
        &self,
        request: Request<v1::InventoryRequest>,
    ) -> Result<Response<v1::InventoryResponse>, Status> {
        self.handle("Inventory", Access::Read, request, |backend, _, body| async move {
            let members = backend.inventory(&body.apply_set).await.map_err(|e| failed(&e))?;
            Ok(v1::InventoryResponse { members: members_to_wire(&members) })
        })
        .await
    }

    async fn audit(&self, request: Request<v1::AuditRequest>) -> Result<Response<v1::AuditResponse>, Status> {
        self.handle("Audit", Access::Admin, request, |backend, _, body| async move {
            let since = body.since.as_deref().map(proto::time).transpose()?;
            let entries = backend.audit(since).await.map_err(|e| failed(&e))?;
            Ok(v1::AuditResponse { entries: entries.iter().map(Into::into).collect() })
        })
        .await
    }

    async fn version(&self, request: Request<v1::VersionRequest>) -> Result<Response<v1::VersionResponse>, Status> {
        self.handle("Version", Access::Read, request, |backend, _, _| async move {
            Ok(v1::VersionResponse { version: backend.version().await.map_err(|e| failed(&e))? })
        })
        .await
    }

    async fn who_am_i(&self, request: Request<v1::WhoAmIRequest>) -> Result<Response<v1::WhoAmIResponse>, Status> {
        self.handle("WhoAmI", Access::Read, request, |_, caller, _| async move {
            Ok(Identity {
                actor: caller.token.name,
                backend: format!("stigmer server {}", env!("CARGO_PKG_VERSION")),
                org: Some(caller.token.org),
                role: Some(caller.token.role.as_str().to_owned()),
            }
            .into())
        })
        .await
    }

    async fn secret_set(
        &self,
        request: Request<v1::SecretSetRequest>,
    ) -> Result<Response<v1::SecretSetResponse>, Status> {
        self.handle("SecretSet", Access::Write, request, |backend, _, body| async move {
            let created = backend.secret_set(&body.name, SecretValue::new(body.value)).await.map_err(|e| failed(&e))?;
            Ok(v1::SecretSetResponse { created })
        })
        .await
    }

    async fn secret_list(
        &self,
        request: Request<v1::SecretListRequest>,
    ) -> Result<Response<v1::SecretListResponse>, Status> {
        self.handle("SecretList", Access::Read, request, |backend, _, _| async move {
            let secrets = backend.secret_list().await.map_err(|e| failed(&e))?;
            Ok(v1::SecretListResponse { secrets: secrets.iter().map(Into::into).collect() })
        })
        .await
    }

    async fn secret_delete(
        &self,
        request: Request<v1::SecretDeleteRequest>,
    ) -> Result<Response<v1::SecretDeleteResponse>, Status> {
        self.handle("SecretDelete", Access::Write, request, |backend, _, body| async move {
            backend.secret_delete(&body.name).await.map_err(|e| failed(&e))?;
            Ok(v1::SecretDeleteResponse {})
        })
        .await
    }

    async fn secret_reveal(
        &self,
        request: Request<v1::SecretRevealRequest>,
    ) -> Result<Response<v1::SecretRevealResponse>, Status> {
        // Reading a value is writing-level trust: viewers see names only.
        self.handle("SecretReveal", Access::Write, request, |backend, _, body| async move {
            let value = backend.secret_reveal(&body.name).await.map_err(|e| failed(&e))?;
            Ok(v1::SecretRevealResponse { value: value.expose().to_owned() })
        })
        .await
    }

    async fn secret_rotate_key(
        &self,
        request: Request<v1::SecretRotateKeyRequest>,
    ) -> Result<Response<v1::SecretRotateKeyResponse>, Status> {
        self.handle("SecretRotateKey", Access::Admin, request, |backend, _, _| async move {
            let resealed = backend.secret_rotate_key().await.map_err(|e| failed(&e))?;
            Ok(v1::SecretRotateKeyResponse { resealed: u64::try_from(resealed).unwrap_or(u64::MAX) })
        })
        .await
    }

    async fn execution_create(
        &self,
        request: Request<v1::ExecutionCreateRequest>,
    ) -> Result<Response<v1::ExecutionCreateResponse>, Status> {
        self.handle("ExecutionCreate", Access::Write, request, |backend, _, body| async move {
            let record: ExecutionRecord = proto::decode_json(&body.record_json)?;
            backend.execution_create(record).await.map_err(|e| failed(&e))?;
            Ok(v1::ExecutionCreateResponse {})
        })
        .await
    }

    async fn execution_append(
        &self,
        request: Request<v1::ExecutionAppendRequest>,
    ) -> Result<Response<v1::ExecutionAppendResponse>, Status> {
        self.handle("ExecutionAppend", Access::Write, request, |backend, _, body| async move {
            let events = body.events_json.iter().map(|e| proto::decode_json(e)).collect::<Result<Vec<_>, _>>()?;
            let last = backend.execution_append(&body.id, events).await.map_err(|e| failed(&e))?;
            Ok(v1::ExecutionAppendResponse { last })
        })
        .await
    }

    async fn execution_finish(
        &self,
        request: Request<v1::ExecutionFinishRequest>,
    ) -> Result<Response<v1::ExecutionFinishResponse>, Status> {
        self.handle("ExecutionFinish", Access::Write, request, |backend, _, body| async move {
            let status: ExecutionStatus = body.status.parse().map_err(|e: String| Status::invalid_argument(e))?;
            let output = body.output_json.as_deref().map(proto::decode_json).transpose()?;
            let error = body.error_json.as_deref().map(proto::decode_json).transpose()?;
            backend.execution_finish(&body.id, status, output, error).await.map_err(|e| failed(&e))?;
            Ok(v1::ExecutionFinishResponse {})
        })
        .await
    }

    async fn execution_get(
        &self,
        request: Request<v1::ExecutionGetRequest>,
    ) -> Result<Response<v1::ExecutionGetResponse>, Status> {
        self.handle("ExecutionGet", Access::Read, request, |backend, _, body| async move {
            let record = backend.execution_get(&body.id).await.map_err(|e| failed(&e))?;
            Ok(v1::ExecutionGetResponse { record_json: record.as_ref().map(proto::encode_json) })
        })
        .await
    }

    async fn execution_list(
        &self,
        request: Request<v1::ExecutionListRequest>,
    ) -> Result<Response<v1::ExecutionListResponse>, Status> {
        self.handle("ExecutionList", Access::Read, request, |backend, _, body| async move {
            let status = body.status.map(|s| s.parse()).transpose().map_err(|e: String| Status::invalid_argument(e))?;
            let query = ExecutionQuery { target: body.target, status };
            let records = backend.execution_list(&query).await.map_err(|e| failed(&e))?;
            Ok(v1::ExecutionListResponse { records_json: records.iter().map(proto::encode_json).collect() })
        })
        .await
    }

    async fn execution_events(
        &self,
        request: Request<v1::ExecutionEventsRequest>,
    ) -> Result<Response<v1::ExecutionEventsResponse>, Status> {
        self.handle("ExecutionEvents", Access::Read, request, |backend, _, body| async move {
            let events = backend.execution_events(&body.id, body.after).await.map_err(|e| failed(&e))?;
            let events = events
                .iter()
                .map(|(sequence, event)| v1::ExecutionEvent {
                    sequence: *sequence,
                    event_json: proto::encode_json(event),
                })
                .collect();
            Ok(v1::ExecutionEventsResponse { events })
        })
        .await
    }

    async fn server_info(
        &self,
        _request: Request<v1::ServerInfoRequest>,
    ) -> Result<Response<v1::ServerInfoResponse>, Status> {
        Ok(Response::new(v1::ServerInfoResponse { version: env!("CARGO_PKG_VERSION").to_owned(), protocol: PROTOCOL }))
    }
}
