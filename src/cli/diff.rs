//! `stigmer diff`: what `apply` would change, as a unified diff; exit 1 when anything would.

use std::fmt::Write as _;

use clap::Args;

use super::apply::PlanFlags;
use super::backend::AnyBackend;
use super::common;
use super::help;
use super::render::Style;
use super::{CommandContext, CommandError, ErrorKind};
use crate::reconcile::diff::{Line, unified};
use crate::reconcile::{self, Change, Plan, SecretChange};
use crate::validate::Checked;

/// Show what `apply` would change, as a unified diff of the canonical YAML.
///
/// New resources are shown in full, deletions (with --prune) in full, updates with context.
/// Exits 0 when nothing would change, 1 when something would, 2 on error — the diff(1)
/// convention, so CI can gate on it.
#[derive(Debug, Args)]
#[command(after_help = help::after(
    &[
        "stigmer diff -f manifests/",
        "stigmer diff -f manifests/ --prune || echo \"apply would change something\"",
    ],
    &[help::COLOR, help::HOME, help::BACKEND],
))]
pub struct DiffArgs {
    /// Manifest files or directories; `-` for stdin. Repeatable.
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true, value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub files: Vec<String>,
    #[command(flatten)]
    pub plan: PlanFlags,
}

/// Runs `stigmer diff`.
pub async fn run(ctx: &CommandContext, args: &DiffArgs) -> Result<(), CommandError> {
    // Every failure of diff exits 2: 1 means "there are changes".
    diff(ctx, args).await.map_err(|e| if e.kind == ErrorKind::Failed { e } else { e.with_kind(ErrorKind::User) })
}

/// The files planned against the backend, as `diff` and `drift` compare them: the backend,
/// the plan, and how the inline secrets compare (their values never shown).
pub(super) async fn planned(
    ctx: &CommandContext,
    files: &[String],
    flags: &PlanFlags,
) -> Result<(AnyBackend, Plan, Vec<(String, SecretChange)>), CommandError> {
    let Checked { set, outcomes } = common::load_checked(files);
    let options = flags.options(&set)?;
    let backend = ctx.settings.backend_for(set.project.as_ref())?;
    let prepared = reconcile::prepare(&backend, &set, outcomes, &options)
        .await
        .map_err(|e| CommandError::from(e).with_kind(ErrorKind::User))?;
    common::report(ctx, &set, &prepared.validation.diagnostics)?;
    let Some(plan) = prepared.plan else {
        return Err(CommandError::reported(ErrorKind::User));
    };
    let secrets = reconcile::sync_inline(&backend, &prepared.secrets, true).await?;
    Ok((backend, plan, secrets))
}

/// A change as unified diff lines, colored.
pub(super) fn unified_text(change: &Change, style: Style) -> String {
    let mut out = String::new();
    for line in unified(change) {
        let _ = match line {
            Line::Header(text) => writeln!(out, "{}", style.hint(&text)),
            Line::Hunk(text) => writeln!(out, "{}", style.dim(&text)),
            Line::Removed(text) => writeln!(out, "{}", style.error(&format!("-{text}"))),
            Line::Added(text) => writeln!(out, "{}", style.good(&format!("+{text}"))),
            Line::Context(text) => writeln!(out, " {text}"),
        };
    }
    out
}

async fn diff(ctx: &CommandContext, args: &DiffArgs) -> Result<(), CommandError> {
    let (_, plan, secrets) = planned(ctx, &args.files, &args.plan).await?;
    let style = Style::new(ctx.settings.color_stdout);
    let mut out = super::apply::secret_lines(&secrets);
    for change in &plan.changes {
        out.push_str(&unified_text(change, style));
    }
    let _ = writeln!(out, "{}", common::plan_summary(plan.counts()));
    ctx.out(&out)?;
    if plan.has_changes() || !secrets.is_empty() { Err(CommandError::reported(ErrorKind::Failed)) } else { Ok(()) }
}
