//! What an apply batch does, decided once for every store: each write's precondition checked
//! against the state the earlier writes left (so a batch may delete a resource and create it
//! again), the resources as they end up, a revision and an audit entry per write, and which
//! apply set's inventory each resource leaves or joins. A store reads the resources a batch
//! touches, asks [`decide`], and writes the outcome in the same transaction.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use jiff::Timestamp;

use super::storage::Author;
use super::{
    ApplyBatch, AuditEntry, BackendError, Moved, Revision, RevisionAction, StoredResource, Write, Written, address,
};
use crate::model::{Kind, canonical};

/// A resource's identity within an org.
pub type ResourceKey = (Kind, String);

/// What a batch writes, once every precondition held.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Each write, with the generation it produced.
    pub written: Vec<Written>,
    /// One revision per write, in order.
    pub revisions: Vec<Revision>,
    /// One audit entry per write, in order.
    pub audit: Vec<AuditEntry>,
    /// Each touched resource as it ends up: `None` when the batch leaves it deleted.
    pub resources: BTreeMap<ResourceKey, Option<StoredResource>>,
    /// Each resource whose apply set changed: the set it leaves, the set it joins.
    pub owners: Vec<(ResourceKey, Option<String>, Option<String>)>,
    /// Each rename: the old key, the new one. The store moves the old key's revisions to the
    /// new one, and an agent's executions; [`follow_renames`] moves its sessions.
    pub renames: Vec<(ResourceKey, ResourceKey)>,
}

/// The resources a batch touches, each once, in the order it first names them.
pub fn touched(batch: &ApplyBatch) -> Vec<ResourceKey> {
    let mut keys: Vec<ResourceKey> = Vec::new();
    let mut seen = HashSet::new();
    for item in &batch.items {
        let renamed = match &item.write {
            Write::Rename { from, .. } => Some(from.as_str()),
            _ => None,
        };
        for name in std::iter::once(item.name.as_str()).chain(renamed) {
            if seen.insert((item.kind, name)) {
                keys.push((item.kind, name.to_owned()));
            }
        }
    }
    keys
}

/// Decides what `batch` does to the resources it touches, which stand as `before` (absent ones
/// do not exist), for `author` at `now`.
///
/// # Errors
/// [`BackendError::Conflict`] naming every resource whose precondition does not hold.
pub fn decide(
    batch: &ApplyBatch,
    before: &BTreeMap<ResourceKey, StoredResource>,
    author: Author<'_>,
    now: Timestamp,
) -> Result<Outcome, BackendError> {
    let mut now_stand: BTreeMap<ResourceKey, Option<StoredResource>> = BTreeMap::new();
    let mut outcome = Outcome::default();
    let mut moved = Vec::new();
    for item in &batch.items {
        let key = (item.kind, item.name.clone());
        let current = match now_stand.get(&key) {
            Some(current) => current.clone(),
            None => before.get(&key).cloned(),
        };
        let (action, after) = match (&item.write, current) {
            (Write::Create { manifest }, None) => {
                let resource = StoredResource {
                    kind: item.kind,
                    name: item.name.clone(),
                    uid: uuid::Uuid::new_v4().to_string(),
                    generation: 1,
                    created_at: now,
                    updated_at: now,
                    hash: canonical::hash(manifest),
                    apply_set: batch.apply_set.clone(),
                    manifest: Arc::clone(manifest),
                    status: None,
                };
                (if batch.correcting { RevisionAction::Corrected } else { RevisionAction::Created }, Some(resource))
            }
            (Write::Update { manifest, expected_generation }, Some(existing))
                if existing.generation == *expected_generation =>
            {
                let resource = StoredResource {
                    generation: existing.generation + 1,
                    updated_at: now,
                    hash: canonical::hash(manifest),
                    apply_set: batch.apply_set.clone(),
                    manifest: Arc::clone(manifest),
                    ..existing
                };
                (if batch.correcting { RevisionAction::Corrected } else { RevisionAction::Updated }, Some(resource))
            }
            (Write::Rename { from, manifest, expected_generation }, None) => {
                let old_key = (item.kind, from.clone());
                let old = match now_stand.get(&old_key) {
                    Some(current) => current.clone(),
                    None => before.get(&old_key).cloned(),
                };
                let Some(existing) = old.filter(|old| old.generation == *expected_generation) else {
                    let found = now_stand.get(&old_key).cloned().unwrap_or_else(|| before.get(&old_key).cloned());
                    moved.push(Moved {
                        address: address(item.kind, from),
                        expected: Some(*expected_generation),
                        found: found.map(|resource| resource.generation),
                    });
                    continue;
                };
                let resource = StoredResource {
                    name: item.name.clone(),
                    generation: existing.generation + 1,
                    updated_at: now,
                    hash: canonical::hash(manifest),
                    apply_set: batch.apply_set.clone(),
                    manifest: Arc::clone(manifest),
                    ..existing
                };
                now_stand.insert(old_key.clone(), None);
                outcome.renames.push((old_key, key.clone()));
                (RevisionAction::Renamed, Some(resource))
            }
            (Write::Delete { expected_generation }, Some(existing)) if existing.generation == *expected_generation => {
                // The revision of a deletion keeps the last manifest it had.
                outcome.push(&key, RevisionAction::Deleted, &existing, batch, author, now);
                now_stand.insert(key, None);
                continue;
            }
            (write, current) => {
                // A rename whose new name is taken is refused as a create would be.
                let expected = match write {
                    Write::Create { .. } | Write::Rename { .. } => None,
                    Write::Update { expected_generation, .. } | Write::Delete { expected_generation } => {
                        Some(*expected_generation)
                    }
                };
                let found = current.map(|resource| resource.generation);
                moved.push(Moved { address: address(item.kind, &item.name), expected, found });
                continue;
            }
        };
        if let Some(resource) = &after {
            outcome.push(&key, action, resource, batch, author, now);
        }
        now_stand.insert(key, after);
    }
    if !moved.is_empty() {
        return Err(BackendError::Conflict { moved });
    }
    for (key, after) in &now_stand {
        let from = before.get(key).and_then(|resource| resource.apply_set.clone());
        let to = after.as_ref().and_then(|resource| resource.apply_set.clone());
        if from != to {
            outcome.owners.push((key.clone(), from, to));
        }
    }
    outcome.resources = now_stand;
    Ok(outcome)
}

/// Moves the sessions of renamed agents (and agent instances) to their new names: each session
/// among `sessions` whose `agentRef` names an old name is rewritten, with a revision and an
/// audit entry, in the batch's transaction; it keeps its own apply set.
pub fn follow_renames(outcome: &mut Outcome, sessions: &[StoredResource], author: Author<'_>, now: Timestamp) {
    let renamed: Vec<(String, String)> = outcome
        .renames
        .iter()
        .filter(|((kind, _), _)| matches!(kind, Kind::Agent | Kind::AgentInstance))
        .map(|((_, from), (_, to))| (from.clone(), to.clone()))
        .collect();
    for session in sessions.iter().filter(|s| s.kind == Kind::Session) {
        let reference = &session.manifest["spec"]["agentRef"];
        let named = reference.as_str().or_else(|| reference["name"].as_str());
        let Some((_, to)) = renamed.iter().find(|(from, _)| Some(from.as_str()) == named) else { continue };
        let mut manifest = serde_json::Value::clone(&session.manifest);
        match &mut manifest["spec"]["agentRef"] {
            serde_json::Value::String(name) => name.clone_from(to),
            reference => reference["name"] = serde_json::Value::from(to.as_str()),
        }
        let resource = StoredResource {
            generation: session.generation + 1,
            updated_at: now,
            hash: canonical::hash(&manifest),
            manifest: Arc::new(manifest),
            ..session.clone()
        };
        // The session keeps its own set: it follows its agent, it does not join the batch's.
        let own = ApplyBatch { apply_set: session.apply_set.clone(), ..ApplyBatch::default() };
        outcome.push(&(Kind::Session, session.name.clone()), RevisionAction::Updated, &resource, &own, author, now);
        outcome.resources.insert((Kind::Session, session.name.clone()), Some(resource));
    }
}

impl Outcome {
    /// Records one write of `resource` (for a deletion, as it was).
    fn push(
        &mut self,
        key: &ResourceKey,
        action: RevisionAction,
        resource: &StoredResource,
        batch: &ApplyBatch,
        author: Author<'_>,
        now: Timestamp,
    ) {
        let (kind, name) = key.clone();
        self.revisions.push(Revision {
            kind,
            name: name.clone(),
            generation: resource.generation,
            action,
            at: now,
            apply_set: batch.apply_set.clone(),
            actor: author.actor.to_owned(),
            hash: resource.hash.clone(),
            manifest: resource.manifest.clone(),
        });
        self.audit.push(AuditEntry {
            at: now,
            action,
            target: address(kind, &name),
            actor: author.actor.to_owned(),
            apply_set: batch.apply_set.clone(),
            address: author.address.map(str::to_owned),
            detail: None,
        });
        self.written.push(Written { kind, name, generation: resource.generation, action });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::BatchItem;

    fn item(kind: Kind, name: &str, write: Write) -> BatchItem {
        BatchItem { kind, name: name.to_owned(), write }
    }

    #[test]
    fn touched_names_each_key_once_in_the_order_first_named() {
        let manifest = Arc::new(serde_json::json!({}));
        let batch = ApplyBatch {
            items: vec![
                item(Kind::Agent, "b", Write::Delete { expected_generation: 1 }),
                item(Kind::Agent, "b", Write::Create { manifest: Arc::clone(&manifest) }),
                item(Kind::Skill, "b", Write::Create { manifest: Arc::clone(&manifest) }),
                item(Kind::Agent, "new", Write::Rename { from: "a".into(), manifest, expected_generation: 2 }),
                item(Kind::Agent, "a", Write::Delete { expected_generation: 3 }),
            ],
            ..ApplyBatch::default()
        };
        let keys = touched(&batch);
        let expected = [(Kind::Agent, "b"), (Kind::Skill, "b"), (Kind::Agent, "new"), (Kind::Agent, "a")];
        assert_eq!(keys, expected.map(|(kind, name)| (kind, name.to_owned())));
    }
}
