//! The stores behind the backend contract, each a [`crate::backend::Storage`]: [`redb`], a file
//! (the local store, and a server's org stores in its data directory), and [`postgres`], one
//! database that every org and every server replica shares.

pub mod postgres;
pub mod redb;
pub mod transfer;

use std::time::Duration;

use jiff::Timestamp;
use serde_json::value::RawValue;

use crate::backend::condition::Observed;
use crate::backend::storage::{Author, Claimed, EventEffects, Fence, Finish, Fire, Keyring, Reseal, SealedSecret};
use crate::backend::{
    ApplyBatch, ApplyReceipt, AuditEntry, BackendError, ClaimRequest, ExecutionCounts, ExecutionQuery, ExecutionRecord,
    ResourceHead, ResourceQuery, Revision, ScheduleState, Storage, StoredResource, WorkerInfo,
};
use crate::model::Kind;

/// A server's store for one org, whichever kind the server runs on.
#[derive(Debug, Clone)]
pub enum AnyStorage {
    /// A redb file in the data directory.
    Redb(redb::RedbStorage),
    /// The org's rows in the database.
    Postgres(postgres::PgStorage),
}

/// Calls the same method on whichever store it is.
macro_rules! delegate {
    ($self:ident, $storage:ident => $call:expr) => {
        match $self {
            AnyStorage::Redb($storage) => $call.await,
            AnyStorage::Postgres($storage) => $call.await,
        }
    };
}

impl Storage for AnyStorage {
    fn describe(&self) -> String {
        match self {
            Self::Redb(storage) => storage.describe(),
            Self::Postgres(storage) => storage.describe(),
        }
    }

    async fn list(&self, query: &ResourceQuery) -> Result<Vec<StoredResource>, BackendError> {
        delegate!(self, s => s.list(query))
    }

    async fn heads(&self) -> Result<Vec<ResourceHead>, BackendError> {
        delegate!(self, s => s.heads())
    }

    async fn list_setting(
        &self,
        query: &ResourceQuery,
        path: &'static [&'static str],
    ) -> Result<Vec<StoredResource>, BackendError> {
        delegate!(self, s => s.list_setting(query, path))
    }

    async fn get(&self, kind: Kind, name: &str) -> Result<Option<StoredResource>, BackendError> {
        delegate!(self, s => s.get(kind, name))
    }

    async fn apply(&self, batch: ApplyBatch, author: Author<'_>, now: Timestamp) -> Result<ApplyReceipt, BackendError> {
        delegate!(self, s => s.apply(batch, author, now))
    }

    async fn history(&self, kind: Kind, name: &str) -> Result<Vec<Revision>, BackendError> {
        delegate!(self, s => s.history(kind, name))
    }

    async fn inventory(&self, apply_set: &str) -> Result<Vec<(Kind, String)>, BackendError> {
        delegate!(self, s => s.inventory(apply_set))
    }

    async fn audit(&self, since: Option<Timestamp>) -> Result<Vec<AuditEntry>, BackendError> {
        delegate!(self, s => s.audit(since))
    }

    async fn version(&self) -> Result<u64, BackendError> {
        delegate!(self, s => s.version())
    }

    async fn keyring(&self) -> Result<Option<Keyring>, BackendError> {
        delegate!(self, s => s.keyring())
    }

    async fn ensure_keyring(&self, candidate: Keyring) -> Result<Keyring, BackendError> {
        delegate!(self, s => s.ensure_keyring(candidate))
    }

    async fn secrets(&self) -> Result<Vec<SealedSecret>, BackendError> {
        delegate!(self, s => s.secrets())
    }

    async fn secret(&self, name: &str) -> Result<Option<SealedSecret>, BackendError> {
        delegate!(self, s => s.secret(name))
    }

    async fn put_secret(
        &self,
        name: &str,
        key_id: &str,
        sealed: Vec<u8>,
        author: Author<'_>,
        now: Timestamp,
    ) -> Result<bool, BackendError> {
        delegate!(self, s => s.put_secret(name, key_id, sealed, author, now))
    }

    async fn delete_secret(&self, name: &str, author: Author<'_>, now: Timestamp) -> Result<(), BackendError> {
        delegate!(self, s => s.delete_secret(name, author, now))
    }

    async fn rotate_keyring(
        &self,
        new: Keyring,
        reseal: Reseal,
        author: Author<'_>,
        now: Timestamp,
    ) -> Result<usize, BackendError> {
        delegate!(self, s => s.rotate_keyring(new, reseal, author, now))
    }

    async fn create_execution(&self, record: ExecutionRecord, sealed: Option<Vec<u8>>) -> Result<(), BackendError> {
        delegate!(self, s => s.create_execution(record, sealed))
    }

    async fn claim_execution(
        &self,
        request: &ClaimRequest,
        token: &str,
        now: Timestamp,
    ) -> Result<Option<Claimed>, BackendError> {
        delegate!(self, s => s.claim_execution(request, token, now))
    }

    async fn renew_lease(
        &self,
        id: &str,
        fence: Fence<'_>,
        lease: Duration,
        now: Timestamp,
    ) -> Result<ExecutionRecord, BackendError> {
        delegate!(self, s => s.renew_lease(id, fence, lease, now))
    }

    async fn append_events(
        &self,
        id: &str,
        fence: Option<Fence<'_>>,
        events: &[Box<RawValue>],
    ) -> Result<u64, BackendError> {
        delegate!(self, s => s.append_events(id, fence, events))
    }

    async fn finish_execution(
        &self,
        id: &str,
        fence: Option<Fence<'_>>,
        finish: Finish<'_>,
        now: Timestamp,
    ) -> Result<(), BackendError> {
        delegate!(self, s => s.finish_execution(id, fence, finish, now))
    }

    async fn park_execution(
        &self,
        id: &str,
        fence: Fence<'_>,
        until: Option<Timestamp>,
        last: &[Box<RawValue>],
    ) -> Result<(), BackendError> {
        delegate!(self, s => s.park_execution(id, fence, until, last))
    }

    async fn decide_execution(
        &self,
        id: &str,
        after: u64,
        events: &[Box<RawValue>],
        audit: &[AuditEntry],
        requeue: bool,
    ) -> Result<(), BackendError> {
        delegate!(self, s => s.decide_execution(id, after, events, audit, requeue))
    }

    async fn execution(&self, id: &str) -> Result<Option<ExecutionRecord>, BackendError> {
        delegate!(self, s => s.execution(id))
    }

    async fn execution_counts(&self, query: &ExecutionQuery) -> Result<ExecutionCounts, BackendError> {
        delegate!(self, s => s.execution_counts(query))
    }

    async fn executions(&self, query: &ExecutionQuery) -> Result<Vec<ExecutionRecord>, BackendError> {
        delegate!(self, s => s.executions(query))
    }

    async fn events(
        &self,
        id: &str,
        after: u64,
        limit: Option<usize>,
    ) -> Result<Vec<(u64, serde_json::Value)>, BackendError> {
        delegate!(self, s => s.events(id, after, limit))
    }

    async fn worker_seen(&self, worker: &WorkerInfo, now: Timestamp) -> Result<(), BackendError> {
        delegate!(self, s => s.worker_seen(worker, now))
    }

    async fn workers(&self) -> Result<Vec<WorkerInfo>, BackendError> {
        delegate!(self, s => s.workers())
    }

    async fn conditions(&self) -> Result<Vec<Observed>, BackendError> {
        delegate!(self, s => s.conditions())
    }

    async fn put_conditions(&self, observed: Vec<Observed>) -> Result<(), BackendError> {
        delegate!(self, s => s.put_conditions(observed))
    }

    async fn schedule_states(&self) -> Result<Vec<(String, ScheduleState)>, BackendError> {
        delegate!(self, s => s.schedule_states())
    }

    async fn put_schedule_state(&self, workflow: &str, state: &ScheduleState) -> Result<(), BackendError> {
        delegate!(self, s => s.put_schedule_state(workflow, state))
    }

    async fn pause_schedule(&self, workflow: &str, paused: bool, initial: &ScheduleState) -> Result<(), BackendError> {
        delegate!(self, s => s.pause_schedule(workflow, paused, initial))
    }

    async fn fire_slots(&self, fires: Vec<Fire>) -> Result<Vec<bool>, BackendError> {
        delegate!(self, s => s.fire_slots(fires))
    }

    async fn publish_event(
        &self,
        event: &serde_json::Value,
        effects: EventEffects,
        now: Timestamp,
    ) -> Result<bool, BackendError> {
        delegate!(self, s => s.publish_event(event, effects, now))
    }

    fn queue_changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        match self {
            Self::Redb(storage) => storage.queue_changes(),
            Self::Postgres(storage) => storage.queue_changes(),
        }
    }

    fn execution_changes(&self, id: &str) -> Option<tokio::sync::watch::Receiver<u64>> {
        match self {
            Self::Redb(storage) => storage.execution_changes(id),
            Self::Postgres(storage) => storage.execution_changes(id),
        }
    }
}
