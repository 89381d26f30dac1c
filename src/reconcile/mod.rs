//! Reconciling desired state with a backend: load → validate (references resolved against the
//! backend too) → `plan` (pure) → apply the plan as one batch. Also the other ways of changing
//! what a backend holds — delete, rollback, create by hand — each planned the same way, so the
//! same preconditions and reference checks apply. This layer never prints.

pub use crate::model::canonical;
pub mod diff;
pub mod digest_cache;
pub mod drift;
pub mod export;
mod ids;
mod ops;
pub mod plan;
pub mod secrets;
pub mod watch;

use crate::backend::{ApplyReceipt, Backend, BackendError, ResourceHead, ResourceQuery};
use crate::manifest::ManifestSet;
use crate::model::Kind;
use crate::validate::{DocumentOutcome, ResourceLookup, Validation, check_set};

pub use ops::{plan_create, plan_delete, plan_rollback, referrers};
pub use plan::{Change, Counts, Desired, Plan, PlanError, PlanOptions, StoredManifests, plan};
pub use secrets::{InlineSecret, SecretChange, sync_inline};

/// Why a reconcile or another change could not be made. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The changes cannot be planned.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The backend failed or refused.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// A resource named on the command line does not exist.
    #[error("{address} does not exist")]
    NotFound {
        /// `agent/support-bot`.
        address: String,
    },
    /// A resource created by hand already exists.
    #[error("{address} already exists")]
    AlreadyExists {
        /// `agent/support-bot`.
        address: String,
    },
    /// Deleting would leave references pointing nowhere.
    #[error("{target} is still referenced by {}", .referrers.join(", "))]
    Referenced {
        /// `skill/calculator`.
        target: String,
        /// The resources that reference it.
        referrers: Vec<String>,
    },
    /// A reference made on the command line does not resolve.
    #[error("{referrer} references {target}, which does not exist")]
    Dangling {
        /// `agent/support-bot`.
        referrer: String,
        /// `skill/calculater`.
        target: String,
    },
    /// The revision asked for does not exist.
    #[error("{address} has no generation {generation}; it has {}", .available.iter().map(u64::to_string).collect::<Vec<_>>().join(", "))]
    NoSuchRevision {
        /// `agent/support-bot`.
        address: String,
        /// The generation asked for.
        generation: u64,
        /// The generations there are.
        available: Vec<u64>,
    },
}

/// What a backend holds, so validation resolves references to it, and the organization it acts
/// in, so manifests naming another are refused with their place.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    /// The stored resources' heads.
    pub resources: &'a [ResourceHead],
    /// The caller's organization on a server; `None` locally.
    pub org: Option<&'a str>,
}

impl<'a> Observed<'a> {
    /// What a local store holds (no organization).
    #[must_use]
    pub fn local(resources: &'a [ResourceHead]) -> Self {
        Self { resources, org: None }
    }
}

impl ResourceLookup for Observed<'_> {
    fn names(&self, kind: Kind) -> Vec<String> {
        self.resources.iter().filter(|r| r.kind == kind).map(|r| r.name.clone()).collect()
    }

    fn name_of_id(&self, kind: Kind, id: &str) -> Option<Option<String>> {
        Some(self.resources.iter().find(|r| r.kind == kind && r.uid == id).map(|r| r.name.clone()))
    }

    fn org(&self) -> Option<&str> {
        self.org
    }
}

/// The outcome of planning manifests against a backend.
#[derive(Debug)]
pub struct Prepared {
    /// Every diagnostic of the manifests (references resolved against the backend too).
    pub validation: Validation,
    /// The plan, when the manifests are valid.
    pub plan: Option<Plan>,
    /// Values the manifests wrote inline as secrets, moved out of the resources; applying stores
    /// them with [`sync_inline`].
    pub secrets: Vec<InlineSecret>,
    /// The skill directories whose files the plan carries (besides the manifests, what the
    /// plan was made from).
    pub skill_dirs: Vec<std::path::PathBuf>,
}

/// The apply set of an apply: `--set` wins over the project file's name.
#[must_use]
pub fn apply_set(flag: Option<&str>, set: &ManifestSet) -> Option<String> {
    flag.map(str::to_owned).or_else(|| set.project.as_ref().map(|p| p.name.clone()))
}

/// Finishes validating manifests already read and checked document by document (the checks
/// across documents, references resolved against what the backend holds) and plans the changes.
///
/// # Errors
/// Fails when the backend cannot be read or the plan is refused; invalid manifests are not an
/// error here but come back as diagnostics with no plan.
pub async fn prepare<B: Backend>(
    backend: &B,
    set: &ManifestSet,
    outcomes: Vec<DocumentOutcome>,
    options: &PlanOptions,
) -> Result<Prepared, ReconcileError> {
    let observed = backend.heads().await?;
    // Only manifests that name an organization need to know which one the backend acts in.
    let org = if names_an_org(&outcomes) { backend.whoami().await?.org } else { None };
    prepare_observed(backend, set, outcomes, Observed { resources: &observed, org: org.as_deref() }, options).await
}

/// Whether any resource names an organization, in its metadata or in a reference.
#[must_use]
pub fn names_an_org(outcomes: &[DocumentOutcome]) -> bool {
    outcomes.iter().filter_map(|o| o.resource.as_deref()).any(|resource| !resource.named_orgs().is_empty())
}

/// [`prepare`] against heads already listed (watch mode keeps them while the backend's
/// version stays the same). Only the manifests of stored resources the plan changes are
/// fetched; an unchanged resource is compared by its content hash alone.
///
/// # Errors
/// Fails when the backend cannot be read or the plan is refused.
pub async fn prepare_observed<B: Backend>(
    backend: &B,
    set: &ManifestSet,
    outcomes: Vec<DocumentOutcome>,
    observed: Observed<'_>,
    options: &PlanOptions,
) -> Result<Prepared, ReconcileError> {
    let mut validation = check_set(set, outcomes, &observed);
    if validation.has_errors() {
        return Ok(Prepared { validation, plan: None, secrets: Vec::new(), skill_dirs: Vec::new() });
    }
    let skill_dirs = crate::validate::skill_dirs(set, &validation.resources);
    // The canonical forms were computed with the documents' checks; move them, do not redo them.
    let desired: Vec<Desired> = std::mem::take(&mut validation.resources)
        .into_iter()
        .map(|r| Desired { resource: r.resource, canonical: r.canonical })
        .collect();
    let desired = ids::resolve_agent_ids(desired, observed.resources);
    let (desired, secrets) = secrets::extract_inline(desired);
    let stored = stored_manifests(backend, plan::manifests_needed(&desired, observed.resources, options)).await?;
    let plan = plan::plan_heads(&desired, observed.resources, &StoredManifests::of(&stored), options)?;
    // The plan keeps what it writes; the rest of every resource is freed off the apply's path.
    crate::parallel::drop_in_background(desired);
    Ok(Prepared { validation, plan: Some(plan), secrets, skill_dirs })
}

/// The stored resources named, in one listing (none when none are).
async fn stored_manifests<B: Backend>(
    backend: &B,
    needed: Vec<(Kind, String)>,
) -> Result<Vec<crate::backend::StoredResource>, BackendError> {
    if needed.is_empty() {
        return Ok(Vec::new());
    }
    let mut kinds: Vec<Kind> = needed.iter().map(|(kind, _)| *kind).collect();
    kinds.sort_by_key(|kind| kind.order());
    kinds.dedup();
    let wanted: std::collections::HashSet<(Kind, &str)> = needed.iter().map(|(k, n)| (*k, n.as_str())).collect();
    let mut names: Vec<String> = needed.iter().map(|(_, name)| name.clone()).collect();
    names.sort();
    names.dedup();
    // The query matches every kind with every name: keep only the pairs asked for.
    let mut listed = backend.list(&ResourceQuery { kinds, names, labels: Vec::new() }).await?;
    listed.retain(|r| wanted.contains(&(r.kind, r.name.as_str())));
    Ok(listed)
}

/// Applies a plan as one batch (nothing at all when it changes nothing).
///
/// # Errors
/// Fails with a conflict, writing nothing, when a resource moved since the plan was made.
pub async fn apply<B: Backend>(backend: &B, plan: &Plan, dry_run: bool) -> Result<ApplyReceipt, ReconcileError> {
    if !plan.has_changes() {
        return Ok(ApplyReceipt::default());
    }
    Ok(backend.apply(plan.to_batch(dry_run)).await?)
}

/// Applies `plan` to put back resources that drifted from their files: as [`apply`], with
/// revisions that say `corrected`.
///
/// # Errors
/// As [`apply`].
pub async fn correct<B: Backend>(backend: &B, plan: &Plan) -> Result<ApplyReceipt, ReconcileError> {
    if !plan.has_changes() {
        return Ok(ApplyReceipt::default());
    }
    Ok(backend.apply(plan.to_correcting_batch()).await?)
}
