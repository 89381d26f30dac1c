//! `stigmer import`: apply a manifest stream, such as `stigmer export` wrote.

use clap::Args;

use super::apply::{ApplyOptions, apply_set};
use super::common;
use super::help;
use super::{CommandContext, CommandError};
use crate::manifest::{Diagnostic, Severity};

/// Apply a stream of manifests, such as `stigmer export` wrote (stdin by default).
///
/// The same as `apply`, with -f defaulting to standard input, so a store moves with
/// `stigmer export --all > all.yaml` here and `stigmer import < all.yaml` there.
#[derive(Debug, Args)]
#[command(after_help = help::after(
    &[
        "stigmer import < all.yaml",
        "stigmer import -f all.yaml --set migrated",
        "stigmer export --all | stigmer --home /tmp/other import",
    ],
    &[help::COLOR, help::HOME, help::BACKEND, help::SECRETS],
))]
pub struct ImportArgs {
    /// Manifest files or directories; `-` (the default) for stdin. Repeatable.
    #[arg(short = 'f', long = "filename", value_name = "PATH", default_value = "-", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub files: Vec<String>,
    #[command(flatten)]
    pub options: ApplyOptions,
}

/// Runs `stigmer import`.
pub async fn run(ctx: &CommandContext, args: &ImportArgs) -> Result<(), CommandError> {
    let checked = common::load_checked(&args.files);
    let set = &checked.set;
    // What `export` writes for an empty store imports as nothing, so the round trip holds
    // there too. Pruning to an empty stream would delete the whole set: that stays an error.
    let only_empty_files = set.documents.is_empty()
        && !set.diagnostics.is_empty()
        && set.diagnostics.iter().all(|d| d.code == "empty-file");
    if only_empty_files && !args.options.plan.prune {
        let warnings: Vec<Diagnostic> =
            set.diagnostics.iter().map(|d| Diagnostic { severity: Severity::Warning, ..d.clone() }).collect();
        common::report(ctx, set, &warnings)?;
        return ctx.err("nothing to import\n");
    }
    let backend = ctx.settings.backend_for(set.project.as_ref())?;
    apply_set(ctx, &backend, checked, &args.options, None).await.map(drop)
}
