//! Shared by the integration tests: a real `stigmer server` started from the built binary on
//! 127.0.0.1 with an ephemeral port, and API tokens made the way people make them.

#![allow(dead_code, reason = "each test file uses part of the support module")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test that cannot set up fails loudly")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The built binary.
pub fn stigmer_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_stigmer"))
}

/// A running server; killed when dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// Its data directory.
    pub data: PathBuf,
    /// Where its log goes.
    pub log: PathBuf,
}

impl Server {
    /// Starts a server on a free port over `data` (created if need be).
    pub fn start(data: &Path) -> Self {
        Self::start_on(data, "127.0.0.1:0", &[])
    }

    /// Starts a server on `listen` with extra flags.
    pub fn start_on(data: &Path, listen: &str, extra: &[&str]) -> Self {
        std::fs::create_dir_all(data).unwrap();
        let log = data.with_extension("log");
        let log_file = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        let mut child = Command::new(stigmer_bin())
            .args(["server", "--listen", listen, "--data"])
            .arg(data)
            .args(extra)
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let endpoint = line
            .split_whitespace()
            .find(|word| word.starts_with("http://") || word.starts_with("https://"))
            .unwrap_or_else(|| panic!("the server did not start: {line}{}", std::fs::read_to_string(&log).unwrap()))
            .to_owned();
        Self { child, endpoint, data: data.to_path_buf(), log }
    }

    /// Makes a token with `stigmer server token create`.
    pub fn token(&self, org: &str, role: &str, name: &str) -> String {
        make_token(&self.data, org, role, name, None)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.endpoint.rsplit(':').next().unwrap().trim_end_matches('/').parse().unwrap()
    }

    /// Stops it with SIGTERM and returns its exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        #[cfg(unix)]
        {
            let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        }
        #[cfg(not(unix))]
        let _ = self.child.kill();
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Makes a token in a data directory with `stigmer server token create`.
pub fn make_token(data: &Path, org: &str, role: &str, name: &str, expires: Option<&str>) -> String {
    let mut command = Command::new(stigmer_bin());
    command.args(["server", "token", "create", "--org", org, "--role", role, "--name", name, "--data"]).arg(data);
    if let Some(expires) = expires {
        command.args(["--expires", expires]);
    }
    let output = command.output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}
