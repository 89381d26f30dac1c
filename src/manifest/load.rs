//! Turning `-f` arguments into parsed documents, refusing hostile input early.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::diagnostic::{Diagnostic, Location};
use super::yaml::{self, Node, Position};
use crate::model::meta::check_name;

/// The largest manifest file read; larger ones are refused before reading.
pub const MAX_MANIFEST_BYTES: u64 = 32 * 1024 * 1024;

/// The project file at a directory's root: it names the apply set; it is not a resource.
pub const PROJECT_FILE: &str = "stigmer.yaml";

/// One `-f` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputPath {
    /// A file or a directory (read recursively).
    Path(PathBuf),
    /// `-`: standard input.
    Stdin,
}

impl From<&str> for InputPath {
    fn from(arg: &str) -> Self {
        if arg == "-" { Self::Stdin } else { Self::Path(PathBuf::from(arg)) }
    }
}

/// The text of one file (or of stdin), kept for snippets in diagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The name shown in diagnostics: the path as the user wrote it, or `<stdin>`.
    pub name: String,
    /// Where the file is, to resolve relative paths in manifests (`None` for stdin).
    pub path: Option<PathBuf>,
    /// The text.
    pub text: String,
}

/// One YAML document, tagged with its source.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedDocument {
    /// Index into [`ManifestSet::sources`].
    pub source: usize,
    /// 0-based index of the document within its source.
    pub index: usize,
    /// The parsed tree.
    pub root: Node,
}

/// The project file's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// The project's name: the apply set its resources belong to.
    pub name: String,
    /// The context to use when none is chosen on the command line.
    pub context: Option<String>,
    /// Where the project file is.
    pub location: Location,
}

/// Everything read from the `-f` arguments: sources, documents, the project, and what was wrong.
#[derive(Debug, Default)]
pub struct ManifestSet {
    /// Every source read, in order.
    pub sources: Vec<Source>,
    /// Every document parsed, in order.
    pub documents: Vec<LoadedDocument>,
    /// The project file, when a directory had one.
    pub project: Option<Project>,
    /// Problems met while reading and parsing.
    pub diagnostics: Vec<Diagnostic>,
}

impl ManifestSet {
    /// The location of `position` in a document's source.
    #[must_use]
    pub fn location(&self, document: &LoadedDocument, position: Position) -> Location {
        self.location_in(document.source, position)
    }

    /// The location of `position` in a source.
    #[must_use]
    pub fn location_in(&self, source: usize, position: Position) -> Location {
        let file = self.sources.get(source).map_or_else(|| "<unknown>".to_owned(), |s| s.name.clone());
        Location { file, position }
    }

    /// The text of the source with this display name.
    #[must_use]
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.sources.iter().find(|s| s.name == name).map(|s| s.text.as_str())
    }

    fn add_source(&mut self, name: String, path: Option<PathBuf>, text: String) -> usize {
        self.sources.push(Source { name, path, text });
        self.sources.len() - 1
    }
}

/// Reads every input; never stops at the first problem.
///
/// Directories are read recursively (`*.yaml`, `*.yml`, hidden entries skipped, symlinks
/// followed once). A `stigmer.yaml` at the root of a directory argument is the project file.
pub fn load(inputs: &[InputPath], stdin: &mut dyn Read) -> ManifestSet {
    let mut set = ManifestSet::default();
    let mut seen_files = HashSet::new();
    for input in inputs {
        match input {
            InputPath::Stdin => {
                let mut bytes = Vec::new();
                match stdin.take(MAX_MANIFEST_BYTES + 1).read_to_end(&mut bytes) {
                    Ok(_) => read_bytes(&mut set, "<stdin>".to_owned(), None, &bytes),
                    Err(e) => set.diagnostics.push(io_error("<stdin>", &e)),
                }
            }
            InputPath::Path(path) => match fs::metadata(path) {
                Ok(meta) if meta.is_dir() => {
                    let project = path.join(PROJECT_FILE);
                    if project.is_file() {
                        read_project(&mut set, &project);
                    }
                    let mut files = Vec::new();
                    let mut visited = HashSet::new();
                    walk_dir(path, &mut files, &mut visited, &mut set.diagnostics);
                    files.sort();
                    for file in files {
                        if file.parent() == Some(path.as_path()) && file.file_name().is_some_and(|n| n == PROJECT_FILE)
                        {
                            continue;
                        }
                        if file.file_name().is_some_and(|n| n == PROJECT_FILE) {
                            let location = Location { file: file.display().to_string(), position: Position::START };
                            set.diagnostics.push(
                                Diagnostic::warning(
                                    "nested-project",
                                    "a project file below the directory given is not read",
                                )
                                .at(location)
                                .hint(format!(
                                    "pass its directory to -f on its own to use it: -f {}",
                                    file.parent().map_or_else(String::new, |p| p.display().to_string())
                                )),
                            );
                            continue;
                        }
                        read_file(&mut set, &mut seen_files, &file);
                    }
                }
                Ok(_) if path.file_name().is_some_and(|n| n == PROJECT_FILE) => read_project(&mut set, path),
                Ok(_) => read_file(&mut set, &mut seen_files, path),
                Err(e) => {
                    set.diagnostics.push(io_error(&path.display().to_string(), &e).hint("check the path given to -f"));
                }
            },
        }
    }
    set
}

fn walk_dir(dir: &Path, files: &mut Vec<PathBuf>, visited: &mut HashSet<PathBuf>, diagnostics: &mut Vec<Diagnostic>) {
    // Canonical paths of directories already walked: a symlink loop is walked once.
    let canonical = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    if !visited.insert(canonical) {
        return;
    }
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            diagnostics.push(io_error(&dir.display().to_string(), &e));
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if hidden {
            continue;
        }
        match fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => walk_dir(&path, files, visited, diagnostics),
            Ok(_) if is_manifest_name(&path) => files.push(path),
            Ok(_) => {}
            Err(e) => diagnostics.push(io_error(&path.display().to_string(), &e)),
        }
    }
}

fn is_manifest_name(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "yaml" || e == "yml")
}

fn read_file(set: &mut ManifestSet, seen: &mut HashSet<PathBuf>, path: &Path) {
    // The same file named twice (`-f dir -f dir/a.yaml`) is read once.
    let canonical = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if !seen.insert(canonical) {
        return;
    }
    let name = path.display().to_string();
    match read_bounded(path) {
        Ok(bytes) => read_bytes(set, name, Some(path.to_path_buf()), &bytes),
        Err(diagnostic) => set.diagnostics.push(*diagnostic),
    }
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, Box<Diagnostic>> {
    let name = path.display().to_string();
    let file = fs::File::open(path).map_err(|e| Box::new(io_error(&name, &e)))?;
    let size = file.metadata().map_err(|e| Box::new(io_error(&name, &e)))?.len();
    if size > MAX_MANIFEST_BYTES {
        return Err(Box::new(too_large(&name)));
    }
    let mut bytes = Vec::new();
    file.take(MAX_MANIFEST_BYTES + 1).read_to_end(&mut bytes).map_err(|e| Box::new(io_error(&name, &e)))?;
    Ok(bytes)
}

fn too_large(name: &str) -> Diagnostic {
    Diagnostic::error(
        "file-too-large",
        format!("{name} is larger than {} MiB; manifests are not that big", MAX_MANIFEST_BYTES / (1024 * 1024)),
    )
    .at(Location { file: name.to_owned(), position: Position::START })
    .hint("split it into several files, or check that -f names the right file")
}

fn read_bytes(set: &mut ManifestSet, name: String, path: Option<PathBuf>, bytes: &[u8]) {
    let start = Location { file: name.clone(), position: Position::START };
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        set.diagnostics.push(too_large(&name));
        return;
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if let Some(nul) = bytes.iter().position(|b| *b == 0) {
        let position = position_of_byte(bytes, nul);
        set.diagnostics.push(
            Diagnostic::error("binary-file", format!("{name} is a binary file, not YAML"))
                .at(Location { file: name, position })
                .hint("manifests are UTF-8 YAML text; check that -f names the right file"),
        );
        return;
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(e) => {
            let position = position_of_byte(bytes, e.valid_up_to());
            set.diagnostics.push(
                Diagnostic::error("not-utf8", format!("{name} is not valid UTF-8"))
                    .at(Location { file: name, position })
                    .hint("save the file as UTF-8"),
            );
            return;
        }
    };
    let stream = yaml::parse_stream(&text);
    let source = set.add_source(name, path, text);
    let document_count = stream.documents.len();
    for document in stream.documents {
        set.documents.push(LoadedDocument { source, index: document.index, root: document.root });
    }
    if let Some(error) = stream.error {
        let location = set.location_in(source, error.position.unwrap_or(Position::START));
        set.diagnostics.push(syntax_diagnostic(&error.message).at(location));
    } else if document_count == 0 {
        set.diagnostics.push(
            Diagnostic::error("empty-file", "this file holds no manifests")
                .at(start)
                .hint("add a manifest, or remove the file"),
        );
    }
}

fn syntax_diagnostic(message: &str) -> Diagnostic {
    let lower = message.to_lowercase();
    let (code, hint) = if lower.contains("tab") {
        ("yaml-syntax", Some("YAML indents with spaces; replace the tab characters"))
    } else if lower.contains("alias")
        || lower.contains("budget")
        || lower.contains("anchor")
        || lower.contains("replay")
    {
        (
            "yaml-too-complex",
            Some("the document expands beyond stigmer's limits (aliases or nesting); write it out plainly"),
        )
    } else if lower.contains("depth") || lower.contains("nesting") || lower.contains("recursion") {
        ("yaml-too-deep", Some("manifests nest far less deeply than this; check for a runaway structure"))
    } else {
        ("yaml-syntax", None)
    };
    Diagnostic::error(code, format!("invalid YAML: {message}")).hint_opt(hint.map(str::to_owned))
}

/// Line and column (in characters) of a byte offset, for input that may not be UTF-8.
#[allow(clippy::naive_bytecount, reason = "runs once, on an error path")]
fn position_of_byte(bytes: &[u8], offset: usize) -> Position {
    let before = &bytes[..offset.min(bytes.len())];
    let line_start = before.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let column = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
    Position { line: u32::try_from(line).unwrap_or(u32::MAX), column: u32::try_from(column).unwrap_or(u32::MAX) }
}

fn io_error(name: &str, error: &io::Error) -> Diagnostic {
    Diagnostic::error("io", format!("cannot read {name}: {error}"))
}

/// The project file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectFile {
    name: String,
    #[serde(default)]
    context: Option<String>,
}

fn read_project(set: &mut ManifestSet, path: &Path) {
    let name = path.display().to_string();
    let bytes = match read_bounded(path) {
        Ok(bytes) => bytes,
        Err(diagnostic) => return set.diagnostics.push(*diagnostic),
    };
    let before = set.documents.len();
    read_bytes(set, name.clone(), Some(path.to_path_buf()), &bytes);
    // The project file's document is not a resource: take it back out of the document list.
    let documents: Vec<_> = set.documents.drain(before..).collect();
    let Some(document) = documents.first() else { return };
    let location = set.location(document, document.root.position);
    let hint = "a project file holds `name: my-project` and, optionally, `context: NAME`";
    match serde_json::from_value::<ProjectFile>(document.root.to_json()) {
        Ok(project) => {
            if let Err(e) = check_name(&project.name) {
                let at =
                    document.root.get("name").map_or(location.clone(), |e| set.location(document, e.value.position));
                set.diagnostics.push(
                    Diagnostic::error("bad-project-name", format!("project name \"{}\" {e}", project.name)).at(at),
                );
            }
            if let Some(existing) = &set.project
                && existing.name != project.name
            {
                set.diagnostics.push(
                    Diagnostic::error(
                        "conflicting-projects",
                        format!(
                            "two project files name different projects: \"{}\" and \"{}\"",
                            existing.name, project.name
                        ),
                    )
                    .at(location)
                    .note(existing.location.clone(), "the other project file")
                    .hint("apply one project at a time, or pass --set NAME"),
                );
                return;
            }
            set.project = Some(Project { name: project.name, context: project.context, location });
        }
        Err(e) => set
            .diagnostics
            .push(Diagnostic::error("bad-project-file", format!("invalid project file: {e}")).at(location).hint(hint)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_positions_count_lines_and_characters() {
        assert_eq!(position_of_byte(b"ab\ncd\xffe", 5), Position { line: 2, column: 3 });
        assert_eq!(position_of_byte("é\nx".as_bytes(), 3), Position { line: 2, column: 1 });
    }
}
