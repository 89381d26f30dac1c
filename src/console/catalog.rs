//! What the resource pages list, read once per store version: every resource's name, kind,
//! generation, owner, labels and references — not its manifest. The store's version moves with
//! every committed change, so a catalog is current as long as the version it was read at is;
//! reading the version is one small read, the whole list one large one.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;

use crate::backend::{Backend, BackendError, ResourceQuery, StoredResource};
use crate::model::{AnyResource, Kind};

/// One resource, as lists show it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub kind: Kind,
    pub name: String,
    pub generation: u64,
    pub updated_at: Timestamp,
    pub apply_set: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// What it references: the kinds the target may be, and its name.
    pub references: Vec<(&'static [Kind], String)>,
}

/// Every resource of a store at one version.
#[derive(Debug, Default)]
pub(crate) struct Catalog {
    pub entries: Vec<Entry>,
}

impl Catalog {
    fn of(resources: &[StoredResource]) -> Self {
        let entries = resources
            .iter()
            .map(|resource| {
                let labels = resource
                    .manifest
                    .pointer("/metadata/labels")
                    .and_then(serde_json::Value::as_object)
                    .map(|labels| {
                        labels.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect()
                    })
                    .unwrap_or_default();
                let references = AnyResource::from_value(resource.kind, serde_json::Value::clone(&resource.manifest))
                    .map(|typed| {
                        typed.references().into_iter().filter(|r| !r.by_id).map(|r| (r.kinds, r.name)).collect()
                    })
                    .unwrap_or_default();
                Entry {
                    kind: resource.kind,
                    name: resource.name.clone(),
                    generation: resource.generation,
                    updated_at: resource.updated_at,
                    apply_set: resource.apply_set.clone(),
                    labels,
                    references,
                }
            })
            .collect();
        Self { entries }
    }

    /// The resources of `kind`, by name.
    pub fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(move |entry| entry.kind == kind)
    }

    /// The resources that reference `kind/name`.
    pub fn referrers(&self, kind: Kind, name: &str) -> impl Iterator<Item = &Entry> {
        self.entries
            .iter()
            .filter(move |entry| entry.references.iter().any(|(kinds, n)| kinds.contains(&kind) && n == name))
    }

    /// The resource `name` of one of `kinds`, the first kind first.
    pub fn find(&self, kinds: &[Kind], name: &str) -> Option<&Entry> {
        kinds.iter().find_map(|kind| self.of_kind(*kind).find(|entry| entry.name == name))
    }

    /// How many resources of each kind, in dependency order.
    pub fn counts(&self) -> Vec<(Kind, usize)> {
        Kind::DECLARATIVE.iter().map(|kind| (*kind, self.of_kind(*kind).count())).collect()
    }
}

/// How often a catalog that is being read is brought up to date in the background.
const REFRESH: Duration = Duration::from_millis(500);

/// A catalog nobody has read for this long is no longer brought up to date.
const IDLE: Duration = Duration::from_mins(10);

/// A catalog, with the store version it was read at.
#[derive(Debug)]
struct Kept {
    version: u64,
    catalog: Arc<Catalog>,
    /// When a page last read it.
    read_at: Instant,
    /// Whether a task brings it up to date.
    refreshed: bool,
}

type Kepts = Arc<Mutex<HashMap<Option<String>, Kept>>>;

/// The catalogs read so far, per org, each kept up to date while pages read it: a task per org
/// watches the store's version (a slow poll of one small read) and reads the catalog again when
/// it moves, so the page after an apply finds it read already — an informer, as kube-rs has.
#[derive(Debug, Default)]
pub(crate) struct Catalogs(Kepts);

impl Catalogs {
    /// The catalog of `backend` (org `org`) as it stands: the one read before while the store's
    /// version has not moved, else read again.
    pub async fn current<B>(&self, org: Option<&str>, backend: &B) -> Result<Arc<Catalog>, BackendError>
    where
        B: Backend + Clone + Send + Sync + 'static,
    {
        let version = backend.version().await?;
        let key = org.map(str::to_owned);
        if let Ok(mut kept) = self.0.lock()
            && let Some(kept) = kept.get_mut(&key)
            && kept.version == version
        {
            kept.read_at = Instant::now();
            return Ok(kept.catalog.clone());
        }
        let catalog = Arc::new(Catalog::of(&backend.list(&ResourceQuery::all()).await?));
        let start_refreshing = if let Ok(mut kepts) = self.0.lock() {
            let refreshed = kepts.get(&key).is_some_and(|kept| kept.refreshed);
            kepts.insert(
                key.clone(),
                Kept { version, catalog: catalog.clone(), read_at: Instant::now(), refreshed: true },
            );
            !refreshed
        } else {
            false
        };
        if start_refreshing {
            tokio::spawn(refresh(self.0.clone(), key, backend.clone()));
        }
        Ok(catalog)
    }
}

/// Reads `key`'s catalog again whenever the store's version moves, until nobody reads it.
async fn refresh<B: Backend>(kepts: Kepts, key: Option<String>, backend: B) {
    loop {
        tokio::time::sleep(REFRESH).await;
        let known = match kepts.lock() {
            Ok(mut kepts) => match kepts.get_mut(&key) {
                Some(kept) if kept.read_at.elapsed() > IDLE => {
                    kept.refreshed = false;
                    return;
                }
                Some(kept) => kept.version,
                None => return,
            },
            Err(_) => return,
        };
        // A store that cannot be read now is tried again at the next round; pages say why.
        let Ok(version) = backend.version().await else { continue };
        if version == known {
            continue;
        }
        let Ok(resources) = backend.list(&ResourceQuery::all()).await else { continue };
        let catalog = Arc::new(Catalog::of(&resources));
        if let Ok(mut kepts) = kepts.lock()
            && let Some(kept) = kepts.get_mut(&key)
            && kept.version < version
        {
            kept.version = version;
            kept.catalog = catalog;
        }
    }
}
