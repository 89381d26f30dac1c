//! `plan(desired, observed, options)`: a pure function from what the manifests declare and what
//! the backend holds to the changes that make them equal, in dependency order, each carrying
//! the generation it saw as a precondition.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;
use serde_json::Value;

use std::sync::Arc;

use crate::backend::{ApplyBatch, BatchItem, ResourceHead, StoredResource, Write, address};
use crate::manifest::Moved;
use crate::model::canonical::Canonical;
use crate::model::{AnyResource, Kind};

/// A resource the manifests declare, in canonical form.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    /// The typed resource.
    pub resource: Arc<AnyResource>,
    /// Its canonical manifest and content hash.
    pub canonical: Arc<Canonical>,
}

impl Desired {
    /// The canonical form of a resource.
    #[must_use]
    pub fn new(resource: AnyResource) -> Self {
        let canonical = Arc::new(Canonical::of(&resource));
        Self { resource: Arc::new(resource), canonical }
    }

    /// Its canonical manifest, made when a change needs it (shared by the plan and the batch).
    #[must_use]
    pub fn manifest(&self) -> Arc<Value> {
        Arc::new(crate::model::canonical::manifest(&self.resource))
    }
}

/// How to plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// The apply set the desired resources belong to (`None`: made by hand, not prunable).
    pub apply_set: Option<String>,
    /// Delete what the apply set owns and the manifests no longer declare.
    pub prune: bool,
    /// Take over resources that another apply set owns.
    pub force_ownership: bool,
    /// Renames the project file declares (`moved`); a resource's own `previousNames` count too.
    pub moved: Vec<Moved>,
}

/// One change, with what the plan saw.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "action")]
pub enum Change {
    /// The resource is new.
    Create {
        /// Kind.
        kind: Kind,
        /// Name.
        name: String,
        /// The manifest to store.
        after: Arc<Value>,
    },
    /// The resource exists and differs (in manifest or owner).
    Update {
        /// Kind.
        kind: Kind,
        /// Name.
        name: String,
        /// The stored manifest.
        before: Arc<Value>,
        /// The manifest to store.
        after: Arc<Value>,
        /// The generation seen.
        generation: u64,
        /// The owner it moves from, when the apply set changes (`Some(None)`: made by hand).
        #[serde(skip_serializing_if = "Option::is_none")]
        previous_owner: Option<Option<String>>,
    },
    /// A stored resource takes its new name (and the manifest declared under it), keeping its
    /// history, sessions and executions.
    Rename {
        /// Kind.
        kind: Kind,
        /// The new name.
        name: String,
        /// The old name.
        from: String,
        /// The stored manifest.
        before: Arc<Value>,
        /// The manifest to store.
        after: Arc<Value>,
        /// The generation seen.
        generation: u64,
    },
    /// The resource is pruned.
    Delete {
        /// Kind.
        kind: Kind,
        /// Name.
        name: String,
        /// The stored manifest.
        before: Arc<Value>,
        /// The generation seen.
        generation: u64,
    },
    /// The resource is as declared.
    Unchanged {
        /// Kind.
        kind: Kind,
        /// Name.
        name: String,
        /// Its generation.
        generation: u64,
    },
}

impl Change {
    /// The resource's kind.
    #[must_use]
    pub fn kind(&self) -> Kind {
        match self {
            Self::Create { kind, .. }
            | Self::Update { kind, .. }
            | Self::Rename { kind, .. }
            | Self::Delete { kind, .. }
            | Self::Unchanged { kind, .. } => *kind,
        }
    }

    /// The resource's name.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Self::Create { name, .. }
            | Self::Update { name, .. }
            | Self::Rename { name, .. }
            | Self::Delete { name, .. }
            | Self::Unchanged { name, .. } => name,
        }
    }

    /// `agent/support-bot`.
    #[must_use]
    pub fn address(&self) -> String {
        address(self.kind(), self.name())
    }

    /// What happens to the resource, in the words the CLI prints: `created`, `updated`,
    /// `deleted`, `unchanged`.
    #[must_use]
    pub fn verb(&self) -> &'static str {
        match self {
            Self::Create { .. } => "created",
            Self::Update { .. } => "updated",
            Self::Rename { .. } => "renamed",
            Self::Delete { .. } => "deleted",
            Self::Unchanged { .. } => "unchanged",
        }
    }

    /// The batch write this change needs, if any.
    #[must_use]
    pub fn write(&self) -> Option<Write> {
        match self {
            Self::Create { after, .. } => Some(Write::Create { manifest: after.clone() }),
            Self::Update { after, generation, .. } => {
                Some(Write::Update { manifest: after.clone(), expected_generation: *generation })
            }
            Self::Rename { from, after, generation, .. } => {
                Some(Write::Rename { from: from.clone(), manifest: after.clone(), expected_generation: *generation })
            }
            Self::Delete { generation, .. } => Some(Write::Delete { expected_generation: *generation }),
            Self::Unchanged { .. } => None,
        }
    }
}

#[allow(clippy::trivially_copy_pass_by_ref, reason = "serde's skip_serializing_if takes a reference")]
fn is_zero(count: &usize) -> bool {
    *count == 0
}

/// How many of each change a plan holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Creates.
    pub created: usize,
    /// Updates.
    pub updated: usize,
    /// Renames.
    #[serde(skip_serializing_if = "is_zero")]
    pub renamed: usize,
    /// Deletes.
    pub deleted: usize,
    /// Unchanged.
    pub unchanged: usize,
}

/// The changes that make the backend hold what the manifests declare.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// The apply set the changes are made for.
    pub apply_set: Option<String>,
    /// Every change, creates and updates in dependency order, then deletes in reverse order;
    /// unchanged resources in dependency order among them.
    pub changes: Vec<Change>,
}

impl Plan {
    /// How many of each change.
    #[must_use]
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for change in &self.changes {
            match change {
                Change::Create { .. } => counts.created += 1,
                Change::Update { .. } => counts.updated += 1,
                Change::Rename { .. } => counts.renamed += 1,
                Change::Delete { .. } => counts.deleted += 1,
                Change::Unchanged { .. } => counts.unchanged += 1,
            }
        }
        counts
    }

    /// Whether applying would change anything.
    #[must_use]
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| !matches!(c, Change::Unchanged { .. }))
    }

    /// The batch that applies this plan (unchanged resources are not sent).
    #[must_use]
    pub fn to_batch(&self, dry_run: bool) -> ApplyBatch {
        self.batch(dry_run, false)
    }

    /// The batch that puts back drifted resources: its revisions say `corrected`.
    #[must_use]
    pub fn to_correcting_batch(&self) -> ApplyBatch {
        self.batch(false, true)
    }

    fn batch(&self, dry_run: bool, correcting: bool) -> ApplyBatch {
        let items = self
            .changes
            .iter()
            .filter_map(|c| Some(BatchItem { kind: c.kind(), name: c.name().to_owned(), write: c.write()? }))
            .collect();
        ApplyBatch { apply_set: self.apply_set.clone(), items, dry_run, correcting }
    }
}

/// Why no plan can be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// Resources belong to another apply set.
    #[error("{} {} owned by another apply set", list(.resources.iter().map(|(a, o)| format!("{a} (set \"{o}\")"))), if .resources.len() == 1 { "is" } else { "are" })]
    OwnedByAnotherSet {
        /// (address, owning set).
        resources: Vec<(String, String)>,
    },
    /// Pruning would delete resources that remaining ones still reference.
    #[error("prune would delete {}", list(.references.iter().map(|(target, referrer)| format!("{target}, which {referrer} references"))))]
    PruneBreaksReference {
        /// (deleted target, remaining referrer).
        references: Vec<(String, String)>,
    },
    /// `--prune` without an apply set.
    #[error("--prune needs an apply set: the directory has no stigmer.yaml and no --set was given")]
    PruneWithoutSet,
    /// A stored resource whose manifest the plan reads was gone when it was fetched.
    #[error("{address} changed while the plan was being made; run the command again")]
    ChangedWhilePlanning {
        /// `agent/support-bot`.
        address: String,
    },
}

/// The manifests of stored resources that a plan reads, by kind and name: the ones it
/// changes and, when pruning, the ones whose references a deletion could break. Unchanged
/// resources are planned from their heads alone.
#[derive(Debug, Default)]
pub struct StoredManifests<'a> {
    by_key: HashMap<(Kind, &'a str), &'a Arc<Value>>,
}

impl<'a> StoredManifests<'a> {
    /// The manifests of these stored resources.
    #[must_use]
    pub fn of(stored: &'a [StoredResource]) -> Self {
        Self { by_key: stored.iter().map(|r| ((r.kind, r.name.as_str()), &r.manifest)).collect() }
    }

    fn manifest(&self, head: &ResourceHead) -> Result<&'a Arc<Value>, PlanError> {
        self.by_key
            .get(&(head.kind, head.name.as_str()))
            .copied()
            .ok_or_else(|| PlanError::ChangedWhilePlanning { address: head.address() })
    }
}

/// Whether a stored resource is as declared and stays with its owner: a plan needs nothing
/// more of it than its head.
fn unchanged(wanted: &Desired, current: &ResourceHead, options: &PlanOptions) -> bool {
    current.hash == wanted.canonical.hash && current.apply_set == options.apply_set
}

/// The stored resources whose manifests [`plan_heads`] reads: every one not declared
/// unchanged, except undeclared ones that neither a prune nor a rename can touch.
#[must_use]
pub fn manifests_needed(desired: &[Desired], observed: &[ResourceHead], options: &PlanOptions) -> Vec<(Kind, String)> {
    let declared: HashMap<(Kind, &str), &Desired> =
        desired.iter().map(|d| ((d.resource.kind(), d.resource.name()), d)).collect();
    let previous: BTreeSet<(Kind, String)> = desired
        .iter()
        .flat_map(|wanted| previous_names(wanted, options).into_iter().map(|name| (wanted.resource.kind(), name)))
        .collect();
    observed
        .iter()
        .filter(|head| match declared.get(&(head.kind, head.name.as_str())) {
            Some(wanted) => !unchanged(wanted, head, options),
            None => options.prune || previous.contains(&(head.kind, head.name.clone())),
        })
        .map(|head| (head.kind, head.name.clone()))
        .collect()
}

fn list(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join("; ")
}

/// Plans the changes from `observed` to `desired`.
///
/// # Errors
/// Refuses to take over resources of another apply set (unless forced), to prune without an
/// apply set, and to prune resources that remaining resources reference.
pub fn plan(desired: &[Desired], observed: &[StoredResource], options: &PlanOptions) -> Result<Plan, PlanError> {
    let heads: Vec<ResourceHead> = observed.iter().map(StoredResource::head).collect();
    plan_heads(desired, &heads, &StoredManifests::of(observed), options)
}

/// [`plan`] from the stored resources' heads and the manifests [`manifests_needed`] names.
///
/// # Errors
/// As [`plan`]; also when a manifest it needs is missing from `stored`.
pub fn plan_heads(
    desired: &[Desired],
    observed: &[ResourceHead],
    manifests: &StoredManifests<'_>,
    options: &PlanOptions,
) -> Result<Plan, PlanError> {
    let observed_by_key: HashMap<(Kind, &str), &ResourceHead> =
        observed.iter().map(|r| ((r.kind, r.name.as_str()), r)).collect();
    let mut changes = Vec::new();
    let mut foreign = Vec::new();
    let declared: BTreeSet<(Kind, &str)> = desired.iter().map(|d| (d.resource.kind(), d.resource.name())).collect();
    // The stored resources that take a new name: not declared themselves, their new name free.
    let mut renamed_from: BTreeSet<(Kind, String)> = BTreeSet::new();
    for wanted in desired {
        let kind = wanted.resource.kind();
        let found = observed_by_key.get(&(kind, wanted.resource.name())).copied();
        let name = wanted.resource.name().to_owned();
        let Some(current) = found else {
            let old = previous_names(wanted, options).into_iter().find_map(|old| {
                let stored = observed_by_key.get(&(kind, old.as_str())).copied()?;
                (!declared.contains(&(kind, old.as_str())) && !renamed_from.contains(&(kind, old.clone())))
                    .then_some(stored)
            });
            match old {
                Some(stored)
                    if stored.apply_set != options.apply_set
                        && !options.force_ownership
                        && stored.apply_set.is_some() =>
                {
                    foreign.push((stored.address(), stored.apply_set.clone().unwrap_or_default()));
                }
                Some(stored) => {
                    renamed_from.insert((kind, stored.name.clone()));
                    changes.push(Change::Rename {
                        kind,
                        name,
                        from: stored.name.clone(),
                        before: Arc::clone(manifests.manifest(stored)?),
                        after: wanted.manifest(),
                        generation: stored.generation,
                    });
                }
                None => changes.push(Change::Create { kind, name, after: wanted.manifest() }),
            }
            continue;
        };
        let owner_changes = current.apply_set != options.apply_set;
        if owner_changes
            && !options.force_ownership
            && let Some(owner) = &current.apply_set
        {
            foreign.push((current.address(), owner.clone()));
            continue;
        }
        if unchanged(wanted, current, options) {
            changes.push(Change::Unchanged { kind, name, generation: current.generation });
        } else {
            changes.push(Change::Update {
                kind,
                name,
                before: Arc::clone(manifests.manifest(current)?),
                after: wanted.manifest(),
                generation: current.generation,
                previous_owner: owner_changes.then(|| current.apply_set.clone()),
            });
        }
    }
    if !foreign.is_empty() {
        return Err(PlanError::OwnedByAnotherSet { resources: foreign });
    }
    if options.prune {
        let Some(set) = &options.apply_set else { return Err(PlanError::PruneWithoutSet) };
        for current in observed {
            let renamed = renamed_from.contains(&(current.kind, current.name.clone()));
            if current.apply_set.as_ref() == Some(set)
                && !declared.contains(&(current.kind, current.name.as_str()))
                && !renamed
            {
                changes.push(Change::Delete {
                    kind: current.kind,
                    name: current.name.clone(),
                    before: Arc::clone(manifests.manifest(current)?),
                    generation: current.generation,
                });
            }
        }
        check_prune_references(desired, observed, manifests, &changes)?;
    }
    order(&mut changes);
    Ok(Plan { apply_set: options.apply_set.clone(), changes })
}

/// The names `wanted` had before: its `metadata.previousNames`, then the project file's `moved`.
fn previous_names(wanted: &Desired, options: &PlanOptions) -> Vec<String> {
    let kind = wanted.resource.kind();
    let mut names = wanted.resource.metadata().previous_names.clone();
    names.extend(
        options.moved.iter().filter(|m| m.kind == kind && m.to == wanted.resource.name()).map(|m| m.from.clone()),
    );
    names
}

/// Creates, updates and unchanged in dependency order (kind, then name); deletes after them in
/// reverse dependency order, so nothing ever points at a resource that is not there yet or any more.
pub fn order(changes: &mut [Change]) {
    changes.sort_by(|a, b| {
        let deleting = |c: &Change| matches!(c, Change::Delete { .. });
        match (deleting(a), deleting(b)) {
            (false, true) => std::cmp::Ordering::Less,
            (true, false) => std::cmp::Ordering::Greater,
            (false, false) => (a.kind().order(), a.name()).cmp(&(b.kind().order(), b.name())),
            (true, true) => (b.kind().order(), b.name()).cmp(&(a.kind().order(), a.name())),
        }
    });
}

/// Refuses a prune that would leave a remaining resource pointing at a deleted one.
fn check_prune_references(
    desired: &[Desired],
    observed: &[ResourceHead],
    manifests: &StoredManifests<'_>,
    changes: &[Change],
) -> Result<(), PlanError> {
    let deleted: BTreeSet<(Kind, &str)> =
        changes.iter().filter(|c| matches!(c, Change::Delete { .. })).map(|c| (c.kind(), c.name())).collect();
    if deleted.is_empty() {
        return Ok(());
    }
    let desired_keys: BTreeSet<(Kind, &str)> = desired.iter().map(|d| (d.resource.kind(), d.resource.name())).collect();
    let observed_keys: BTreeSet<(Kind, &str)> = observed.iter().map(|r| (r.kind, r.name.as_str())).collect();
    // Remaining resources: everything desired, plus observed ones that are neither redeclared nor deleted.
    let remaining_observed = observed.iter().filter(|r| {
        let key = (r.kind, r.name.as_str());
        !deleted.contains(&key) && !desired_keys.contains(&key)
    });
    let mut broken = BTreeMap::new();
    let mut check = |referrer: &AnyResource| {
        for reference in referrer.references() {
            let resolves_elsewhere = reference.kinds.iter().any(|k| {
                let key = (*k, reference.name.as_str());
                desired_keys.contains(&key) || (observed_keys.contains(&key) && !deleted.contains(&key))
            });
            if resolves_elsewhere {
                continue;
            }
            if let Some(kind) = reference.kinds.iter().find(|k| deleted.contains(&(**k, reference.name.as_str()))) {
                broken.insert(address(*kind, &reference.name), referrer.address());
            }
        }
    };
    for wanted in desired {
        check(&wanted.resource);
    }
    for current in remaining_observed {
        if let Ok(resource) = AnyResource::from_value(current.kind, Value::clone(manifests.manifest(current)?)) {
            check(&resource);
        }
    }
    if broken.is_empty() {
        Ok(())
    } else {
        Err(PlanError::PruneBreaksReference { references: broken.into_iter().collect() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Skill, SkillSpec};

    fn skill(name: &str, text: &str) -> Desired {
        Desired::new(AnyResource::from(Skill::new(name, SkillSpec::markdown(text))))
    }

    fn head(wanted: &Desired, set: Option<&str>) -> ResourceHead {
        ResourceHead {
            kind: Kind::Skill,
            name: wanted.resource.name().to_owned(),
            uid: "u".into(),
            generation: 1,
            hash: wanted.canonical.hash.clone(),
            apply_set: set.map(str::to_owned),
        }
    }

    #[test]
    fn only_the_manifests_a_plan_changes_are_needed() {
        let options = PlanOptions { apply_set: Some("s".into()), ..PlanOptions::default() };
        let stored = [head(&skill("same", "1"), Some("s")), head(&skill("edited", "1"), Some("s"))];
        let mut foreign = head(&skill("taken", "1"), Some("other"));
        foreign.name = "taken".into();
        let observed = [stored[0].clone(), stored[1].clone(), foreign, head(&skill("old", "1"), Some("s"))];
        let desired = [skill("same", "1"), skill("edited", "2"), skill("taken", "1")];
        let needed = manifests_needed(&desired, &observed, &options);
        assert_eq!(needed, [(Kind::Skill, "edited".into()), (Kind::Skill, "taken".into())], "unchanged: head alone");

        let pruning = PlanOptions { prune: true, ..options.clone() };
        let needed = manifests_needed(&desired, &observed, &pruning);
        assert!(needed.contains(&(Kind::Skill, "old".into())), "a prune reads what it deletes: {needed:?}");

        let moved = vec![Moved { kind: Kind::Skill, from: "old".into(), to: "new".into() }];
        let renaming = PlanOptions { moved, ..options.clone() };
        let needed = manifests_needed(&[skill("new", "1")], &observed, &renaming);
        assert_eq!(needed, [(Kind::Skill, "old".into())], "a rename reads the resource it takes over");
    }

    #[test]
    fn a_manifest_gone_while_planning_is_said() {
        let options = PlanOptions { apply_set: Some("s".into()), ..PlanOptions::default() };
        let observed = [head(&skill("edited", "1"), Some("s"))];
        let error = plan_heads(&[skill("edited", "2")], &observed, &StoredManifests::default(), &options).unwrap_err();
        assert_eq!(error, PlanError::ChangedWhilePlanning { address: "skill/edited".into() });
    }
}
