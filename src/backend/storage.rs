//! What a store offers the backend built on it: the primitive operations, each one atomic, that
//! the redb store (a file per org, or the local store) and the PostgreSQL store (one database
//! for every org and replica) both implement. Everything a backend decides on top of them — org
//! checks, sealing secrets, waiting for work, following a run, schedules and events — is written
//! once, in [`super::StoreBackend`], so the stores cannot drift apart in behaviour.
//!
//! A store keeps what it is given: values arrive sealed, records arrive redacted. Every method
//! is one transaction; the ones that take a fence refuse a write unless that lease holds the
//! execution (see [`Fence`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::condition::Observed;
use super::{
    ApplyBatch, ApplyReceipt, AuditEntry, BackendError, ClaimRequest, ExecutionCounts, ExecutionQuery, ExecutionRecord,
    ExecutionStatus, Lease, ResourceHead, ResourceQuery, Revision, ScheduleState, StoredResource, WorkerInfo,
};
use crate::model::Kind;

/// How an execution stands after a finish: its status, its output or error, and the events its
/// run ended with (appended in the same transaction).
#[derive(Debug, Clone, Copy)]
pub struct Finish<'a> {
    /// The new status.
    pub status: ExecutionStatus,
    /// Its output, once completed.
    pub output: Option<&'a serde_json::Value>,
    /// Its error, once faulted.
    pub error: Option<&'a serde_json::Value>,
    /// The run's last events.
    pub last: &'a [Box<RawValue>],
}

impl Finish<'_> {
    /// Just a status.
    pub fn status(status: ExecutionStatus) -> Self {
        Self { status, output: None, error: None, last: &[] }
    }
}

/// A write's fence: the lease epoch it is made under, and the token that claimed the lease. A
/// write under a fence is refused ([`BackendError::LeaseLost`]) unless that lease holds the
/// execution and it is not over; a lease past its expiry still holds until another claim takes
/// the execution.
pub type Fence<'a> = (u64, &'a str);

/// An execution claimed: its record under the new lease, and its sealed run secrets.
pub type Claimed = (ExecutionRecord, Option<Vec<u8>>);

/// Who made a change, for revisions and the audit log.
#[derive(Debug, Clone, Copy)]
pub struct Author<'a> {
    /// The actor.
    pub actor: &'a str,
    /// The network address, on a server.
    pub address: Option<&'a str>,
}

/// A secret as stored: its value sealed under the data key `key_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SealedSecret {
    /// The secret's name.
    pub name: String,
    /// When it was first set.
    pub created_at: Timestamp,
    /// When its value last changed.
    pub updated_at: Timestamp,
    /// The data key it is sealed under.
    pub key_id: String,
    /// Nonce and ciphertext, hex.
    pub sealed: String,
}

impl SealedSecret {
    /// The sealed bytes.
    ///
    /// # Errors
    /// The stored hex is damaged.
    pub fn bytes(&self) -> Result<Vec<u8>, BackendError> {
        hex::decode(&self.sealed).map_err(|_| BackendError::Storage(format!("secret {} is not hex", self.name)))
    }
}

/// The data key, wrapped by the master key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Keyring {
    /// A random id, recorded with each value sealed under this key.
    pub key_id: String,
    /// The data key sealed under the master key, hex.
    pub wrapped: String,
    /// The master key's fingerprint, to say which key is needed when another is given.
    pub master_fingerprint: String,
    /// When this data key was made.
    pub created_at: Timestamp,
}

/// Re-seals one stored secret under a new data key: its new sealed bytes.
pub type Reseal = Arc<dyn Fn(&SealedSecret) -> Result<Vec<u8>, BackendError> + Send + Sync>;

/// One schedule slot to fire: the execution it starts and the schedule's state after it.
#[derive(Debug, Clone)]
pub struct Fire {
    /// The workflow.
    pub workflow: String,
    /// The slot.
    pub slot: Timestamp,
    /// The schedule's state once it fired.
    pub state: ScheduleState,
    /// The execution it starts.
    pub record: ExecutionRecord,
}

/// What an event sent in does, written with it in one transaction: the executions it is handed
/// to, and per `schedule.on` workflow the execution it starts (if any) and the schedule's state.
#[derive(Debug, Clone, Default)]
pub struct EventEffects {
    /// The executions whose `listen` may consume it: it is appended to each as a `signal`.
    pub deliver: Vec<String>,
    /// The workflows it starts or moves along: (workflow, its new execution, its new state).
    pub start: Vec<(String, Option<ExecutionRecord>, ScheduleState)>,
}

/// Wakes whoever waits for executions to change (workers waiting for work, followers of a
/// run) within the process: a counter bumped after every committed execution write. Several
/// stores may share one: the server's workers wait on all its orgs at once.
#[derive(Debug, Clone)]
pub struct Changes(Arc<tokio::sync::watch::Sender<u64>>);

impl Changes {
    /// A counter of its own.
    #[must_use]
    pub fn new() -> Self {
        Self(Arc::new(tokio::sync::watch::Sender::new(0)))
    }

    /// Says something changed.
    pub fn notify(&self) {
        self.0.send_modify(|count| *count = count.wrapping_add(1));
    }

    /// A receiver that sees every change after this call.
    #[must_use]
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.0.subscribe()
    }
}

impl Default for Changes {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether a claim may take the execution: pending, or running without a live lease (its
/// worker died, or it was recorded before leases), or held by the worker `take_over` names. A
/// parked execution waits for a decision: only its deadline passing makes it claimable.
pub fn claimable(record: &ExecutionRecord, now: Timestamp, take_over: Option<&str>) -> bool {
    match record.status {
        ExecutionStatus::Pending => true,
        ExecutionStatus::Waiting if super::approval::is_parked(record) => {
            record.lease.as_ref().is_some_and(|lease| lease.expires_at <= now)
        }
        ExecutionStatus::Running | ExecutionStatus::Waiting => record
            .lease
            .as_ref()
            .is_none_or(|lease| lease.expires_at <= now || take_over == Some(lease.worker.as_str())),
        _ => false,
    }
}

/// Refuses a write under `fence` (a lease epoch, and the token that claimed it) unless that
/// lease holds the execution and it is not over. A lease past its expiry still holds until
/// another claim takes the execution.
pub fn fenced(record: &ExecutionRecord, fence: Option<Fence<'_>>) -> Result<(), BackendError> {
    let Some((epoch, token)) = fence else { return Ok(()) };
    let lost = |reason: String| Err(BackendError::LeaseLost { id: record.id.clone(), reason });
    if record.status.is_final() {
        return lost(format!("it is {}", record.status.as_str()));
    }
    match &record.lease {
        Some(lease) if lease.epoch == epoch && lease.token == token => Ok(()),
        Some(lease) if lease.epoch == epoch => lost(format!("lease {epoch} was claimed with another token")),
        Some(lease) => lost(format!("lease {epoch} was taken over by {} (lease {})", lease.worker, lease.epoch)),
        None => lost("it holds no lease".to_owned()),
    }
}

/// When a lease taken at `now` for `lease` lapses.
pub fn expiry(now: Timestamp, lease: Duration) -> Timestamp {
    now.checked_add(lease).unwrap_or(now)
}

/// What a claim does to the execution it takes, in every store: one more attempt, `running`
/// under a new lease for `request.worker` whose epoch is the attempt's number; and the `claimed`
/// event its history records.
///
/// # Errors
/// The event cannot be encoded.
pub fn claim_record(
    record: &mut ExecutionRecord,
    request: &ClaimRequest,
    token: &str,
    now: Timestamp,
) -> Result<Box<RawValue>, BackendError> {
    record.attempts += 1;
    record.status = ExecutionStatus::Running;
    record.lease = Some(Lease {
        worker: request.worker.id.clone(),
        token: token.to_owned(),
        epoch: record.attempts,
        expires_at: expiry(now, request.lease),
    });
    // Who runs it from here is part of its history: `execution events` shows each claim.
    let claimed = serde_json::json!({
        "at": now,
        "event": "claimed",
        "worker": request.worker.id,
        "attempt": record.attempts,
    });
    serde_json::value::to_raw_value(&claimed)
        .map_err(|e| BackendError::Storage(format!("cannot encode the claim: {e}")))
}

/// The lease a parked execution holds: none, or until its deadline, of no worker.
pub fn parked_lease(epoch: u64, until: Option<Timestamp>) -> Option<Lease> {
    until.map(|expires_at| Lease {
        worker: super::approval::PARKED.to_owned(),
        token: String::new(),
        epoch,
        expires_at,
    })
}

/// A decision refused: the execution is not parked.
pub fn not_parked(record: &ExecutionRecord) -> BackendError {
    BackendError::LeaseLost {
        id: record.id.clone(),
        reason: format!("it is {}, not waiting for an approval", record.status.as_str()),
    }
}

/// A decision refused: the history it was made on moved on.
pub fn history_moved(id: &str, after: u64, last: u64) -> BackendError {
    BackendError::Conflict {
        moved: vec![super::Moved { address: format!("execution/{id}"), expected: Some(after), found: Some(last) }],
    }
}

/// An execution that does not exist.
pub fn no_execution(id: &str) -> BackendError {
    BackendError::NotFound { address: format!("execution/{id}") }
}

/// The primitive operations of a store, one org's data: see the module documentation.
pub trait Storage: Clone + Send + Sync + 'static {
    /// Where the data is, for people: `local store at ~/.stigmer/local.db`.
    fn describe(&self) -> String;

    /// Resources matching the query, in dependency order of kind, then by name.
    fn list(&self, query: &ResourceQuery) -> impl Future<Output = Result<Vec<StoredResource>, BackendError>> + Send;

    /// Every resource's head, in dependency order of kind, then by name; no manifest is read.
    fn heads(&self) -> impl Future<Output = Result<Vec<ResourceHead>, BackendError>> + Send;

    /// Resources matching the query whose manifest has a value (not `null`) at `path`, object
    /// keys from its root; the others are left out without being read whole.
    fn list_setting(
        &self,
        query: &ResourceQuery,
        path: &'static [&'static str],
    ) -> impl Future<Output = Result<Vec<StoredResource>, BackendError>> + Send;

    /// One resource, if it exists.
    fn get(&self, kind: Kind, name: &str) -> impl Future<Output = Result<Option<StoredResource>, BackendError>> + Send;

    /// Applies a batch in one transaction: every precondition holds and every write is committed
    /// (with its revision, audit entry and inventory change), or nothing is. A batch whose
    /// preconditions fail is [`BackendError::Conflict`] naming every resource that moved.
    fn apply(
        &self,
        batch: ApplyBatch,
        author: Author<'_>,
        now: Timestamp,
    ) -> impl Future<Output = Result<ApplyReceipt, BackendError>> + Send;

    /// Every revision of a resource, oldest first (also after it was deleted).
    fn history(&self, kind: Kind, name: &str) -> impl Future<Output = Result<Vec<Revision>, BackendError>> + Send;

    /// The resources an apply set owns, in dependency order of kind, then by name.
    fn inventory(&self, apply_set: &str) -> impl Future<Output = Result<Vec<(Kind, String)>, BackendError>> + Send;

    /// Audit entries, oldest first, only those at or after `since` when given.
    fn audit(&self, since: Option<Timestamp>) -> impl Future<Output = Result<Vec<AuditEntry>, BackendError>> + Send;

    /// How many batches (and secret changes) have been committed, ever.
    fn version(&self) -> impl Future<Output = Result<u64, BackendError>> + Send;

    /// The wrapped data key, if any secret was ever stored.
    fn keyring(&self) -> impl Future<Output = Result<Option<Keyring>, BackendError>> + Send;

    /// Stores `candidate` as the data key unless one exists; returns the one in force.
    fn ensure_keyring(&self, candidate: Keyring) -> impl Future<Output = Result<Keyring, BackendError>> + Send;

    /// Every secret, by name.
    fn secrets(&self) -> impl Future<Output = Result<Vec<SealedSecret>, BackendError>> + Send;

    /// One secret.
    fn secret(&self, name: &str) -> impl Future<Output = Result<Option<SealedSecret>, BackendError>> + Send;

    /// Sets a secret's sealed value, sealed under the data key `key_id`, which must still be the
    /// one in force (a rotation in between is a conflict). Returns whether the secret is new.
    fn put_secret(
        &self,
        name: &str,
        key_id: &str,
        sealed: Vec<u8>,
        author: Author<'_>,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, BackendError>> + Send;

    /// Deletes a secret ([`BackendError::NotFound`] when there is none).
    fn delete_secret(
        &self,
        name: &str,
        author: Author<'_>,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Replaces the data key with `new` and re-seals every secret with `reseal`, in one
    /// transaction. Returns how many secrets were re-sealed.
    fn rotate_keyring(
        &self,
        new: Keyring,
        reseal: Reseal,
        author: Author<'_>,
        now: Timestamp,
    ) -> impl Future<Output = Result<usize, BackendError>> + Send;

    /// Records a new execution (its id must be new), queued when pending, with the sealed
    /// secret values given for this run.
    fn create_execution(
        &self,
        record: ExecutionRecord,
        sealed_secrets: Option<Vec<u8>>,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Claims, as `token`, the execution `request.id` names or the next one for
    /// `request.worker`: one whose lease lapsed first, then the oldest pending one in the queues
    /// it serves. It becomes `running` under a lease whose epoch is one more than the last, and a
    /// `claimed` event is appended. `None` when there is nothing to claim; never waits.
    fn claim_execution(
        &self,
        request: &ClaimRequest,
        token: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<Option<Claimed>, BackendError>> + Send;

    /// Renews the lease `fence` holds for another `lease`; returns the record.
    fn renew_lease(
        &self,
        id: &str,
        fence: Fence<'_>,
        lease: Duration,
        now: Timestamp,
    ) -> impl Future<Output = Result<ExecutionRecord, BackendError>> + Send;

    /// Appends events to an execution's log; returns the last sequence number.
    fn append_events(
        &self,
        id: &str,
        fence: Option<Fence<'_>>,
        events: &[Box<RawValue>],
    ) -> impl Future<Output = Result<u64, BackendError>> + Send;

    /// Sets an execution's status with its output or error, after appending `finish.last`; a
    /// final status releases its lease, takes it out of its queue and deletes its run secrets.
    fn finish_execution(
        &self,
        id: &str,
        fence: Option<Fence<'_>>,
        finish: Finish<'_>,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Parks a running execution under `fence`, after appending `last`: `waiting`, its lease
    /// released — or, with `until`, replaced by a lease of no worker ([`super::approval::PARKED`])
    /// that lapses then, so a claim wakes it at that time.
    fn park_execution(
        &self,
        id: &str,
        fence: Fence<'_>,
        until: Option<Timestamp>,
        last: &[Box<RawValue>],
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Appends decisions to a parked execution whose last event is still `after`, with their
    /// audit entries, and with `requeue` makes it pending in its queue again. Refused with
    /// [`BackendError::Conflict`] when its history moved on, and [`BackendError::LeaseLost`]
    /// when it is not parked.
    fn decide_execution(
        &self,
        id: &str,
        after: u64,
        events: &[Box<RawValue>],
        audit: &[AuditEntry],
        requeue: bool,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// One execution.
    fn execution(&self, id: &str) -> impl Future<Output = Result<Option<ExecutionRecord>, BackendError>> + Send;

    /// How many executions matching the query stand at each status.
    fn execution_counts(
        &self,
        query: &ExecutionQuery,
    ) -> impl Future<Output = Result<ExecutionCounts, BackendError>> + Send;

    /// Executions matching the query, oldest first, without their definitions.
    fn executions(
        &self,
        query: &ExecutionQuery,
    ) -> impl Future<Output = Result<Vec<ExecutionRecord>, BackendError>> + Send;

    /// An execution's events after sequence number `after` (0: from the first), with their
    /// numbers; at most `limit` of them when given.
    fn events(
        &self,
        id: &str,
        after: u64,
        limit: Option<usize>,
    ) -> impl Future<Output = Result<Vec<(u64, serde_json::Value)>, BackendError>> + Send;

    /// Records that a worker is alive, as it describes itself, seen at `now`.
    fn worker_seen(&self, worker: &WorkerInfo, now: Timestamp)
    -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Every worker that claimed work here, by id.
    fn workers(&self) -> impl Future<Output = Result<Vec<WorkerInfo>, BackendError>> + Send;

    /// Every resource's observed conditions.
    fn conditions(&self) -> impl Future<Output = Result<Vec<Observed>, BackendError>> + Send;

    /// Records resources' observed conditions, replacing what each had.
    fn put_conditions(&self, observed: Vec<Observed>) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Every scheduled workflow's state, by workflow name.
    fn schedule_states(&self) -> impl Future<Output = Result<Vec<(String, ScheduleState)>, BackendError>> + Send;

    /// Records a scheduled workflow's state, as the scheduler computed it. The stored `paused`
    /// flag is kept: only [`Storage::pause_schedule`] changes it, so a pause made while a tick
    /// was computing is not lost.
    fn put_schedule_state(
        &self,
        workflow: &str,
        state: &ScheduleState,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Pauses or resumes a schedule: only its `paused` flag changes, in one transaction;
    /// `initial`, so flagged, is written when it has no state yet.
    fn pause_schedule(
        &self,
        workflow: &str,
        paused: bool,
        initial: &ScheduleState,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Fires schedule slots, each with its execution and its schedule's new state, in one
    /// transaction: a slot that already fired, or whose schedule is paused by then, is left
    /// out, with nothing of it written (the slot's record is what makes a slot fire once).
    /// Returns whether each fired.
    fn fire_slots(&self, fires: Vec<Fire>) -> impl Future<Output = Result<Vec<bool>, BackendError>> + Send;

    /// Keeps an event sent in and writes its effects, in one transaction; `false`, with nothing
    /// written, when an event of the same `source` and `id` was kept before.
    fn publish_event(
        &self,
        event: &serde_json::Value,
        effects: EventEffects,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, BackendError>> + Send;

    /// What says the queue may have work (an execution queued, or released), for waiting claims
    /// to look again at once; `None` when the store cannot tell (a file other processes write),
    /// so they poll.
    fn queue_changes(&self) -> Option<tokio::sync::watch::Receiver<u64>>;

    /// What says execution `id` changed (its record or its events), for its followers; `None`
    /// when the store cannot tell, so they poll.
    fn execution_changes(&self, id: &str) -> Option<tokio::sync::watch::Receiver<u64>>;
}
