//! `run: shell` and `run: script`: starts one process (its inputs already evaluated by the
//! interpreter), feeds it its standard input and turns its result into the task's output.
//!
//! Decisions where the reference is open:
//! - A shell `command` is a shell command line, run with `sh -c <command> <task> <arguments…>`:
//!   the arguments are the positional parameters `$1`, `$2`, … (as the reference's example
//!   uses them), never spliced into the command text. The command is not interpolated: only a
//!   whole `${ }` command is evaluated, so shell syntax such as `${HOME}` is left alone.
//! - A `js` script runs with `node -e <code> <task> <arguments…>` (so `process.argv[2]` is the
//!   first argument, as in the reference's example), a `python` one with `python3 -c <code>
//!   <arguments…>` (`sys.argv[1]` is the first argument).
//! - `environment` is merged over the runtime's own environment; a `null` value unsets the
//!   variable. The process runs in the runtime's working directory.
//! - `stdout` and `stderr` outputs are the text (invalid UTF-8 replaced) with one trailing
//!   newline removed; `code` is the exit code (128 + the signal when killed by one).
//! - A non-zero exit raises a `runtime` error (status 500, the code and the end of stderr in
//!   its detail) unless `return` is `code` or `all`, whose output reports the code itself.
//! - `await: false` starts the process and outputs the task's input; its output is discarded.
//! - A running process is killed when the task is cancelled or times out.

use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::error::WorkflowError;
use crate::model::dsl::ProcessReturnType;

/// A process to start, every expression of it evaluated.
pub(crate) struct Spawn {
    /// The program, looked up on `PATH`.
    pub program: String,
    /// Its arguments.
    pub arguments: Vec<String>,
    /// Variables set (`Some`) or unset (`None`) over the runtime's environment.
    pub environment: Vec<(String, Option<String>)>,
    /// Its standard input, if any.
    pub stdin: Option<String>,
    /// What to call the process in errors (`the shell command`, `the python script`).
    pub what: String,
}

/// Runs `spawn` to completion and returns the task's output per `return_`.
///
/// # Errors
/// `runtime` when the program cannot be started or exits non-zero (see the module's notes).
pub(crate) async fn run(spawn: Spawn, return_: ProcessReturnType, instance: &str) -> Result<Value, WorkflowError> {
    let mut command = command(&spawn);
    command.stdin(if spawn.stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    command.stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let mut child = command.spawn().map_err(|error| not_started(&spawn, &error, instance))?;
    let feed = feeder(child.stdin.take(), spawn.stdin);
    let (output, ()) = tokio::join!(child.wait_with_output(), feed);
    let output = output
        .map_err(|error| WorkflowError::runtime(format!("waiting for {} failed: {error}", spawn.what), instance))?;
    let code = exit_code(output.status);
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    if code != 0 && !matches!(return_, ProcessReturnType::Code | ProcessReturnType::All) {
        let tail = tail(stderr.trim_end(), 2048);
        let mut detail = format!("{} exited with code {code}", spawn.what);
        if !tail.is_empty() {
            detail.push_str(": ");
            detail.push_str(&tail);
        }
        return Err(WorkflowError::runtime(detail, instance));
    }
    Ok(match return_ {
        ProcessReturnType::Stdout => Value::String(stdout),
        ProcessReturnType::Stderr => Value::String(stderr),
        ProcessReturnType::Code => json!(code),
        ProcessReturnType::All => json!({ "code": code, "stdout": stdout, "stderr": stderr }),
        ProcessReturnType::None => Value::Null,
    })
}

/// Starts `spawn` without waiting for it (`await: false`); its output is discarded.
///
/// # Errors
/// `runtime` when the program cannot be started.
pub(crate) fn start(spawn: Spawn, instance: &str) -> Result<(), WorkflowError> {
    let mut command = command(&spawn);
    command.stdin(if spawn.stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    command.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = command.spawn().map_err(|error| not_started(&spawn, &error, instance))?;
    let feed = feeder(child.stdin.take(), spawn.stdin);
    // Tokio reaps the child in the background once it is dropped; the feeder owns its stdin.
    tokio::spawn(async move {
        feed.await;
        let _ = child.wait().await;
    });
    Ok(())
}

fn command(spawn: &Spawn) -> Command {
    let mut command = Command::new(&spawn.program);
    command.args(&spawn.arguments);
    for (name, value) in &spawn.environment {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    command
}

/// Writes `stdin` to the child and closes it; a child that does not read it is not an error.
async fn feeder(pipe: Option<tokio::process::ChildStdin>, stdin: Option<String>) {
    if let (Some(mut pipe), Some(stdin)) = (pipe, stdin) {
        let _ = pipe.write_all(stdin.as_bytes()).await;
        let _ = pipe.shutdown().await;
    }
}

fn not_started(spawn: &Spawn, error: &std::io::Error, instance: &str) -> WorkflowError {
    let detail = if error.kind() == std::io::ErrorKind::NotFound {
        format!("{} needs `{}`, which was not found on PATH", spawn.what, spawn.program)
    } else {
        format!("{} could not start `{}`: {error}", spawn.what, spawn.program)
    };
    WorkflowError::runtime(detail, instance)
}

#[cfg(unix)]
fn exit_code(status: std::process::ExitStatus) -> i64 {
    use std::os::unix::process::ExitStatusExt;
    status.code().map(i64::from).or_else(|| status.signal().map(|signal| 128 + i64::from(signal))).unwrap_or(-1)
}

#[cfg(not(unix))]
fn exit_code(status: std::process::ExitStatus) -> i64 {
    status.code().map_or(-1, i64::from)
}

/// Output as text, one trailing newline removed.
fn text(bytes: &[u8]) -> String {
    let mut text = String::from_utf8_lossy(bytes).into_owned();
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    text
}

/// The last `max` characters of `text`.
fn tail(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_owned();
    }
    let skipped: String = text.chars().skip(count - max).collect();
    format!("…{skipped}")
}
