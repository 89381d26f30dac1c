//! What the resource pages list, read once per store version: every resource's name, kind,
//! generation, owner, labels and references — not its manifest. The store's version moves with
//! every committed change, so a catalog is current as long as the version it was read at is;
//! reading the version is one small read, the whole list one large one.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

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
                let references = AnyResource::from_value(resource.kind, resource.manifest.clone())
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

/// A catalog, with the store version it was read at.
type AtVersion = (u64, Arc<Catalog>);

/// The catalogs read so far, per org.
#[derive(Debug, Default)]
pub(crate) struct Catalogs(Mutex<HashMap<Option<String>, AtVersion>>);

impl Catalogs {
    /// The catalog of `backend` (org `org`) as it stands: the one read before while the store's
    /// version has not moved, else read again.
    pub async fn current<B: Backend>(&self, org: Option<&str>, backend: &B) -> Result<Arc<Catalog>, BackendError> {
        let version = backend.version().await?;
        let key = org.map(str::to_owned);
        if let Ok(catalogs) = self.0.lock()
            && let Some((at, catalog)) = catalogs.get(&key)
            && *at == version
        {
            return Ok(catalog.clone());
        }
        let catalog = Arc::new(Catalog::of(&backend.list(&ResourceQuery::all()).await?));
        if let Ok(mut catalogs) = self.0.lock() {
            catalogs.insert(key, (version, catalog.clone()));
        }
        Ok(catalog)
    }
}
