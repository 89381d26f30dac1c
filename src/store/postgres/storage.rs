//! [`PgStorage`] as a [`Storage`]: each primitive is one of the transactions in `resources` and
//! `executions`.

use std::time::Duration;

use jiff::Timestamp;
use serde_json::value::RawValue;

use super::PgStorage;
use crate::backend::condition::Observed;
use crate::backend::storage::{Author, Claimed, EventEffects, Fence, Finish, Fire, Keyring, Reseal, SealedSecret};
use crate::backend::{
    ApplyBatch, ApplyReceipt, AuditEntry, BackendError, ClaimRequest, ExecutionCounts, ExecutionQuery, ExecutionRecord,
    ResourceHead, ResourceQuery, Revision, ScheduleState, Storage, StoredResource, WorkerInfo,
};
use crate::model::Kind;

impl Storage for PgStorage {
    fn describe(&self) -> String {
        format!("{} (org {})", self.shared.description, self.org)
    }

    async fn list(&self, query: &ResourceQuery) -> Result<Vec<StoredResource>, BackendError> {
        self.list_resources(query, None).await
    }

    async fn heads(&self) -> Result<Vec<ResourceHead>, BackendError> {
        self.resource_heads().await
    }

    async fn list_setting(
        &self,
        query: &ResourceQuery,
        path: &'static [&'static str],
    ) -> Result<Vec<StoredResource>, BackendError> {
        self.list_resources(query, Some(path)).await
    }

    async fn get(&self, kind: Kind, name: &str) -> Result<Option<StoredResource>, BackendError> {
        self.get_resource(kind, name).await
    }

    async fn apply(&self, batch: ApplyBatch, author: Author<'_>, now: Timestamp) -> Result<ApplyReceipt, BackendError> {
        self.apply_batch(batch, author, now).await
    }

    async fn history(&self, kind: Kind, name: &str) -> Result<Vec<Revision>, BackendError> {
        self.history_of(kind, name).await
    }

    async fn inventory(&self, apply_set: &str) -> Result<Vec<(Kind, String)>, BackendError> {
        self.inventory_of(apply_set).await
    }

    async fn audit(&self, since: Option<Timestamp>) -> Result<Vec<AuditEntry>, BackendError> {
        self.audit_since(since).await
    }

    async fn version(&self) -> Result<u64, BackendError> {
        self.commit_count().await
    }

    async fn keyring(&self) -> Result<Option<Keyring>, BackendError> {
        self.get_keyring().await
    }

    async fn ensure_keyring(&self, candidate: Keyring) -> Result<Keyring, BackendError> {
        self.first_keyring(candidate).await
    }

    async fn secrets(&self) -> Result<Vec<SealedSecret>, BackendError> {
        self.all_secrets().await
    }

    async fn secret(&self, name: &str) -> Result<Option<SealedSecret>, BackendError> {
        self.one_secret(name).await
    }

    async fn put_secret(
        &self,
        name: &str,
        key_id: &str,
        sealed: Vec<u8>,
        author: Author<'_>,
        now: Timestamp,
    ) -> Result<bool, BackendError> {
        self.set_secret(name, key_id, sealed, author, now).await
    }

    async fn delete_secret(&self, name: &str, author: Author<'_>, now: Timestamp) -> Result<(), BackendError> {
        self.remove_secret(name, author, now).await
    }

    async fn rotate_keyring(
        &self,
        new: Keyring,
        reseal: Reseal,
        author: Author<'_>,
        now: Timestamp,
    ) -> Result<usize, BackendError> {
        self.rotate(new, reseal, author, now).await
    }

    async fn create_execution(&self, record: ExecutionRecord, sealed: Option<Vec<u8>>) -> Result<(), BackendError> {
        self.create(record, sealed).await
    }

    async fn claim_execution(
        &self,
        request: &ClaimRequest,
        token: &str,
        now: Timestamp,
    ) -> Result<Option<Claimed>, BackendError> {
        self.claim(request, token, now).await
    }

    async fn renew_lease(
        &self,
        id: &str,
        fence: Fence<'_>,
        lease: Duration,
        now: Timestamp,
    ) -> Result<ExecutionRecord, BackendError> {
        self.renew(id, fence, lease, now).await
    }

    async fn append_events(
        &self,
        id: &str,
        fence: Option<Fence<'_>>,
        events: &[Box<RawValue>],
    ) -> Result<u64, BackendError> {
        PgStorage::append_events(self, id, fence, events).await
    }

    async fn finish_execution(
        &self,
        id: &str,
        fence: Option<Fence<'_>>,
        finish: Finish<'_>,
        now: Timestamp,
    ) -> Result<(), BackendError> {
        self.finish(id, fence, finish, now).await
    }

    async fn park_execution(
        &self,
        id: &str,
        fence: Fence<'_>,
        until: Option<Timestamp>,
        last: &[Box<RawValue>],
    ) -> Result<(), BackendError> {
        self.park(id, fence, until, last).await
    }

    async fn decide_execution(
        &self,
        id: &str,
        after: u64,
        events: &[Box<RawValue>],
        audit: &[AuditEntry],
        requeue: bool,
    ) -> Result<(), BackendError> {
        self.decide(id, after, events, audit, requeue).await
    }

    async fn execution(&self, id: &str) -> Result<Option<ExecutionRecord>, BackendError> {
        self.execution_record(id).await
    }

    async fn execution_counts(&self, query: &ExecutionQuery) -> Result<ExecutionCounts, BackendError> {
        self.count_executions(query).await
    }

    async fn executions(&self, query: &ExecutionQuery) -> Result<Vec<ExecutionRecord>, BackendError> {
        self.execution_records(query).await
    }

    async fn events(
        &self,
        id: &str,
        after: u64,
        limit: Option<usize>,
    ) -> Result<Vec<(u64, serde_json::Value)>, BackendError> {
        self.execution_events(id, after, limit).await
    }

    async fn worker_seen(&self, worker: &WorkerInfo, now: Timestamp) -> Result<(), BackendError> {
        self.seen(worker, now).await
    }

    async fn workers(&self) -> Result<Vec<WorkerInfo>, BackendError> {
        self.worker_rows().await
    }

    async fn conditions(&self) -> Result<Vec<Observed>, BackendError> {
        self.condition_rows().await
    }

    async fn put_conditions(&self, observed: Vec<Observed>) -> Result<(), BackendError> {
        self.put_condition_rows(&observed).await
    }

    async fn schedule_states(&self) -> Result<Vec<(String, ScheduleState)>, BackendError> {
        self.schedule_rows().await
    }

    async fn put_schedule_state(&self, workflow: &str, state: &ScheduleState) -> Result<(), BackendError> {
        self.put_schedule(workflow, state).await
    }

    async fn pause_schedule(&self, workflow: &str, paused: bool, initial: &ScheduleState) -> Result<(), BackendError> {
        self.pause(workflow, paused, initial).await
    }

    async fn fire_slots(&self, fires: Vec<Fire>) -> Result<Vec<bool>, BackendError> {
        self.fire(fires).await
    }

    async fn publish_event(
        &self,
        event: &serde_json::Value,
        effects: EventEffects,
        now: Timestamp,
    ) -> Result<bool, BackendError> {
        self.publish(event, effects, now).await
    }

    fn queue_changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(self.shared.queue.subscribe())
    }

    fn execution_changes(&self, id: &str) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(self.shared.executions.watch(&self.org, id))
    }
}
