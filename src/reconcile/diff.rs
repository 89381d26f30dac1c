//! Diff data for people: a unified diff of the canonical YAML of each change. A skill's bundle
//! is shown as its digest and one line per file (size and the start of its SHA-256), never the
//! files' content.

use std::borrow::Cow;

use serde_json::Value;
use similar::TextDiff;

use super::canonical;
use super::plan::Change;
use crate::model::{Kind, SkillBundle};

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
    let none = Value::Null;
    let (before, after, old_label, new_label) = match change {
        Change::Create { after, .. } => (&none, &**after, "(absent)".to_owned(), format!("{address} (new)")),
        Change::Update { before, after, generation, .. } => {
            (&**before, &**after, format!("{address} (generation {generation})"), format!("{address} (desired)"))
        }
        Change::Rename { from, before, after, generation, .. } => (
            &**before,
            &**after,
            format!("{} (generation {generation})", crate::backend::address(change.kind(), from)),
            format!("{address} (renamed)"),
        ),
        Change::Delete { before, generation, .. } => {
            (&**before, &none, format!("{address} (generation {generation})"), "(deleted)".to_owned())
        }
        Change::Unchanged { .. } => return Vec::new(),
    };
    between(change.kind(), (&old_label, before), (&new_label, after), 3)
}

/// The unified diff of two manifests of one kind (`null` for an absent one), each labelled,
/// with `context` lines around each change.
#[must_use]
pub fn between(
    kind: Kind,
    (old_label, before): (&str, &Value),
    (new_label, after): (&str, &Value),
    context: usize,
) -> Vec<Line> {
    let to_yaml = |manifest: &Value| {
        if manifest.is_null() { String::new() } else { canonical::to_yaml(&readable(kind, manifest)) }
    };
    let (before, after) = (to_yaml(before), to_yaml(after));
    let diff = TextDiff::from_lines(&before, &after);
    let mut lines = vec![Line::Header(format!("--- {old_label}")), Line::Header(format!("+++ {new_label}"))];
    for hunk in diff.unified_diff().context_radius(context).iter_hunks() {
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

/// The manifest as a diff shows it: a skill's bundle summarized.
fn readable(kind: Kind, manifest: &Value) -> Cow<'_, Value> {
    let Some(bundle) = manifest.pointer("/spec/bundle").filter(|_| kind == Kind::Skill) else {
        return Cow::Borrowed(manifest);
    };
    let summary = match serde_json::from_value::<SkillBundle>(bundle.clone()) {
        Ok(bundle) => bundle.diff_summary(),
        Err(_) => serde_json::json!({"digest": bundle.get("digest"), "files": "(unreadable)"}),
    };
    let mut shown = manifest.clone();
    if let Some(slot) = shown.pointer_mut("/spec/bundle") {
        *slot = summary;
    }
    Cow::Owned(shown)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AnyResource, Skill, SkillFile, SkillSpec};
    use crate::reconcile::Desired;

    fn skill(files: &[(&str, &str)]) -> Value {
        let bundle = SkillBundle::new(files.iter().map(|(p, t)| SkillFile::new(*p, t.as_bytes(), false)).collect());
        let spec = SkillSpec { bundle: Some(bundle.unwrap()), ..SkillSpec::directory("skills/tool") };
        Value::clone(&Desired::new(AnyResource::from(Skill::new("tool", spec))).manifest())
    }

    #[test]
    fn a_changed_skill_file_shows_as_a_changed_line_not_its_content() {
        let before = skill(&[("SKILL.md", "# Tool\nUse it wisely."), ("notes.txt", "first draft")]);
        let after = skill(&[("SKILL.md", "# Tool\nUse it wisely."), ("notes.txt", "second draft")]);
        let change = Change::Update {
            kind: Kind::Skill,
            name: "tool".into(),
            before: before.into(),
            after: after.into(),
            generation: 1,
            previous_owner: None,
        };
        let lines = unified(&change);
        let text = format!("{lines:?}");
        assert!(!text.contains("draft") && !text.contains("wisely"), "{text}");
        let removed: Vec<&Line> = lines.iter().filter(|l| matches!(l, Line::Removed(_))).collect();
        let added: Vec<&Line> = lines.iter().filter(|l| matches!(l, Line::Added(_))).collect();
        assert_eq!((removed.len(), added.len()), (2, 2), "the digest and the one file: {text}");
        assert!(matches!(added[0], Line::Added(t) if t.contains("digest: sha256:")), "{text}");
        assert!(matches!(added[1], Line::Added(t) if t.contains("- notes.txt (12 bytes, sha256 ")), "{text}");
    }
}
