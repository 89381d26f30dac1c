//! The one error type commands return: what kind of failure (which picks the exit code), the
//! error with its cause chain, and hints for the fix.

use std::error::Error as StdError;
use std::fmt::Write as _;

use super::render::Style;

/// What kind of failure, which decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The command ran and the answer is "no" (invalid manifests): exit 1, already reported.
    Failed,
    /// The input or arguments are wrong: exit 2.
    User,
    /// Something outside the input failed (files, terminal): exit 2.
    Io,
}

/// An error a command returns.
#[derive(Debug)]
pub struct CommandError {
    /// The kind of failure.
    pub kind: ErrorKind,
    /// The error, when there is something to print beyond what the command already printed.
    pub error: Option<Box<dyn StdError + Send + Sync>>,
    /// Hints for the fix, printed after the error.
    pub hints: Vec<String>,
}

impl CommandError {
    /// The command reported its findings itself and fails with exit code 1.
    #[must_use]
    pub fn failed() -> Self {
        Self { kind: ErrorKind::Failed, error: None, hints: Vec::new() }
    }

    /// A problem with what the user asked for.
    #[must_use]
    pub fn user(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::User, error: Some(message.into().into()), hints: Vec::new() }
    }

    /// An I/O failure, with its cause.
    #[must_use]
    pub fn io(context: &str, error: std::io::Error) -> Self {
        Self {
            kind: ErrorKind::Io,
            error: Some(Box::new(ContextError { context: context.to_owned(), source: error })),
            hints: Vec::new(),
        }
    }

    /// Adds a hint.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }

    /// The process exit code for this error.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self.kind {
            ErrorKind::Failed => 1,
            ErrorKind::User | ErrorKind::Io => 2,
        }
    }

    /// `error: …`, the cause chain and `hint: …` lines; `None` when the command already said it.
    #[must_use]
    pub fn render(&self, color: bool) -> Option<String> {
        let error = self.error.as_ref()?;
        let style = Style::new(color);
        let mut out = format!("{} {error}\n", style.error("error:"));
        let mut source = error.source();
        while let Some(cause) = source {
            let _ = writeln!(out, "  caused by: {cause}");
            source = cause.source();
        }
        for hint in &self.hints {
            let _ = writeln!(out, "{} {hint}", style.hint("hint:"));
        }
        Some(out)
    }
}

/// An error with a sentence saying what was being done.
#[derive(Debug, thiserror::Error)]
#[error("{context}")]
struct ContextError {
    context: String,
    #[source]
    source: std::io::Error,
}
