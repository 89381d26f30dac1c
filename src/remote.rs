//! The remote backend: the same contract as the local store, served by `stigmer server` over
//! gRPC. Every call carries the token, the org and the protocol revision; errors come back as
//! the exact `BackendError` values the server had. The channel connects lazily and reconnects by
//! itself, so a long-running `apply --watch` outlives a server restart.

use std::time::Duration;

use jiff::Timestamp;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Request, Status};

use futures_util::StreamExt as _;

use crate::backend::{
    ApplyBatch, ApplyReceipt, AuditEntry, Backend, BackendError, Claim, ClaimRequest, ExecutionCounts, ExecutionFeed,
    ExecutionQuery, ExecutionRecord, ExecutionStatus, FeedUpdate, Identity, ResourceHead, ResourceQuery, Revision,
    ScheduleInfo, SecretInfo, StoredResource, WorkerInfo,
};
use crate::model::Kind;
use crate::proto::{
    ORG_HEADER, PROTOCOL, PROTOCOL_HEADER, decode_all, decode_json, encode_json, members_from_wire, status_to_error,
    v1, v1::backend_service_client::BackendServiceClient,
};
use crate::secrets::SecretValue;

/// How long to wait for a connection before calling the server unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the server is and how to talk to it.
#[derive(Clone)]
pub struct RemoteOptions {
    /// `http://127.0.0.1:7234` or `https://stigmer.example.com`.
    pub endpoint: String,
    /// The API token (`stk_…`).
    pub token: String,
    /// The org to act in; the server refuses another than the token's.
    pub org: Option<String>,
    /// A PEM CA certificate to trust for `https` endpoints, besides the system's roots.
    pub ca_cert: Option<Vec<u8>>,
}

impl std::fmt::Debug for RemoteOptions {
    // The token never appears in debug output or logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteOptions")
            .field("endpoint", &self.endpoint)
            .field("token", &"***")
            .field("org", &self.org)
            .finish_non_exhaustive()
    }
}

/// Adds the token, org and protocol to every call.
#[derive(Clone)]
struct Credentials {
    authorization: AsciiMetadataValue,
    org: Option<AsciiMetadataValue>,
}

impl Interceptor for Credentials {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let metadata = request.metadata_mut();
        metadata.insert("authorization", self.authorization.clone());
        metadata.insert(PROTOCOL_HEADER, MetadataValue::from(PROTOCOL));
        if let Some(org) = &self.org {
            metadata.insert(ORG_HEADER, org.clone());
        }
        Ok(request)
    }
}

/// A backend on a server.
#[derive(Clone)]
pub struct RemoteBackend {
    endpoint: String,
    client: BackendServiceClient<InterceptedService<Channel, Credentials>>,
}

impl std::fmt::Debug for RemoteBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteBackend").field("endpoint", &self.endpoint).finish_non_exhaustive()
    }
}

impl RemoteBackend {
    /// A backend for the server at `options.endpoint`. Nothing is sent until the first call.
    ///
    /// # Errors
    /// The endpoint is not a URL, the token or org cannot be sent as a header, or the CA
    /// certificate is unusable.
    pub fn new(options: &RemoteOptions) -> Result<Self, BackendError> {
        let endpoint = options.endpoint.trim_end_matches('/').to_owned();
        let unusable = |detail: String| BackendError::Unreachable { endpoint: endpoint.clone(), detail };
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(unusable("not a valid endpoint URL; use http://HOST:PORT or https://HOST".to_owned()));
        }
        let mut channel = Endpoint::from_shared(endpoint.clone())
            .map_err(|e| unusable(format!("not a valid endpoint URL ({e}); use http://HOST:PORT or https://HOST")))?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true);
        if endpoint.starts_with("https://") {
            let mut tls = ClientTlsConfig::new().with_native_roots();
            if let Some(pem) = &options.ca_cert {
                tls = tls.ca_certificate(Certificate::from_pem(pem));
            }
            channel = channel.tls_config(tls).map_err(|e| unusable(format!("TLS is not usable: {e}")))?;
        }
        let mut authorization: AsciiMetadataValue = format!("Bearer {}", options.token)
            .parse()
            .map_err(|_| BackendError::Unauthenticated("the token has characters a header cannot carry".to_owned()))?;
        authorization.set_sensitive(true);
        let org = match &options.org {
            Some(org) => Some(org.parse().map_err(|_| {
                BackendError::PermissionDenied(format!("{org:?} is not an org name a header can carry"))
            })?),
            None => None,
        };
        let client = BackendServiceClient::with_interceptor(channel.connect_lazy(), Credentials { authorization, org })
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX);
        Ok(Self { endpoint, client })
    }

    /// The server's URL.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn error(&self, status: &Status) -> BackendError {
        status_to_error(status, &self.endpoint)
    }
}

impl Backend for RemoteBackend {
    async fn list(&self, query: &ResourceQuery) -> Result<Vec<StoredResource>, BackendError> {
        let response = self.client.clone().list(v1::ListRequest::from(query)).await.map_err(|s| self.error(&s))?;
        Ok(decode_all(response.into_inner().resources)?)
    }

    async fn heads(&self) -> Result<Vec<ResourceHead>, BackendError> {
        match self.client.clone().heads(v1::HeadsRequest {}).await {
            Ok(response) => Ok(decode_all(response.into_inner().heads)?),
            // A server older than this client lists whole resources.
            Err(status) if status.code() == tonic::Code::Unimplemented => {
                Ok(self.list(&ResourceQuery::all()).await?.iter().map(StoredResource::head).collect())
            }
            Err(status) => Err(self.error(&status)),
        }
    }

    async fn get(&self, kind: Kind, name: &str) -> Result<Option<StoredResource>, BackendError> {
        let request = v1::GetRequest { kind: kind.as_str().to_owned(), name: name.to_owned() };
        let response = self.client.clone().get(request).await.map_err(|s| self.error(&s))?;
        Ok(response.into_inner().resource.map(StoredResource::try_from).transpose()?)
    }

    async fn apply(&self, batch: ApplyBatch) -> Result<ApplyReceipt, BackendError> {
        // Nothing to write: no request at all, as the local backend opens no file.
        if batch.items.is_empty() {
            return Ok(ApplyReceipt::default());
        }
        let response = self.client.clone().apply(v1::ApplyRequest::from(&batch)).await.map_err(|s| self.error(&s))?;
        Ok(ApplyReceipt::try_from(response.into_inner())?)
    }

    async fn history(&self, kind: Kind, name: &str) -> Result<Vec<Revision>, BackendError> {
        let request = v1::HistoryRequest { kind: kind.as_str().to_owned(), name: name.to_owned() };
        let response = self.client.clone().history(request).await.map_err(|s| self.error(&s))?;
        Ok(decode_all(response.into_inner().revisions)?)
    }

    async fn inventory(&self, apply_set: &str) -> Result<Vec<(Kind, String)>, BackendError> {
        let request = v1::InventoryRequest { apply_set: apply_set.to_owned() };
        let response = self.client.clone().inventory(request).await.map_err(|s| self.error(&s))?;
        Ok(members_from_wire(response.into_inner().members)?)
    }

    async fn audit(&self, since: Option<Timestamp>) -> Result<Vec<AuditEntry>, BackendError> {
        let request = v1::AuditRequest { since: since.map(|t| t.to_string()) };
        let response = self.client.clone().audit(request).await.map_err(|s| self.error(&s))?;
        Ok(decode_all(response.into_inner().entries)?)
    }

    async fn version(&self) -> Result<u64, BackendError> {
        let response = self.client.clone().version(v1::VersionRequest {}).await.map_err(|s| self.error(&s))?;
        Ok(response.into_inner().version)
    }

    async fn whoami(&self) -> Result<Identity, BackendError> {
        let response = self.client.clone().who_am_i(v1::WhoAmIRequest {}).await.map_err(|s| self.error(&s))?;
        let mut identity = Identity::from(response.into_inner());
        identity.backend = format!("{} at {}", identity.backend, self.endpoint);
        Ok(identity)
    }

    async fn secret_set(&self, name: &str, value: SecretValue) -> Result<bool, BackendError> {
        let request = v1::SecretSetRequest { name: name.to_owned(), value: value.expose().to_owned() };
        let response = self.client.clone().secret_set(request).await.map_err(|s| self.error(&s))?;
        Ok(response.into_inner().created)
    }

    async fn secret_list(&self) -> Result<Vec<SecretInfo>, BackendError> {
        let response = self.client.clone().secret_list(v1::SecretListRequest {}).await.map_err(|s| self.error(&s))?;
        Ok(decode_all(response.into_inner().secrets)?)
    }

    async fn secret_delete(&self, name: &str) -> Result<(), BackendError> {
        let request = v1::SecretDeleteRequest { name: name.to_owned() };
        self.client.clone().secret_delete(request).await.map_err(|s| self.error(&s))?;
        Ok(())
    }

    async fn secret_reveal(&self, name: &str) -> Result<SecretValue, BackendError> {
        let request = v1::SecretRevealRequest { name: name.to_owned() };
        let response = self.client.clone().secret_reveal(request).await.map_err(|s| self.error(&s))?;
        Ok(SecretValue::new(response.into_inner().value))
    }

    async fn execution_create(
        &self,
        record: ExecutionRecord,
        secrets: Vec<(String, SecretValue)>,
    ) -> Result<(), BackendError> {
        let request = v1::ExecutionCreateRequest {
            record_json: encode_json(&record),
            secrets: secrets
                .into_iter()
                .map(|(name, value)| v1::RunSecret { name, value: value.expose().to_owned() })
                .collect(),
        };
        self.client.clone().execution_create(request).await.map_err(|s| self.error(&s))?;
        Ok(())
    }

    async fn execution_append(
        &self,
        id: &str,
        fence: Option<u64>,
        events: Vec<Box<serde_json::value::RawValue>>,
    ) -> Result<u64, BackendError> {
        let request = v1::ExecutionAppendRequest {
            id: id.to_owned(),
            events_json: events.iter().map(|e| e.get().as_bytes().to_vec()).collect(),
            epoch: fence,
        };
        let response = self.client.clone().execution_append(request).await.map_err(|s| self.error(&s))?;
        Ok(response.into_inner().last)
    }

    async fn execution_finish(
        &self,
        id: &str,
        fence: Option<u64>,
        status: ExecutionStatus,
        output: Option<serde_json::Value>,
        error: Option<serde_json::Value>,
        last: Vec<Box<serde_json::value::RawValue>>,
    ) -> Result<(), BackendError> {
        let request = v1::ExecutionFinishRequest {
            id: id.to_owned(),
            status: status.as_str().to_owned(),
            output_json: output.as_ref().map(encode_json),
            error_json: error.as_ref().map(encode_json),
            epoch: fence,
            last_events_json: last.iter().map(|e| e.get().as_bytes().to_vec()).collect(),
        };
        self.client.clone().execution_finish(request).await.map_err(|s| self.error(&s))?;
        Ok(())
    }

    async fn conditions(&self) -> Result<Vec<crate::backend::condition::Observed>, BackendError> {
        let response = self.client.clone().conditions(v1::ConditionsRequest {}).await.map_err(|s| self.error(&s))?;
        Ok(response.into_inner().observed_json.iter().map(|one| decode_json(one)).collect::<Result<_, _>>()?)
    }

    async fn conditions_record(&self, observed: Vec<crate::backend::condition::Observed>) -> Result<(), BackendError> {
        let observed_json = observed
            .iter()
            .map(|one| serde_json::to_vec(one).map_err(|e| BackendError::Storage(format!("cannot encode: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let request = v1::ConditionsRecordRequest { observed_json };
        self.client.clone().conditions_record(request).await.map_err(|s| self.error(&s))?;
        Ok(())
    }

    async fn execution_park(
        &self,
        id: &str,
        epoch: u64,
        until: Option<Timestamp>,
        last: Vec<Box<serde_json::value::RawValue>>,
    ) -> Result<(), BackendError> {
        let request = v1::ExecutionParkRequest {
            id: id.to_owned(),
            epoch,
            until: until.map(|until| until.to_string()),
            last_events_json: last.iter().map(|e| e.get().as_bytes().to_vec()).collect(),
        };
        self.client.clone().execution_park(request).await.map_err(|s| self.error(&s))?;
        Ok(())
    }

    async fn execution_decide(
        &self,
        id: &str,
        after: u64,
        decisions: Vec<crate::backend::approval::Decision>,
        requeue: bool,
    ) -> Result<(), BackendError> {
        let request = v1::ExecutionDecideRequest {
            id: id.to_owned(),
            after,
            decisions: decisions.iter().map(v1::ExecutionDecision::from).collect(),
            requeue,
        };
        self.client.clone().execution_decide(request).await.map_err(|s| self.error(&s))?;
        Ok(())
    }

    async fn execution_claim(&self, request: ClaimRequest) -> Result<Option<Claim>, BackendError> {
        let wire = v1::ExecutionClaimRequest {
            worker_json: encode_json(&request.worker),
            lease_ms: millis(request.lease),
            wait_ms: millis(request.wait),
            id: request.id,
            take_over: request.take_over,
        };
        let response = self.client.clone().execution_claim(wire).await.map_err(|s| self.error(&s))?.into_inner();
        let Some(record) = response.record_json.as_deref().map(decode_json).transpose()? else { return Ok(None) };
        let secrets = response.secrets.into_iter().map(|s| (s.name, SecretValue::new(s.value))).collect();
        Ok(Some(Claim { record, secrets }))
    }

    async fn execution_renew(&self, id: &str, epoch: u64, lease: Duration) -> Result<ExecutionRecord, BackendError> {
        let request = v1::ExecutionRenewRequest { id: id.to_owned(), epoch, lease_ms: millis(lease) };
        let response = self.client.clone().execution_renew(request).await.map_err(|s| self.error(&s))?;
        Ok(decode_json(&response.into_inner().record_json)?)
    }

    async fn execution_follow(&self, id: &str, after: u64) -> Result<ExecutionFeed, BackendError> {
        let request = v1::ExecutionFollowRequest { id: id.to_owned(), after };
        let stream = self.client.clone().execution_follow(request).await.map_err(|s| self.error(&s))?.into_inner();
        let endpoint = self.endpoint.clone();
        Ok(Box::pin(stream.map(move |item| {
            let item = item.map_err(|status| status_to_error(&status, &endpoint))?;
            let events = item
                .events
                .into_iter()
                .map(|e| Ok((e.sequence, decode_json(&e.event_json)?)))
                .collect::<Result<_, crate::proto::WireError>>()?;
            Ok(FeedUpdate { events, record: decode_json(&item.record_json)? })
        })))
    }

    async fn worker_heartbeat(&self, worker: WorkerInfo) -> Result<(), BackendError> {
        let request = v1::WorkerHeartbeatRequest { worker_json: encode_json(&worker) };
        self.client.clone().worker_heartbeat(request).await.map_err(|s| self.error(&s))?;
        Ok(())
    }

    async fn schedule_list(&self) -> Result<Vec<ScheduleInfo>, BackendError> {
        let response =
            self.client.clone().schedule_list(v1::ScheduleListRequest {}).await.map_err(|s| self.error(&s))?;
        Ok(response.into_inner().schedules_json.iter().map(|s| decode_json(s)).collect::<Result<_, _>>()?)
    }

    async fn schedule_pause(&self, workflow: &str, paused: bool) -> Result<(), BackendError> {
        let request = v1::SchedulePauseRequest { workflow: workflow.to_owned(), paused };
        self.client.clone().schedule_pause(request).await.map_err(|s| self.error(&s))?;
        Ok(())
    }

    async fn event_publish(&self, event: serde_json::Value) -> Result<crate::backend::EventReceipt, BackendError> {
        let request = v1::EventPublishRequest { event_json: encode_json(&event) };
        let response = self.client.clone().event_publish(request).await.map_err(|s| self.error(&s))?;
        Ok(decode_json(&response.into_inner().receipt_json)?)
    }

    async fn worker_list(&self) -> Result<Vec<WorkerInfo>, BackendError> {
        let response = self.client.clone().worker_list(v1::WorkerListRequest {}).await.map_err(|s| self.error(&s))?;
        Ok(response.into_inner().workers_json.iter().map(|w| decode_json(w)).collect::<Result<_, _>>()?)
    }

    async fn execution_get(&self, id: &str) -> Result<Option<ExecutionRecord>, BackendError> {
        let request = v1::ExecutionGetRequest { id: id.to_owned() };
        let response = self.client.clone().execution_get(request).await.map_err(|s| self.error(&s))?;
        Ok(response.into_inner().record_json.as_deref().map(decode_json).transpose()?)
    }

    async fn execution_list(&self, query: &ExecutionQuery) -> Result<Vec<ExecutionRecord>, BackendError> {
        let request = list_request(query);
        let response = self.client.clone().execution_list(request).await.map_err(|s| self.error(&s))?;
        Ok(response.into_inner().records_json.iter().map(|r| decode_json(r)).collect::<Result<_, _>>()?)
    }

    async fn execution_counts(&self, query: &ExecutionQuery) -> Result<ExecutionCounts, BackendError> {
        let response = self.client.clone().execution_count(list_request(query)).await.map_err(|s| self.error(&s))?;
        response
            .into_inner()
            .by_status
            .into_iter()
            .map(|(status, count)| Ok((status.parse().map_err(BackendError::Storage)?, count)))
            .collect()
    }

    async fn execution_events(
        &self,
        id: &str,
        after: u64,
        limit: Option<usize>,
    ) -> Result<Vec<(u64, serde_json::Value)>, BackendError> {
        let limit = limit.map(|limit| u64::try_from(limit).unwrap_or(u64::MAX));
        let request = v1::ExecutionEventsRequest { id: id.to_owned(), after, limit };
        let response = self.client.clone().execution_events(request).await.map_err(|s| self.error(&s))?;
        let events = response.into_inner().events;
        Ok(events
            .into_iter()
            .map(|e| Ok((e.sequence, decode_json(&e.event_json)?)))
            .collect::<Result<_, crate::proto::WireError>>()?)
    }

    async fn secret_rotate_key(&self) -> Result<usize, BackendError> {
        let request = v1::SecretRotateKeyRequest {};
        let response = self.client.clone().secret_rotate_key(request).await.map_err(|s| self.error(&s))?;
        Ok(usize::try_from(response.into_inner().resealed).unwrap_or(usize::MAX))
    }
}

/// A duration as whole milliseconds, for the wire.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn list_request(query: &ExecutionQuery) -> v1::ExecutionListRequest {
    let wide = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    v1::ExecutionListRequest {
        target: query.target.clone(),
        status: query.status.map(|s| s.as_str().to_owned()),
        since: query.since.map(|t| t.to_string()),
        target_prefixes: query.target_prefixes.clone(),
        target_contains: query.target_contains.clone(),
        page_skip: query.page.map_or(0, |page| wide(page.skip)),
        page_take: query.page.map(|page| wide(page.take)),
        definitions: query.definitions,
    }
}
