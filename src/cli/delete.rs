//! `stigmer delete`: delete resources by name or by manifest.

use std::fmt::Write as _;

use clap::Args;

use super::common::{self, parse_kind};
use super::help;
use super::{CommandContext, CommandError, ErrorKind};
use crate::backend::{Backend, ResourceQuery};
use crate::model::Kind;
use crate::reconcile;

/// Delete resources, by kind and names or by the manifests that declare them.
///
/// Refuses, deleting nothing, while a resource that stays still references one of them.
#[derive(Debug, Args)]
#[command(after_help = help::after(
    &[
        "stigmer delete agent support-bot",
        "stigmer delete skill calculator web-search",
        "stigmer delete -f old-manifests/",
    ],
    &[help::COLOR, help::HOME, help::BACKEND],
))]
pub struct DeleteArgs {
    /// The kind, then names.
    #[arg(required_unless_present = "files", conflicts_with = "files")]
    pub kind: Option<String>,
    /// Names of resources of that kind.
    pub names: Vec<String>,
    /// Delete what these manifests declare.
    #[arg(short = 'f', long = "filename", value_name = "PATH", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub files: Vec<String>,
}

/// Runs `stigmer delete`.
pub async fn run(ctx: &CommandContext, args: &DeleteArgs) -> Result<(), CommandError> {
    let targets: Vec<(Kind, String)> = if let Some(kind) = &args.kind {
        let kind = parse_kind(kind)?;
        if args.names.is_empty() {
            return Err(CommandError::user("name the resources to delete")
                .hint(format!("stigmer delete {} NAME…", kind.cli_name())));
        }
        args.names.iter().map(|n| (kind, n.clone())).collect()
    } else {
        let set = common::load(&args.files);
        let validation = crate::validate::validate(&set, &crate::validate::NoResources);
        // References may point at stored resources; only structural errors stop a delete.
        let blocking: Vec<_> =
            validation.diagnostics.iter().filter(|d| d.is_error() && d.code != "dangling-reference").cloned().collect();
        if !blocking.is_empty() {
            common::report(ctx, &set, &blocking)?;
            return Err(CommandError::reported(ErrorKind::Failed));
        }
        validation.resources.iter().map(|r| (r.resource.kind(), r.resource.name().to_owned())).collect()
    };
    let backend = ctx.settings.backend()?;
    let observed = backend.list(&ResourceQuery::all()).await?;
    let plan = reconcile::plan_delete(&targets, &observed)?;
    reconcile::apply(&backend, &plan, false).await?;
    let mut out = String::new();
    for change in &plan.changes {
        let _ = writeln!(out, "{} deleted", change.address());
    }
    ctx.out(&out)
}
