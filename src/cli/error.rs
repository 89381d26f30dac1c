//! The one error type commands return: what kind of failure (which picks the exit code), the
//! error with its cause chain, and hints for the fix.

use std::error::Error as StdError;
use std::fmt::Write as _;

use super::render::Style;
use crate::backend::BackendError;
use crate::reconcile::{PlanError, ReconcileError};

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

    /// The command already reported why it failed; exit with the kind's code.
    #[must_use]
    pub fn reported(kind: ErrorKind) -> Self {
        Self { kind, error: None, hints: Vec::new() }
    }

    /// The same error with another kind (another exit code), e.g. every error of `diff` exits 2.
    #[must_use]
    pub fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        self
    }

    /// An error of this kind, keeping its cause chain for rendering.
    #[must_use]
    pub fn new(kind: ErrorKind, error: impl StdError + Send + Sync + 'static) -> Self {
        Self { kind, error: Some(Box::new(error)), hints: Vec::new() }
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

impl From<BackendError> for CommandError {
    fn from(error: BackendError) -> Self {
        let hint = match &error {
            BackendError::Conflict { .. } => {
                Some("another change landed first; run the command again to plan against the current state".to_owned())
            }
            BackendError::Busy { .. } => Some(format!(
                "another stigmer process is using the store; wait for it to finish, or raise {} (seconds)",
                super::settings::ENV_LOCK_WAIT
            )),
            BackendError::NewerFormat { .. } => Some("upgrade stigmer to a version that reads this store".to_owned()),
            BackendError::Corrupt { path, .. } => Some(format!(
                "move {} aside to start with an empty store, then apply your manifests again",
                path.display()
            )),
            BackendError::NotFound { address } => Some(not_found_hint(address).to_owned()),
            BackendError::Io { .. } => {
                Some(format!("check the permissions of the directory, or set {}", super::settings::ENV_HOME))
            }
            BackendError::Unreachable { detail, .. } if detail.contains("certificate") => Some(format!(
                "trust the server's CA certificate with `stigmer login --ca-cert FILE` or {}",
                super::settings::ENV_CA_CERT
            )),
            BackendError::Unreachable { .. } => Some(
                "start a server with `stigmer server`, or check the endpoint with `stigmer context show`".to_owned(),
            ),
            BackendError::Unauthenticated(_) => Some(format!(
                "log in again with `stigmer login --endpoint URL`, or set {} to a valid token",
                super::settings::ENV_TOKEN
            )),
            BackendError::PermissionDenied(_) => {
                Some("ask an admin of the org for a token with the role this needs".to_owned())
            }
            BackendError::Incompatible(_) => Some("use a stigmer client of the same release as the server".to_owned()),
            BackendError::Remote { code, .. } if code == "ResourceExhausted" || code == "OutOfRange" => Some(
                "the server refuses requests over its size limit; apply fewer files at once, or start the server \
                 with a larger --max-request-mib"
                    .to_owned(),
            ),
            BackendError::Key(_) => Some(format!(
                "the master key is {} or $STIGMER_HOME/master.key (on a server: its data directory's master.key); \
                 restore the one the secrets were encrypted with",
                crate::secrets::ENV_MASTER_KEY
            )),
            BackendError::SecretName { .. } => Some("name secrets like OPENAI_API_KEY or openai-key".to_owned()),
            BackendError::BadEvent(_) => {
                Some("send a CloudEvent 1.0: specversion \"1.0\", id, source and type".to_owned())
            }
            BackendError::LeaseLost { id, .. } => Some(format!("see how it stands with `stigmer execution get {id}`")),
            BackendError::Unavailable(_) => {
                Some("the server's database is down or restarting; run the command again in a moment".to_owned())
            }
            BackendError::Storage(_) | BackendError::Remote { .. } => None,
        };
        let kind = if matches!(
            error,
            BackendError::NotFound { .. } | BackendError::SecretName { .. } | BackendError::BadEvent(_)
        ) {
            ErrorKind::User
        } else {
            ErrorKind::Io
        };
        Self { kind, error: Some(Box::new(error)), hints: hint.into_iter().collect() }
    }
}

impl From<ReconcileError> for CommandError {
    fn from(error: ReconcileError) -> Self {
        let hint = match &error {
            ReconcileError::Backend(_) | ReconcileError::Plan(PlanError::ChangedWhilePlanning { .. }) => None,
            ReconcileError::Plan(PlanError::OwnedByAnotherSet { .. }) => {
                Some("apply with --set NAME of the owning set, or take them over with --force-ownership".to_owned())
            }
            ReconcileError::Plan(PlanError::PruneBreaksReference { .. }) => {
                Some("remove those references first, or keep the referenced resources in the manifests".to_owned())
            }
            ReconcileError::Plan(PlanError::PruneWithoutSet) => {
                Some("add a stigmer.yaml with `name: my-project` to the directory, or pass --set NAME".to_owned())
            }
            ReconcileError::NotFound { .. } => Some(not_found_hint("").to_owned()),
            ReconcileError::AlreadyExists { .. } => {
                Some("change it with `stigmer apply`, or pick another name".to_owned())
            }
            ReconcileError::Referenced { .. } => {
                Some("delete or change the referrers first (or delete them together)".to_owned())
            }
            ReconcileError::Dangling { .. } => Some("create the referenced resource first".to_owned()),
            ReconcileError::NoSuchRevision { .. } => {
                Some("see the generations with `stigmer history KIND NAME`".to_owned())
            }
        };
        match error {
            ReconcileError::Backend(backend) => backend.into(),
            other => Self { kind: ErrorKind::User, error: Some(Box::new(other)), hints: hint.into_iter().collect() },
        }
    }
}

/// Where to look for what exists, by the address that was not found (`secret/…`, `agent/…`).
fn not_found_hint(address: &str) -> &'static str {
    match address.split_once('/').map(|(kind, _)| kind) {
        Some("secret") => "list secrets with `stigmer secret list`",
        Some("execution") => "list executions with `stigmer execution list`",
        _ => "list what exists with `stigmer get`",
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
