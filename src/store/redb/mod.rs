//! The redb store: the file behind the local backend, and each org's file on a server that keeps
//! its data in a directory. It owns the tables, the encoding of values, the format version and
//! migrations, and it applies batches atomically; [`RedbStorage`] makes it a
//! [`crate::backend::Storage`].
//!
//! It speaks the contract types of [`crate::backend`] and nothing else: no gRPC, no printing,
//! and no async below [`RedbStorage`]. A `Store` opened for writing holds the file exclusively (redb allows one writable
//! handle per file, across processes), so callers open it for one operation and drop it. One
//! opened for reading shares the file with other readers and leaves it exactly as it was — redb
//! rewrites its header whenever a writable handle opens and closes — and a store that does not
//! exist yet reads as an empty one without being created.

mod conditions;
mod dump;
mod encoding;
mod executions;
mod local;
mod schedules;
mod secrets;
mod tables;

pub use local::{LocalBackend, RedbStorage};

pub use crate::backend::storage::Changes;

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use redb::{
    Database, DatabaseError, ReadOnlyDatabase, ReadTransaction, ReadableDatabase, ReadableTable, Table, TableError,
    WriteTransaction,
};
use serde::{Deserialize, Serialize};

use self::encoding::DecodeError;
use self::tables::{
    APPLY_SETS, AUDIT, COMMIT_COUNT_KEY, EVENTS, EXECUTION_DEFINITIONS, EXECUTION_EVENTS, EXECUTION_LEASES,
    EXECUTION_QUEUE, EXECUTION_SECRETS, EXECUTIONS, FORMAT_VERSION_KEY, KEYRING, META, RESOURCES, REVISIONS,
    SCHEDULE_SLOTS, SCHEDULES, SECRETS, WORKERS, kind_range, resource_key,
};
use crate::backend::probe;
use crate::backend::storage::Author;
use crate::backend::{
    ApplyBatch, ApplyReceipt, AuditEntry, BackendError, ResourceHead, ResourceQuery, Revision, StoredResource, Written,
    batch,
};
use crate::model::Kind;

/// The store format this build writes, recorded in the `meta` table when a store is created.
/// A store with a higher version was written by a newer stigmer and is refused.
pub const FORMAT_VERSION: u32 = 5;

/// The first pause between attempts to open a store that another handle holds.
const FIRST_RETRY: Duration = Duration::from_millis(10);
/// The longest pause between attempts; the pause doubles up to it.
const LONGEST_RETRY: Duration = Duration::from_millis(100);
/// A holder file longer than this is not something an opener wrote.
const LONGEST_HOLDER: usize = 4096;
/// How long an open waits for another holder before it says so through [`OpenOptions::notice`]:
/// long enough that the usual hand-over between two quick commands stays silent.
pub const NOTICE_AFTER: Duration = Duration::from_millis(500);

/// How to open a store.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// How long to wait for another handle (usually another process) to let go of the file.
    pub wait: Duration,
    /// Who is opening it, for others to read while we hold it: `pid 4242: stigmer apply --watch`.
    pub holder: String,
    /// Told once when the open has waited [`NOTICE_AFTER`] for another holder.
    pub notice: Option<WaitNotice>,
    /// Bumped after every committed change to executions; several stores may share one (the
    /// server's workers wait on all its orgs at once). A store of its own when unset.
    pub changes: Option<Changes>,
}

impl OpenOptions {
    /// Wait up to `wait`, as `holder`, silently.
    pub fn new(wait: Duration, holder: impl Into<String>) -> Self {
        Self { wait, holder: holder.into(), notice: None, changes: None }
    }
}

/// What a waiting open calls, from the opening thread, with the holder's text when it is
/// known: the store never prints, its caller decides how to tell the user.
#[derive(Clone)]
pub struct WaitNotice(Arc<Tell>);

/// A notice's function: given the holder's text, when known.
type Tell = dyn Fn(Option<&str>) + Send + Sync;

impl WaitNotice {
    /// A notice that calls `tell`.
    pub fn new(tell: impl Fn(Option<&str>) + Send + Sync + 'static) -> Self {
        Self(Arc::new(tell))
    }
}

impl std::fmt::Debug for WaitNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WaitNotice")
    }
}

/// An open store: for writing, holding its file exclusively until dropped; or for reading only.
pub struct Store {
    db: Db,
    path: PathBuf,
    /// The holder note this handle wrote (writable handles on a file only).
    holder_path: Option<PathBuf>,
    /// Told about every committed execution write.
    changes: Changes,
}

/// The database behind a store.
enum Db {
    /// Opened for reading and writing.
    Writable(Database),
    /// Opened for reading only: the file is not changed.
    ReadOnly(ReadOnlyDatabase),
    /// An empty store in memory, standing for a file that does not exist yet: read-only too.
    Missing(Database),
}

/// What the `meta` table says about a store's format.
enum Format {
    /// The format this build writes.
    Current,
    /// A file with no tables at all: a store never set up.
    Empty,
    /// An older format, to migrate from.
    Older(u64),
}

/// The members of the apply sets a batch touches, loaded on first touch and written once at the
/// end, so a batch of many resources in one set rewrites that set's inventory once.
type Inventories = BTreeMap<String, BTreeSet<(Kind, String)>>;

impl Store {
    /// Opens the store at `path`, creating the file (and its parent directory, private to the
    /// user) on first use.
    ///
    /// While another handle holds the file, retries with a short backoff until `options.wait` has
    /// passed, then returns [`BackendError::Busy`] naming the holder.
    pub fn open(path: &Path, options: &OpenOptions) -> Result<Self, BackendError> {
        Self::open_with_cache(path, options, None)
    }

    /// [`Store::open`] with redb's page cache bounded to `cache_bytes` (redb's own default is
    /// 1 GiB): for a long-lived process such as the server, whose stores only grow.
    pub fn open_with_cache(
        path: &Path,
        options: &OpenOptions,
        cache_bytes: Option<usize>,
    ) -> Result<Self, BackendError> {
        create_parent(path)?;
        let db = open_database(path, options, cache_bytes)?;
        let holder_path = holder_path(path);
        // The holder file only helps others word their error; failing to write it must not fail
        // an open that succeeded.
        let _ = fs::write(&holder_path, &options.holder);
        let changes = options.changes.clone().unwrap_or_default();
        let store = Self { db: Db::Writable(db), path: path.to_owned(), holder_path: Some(holder_path), changes };
        match store.format()? {
            Format::Current => {}
            Format::Empty => store.initialize()?,
            Format::Older(version) => store.migrate(version)?,
        }
        Ok(store)
    }

    /// Opens the store at `path` for reading only, leaving the file (and its directory) exactly
    /// as they are: a store that does not exist yet reads as an empty one, and is not created.
    ///
    /// Waits for a writer like [`Store::open`]. A file that needs what only a writable handle
    /// does — recovery after a crash, a migration, its first setup — is opened with
    /// [`Store::open`] instead.
    pub fn open_read_only(path: &Path, options: &OpenOptions) -> Result<Self, BackendError> {
        match fs::symlink_metadata(path) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Self::empty(path),
            Err(source) => return Err(BackendError::Io { path: path.to_owned(), source }),
            Ok(_) => {}
        }
        // Needs repair, or is not a database a reader can make sense of: the writable open
        // repairs what can be repaired and words the error for what cannot.
        let Ok(db) = retry_while_held(path, options, || Database::builder().open_read_only(path))? else {
            return Self::open(path, options);
        };
        let changes = options.changes.clone().unwrap_or_default();
        let store = Self { db: Db::ReadOnly(db), path: path.to_owned(), holder_path: None, changes };
        match store.format()? {
            Format::Current => Ok(store),
            Format::Empty | Format::Older(_) => {
                drop(store);
                Self::open(path, options)
            }
        }
    }

    /// An empty store in memory, standing for one at `path` that does not exist yet.
    fn empty(path: &Path) -> Result<Self, BackendError> {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(|e| engine_error(path, e.into()))?;
        let txn = db.begin_write().map_err(|e| engine_error(path, e.into()))?;
        initialize_tables(&txn).map_err(|e| engine_error(path, e))?;
        txn.commit().map_err(|e| engine_error(path, e.into()))?;
        Ok(Self { db: Db::Missing(db), path: path.to_owned(), holder_path: None, changes: Changes::new() })
    }

    /// What tells about changes to this store's executions.
    pub fn changes(&self) -> &Changes {
        &self.changes
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Resources matching the query, by dependency order of kind, then by name.
    pub fn list(&self, query: &ResourceQuery) -> Result<Vec<StoredResource>, BackendError> {
        self.list_setting(query, None)
    }

    /// [`Store::list`], keeping only the resources whose manifest has a value at `path` when
    /// one is given; the others are skipped without being decoded.
    pub fn list_setting(
        &self,
        query: &ResourceQuery,
        path: Option<&[&str]>,
    ) -> Result<Vec<StoredResource>, BackendError> {
        let stored_path = path.map(probe::in_manifest);
        let txn = self.begin_read()?;
        let table = txn.open_table(RESOURCES).map_err(|e| self.engine(e))?;
        let mut found = Vec::new();
        for kind in query.kinds_in_order() {
            if query.names.is_empty() {
                let (start, end) = kind_range(kind);
                for entry in table.range(start.as_str()..end.as_str()).map_err(|e| self.engine(e))? {
                    let (_, value) = entry.map_err(|e| self.engine(e))?;
                    if let Some(path) = &stored_path {
                        let json = encoding::json_of(value.value()).map_err(|e| self.decode_error(e))?;
                        if !probe::sets(json, path) {
                            continue;
                        }
                    }
                    found.push(self.decode::<StoredResource>(value.value())?);
                }
            } else {
                for name in &query.names {
                    let named = self.read_resource(&table, &resource_key(kind, name))?;
                    found.extend(named.filter(|r| path.is_none_or(|path| probe::value_sets(&r.manifest, path))));
                }
            }
        }
        found.retain(|resource| query.has_labels_of(resource));
        found.sort_by(|a, b| (a.kind.order(), &a.name).cmp(&(b.kind.order(), &b.name)));
        found.dedup_by(|a, b| a.kind == b.kind && a.name == b.name);
        Ok(found)
    }

    /// Every resource's head, by dependency order of kind, then by name. The manifests are
    /// skipped over in the stored bytes, never decoded.
    pub fn heads(&self) -> Result<Vec<ResourceHead>, BackendError> {
        let txn = self.begin_read()?;
        let table = txn.open_table(RESOURCES).map_err(|e| self.engine(e))?;
        let mut found = Vec::new();
        for kind in ResourceQuery::all().kinds_in_order() {
            let (start, end) = kind_range(kind);
            for entry in table.range(start.as_str()..end.as_str()).map_err(|e| self.engine(e))? {
                let (_, value) = entry.map_err(|e| self.engine(e))?;
                found.push(self.decode::<ResourceHead>(value.value())?);
            }
        }
        found.sort_by(|a, b| (a.kind.order(), &a.name).cmp(&(b.kind.order(), &b.name)));
        Ok(found)
    }

    /// One resource, if it exists.
    pub fn get(&self, kind: Kind, name: &str) -> Result<Option<StoredResource>, BackendError> {
        let txn = self.begin_read()?;
        let table = txn.open_table(RESOURCES).map_err(|e| self.engine(e))?;
        self.read_resource(&table, &resource_key(kind, name))
    }

    /// Every revision of a resource, oldest first, also after it was deleted.
    pub fn history(&self, kind: Kind, name: &str) -> Result<Vec<Revision>, BackendError> {
        let txn = self.begin_read()?;
        let table = txn.open_table(REVISIONS).map_err(|e| self.engine(e))?;
        let key = resource_key(kind, name);
        let range = table.range((key.as_str(), 0)..=(key.as_str(), u64::MAX)).map_err(|e| self.engine(e))?;
        range
            .map(|entry| {
                let (_, value) = entry.map_err(|e| self.engine(e))?;
                self.decode(value.value())
            })
            .collect()
    }

    /// The resources an apply set owns, sorted by dependency order of kind, then by name.
    pub fn inventory(&self, apply_set: &str) -> Result<Vec<(Kind, String)>, BackendError> {
        let txn = self.begin_read()?;
        let table = txn.open_table(APPLY_SETS).map_err(|e| self.engine(e))?;
        Ok(self.read_inventory(&table, apply_set)?.into_iter().collect())
    }

    /// Audit entries, oldest first; only those at or after `since`, when given.
    pub fn audit(&self, since: Option<Timestamp>) -> Result<Vec<AuditEntry>, BackendError> {
        let txn = self.begin_read()?;
        let table = txn.open_table(AUDIT).map_err(|e| self.engine(e))?;
        let mut entries = Vec::new();
        for entry in table.iter().map_err(|e| self.engine(e))? {
            let (_, value) = entry.map_err(|e| self.engine(e))?;
            let entry: AuditEntry = self.decode(value.value())?;
            if since.is_none_or(|since| entry.at >= since) {
                entries.push(entry);
            }
        }
        Ok(entries)
    }

    /// How many batches have been committed to this store, ever.
    pub fn commit_count(&self) -> Result<u64, BackendError> {
        let txn = self.begin_read()?;
        let meta = txn.open_table(META).map_err(|e| self.engine(e))?;
        Ok(meta.get(COMMIT_COUNT_KEY).map_err(|e| self.engine(e))?.map_or(0, |count| count.value()))
    }

    /// Applies a batch in one write transaction: every precondition holds and every write is
    /// committed, or nothing is.
    ///
    /// A batch whose preconditions do not hold returns [`BackendError::Conflict`] listing every
    /// resource that moved. An empty batch opens no transaction; a dry run checks and aborts.
    pub fn apply(&self, batch: &ApplyBatch, actor: &str, now: Timestamp) -> Result<ApplyReceipt, BackendError> {
        self.apply_from(batch, actor, None, now)
    }

    /// [`Store::apply`] for a change that came over the network from `address`, which the audit
    /// log records.
    pub fn apply_from(
        &self,
        batch: &ApplyBatch,
        actor: &str,
        address: Option<&str>,
        now: Timestamp,
    ) -> Result<ApplyReceipt, BackendError> {
        if batch.items.is_empty() {
            return Ok(ApplyReceipt::default());
        }
        let txn = self.begin_write()?;
        match self.write_batch(&txn, batch, (actor, address), now) {
            Ok((written, _)) if batch.dry_run => {
                txn.abort().map_err(|e| self.engine(e))?;
                Ok(ApplyReceipt { written, committed: false, version: None })
            }
            Ok((written, version)) => {
                txn.commit().map_err(|e| self.engine(e))?;
                Ok(ApplyReceipt { written, committed: true, version: Some(version) })
            }
            Err(error) => {
                // The batch's own error is the one to report; an abort discards the writes even
                // when it fails, because nothing was committed.
                let _ = txn.abort();
                Err(error)
            }
        }
    }

    /// Checks and performs every write of a batch inside `txn`, which the caller commits or
    /// aborts: what the batch does is [`batch::decide`]d against the resources it touches.
    /// Returns what was written and the commit count the batch brings the store to.
    fn write_batch(
        &self,
        txn: &WriteTransaction,
        batch: &ApplyBatch,
        (actor, from): (&str, Option<&str>),
        now: Timestamp,
    ) -> Result<(Vec<Written>, u64), BackendError> {
        let mut resources = txn.open_table(RESOURCES).map_err(|e| self.engine(e))?;
        let mut revisions = txn.open_table(REVISIONS).map_err(|e| self.engine(e))?;
        let mut audit = txn.open_table(AUDIT).map_err(|e| self.engine(e))?;
        let mut apply_sets = txn.open_table(APPLY_SETS).map_err(|e| self.engine(e))?;
        let mut meta = txn.open_table(META).map_err(|e| self.engine(e))?;

        let mut before = BTreeMap::new();
        for (kind, name) in batch::touched(batch) {
            if let Some(resource) = self.read_resource(&resources, &resource_key(kind, &name))? {
                before.insert((kind, name), resource);
            }
        }
        let author = Author { actor, address: from };
        let mut outcome = batch::decide(batch, &before, author, now)?;
        if !outcome.renames.is_empty() {
            let (start, end) = kind_range(Kind::Session);
            let mut sessions = Vec::new();
            for entry in resources.range(start.as_str()..end.as_str()).map_err(|e| self.engine(e))? {
                let (_, value) = entry.map_err(|e| self.engine(e))?;
                sessions.push(self.decode::<StoredResource>(value.value())?);
            }
            batch::follow_renames(&mut outcome, &sessions, author, now);
        }
        for ((kind, name), after) in &outcome.resources {
            let key = resource_key(*kind, name);
            match after {
                Some(resource) => {
                    resources.insert(key.as_str(), self.encode(resource)?.as_slice()).map_err(|e| self.engine(e))?;
                }
                None => {
                    resources.remove(key.as_str()).map_err(|e| self.engine(e))?;
                }
            }
        }
        let first = audit.last().map_err(|e| self.engine(e))?.map_or(1, |(key, _)| key.value() + 1);
        for ((revision, entry), sequence) in outcome.revisions.iter().zip(&outcome.audit).zip(first..) {
            let key = resource_key(revision.kind, &revision.name);
            revisions
                .insert((key.as_str(), sequence), self.encode(revision)?.as_slice())
                .map_err(|e| self.engine(e))?;
            audit.insert(sequence, self.encode(entry)?.as_slice()).map_err(|e| self.engine(e))?;
        }
        for ((kind, old), (_, new)) in &outcome.renames {
            self.move_history(&mut revisions, *kind, old, new)?;
            self.retarget_executions(txn, &crate::backend::address(*kind, old), &crate::backend::address(*kind, new))?;
        }
        let mut inventories = Inventories::new();
        for (member, leaves, joins) in &outcome.owners {
            self.change_owner(&mut inventories, &apply_sets, member.clone(), leaves.as_deref(), joins.as_deref())?;
        }
        for (set, members) in &inventories {
            if members.is_empty() {
                apply_sets.remove(set.as_str()).map_err(|e| self.engine(e))?;
            } else {
                apply_sets.insert(set.as_str(), self.encode(members)?.as_slice()).map_err(|e| self.engine(e))?;
            }
        }
        Ok((outcome.written, self.count_commit(&mut meta)?))
    }

    /// Moves the revisions of `kind/old` under `kind/new`, each keeping its sequence number
    /// (so the history stays in order) and naming the new name.
    fn move_history(
        &self,
        revisions: &mut Table<'_, (&'static str, u64), &'static [u8]>,
        kind: Kind,
        old: &str,
        new: &str,
    ) -> Result<(), BackendError> {
        let (old_key, new_key) = (resource_key(kind, old), resource_key(kind, new));
        let mut moved = Vec::new();
        for entry in
            revisions.range((old_key.as_str(), 0)..=(old_key.as_str(), u64::MAX)).map_err(|e| self.engine(e))?
        {
            let (key, value) = entry.map_err(|e| self.engine(e))?;
            let mut revision: crate::backend::Revision = self.decode(value.value())?;
            new.clone_into(&mut revision.name);
            moved.push((key.value().1, revision));
        }
        for (sequence, revision) in moved {
            revisions.remove((old_key.as_str(), sequence)).map_err(|e| self.engine(e))?;
            revisions
                .insert((new_key.as_str(), sequence), self.encode(&revision)?.as_slice())
                .map_err(|e| self.engine(e))?;
        }
        Ok(())
    }

    /// Counts one more committed batch in `meta`; returns the new count (the store's version).
    fn count_commit(&self, meta: &mut Table<'_, &'static str, u64>) -> Result<u64, BackendError> {
        let commits = meta.get(COMMIT_COUNT_KEY).map_err(|e| self.engine(e))?.map_or(0, |count| count.value());
        meta.insert(COMMIT_COUNT_KEY, commits + 1).map_err(|e| self.engine(e))?;
        Ok(commits + 1)
    }

    /// Moves a resource from one apply set's inventory to another's (either may be `None`).
    fn change_owner(
        &self,
        inventories: &mut Inventories,
        table: &Table<'_, &'static str, &'static [u8]>,
        member: (Kind, String),
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<(), BackendError> {
        if from == to {
            return Ok(());
        }
        if let Some(from) = from {
            self.members(inventories, table, from)?.remove(&member);
        }
        if let Some(to) = to {
            self.members(inventories, table, to)?.insert(member);
        }
        Ok(())
    }

    /// The members of one apply set, read from the table the first time the batch touches it.
    fn members<'i>(
        &self,
        inventories: &'i mut Inventories,
        table: &Table<'_, &'static str, &'static [u8]>,
        set: &str,
    ) -> Result<&'i mut BTreeSet<(Kind, String)>, BackendError> {
        Ok(match inventories.entry(set.to_owned()) {
            Entry::Occupied(members) => members.into_mut(),
            Entry::Vacant(slot) => slot.insert(self.read_inventory(table, set)?),
        })
    }

    fn read_resource(
        &self,
        table: &impl ReadableTable<&'static str, &'static [u8]>,
        key: &str,
    ) -> Result<Option<StoredResource>, BackendError> {
        match table.get(key).map_err(|e| self.engine(e))? {
            Some(value) => self.decode(value.value()).map(Some),
            None => Ok(None),
        }
    }

    fn read_inventory(
        &self,
        table: &impl ReadableTable<&'static str, &'static [u8]>,
        set: &str,
    ) -> Result<BTreeSet<(Kind, String)>, BackendError> {
        match table.get(set).map_err(|e| self.engine(e))? {
            Some(value) => self.decode(value.value()),
            None => Ok(BTreeSet::new()),
        }
    }

    /// The store's format; refuses a store from a newer stigmer or one that is not a stigmer
    /// store.
    fn format(&self) -> Result<Format, BackendError> {
        let txn = self.begin_read()?;
        let meta = match txn.open_table(META) {
            Ok(meta) => meta,
            Err(TableError::TableDoesNotExist(_)) => {
                let has_tables = txn.list_tables().map_err(|e| self.engine(e))?.next().is_some();
                if has_tables {
                    return Err(self.corrupt("it has tables but no meta table, so it is not a stigmer store"));
                }
                return Ok(Format::Empty);
            }
            Err(error) => return Err(self.engine(error)),
        };
        let found = meta.get(FORMAT_VERSION_KEY).map_err(|e| self.engine(e))?.map(|version| version.value());
        match found {
            None => Err(self.corrupt("its meta table records no format version")),
            Some(found) if found == u64::from(FORMAT_VERSION) => Ok(Format::Current),
            Some(found) if found > u64::from(FORMAT_VERSION) => Err(BackendError::NewerFormat {
                path: self.path.clone(),
                found: u32::try_from(found).unwrap_or(u32::MAX),
                supported: FORMAT_VERSION,
            }),
            Some(older @ 1..) => Ok(Format::Older(older)),
            Some(found) => Err(self.corrupt(&format!("format version {found} was never written by stigmer"))),
        }
    }

    /// Brings an older store to the current format in one transaction. Formats 2 to 4 only
    /// added tables (2: `secrets`, `keyring`; 3: `executions`, `execution_events`; 4: the
    /// queue, leases, run secrets and workers), so creating the missing ones is their whole
    /// migration; 5 moved each execution's definition out of its record into
    /// `execution_definitions`.
    fn migrate(&self, from: u64) -> Result<(), BackendError> {
        debug_assert!(from < u64::from(FORMAT_VERSION));
        let txn = self.begin_write()?;
        {
            self.create_tables(&txn)?;
            if from < 5 {
                self.move_definitions_out(&txn)?;
            }
            let mut meta = txn.open_table(META).map_err(|e| self.engine(e))?;
            meta.insert(FORMAT_VERSION_KEY, u64::from(FORMAT_VERSION)).map_err(|e| self.engine(e))?;
        }
        txn.commit().map_err(|e| self.engine(e))
    }

    /// Opens (so creates) every table.
    fn create_tables(&self, txn: &WriteTransaction) -> Result<(), BackendError> {
        create_tables(txn).map_err(|e| self.engine(e))
    }

    /// Creates every table and records the format version, in one transaction.
    fn initialize(&self) -> Result<(), BackendError> {
        let txn = self.begin_write()?;
        initialize_tables(&txn).map_err(|e| self.engine(e))?;
        txn.commit().map_err(|e| self.engine(e))
    }

    fn begin_read(&self) -> Result<ReadTransaction, BackendError> {
        match &self.db {
            Db::Writable(db) | Db::Missing(db) => db.begin_read(),
            Db::ReadOnly(db) => db.begin_read(),
        }
        .map_err(|e| self.engine(e))
    }

    fn begin_write(&self) -> Result<WriteTransaction, BackendError> {
        match &self.db {
            Db::Writable(db) => db.begin_write().map_err(|e| self.engine(e)),
            Db::ReadOnly(_) | Db::Missing(_) => Err(BackendError::Storage(format!(
                "{} was opened for reading only; a change needs it opened for writing",
                self.path.display()
            ))),
        }
    }

    fn encode<T: Serialize>(&self, value: &T) -> Result<Vec<u8>, BackendError> {
        // Only a value that cannot be JSON (such as a map with non-string keys) fails here; the
        // file is fine, so this is not reported as damage.
        encoding::encode(value).map_err(|error| {
            BackendError::Storage(format!("cannot encode a value for {}: {error}", self.path.display()))
        })
    }

    fn decode<'a, T: Deserialize<'a>>(&self, bytes: &'a [u8]) -> Result<T, BackendError> {
        encoding::decode(bytes).map_err(|error| self.decode_error(error))
    }

    fn decode_error(&self, error: DecodeError) -> BackendError {
        match error {
            DecodeError::Newer(found) => BackendError::NewerFormat {
                path: self.path.clone(),
                found: u32::from(found),
                supported: FORMAT_VERSION,
            },
            other => self.corrupt(&other.to_string()),
        }
    }

    fn corrupt(&self, detail: &str) -> BackendError {
        BackendError::Corrupt { path: self.path.clone(), detail: detail.to_owned() }
    }

    fn engine(&self, error: impl Into<redb::Error>) -> BackendError {
        engine_error(&self.path, error.into())
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // Removed before the database (a later field) lets go of the file, so whoever opens it
        // next finds no stale holder. A leftover file is harmless: the next opener overwrites it.
        if let Some(holder) = &self.holder_path {
            let _ = fs::remove_file(holder);
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish_non_exhaustive()
    }
}

/// Opens (so creates) every table.
fn create_tables(txn: &WriteTransaction) -> Result<(), redb::Error> {
    txn.open_table(META)?;
    txn.open_table(RESOURCES)?;
    txn.open_table(REVISIONS)?;
    txn.open_table(APPLY_SETS)?;
    txn.open_table(AUDIT)?;
    txn.open_table(SECRETS)?;
    txn.open_table(KEYRING)?;
    txn.open_table(EXECUTIONS)?;
    txn.open_table(EXECUTION_DEFINITIONS)?;
    txn.open_table(EXECUTION_EVENTS)?;
    txn.open_table(EXECUTION_QUEUE)?;
    txn.open_table(EXECUTION_LEASES)?;
    txn.open_table(EXECUTION_SECRETS)?;
    txn.open_table(WORKERS)?;
    txn.open_table(SCHEDULES)?;
    txn.open_table(SCHEDULE_SLOTS)?;
    txn.open_table(EVENTS)?;
    Ok(())
}

/// Creates every table and records the format version (in the caller's transaction).
fn initialize_tables(txn: &WriteTransaction) -> Result<(), redb::Error> {
    create_tables(txn)?;
    let mut meta = txn.open_table(META)?;
    meta.insert(FORMAT_VERSION_KEY, u64::from(FORMAT_VERSION))?;
    meta.insert(COMMIT_COUNT_KEY, 0)?;
    Ok(())
}

/// Creates the directory the store lives in, readable by the user only, when it is missing.
fn create_parent(path: &Path) -> Result<(), BackendError> {
    let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) else {
        return Ok(());
    };
    if parent.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(parent).map_err(|source| BackendError::Io { path: parent.to_owned(), source })
}

/// Opens (or creates) the database, waiting while another handle holds it.
fn open_database(path: &Path, options: &OpenOptions, cache_bytes: Option<usize>) -> Result<Database, BackendError> {
    let attempt = || {
        let mut builder = Database::builder();
        if let Some(bytes) = cache_bytes {
            builder.set_cache_size(bytes);
        }
        builder.create(path)
    };
    retry_while_held(path, options, attempt)?.map_err(|error| engine_error(path, error.into()))
}

/// Makes `attempt` again while it fails because another handle holds the file, for up to
/// `options.wait` (then [`BackendError::Busy`] naming the holder), giving `options.notice` once
/// when the wait gets long. Returns the first other outcome.
fn retry_while_held<T>(
    path: &Path,
    options: &OpenOptions,
    mut attempt: impl FnMut() -> Result<T, DatabaseError>,
) -> Result<Result<T, DatabaseError>, BackendError> {
    let started = Instant::now();
    let mut pause = FIRST_RETRY;
    let mut notice = options.notice.as_ref();
    loop {
        match attempt() {
            // Both mean another handle has the file open; the second one runs an older redb.
            Err(DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch) => {
                let waited = started.elapsed();
                if waited >= options.wait {
                    return Err(BackendError::Busy { path: path.to_owned(), holder: read_holder(path), waited });
                }
                if waited >= NOTICE_AFTER
                    && let Some(WaitNotice(tell)) = notice.take()
                {
                    tell(read_holder(path).as_deref());
                }
                thread::sleep(pause.min(options.wait.saturating_sub(waited)));
                pause = (pause * 2).min(LONGEST_RETRY);
            }
            other => return Ok(other),
        }
    }
}

/// `<db>.holder`: the text of whoever holds the store open.
fn holder_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".holder");
    PathBuf::from(name)
}

/// The holder's text, when the holder file exists and holds something an opener could have
/// written.
fn read_holder(db: &Path) -> Option<String> {
    let text = fs::read_to_string(holder_path(db)).ok()?;
    let text = text.trim();
    let plausible = !text.is_empty() && text.len() <= LONGEST_HOLDER && !text.chars().any(char::is_control);
    plausible.then(|| text.to_owned())
}

fn engine_error(path: &Path, error: redb::Error) -> BackendError {
    match error {
        redb::Error::Corrupted(detail) => BackendError::Corrupt { path: path.to_owned(), detail },
        // redb reports a file that is not a redb database (wrong magic number) as invalid data,
        // and one cut short inside its header as an unexpected end, rather than as corruption.
        redb::Error::Io(source)
            if matches!(source.kind(), std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof) =>
        {
            BackendError::Corrupt { path: path.to_owned(), detail: source.to_string() }
        }
        redb::Error::Io(source) => BackendError::Io { path: path.to_owned(), source },
        other => BackendError::Storage(other.to_string()),
    }
}

#[cfg(test)]
mod tests;
