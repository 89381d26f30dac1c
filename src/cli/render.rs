//! Rendering diagnostics for people: `error:` line, `--> file:line:col`, the source line with a
//! caret under the spot, notes, and a `hint:` line.

use std::fmt::Write as _;

use crate::manifest::{Diagnostic, Location, ManifestSet, Severity};

/// ANSI styling, on or off.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    color: bool,
}

impl Style {
    /// Styling that colors only when `color` is set.
    #[must_use]
    pub fn new(color: bool) -> Self {
        Self { color }
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.color { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_owned() }
    }

    /// Bold red.
    #[must_use]
    pub fn error(self, text: &str) -> String {
        self.paint("1;31", text)
    }

    /// Bold yellow.
    #[must_use]
    pub fn warning(self, text: &str) -> String {
        self.paint("1;33", text)
    }

    /// Bold cyan.
    #[must_use]
    pub fn hint(self, text: &str) -> String {
        self.paint("1;36", text)
    }

    /// Blue, for gutters and arrows.
    #[must_use]
    pub fn dim(self, text: &str) -> String {
        self.paint("34", text)
    }

    /// Bold green.
    #[must_use]
    pub fn good(self, text: &str) -> String {
        self.paint("1;32", text)
    }
}

/// Renders one diagnostic with a snippet of its source.
#[must_use]
pub fn diagnostic(set: &ManifestSet, diagnostic: &Diagnostic, style: Style) -> String {
    let label = match diagnostic.severity {
        Severity::Error => style.error("error:"),
        Severity::Warning => style.warning("warning:"),
    };
    let mut out = format!("{label} {}\n", diagnostic.message);
    if let Some(location) = &diagnostic.location {
        snippet(&mut out, set, location, &diagnostic.conceal, style);
    }
    for note in &diagnostic.notes {
        let _ = writeln!(out, "{} {}", style.dim("note:"), note.message);
        snippet(&mut out, set, &note.location, &diagnostic.conceal, style);
    }
    if let Some(hint) = &diagnostic.hint {
        let _ = writeln!(out, "{} {hint}", style.hint("hint:"));
    }
    out
}

fn snippet(out: &mut String, set: &ManifestSet, location: &Location, conceal: &[String], style: Style) {
    let line_number = location.position.line as usize;
    let gutter = " ".repeat(line_number.to_string().len());
    let _ = writeln!(out, "{gutter}{} {location}", style.dim("-->"));
    let Some(line) = set.text_of(&location.file).and_then(|text| text.lines().nth(line_number.saturating_sub(1)))
    else {
        return;
    };
    let mut line = line.replace('\t', " ");
    for secret in conceal.iter().filter(|s| !s.is_empty()) {
        line = line.replace(secret.as_str(), "***");
    }
    let (line, column) = window(&line, (location.position.column as usize).saturating_sub(1));
    let width = underline_width(&line, column);
    let _ = writeln!(out, "{gutter} {}", style.dim("|"));
    let _ = writeln!(out, "{} {} {line}", style.dim(&line_number.to_string()), style.dim("|"));
    let _ = writeln!(out, "{gutter} {} {}{}", style.dim("|"), " ".repeat(column), style.error(&"^".repeat(width)));
}

/// The part of a long line worth showing around `column`, and the column within it.
fn window(line: &str, column: usize) -> (String, usize) {
    const WIDTH: usize = 100;
    const BEFORE: usize = 40;
    let chars: Vec<char> = line.chars().collect();
    if chars.len() <= WIDTH {
        return (line.to_owned(), column);
    }
    let start = column.saturating_sub(BEFORE).min(chars.len());
    let end = (start + WIDTH).min(chars.len());
    let mut shown: String = chars[start..end].iter().collect();
    let mut shifted = column - start;
    if start > 0 {
        shown.insert(0, '…');
        shifted += 1;
    }
    if end < chars.len() {
        shown.push('…');
    }
    (shown, shifted)
}

/// How many characters to underline from `column`: the word or scalar that starts there.
fn underline_width(line: &str, column: usize) -> usize {
    let rest: Vec<char> = line.chars().skip(column).collect();
    let word =
        rest.iter().take_while(|c| !c.is_whitespace() && **c != ':' && **c != ',' && **c != ']' && **c != '}').count();
    word.clamp(1, 60)
}

#[cfg(test)]
mod tests {
    use super::underline_width;

    #[test]
    fn underlines_cover_the_word_at_the_column() {
        assert_eq!(underline_width("  instructons: hi", 2), 11);
        assert_eq!(underline_width("- calc", 2), 4);
        assert_eq!(underline_width("", 5), 1);
    }

    #[test]
    fn long_lines_are_shown_around_the_column() {
        let line = format!("{}X{}", "a".repeat(300), "b".repeat(300));
        let (shown, column) = super::window(&line, 300);
        assert!(shown.chars().count() <= 102);
        assert_eq!(shown.chars().nth(column), Some('X'));
        assert_eq!(super::window("short", 2), ("short".to_owned(), 2));
    }
}
