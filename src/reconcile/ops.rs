//! Changes made by name rather than from manifests — delete, rollback, create by hand — planned
//! like an apply so the same preconditions and reference checks hold.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::ReconcileError;
use super::canonical;
use super::plan::{Change, Plan, order};
use crate::backend::{Revision, StoredResource, address};
use crate::model::{AnyResource, Kind, Reference};

/// Plans deleting `targets`, refusing while a resource that stays references one of them.
///
/// # Errors
/// A target that does not exist, or one that a remaining resource references.
pub fn plan_delete(targets: &[(Kind, String)], observed: &[StoredResource]) -> Result<Plan, ReconcileError> {
    let doomed: BTreeSet<(Kind, &str)> = targets.iter().map(|(k, n)| (*k, n.as_str())).collect();
    let mut changes = Vec::new();
    for (kind, name) in targets {
        let current = observed
            .iter()
            .find(|r| r.kind == *kind && &r.name == name)
            .ok_or_else(|| ReconcileError::NotFound { address: address(*kind, name) })?;
        if changes.iter().any(|c: &Change| c.kind() == *kind && c.name() == name) {
            continue;
        }
        changes.push(Change::Delete {
            kind: *kind,
            name: name.clone(),
            before: Arc::clone(&current.manifest),
            generation: current.generation,
        });
    }
    // Each remaining resource's references, read once for all targets.
    let remaining = outgoing(observed.iter().filter(|r| !doomed.contains(&(r.kind, r.name.as_str()))));
    for (kind, name) in &doomed {
        let referrers = referrers_in(&remaining, *kind, name);
        if !referrers.is_empty() {
            return Err(ReconcileError::Referenced { target: address(*kind, name), referrers });
        }
    }
    order(&mut changes);
    Ok(Plan { apply_set: None, changes })
}

/// The addresses of the stored resources that reference `kind/name`.
#[must_use]
pub fn referrers(observed: &[StoredResource], kind: Kind, name: &str) -> Vec<String> {
    referrers_in(&outgoing(observed.iter()), kind, name)
}

/// Each resource's address with the references it makes.
fn outgoing<'a>(resources: impl Iterator<Item = &'a StoredResource>) -> Vec<(String, Vec<Reference>)> {
    resources
        .filter_map(|r| AnyResource::from_value(r.kind, serde_json::Value::clone(&r.manifest)).ok())
        .map(|r| (r.address(), r.references()))
        .collect()
}

fn referrers_in(outgoing: &[(String, Vec<Reference>)], kind: Kind, name: &str) -> Vec<String> {
    outgoing
        .iter()
        .filter(|(_, references)| references.iter().any(|r| r.name == name && r.kinds.contains(&kind)))
        .map(|(address, _)| address.clone())
        .collect()
}

/// Plans re-applying the manifest of generation `to` as a new generation, keeping the owner.
/// Generations start again at 1 when a deleted resource is created again: `to` names one of
/// the current life's, the latest revision that produced it.
///
/// # Errors
/// The resource or the generation does not exist.
pub fn plan_rollback(
    current: Option<&StoredResource>,
    history: &[Revision],
    kind: Kind,
    name: &str,
    to: u64,
) -> Result<Plan, ReconcileError> {
    let current = current.ok_or_else(|| ReconcileError::NotFound { address: address(kind, name) })?;
    let revision = history
        .iter()
        .rev()
        .find(|r| r.generation == to && r.action != crate::backend::RevisionAction::Deleted)
        .ok_or_else(|| ReconcileError::NoSuchRevision {
            address: address(kind, name),
            generation: to,
            available: history.iter().map(|r| r.generation).collect(),
        })?;
    let hash = canonical::hash(&revision.manifest);
    let change = if hash == current.hash {
        Change::Unchanged { kind, name: name.to_owned(), generation: current.generation }
    } else {
        Change::Update {
            kind,
            name: name.to_owned(),
            before: Arc::clone(&current.manifest),
            after: Arc::clone(&revision.manifest),
            generation: current.generation,
            previous_owner: None,
        }
    };
    Ok(Plan { apply_set: current.apply_set.clone(), changes: vec![change] })
}

/// Plans creating one resource by hand: it belongs to no apply set, so no prune touches it.
///
/// # Errors
/// The resource exists already, or it references something that does not exist.
pub fn plan_create(resource: &AnyResource, observed: &[StoredResource]) -> Result<Plan, ReconcileError> {
    let address = resource.address();
    if observed.iter().any(|r| r.kind == resource.kind() && r.name == resource.name()) {
        return Err(ReconcileError::AlreadyExists { address });
    }
    for reference in resource.references() {
        let exists = observed.iter().any(|r| reference.kinds.contains(&r.kind) && r.name == reference.name);
        if !exists {
            let kind = reference.kinds.first().copied().unwrap_or(Kind::Agent);
            return Err(ReconcileError::Dangling {
                referrer: address,
                target: crate::backend::address(kind, &reference.name),
            });
        }
    }
    let change = Change::Create {
        kind: resource.kind(),
        name: resource.name().to_owned(),
        after: crate::model::canonical::manifest(resource).into(),
    };
    Ok(Plan { apply_set: None, changes: vec![change] })
}
