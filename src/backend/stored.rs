//! The backend over a store: the [`Backend`] contract on top of a [`Storage`], with everything
//! that is decided rather than stored written once for every store — a server org's writes
//! checked against its org, secret values sealed and opened with the data key (wrapped by the
//! master key, neither ever reaching the store), a claim that waits for work, an execution
//! followed as it runs, schedules listed and paused, events taken in.

use std::time::Duration;

use jiff::Timestamp;

use super::storage::{Author, EventEffects, Finish, Fire, Keyring, Reseal, SealedSecret, Storage};
use super::{
    ApplyBatch, ApplyReceipt, AuditEntry, Backend, BackendError, Claim, ClaimRequest, ExecutionCounts, ExecutionFeed,
    ExecutionQuery, ExecutionRecord, ExecutionStatus, FeedUpdate, Identity, ResourceHead, ResourceQuery, Revision,
    RevisionAction, ScheduleInfo, ScheduleState, SecretInfo, StoredResource, WorkerInfo, Write,
};
use crate::model::{AnyResource, Kind};
use crate::secrets::{DataKey, KeySource, MasterKey, SecretValue};

/// A store, acting as `actor`.
#[derive(Debug, Clone)]
pub struct StoreBackend<S> {
    storage: S,
    actor: String,
    /// Where the caller's request came from, for the audit log (the server sets it).
    address: Option<String>,
    /// Where the master key that wraps the secrets' data key is.
    key: KeySource,
    /// The organization the store belongs to (a server's org store): a write naming another is
    /// refused.
    org: Option<String>,
}

impl<S: Storage> StoreBackend<S> {
    /// A backend over `storage`, recording `actor` as the author of every change, with secrets
    /// sealed under a data key that the master key at `key` wraps.
    pub fn over(storage: S, actor: impl Into<String>, key: KeySource) -> Self {
        Self { storage, actor: actor.into(), address: None, key, org: None }
    }

    /// The store underneath.
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// The same backend over another handle of its store.
    #[must_use]
    pub fn with_storage(self, storage: S) -> Self {
        Self { storage, ..self }
    }

    /// Where the master key is.
    #[must_use]
    pub fn with_key(self, key: KeySource) -> Self {
        Self { key, ..self }
    }

    /// The network address the caller's changes come from, for the audit log.
    #[must_use]
    pub fn from_address(self, address: Option<String>) -> Self {
        Self { address, ..self }
    }

    /// The organization the store belongs to: writes whose manifest names another org, in
    /// `metadata.org` or in a reference, are refused, and `whoami` reports it.
    #[must_use]
    pub fn in_org(self, org: impl Into<String>) -> Self {
        Self { org: Some(org.into()), ..self }
    }

    fn author(&self) -> Author<'_> {
        Author { actor: &self.actor, address: self.address.as_deref() }
    }

    /// Refuses a batch that would store a resource of another organization than this store's,
    /// or one that names an organization but cannot be read to tell which.
    fn check_orgs(&self, batch: &ApplyBatch) -> Result<(), BackendError> {
        let Some(org) = self.org.as_deref() else { return Ok(()) };
        for item in &batch.items {
            let (Write::Create { manifest } | Write::Update { manifest, .. }) = &item.write else { continue };
            // Reading the resource costs more than looking for the key it would need.
            if !has_key_org(manifest) {
                continue;
            }
            let address = super::address(item.kind, &item.name);
            let resource = AnyResource::from_value(item.kind, serde_json::Value::clone(manifest)).map_err(|error| {
                BackendError::PermissionDenied(format!(
                    "{address} names an org but cannot be read to check it: {error}"
                ))
            })?;
            if let Some(named) = resource.named_orgs().into_iter().find(|named| named.org != org) {
                let what = match &named.reference {
                    None => format!("{address} is declared in org {}", named.org),
                    Some(reference) => format!("{address} refers to {} in org {}", reference.name, named.org),
                };
                return Err(BackendError::PermissionDenied(format!("{what}, but this token acts in org {org}")));
            }
        }
        Ok(())
    }

    /// The data key in force, unwrapped with the master key; with `create`, made (with the
    /// master key, if need be) when the store has none yet. `None` when there is none and none
    /// may be made.
    async fn data_key(&self, create: bool) -> Result<Option<(Keyring, DataKey)>, BackendError> {
        let origin = self.key.origin();
        if let Some(keyring) = self.storage.keyring().await? {
            // Secrets exist: the key must exist too; a missing one is never silently replaced.
            let master = self.key.load(false)?.ok_or_else(|| self.no_key())?;
            let data = unwrap_data_key(&master, &keyring, &origin)?;
            return Ok(Some((keyring, data)));
        }
        if !create {
            return Ok(None);
        }
        let master = self.key.load(true)?.ok_or_else(|| self.no_key())?;
        let (candidate, candidate_key) = new_keyring(&master)?;
        let keyring = self.storage.ensure_keyring(candidate.clone()).await?;
        if keyring.key_id == candidate.key_id {
            return Ok(Some((keyring, candidate_key)));
        }
        // Another writer made the first key a moment earlier: use theirs.
        let data = unwrap_data_key(&master, &keyring, &origin)?;
        Ok(Some((keyring, data)))
    }

    fn no_key(&self) -> BackendError {
        crate::secrets::KeyError::Missing { expected: self.key.origin() }.into()
    }

    /// Every scheduled workflow's scheduler state.
    ///
    /// # Errors
    /// The store cannot be read.
    pub async fn schedule_states(&self) -> Result<Vec<(String, ScheduleState)>, BackendError> {
        self.storage.schedule_states().await
    }

    /// Records a scheduled workflow's state.
    ///
    /// # Errors
    /// The store cannot be written.
    pub async fn put_schedule_state(&self, workflow: &str, state: ScheduleState) -> Result<(), BackendError> {
        self.storage.put_schedule_state(workflow, &state).await
    }

    /// Fires schedule slots with their executions, each once, in one transaction (see
    /// [`Storage::fire_slots`]).
    ///
    /// # Errors
    /// The store cannot be written.
    pub async fn fire_slots(&self, fires: Vec<Fire>) -> Result<Vec<bool>, BackendError> {
        self.storage.fire_slots(fires).await
    }

    /// Keeps an event and writes what it does, once (see [`Storage::publish_event`]).
    ///
    /// # Errors
    /// The store cannot be written.
    pub(crate) async fn keep_event(
        &self,
        event: &serde_json::Value,
        effects: EventEffects,
    ) -> Result<bool, BackendError> {
        self.storage.publish_event(event, effects, Timestamp::now()).await
    }
}

impl<S: Storage> Backend for StoreBackend<S> {
    async fn list(&self, query: &ResourceQuery) -> Result<Vec<StoredResource>, BackendError> {
        self.storage.list(query).await
    }

    async fn heads(&self) -> Result<Vec<ResourceHead>, BackendError> {
        self.storage.heads().await
    }

    async fn get(&self, kind: Kind, name: &str) -> Result<Option<StoredResource>, BackendError> {
        self.storage.get(kind, name).await
    }

    async fn apply(&self, batch: ApplyBatch) -> Result<ApplyReceipt, BackendError> {
        // Nothing to write: leave the store alone entirely.
        if batch.items.is_empty() {
            return Ok(ApplyReceipt::default());
        }
        self.check_orgs(&batch)?;
        self.storage.apply(batch, self.author(), Timestamp::now()).await
    }

    async fn history(&self, kind: Kind, name: &str) -> Result<Vec<Revision>, BackendError> {
        self.storage.history(kind, name).await
    }

    async fn inventory(&self, apply_set: &str) -> Result<Vec<(Kind, String)>, BackendError> {
        self.storage.inventory(apply_set).await
    }

    async fn audit(&self, since: Option<Timestamp>) -> Result<Vec<AuditEntry>, BackendError> {
        self.storage.audit(since).await
    }

    async fn version(&self) -> Result<u64, BackendError> {
        self.storage.version().await
    }

    async fn whoami(&self) -> Result<Identity, BackendError> {
        Ok(Identity { actor: self.actor.clone(), backend: self.storage.describe(), org: self.org.clone(), role: None })
    }

    async fn secret_set(&self, name: &str, value: SecretValue) -> Result<bool, BackendError> {
        super::check_secret_name(name)?;
        let (keyring, data) = self.data_key(true).await?.ok_or_else(|| self.no_key())?;
        let sealed = data.seal(name, &value)?;
        self.storage.put_secret(name, &keyring.key_id, sealed, self.author(), Timestamp::now()).await
    }

    async fn secret_list(&self) -> Result<Vec<SecretInfo>, BackendError> {
        Ok(self
            .storage
            .secrets()
            .await?
            .into_iter()
            .map(|s| SecretInfo { name: s.name, created_at: s.created_at, updated_at: s.updated_at })
            .collect())
    }

    async fn secret_delete(&self, name: &str) -> Result<(), BackendError> {
        // A secret that is not there is reported without writing anything.
        if self.storage.secret(name).await?.is_none() {
            return Err(BackendError::NotFound { address: format!("secret/{name}") });
        }
        self.storage.delete_secret(name, self.author(), Timestamp::now()).await
    }

    async fn secret_reveal(&self, name: &str) -> Result<SecretValue, BackendError> {
        let secret = self
            .storage
            .secret(name)
            .await?
            .ok_or_else(|| BackendError::NotFound { address: format!("secret/{name}") })?;
        let (_, data) = self.data_key(false).await?.ok_or_else(|| self.no_key())?;
        Ok(data.open(name, &secret.bytes()?)?)
    }

    async fn secret_rotate_key(&self) -> Result<usize, BackendError> {
        let Some((_, old)) = self.data_key(false).await? else { return Ok(0) };
        let master = self.key.load(false)?.ok_or_else(|| self.no_key())?;
        let (keyring, new) = new_keyring(&master)?;
        let reseal: Reseal = std::sync::Arc::new(move |secret: &SealedSecret| {
            let value = old.open(&secret.name, &secret.bytes()?)?;
            Ok(new.seal(&secret.name, &value)?)
        });
        self.storage.rotate_keyring(keyring, reseal, self.author(), Timestamp::now()).await
    }

    async fn execution_create(
        &self,
        record: ExecutionRecord,
        secrets: Vec<(String, SecretValue)>,
    ) -> Result<(), BackendError> {
        // Who started it is who this backend acts as (on a server: the caller's token), never
        // what the client says.
        let record = ExecutionRecord { actor: self.actor.clone(), ..record };
        let sealed = if secrets.is_empty() {
            None
        } else {
            let (_, data) = self.data_key(true).await?.ok_or_else(|| self.no_key())?;
            Some(seal_run_secrets(&data, &record.id, &secrets)?)
        };
        self.storage.create_execution(record, sealed).await
    }

    async fn execution_append(
        &self,
        id: &str,
        fence: Option<u64>,
        events: Vec<Box<serde_json::value::RawValue>>,
    ) -> Result<u64, BackendError> {
        self.storage.append_events(id, fence.map(|epoch| (epoch, self.actor.as_str())), &events).await
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
        let fence = fence.map(|epoch| (epoch, self.actor.as_str()));
        let finish = Finish { status, output: output.as_ref(), error: error.as_ref(), last: &last };
        self.storage.finish_execution(id, fence, finish, Timestamp::now()).await
    }

    async fn conditions(&self) -> Result<Vec<super::condition::Observed>, BackendError> {
        self.storage.conditions().await
    }

    async fn conditions_record(&self, observed: Vec<super::condition::Observed>) -> Result<(), BackendError> {
        // Merged here, below the trait, so every store keeps transition times the same way.
        let before = self.storage.conditions().await?;
        let merged = observed
            .into_iter()
            .map(|new| {
                let old = before.iter().find(|old| old.address == new.address);
                super::condition::merged(old, new)
            })
            .collect();
        self.storage.put_conditions(merged).await
    }

    async fn execution_park(
        &self,
        id: &str,
        epoch: u64,
        until: Option<Timestamp>,
        mut last: Vec<Box<serde_json::value::RawValue>>,
    ) -> Result<(), BackendError> {
        let parked = serde_json::json!({ "until": until });
        last.push(super::approval::tagged(super::approval::PARKED_EVENT, Timestamp::now(), &parked)?);
        self.storage.park_execution(id, (epoch, self.actor.as_str()), until, &last).await
    }

    async fn execution_decide(
        &self,
        id: &str,
        after: u64,
        decisions: Vec<super::approval::Decision>,
        requeue: bool,
    ) -> Result<(), BackendError> {
        // Who decided is who this backend acts as (on a server: the caller's token).
        let now = Timestamp::now();
        let mut events = Vec::with_capacity(decisions.len());
        let mut audit = Vec::with_capacity(decisions.len());
        for decision in &decisions {
            let recorded = decision.recorded(&self.actor, now);
            events.push(super::approval::tagged(super::approval::DECIDED, now, &recorded)?);
            audit.push(AuditEntry {
                at: now,
                action: if decision.approved { RevisionAction::Approved } else { RevisionAction::Rejected },
                target: format!("execution/{id}"),
                actor: self.actor.clone(),
                apply_set: None,
                address: self.address.clone(),
                detail: Some(format!("{} (call {})", decision.tool, decision.call_id)),
            });
        }
        self.storage.decide_execution(id, after, &events, &audit, requeue).await
    }

    async fn execution_claim(&self, request: ClaimRequest) -> Result<Option<Claim>, BackendError> {
        let deadline = tokio::time::Instant::now() + request.wait;
        let mut changes = self.storage.queue_changes();
        loop {
            if let Some((record, sealed)) =
                self.storage.claim_execution(&request, &self.actor, Timestamp::now()).await?
            {
                let secrets = match sealed {
                    Some(sealed) => {
                        let (_, data) = self.data_key(false).await?.ok_or_else(|| self.no_key())?;
                        open_run_secrets(&data, &record.id, &sealed)?
                    }
                    None => Vec::new(),
                };
                return Ok(Some(Claim { record, secrets }));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            wait_for_change(changes.as_mut(), deadline).await;
        }
    }

    async fn execution_renew(&self, id: &str, epoch: u64, lease: Duration) -> Result<ExecutionRecord, BackendError> {
        self.storage.renew_lease(id, (epoch, &self.actor), lease, Timestamp::now()).await
    }

    async fn execution_follow(&self, id: &str, after: u64) -> Result<ExecutionFeed, BackendError> {
        if self.storage.execution(id).await?.is_none() {
            return Err(BackendError::NotFound { address: format!("execution/{id}") });
        }
        let changes = self.storage.execution_changes(id);
        let follow =
            Follow { storage: self.storage.clone(), id: id.to_owned(), after, last: None, changes, done: false };
        Ok(Box::pin(futures_util::stream::unfold(follow, |mut follow| async move {
            follow.next().await.map(|update| (update, follow))
        })))
    }

    async fn worker_heartbeat(&self, worker: WorkerInfo) -> Result<(), BackendError> {
        self.storage.worker_seen(&worker, Timestamp::now()).await
    }

    async fn worker_list(&self) -> Result<Vec<WorkerInfo>, BackendError> {
        self.storage.workers().await
    }

    async fn schedule_list(&self) -> Result<Vec<ScheduleInfo>, BackendError> {
        let workflows = super::schedule::scheduled(self).await?;
        let states: std::collections::HashMap<String, ScheduleState> =
            self.schedule_states().await?.into_iter().collect();
        let now = Timestamp::now();
        let mut list = Vec::with_capacity(workflows.len());
        for workflow in &workflows {
            let state = states.get(&workflow.name);
            let last_execution = state.and_then(|s| s.last_execution.clone());
            let last_status = match &last_execution {
                Some(id) => self.storage.execution(id).await?.map(|r| r.status),
                None => None,
            };
            let paused = state.is_some_and(|s| s.paused);
            list.push(ScheduleInfo {
                workflow: workflow.name.clone(),
                spec: workflow.text.clone(),
                paused,
                next: if paused { None } else { super::schedule::next_fire(workflow, state, now) },
                last_execution,
                last_status,
            });
        }
        Ok(list)
    }

    async fn schedule_pause(&self, workflow: &str, paused: bool) -> Result<(), BackendError> {
        let scheduled = super::schedule::scheduled(self).await?;
        let Some(found) = scheduled.iter().find(|w| w.name == workflow) else {
            return Err(BackendError::NotFound { address: format!("schedule/{workflow}") });
        };
        let initial = ScheduleState { paused, ..ScheduleState::new(found.spec(), Timestamp::now()) };
        self.storage.pause_schedule(workflow, paused, &initial).await
    }

    async fn event_publish(&self, event: serde_json::Value) -> Result<super::EventReceipt, BackendError> {
        super::events::publish(self, event).await
    }

    async fn execution_get(&self, id: &str) -> Result<Option<ExecutionRecord>, BackendError> {
        self.storage.execution(id).await
    }

    async fn execution_list(&self, query: &ExecutionQuery) -> Result<Vec<ExecutionRecord>, BackendError> {
        self.storage.executions(query).await
    }

    async fn execution_counts(&self, query: &ExecutionQuery) -> Result<ExecutionCounts, BackendError> {
        self.storage.execution_counts(query).await
    }

    async fn execution_events(
        &self,
        id: &str,
        after: u64,
        limit: Option<usize>,
    ) -> Result<Vec<(u64, serde_json::Value)>, BackendError> {
        self.storage.events(id, after, limit).await
    }
}

/// Whether any object in `value` has a key `org` (a reference naming an organization would).
fn has_key_org(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Object(fields) => fields.iter().any(|(key, value)| key == "org" || has_key_org(value)),
        serde_json::Value::Array(items) => items.iter().any(has_key_org),
        _ => false,
    }
}

/// A fresh data key, and its keyring entry wrapped by `master`.
fn new_keyring(master: &MasterKey) -> Result<(Keyring, DataKey), BackendError> {
    let data = DataKey::generate()?;
    let keyring = Keyring {
        key_id: uuid::Uuid::new_v4().to_string(),
        wrapped: hex::encode(master.wrap(&data)?),
        master_fingerprint: master.fingerprint(),
        created_at: Timestamp::now(),
    };
    Ok((keyring, data))
}

fn unwrap_data_key(master: &MasterKey, keyring: &Keyring, origin: &str) -> Result<DataKey, BackendError> {
    let wrapped =
        hex::decode(&keyring.wrapped).map_err(|_| BackendError::Key("the stored data key is not hex".into()))?;
    Ok(master.unwrap_key(&wrapped, origin, &keyring.master_fingerprint)?)
}

/// How often a follower or a waiting claim looks again when the store cannot say it changed
/// (a store file shared with other processes), and the longest it trusts the signal alone.
const LOOK_AGAIN: Duration = Duration::from_millis(100);
const SIGNAL_SAFETY: Duration = Duration::from_secs(1);

/// Waits until the store says it changed (or, without a signal, a short while), but not past
/// `deadline`.
async fn wait_for_change(changes: Option<&mut tokio::sync::watch::Receiver<u64>>, deadline: tokio::time::Instant) {
    let until = deadline.min(tokio::time::Instant::now() + if changes.is_some() { SIGNAL_SAFETY } else { LOOK_AGAIN });
    match changes {
        Some(changes) => {
            let _ = tokio::time::timeout_at(until, changes.changed()).await;
        }
        None => tokio::time::sleep_until(until).await,
    }
}

/// One followed execution: what was sent so far.
struct Follow<S> {
    storage: S,
    id: String,
    after: u64,
    last: Option<ExecutionRecord>,
    changes: Option<tokio::sync::watch::Receiver<u64>>,
    done: bool,
}

impl<S: Storage> Follow<S> {
    /// The next update: new events or a changed record; `None` after the one that said it
    /// was over.
    async fn next(&mut self) -> Option<Result<FeedUpdate, BackendError>> {
        while !self.done {
            // The record first: when it is final, the events read after it are all there are.
            let record = match self.storage.execution(&self.id).await {
                Ok(Some(record)) => record,
                Ok(None) => {
                    self.done = true;
                    return Some(Err(BackendError::NotFound { address: format!("execution/{}", self.id) }));
                }
                Err(error) => {
                    self.done = true;
                    return Some(Err(error));
                }
            };
            let events = match self.storage.events(&self.id, self.after, None).await {
                Ok(events) => events,
                Err(error) => {
                    self.done = true;
                    return Some(Err(error));
                }
            };
            self.done = record.status.is_final();
            if self.done || !events.is_empty() || self.last.as_ref() != Some(&record) {
                self.after = events.last().map_or(self.after, |(sequence, _)| *sequence);
                self.last = Some(record.clone());
                return Some(Ok(FeedUpdate { events, record }));
            }
            wait_for_change(self.changes.as_mut(), tokio::time::Instant::now() + SIGNAL_SAFETY).await;
        }
        None
    }
}

/// Seals the secret values given for one run, each bound to the execution and its name.
fn seal_run_secrets(data: &DataKey, id: &str, secrets: &[(String, SecretValue)]) -> Result<Vec<u8>, BackendError> {
    let mut sealed = serde_json::Map::new();
    for (name, value) in secrets {
        let bytes = data.seal(&run_secret_label(id, name), value)?;
        sealed.insert(name.clone(), serde_json::Value::String(hex::encode(bytes)));
    }
    serde_json::to_vec(&sealed).map_err(|e| BackendError::Storage(format!("cannot encode run secrets: {e}")))
}

/// Opens what [`seal_run_secrets`] sealed.
fn open_run_secrets(data: &DataKey, id: &str, sealed: &[u8]) -> Result<Vec<(String, SecretValue)>, BackendError> {
    let damaged = || BackendError::Storage(format!("the run secrets of execution {id} are damaged"));
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(sealed).map_err(|_| damaged())?;
    map.into_iter()
        .map(|(name, value)| {
            let bytes = hex::decode(value.as_str().ok_or_else(damaged)?).map_err(|_| damaged())?;
            let value = data.open(&run_secret_label(id, &name), &bytes)?;
            Ok((name, value))
        })
        .collect()
}

fn run_secret_label(id: &str, name: &str) -> String {
    format!("execution/{id}/{name}")
}
