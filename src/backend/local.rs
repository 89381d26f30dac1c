//! The local backend: the redb store in `$STIGMER_HOME/local.db`, opened for the span of each
//! operation so several stigmer processes can share it. Operations that only read open it
//! read-only: they change no byte of the file, and do not create it when it does not exist.

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

use super::{
    ApplyBatch, ApplyReceipt, AuditEntry, Backend, BackendError, Claim, ClaimRequest, ExecutionFeed, ExecutionQuery,
    ExecutionRecord, ExecutionStatus, FeedUpdate, Identity, ResourceQuery, Revision, ScheduleInfo, ScheduleState,
    SecretInfo, StoredResource, WorkerInfo, Write,
};
use crate::model::{AnyResource, Kind};
use crate::secrets::{DataKey, KeySource, MasterKey, SecretValue};
use crate::store::{Author, Finish, Keyring, OpenOptions, Store, WaitNotice, sealed_bytes};

/// Whether any object in `value` has a key `org` (a reference naming an organization would).
fn has_key_org(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Object(fields) => fields.iter().any(|(key, value)| key == "org" || has_key_org(value)),
        serde_json::Value::Array(items) => items.iter().any(has_key_org),
        _ => false,
    }
}

/// How long an operation waits for another process to let go of the store, unless told otherwise.
const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// The store on this machine, acting as `actor`.
#[derive(Debug, Clone)]
pub struct LocalBackend {
    path: PathBuf,
    actor: String,
    wait: Duration,
    /// Told when an operation has to wait for another process.
    notice: Option<WaitNotice>,
    /// A store kept open by the caller (the server), instead of opening the file per operation.
    open: Option<Arc<Store>>,
    /// Where the caller's request came from, for the audit log (the server sets it).
    address: Option<String>,
    /// Where the master key that wraps the secrets' data key is.
    key: KeySource,
    /// The organization the store belongs to (a server's org store): a write naming another is
    /// refused.
    org: Option<String>,
}

impl LocalBackend {
    /// A backend over the store at `path` (created on first use), recording `actor` as the author
    /// of every change.
    pub fn new(path: PathBuf, actor: impl Into<String>) -> Self {
        let key = KeySource::File(path.parent().unwrap_or(Path::new(".")).join("master.key"));
        Self { path, actor: actor.into(), wait: DEFAULT_WAIT, notice: None, open: None, address: None, key, org: None }
    }

    /// A backend over a store that stays open for the life of `store` — the server's way, which
    /// serves many requests from one process — recording `actor` for the changes, made from
    /// `address`.
    pub fn shared(store: Arc<Store>, actor: impl Into<String>, address: Option<String>) -> Self {
        let path = store.path().to_path_buf();
        let key = KeySource::File(path.parent().unwrap_or(Path::new(".")).join("master.key"));
        Self { path, actor: actor.into(), wait: DEFAULT_WAIT, notice: None, open: Some(store), address, key, org: None }
    }

    /// Where the master key is (by default `master.key` next to the store's file).
    #[must_use]
    pub fn with_key(self, key: KeySource) -> Self {
        Self { key, ..self }
    }

    /// The organization the store belongs to: writes whose manifest names another org, in
    /// `metadata.org` or in a reference, are refused, and `whoami` reports it.
    #[must_use]
    pub fn in_org(self, org: impl Into<String>) -> Self {
        Self { org: Some(org.into()), ..self }
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
            let resource = AnyResource::from_value(item.kind, manifest.clone()).map_err(|error| {
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

    /// How long to wait for another process that holds the store (10 s by default).
    #[must_use]
    pub fn with_wait(self, wait: Duration) -> Self {
        Self { wait, ..self }
    }

    /// What to call once when an operation has waited a while for another process (see
    /// [`crate::store::NOTICE_AFTER`]), so a command can say why it is not done yet.
    #[must_use]
    pub fn on_wait(self, notice: WaitNotice) -> Self {
        Self { notice: Some(notice), ..self }
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs one operation on a blocking thread, on the shared store or on the file opened for
    /// just this operation (so other processes can use it in between).
    async fn with_store<T, F>(&self, operation: F) -> Result<T, BackendError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, BackendError> + Send + 'static,
    {
        self.run_on_store(false, operation).await
    }

    /// [`Self::with_store`] for an operation that only reads: the file is opened read-only (or
    /// stands as an empty store when it does not exist), so it is left exactly as it was.
    async fn with_reader<T, F>(&self, operation: F) -> Result<T, BackendError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, BackendError> + Send + 'static,
    {
        self.run_on_store(true, operation).await
    }

    async fn run_on_store<T, F>(&self, read_only: bool, operation: F) -> Result<T, BackendError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, BackendError> + Send + 'static,
    {
        let path = self.path.clone();
        let options = OpenOptions { wait: self.wait, holder: holder(), notice: self.notice.clone(), changes: None };
        let open = self.open.clone();
        let task = tokio::task::spawn_blocking(move || match open {
            Some(store) => operation(&store),
            None if read_only => operation(&Store::open_read_only(&path, &options)?),
            None => operation(&Store::open(&path, &options)?),
        });
        match task.await {
            Ok(result) => result,
            Err(error) if error.is_panic() => Err(BackendError::Storage(format!(
                "the store {} could not be used: {}",
                self.path.display(),
                panic_message(error.into_panic().as_ref())
            ))),
            Err(error) => Err(BackendError::Storage(format!("a store operation did not finish: {error}"))),
        }
    }
}

impl Backend for LocalBackend {
    async fn list(&self, query: &ResourceQuery) -> Result<Vec<StoredResource>, BackendError> {
        let query = query.clone();
        self.with_reader(move |store| store.list(&query)).await
    }

    async fn get(&self, kind: Kind, name: &str) -> Result<Option<StoredResource>, BackendError> {
        let name = name.to_owned();
        self.with_reader(move |store| store.get(kind, &name)).await
    }

    async fn apply(&self, batch: ApplyBatch) -> Result<ApplyReceipt, BackendError> {
        // Nothing to write: leave the file alone entirely, not even opening it.
        if batch.items.is_empty() {
            return Ok(ApplyReceipt::default());
        }
        self.check_orgs(&batch)?;
        let (actor, address) = (self.actor.clone(), self.address.clone());
        self.with_store(move |store| store.apply_from(&batch, &actor, address.as_deref(), Timestamp::now())).await
    }

    async fn history(&self, kind: Kind, name: &str) -> Result<Vec<Revision>, BackendError> {
        let name = name.to_owned();
        self.with_reader(move |store| store.history(kind, &name)).await
    }

    async fn inventory(&self, apply_set: &str) -> Result<Vec<(Kind, String)>, BackendError> {
        let apply_set = apply_set.to_owned();
        self.with_reader(move |store| store.inventory(&apply_set)).await
    }

    async fn audit(&self, since: Option<Timestamp>) -> Result<Vec<AuditEntry>, BackendError> {
        self.with_reader(move |store| store.audit(since)).await
    }

    async fn version(&self) -> Result<u64, BackendError> {
        self.with_reader(Store::commit_count).await
    }

    async fn whoami(&self) -> Result<Identity, BackendError> {
        Ok(Identity {
            actor: self.actor.clone(),
            backend: format!("local store at {}", self.path.display()),
            org: self.org.clone(),
            role: None,
        })
    }

    async fn secret_set(&self, name: &str, value: SecretValue) -> Result<bool, BackendError> {
        super::check_secret_name(name)?;
        let (name, key, actor, address) = (name.to_owned(), self.key.clone(), self.actor.clone(), self.address.clone());
        self.with_store(move |store| {
            let (keyring, data) = data_key(store, &key, true)?.ok_or_else(|| no_key(&key))?;
            let sealed = data.seal(&name, &value)?;
            let author = Author { actor: &actor, address: address.as_deref() };
            store.put_secret(&name, &keyring.key_id, &sealed, author, Timestamp::now())
        })
        .await
    }

    async fn secret_list(&self) -> Result<Vec<SecretInfo>, BackendError> {
        self.with_reader(|store| {
            Ok(store
                .secrets()?
                .into_iter()
                .map(|s| SecretInfo { name: s.name, created_at: s.created_at, updated_at: s.updated_at })
                .collect())
        })
        .await
    }

    async fn secret_delete(&self, name: &str) -> Result<(), BackendError> {
        // A secret that is not there is reported without opening the store for writing.
        let wanted = name.to_owned();
        if !self.with_reader(move |store| Ok(store.secret(&wanted)?.is_some())).await? {
            return Err(BackendError::NotFound { address: format!("secret/{name}") });
        }
        let (name, actor, address) = (name.to_owned(), self.actor.clone(), self.address.clone());
        self.with_store(move |store| {
            store.delete_secret(&name, Author { actor: &actor, address: address.as_deref() }, Timestamp::now())
        })
        .await
    }

    async fn secret_reveal(&self, name: &str) -> Result<SecretValue, BackendError> {
        let (name, key) = (name.to_owned(), self.key.clone());
        self.with_reader(move |store| {
            let secret =
                store.secret(&name)?.ok_or_else(|| BackendError::NotFound { address: format!("secret/{name}") })?;
            let (_, data) = data_key(store, &key, false)?.ok_or_else(|| no_key(&key))?;
            Ok(data.open(&name, &sealed_bytes(&secret)?)?)
        })
        .await
    }

    async fn execution_create(
        &self,
        record: ExecutionRecord,
        secrets: Vec<(String, SecretValue)>,
    ) -> Result<(), BackendError> {
        let key = self.key.clone();
        self.with_store(move |store| {
            let sealed = if secrets.is_empty() {
                None
            } else {
                let (_, data) = data_key(store, &key, true)?.ok_or_else(|| no_key(&key))?;
                Some(seal_run_secrets(&data, &record.id, &secrets)?)
            };
            store.create_execution(&record, sealed.as_deref())
        })
        .await
    }

    async fn execution_append(
        &self,
        id: &str,
        fence: Option<u64>,
        events: Vec<Box<serde_json::value::RawValue>>,
    ) -> Result<u64, BackendError> {
        let (id, actor) = (id.to_owned(), self.actor.clone());
        self.with_store(move |store| store.append_events(&id, fence.map(|epoch| (epoch, actor.as_str())), &events))
            .await
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
        let (id, actor) = (id.to_owned(), self.actor.clone());
        self.with_store(move |store| {
            let fence = fence.map(|epoch| (epoch, actor.as_str()));
            let finish = Finish { status, output: output.as_ref(), error: error.as_ref(), last: &last };
            store.finish_execution(&id, fence, finish, Timestamp::now())
        })
        .await
    }

    async fn execution_claim(&self, request: ClaimRequest) -> Result<Option<Claim>, BackendError> {
        let deadline = tokio::time::Instant::now() + request.wait;
        let mut changes = self.open.as_ref().map(|store| store.changes().subscribe());
        loop {
            let (request, token, key) = (request.clone(), self.actor.clone(), self.key.clone());
            let claimed = self
                .with_store(move |store| {
                    let Some((record, sealed)) = store.claim_execution(&request, &token, Timestamp::now())? else {
                        return Ok(None);
                    };
                    let secrets = match sealed {
                        Some(sealed) => {
                            let (_, data) = data_key(store, &key, false)?.ok_or_else(|| no_key(&key))?;
                            open_run_secrets(&data, &record.id, &sealed)?
                        }
                        None => Vec::new(),
                    };
                    Ok(Some(Claim { record, secrets }))
                })
                .await?;
            if claimed.is_some() || tokio::time::Instant::now() >= deadline {
                return Ok(claimed);
            }
            wait_for_change(changes.as_mut(), deadline).await;
        }
    }

    async fn execution_renew(&self, id: &str, epoch: u64, lease: Duration) -> Result<ExecutionRecord, BackendError> {
        let (id, actor) = (id.to_owned(), self.actor.clone());
        self.with_store(move |store| store.renew_lease(&id, (epoch, actor.as_str()), lease, Timestamp::now())).await
    }

    async fn execution_follow(&self, id: &str, after: u64) -> Result<ExecutionFeed, BackendError> {
        if self.execution_get(id).await?.is_none() {
            return Err(BackendError::NotFound { address: format!("execution/{id}") });
        }
        let changes = self.open.as_ref().map(|store| store.changes().subscribe());
        let follow = Follow { backend: self.clone(), id: id.to_owned(), after, last: None, changes, done: false };
        Ok(Box::pin(futures_util::stream::unfold(follow, |mut follow| async move {
            follow.next().await.map(|update| (update, follow))
        })))
    }

    async fn worker_heartbeat(&self, worker: WorkerInfo) -> Result<(), BackendError> {
        self.with_store(move |store| store.worker_seen(&worker, Timestamp::now())).await
    }

    async fn worker_list(&self) -> Result<Vec<WorkerInfo>, BackendError> {
        self.with_reader(Store::workers).await
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
                Some(id) => self.execution_get(id).await?.map(|r| r.status),
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

    async fn event_publish(&self, event: serde_json::Value) -> Result<super::EventReceipt, BackendError> {
        super::events::publish(self, event).await
    }

    async fn schedule_pause(&self, workflow: &str, paused: bool) -> Result<(), BackendError> {
        let scheduled = super::schedule::scheduled(self).await?;
        let Some(found) = scheduled.iter().find(|w| w.name == workflow) else {
            return Err(BackendError::NotFound { address: format!("schedule/{workflow}") });
        };
        let now = Timestamp::now();
        let mut state = self.schedule_states().await?.into_iter().find(|(name, _)| name == workflow).map_or_else(
            || ScheduleState {
                spec: found.spec(),
                anchor: now,
                last_slot: now,
                last_execution: None,
                paused,
                buffered: None,
                collected: Vec::new(),
            },
            |(_, state)| state,
        );
        state.paused = paused;
        self.put_schedule_state(workflow, state).await
    }

    async fn execution_get(&self, id: &str) -> Result<Option<ExecutionRecord>, BackendError> {
        let id = id.to_owned();
        self.with_reader(move |store| store.execution(&id)).await
    }

    async fn execution_list(&self, query: &ExecutionQuery) -> Result<Vec<ExecutionRecord>, BackendError> {
        let query = query.clone();
        self.with_reader(move |store| store.executions(&query)).await
    }

    async fn execution_events(&self, id: &str, after: u64) -> Result<Vec<(u64, serde_json::Value)>, BackendError> {
        let id = id.to_owned();
        self.with_reader(move |store| store.events(&id, after)).await
    }

    async fn secret_rotate_key(&self) -> Result<usize, BackendError> {
        let (key, actor, address) = (self.key.clone(), self.actor.clone(), self.address.clone());
        self.with_store(move |store| {
            let Some((_, old)) = data_key(store, &key, false)? else { return Ok(0) };
            let master = key.load(false)?.ok_or_else(|| no_key(&key))?;
            let (keyring, new) = new_keyring(&master)?;
            let reseal = |secret: &crate::store::SealedSecret| {
                let value = old.open(&secret.name, &sealed_bytes(secret)?)?;
                Ok(new.seal(&secret.name, &value)?)
            };
            let author = Author { actor: &actor, address: address.as_deref() };
            store.rotate_keyring(&keyring, reseal, author, Timestamp::now())
        })
        .await
    }
}

/// The data key in force, unwrapped with the master key; with `create`, made (with the master
/// key, if need be) when the store has none yet. `None` when there is none and none may be made.
fn data_key(store: &Store, key: &KeySource, create: bool) -> Result<Option<(Keyring, DataKey)>, BackendError> {
    let origin = key.origin();
    if let Some(keyring) = store.keyring()? {
        // Secrets exist: the key must exist too; a missing one is never silently replaced.
        let master = key.load(false)?.ok_or_else(|| no_key(key))?;
        let data = unwrap_data_key(&master, &keyring, &origin)?;
        return Ok(Some((keyring, data)));
    }
    if !create {
        return Ok(None);
    }
    let master = key.load(true)?.ok_or_else(|| no_key(key))?;
    let (candidate, candidate_key) = new_keyring(&master)?;
    let keyring = store.ensure_keyring(&candidate)?;
    if keyring.key_id == candidate.key_id {
        return Ok(Some((keyring, candidate_key)));
    }
    // Another writer made the first key a moment earlier: use theirs.
    let data = unwrap_data_key(&master, &keyring, &origin)?;
    Ok(Some((keyring, data)))
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

fn no_key(key: &KeySource) -> BackendError {
    crate::secrets::KeyError::Missing { expected: key.origin() }.into()
}

impl LocalBackend {
    /// Every scheduled workflow's scheduler state.
    ///
    /// # Errors
    /// The store cannot be read.
    pub async fn schedule_states(&self) -> Result<Vec<(String, ScheduleState)>, BackendError> {
        self.with_reader(Store::schedule_states).await
    }

    /// Records a scheduled workflow's state.
    ///
    /// # Errors
    /// The store cannot be written.
    pub async fn put_schedule_state(&self, workflow: &str, state: ScheduleState) -> Result<(), BackendError> {
        let workflow = workflow.to_owned();
        self.with_store(move |store| store.put_schedule_state(&workflow, &state)).await
    }

    /// Keeps an event and does what it does, once (see [`Store::publish_event`]).
    ///
    /// # Errors
    /// The store cannot be written.
    pub(crate) async fn keep_event(
        &self,
        event: serde_json::Value,
        deliver: Vec<String>,
        start: Vec<(String, Option<ExecutionRecord>, ScheduleState)>,
    ) -> Result<bool, BackendError> {
        self.with_store(move |store| store.publish_event(&event, &deliver, &start, Timestamp::now())).await
    }

    /// Fires schedule slots with their executions, each once, in one transaction (see
    /// [`Store::fire_slots`]).
    ///
    /// # Errors
    /// The store cannot be written.
    pub async fn fire_slots(&self, fires: Vec<crate::store::Fire>) -> Result<Vec<bool>, BackendError> {
        self.with_store(move |store| store.fire_slots(&fires)).await
    }
}

/// How often a follower or a waiting claim looks again when nothing in this process tells it
/// of changes (a store file shared with other processes), and the longest it trusts the
/// in-process signal alone.
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
struct Follow {
    backend: LocalBackend,
    id: String,
    after: u64,
    last: Option<ExecutionRecord>,
    changes: Option<tokio::sync::watch::Receiver<u64>>,
    done: bool,
}

impl Follow {
    /// The next update: new events or a changed record; `None` after the one that said it
    /// was over.
    async fn next(&mut self) -> Option<Result<FeedUpdate, BackendError>> {
        while !self.done {
            // The record first: when it is final, the events read after it are all there are.
            let record = match self.backend.execution_get(&self.id).await {
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
            let events = match self.backend.execution_events(&self.id, self.after).await {
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

/// What others waiting for the store are told about us: `pid 4242: stigmer apply --watch`.
fn holder() -> String {
    format!("pid {}: {}", std::process::id(), std::env::args().collect::<Vec<_>>().join(" "))
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("the storage engine panicked")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::backend::{BatchItem, RevisionAction, Write};

    fn create(kind: Kind, name: &str) -> BatchItem {
        BatchItem {
            kind,
            name: name.to_owned(),
            write: Write::Create {
                manifest: json!({"kind": kind.as_str(), "metadata": {"name": name, "labels": {"team": "cs"}}}),
            },
        }
    }

    #[tokio::test]
    async fn every_operation_goes_through_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(dir.path().join("home").join("local.db"), "ana");
        let batch = ApplyBatch {
            apply_set: Some("demo".into()),
            items: vec![create(Kind::Agent, "bot"), create(Kind::Skill, "refunds")],
            dry_run: false,
        };
        let receipt = backend.apply(batch).await.unwrap();
        assert!(receipt.committed);

        let listed = backend.list(&ResourceQuery::all()).await.unwrap();
        let addresses: Vec<_> = listed.iter().map(StoredResource::address).collect();
        assert_eq!(addresses, ["skill/refunds", "agent/bot"]);
        let bot = backend.get(Kind::Agent, "bot").await.unwrap().unwrap();
        assert_eq!(bot.generation, 1);
        assert_eq!(backend.get(Kind::Agent, "nobody").await.unwrap(), None);

        let history = backend.history(Kind::Agent, "bot").await.unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!((history[0].action, history[0].actor.as_str()), (RevisionAction::Created, "ana"));
        assert_eq!(
            backend.inventory("demo").await.unwrap(),
            [(Kind::Skill, String::from("refunds")), (Kind::Agent, String::from("bot"))]
        );
        let audit = backend.audit(None).await.unwrap();
        assert_eq!(audit.len(), 2);
        assert!(backend.audit(Some(audit[0].at + jiff::SignedDuration::from_secs(1))).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_store_is_free_between_operations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("local.db");
        let backend = LocalBackend::new(path.clone(), "ana").with_wait(Duration::ZERO);
        backend.list(&ResourceQuery::all()).await.unwrap();
        let options = OpenOptions::new(Duration::ZERO, "test");
        drop(Store::open(&path, &options).unwrap());
    }

    #[tokio::test]
    async fn a_held_store_is_reported_busy_with_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("local.db");
        let options = OpenOptions::new(Duration::ZERO, "pid 4242: stigmer apply --watch");
        let held = Store::open(&path, &options).unwrap();

        let backend = LocalBackend::new(path.clone(), "ana").with_wait(Duration::from_millis(50));
        let error = backend.get(Kind::Agent, "bot").await.unwrap_err();
        let BackendError::Busy { holder, .. } = &error else { panic!("expected busy, got {error:?}") };
        assert_eq!(holder.as_deref(), Some("pid 4242: stigmer apply --watch"));
        drop(held);
        assert_eq!(backend.get(Kind::Agent, "bot").await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_empty_batch_does_not_touch_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("local.db");
        let backend = LocalBackend::new(path.clone(), "ana");
        let receipt = backend.apply(ApplyBatch::default()).await.unwrap();
        assert_eq!(receipt, ApplyReceipt { written: vec![], committed: false, version: None });
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn whoami_names_the_actor_and_the_file_without_opening_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("local.db");
        let backend = LocalBackend::new(path.clone(), "ana");
        assert_eq!(backend.path(), path);
        let identity = backend.whoami().await.unwrap();
        assert_eq!(identity.actor, "ana");
        assert_eq!(identity.backend, format!("local store at {}", path.display()));
        assert!(!path.exists());
    }

    #[test]
    fn the_holder_names_this_process() {
        assert!(holder().starts_with(&format!("pid {}: ", std::process::id())));
    }
}
