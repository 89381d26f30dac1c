//! `stigmer rollback`: re-apply an earlier revision as a new generation.

use clap::Args;

use super::common::parse_kind;
use super::help;
use super::{CommandContext, CommandError};
use crate::backend::Backend;
use crate::reconcile::{self, Change};

/// Re-apply the manifest of an earlier generation as a new generation.
///
/// The resource keeps its apply set; the next `apply` of that set's manifests puts the
/// manifests' version back, so roll back in the manifests too when the change should stay.
#[derive(Debug, Args)]
#[command(after_help = help::after(
    &[
        "stigmer history agent support-bot",
        "stigmer rollback agent support-bot --to 3",
    ],
    &[help::COLOR, help::HOME, help::BACKEND],
))]
pub struct RollbackArgs {
    /// The kind.
    pub kind: String,
    /// The name.
    pub name: String,
    /// The generation whose manifest to restore.
    #[arg(long, value_name = "GENERATION")]
    pub to: u64,
}

/// Runs `stigmer rollback`.
pub async fn run(ctx: &CommandContext, args: &RollbackArgs) -> Result<(), CommandError> {
    let kind = parse_kind(&args.kind)?;
    let backend = ctx.settings.backend()?;
    let current = backend.get(kind, &args.name).await?;
    let history = backend.history(kind, &args.name).await?;
    let plan = reconcile::plan_rollback(current.as_ref(), &history, kind, &args.name, args.to)?;
    let receipt = reconcile::apply(&backend, &plan, false).await?;
    let line = match plan.changes.first() {
        Some(Change::Unchanged { generation, .. }) => {
            format!(
                "{} unchanged: generation {generation} already has the manifest of generation {}\n",
                plan.changes[0].address(),
                args.to
            )
        }
        Some(change) => {
            let generation = receipt.written.first().map_or(0, |w| w.generation);
            format!("{} rolled back to generation {} (now generation {generation})\n", change.address(), args.to)
        }
        None => String::new(),
    };
    ctx.out(&line)
}
