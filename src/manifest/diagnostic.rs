//! Diagnostics: what is wrong, where (`file:line:col`), and a hint for the fix.

use std::fmt;

use serde::Serialize;

use super::yaml::Position;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The input cannot be used.
    Error,
    /// The input works but probably not as meant.
    Warning,
}

/// A place in a source: its display name and a position.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Location {
    /// The file as the user named it (`manifests/agents.yaml`, `<stdin>`).
    pub file: String,
    /// Line and column.
    #[serde(flatten)]
    pub position: Position,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.position)
    }
}

/// A secondary place that explains a diagnostic (`first defined here`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    /// Where.
    pub location: Location,
    /// What it is.
    pub message: String,
}

/// One problem found in the input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// A stable, short identifier of the kind of problem (`unknown-field`).
    pub code: &'static str,
    /// What is wrong, in one sentence.
    pub message: String,
    /// Where, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// How to fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Other places that matter.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<Note>,
    /// Text to mask wherever the diagnostic shows source (a secret written in the file); never
    /// serialized.
    #[serde(skip)]
    pub conceal: Vec<String>,
}

impl Diagnostic {
    /// An error.
    #[must_use]
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            code,
            message: message.into(),
            location: None,
            hint: None,
            notes: Vec::new(),
            conceal: Vec::new(),
        }
    }

    /// A warning.
    #[must_use]
    pub fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Self { severity: Severity::Warning, ..Self::error(code, message) }
    }

    /// Sets where.
    #[must_use]
    pub fn at(mut self, location: Location) -> Self {
        self.location = Some(location);
        self
    }

    /// Sets where, when known.
    #[must_use]
    pub fn at_opt(mut self, location: Option<Location>) -> Self {
        self.location = location.or(self.location);
        self
    }

    /// Sets the hint.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Sets the hint, when there is one.
    #[must_use]
    pub fn hint_opt(mut self, hint: Option<String>) -> Self {
        self.hint = hint.or(self.hint);
        self
    }

    /// Adds a note at another place.
    #[must_use]
    pub fn note(mut self, location: Location, message: impl Into<String>) -> Self {
        self.notes.push(Note { location, message: message.into() });
        self
    }

    /// Masks `text` in any source shown with this diagnostic.
    #[must_use]
    pub fn conceal(mut self, text: impl Into<String>) -> Self {
        self.conceal.push(text.into());
        self
    }

    /// Whether this is an error (rather than a warning).
    #[must_use]
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// The closest candidate to `wrong`, if one is close enough to be a likely typo.
#[must_use]
pub fn did_you_mean<'a>(wrong: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let wrong_folded = wrong.to_lowercase().replace(['_', '-'], "");
    candidates
        .into_iter()
        .map(|candidate| {
            let folded = candidate.to_lowercase().replace(['_', '-'], "");
            let score = if folded == wrong_folded { 1.0 } else { strsim::jaro_winkler(&wrong_folded, &folded) };
            (score, candidate)
        })
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::did_you_mean;

    #[test]
    fn suggestions_catch_typos_and_spellings_but_not_strangers() {
        let fields = ["instructions", "skillRefs", "mcpServers", "description"];
        assert_eq!(did_you_mean("instructons", fields), Some("instructions"));
        assert_eq!(did_you_mean("skill_refs", fields), Some("skillRefs"));
        assert_eq!(did_you_mean("SkillRefs", fields), Some("skillRefs"));
        assert_eq!(did_you_mean("zzz", fields), None);
    }
}
