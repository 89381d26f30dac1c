//! The redb store as a [`Storage`]: the local store in `$STIGMER_HOME/local.db`, opened for the
//! span of each operation so several stigmer processes can share it (operations that only read
//! open it read-only: they change no byte of the file, and do not create it when it does not
//! exist), or a store the server keeps open for one org.

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::value::RawValue;

use super::{OpenOptions, Store, WaitNotice};
use crate::backend::condition::Observed;
use crate::backend::storage::{Author, Claimed, EventEffects, Fence, Finish, Fire, Keyring, Reseal, SealedSecret};
use crate::backend::{
    ApplyBatch, ApplyReceipt, AuditEntry, BackendError, ClaimRequest, ExecutionCounts, ExecutionQuery, ExecutionRecord,
    ResourceHead, ResourceQuery, Revision, ScheduleState, Storage, StoreBackend, StoredResource, WorkerInfo,
};
use crate::model::Kind;
use crate::secrets::KeySource;

/// How long an operation waits for another process to let go of the store, unless told otherwise.
const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// The backend over the store on this machine: the local store, or one of a server's org
/// stores kept open.
pub type LocalBackend = StoreBackend<RedbStorage>;

impl LocalBackend {
    /// A backend over the store at `path` (created on first use), recording `actor` as the author
    /// of every change, with the master key `master.key` beside it.
    pub fn new(path: PathBuf, actor: impl Into<String>) -> Self {
        let key = KeySource::File(path.parent().unwrap_or(Path::new(".")).join("master.key"));
        Self::over(RedbStorage::per_operation(path), actor, key)
    }

    /// A backend over a store that stays open for the life of `store` — the server's way, which
    /// serves many requests from one process — recording `actor` for the changes.
    pub fn shared(store: Arc<Store>, actor: impl Into<String>) -> Self {
        let key = KeySource::File(store.path().parent().unwrap_or(Path::new(".")).join("master.key"));
        Self::over(RedbStorage::kept_open(store), actor, key)
    }

    /// How long to wait for another process that holds the store (10 s by default).
    #[must_use]
    pub fn with_wait(self, wait: Duration) -> Self {
        let storage = RedbStorage { wait, ..self.storage().clone() };
        self.with_storage(storage)
    }

    /// What to call once when an operation has waited a while for another process (see
    /// [`super::NOTICE_AFTER`]), so a command can say why it is not done yet.
    #[must_use]
    pub fn on_wait(self, notice: WaitNotice) -> Self {
        let storage = RedbStorage { notice: Some(notice), ..self.storage().clone() };
        self.with_storage(storage)
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.storage().path
    }
}

/// A redb store file, as a [`Storage`].
#[derive(Debug, Clone)]
pub struct RedbStorage {
    path: PathBuf,
    wait: Duration,
    /// Told when an operation has to wait for another process.
    notice: Option<WaitNotice>,
    /// A store kept open by the caller (the server), instead of opening the file per operation.
    open: Option<Arc<Store>>,
}

impl RedbStorage {
    /// The file at `path`, opened for each operation and closed after it.
    pub fn per_operation(path: PathBuf) -> Self {
        Self { path, wait: DEFAULT_WAIT, notice: None, open: None }
    }

    /// A store kept open.
    pub fn kept_open(store: Arc<Store>) -> Self {
        Self { path: store.path().to_path_buf(), wait: DEFAULT_WAIT, notice: None, open: Some(store) }
    }

    /// Runs one operation that writes, on a blocking thread.
    async fn writing<T, F>(&self, operation: F) -> Result<T, BackendError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, BackendError> + Send + 'static,
    {
        self.run(false, operation).await
    }

    /// Runs one operation that only reads: the file is opened read-only (or stands as an empty
    /// store when it does not exist), so it is left exactly as it was.
    async fn reading<T, F>(&self, operation: F) -> Result<T, BackendError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, BackendError> + Send + 'static,
    {
        self.run(true, operation).await
    }

    async fn run<T, F>(&self, read_only: bool, operation: F) -> Result<T, BackendError>
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

/// An owned fence, to move into a blocking operation.
fn owned(fence: Option<Fence<'_>>) -> Option<(u64, String)> {
    fence.map(|(epoch, token)| (epoch, token.to_owned()))
}

fn borrowed(fence: Option<&(u64, String)>) -> Option<Fence<'_>> {
    fence.map(|(epoch, token)| (*epoch, token.as_str()))
}

impl Storage for RedbStorage {
    fn describe(&self) -> String {
        format!("local store at {}", self.path.display())
    }

    async fn list(&self, query: &ResourceQuery) -> Result<Vec<StoredResource>, BackendError> {
        let query = query.clone();
        self.reading(move |store| store.list(&query)).await
    }

    async fn heads(&self) -> Result<Vec<ResourceHead>, BackendError> {
        self.reading(Store::heads).await
    }

    async fn list_setting(
        &self,
        query: &ResourceQuery,
        path: &'static [&'static str],
    ) -> Result<Vec<StoredResource>, BackendError> {
        let query = query.clone();
        self.reading(move |store| store.list_setting(&query, Some(path))).await
    }

    async fn get(&self, kind: Kind, name: &str) -> Result<Option<StoredResource>, BackendError> {
        let name = name.to_owned();
        self.reading(move |store| store.get(kind, &name)).await
    }

    async fn apply(&self, batch: ApplyBatch, author: Author<'_>, now: Timestamp) -> Result<ApplyReceipt, BackendError> {
        let (actor, address) = (author.actor.to_owned(), author.address.map(str::to_owned));
        self.writing(move |store| store.apply_from(&batch, &actor, address.as_deref(), now)).await
    }

    async fn history(&self, kind: Kind, name: &str) -> Result<Vec<Revision>, BackendError> {
        let name = name.to_owned();
        self.reading(move |store| store.history(kind, &name)).await
    }

    async fn inventory(&self, apply_set: &str) -> Result<Vec<(Kind, String)>, BackendError> {
        let apply_set = apply_set.to_owned();
        self.reading(move |store| store.inventory(&apply_set)).await
    }

    async fn audit(&self, since: Option<Timestamp>) -> Result<Vec<AuditEntry>, BackendError> {
        self.reading(move |store| store.audit(since)).await
    }

    async fn version(&self) -> Result<u64, BackendError> {
        self.reading(Store::commit_count).await
    }

    async fn keyring(&self) -> Result<Option<Keyring>, BackendError> {
        self.reading(Store::keyring).await
    }

    async fn ensure_keyring(&self, candidate: Keyring) -> Result<Keyring, BackendError> {
        self.writing(move |store| store.ensure_keyring(&candidate)).await
    }

    async fn secrets(&self) -> Result<Vec<SealedSecret>, BackendError> {
        self.reading(Store::secrets).await
    }

    async fn secret(&self, name: &str) -> Result<Option<SealedSecret>, BackendError> {
        let name = name.to_owned();
        self.reading(move |store| store.secret(&name)).await
    }

    async fn put_secret(
        &self,
        name: &str,
        key_id: &str,
        sealed: Vec<u8>,
        author: Author<'_>,
        now: Timestamp,
    ) -> Result<bool, BackendError> {
        let (name, key_id) = (name.to_owned(), key_id.to_owned());
        let (actor, address) = (author.actor.to_owned(), author.address.map(str::to_owned));
        self.writing(move |store| {
            let author = Author { actor: &actor, address: address.as_deref() };
            store.put_secret(&name, &key_id, &sealed, author, now)
        })
        .await
    }

    async fn delete_secret(&self, name: &str, author: Author<'_>, now: Timestamp) -> Result<(), BackendError> {
        let name = name.to_owned();
        let (actor, address) = (author.actor.to_owned(), author.address.map(str::to_owned));
        self.writing(move |store| {
            store.delete_secret(&name, Author { actor: &actor, address: address.as_deref() }, now)
        })
        .await
    }

    async fn rotate_keyring(
        &self,
        new: Keyring,
        reseal: Reseal,
        author: Author<'_>,
        now: Timestamp,
    ) -> Result<usize, BackendError> {
        let (actor, address) = (author.actor.to_owned(), author.address.map(str::to_owned));
        self.writing(move |store| {
            let author = Author { actor: &actor, address: address.as_deref() };
            store.rotate_keyring(&new, |secret| reseal(secret), author, now)
        })
        .await
    }

    async fn create_execution(&self, record: ExecutionRecord, sealed: Option<Vec<u8>>) -> Result<(), BackendError> {
        self.writing(move |store| store.create_execution(&record, sealed.as_deref())).await
    }

    async fn claim_execution(
        &self,
        request: &ClaimRequest,
        token: &str,
        now: Timestamp,
    ) -> Result<Option<Claimed>, BackendError> {
        let (request, token) = (request.clone(), token.to_owned());
        self.writing(move |store| store.claim_execution(&request, &token, now)).await
    }

    async fn renew_lease(
        &self,
        id: &str,
        fence: Fence<'_>,
        lease: Duration,
        now: Timestamp,
    ) -> Result<ExecutionRecord, BackendError> {
        let (id, (epoch, token)) = (id.to_owned(), (fence.0, fence.1.to_owned()));
        self.writing(move |store| store.renew_lease(&id, (epoch, &token), lease, now)).await
    }

    async fn append_events(
        &self,
        id: &str,
        fence: Option<Fence<'_>>,
        events: &[Box<RawValue>],
    ) -> Result<u64, BackendError> {
        let (id, fence, events) = (id.to_owned(), owned(fence), events.to_vec());
        self.writing(move |store| store.append_events(&id, borrowed(fence.as_ref()), &events)).await
    }

    async fn finish_execution(
        &self,
        id: &str,
        fence: Option<Fence<'_>>,
        finish: Finish<'_>,
        now: Timestamp,
    ) -> Result<(), BackendError> {
        let (id, fence) = (id.to_owned(), owned(fence));
        let (status, output, error, last) =
            (finish.status, finish.output.cloned(), finish.error.cloned(), finish.last.to_vec());
        self.writing(move |store| {
            let finish = Finish { status, output: output.as_ref(), error: error.as_ref(), last: &last };
            store.finish_execution(&id, borrowed(fence.as_ref()), finish, now)
        })
        .await
    }

    async fn park_execution(
        &self,
        id: &str,
        fence: Fence<'_>,
        until: Option<Timestamp>,
        last: &[Box<RawValue>],
    ) -> Result<(), BackendError> {
        let (id, (epoch, token), last) = (id.to_owned(), (fence.0, fence.1.to_owned()), last.to_vec());
        self.writing(move |store| store.park_execution(&id, (epoch, &token), until, &last)).await
    }

    async fn decide_execution(
        &self,
        id: &str,
        after: u64,
        events: &[Box<RawValue>],
        audit: &[AuditEntry],
        requeue: bool,
    ) -> Result<(), BackendError> {
        let (id, events, audit) = (id.to_owned(), events.to_vec(), audit.to_vec());
        self.writing(move |store| store.decide_execution(&id, after, &events, &audit, requeue)).await
    }

    async fn execution(&self, id: &str) -> Result<Option<ExecutionRecord>, BackendError> {
        let id = id.to_owned();
        self.reading(move |store| store.execution(&id)).await
    }

    async fn execution_counts(&self, query: &ExecutionQuery) -> Result<ExecutionCounts, BackendError> {
        let query = query.clone();
        self.reading(move |store| store.execution_counts(&query)).await
    }

    async fn executions(&self, query: &ExecutionQuery) -> Result<Vec<ExecutionRecord>, BackendError> {
        let query = query.clone();
        self.reading(move |store| store.executions(&query)).await
    }

    async fn events(
        &self,
        id: &str,
        after: u64,
        limit: Option<usize>,
    ) -> Result<Vec<(u64, serde_json::Value)>, BackendError> {
        let id = id.to_owned();
        self.reading(move |store| store.events(&id, after, limit)).await
    }

    async fn worker_seen(&self, worker: &WorkerInfo, now: Timestamp) -> Result<(), BackendError> {
        let worker = worker.clone();
        self.writing(move |store| store.worker_seen(&worker, now)).await
    }

    async fn workers(&self) -> Result<Vec<WorkerInfo>, BackendError> {
        self.reading(Store::workers).await
    }

    async fn conditions(&self) -> Result<Vec<Observed>, BackendError> {
        self.reading(Store::conditions).await
    }

    async fn put_conditions(&self, observed: Vec<Observed>) -> Result<(), BackendError> {
        self.writing(move |store| store.put_conditions(&observed)).await
    }

    async fn schedule_states(&self) -> Result<Vec<(String, ScheduleState)>, BackendError> {
        self.reading(Store::schedule_states).await
    }

    async fn put_schedule_state(&self, workflow: &str, state: &ScheduleState) -> Result<(), BackendError> {
        let (workflow, state) = (workflow.to_owned(), state.clone());
        self.writing(move |store| store.put_schedule_state(&workflow, &state)).await
    }

    async fn pause_schedule(&self, workflow: &str, paused: bool, initial: &ScheduleState) -> Result<(), BackendError> {
        let (workflow, initial) = (workflow.to_owned(), initial.clone());
        self.writing(move |store| store.pause_schedule(&workflow, paused, &initial)).await
    }

    async fn fire_slots(&self, fires: Vec<Fire>) -> Result<Vec<bool>, BackendError> {
        self.writing(move |store| store.fire_slots(&fires)).await
    }

    async fn publish_event(
        &self,
        event: &serde_json::Value,
        effects: EventEffects,
        now: Timestamp,
    ) -> Result<bool, BackendError> {
        let event = event.clone();
        self.writing(move |store| store.publish_event(&event, &effects, now)).await
    }

    // One signal for everything the store's executions do: its reads are cheap.
    fn queue_changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.open.as_ref().map(|store| store.changes().subscribe())
    }

    fn execution_changes(&self, _id: &str) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.queue_changes()
    }
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
    use crate::backend::{Backend, BatchItem, RevisionAction, Write};

    fn create(kind: Kind, name: &str) -> BatchItem {
        BatchItem {
            kind,
            name: name.to_owned(),
            write: Write::Create {
                manifest: json!({"kind": kind.as_str(), "metadata": {"name": name, "labels": {"team": "cs"}}}).into(),
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
            correcting: false,
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
