//! The backend contract: one async trait that the local store and the remote server both
//! implement, so every command behaves the same on either. Transport concerns stay out of it.
//!
//! The contract is the floor the rest stands on: the stores implement [`Storage`], the
//! primitives [`StoreBackend`] builds the whole contract from; the wire (`proto`) and the
//! remote client speak its types.

pub mod approval;
pub mod batch;
pub mod condition;
mod error;
pub mod events;
pub mod execution;
pub mod probe;
pub mod schedule;
pub mod storage;
mod stored;
pub mod types;

use std::future::Future;

use jiff::Timestamp;

pub use error::BackendError;
pub use events::EventReceipt;
pub use execution::{
    Claim, ClaimRequest, DEFAULT_LEASE, DEFAULT_QUEUE, Definition, ExecutionCounts, ExecutionFeed, ExecutionPage,
    ExecutionQuery, ExecutionRecord, ExecutionStatus, FeedUpdate, Lease, WorkerInfo,
};
pub use schedule::{ScheduleInfo, ScheduleState};
pub use storage::Storage;
pub use stored::StoreBackend;
pub use types::{
    ApplyBatch, ApplyReceipt, AuditEntry, BatchItem, Identity, Moved, ResourceHead, ResourceQuery, Revision,
    RevisionAction, Role, SecretInfo, StoredResource, Write, Written, address, check_secret_name,
};

use crate::model::Kind;
use crate::secrets::SecretValue;

/// What stigmer needs from a place that holds resources.
pub trait Backend: Send + Sync {
    /// Resources matching the query, in dependency order of kind, then by name.
    fn list(&self, query: &ResourceQuery) -> impl Future<Output = Result<Vec<StoredResource>, BackendError>> + Send;

    /// Every resource's head (no manifest), in the order of [`Backend::list`]: what a plan
    /// compares, read without decoding a manifest.
    fn heads(&self) -> impl Future<Output = Result<Vec<ResourceHead>, BackendError>> + Send;

    /// One resource, if it exists.
    fn get(&self, kind: Kind, name: &str) -> impl Future<Output = Result<Option<StoredResource>, BackendError>> + Send;

    /// Applies a batch atomically: every precondition holds and every write is committed, or
    /// nothing is. An empty batch commits nothing.
    fn apply(&self, batch: ApplyBatch) -> impl Future<Output = Result<ApplyReceipt, BackendError>> + Send;

    /// Every revision of a resource, oldest first (also after it was deleted).
    fn history(&self, kind: Kind, name: &str) -> impl Future<Output = Result<Vec<Revision>, BackendError>> + Send;

    /// The resources an apply set owns, as (kind, name).
    fn inventory(&self, apply_set: &str) -> impl Future<Output = Result<Vec<(Kind, String)>, BackendError>> + Send;

    /// Audit entries, oldest first, optionally only those at or after `since`.
    fn audit(&self, since: Option<Timestamp>) -> impl Future<Output = Result<Vec<AuditEntry>, BackendError>> + Send;

    /// A number that grows with every committed batch, so a caller that remembers what it listed
    /// at one version knows it is still current while the version stays the same.
    fn version(&self) -> impl Future<Output = Result<u64, BackendError>> + Send;

    /// Who the backend takes the caller to be, and where the data is.
    fn whoami(&self) -> impl Future<Output = Result<Identity, BackendError>> + Send;

    /// Stores a secret's value, encrypted; returns whether the secret is new.
    fn secret_set(&self, name: &str, value: SecretValue) -> impl Future<Output = Result<bool, BackendError>> + Send;

    /// Every secret's name and times, by name; never a value.
    fn secret_list(&self) -> impl Future<Output = Result<Vec<SecretInfo>, BackendError>> + Send;

    /// Deletes a secret.
    fn secret_delete(&self, name: &str) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// A secret's value: for `secret get --reveal` and for runners, nothing else.
    fn secret_reveal(&self, name: &str) -> impl Future<Output = Result<SecretValue, BackendError>> + Send;

    /// Re-encrypts every secret under a new data key, atomically; returns how many.
    fn secret_rotate_key(&self) -> impl Future<Output = Result<usize, BackendError>> + Send;

    /// Records a new execution (the id must be new): queued for a worker when it is pending.
    /// `secrets` are values for this run only, sealed until the worker that claims it opens them.
    fn execution_create(
        &self,
        record: ExecutionRecord,
        secrets: Vec<(String, SecretValue)>,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Appends events to an execution's log; returns the last sequence number. A worker passes
    /// its lease epoch as `fence`, and is refused once the lease is no longer the execution's.
    fn execution_append(
        &self,
        id: &str,
        fence: Option<u64>,
        events: Vec<Box<serde_json::value::RawValue>>,
    ) -> impl Future<Output = Result<u64, BackendError>> + Send;

    /// Sets an execution's status, with its output or error (fenced like `execution_append`),
    /// after appending `last` — the events a run ended with, so they and its end are one write.
    /// A final status releases its lease.
    fn execution_finish(
        &self,
        id: &str,
        fence: Option<u64>,
        status: ExecutionStatus,
        output: Option<serde_json::Value>,
        error: Option<serde_json::Value>,
        last: Vec<Box<serde_json::value::RawValue>>,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Parks a running execution (under lease `epoch`) after appending `last`: it waits for a
    /// person's decision, held by no worker, until [`Backend::execution_decide`] requeues it —
    /// or, with `until`, until that time passes and a worker claims it again.
    fn execution_park(
        &self,
        id: &str,
        epoch: u64,
        until: Option<Timestamp>,
        last: Vec<Box<serde_json::value::RawValue>>,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Every resource's observed conditions (see [`condition`]).
    fn conditions(&self) -> impl Future<Output = Result<Vec<condition::Observed>, BackendError>> + Send;

    /// Records resources' observed conditions: a condition whose status did not change keeps
    /// its last transition time; types not observed again are kept.
    fn conditions_record(
        &self,
        observed: Vec<condition::Observed>,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Records decisions on the calls a parked execution waits on, made by whoever this
    /// backend acts as, with an audit entry each; with `requeue`, queues it again. Refused
    /// ([`BackendError::Conflict`]) when its history moved past `after`, the last event the
    /// decider read.
    fn execution_decide(
        &self,
        id: &str,
        after: u64,
        decisions: Vec<approval::Decision>,
        requeue: bool,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Claims the next execution for a worker, waiting up to `request.wait` for one; `None`
    /// when none came.
    fn execution_claim(
        &self,
        request: ClaimRequest,
    ) -> impl Future<Output = Result<Option<Claim>, BackendError>> + Send;

    /// Renews the worker's lease (epoch `epoch`) on an execution for another `lease`; returns
    /// its record. [`BackendError::LeaseLost`] once the lease is not the execution's any more.
    fn execution_renew(
        &self,
        id: &str,
        epoch: u64,
        lease: std::time::Duration,
    ) -> impl Future<Output = Result<ExecutionRecord, BackendError>> + Send;

    /// Follows an execution from sequence number `after`: an update whenever events are
    /// appended or its record changes, ending once it is over and its last events were sent.
    fn execution_follow(
        &self,
        id: &str,
        after: u64,
    ) -> impl Future<Output = Result<ExecutionFeed, BackendError>> + Send;

    /// Records that a worker is alive.
    fn worker_heartbeat(&self, worker: WorkerInfo) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// The workers that claimed work here, by id.
    fn worker_list(&self) -> impl Future<Output = Result<Vec<WorkerInfo>, BackendError>> + Send;

    /// Every scheduled Workflow, by name, with its next fire time and last run.
    fn schedule_list(&self) -> impl Future<Output = Result<Vec<ScheduleInfo>, BackendError>> + Send;

    /// Pauses (or resumes) a workflow's schedule; the pause is stored, so it survives restarts.
    fn schedule_pause(&self, workflow: &str, paused: bool) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Takes in a CloudEvent: durable, de-duplicated by (`source`, `id`), handed to every
    /// execution whose `listen` may consume it and starting every workflow whose `schedule.on`
    /// consumes it, all before this returns.
    fn event_publish(
        &self,
        event: serde_json::Value,
    ) -> impl Future<Output = Result<EventReceipt, BackendError>> + Send;

    /// One execution, if it exists.
    fn execution_get(&self, id: &str) -> impl Future<Output = Result<Option<ExecutionRecord>, BackendError>> + Send;

    /// Executions matching the query, oldest first — or, when it asks for a page, that page of
    /// them newest first — without their definitions unless it asks for them (most lists never
    /// need what each one runs; [`Backend::execution_get`] has it).
    fn execution_list(
        &self,
        query: &ExecutionQuery,
    ) -> impl Future<Output = Result<Vec<ExecutionRecord>, BackendError>> + Send;

    /// How many executions matching the query stand at each status (without reading them
    /// whole, as a list would; a page the query asks for is not counted apart).
    fn execution_counts(
        &self,
        query: &ExecutionQuery,
    ) -> impl Future<Output = Result<ExecutionCounts, BackendError>> + Send;

    /// An execution's events after sequence number `after` (0: from the first), with their
    /// numbers; at most `limit` of them when given.
    fn execution_events(
        &self,
        id: &str,
        after: u64,
        limit: Option<usize>,
    ) -> impl Future<Output = Result<Vec<(u64, serde_json::Value)>, BackendError>> + Send;
}
