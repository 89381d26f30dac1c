//! The first two stages of every reconcile, file by file on all cores: read and parse a file
//! (`manifest`), check each of its documents on its own, then let its parse trees go, so a
//! large tree of manifests is never held parsed all at once.

use std::io::Read;

use super::{DocumentOutcome, check_document, resolve_expressions};
use crate::manifest::{Entry, FileLoad, InputPath, ManifestSet, discover, read_manifest, read_stdin};

/// Manifests read and checked document by document: the set (sources kept for diagnostics,
/// parse trees released) and one outcome per document of the set, in order. What the checks
/// across documents ([`super::check_set`]) and the planner take.
#[derive(Debug, Default)]
pub struct Checked {
    /// Every source, document and reading problem.
    pub set: ManifestSet,
    /// What checking each document on its own found, one per `set.documents`.
    pub outcomes: Vec<DocumentOutcome>,
}

/// Reads every input and checks each document on its own: files on all cores, standard input
/// on this thread. Never stops at the first problem.
pub fn load_checked(inputs: &[InputPath], stdin: &mut dyn Read) -> Checked {
    let discovery = discover(inputs);
    let mut checked = Checked::default();
    checked.set.diagnostics = discovery.diagnostics;
    let files = crate::parallel::map(&discovery.entries, |entry| match entry {
        Entry::Manifest(path) => Some(check_file(read_manifest(path))),
        Entry::Project(_) | Entry::Stdin => None,
    });
    for (entry, file) in discovery.entries.iter().zip(files) {
        let file = match (entry, file) {
            (Entry::Project(path), _) => {
                checked.set.add_project_file(read_manifest(path));
                continue;
            }
            (Entry::Manifest(_), Some(file)) => file,
            _ => check_file(read_stdin(stdin)),
        };
        checked.set.append(file.set);
        checked.outcomes.extend(file.outcomes);
    }
    checked
}

/// Checks one file's documents on their own (diagnostics name the file, so they stay right in
/// any set it joins), compiling their expressions together; the trees are released after.
#[must_use]
pub fn check_file(load: FileLoad) -> Checked {
    let mut set = ManifestSet::default();
    set.add_file(load);
    // Sequential: files are already spread over the cores.
    let mut outcomes: Vec<DocumentOutcome> =
        set.documents.iter().map(|document| check_document(&set, document)).collect();
    resolve_expressions(&mut outcomes);
    set.release_trees();
    Checked { set, outcomes }
}
