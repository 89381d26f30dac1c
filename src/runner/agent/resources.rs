//! Where preparing an agent reads the resources it needs: a backend, or a [`Snapshot`] of
//! them taken when the execution was created. A queued execution carries its snapshot, so the
//! worker that runs it needs no read access to the org's resources (a `worker` token has none),
//! and the run uses the agent as it was when it was asked for, whatever is applied meanwhile.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::prepare::{self, PrepareError, Target};
use crate::backend::{Backend, BackendError, address};
use crate::model::{AnyResource, Kind};

/// Reads stored manifests by kind and name.
pub trait Resources: Sync {
    /// The manifest of `kind/name`, or `None` when it is not stored.
    fn manifest(&self, kind: Kind, name: &str) -> impl Future<Output = Result<Option<Value>, BackendError>> + Send;
}

impl<B: Backend> Resources for B {
    async fn manifest(&self, kind: Kind, name: &str) -> Result<Option<Value>, BackendError> {
        Ok(self.get(kind, name).await?.map(|stored| stored.manifest))
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
    /// The target `name` (an agent, or an agent instance) as `resources` hold it now, with
    /// everything it uses.
    ///
    /// # Errors
    /// Something it needs is missing or does not read as its kind, or the backend failed.
    pub async fn take<R: Resources>(resources: &R, name: &str) -> Result<(Self, Target), PrepareError> {
        let recording = Recording { resources, seen: Mutex::default() };
        let target = prepare::target(&recording, name).await?;
        let mut agents = vec![target.spec.clone()];
        while let Some(spec) = agents.pop() {
            for reference in crate::model::ResourceSpec::references(&spec) {
                let Some(&kind) = reference.kinds.first() else { continue };
                if reference.by_id || recording.has(kind, &reference.name) {
                    continue;
                }
                // Missing ones are left out: preparing says which, and who needs it.
                let manifest = recording.manifest(kind, &reference.name).await?;
                if kind == Kind::Agent
                    && let Some(manifest) = manifest
                    && let Ok(AnyResource::Agent(agent)) = AnyResource::from_value(Kind::Agent, manifest)
                {
                    agents.push(agent.spec);
                }
            }
        }
        let seen = recording.seen.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok((Self(seen), target))
    }
}

/// Reads through to `resources` and keeps what it read.
struct Recording<'a, R> {
    resources: &'a R,
    seen: Mutex<BTreeMap<String, Value>>,
}

impl<R> Recording<'_, R> {
    fn has(&self, kind: Kind, name: &str) -> bool {
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
