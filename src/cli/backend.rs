//! The backend a context names: the local store or a server, one type the commands hold.

use jiff::Timestamp;

use crate::backend::{
    ApplyBatch, ApplyReceipt, AuditEntry, Backend, BackendError, Claim, ClaimRequest, EventReceipt, ExecutionCounts,
    ExecutionFeed, ExecutionQuery, ExecutionRecord, ExecutionStatus, Identity, ResourceHead, ResourceQuery, Revision,
    ScheduleInfo, SecretInfo, StoredResource, WorkerInfo,
};
use crate::model::Kind;
use crate::remote::RemoteBackend;
use crate::secrets::SecretValue;
use crate::store::redb::LocalBackend;

/// The backend a context names: the local store or a server. Commands hold this and never ask
/// which one it is.
#[derive(Debug, Clone)]
pub enum AnyBackend {
    /// The store on this machine.
    Local(LocalBackend),
    /// A `stigmer server`.
    Remote(RemoteBackend),
}

impl AnyBackend {
    /// Whether executions started here are run by the backend's own workers (a server) rather
    /// than in the process that starts them (the local store).
    pub fn runs_executions(&self) -> bool {
        matches!(self, Self::Remote(_))
    }
}

/// Calls the same method on whichever backend it is.
macro_rules! delegate {
    ($self:ident, $backend:ident => $call:expr) => {
        match $self {
            AnyBackend::Local($backend) => $call.await,
            AnyBackend::Remote($backend) => $call.await,
        }
    };
}

impl Backend for AnyBackend {
    async fn list(&self, query: &ResourceQuery) -> Result<Vec<StoredResource>, BackendError> {
        delegate!(self, b => b.list(query))
    }

    async fn heads(&self) -> Result<Vec<ResourceHead>, BackendError> {
        delegate!(self, b => b.heads())
    }

    async fn get(&self, kind: Kind, name: &str) -> Result<Option<StoredResource>, BackendError> {
        delegate!(self, b => b.get(kind, name))
    }

    async fn apply(&self, batch: ApplyBatch) -> Result<ApplyReceipt, BackendError> {
        delegate!(self, b => b.apply(batch))
    }

    async fn history(&self, kind: Kind, name: &str) -> Result<Vec<Revision>, BackendError> {
        delegate!(self, b => b.history(kind, name))
    }

    async fn inventory(&self, apply_set: &str) -> Result<Vec<(Kind, String)>, BackendError> {
        delegate!(self, b => b.inventory(apply_set))
    }

    async fn audit(&self, since: Option<Timestamp>) -> Result<Vec<AuditEntry>, BackendError> {
        delegate!(self, b => b.audit(since))
    }

    async fn version(&self) -> Result<u64, BackendError> {
        delegate!(self, b => b.version())
    }

    async fn whoami(&self) -> Result<Identity, BackendError> {
        delegate!(self, b => b.whoami())
    }

    async fn secret_set(&self, name: &str, value: SecretValue) -> Result<bool, BackendError> {
        delegate!(self, b => b.secret_set(name, value))
    }

    async fn secret_list(&self) -> Result<Vec<SecretInfo>, BackendError> {
        delegate!(self, b => b.secret_list())
    }

    async fn secret_delete(&self, name: &str) -> Result<(), BackendError> {
        delegate!(self, b => b.secret_delete(name))
    }

    async fn secret_reveal(&self, name: &str) -> Result<SecretValue, BackendError> {
        delegate!(self, b => b.secret_reveal(name))
    }

    async fn secret_rotate_key(&self) -> Result<usize, BackendError> {
        delegate!(self, b => b.secret_rotate_key())
    }

    async fn execution_create(
        &self,
        record: ExecutionRecord,
        secrets: Vec<(String, SecretValue)>,
    ) -> Result<(), BackendError> {
        delegate!(self, b => b.execution_create(record, secrets))
    }

    async fn execution_append(
        &self,
        id: &str,
        fence: Option<u64>,
        events: Vec<Box<serde_json::value::RawValue>>,
    ) -> Result<u64, BackendError> {
        delegate!(self, b => b.execution_append(id, fence, events))
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
        delegate!(self, b => b.execution_finish(id, fence, status, output, error, last))
    }

    async fn conditions(&self) -> Result<Vec<crate::backend::condition::Observed>, BackendError> {
        delegate!(self, b => b.conditions())
    }

    async fn conditions_record(&self, observed: Vec<crate::backend::condition::Observed>) -> Result<(), BackendError> {
        delegate!(self, b => b.conditions_record(observed))
    }

    async fn execution_park(
        &self,
        id: &str,
        epoch: u64,
        until: Option<jiff::Timestamp>,
        last: Vec<Box<serde_json::value::RawValue>>,
    ) -> Result<(), BackendError> {
        delegate!(self, b => b.execution_park(id, epoch, until, last))
    }

    async fn execution_decide(
        &self,
        id: &str,
        after: u64,
        decisions: Vec<crate::backend::approval::Decision>,
        requeue: bool,
    ) -> Result<(), BackendError> {
        delegate!(self, b => b.execution_decide(id, after, decisions, requeue))
    }

    async fn execution_claim(&self, request: ClaimRequest) -> Result<Option<Claim>, BackendError> {
        delegate!(self, b => b.execution_claim(request))
    }

    async fn execution_renew(
        &self,
        id: &str,
        epoch: u64,
        lease: std::time::Duration,
    ) -> Result<ExecutionRecord, BackendError> {
        delegate!(self, b => b.execution_renew(id, epoch, lease))
    }

    async fn execution_follow(&self, id: &str, after: u64) -> Result<ExecutionFeed, BackendError> {
        delegate!(self, b => b.execution_follow(id, after))
    }

    async fn worker_heartbeat(&self, worker: WorkerInfo) -> Result<(), BackendError> {
        delegate!(self, b => b.worker_heartbeat(worker))
    }

    async fn worker_list(&self) -> Result<Vec<WorkerInfo>, BackendError> {
        delegate!(self, b => b.worker_list())
    }

    async fn schedule_list(&self) -> Result<Vec<ScheduleInfo>, BackendError> {
        delegate!(self, b => b.schedule_list())
    }

    async fn schedule_pause(&self, workflow: &str, paused: bool) -> Result<(), BackendError> {
        delegate!(self, b => b.schedule_pause(workflow, paused))
    }

    async fn event_publish(&self, event: serde_json::Value) -> Result<EventReceipt, BackendError> {
        delegate!(self, b => b.event_publish(event))
    }

    async fn execution_get(&self, id: &str) -> Result<Option<ExecutionRecord>, BackendError> {
        delegate!(self, b => b.execution_get(id))
    }

    async fn execution_list(&self, query: &ExecutionQuery) -> Result<Vec<ExecutionRecord>, BackendError> {
        delegate!(self, b => b.execution_list(query))
    }

    async fn execution_counts(&self, query: &ExecutionQuery) -> Result<ExecutionCounts, BackendError> {
        delegate!(self, b => b.execution_counts(query))
    }

    async fn execution_events(
        &self,
        id: &str,
        after: u64,
        limit: Option<usize>,
    ) -> Result<Vec<(u64, serde_json::Value)>, BackendError> {
        delegate!(self, b => b.execution_events(id, after, limit))
    }
}
