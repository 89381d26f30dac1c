//! `stigmer export`: the stored desired state as a canonical manifest stream, and the files of
//! skills applied from directories.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;

use super::common::{self, parse_kind};
use super::help;
use super::{CommandContext, CommandError, ErrorKind};
use crate::backend::{Backend, ResourceQuery};
use crate::manifest::ManifestSet;
use crate::manifest::file::SpecialFile;
use crate::model::SkillBundle;
use crate::reconcile::export;
use crate::runner::skills::{MaterializeError, write_bundle};

/// Print the stored resources as manifests, ready to commit or import elsewhere.
///
/// The output is a canonical YAML stream. Deterministic: kinds in dependency order, then names; no server-owned fields. Importing the
/// output into an empty store and exporting again gives the same bytes.
///
/// Skills applied from a directory carry their files. With -o FILE, each one's files are
/// written to a directory beside FILE (all.yaml → all.skills/NAME/, replaced as a whole) and
/// its manifest's path points there, so `import -f FILE` restores the same files. On standard
/// output a stream cannot carry files: SKILL.md is written inline as skillMd, and any other
/// files are left out with a warning.
#[derive(Debug, Args)]
#[command(after_help = help::after(
    &[
        "stigmer export --all > all.yaml",
        "stigmer export --all -o backup/all.yaml      # skill files go to backup/all.skills/",
        "stigmer export agents skills -o agents-and-skills.yaml",
    ],
    &[help::COLOR, help::HOME, help::BACKEND],
))]
pub struct ExportArgs {
    /// Export every declarative kind.
    #[arg(long, conflicts_with = "kinds")]
    pub all: bool,
    /// Kinds to export.
    pub kinds: Vec<String>,
    /// Write to this file (atomically) instead of stdout, and skill directories beside it.
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
    if let Some(path) = &args.output {
        check_output(path)?;
    }
    let resources = ctx.settings.backend()?.list(&ResourceQuery { kinds, ..ResourceQuery::default() }).await?;
    let skills_dir = args.output.as_deref().map(skills_dir_name);
    let export = export::export(&resources, skills_dir.as_deref());
    let stream = export.stream();
    let report = common::report(ctx, &ManifestSet::default(), &export.warnings);
    match (&args.output, &skills_dir) {
        (Some(path), Some(dir)) => {
            write_skill_directories(path, dir, &export.skill_directories)?;
            write_atomically(path, &stream)?;
        }
        _ => ctx.out(&stream)?,
    }
    report
}

/// Refuses an output that cannot be written as a file before anything is written: a directory,
/// a pipe or a device in its place (renaming over it would replace it), or a missing directory.
fn check_output(path: &Path) -> Result<(), CommandError> {
    let shown = path.display();
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {
            return Err(CommandError::user(format!("{shown} is a directory"))
                .hint("-o names the file to write, e.g. -o backup/all.yaml"));
        }
        Ok(meta) => {
            if let Some(what) = SpecialFile::of(&meta) {
                return Err(CommandError::user(format!("{shown} is a {what}, not a regular file"))
                    .hint("-o names a file to write; leave -o out to write to standard output"));
            }
        }
        Err(_) => {}
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    match std::fs::metadata(parent) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(CommandError::user(format!("cannot write {shown}: {} is not a directory", parent.display()))),
        Err(e) => Err(CommandError::io(&format!("cannot write {shown}"), e).hint("create the directory first")),
    }
}

/// The directory beside FILE that holds the exported skills: `all.yaml` → `all.skills`.
fn skills_dir_name(file: &Path) -> String {
    let stem = file.file_stem().map_or_else(|| "export".into(), |s| s.to_string_lossy().into_owned());
    format!("{stem}.skills")
}

/// Writes each skill's files to `DIR/NAME/` beside `file`, replacing what an earlier export left
/// there: everything is written into a temporary directory first, then swapped in.
fn write_skill_directories(file: &Path, dir: &str, skills: &[(String, SkillBundle)]) -> Result<(), CommandError> {
    if skills.is_empty() {
        return Ok(());
    }
    let parent = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let target = parent.join(dir);
    let temporary = parent.join(format!(".{dir}.{}.tmp", std::process::id()));
    let previous = parent.join(format!(".{dir}.{}.old", std::process::id()));
    let fail = |e: MaterializeError| {
        let _ = std::fs::remove_dir_all(&temporary);
        CommandError::new(ErrorKind::Io, e).hint(format!("nothing was written to {}", target.display()))
    };
    for (name, bundle) in skills {
        write_bundle(bundle, &temporary.join(name)).map_err(&fail)?;
    }
    let io = |what: &str, e| {
        let _ = std::fs::remove_dir_all(&temporary);
        CommandError::io(&format!("cannot {what} {}", target.display()), e)
    };
    match std::fs::symlink_metadata(&target) {
        Ok(meta) if meta.is_dir() => std::fs::rename(&target, &previous).map_err(|e| io("replace", e))?,
        Ok(_) => {
            return Err(fail(MaterializeError::InTheWay { path: target.clone() }));
        }
        Err(_) => {}
    }
    std::fs::rename(&temporary, &target).map_err(|e| io("write", e))?;
    // What an earlier export left; failing to tidy it away does not undo this export.
    let _ = std::fs::remove_dir_all(&previous);
    Ok(())
}

/// Writes through a temporary file in the same directory and renames it over `path`, so a
/// failure never leaves a half-written export.
fn write_atomically(path: &Path, text: &str) -> Result<(), CommandError> {
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
