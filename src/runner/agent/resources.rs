//! Where preparing an agent reads the resources it needs: a backend, or a [`Snapshot`] of
//! them taken when the execution was created. A queued execution carries its snapshot, so the
//! worker that runs it needs no read access to the org's resources (a `worker` token has none),
//! and the run uses the agent as it was when it was asked for, whatever is applied meanwhile.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::backend::{Backend, BackendError, address};
use crate::model::Kind;

/// Reads stored manifests by kind and name.
pub trait Resources: Sync {
    /// The manifest of `kind/name`, or `None` when it is not stored.
    fn manifest(&self, kind: Kind, name: &str) -> impl Future<Output = Result<Option<Value>, BackendError>> + Send;
}

impl<B: Backend> Resources for B {
    async fn manifest(&self, kind: Kind, name: &str) -> Result<Option<Value>, BackendError> {
        Ok(self.get(kind, name).await?.map(|stored| Arc::unwrap_or_clone(stored.manifest)))
    }
}

/// The manifests an agent run reads, by address (`agent/lead`, `skill/house-style`): the target,
/// its instance's environments, its MCP servers, skills and referenced sub-agents, all the way
/// down.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Snapshot(BTreeMap<String, Value>);

impl Resources for Snapshot {
    async fn manifest(&self, kind: Kind, name: &str) -> Result<Option<Value>, BackendError> {
        Ok(self.0.get(&address(kind, name)).cloned())
    }
}

impl Snapshot {
    /// A snapshot of the manifests read through `recording`.
    pub fn of(recording: Recording<'_, impl Resources>) -> Self {
        Self(recording.seen.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

/// Reads through to `resources` and keeps what it read, for a [`Snapshot`].
pub struct Recording<'a, R> {
    resources: &'a R,
    seen: Mutex<BTreeMap<String, Value>>,
}

impl<'a, R> Recording<'a, R> {
    /// Reads through to `resources`, keeping nothing yet.
    pub fn new(resources: &'a R) -> Self {
        Self { resources, seen: Mutex::default() }
    }

    /// Whether `kind/name` was read already.
    pub fn has(&self, kind: Kind, name: &str) -> bool {
        self.seen.lock().is_ok_and(|seen| seen.contains_key(&address(kind, name)))
    }
}

impl<R: Resources> Resources for Recording<'_, R> {
    async fn manifest(&self, kind: Kind, name: &str) -> Result<Option<Value>, BackendError> {
        let manifest = self.resources.manifest(kind, name).await?;
        if let (Some(manifest), Ok(mut seen)) = (&manifest, self.seen.lock()) {
            seen.insert(address(kind, name), manifest.clone());
        }
        Ok(manifest)
    }
}
