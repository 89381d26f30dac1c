//! `stigmer import`: apply a manifest stream, such as `stigmer export` wrote.

use clap::Args;

use super::apply::{ApplyOptions, apply_files};
use super::{CommandContext, CommandError};

/// Apply a stream of manifests, such as `stigmer export` wrote (stdin by default).
///
/// The same as `apply`, with -f defaulting to standard input, so a store moves with
/// `stigmer export --all > all.yaml` here and `stigmer import < all.yaml` there.
///
/// Examples:
///   stigmer import < all.yaml
///   stigmer import -f all.yaml --set migrated
///   stigmer export --all | stigmer --home /tmp/other import
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ImportArgs {
    /// Manifest files or directories; `-` (the default) for stdin. Repeatable.
    #[arg(short = 'f', long = "filename", value_name = "PATH", default_value = "-", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub files: Vec<String>,
    #[command(flatten)]
    pub options: ApplyOptions,
}

/// Runs `stigmer import`.
pub async fn run(ctx: &CommandContext, args: &ImportArgs) -> Result<(), CommandError> {
    apply_files(ctx, &args.files, &args.options).await
}
