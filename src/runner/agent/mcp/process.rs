//! The process of a stdio MCP server: started with the resolved arguments, environment and
//! working directory, killed when dropped, its stderr drained into a small ring buffer so error
//! messages can show how it ended.

use std::collections::VecDeque;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::AsyncReadExt as _;
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use tokio::task::JoinHandle;

use super::McpError;
use super::config::ResolvedStdio;
use super::error::StderrTail;
use crate::secrets::{Redactor, SecretValue};

/// How much of a server's stderr is kept for error messages.
const STDERR_TAIL_BYTES: usize = 4096;

/// How long to wait for a process that is known to be ending (stdout closed) to be reaped, and
/// for its last stderr bytes to arrive.
const SETTLE: Duration = Duration::from_secs(2);

/// A running stdio server process.
pub(super) struct ServerProcess {
    child: tokio::sync::Mutex<Child>,
    pid: Option<u32>,
    stderr: Arc<Mutex<VecDeque<u8>>>,
    stderr_reader: tokio::sync::Mutex<Option<JoinHandle<()>>>,
    redactor: Redactor,
}

impl ServerProcess {
    /// Starts the server: its own environment plus exactly the resolved variables, stdin and
    /// stdout for MCP, stderr captured.
    pub(super) fn spawn(
        server: &str,
        settings: &ResolvedStdio,
        redactor: Redactor,
    ) -> Result<(Self, ChildStdout, ChildStdin), McpError> {
        let mut command = Command::new(&settings.command);
        command
            .args(settings.args.iter().map(SecretValue::expose))
            .envs(settings.env.iter().map(|(key, value)| (key, value.expose())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(dir) = &settings.working_dir {
            command.current_dir(dir.expose());
        }
        let spawn_error =
            |source| McpError::Spawn { server: server.to_owned(), command: settings.command.clone(), source };
        let mut child = command.spawn().map_err(spawn_error)?;
        let pipes = (child.stdout.take(), child.stdin.take(), child.stderr.take());
        let (Some(stdout), Some(stdin), Some(stderr)) = pipes else {
            // Unreachable with piped stdio; kill_on_drop ends the child.
            return Err(spawn_error(std::io::Error::other("the process's stdio pipes are missing")));
        };
        let buffer = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_TAIL_BYTES)));
        let reader = tokio::spawn(drain_stderr(stderr, Arc::clone(&buffer)));
        let process = Self {
            pid: child.id(),
            child: tokio::sync::Mutex::new(child),
            stderr: buffer,
            stderr_reader: tokio::sync::Mutex::new(Some(reader)),
            redactor,
        };
        Ok((process, stdout, stdin))
    }

    /// The process id, while it runs.
    pub(super) fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// How the process ended, if it has (without waiting).
    pub(super) async fn exit_status(&self) -> Option<ExitStatus> {
        self.child.lock().await.try_wait().ok().flatten()
    }

    /// How the process ended, waiting up to a moment for one whose MCP stream just closed.
    pub(super) async fn settled_exit_status(&self) -> Option<ExitStatus> {
        let status = {
            let mut child = self.child.lock().await;
            tokio::time::timeout(SETTLE, child.wait()).await.ok().and_then(Result::ok)
        };
        if status.is_some() {
            self.finish_stderr(SETTLE).await;
        }
        status
    }

    /// The end of what the server wrote on stderr, secret values masked.
    pub(super) fn stderr_tail(&self) -> StderrTail {
        let bytes: Vec<u8> = self.stderr.lock().unwrap_or_else(PoisonError::into_inner).iter().copied().collect();
        let text = String::from_utf8_lossy(&bytes);
        // A cut through a multi-byte character at the start shows as U+FFFD; drop it.
        let text = text.trim_start_matches('\u{FFFD}');
        StderrTail(self.redactor.redact(text))
    }

    /// Stops the process: it had `grace` to exit by itself after its stdin closed, then it is
    /// killed. Either way it is reaped before this returns.
    pub(super) async fn stop(&self, grace: Duration) -> std::io::Result<()> {
        {
            let mut child = self.child.lock().await;
            if tokio::time::timeout(grace, child.wait()).await.is_err() {
                child.kill().await?;
            }
        }
        self.finish_stderr(grace).await;
        Ok(())
    }

    /// Waits up to `limit` for the stderr reader to reach the end of the stream.
    async fn finish_stderr(&self, limit: Duration) {
        let reader = self.stderr_reader.lock().await.take();
        if let Some(mut reader) = reader
            && tokio::time::timeout(limit, &mut reader).await.is_err()
        {
            // A grandchild may hold stderr open; stop reading rather than wait for it.
            reader.abort();
        }
    }
}

/// Reads stderr to its end, keeping the last `STDERR_TAIL_BYTES`.
async fn drain_stderr(mut stderr: ChildStderr, buffer: Arc<Mutex<VecDeque<u8>>>) {
    let mut chunk = [0_u8; 1024];
    while let Ok(read) = stderr.read(&mut chunk).await {
        if read == 0 {
            break;
        }
        let mut buffer = buffer.lock().unwrap_or_else(PoisonError::into_inner);
        buffer.extend(&chunk[..read]);
        let excess = buffer.len().saturating_sub(STDERR_TAIL_BYTES);
        buffer.drain(..excess);
    }
}

/// "exited with status 3", "was killed by signal 9".
pub(super) fn describe_exit(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exited with status {code}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        if let Some(signal) = status.signal() {
            return format!("was killed by signal {signal}");
        }
    }
    format!("ended ({status})")
}
