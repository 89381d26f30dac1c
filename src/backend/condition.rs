//! Conditions observed on resources — `Ready`, `Reachable`, `SecretsResolved`, `Resolved` —
//! kept apart from the resources themselves, like Kubernetes' status subresource: recording
//! one is not a change to the desired state (no generation, no revision, no audit entry).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::Kind;

/// Whether a condition holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConditionStatus {
    /// It holds.
    True,
    /// It does not.
    False,
    /// It could not be told (what it depends on is not known here).
    Unknown,
}

impl ConditionStatus {
    /// `True`, `False` or `Unknown`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::True => "True",
            Self::False => "False",
            Self::Unknown => "Unknown",
        }
    }
}

/// One observation about a resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// What is observed: `Ready`, `Reachable`, `SecretsResolved`, `Resolved`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Whether it holds.
    pub status: ConditionStatus,
    /// Why, in one CamelCase word (`Connected`, `StartFailed`, `AuthFailed`).
    pub reason: String,
    /// Why, for people.
    pub message: String,
    /// When `status` last changed.
    pub last_transition_time: Timestamp,
    /// When it was last observed.
    pub observed_at: Timestamp,
    /// What the probe measured (a tool count, a latency).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Value>,
}

impl Condition {
    /// A condition observed now.
    #[must_use]
    pub fn now(kind: &str, status: ConditionStatus, reason: &str, message: impl Into<String>) -> Self {
        let now = Timestamp::now();
        Self {
            kind: kind.to_owned(),
            status,
            reason: reason.to_owned(),
            message: message.into(),
            last_transition_time: now,
            observed_at: now,
            detail: None,
        }
    }

    /// With what the probe measured.
    #[must_use]
    pub fn with_detail(mut self, detail: Value) -> Self {
        self.detail = Some(detail);
        self
    }
}

impl Condition {
    /// Whether it says something is wrong: a `False` condition, or a `True` one of a type that
    /// names a problem (`Drifted`).
    #[must_use]
    pub fn is_problem(&self) -> bool {
        let names_a_problem = self.kind == "Drifted";
        match self.status {
            ConditionStatus::True => names_a_problem,
            ConditionStatus::False => !names_a_problem,
            ConditionStatus::Unknown => false,
        }
    }
}

/// The conditions of one resource (`agent/support`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Observed {
    /// The resource's address.
    pub address: String,
    /// Its conditions, one per type.
    pub conditions: Vec<Condition>,
}

impl Observed {
    /// The condition of type `kind`, when observed.
    #[must_use]
    pub fn condition(&self, kind: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.kind == kind)
    }
}

/// `new` over what was recorded before: a condition whose status did not change keeps its
/// last transition time; conditions of types not observed again are kept.
#[must_use]
pub fn merged(old: Option<&Observed>, mut new: Observed) -> Observed {
    if let Some(old) = old {
        for condition in &mut new.conditions {
            if let Some(before) = old.condition(&condition.kind)
                && before.status == condition.status
            {
                condition.last_transition_time = before.last_transition_time;
            }
        }
        for before in &old.conditions {
            if new.condition(&before.kind).is_none() {
                new.conditions.push(before.clone());
            }
        }
    }
    new
}

/// The condition that says whether a resource of `kind` is usable.
#[must_use]
pub fn primary(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::Agent | Kind::AgentInstance | Kind::McpServer => Some("Ready"),
        Kind::Environment => Some("SecretsResolved"),
        Kind::Skill => Some("Resolved"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_that_holds_keeps_its_transition_time_and_unobserved_types_stay() {
        let mut before = Condition::now("Ready", ConditionStatus::True, "Connected", "3 tools");
        before.last_transition_time = Timestamp::UNIX_EPOCH;
        let reachable = Condition::now("Reachable", ConditionStatus::True, "Listed", "ok");
        let old = Observed { address: "agent/a".into(), conditions: vec![before, reachable] };
        let again = Observed {
            address: "agent/a".into(),
            conditions: vec![Condition::now("Ready", ConditionStatus::True, "Connected", "3 tools")],
        };
        let kept = merged(Some(&old), again);
        assert_eq!(kept.conditions[0].last_transition_time, Timestamp::UNIX_EPOCH);
        assert_eq!(kept.conditions.len(), 2, "Reachable was not observed again: kept");
        let broke = Observed {
            address: "agent/a".into(),
            conditions: vec![Condition::now("Ready", ConditionStatus::False, "StartFailed", "no such file")],
        };
        assert_ne!(merged(Some(&old), broke).conditions[0].last_transition_time, Timestamp::UNIX_EPOCH);
    }
}
