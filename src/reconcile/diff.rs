//! Diff data for people: a unified diff of the canonical YAML of each change.

use similar::TextDiff;

use super::canonical::to_yaml;
use super::plan::Change;

/// One line of a rendered diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A file header (`--- agent/x`, `+++ agent/x`).
    Header(String),
    /// A hunk header (`@@ -1,3 +1,4 @@`).
    Hunk(String),
    /// A line only in the stored manifest.
    Removed(String),
    /// A line only in the desired manifest.
    Added(String),
    /// A line in both.
    Context(String),
}

/// The unified diff of one change (empty for unchanged resources): new resources in full,
/// deletions in full, updates with three lines of context.
#[must_use]
pub fn unified(change: &Change) -> Vec<Line> {
    let address = change.address();
    let (before, after, old_label, new_label) = match change {
        Change::Create { after, .. } => {
            (String::new(), to_yaml(after), "(absent)".to_owned(), format!("{address} (new)"))
        }
        Change::Update { before, after, generation, .. } => (
            to_yaml(before),
            to_yaml(after),
            format!("{address} (generation {generation})"),
            format!("{address} (desired)"),
        ),
        Change::Delete { before, generation, .. } => {
            (to_yaml(before), String::new(), format!("{address} (generation {generation})"), "(deleted)".to_owned())
        }
        Change::Unchanged { .. } => return Vec::new(),
    };
    let diff = TextDiff::from_lines(&before, &after);
    let mut lines = vec![Line::Header(format!("--- {old_label}")), Line::Header(format!("+++ {new_label}"))];
    for hunk in diff.unified_diff().context_radius(3).iter_hunks() {
        lines.push(Line::Hunk(hunk.header().to_string().trim_end().to_owned()));
        for change in hunk.iter_changes() {
            let text = change.value().trim_end_matches('\n').to_owned();
            lines.push(match change.tag() {
                similar::ChangeTag::Delete => Line::Removed(text),
                similar::ChangeTag::Insert => Line::Added(text),
                similar::ChangeTag::Equal => Line::Context(text),
            });
        }
    }
    lines
}
