//! Pieces several commands share: reading `-f` inputs, reporting diagnostics, parsing kinds.

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::Path;

use super::render::{self, Style};
use super::{CommandContext, CommandError, ErrorKind};
use crate::manifest::{self, Diagnostic, InputPath, ManifestSet, file};
use crate::model::Kind;

/// Reads every `-f` argument.
pub fn load(files: &[String]) -> ManifestSet {
    manifest::load(&inputs(files), &mut std::io::stdin().lock())
}

/// Reads every `-f` argument and checks each document on its own (the first stages of
/// `validate`, `apply` and `diff`).
pub fn load_checked(files: &[String]) -> crate::validate::Checked {
    crate::validate::load_checked(&inputs(files), &mut std::io::stdin().lock())
}

/// The `-f` arguments as inputs.
pub fn inputs(files: &[String]) -> Vec<InputPath> {
    files.iter().map(|f| InputPath::from(f.as_str())).collect()
}

/// Reads only the project files the inputs name (for the apply set), not the manifests.
pub fn load_project(files: &[String]) -> ManifestSet {
    let mut set = ManifestSet::default();
    for entry in manifest::discover(&inputs(files)).entries {
        if let manifest::Entry::Project(path) = entry {
            set.add_project_file(manifest::read_manifest(&path));
        }
    }
    set
}

/// Prints diagnostics on stderr, followed by a count line when any is an error.
pub fn report(ctx: &CommandContext, set: &ManifestSet, diagnostics: &[Diagnostic]) -> Result<(), CommandError> {
    if diagnostics.is_empty() {
        return Ok(());
    }
    let style = Style::new(ctx.settings.color_stderr);
    let mut text = String::new();
    for diagnostic in diagnostics {
        text.push_str(&render::diagnostic(set, diagnostic, style));
        text.push('\n');
    }
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    if errors > 0 {
        let warnings = match diagnostics.len() - errors {
            0 => String::new(),
            n => format!(" and {}", counted(n, "warning")),
        };
        let _ = writeln!(text, "{} found {}{warnings}", style.error("error:"), counted(errors, "error"));
    }
    ctx.err(&text)
}

/// A kind as typed on the command line.
pub fn parse_kind(name: &str) -> Result<Kind, CommandError> {
    Kind::from_cli(name).ok_or_else(|| {
        let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.cli_name()).collect();
        CommandError::user(format!("unknown kind \"{name}\"")).hint(format!("kinds: {}", kinds.join(", ")))
    })
}

/// What a plan does, in one line: `3 created, 1 updated, 0 deleted, 12 unchanged` (`apply`,
/// `diff` and `apply --watch` print it alike).
pub fn plan_summary(counts: crate::reconcile::Counts) -> String {
    let renamed = if counts.renamed > 0 { format!(", {} renamed", counts.renamed) } else { String::new() };
    format!(
        "{} created, {} updated{renamed}, {} deleted, {} unchanged",
        counts.created, counts.updated, counts.deleted, counts.unchanged
    )
}

/// `1 error`, `3 errors`.
pub fn counted(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

/// Serializes a value as pretty JSON with a final newline.
pub fn json<T: serde::Serialize>(value: &T) -> Result<String, CommandError> {
    let mut text =
        serde_json::to_string_pretty(value).map_err(|e| CommandError::user(format!("cannot encode JSON: {e}")))?;
    text.push('\n');
    Ok(text)
}

/// A plain, borderless table (kubectl style), one line per row, trailing spaces trimmed.
pub fn table(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut table = comfy_table::Table::new();
    table.load_style(comfy_table::presets::NOTHING).set_content_arrangement(comfy_table::ContentArrangement::Disabled);
    table.set_header(header.to_vec());
    for row in rows {
        table.add_row(row);
    }
    table.lines().fold(String::new(), |mut out, line| {
        out.push_str(line.trim());
        out.push('\n');
        out
    })
}

/// A time as people read it in tables: UTC to the second, fixed width.
pub fn time(at: jiff::Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A time in a table, or in a wide one to the fraction of a second (which orders changes made
/// in the same second).
pub fn time_in(at: jiff::Timestamp, wide: bool) -> String {
    if wide { at.to_string() } else { time(at) }
}

/// A duration as typed on the command line: `250ms`, `30s`, `5m`, `1h`, `30d`, or plain seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("\"{text}\" is not a duration; write 500ms, 30s, 5m or 1h"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        "d" => value * 86400.0,
        other => return Err(format!("unknown unit \"{other}\" in \"{text}\"; use ms, s, m or h")),
    };
    std::time::Duration::try_from_secs_f64(seconds).map_err(|_| format!("\"{text}\" is out of range"))
}

/// A duration that is more than zero: a period, a lifetime.
pub fn parse_positive_duration(text: &str) -> Result<std::time::Duration, String> {
    let duration = parse_duration(text)?;
    if duration.is_zero() {
        return Err(format!("\"{}\" is no time at all; give a duration above zero", text.trim()));
    }
    Ok(duration)
}

/// Reads a file named by `option`, bounded by `limit` bytes (see [`crate::manifest::file`]).
pub fn read_file(path: &Path, limit: u64, option: &str) -> Result<Vec<u8>, CommandError> {
    file::read(path, limit).map_err(|e| file_error(e, option))
}

/// Reads a text file named by `option`, bounded by `limit` bytes: UTF-8, no NUL bytes.
pub fn read_text_file(path: &Path, limit: u64, option: &str) -> Result<String, CommandError> {
    let bytes = read_file(path, limit, option)?;
    file::text(&path.display().to_string(), bytes).map_err(|e| file_error(e, option))
}

/// Reads standard input as text, bounded by `limit` bytes.
pub fn read_text_stdin(limit: u64, option: &str) -> Result<String, CommandError> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| CommandError::io("cannot read standard input", e))?;
    if bytes.len() as u64 > limit {
        return Err(file_error(file::FileError::TooLarge { path: "standard input".to_owned(), limit }, option));
    }
    file::text("<stdin>", bytes).map_err(|e| file_error(e, option))
}

fn file_error(error: file::FileError, option: &str) -> CommandError {
    let hint = error.hint(option);
    let kind = if matches!(error, file::FileError::Io { .. }) { ErrorKind::Io } else { ErrorKind::User };
    CommandError::new(kind, error).hint(hint)
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
