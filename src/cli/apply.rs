//! `stigmer apply`: make the backend hold exactly what the manifests declare.

use std::fmt::Write as _;

use clap::{Args, ValueEnum};
use serde::Serialize;

use super::backend::AnyBackend;
use super::common;
use super::help;
use super::render::Style;
use super::{CommandContext, CommandError, ErrorKind};
use crate::backend::{ApplyReceipt, Backend as _};
use crate::manifest::ManifestSet;
use crate::reconcile::digest_cache::{Applied, ApplyKey, DigestCache};
use crate::reconcile::watch::DriftMode;
use crate::reconcile::{self, Change, Counts, Plan, PlanOptions, SecretChange};
use crate::validate::Checked;

/// Make the backend hold exactly what the manifests declare.
///
/// Validates the manifests (references resolve against the manifests and the backend), plans
/// the changes, and applies them as one atomic batch: everything or nothing. Resources belong to
/// an apply set, the `name` in the directory's stigmer.yaml or --set; --prune deletes what that
/// set owns and the manifests no longer declare, never anything else. Applying twice changes
/// nothing the second time.
#[derive(Debug, Args)]
#[command(after_help = help::after(
    &[
        "stigmer apply -f examples/",
        "stigmer apply -f manifests/ --prune",
        "stigmer apply -f agent.yaml --dry-run",
        "stigmer apply -f - --set ci < rendered.yaml",
        "stigmer apply -f manifests/ --watch --interval 30s",
    ],
    &[help::COLOR, help::HOME, help::BACKEND, help::SECRETS],
))]
pub struct ApplyArgs {
    /// Manifest files or directories; `-` for stdin. Repeatable.
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true, value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub files: Vec<String>,
    #[command(flatten)]
    pub options: ApplyOptions,
    /// Keep watching the files and reconcile after every change (Ctrl-C to stop).
    #[arg(long)]
    pub watch: bool,
    /// With --watch, also reconcile on this period (500ms, 30s, 5m), putting back changes made
    /// to the backend behind the files' back.
    #[arg(long, value_name = "DURATION", requires = "watch", value_parser = common::parse_positive_duration)]
    pub interval: Option<std::time::Duration>,
    /// With --watch, check on the interval (30s unless given) whether the store drifted from
    /// the files by another path, and: `detect` report it, `warn` also mark the resource
    /// `Drifted` (see `stigmer status`), `correct` put the files' version back (history says
    /// `corrected`)
    #[arg(long, value_enum, value_name = "MODE", requires = "watch")]
    pub drift: Option<DriftArg>,
    /// After applying, wait until everything applied is ready (see `stigmer status`), or fail
    /// with the conditions that are not once `--wait-timeout` passes.
    #[arg(long, conflicts_with = "watch")]
    pub wait: bool,
    /// How long `--wait` waits.
    #[arg(long, value_name = "DURATION", default_value = "2m", requires = "wait", value_parser = common::parse_positive_duration)]
    pub wait_timeout: std::time::Duration,
    /// Read and plan every file even when none changed since the last apply of them to this
    /// backend, and the backend did not change either (otherwise that apply's result is reused).
    #[arg(long)]
    pub no_cache: bool,
}

/// `apply --watch --drift MODE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DriftArg {
    /// Report each drifted resource, and who changed it.
    Detect,
    /// Report it, and mark the resource `Drifted`.
    Warn,
    /// Put the files' version back, recorded as `corrected`.
    Correct,
}

/// The flags that shape a plan, shared by `apply`, `import` and `diff`.
#[derive(Debug, Args)]
pub struct PlanFlags {
    /// Delete resources of this apply set that the manifests no longer declare.
    #[arg(long)]
    pub prune: bool,
    /// The apply set (defaults to the name in the directory's stigmer.yaml).
    #[arg(long = "set", value_name = "NAME")]
    pub apply_set: Option<String>,
    /// Take over resources that another apply set owns.
    #[arg(long)]
    pub force_ownership: bool,
}

impl PlanFlags {
    /// The plan options for manifests read into `set` (its project file names the apply set).
    pub fn options(&self, set: &ManifestSet) -> Result<PlanOptions, CommandError> {
        let apply_set = reconcile::apply_set(self.apply_set.as_deref(), set);
        if let Some(name) = &apply_set {
            crate::model::meta::check_name(name).map_err(|e| {
                CommandError::user(format!("apply set name \"{name}\" {e}"))
                    .hint("use lower-case letters, digits and '-'")
            })?;
        }
        let moved = set.project.as_ref().map(|p| p.moved.clone()).unwrap_or_default();
        Ok(PlanOptions { apply_set, prune: self.prune, force_ownership: self.force_ownership, moved })
    }
}

/// The flags `apply` and `import` share.
#[derive(Debug, Args)]
pub struct ApplyOptions {
    /// Plan and check everything, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub plan: PlanFlags,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = ApplyOutput::Text)]
    pub output: ApplyOutput,
}

/// Output formats of `apply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApplyOutput {
    /// A line per resource and a summary.
    Text,
    /// One JSON object.
    Json,
}

/// Runs `stigmer apply`.
pub async fn run(ctx: &CommandContext, args: &ApplyArgs) -> Result<(), CommandError> {
    if args.watch {
        let plan = args.options.plan.options(&common::load_project(&args.files))?;
        let drift = args.drift.map(|mode| match mode {
            DriftArg::Detect => DriftMode::Detect,
            DriftArg::Warn => DriftMode::Warn,
            DriftArg::Correct => DriftMode::Correct,
        });
        return super::watch::run(ctx, &args.files, plan, args.interval, drift).await;
    }
    let backend = ctx.settings.backend_for(common::load_project(&args.files).project.as_ref())?;
    let cache = DigestCache::new(ctx.settings.home.join("cache").join("apply"));
    let key = if args.no_cache {
        None
    } else {
        let flags = &args.options.plan;
        let identity = backend.whoami().await?;
        let inputs = common::inputs(&args.files);
        ApplyKey::new(&inputs, &identity, flags.apply_set.as_deref(), flags.prune, flags.force_ownership)
    };
    let unchanged = match &key {
        Some(key) => cache.unchanged(&backend, key).await?,
        None => None,
    };
    let applied = if let Some(plan) = unchanged {
        // Nothing the apply reads changed since the last one: its result stands.
        report(ctx, &plan, &[], &ApplyReceipt::default(), &args.options)?
    } else {
        let checked = common::load_checked(&args.files);
        apply_set(ctx, &backend, checked, &args.options, key.as_ref().map(|key| (&cache, key))).await?
    };
    if args.wait && !args.options.dry_run {
        super::status::wait_ready(ctx, &backend, &applied, args.wait_timeout).await?;
    }
    Ok(())
}

/// Applies manifests already read and checked; returns the address of every resource it names.
/// With a cache, remembers what it applied under the key, for the next apply to skip reading.
pub async fn apply_set(
    ctx: &CommandContext,
    backend: &AnyBackend,
    checked: Checked,
    options: &ApplyOptions,
    cache: Option<(&DigestCache, &ApplyKey)>,
) -> Result<Vec<String>, CommandError> {
    let Checked { set, outcomes } = checked;
    let plan_options = options.plan.options(&set)?;
    // Read before listing: a cache entry may only claim a version whose every change it saw.
    let version = match cache {
        Some(_) => Some(backend.version().await?),
        None => None,
    };
    let progress = Progress::start(ctx, set.documents.len());
    progress.phase(&format!("validating and planning {} manifests", set.documents.len()));
    let prepared = reconcile::prepare(backend, &set, outcomes, &plan_options).await;
    progress.finish();
    let prepared = prepared?;
    common::report(ctx, &set, &prepared.validation.diagnostics)?;
    let Some(plan) = prepared.plan else {
        return Err(CommandError::reported(ErrorKind::Failed));
    };
    let progress = Progress::start(ctx, plan.changes.len());
    progress.phase(&format!(
        "committing {} changes in one transaction",
        plan.counts().created + plan.counts().updated + plan.counts().deleted
    ));
    // Inline secrets first, so the references the batch writes find their secrets.
    let applied = async {
        let secrets = reconcile::sync_inline(backend, &prepared.secrets, options.dry_run).await?;
        Ok::<_, reconcile::ReconcileError>((secrets, reconcile::apply(backend, &plan, options.dry_run).await?))
    }
    .await;
    progress.finish();
    let (secrets, receipt) = applied?;
    if let (Some((cache, key)), Some(version)) = (cache, version) {
        let clean = prepared.validation.diagnostics.is_empty() && prepared.secrets.is_empty();
        if clean && !options.dry_run {
            let applied =
                Applied { set: &set, skill_dirs: &prepared.skill_dirs, version, plan: &plan, receipt: &receipt };
            cache.record(backend, key, applied).await;
        } else if !options.dry_run {
            cache.forget(key);
        }
    }
    report(ctx, &plan, &secrets, &receipt, options)
}

/// Prints what an apply did; returns the address of every resource the plan names.
fn report(
    ctx: &CommandContext,
    plan: &Plan,
    secrets: &[(String, SecretChange)],
    receipt: &ApplyReceipt,
    options: &ApplyOptions,
) -> Result<Vec<String>, CommandError> {
    match options.output {
        ApplyOutput::Text => ctx.out(&text_report(ctx, plan, secrets, options.dry_run))?,
        ApplyOutput::Json => ctx.out(&common::json(&JsonReport::new(plan, secrets, receipt, options.dry_run))?)?,
    }
    let named = plan.changes.iter().filter(|change| !matches!(change, Change::Delete { .. }));
    Ok(named.map(Change::address).collect())
}

fn text_report(ctx: &CommandContext, plan: &Plan, secrets: &[(String, SecretChange)], dry_run: bool) -> String {
    let style = Style::new(ctx.settings.color_stdout);
    let mut out = secret_lines(secrets);
    for change in &plan.changes {
        let painted = match change {
            Change::Create { .. } => style.good(change.verb()),
            Change::Update { .. } => style.warning(change.verb()),
            Change::Rename { from, .. } => style.warning(&format!("renamed from {from}")),
            Change::Delete { .. } => style.error(change.verb()),
            Change::Unchanged { .. } => change.verb().to_owned(),
        };
        let owner = match change {
            Change::Update { previous_owner: Some(previous), .. } => match previous {
                Some(set) => format!(" (taken over from apply set \"{set}\")"),
                None => " (adopted: it was made by hand)".to_owned(),
            },
            _ => String::new(),
        };
        let _ = writeln!(out, "{} {painted}{owner}", change.address());
    }
    let _ = writeln!(
        out,
        "{}{}",
        common::plan_summary(plan.counts()),
        if dry_run { " (dry run: nothing written)" } else { "" }
    );
    out
}

/// `secret/prod.API_KEY created`, one line per inline secret stored (values never shown).
pub fn secret_lines(secrets: &[(String, SecretChange)]) -> String {
    let mut out = String::new();
    for (name, change) in secrets {
        let _ = writeln!(out, "secret/{name} {} (from an inline isSecret value)", change.verb());
    }
    out
}

/// A spinner on stderr while a large set is planned and committed; nothing when stderr is not a
/// terminal or the set is small.
struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    /// Sets this large get a spinner.
    const THRESHOLD: usize = 500;

    fn start(ctx: &CommandContext, size: usize) -> Self {
        if !ctx.settings.interactive || size < Self::THRESHOLD {
            return Self(None);
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(std::time::Duration::from_millis(100));
        Self(Some(bar))
    }

    fn phase(&self, message: &str) {
        if let Some(bar) = &self.0 {
            bar.set_message(message.to_owned());
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonReport<'a> {
    apply_set: Option<&'a str>,
    dry_run: bool,
    committed: bool,
    changes: Vec<JsonChange>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    secrets: Vec<JsonSecret>,
    summary: Counts,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonSecret {
    name: String,
    action: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonChange {
    kind: &'static str,
    name: String,
    action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    generation: Option<u64>,
}

impl<'a> JsonReport<'a> {
    fn new(plan: &'a Plan, secrets: &[(String, SecretChange)], receipt: &ApplyReceipt, dry_run: bool) -> Self {
        let written: std::collections::HashMap<_, u64> =
            receipt.written.iter().map(|w| ((w.kind, w.name.as_str()), w.generation)).collect();
        let changes = plan
            .changes
            .iter()
            .map(|change| {
                let generation = match change {
                    Change::Create { .. } | Change::Update { .. } | Change::Rename { .. } => {
                        written.get(&(change.kind(), change.name())).copied()
                    }
                    Change::Delete { .. } => None,
                    Change::Unchanged { generation, .. } => Some(*generation),
                };
                JsonChange {
                    kind: change.kind().as_str(),
                    name: change.name().to_owned(),
                    action: change.verb(),
                    generation,
                }
            })
            .collect();
        Self {
            apply_set: plan.apply_set.as_deref(),
            dry_run,
            committed: receipt.committed,
            changes,
            secrets: secrets
                .iter()
                .map(|(name, change)| JsonSecret { name: name.clone(), action: change.verb() })
                .collect(),
            summary: plan.counts(),
        }
    }
}
