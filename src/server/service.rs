//! The `BackendService` implementation: authenticate the call, pick the caller's org store (a
//! redb file in the data directory, or the org's rows in the database), run the operation
//! through the same `StoreBackend` the CLI uses locally, and log one line.
//!
//! No business logic lives here: planning happens in the client, below the `Backend` trait on
//! either side; the server only adds who may do what, and where each org's data is.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use tonic::{Request, Response, Status};

use super::stores::{ServerBackend, Stores};
use super::tokens::{Refusal, Role, TokenRecord, Tokens};
use crate::backend::{
    ApplyBatch, Backend, BackendError, ClaimRequest, ExecutionPage, ExecutionQuery, ExecutionRecord, ExecutionStatus,
    Identity, ResourceQuery, StoreBackend, WorkerInfo,
};
use crate::proto::{self, ORG_HEADER, PROTOCOL, PROTOCOL_HEADER, error_to_status, members_to_wire, v1};
use crate::secrets::{KeySource, SecretValue};
use crate::store::postgres::PgStore;
use crate::store::redb::Changes;

/// What a call needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Saying who the caller is: any valid token.
    Any,
    /// Reading (also a dry-run apply, which writes nothing).
    Read,
    /// Changing resources.
    Write,
    /// Reading the audit log.
    Admin,
    /// Running executions: claiming, renewing, appending, following, finishing. Workers (and
    /// editors, whose CLI runs an execution itself with `--local`).
    Work,
    /// Sending events in: the events role (and editors and admins).
    Events,
}

impl Access {
    /// Whether a token of `role` may make such a call.
    fn allows(self, role: Role) -> bool {
        match self {
            Self::Any => true,
            Self::Read => role.reads(),
            Self::Write => role.writes(),
            Self::Admin => role == Role::Admin,
            Self::Work => matches!(role, Role::Worker | Role::Editor | Role::Admin),
            Self::Events => matches!(role, Role::Events | Role::Editor | Role::Admin),
        }
    }

    /// What a refused caller is told it would need.
    fn needs(self) -> &'static str {
        match self {
            Self::Any | Self::Read => "read resources or executions; that needs a viewer, editor or admin token",
            Self::Write => "change resources or use secret values; that needs an editor or admin token",
            Self::Admin => "do this (read the audit log, rotate the secret key); that needs an admin token",
            Self::Work => "run executions; that needs a worker, editor or admin token",
            Self::Events => "send events; that needs an events, editor or admin token",
        }
    }
}

/// Who is calling, once the token checks out.
#[derive(Debug, Clone)]
struct Caller {
    token: TokenRecord,
    address: Option<SocketAddr>,
}

/// The service: tokens, and each org's store.
pub struct Service {
    stores: Stores,
    /// The master key that wraps each org's data key.
    key: KeySource,
    tokens: Tokens,
    /// The longest a claim waits for work before it answers that there is none.
    longest_claim_wait: Duration,
    /// What `/metrics` reports besides what the stores hold.
    metrics: super::metrics::Metrics,
}

/// The actor the server's own workers act as, in leases and audit.
pub const SERVER_ACTOR: &str = "server";

impl Service {
    /// A service over `stores`, with secrets sealed under data keys the master key at `key`
    /// wraps; a claim waits for work at most `longest_claim_wait`.
    pub fn new(stores: Stores, key: KeySource, longest_claim_wait: Duration) -> Self {
        let tokens = stores.tokens();
        Self { stores, key, tokens, longest_claim_wait, metrics: super::metrics::Metrics::default() }
    }

    /// What the server's own workers wait on for work in any org.
    pub fn changes(&self) -> &Changes {
        self.stores.queue_changes()
    }

    /// The database, when the server keeps its data in one.
    pub fn database(&self) -> Option<&PgStore> {
        self.stores.database()
    }

    /// Whether the server can serve: its org stores open, or its database answers.
    ///
    /// # Errors
    /// Why it cannot.
    pub async fn ready(&self) -> Result<(), BackendError> {
        self.stores.ready().await
    }

    /// The server's tokens.
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// A backend acting as the server itself on every org that has a store: what the server's
    /// own workers claim from and its scheduler fires in.
    ///
    /// # Errors
    /// An org store that cannot be opened.
    pub async fn org_backends(&self) -> Result<Vec<(String, ServerBackend)>, BackendError> {
        let names = self.stores.orgs().await?;
        let mut backends = Vec::with_capacity(names.len());
        for org in names {
            let storage = self.stores.storage(&org).await?;
            backends.push((org.clone(), StoreBackend::over(storage, SERVER_ACTOR, self.key.clone()).in_org(org)));
        }
        Ok(backends)
    }

    /// Closes the stores, for the server to end cleanly.
    pub(super) async fn close(&self) {
        self.stores.close().await;
    }

    async fn authenticate<T>(&self, request: &Request<T>, access: Access) -> Result<Caller, Status> {
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
        let org = metadata.get(ORG_HEADER).and_then(|v| v.to_str().ok());
        let token = self.tokens.verify(authorization, Timestamp::now()).await.map_err(|refusal| match refusal {
            Refusal::Unavailable => Status::unavailable(refusal.to_string()),
            other => error_to_status(&BackendError::Unauthenticated(other.to_string())),
        })?;
        if let Some(org) = org
            && org != token.org
        {
            return Err(denied(&format!("the token acts in org {}, not in org {org}", token.org)));
        }
        if !access.allows(token.role) {
            let article = if matches!(token.role, Role::Viewer | Role::Worker) { "a" } else { "an" };
            return Err(denied(&format!("{article} {} token cannot {}", token.role.as_str(), access.needs())));
        }
        Ok(Caller { token, address: request.remote_addr() })
    }

    /// Takes in an event sent over HTTP (`POST /v1/events`) as the gRPC call it is: the same
    /// token check, org store, log line and metrics.
    ///
    /// # Errors
    /// The token is refused, the event is not a CloudEvent, or the store failed.
    pub async fn publish_http(
        &self,
        authorization: Option<&str>,
        address: SocketAddr,
        event: &serde_json::Value,
    ) -> Result<crate::backend::EventReceipt, Status> {
        use v1::backend_service_server::BackendService as _;
        let mut request = Request::new(v1::EventPublishRequest { event_json: proto::encode_json(event) });
        if let Some(value) = authorization.and_then(|a| a.parse().ok()) {
            request.metadata_mut().insert("authorization", value);
        }
        let peer = tonic::transport::server::TcpConnectInfo { local_addr: None, remote_addr: Some(address) };
        request.extensions_mut().insert(peer);
        let response = self.event_publish(request).await?;
        proto::decode_json(&response.into_inner().receipt_json).map_err(|e| Status::internal(e.to_string()))
    }

    /// The server's counters, for `/metrics`.
    pub fn metrics(&self) -> &super::metrics::Metrics {
        &self.metrics
    }

    /// The caller's org store, as a backend acting for the caller.
    async fn backend(&self, caller: &Caller) -> Result<ServerBackend, Status> {
        self.backend_for(&caller.token.org, &caller.token.name, caller.address).await.map_err(|e| error_to_status(&e))
    }

    /// Org `org`'s store, as a backend acting as `actor` from `address` (its changes are
    /// recorded as theirs).
    ///
    /// # Errors
    /// The org's store cannot be opened.
    pub async fn backend_for(
        &self,
        org: &str,
        actor: &str,
        address: Option<SocketAddr>,
    ) -> Result<ServerBackend, BackendError> {
        let storage = self.stores.storage(org).await?;
        Ok(StoreBackend::over(storage, actor.to_owned(), self.key.clone())
            .from_address(address.map(|a| a.to_string()))
            .in_org(org.to_owned()))
    }

    /// Where the web console keeps its sessions: the database every replica shares, or this
    /// process.
    pub fn console_sessions(&self) -> Option<crate::store::postgres::SessionRows> {
        self.stores.database().map(crate::store::postgres::PgStore::sessions)
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
        Op: FnOnce(ServerBackend, Caller, Req) -> Fut,
        Fut: Future<Output = Result<Resp, Status>>,
    {
        let started = Instant::now();
        let peer = request.remote_addr();
        let caller = self.authenticate(&request, access).await;
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
        self.metrics.rpc(method, started.elapsed());
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

impl Caller {
    /// A worker reads only the executions it holds a lease on.
    async fn holds_if_worker(&self, backend: &ServerBackend, id: &str) -> Result<(), Status> {
        if self.token.role != Role::Worker {
            return Ok(());
        }
        let record = backend.execution_get(id).await.map_err(|e| failed(&e))?;
        if record.and_then(|r| r.lease).is_some_and(|lease| lease.token == self.token.name) {
            Ok(())
        } else {
            Err(denied("a worker token reads only the executions it holds"))
        }
    }

    /// A worker writes into an execution only under the lease it holds.
    fn fenced_if_worker(&self, epoch: Option<u64>) -> Result<(), Status> {
        if self.token.role == Role::Worker && epoch.is_none() {
            return Err(denied("a worker token writes to an execution only under the lease it holds"));
        }
        Ok(())
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

    async fn heads(&self, request: Request<v1::HeadsRequest>) -> Result<Response<v1::HeadsResponse>, Status> {
        self.handle("Heads", Access::Read, request, |backend, _, _| async move {
            let heads = backend.heads().await.map_err(|e| failed(&e))?;
            Ok(v1::HeadsResponse { heads: heads.iter().map(Into::into).collect() })
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
        self.handle("WhoAmI", Access::Any, request, |_, caller, _| async move {
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
            let secrets = body.secrets.into_iter().map(|s| (s.name, SecretValue::new(s.value))).collect();
            backend.execution_create(record, secrets).await.map_err(|e| failed(&e))?;
            Ok(v1::ExecutionCreateResponse {})
        })
        .await
    }

    async fn execution_append(
        &self,
        request: Request<v1::ExecutionAppendRequest>,
    ) -> Result<Response<v1::ExecutionAppendResponse>, Status> {
        self.handle("ExecutionAppend", Access::Work, request, |backend, caller, body| async move {
            caller.fenced_if_worker(body.epoch)?;
            let events = body.events_json.iter().map(|e| proto::decode_json(e)).collect::<Result<Vec<_>, _>>()?;
            let last = backend.execution_append(&body.id, body.epoch, events).await.map_err(|e| failed(&e))?;
            Ok(v1::ExecutionAppendResponse { last })
        })
        .await
    }

    async fn execution_finish(
        &self,
        request: Request<v1::ExecutionFinishRequest>,
    ) -> Result<Response<v1::ExecutionFinishResponse>, Status> {
        self.handle("ExecutionFinish", Access::Work, request, |backend, caller, body| async move {
            caller.fenced_if_worker(body.epoch)?;
            let status: ExecutionStatus = body.status.parse().map_err(|e: String| Status::invalid_argument(e))?;
            let output = body.output_json.as_deref().map(proto::decode_json).transpose()?;
            let error = body.error_json.as_deref().map(proto::decode_json).transpose()?;
            let last = body.last_events_json.iter().map(|e| proto::decode_json(e)).collect::<Result<Vec<_>, _>>()?;
            backend
                .execution_finish(&body.id, body.epoch, status, output, error, last)
                .await
                .map_err(|e| failed(&e))?;
            Ok(v1::ExecutionFinishResponse {})
        })
        .await
    }

    async fn conditions(
        &self,
        request: Request<v1::ConditionsRequest>,
    ) -> Result<Response<v1::ConditionsResponse>, Status> {
        self.handle("Conditions", Access::Read, request, |backend, _, _| async move {
            let observed = backend.conditions().await.map_err(|e| failed(&e))?;
            let observed_json = observed.iter().map(|one| serde_json::to_vec(one).unwrap_or_default()).collect();
            Ok(v1::ConditionsResponse { observed_json })
        })
        .await
    }

    async fn conditions_record(
        &self,
        request: Request<v1::ConditionsRecordRequest>,
    ) -> Result<Response<v1::ConditionsRecordResponse>, Status> {
        // Probing runs what the resources name (MCP servers, model calls): editors and workers.
        self.handle("ConditionsRecord", Access::Work, request, |backend, _, body| async move {
            let observed =
                body.observed_json.iter().map(|one| proto::decode_json(one)).collect::<Result<Vec<_>, _>>()?;
            backend.conditions_record(observed).await.map_err(|e| failed(&e))?;
            Ok(v1::ConditionsRecordResponse {})
        })
        .await
    }

    async fn execution_park(
        &self,
        request: Request<v1::ExecutionParkRequest>,
    ) -> Result<Response<v1::ExecutionParkResponse>, Status> {
        self.handle("ExecutionPark", Access::Work, request, |backend, _, body| async move {
            let until = body
                .until
                .as_deref()
                .map(str::parse::<jiff::Timestamp>)
                .transpose()
                .map_err(|e| Status::invalid_argument(format!("until: {e}")))?;
            let last = body.last_events_json.iter().map(|e| proto::decode_json(e)).collect::<Result<Vec<_>, _>>()?;
            backend.execution_park(&body.id, body.epoch, until, last).await.map_err(|e| failed(&e))?;
            Ok(v1::ExecutionParkResponse {})
        })
        .await
    }

    async fn execution_decide(
        &self,
        request: Request<v1::ExecutionDecideRequest>,
    ) -> Result<Response<v1::ExecutionDecideResponse>, Status> {
        // Deciding what an agent may do is a change made by a person: editors and admins.
        self.handle("ExecutionDecide", Access::Write, request, |backend, _, body| async move {
            let decisions = body.decisions.into_iter().map(Into::into).collect();
            backend.execution_decide(&body.id, body.after, decisions, body.requeue).await.map_err(|e| failed(&e))?;
            Ok(v1::ExecutionDecideResponse {})
        })
        .await
    }

    async fn execution_claim(
        &self,
        request: Request<v1::ExecutionClaimRequest>,
    ) -> Result<Response<v1::ExecutionClaimResponse>, Status> {
        let most = self.longest_claim_wait;
        let metrics = &self.metrics;
        self.handle("ExecutionClaim", Access::Work, request, |backend, _, body| async move {
            let worker: WorkerInfo = proto::decode_json(&body.worker_json)?;
            let request = ClaimRequest {
                worker,
                lease: Duration::from_millis(body.lease_ms.clamp(1000, 3_600_000)),
                wait: Duration::from_millis(body.wait_ms).min(most),
                id: body.id,
                take_over: body.take_over,
            };
            let claim = backend.execution_claim(request).await.map_err(|e| failed(&e))?;
            if let Some(claim) = &claim {
                metrics.claimed(&claim.record);
            }
            Ok(match claim {
                Some(claim) => v1::ExecutionClaimResponse {
                    record_json: Some(proto::encode_json(&claim.record)),
                    secrets: claim
                        .secrets
                        .into_iter()
                        .map(|(name, value)| v1::RunSecret { name, value: value.expose().to_owned() })
                        .collect(),
                },
                None => v1::ExecutionClaimResponse { record_json: None, secrets: Vec::new() },
            })
        })
        .await
    }

    async fn execution_renew(
        &self,
        request: Request<v1::ExecutionRenewRequest>,
    ) -> Result<Response<v1::ExecutionRenewResponse>, Status> {
        self.handle("ExecutionRenew", Access::Work, request, |backend, _, body| async move {
            let lease = Duration::from_millis(body.lease_ms.clamp(1000, 3_600_000));
            let record = backend.execution_renew(&body.id, body.epoch, lease).await.map_err(|e| failed(&e))?;
            Ok(v1::ExecutionRenewResponse { record_json: proto::encode_json(&record) })
        })
        .await
    }

    type ExecutionFollowStream =
        std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<v1::ExecutionFollowResponse, Status>> + Send>>;

    async fn execution_follow(
        &self,
        request: Request<v1::ExecutionFollowRequest>,
    ) -> Result<Response<Self::ExecutionFollowStream>, Status> {
        self.handle("ExecutionFollow", Access::Any, request, |backend, caller, body| async move {
            caller.holds_if_worker(&backend, &body.id).await?;
            let feed = backend.execution_follow(&body.id, body.after).await.map_err(|e| failed(&e))?;
            let stream = futures_util::StreamExt::map(feed, |update| {
                let update = update.map_err(|e| failed(&e))?;
                Ok(v1::ExecutionFollowResponse {
                    events: update
                        .events
                        .iter()
                        .map(|(sequence, event)| v1::ExecutionEvent {
                            sequence: *sequence,
                            event_json: proto::encode_json(event),
                        })
                        .collect(),
                    record_json: proto::encode_json(&update.record),
                })
            });
            Ok(Box::pin(stream) as Self::ExecutionFollowStream)
        })
        .await
    }

    async fn worker_heartbeat(
        &self,
        request: Request<v1::WorkerHeartbeatRequest>,
    ) -> Result<Response<v1::WorkerHeartbeatResponse>, Status> {
        self.handle("WorkerHeartbeat", Access::Work, request, |backend, _, body| async move {
            let worker: WorkerInfo = proto::decode_json(&body.worker_json)?;
            backend.worker_heartbeat(worker).await.map_err(|e| failed(&e))?;
            Ok(v1::WorkerHeartbeatResponse {})
        })
        .await
    }

    async fn schedule_list(
        &self,
        request: Request<v1::ScheduleListRequest>,
    ) -> Result<Response<v1::ScheduleListResponse>, Status> {
        self.handle("ScheduleList", Access::Read, request, |backend, _, _| async move {
            let schedules = backend.schedule_list().await.map_err(|e| failed(&e))?;
            Ok(v1::ScheduleListResponse { schedules_json: schedules.iter().map(proto::encode_json).collect() })
        })
        .await
    }

    async fn schedule_pause(
        &self,
        request: Request<v1::SchedulePauseRequest>,
    ) -> Result<Response<v1::SchedulePauseResponse>, Status> {
        self.handle("SchedulePause", Access::Write, request, |backend, _, body| async move {
            backend.schedule_pause(&body.workflow, body.paused).await.map_err(|e| failed(&e))?;
            Ok(v1::SchedulePauseResponse {})
        })
        .await
    }

    async fn event_publish(
        &self,
        request: Request<v1::EventPublishRequest>,
    ) -> Result<Response<v1::EventPublishResponse>, Status> {
        self.handle("EventPublish", Access::Events, request, |backend, _, body| async move {
            let event: serde_json::Value = proto::decode_json(&body.event_json)?;
            let receipt = backend.event_publish(event).await.map_err(|e| failed(&e))?;
            Ok(v1::EventPublishResponse { receipt_json: proto::encode_json(&receipt) })
        })
        .await
    }

    async fn worker_list(
        &self,
        request: Request<v1::WorkerListRequest>,
    ) -> Result<Response<v1::WorkerListResponse>, Status> {
        self.handle("WorkerList", Access::Read, request, |backend, _, _| async move {
            let workers = backend.worker_list().await.map_err(|e| failed(&e))?;
            Ok(v1::WorkerListResponse { workers_json: workers.iter().map(proto::encode_json).collect() })
        })
        .await
    }

    async fn execution_get(
        &self,
        request: Request<v1::ExecutionGetRequest>,
    ) -> Result<Response<v1::ExecutionGetResponse>, Status> {
        self.handle("ExecutionGet", Access::Any, request, |backend, caller, body| async move {
            caller.holds_if_worker(&backend, &body.id).await?;
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
            let records = backend.execution_list(&execution_query(body)?).await.map_err(|e| failed(&e))?;
            Ok(v1::ExecutionListResponse { records_json: records.iter().map(proto::encode_json).collect() })
        })
        .await
    }

    async fn execution_count(
        &self,
        request: Request<v1::ExecutionListRequest>,
    ) -> Result<Response<v1::ExecutionCountResponse>, Status> {
        self.handle("ExecutionCount", Access::Read, request, |backend, _, body| async move {
            let counts = backend.execution_counts(&execution_query(body)?).await.map_err(|e| failed(&e))?;
            let by_status = counts.into_iter().map(|(status, count)| (status.as_str().to_owned(), count)).collect();
            Ok(v1::ExecutionCountResponse { by_status })
        })
        .await
    }

    async fn execution_events(
        &self,
        request: Request<v1::ExecutionEventsRequest>,
    ) -> Result<Response<v1::ExecutionEventsResponse>, Status> {
        self.handle("ExecutionEvents", Access::Any, request, |backend, caller, body| async move {
            caller.holds_if_worker(&backend, &body.id).await?;
            let limit = body.limit.map(|limit| usize::try_from(limit).unwrap_or(usize::MAX));
            let events = backend.execution_events(&body.id, body.after, limit).await.map_err(|e| failed(&e))?;
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

/// The query an execution list or count request asks.
fn execution_query(body: v1::ExecutionListRequest) -> Result<ExecutionQuery, Status> {
    let status = body.status.map(|s| s.parse()).transpose().map_err(|e: String| Status::invalid_argument(e))?;
    let since = body.since.as_deref().map(proto::time).transpose()?;
    let narrow = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    let page = body.page_take.map(|take| ExecutionPage { skip: narrow(body.page_skip), take: narrow(take) });
    Ok(ExecutionQuery {
        target: body.target,
        target_prefixes: body.target_prefixes,
        target_contains: body.target_contains,
        status,
        since,
        page,
        definitions: body.definitions,
    })
}
