//! `stigmer export`: the stored desired state as a canonical manifest stream.

use std::io::Write as _;
use std::path::PathBuf;

use clap::Args;

use super::common::parse_kind;
use super::{CommandContext, CommandError};
use crate::backend::{Backend, ResourceQuery};
use crate::reconcile::canonical;

/// Print the stored resources as manifests: a canonical YAML stream, ready to commit.
///
/// Deterministic: kinds in dependency order, then names; no server-owned fields. Importing the
/// output into an empty store and exporting again gives the same bytes.
///
/// Examples:
///   stigmer export --all > all.yaml
///   stigmer export agents skills -o agents-and-skills.yaml
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ExportArgs {
    /// Export every declarative kind.
    #[arg(long, conflicts_with = "kinds")]
    pub all: bool,
    /// Kinds to export.
    pub kinds: Vec<String>,
    /// Write to this file (atomically) instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Runs `stigmer export`.
pub async fn run(ctx: &CommandContext, args: &ExportArgs) -> Result<(), CommandError> {
    if !args.all && args.kinds.is_empty() {
        return Err(CommandError::user("say what to export")
            .hint("stigmer export --all, or name kinds: stigmer export agents skills"));
    }
    let kinds = args.kinds.iter().map(|k| parse_kind(k)).collect::<Result<Vec<_>, _>>()?;
    let resources = ctx.settings.backend()?.list(&ResourceQuery { kinds, ..ResourceQuery::default() }).await?;
    let stream = resources.iter().map(|r| canonical::to_yaml(&r.manifest)).collect::<Vec<_>>().join("---\n");
    match &args.output {
        None => ctx.out(&stream),
        Some(path) => write_atomically(path, &stream),
    }
}

/// Writes through a temporary file in the same directory and renames it over `path`, so a
/// failure never leaves a half-written export.
fn write_atomically(path: &PathBuf, text: &str) -> Result<(), CommandError> {
    let name = path.file_name().map_or_else(|| "export".into(), |n| n.to_string_lossy().into_owned());
    let temporary = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let result = std::fs::File::create(&temporary)
        .and_then(|mut file| file.write_all(text.as_bytes()).and_then(|()| file.sync_all()))
        .and_then(|()| std::fs::rename(&temporary, path));
    result.map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        CommandError::io(&format!("cannot write {}", path.display()), e)
    })
}
