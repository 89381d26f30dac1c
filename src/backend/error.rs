//! Errors every backend returns, the same values for the local store and a server.

use std::path::PathBuf;
use std::time::Duration;

use super::types::Moved;

/// Why a backend operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// Resources changed between planning and applying; nothing was written.
    #[error("{} changed since the plan was made; nothing was written", moved_list(.moved))]
    Conflict {
        /// What moved.
        moved: Vec<Moved>,
    },
    /// The resource does not exist.
    #[error("{address} does not exist")]
    NotFound {
        /// `agent/support-bot`.
        address: String,
    },
    /// Another process holds the store longer than we were willing to wait.
    #[error("the store {} is busy{}; waited {:.1}s", .path.display(), .holder.as_ref().map(|h| format!(" (held by {h})")).unwrap_or_default(), .waited.as_secs_f64())]
    Busy {
        /// The store's file.
        path: PathBuf,
        /// Who holds it, when known (`pid 4242: stigmer apply --watch`).
        holder: Option<String>,
        /// How long we waited.
        waited: Duration,
    },
    /// The store was written by a newer stigmer.
    #[error("the store {} has format version {found}; this stigmer reads up to {supported}", .path.display())]
    NewerFormat {
        /// The store's file.
        path: PathBuf,
        /// The version found.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// The store cannot be read.
    #[error("the store {} is damaged: {detail}", .path.display())]
    Corrupt {
        /// The store's file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A file or directory could not be used.
    #[error("cannot use {}", .path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The storage engine failed.
    #[error("storage error: {0}")]
    Storage(String),
    /// The store cannot be used for now (its database is down, restarting or out of
    /// connections); the operation may be tried again.
    #[error("{0}")]
    Unavailable(String),
    /// The server does not accept the caller's token (missing, unknown, expired or revoked).
    #[error("the server refused the token: {0}")]
    Unauthenticated(String),
    /// The caller's token does not allow this (a viewer writing, another org's data).
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The server cannot be reached.
    #[error("cannot reach the server at {endpoint}: {detail}")]
    Unreachable {
        /// The endpoint tried.
        endpoint: String,
        /// What went wrong, as the transport reports it.
        detail: String,
    },
    /// Client and server speak different protocol versions.
    #[error("{0}")]
    Incompatible(String),
    /// The secret key is missing, malformed, exposed or not the one the secrets were sealed with.
    #[error("{0}")]
    Key(String),
    /// A secret name that cannot be used.
    #[error("invalid secret name {name:?}: {reason}")]
    SecretName {
        /// The name given.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A worker's lease on an execution is gone (it lapsed and another worker claimed the
    /// execution, or the execution ended): what it would write is refused.
    #[error("execution {id} is no longer held under this lease: {reason}")]
    LeaseLost {
        /// The execution.
        id: String,
        /// Why.
        reason: String,
    },
    /// An event sent in that is not a usable CloudEvent 1.0.
    #[error("not a CloudEvent: {0}")]
    BadEvent(String),
    /// The server failed the call for another reason (a request too large, an internal error).
    #[error("the server failed the call ({code}): {message}")]
    Remote {
        /// The gRPC status code's name.
        code: String,
        /// The server's message.
        message: String,
    },
}

fn moved_list(moved: &[Moved]) -> String {
    let names: Vec<&str> = moved.iter().map(|m| m.address.as_str()).collect();
    names.join(", ")
}

impl From<crate::secrets::KeyError> for BackendError {
    fn from(error: crate::secrets::KeyError) -> Self {
        Self::Key(error.to_string())
    }
}
