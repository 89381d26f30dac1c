//! The vocabulary of the backend contract: stored resources, revisions, apply batches and their
//! receipts, audit entries. The local store, the local backend and (later) the gRPC mapping all
//! speak these types, so both backends return identical values.

use std::sync::Arc;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::BackendError;
use crate::model::Kind;

/// A resource as a backend holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredResource {
    /// The kind.
    pub kind: Kind,
    /// The name, unique within the kind.
    pub name: String,
    /// A random id given at creation; a resource deleted and created again gets a new one.
    pub uid: String,
    /// Starts at 1 and grows by one with every change of the manifest.
    pub generation: u64,
    /// When the resource was created.
    pub created_at: Timestamp,
    /// When the manifest last changed.
    pub updated_at: Timestamp,
    /// Content hash of the canonical manifest; equal hashes mean "unchanged".
    pub hash: String,
    /// The apply set that owns the resource; `None` for resources made by hand.
    pub apply_set: Option<String>,
    /// The canonical manifest (no `status`).
    pub manifest: Arc<serde_json::Value>,
    /// Observed state, written by the backend and runners only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
}

impl StoredResource {
    /// The address people type and read: `agent/support-bot`.
    #[must_use]
    pub fn address(&self) -> String {
        address(self.kind, &self.name)
    }

    /// What planning reads of a stored resource: everything but its manifest and status.
    #[must_use]
    pub fn head(&self) -> ResourceHead {
        ResourceHead {
            kind: self.kind,
            name: self.name.clone(),
            uid: self.uid.clone(),
            generation: self.generation,
            hash: self.hash.clone(),
            apply_set: self.apply_set.clone(),
        }
    }
}

/// A stored resource without its manifest: what a plan compares (the content hash, the owner,
/// the generation seen) and what references resolve against. Listing heads instead of whole
/// resources keeps a no-op plan from decoding every stored manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceHead {
    /// The kind.
    pub kind: Kind,
    /// The name.
    pub name: String,
    /// The id given at creation.
    pub uid: String,
    /// The generation.
    pub generation: u64,
    /// Content hash of the canonical manifest.
    pub hash: String,
    /// The apply set that owns the resource; `None` for resources made by hand.
    pub apply_set: Option<String>,
}

impl ResourceHead {
    /// `agent/support-bot`.
    #[must_use]
    pub fn address(&self) -> String {
        address(self.kind, &self.name)
    }
}

/// `agent/support-bot`.
#[must_use]
pub fn address(kind: Kind, name: &str) -> String {
    format!("{}/{name}", kind.cli_name())
}

/// What a revision recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RevisionAction {
    /// The resource was created.
    Created,
    /// Its manifest changed.
    Updated,
    /// It was deleted (the manifest is the last one it had).
    Deleted,
    /// A tool call an execution waited on was approved (audit only).
    Approved,
    /// A tool call an execution waited on was rejected (audit only).
    Rejected,
    /// It drifted from its files and was put back to their version (created or updated).
    Corrected,
    /// It took a new name (the revision is under the new one; the old ones moved with it).
    Renamed,
}

impl RevisionAction {
    /// `created`, `updated`, `deleted`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Deleted => "deleted",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Corrected => "corrected",
            Self::Renamed => "renamed",
        }
    }
}

/// One change of one resource, kept for `history` and `rollback`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    /// The kind.
    pub kind: Kind,
    /// The name.
    pub name: String,
    /// The generation this revision produced (for a deletion: the last generation).
    pub generation: u64,
    /// What happened.
    pub action: RevisionAction,
    /// When.
    pub at: Timestamp,
    /// The apply set the change was made for, if any.
    pub apply_set: Option<String>,
    /// Who made it.
    pub actor: String,
    /// Content hash of the manifest.
    pub hash: String,
    /// The canonical manifest after the change (before it, for a deletion).
    pub manifest: Arc<serde_json::Value>,
}

/// Which resources to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceQuery {
    /// Kinds to include; every declarative kind when empty.
    pub kinds: Vec<Kind>,
    /// Names to include; all when empty.
    pub names: Vec<String>,
    /// Labels that must all match (`team=cs`).
    pub labels: Vec<(String, String)>,
}

impl ResourceQuery {
    /// Every declarative resource.
    #[must_use]
    pub fn all() -> Self {
        Self::default()
    }

    /// Every resource of one kind.
    #[must_use]
    pub fn kind(kind: Kind) -> Self {
        Self { kinds: vec![kind], ..Self::default() }
    }

    /// The kinds it asks for, in dependency order, each once.
    #[must_use]
    pub fn kinds_in_order(&self) -> Vec<Kind> {
        let mut kinds = if self.kinds.is_empty() { Kind::DECLARATIVE.to_vec() } else { self.kinds.clone() };
        kinds.sort_by_key(|kind| kind.order());
        kinds.dedup();
        kinds
    }

    /// Whether `resource` carries every label the query asks for (`metadata.labels`).
    #[must_use]
    pub fn has_labels_of(&self, resource: &StoredResource) -> bool {
        let present = resource.manifest.get("metadata").and_then(|metadata| metadata.get("labels"));
        self.labels.iter().all(|(key, value)| {
            present.and_then(|present| present.get(key)).and_then(serde_json::Value::as_str) == Some(value.as_str())
        })
    }
}

/// One write in a batch, with its precondition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "op")]
pub enum Write {
    /// Create; the resource must not exist. The store computes the content hash from the
    /// manifest it writes, so a stored hash always describes the stored manifest.
    Create {
        /// The canonical manifest.
        manifest: Arc<serde_json::Value>,
    },
    /// Replace the manifest; the resource must be at `expected_generation`.
    Update {
        /// The canonical manifest.
        manifest: Arc<serde_json::Value>,
        /// The generation seen when planning.
        expected_generation: u64,
    },
    /// Delete; the resource must be at `expected_generation`.
    Delete {
        /// The generation seen when planning.
        expected_generation: u64,
    },
    /// The resource named `from` (at `expected_generation`) takes the item's name, which must
    /// be free, and `manifest`; its history, and the executions and sessions of an agent, follow.
    Rename {
        /// The old name.
        from: String,
        /// The canonical manifest under the new name.
        manifest: Arc<serde_json::Value>,
        /// The generation seen when planning.
        expected_generation: u64,
    },
}

/// A write to one resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchItem {
    /// The kind.
    pub kind: Kind,
    /// The name.
    pub name: String,
    /// What to do.
    pub write: Write,
}

/// Writes applied together: all of them, or none.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyBatch {
    /// The apply set the written resources will belong to; `None` for changes made by hand.
    pub apply_set: Option<String>,
    /// The writes, in the order they are applied.
    pub items: Vec<BatchItem>,
    /// Check the preconditions but commit nothing.
    pub dry_run: bool,
    /// The writes put back the files' version of resources changed by another path (watch
    /// mode's `--drift correct`): their revisions say `corrected`.
    #[serde(default)]
    pub correcting: bool,
}

/// What an applied batch did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyReceipt {
    /// Each resource written, with its new generation (the last one, for a deletion).
    pub written: Vec<Written>,
    /// Whether anything was committed (false for a dry run or an empty batch).
    pub committed: bool,
    /// The backend's [`version`](super::Backend::version) right after this batch committed;
    /// `None` when nothing was committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

/// One resource written by a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Written {
    /// The kind.
    pub kind: Kind,
    /// The name.
    pub name: String,
    /// Its generation after the write.
    pub generation: u64,
    /// What happened.
    pub action: RevisionAction,
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// When.
    pub at: Timestamp,
    /// What was done (`created`, `updated`, `deleted`).
    pub action: RevisionAction,
    /// To what (`agent/support-bot`).
    pub target: String,
    /// By whom.
    pub actor: String,
    /// For which apply set, if any.
    pub apply_set: Option<String>,
    /// The network address the change came from, on a server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// What else says what was done (for a decision: the tool and the call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// What a token may do in its org.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read resources and history.
    Viewer,
    /// Also apply changes.
    Editor,
    /// Also read the audit log.
    Admin,
    /// A worker's: claim executions, renew their leases, append their history and read the
    /// run secrets of the executions it holds. Nothing else: no resources, no stored secrets.
    Worker,
    /// Sending events in (`stigmer event send`, `POST /v1/events`), and nothing else.
    Events,
}

impl Role {
    /// `admin`, `editor`, `viewer`, `worker`, `events`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Editor => "editor",
            Self::Admin => "admin",
            Self::Worker => "worker",
            Self::Events => "events",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "viewer" => Ok(Self::Viewer),
            "editor" => Ok(Self::Editor),
            "admin" => Ok(Self::Admin),
            "worker" => Ok(Self::Worker),
            "events" => Ok(Self::Events),
            other => Err(other.to_owned()),
        }
    }
}

impl Role {
    /// Whether it may read resources and executions.
    pub fn reads(self) -> bool {
        matches!(self, Self::Viewer | Self::Editor | Self::Admin)
    }

    /// Whether it may change resources and run executions.
    pub fn writes(self) -> bool {
        matches!(self, Self::Editor | Self::Admin)
    }
}

/// Who the backend takes the caller to be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// The actor recorded in revisions and the audit log.
    pub actor: String,
    /// Where the data is (`local store at ~/.stigmer/local.db`).
    pub backend: String,
    /// The org the caller acts in, on a server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// The caller's role in that org (`admin`, `editor`, `viewer`), on a server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// A resource that moved between planning and applying.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Moved {
    /// `agent/support-bot`.
    pub address: String,
    /// The generation the plan saw (`None`: it did not exist).
    pub expected: Option<u64>,
    /// The generation found (`None`: it no longer exists).
    pub found: Option<u64>,
}

/// A secret as listed: never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretInfo {
    /// The name manifests refer to (`secretRef: NAME`).
    pub name: String,
    /// When it was first set.
    pub created_at: Timestamp,
    /// When its value last changed.
    pub updated_at: Timestamp,
}

/// Secret names: what environment variables and manifests can refer to.
///
/// # Errors
/// What is wrong with the name.
pub fn check_secret_name(name: &str) -> Result<(), BackendError> {
    let bad = |reason: &str| BackendError::SecretName { name: name.to_owned(), reason: reason.to_owned() };
    if name.is_empty() || name.len() > 253 {
        return Err(bad("a name has 1 to 253 characters"));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))) {
        return Err(bad(&format!("{c:?} is not allowed; use letters, digits, '-', '_' and '.'")));
    }
    Ok(())
}
