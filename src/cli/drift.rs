//! `stigmer drift`: where the store no longer holds what the files say, and who changed it.

use std::fmt::Write as _;

use clap::{Args, ValueEnum};

use super::apply::PlanFlags;
use super::common;
use super::diff::{planned, unified_text};
use super::help;
use super::render::Style;
use super::{CommandContext, CommandError, ErrorKind};
use crate::reconcile::drift::drifted;

/// Show where the store has drifted from the files, with who changed it and when.
///
/// The store can change by other paths: a rollback in the console, another person's apply, an
/// import. Each difference is shown with the store's last change to it (from its history) and
/// the diff `apply` would make. Exits 0 when nothing drifted, 1 when something did, 2 on error.
#[derive(Debug, Args)]
#[command(after_help = help::after(
    &["stigmer drift -f agents/", "stigmer drift -f agents/ --prune -o json"],
    &[help::COLOR, help::HOME, help::BACKEND],
))]
pub struct DriftArgs {
    /// Manifest files or directories; `-` for stdin. Repeatable.
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true, value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub files: Vec<String>,
    #[command(flatten)]
    pub plan: PlanFlags,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = DriftOutput::Text)]
    pub output: DriftOutput,
}

/// How `drift` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DriftOutput {
    /// Each difference, who made it, and its diff.
    Text,
    /// `{"drifted": [{address, applyWould, lastChange: {action, actor, at, applySet, generation}}]}`.
    Json,
}

/// Runs `stigmer drift`.
pub async fn run(ctx: &CommandContext, args: &DriftArgs) -> Result<(), CommandError> {
    // Every failure exits 2: 1 means "drifted".
    drift(ctx, args).await.map_err(|e| if e.kind == ErrorKind::Failed { e } else { e.with_kind(ErrorKind::User) })
}

async fn drift(ctx: &CommandContext, args: &DriftArgs) -> Result<(), CommandError> {
    let (backend, plan, secrets) = planned(ctx, &args.files, &args.plan).await?;
    let found = drifted(&backend, &plan).await?;
    match args.output {
        DriftOutput::Json => ctx.out(&common::json(&serde_json::json!({ "drifted": found }))?)?,
        DriftOutput::Text => {
            let style = Style::new(ctx.settings.color_stdout);
            let mut out = super::apply::secret_lines(&secrets);
            let changes = plan.changes.iter().filter(|c| found.iter().any(|d| d.address == c.address()));
            for (drift, change) in found.iter().zip(changes) {
                let _ = writeln!(out, "{} {}", style.warning(&drift.address), drift.story());
                out.push_str(&unified_text(change, style));
            }
            if found.is_empty() && secrets.is_empty() {
                out.push_str("No drift: the store holds what the files say.\n");
            } else {
                let _ = writeln!(
                    out,
                    "{} drifted; `stigmer apply` with the same files puts them back",
                    common::counted(found.len(), "resource")
                );
            }
            ctx.out(&out)?;
        }
    }
    if found.is_empty() && secrets.is_empty() { Ok(()) } else { Err(CommandError::reported(ErrorKind::Failed)) }
}
