//! Why an MCP server cannot be set up, started or stopped. Messages name servers, fields,
//! variables and tools, never a resolved value: text that came from the server or the network
//! is masked with the run's secret values before it gets here.

use std::fmt;
use std::time::Duration;

use super::placeholders::PlaceholderProblem;

/// What an MCP server wrote on stderr last (at most about 4 KiB), shown after an error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StderrTail(pub String);

impl StderrTail {
    /// Whether the server wrote nothing (or is not a process).
    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl fmt::Display for StderrTail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() { Ok(()) } else { write!(f, "; its stderr ended with:\n{}", self.0.trim_end()) }
    }
}

/// Why an MCP server cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    /// The definition sets no transport.
    #[error("MCP server \"{server}\" sets no transport: give it `stdio` or `http`")]
    NoTransport {
        /// The server's name.
        server: String,
    },
    /// The definition sets more than one transport.
    #[error("MCP server \"{server}\" sets {} transports; choose one", .transports.join(" and "))]
    SeveralTransports {
        /// The server's name.
        server: String,
        /// The transports set.
        transports: Vec<&'static str>,
    },
    /// Container servers are not run yet.
    #[error("MCP server \"{server}\" runs in a container (`docker`), which the agent runner cannot start yet")]
    DockerUnsupported {
        /// The server's name.
        server: String,
    },
    /// Placeholders without a value: all of them.
    #[error(
        "MCP server \"{server}\" has {} placeholder{} that cannot be resolved: {}",
        .problems.len(),
        if .problems.len() == 1 { "" } else { "s" },
        .problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    Placeholders {
        /// The server's name.
        server: String,
        /// Every unresolved placeholder.
        problems: Vec<PlaceholderProblem>,
    },
    /// A resolved HTTP setting is not usable (a URL that does not parse, a bad header).
    #[error("MCP server \"{server}\": {field} is not valid: {reason}")]
    InvalidSetting {
        /// The server's name.
        server: String,
        /// The field, e.g. `http.url` or `http.headers.Authorization`.
        field: String,
        /// What is wrong (never the value).
        reason: String,
    },
    /// The process could not be started at all.
    #[error("MCP server \"{server}\": cannot start `{command}`: {source}")]
    Spawn {
        /// The server's name.
        server: String,
        /// The program.
        command: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The server did not complete MCP's initialization: it failed, exited or answered wrongly.
    #[error("MCP server \"{server}\" failed to start: {reason}{stderr}")]
    Initialize {
        /// The server's name.
        server: String,
        /// What went wrong, with the exit status of a process that ended.
        reason: String,
        /// The end of its stderr.
        stderr: StderrTail,
    },
    /// The server did not complete MCP's initialization in time.
    #[error("MCP server \"{server}\" did not complete initialization within {timeout:?}{stderr}")]
    InitializeTimeout {
        /// The server's name.
        server: String,
        /// The time it had.
        timeout: Duration,
        /// The end of its stderr.
        stderr: StderrTail,
    },
    /// The server's tools could not be listed.
    #[error("MCP server \"{server}\" cannot list its tools: {reason}{stderr}")]
    ListTools {
        /// The server's name.
        server: String,
        /// Why.
        reason: String,
        /// The end of its stderr.
        stderr: StderrTail,
    },
    /// Tools were enabled that the server does not offer.
    #[error(
        "MCP server \"{server}\" does not offer {}; it offers: {}",
        .unknown.iter().map(|tool| format!("\"{tool}\"")).collect::<Vec<_>>().join(", "),
        if .available.is_empty() { "no tools".to_owned() } else { .available.join(", ") }
    )]
    UnknownTools {
        /// The server's name.
        server: String,
        /// The enabled tools it lacks.
        unknown: Vec<String>,
        /// The tools it has.
        available: Vec<String>,
    },
    /// A sub-agent's tool selection reaches beyond what its parent enabled.
    #[error(
        "MCP server \"{server}\": the tool selection names {}, which the parent does not enable",
        .tools.iter().map(|tool| format!("\"{tool}\"")).collect::<Vec<_>>().join(", ")
    )]
    NotEnabled {
        /// The server's name.
        server: String,
        /// The tools outside the parent's selection.
        tools: Vec<String>,
    },
    /// Two servers of one toolset have the same name, or two tools the same exposed name.
    #[error("two MCP tools would be offered to the model as \"{name}\" (from servers \"{first}\" and \"{second}\")")]
    DuplicateToolName {
        /// The exposed tool name.
        name: String,
        /// The server of the first.
        first: String,
        /// The server of the second.
        second: String,
    },
    /// The process could not be stopped.
    #[error("MCP server \"{server}\": cannot stop its process: {source}")]
    Shutdown {
        /// The server's name.
        server: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}
