//! Drift: where the store no longer holds what the files say — changed by another path (a
//! rollback in the console, another person's apply, an import) — each difference with who made
//! the store's side of it, and when, from the resource's history.

use jiff::Timestamp;
use serde::Serialize;

use super::{Change, Plan};
use crate::backend::{Backend, BackendError, Revision, RevisionAction};

/// One resource whose stored state differs from the files.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Drifted {
    /// `agent/support`.
    pub address: String,
    /// What applying the files would do to it: `created`, `updated` or `deleted`.
    pub apply_would: &'static str,
    /// The store's last change to it, when it has a history.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_change: Option<LastChange>,
}

/// Who last changed a resource in the store, and how.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastChange {
    /// `created`, `updated`, `deleted`, `corrected`.
    pub action: &'static str,
    /// Who.
    pub actor: String,
    /// When.
    pub at: Timestamp,
    /// The apply set it was made for; none when made by hand (a rollback, `agent create`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apply_set: Option<String>,
    /// The generation it produced.
    pub generation: u64,
}

impl From<&Revision> for LastChange {
    fn from(revision: &Revision) -> Self {
        Self {
            action: revision.action.as_str(),
            actor: revision.actor.clone(),
            at: revision.at,
            apply_set: revision.apply_set.clone(),
            generation: revision.generation,
        }
    }
}

impl Drifted {
    /// `updated in the store by ana at …, by hand` — the store's side, for people.
    #[must_use]
    pub fn story(&self) -> String {
        let Some(last) = &self.last_change else {
            return "not in the store, and never was".to_owned();
        };
        let how = match &last.apply_set {
            Some(set) => format!("applying set \"{set}\""),
            None => "by hand".to_owned(),
        };
        let what = if last.action == RevisionAction::Deleted.as_str() { "deleted" } else { last.action };
        format!("{what} in the store by {} at {} ({how}, generation {})", last.actor, last.at, last.generation)
    }
}

/// The resources `plan` would change, each with the store's last change to it.
///
/// # Errors
/// The backend could not be read.
pub async fn drifted<B: Backend>(backend: &B, plan: &Plan) -> Result<Vec<Drifted>, BackendError> {
    let mut found = Vec::new();
    for change in plan.changes.iter().filter(|change| !matches!(change, Change::Unchanged { .. })) {
        let history = backend.history(change.kind(), change.name()).await?;
        found.push(Drifted {
            address: change.address(),
            apply_would: change.verb(),
            last_change: history.last().map(LastChange::from),
        });
    }
    Ok(found)
}

/// Marks each drifted resource with a `Drifted=True` condition naming who changed it, and
/// clears the mark (`Drifted=False`) of those in `marked` that match their files again.
///
/// # Errors
/// The backend could not record the conditions.
pub async fn mark<B: Backend>(
    backend: &B,
    drifted: &[Drifted],
    marked: &mut std::collections::BTreeSet<String>,
) -> Result<(), BackendError> {
    use crate::backend::condition::{Condition, ConditionStatus, Observed};
    let mut observed: Vec<Observed> = drifted
        .iter()
        .map(|d| Observed {
            address: d.address.clone(),
            conditions: vec![Condition::now("Drifted", ConditionStatus::True, "ChangedInStore", d.story())],
        })
        .collect();
    let now: std::collections::BTreeSet<String> = drifted.iter().map(|d| d.address.clone()).collect();
    for cleared in marked.difference(&now) {
        observed.push(Observed {
            address: cleared.clone(),
            conditions: vec![Condition::now(
                "Drifted",
                ConditionStatus::False,
                "MatchesFiles",
                "the store holds what the files say",
            )],
        });
    }
    if !observed.is_empty() {
        backend.conditions_record(observed).await?;
    }
    *marked = now;
    Ok(())
}
