//! Where a server keeps its data: a data directory (a redb store per org, opened on first use
//! and kept open, and `tokens.json`) or a PostgreSQL database that other replicas may share.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

use super::tokens::Tokens;
use crate::backend::{BackendError, StoreBackend};
use crate::store::AnyStorage;
use crate::store::postgres::PgStore;
use crate::store::redb::{Changes, OpenOptions, RedbStorage, Store};

/// The orgs that have a store in data directory `data`, by name.
pub fn org_names(data: &Path) -> Vec<String> {
    let mut names = Vec::new();
    if let Ok(entries) = std::fs::read_dir(data.join("orgs")) {
        for entry in entries.flatten() {
            if entry.path().join("store.db").is_file()
                && let Some(name) = entry.file_name().to_str()
            {
                names.push(name.to_owned());
            }
        }
    }
    names.sort();
    names
}

/// Where org `org`'s store is in data directory `data`.
pub fn org_store(data: &Path, org: &str) -> PathBuf {
    data.join("orgs").join(org).join("store.db")
}

/// A backend over one org of the server's store, acting for a caller.
pub type ServerBackend = StoreBackend<AnyStorage>;

/// Where a server keeps its data.
pub enum Stores {
    /// A data directory: `tokens.json`, and a redb store per org under `orgs/<org>/store.db`,
    /// opened on first use and kept open.
    Files {
        /// The directory.
        data: PathBuf,
        /// Each org store's page cache, in bytes.
        cache: usize,
        /// The org stores opened so far.
        open: Mutex<HashMap<String, Arc<Store>>>,
        /// Told of every execution change in every org.
        changes: Changes,
    },
    /// A PostgreSQL database that other replicas may share.
    Postgres(PgStore),
}

impl Stores {
    /// The stores of a data directory, each org's page cache bounded to `cache` bytes.
    pub fn files(data: PathBuf, cache: usize) -> Self {
        Self::Files { data, cache, open: Mutex::new(HashMap::new()), changes: Changes::new() }
    }
}

impl Stores {
    /// The token registry that goes with the data.
    pub fn tokens(&self) -> Tokens {
        match self {
            Self::Files { data, .. } => Tokens::in_dir(data),
            Self::Postgres(database) => Tokens::in_database(database.tokens()),
        }
    }

    /// What says an execution was queued, in any org.
    pub fn queue_changes(&self) -> &Changes {
        match self {
            Self::Files { changes, .. } => changes,
            Self::Postgres(database) => database.queue_changes(),
        }
    }

    /// The database, when the data is in one.
    pub fn database(&self) -> Option<&PgStore> {
        match self {
            Self::Postgres(database) => Some(database),
            Self::Files { .. } => None,
        }
    }

    /// Whether the data can be served: the org stores open, or the database answers.
    ///
    /// # Errors
    /// Why it cannot.
    pub async fn ready(&self) -> Result<(), BackendError> {
        match self {
            Self::Postgres(database) => database.ping().await,
            Self::Files { data, .. } => {
                for org in org_names(data) {
                    self.storage(&org).await?;
                }
                Ok(())
            }
        }
    }

    /// Every org that has data, by name.
    ///
    /// # Errors
    /// The database failed.
    pub async fn orgs(&self) -> Result<Vec<String>, BackendError> {
        match self {
            Self::Files { data, .. } => Ok(org_names(data)),
            Self::Postgres(database) => database.orgs().await,
        }
    }

    /// The org's store: its file, opened on first use and kept open, or its rows.
    ///
    /// # Errors
    /// The store cannot be opened, or the database failed.
    pub async fn storage(&self, org: &str) -> Result<AnyStorage, BackendError> {
        let (data, cache, open, changes) = match self {
            Self::Postgres(database) => return Ok(AnyStorage::Postgres(database.org(org).await?)),
            Self::Files { data, cache, open, changes } => (data, *cache, open, changes),
        };
        let mut stores = open.lock().await;
        if let Some(store) = stores.get(org) {
            return Ok(AnyStorage::Redb(RedbStorage::kept_open(store.clone())));
        }
        let path = org_store(data, org);
        let mut options =
            OpenOptions::new(Duration::from_secs(5), format!("stigmer server (pid {})", std::process::id()));
        options.changes = Some(changes.clone());
        let store = tokio::task::spawn_blocking(move || Store::open_with_cache(&path, &options, Some(cache)))
            .await
            .map_err(|e| BackendError::Storage(format!("opening the org's store did not finish: {e}")))??;
        let store = Arc::new(store);
        stores.insert(org.to_owned(), store.clone());
        Ok(AnyStorage::Redb(RedbStorage::kept_open(store)))
    }

    /// Closes the stores.
    pub async fn close(&self) {
        match self {
            Self::Files { open, .. } => open.lock().await.clear(),
            Self::Postgres(database) => database.close().await,
        }
    }
}
