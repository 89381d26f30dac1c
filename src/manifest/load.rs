//! Turning `-f` arguments into parsed documents, refusing hostile input early.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::Deserialize;

use super::diagnostic::{Diagnostic, Location};
use super::file::{self, FileError, SpecialFile};
use super::yaml::{self, Node, NodeValue, Position, SyntaxKind};
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
    /// Where the document starts.
    pub position: Position,
    /// The parsed tree while the set keeps it (see [`ManifestSet::release_trees`]); shared with
    /// the file's cache in watch mode.
    tree: Option<Arc<Node>>,
}

impl LoadedDocument {
    fn new(source: usize, document: yaml::Document) -> Self {
        Self { source, index: document.index, position: document.root.position, tree: Some(document.root) }
    }
}

/// The project file's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// The project's name: the apply set its resources belong to.
    pub name: String,
    /// The context to use when none is chosen on the command line.
    pub context: Option<String>,
    /// Resources renamed (`moved`).
    pub moved: Vec<Moved>,
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
    /// The trees of sources parsed again after [`ManifestSet::release_trees`], by source.
    reparsed: Mutex<HashMap<usize, Vec<Arc<Node>>>>,
}

impl Clone for ManifestSet {
    fn clone(&self) -> Self {
        Self {
            sources: self.sources.clone(),
            documents: self.documents.clone(),
            project: self.project.clone(),
            diagnostics: self.diagnostics.clone(),
            reparsed: Mutex::default(),
        }
    }
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

    /// A document's parse tree: the one kept, or, once released, parsed again from the source
    /// text (the few documents a diagnostic must point into pay for it, not every document).
    #[must_use]
    pub fn tree(&self, document: &LoadedDocument) -> Arc<Node> {
        if let Some(tree) = &document.tree {
            return Arc::clone(tree);
        }
        let mut reparsed = self.reparsed.lock().unwrap_or_else(PoisonError::into_inner);
        let trees = reparsed.entry(document.source).or_insert_with(|| {
            let text = self.sources.get(document.source).map_or("", |source| source.text.as_str());
            yaml::parse_stream(text).documents.into_iter().map(|document| document.root).collect()
        });
        trees
            .get(document.index)
            .map_or_else(|| Arc::new(Node { position: document.position, value: NodeValue::Null }), Arc::clone)
    }

    /// Drops every document's parse tree, keeping the source texts: once documents are checked
    /// their trees are the largest part of a set, and only diagnostics need them again.
    pub fn release_trees(&mut self) {
        for document in &mut self.documents {
            document.tree = None;
        }
    }

    /// Moves every source, document and diagnostic of `other` (a file read on its own) into
    /// this set, after those already here.
    pub fn append(&mut self, other: Self) {
        let offset = self.sources.len();
        self.sources.extend(other.sources);
        self.documents.extend(
            other.documents.into_iter().map(|document| LoadedDocument { source: document.source + offset, ..document }),
        );
        self.diagnostics.extend(other.diagnostics);
    }

    /// The text of the source with this display name.
    #[must_use]
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.sources.iter().find(|s| s.name == name).map(|s| s.text.as_str())
    }
}

/// Reads every input; never stops at the first problem.
///
/// Directories are read recursively (`*.yaml`, `*.yml`, hidden entries skipped, symlinks
/// followed once). A `stigmer.yaml` at the root of a directory argument is the project file.
/// Files are read and parsed on all cores.
pub fn load(inputs: &[InputPath], stdin: &mut dyn Read) -> ManifestSet {
    let discovery = discover(inputs);
    let mut set = ManifestSet { diagnostics: discovery.diagnostics, ..ManifestSet::default() };
    let files = crate::parallel::map(&discovery.entries, |entry| match entry {
        Entry::Manifest(path) | Entry::Project(path) => Some(read_manifest(path)),
        Entry::Stdin => None,
    });
    for (entry, file) in discovery.entries.iter().zip(files) {
        match (entry, file) {
            (Entry::Project(_), Some(file)) => set.add_project_file(file),
            (Entry::Manifest(_), Some(file)) => set.add_file(file),
            _ => set.add_file(read_stdin(stdin)),
        }
    }
    set
}

/// One thing the inputs name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Entry {
    /// The project file.
    Project(PathBuf),
    /// A manifest file.
    Manifest(PathBuf),
    /// Standard input.
    Stdin,
}

/// What the inputs name, in reading order, and the problems met while looking.
#[derive(Debug, Default)]
pub struct Discovery {
    /// Project files, manifest files and stdin, in order; each file once.
    pub entries: Vec<Entry>,
    /// Paths that could not be read, nested project files.
    pub diagnostics: Vec<Diagnostic>,
}

/// Finds every file the inputs name, without reading them.
#[must_use]
pub fn discover(inputs: &[InputPath]) -> Discovery {
    let mut discovery = Discovery::default();
    let mut empty_dirs = Vec::new();
    // The same file named twice (`-f dir -f dir/a.yaml`) is read once.
    let mut seen = HashSet::new();
    let mut push_file = |discovery: &mut Discovery, path: PathBuf, project: bool| {
        let canonical = fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if seen.insert(canonical) {
            discovery.entries.push(if project { Entry::Project(path) } else { Entry::Manifest(path) });
        }
    };
    for input in inputs {
        match input {
            InputPath::Stdin => discovery.entries.push(Entry::Stdin),
            InputPath::Path(path) => match fs::metadata(path) {
                Ok(meta) if meta.is_dir() => {
                    let mut files = Vec::new();
                    let mut visited = HashSet::new();
                    walk_dir(path, &mut files, &mut visited, &mut discovery.diagnostics);
                    if files.is_empty() {
                        empty_dirs.push(path);
                    }
                    files.sort();
                    for file in files {
                        let is_project = file.file_name().is_some_and(|n| n == PROJECT_FILE);
                        if is_project && file.parent() == Some(path.as_path()) {
                            push_file(&mut discovery, file, true);
                        } else if is_project {
                            let location = Location { file: file.display().to_string(), position: Position::START };
                            discovery.diagnostics.push(
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
                        } else {
                            push_file(&mut discovery, file, false);
                        }
                    }
                }
                Ok(_) => {
                    let is_project = path.file_name().is_some_and(|n| n == PROJECT_FILE);
                    push_file(&mut discovery, path.clone(), is_project);
                }
                Err(e) => discovery
                    .diagnostics
                    .push(io_error(&path.display().to_string(), &e).hint("check the path given to -f")),
            },
        }
    }
    // Nothing to read at all: say which directories were empty (with other inputs, an empty
    // directory is not an error).
    if discovery.entries.is_empty() && discovery.diagnostics.iter().all(|d| !d.is_error()) {
        for dir in empty_dirs {
            discovery.diagnostics.push(
                Diagnostic::error("no-manifests", format!("no manifests found in {}", dir.display()))
                    .hint("-f takes YAML files (.yaml, .yml), directories of them, or - for stdin"),
            );
        }
    }
    // Project files first, so the apply set is known whatever the order of the inputs.
    discovery.entries.sort_by_key(|e| !matches!(e, Entry::Project(_)));
    discovery
}

/// One file read and parsed: its text (for snippets), its documents and its problems.
#[derive(Debug, Clone)]
pub struct FileLoad {
    /// The text, when it could be read as UTF-8.
    pub source: Option<Source>,
    /// The documents parsed before any syntax error.
    pub documents: Vec<yaml::Document>,
    /// What was wrong.
    pub diagnostics: Vec<Diagnostic>,
}

/// Reads and parses one manifest file.
#[must_use]
pub fn read_manifest(path: &Path) -> FileLoad {
    match read_bounded(path) {
        Ok(bytes) => parse_bytes(path.display().to_string(), Some(path.to_path_buf()), &bytes),
        Err(diagnostic) => FileLoad { source: None, documents: Vec::new(), diagnostics: vec![*diagnostic] },
    }
}

/// Reads and parses standard input, bounded as a manifest file is.
pub fn read_stdin(stdin: &mut dyn Read) -> FileLoad {
    let mut bytes = Vec::new();
    match stdin.take(MAX_MANIFEST_BYTES + 1).read_to_end(&mut bytes) {
        Ok(_) => parse_bytes("<stdin>".to_owned(), None, &bytes),
        Err(e) => FileLoad { source: None, documents: Vec::new(), diagnostics: vec![io_error("<stdin>", &e)] },
    }
}

impl ManifestSet {
    /// Adds a file's source, documents and diagnostics.
    pub fn add_file(&mut self, file: FileLoad) {
        self.diagnostics.extend(file.diagnostics);
        let Some(source) = file.source else { return };
        self.sources.push(source);
        let index = self.sources.len() - 1;
        self.documents.extend(file.documents.into_iter().map(|document| LoadedDocument::new(index, document)));
    }
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
            Ok(meta) if is_manifest_name(&path) => match SpecialFile::of(&meta) {
                None => files.push(path),
                // A pipe found while walking is never opened: reading it could wait forever.
                Some(what) => {
                    let name = path.display().to_string();
                    diagnostics.push(
                        Diagnostic::error("not-a-file", format!("{name} is a {what}, not a regular file"))
                            .at(Location { file: name.clone(), position: Position::START })
                            .hint(format!(
                                "only regular files are read from a directory; remove it, or pass it to -f on its \
                                 own to read from it: -f {name}"
                            )),
                    );
                }
            },
            Ok(_) => {}
            Err(e) => diagnostics.push(io_error(&path.display().to_string(), &e)),
        }
    }
}

fn is_manifest_name(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "yaml" || e == "yml")
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, Box<Diagnostic>> {
    let name = path.display().to_string();
    file::read(path, MAX_MANIFEST_BYTES).map_err(|error| {
        Box::new(match &error {
            FileError::TooLarge { .. } => too_large(&name),
            FileError::Io { source, .. } => io_error(&name, source),
            _ => Diagnostic::error("not-a-file", error.to_string())
                .at(Location { file: name.clone(), position: Position::START })
                .hint(error.hint("-f")),
        })
    })
}

fn too_large(name: &str) -> Diagnostic {
    Diagnostic::error(
        "file-too-large",
        format!("{name} is larger than {} MiB; manifests are not that big", MAX_MANIFEST_BYTES / (1024 * 1024)),
    )
    .at(Location { file: name.to_owned(), position: Position::START })
    .hint("split it into several files, or check that -f names the right file")
}

fn parse_bytes(name: String, path: Option<PathBuf>, bytes: &[u8]) -> FileLoad {
    let refused =
        |diagnostic: Diagnostic| FileLoad { source: None, documents: Vec::new(), diagnostics: vec![diagnostic] };
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return refused(too_large(&name));
    }
    let text = match file::text(&name, bytes.to_vec()) {
        Ok(text) => text,
        Err(FileError::Binary { position, .. }) => {
            return refused(
                Diagnostic::error("binary-file", format!("{name} is a binary file, not YAML"))
                    .at(Location { file: name, position })
                    .hint("manifests are UTF-8 YAML text; check that -f names the right file"),
            );
        }
        Err(error) => {
            let position = match &error {
                FileError::NotUtf8 { position, .. } => *position,
                _ => Position::START,
            };
            return refused(
                Diagnostic::error("not-utf8", format!("{name} is not valid UTF-8"))
                    .at(Location { file: name, position })
                    .hint("save the file as UTF-8"),
            );
        }
    };
    let stream = yaml::parse_stream(&text);
    let mut diagnostics = Vec::new();
    if let Some(error) = stream.error {
        let location = Location { file: name.clone(), position: error.position.unwrap_or(Position::START) };
        diagnostics.push(syntax_diagnostic(&error).at(location));
    } else if stream.documents.is_empty() {
        diagnostics.push(
            Diagnostic::error("empty-file", "this file holds no manifests")
                .at(Location { file: name.clone(), position: Position::START })
                .hint("add a manifest, or remove the file"),
        );
    }
    FileLoad { source: Some(Source { name, path, text }), documents: stream.documents, diagnostics }
}

fn syntax_diagnostic(error: &yaml::SyntaxError) -> Diagnostic {
    let (code, hint) = match error.kind() {
        SyntaxKind::Tabs => ("yaml-syntax", Some("YAML indents with spaces; replace the tab characters")),
        SyntaxKind::TooComplex => (
            "yaml-too-complex",
            Some("the document expands beyond stigmer's limits (aliases or nesting); write it out plainly"),
        ),
        SyntaxKind::TooDeep => {
            ("yaml-too-deep", Some("manifests nest far less deeply than this; check for a runaway structure"))
        }
        SyntaxKind::Other => ("yaml-syntax", None),
    };
    Diagnostic::error(code, format!("invalid YAML: {}", error.message)).hint_opt(hint.map(str::to_owned))
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
    #[serde(default)]
    moved: Vec<MovedEntry>,
}

/// One entry of the project file's `moved`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MovedEntry {
    from: String,
    to: String,
}

/// A rename the project file declares: `moved: [{from: agent/old, to: agent/new}]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    /// The kind (both sides name the same one).
    pub kind: crate::model::Kind,
    /// The old name.
    pub from: String,
    /// The new name.
    pub to: String,
}

/// Reads one `moved` entry: two addresses of the same kind.
fn moved_entry(entry: &MovedEntry) -> Result<Moved, String> {
    let split = |address: &str| -> Result<(crate::model::Kind, String), String> {
        let (kind, name) =
            address.split_once('/').ok_or_else(|| format!("\"{address}\" is not an address like agent/name"))?;
        let kind = crate::model::Kind::from_cli(kind).ok_or_else(|| format!("\"{kind}\" is not a kind"))?;
        check_name(name).map_err(|e| format!("\"{name}\" {e}"))?;
        Ok((kind, name.to_owned()))
    };
    let (kind, from) = split(&entry.from)?;
    let (to_kind, to) = split(&entry.to)?;
    if kind != to_kind {
        return Err(format!("{} and {} are of different kinds", entry.from, entry.to));
    }
    Ok(Moved { kind, from, to })
}

impl ManifestSet {
    /// Adds a project file: its text (for snippets) and its project, not its document.
    pub fn add_project_file(&mut self, mut file: FileLoad) {
        add_project(self, &mut file);
    }
}

fn add_project(set: &mut ManifestSet, file: &mut FileLoad) {
    let documents = std::mem::take(&mut file.documents);
    set.add_file(FileLoad {
        source: file.source.take(),
        documents: Vec::new(),
        diagnostics: std::mem::take(&mut file.diagnostics),
    });
    let Some(first) = documents.into_iter().next() else { return };
    let root = Arc::clone(&first.root);
    let document = &LoadedDocument::new(set.sources.len().saturating_sub(1), first);
    let location = set.location(document, document.position);
    let hint = "a project file holds `name: my-project` and, optionally, `context: NAME`";
    match serde_json::from_value::<ProjectFile>(root.to_json()) {
        Ok(project) => {
            if let Err(e) = check_name(&project.name) {
                let at = root.get("name").map_or(location.clone(), |e| set.location(document, e.value.position));
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
            let mut moved = Vec::new();
            for entry in &project.moved {
                match moved_entry(entry) {
                    Ok(one) => moved.push(one),
                    Err(why) => {
                        let at =
                            root.get("moved").map_or(location.clone(), |e| set.location(document, e.value.position));
                        set.diagnostics.push(
                            Diagnostic::error("bad-moved", format!("moved: {why}"))
                                .at(at)
                                .hint("write each rename as {from: agent/old-name, to: agent/new-name}"),
                        );
                    }
                }
            }
            set.project = Some(Project { name: project.name, context: project.context, moved, location });
        }
        Err(e) => set
            .diagnostics
            .push(Diagnostic::error("bad-project-file", format!("invalid project file: {e}")).at(location).hint(hint)),
    }
}
