//! A release-binary `stigmer server` for the benches, and what `/proc` says about processes.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::corpus::BenchResult;

/// Every bench server's master key, so replicas of one database open each other's secrets.
pub const BENCH_MASTER_KEY: &str = "be7c4be7c4be7c4be7c4be7c4be7c4be7c4be7c4be7c4be7c4be7c4be7c4be7c";

/// A PostgreSQL cluster as a production one runs (every commit synced, as redb's are), for
/// benches to compare stores fairly; `None`, having said why, without PostgreSQL.
pub fn durable_postgres() -> Option<super::postgres::Cluster> {
    super::postgres::private(&["fsync=on", "synchronous_commit=on", "full_page_writes=on"])
}

/// A release-binary `stigmer server` on a free port; killed when dropped.
pub struct Server {
    /// The server process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// `http://127.0.0.1:PORT` of its HTTP side, when started with `--http-listen`.
    pub http: Option<String>,
}

impl Server {
    /// Starts `stigmer server` over `data` on an ephemeral port, logging to `log`, with any extra
    /// flags given in `STIGMER_BENCH_SERVER_ARGS` (e.g. `--store-cache-mib 8`), to compare
    /// settings.
    pub fn start(bin: &Path, data: &Path, log: &Path) -> BenchResult<Self> {
        Self::start_with(bin, data, log, &[])
    }

    /// [`Server::start`] with `flags` too.
    pub fn start_with(bin: &Path, data: &Path, log: &Path, flags: &[&str]) -> BenchResult<Self> {
        let extra = std::env::var("STIGMER_BENCH_SERVER_ARGS").unwrap_or_default();
        let mut child = Command::new(bin)
            .env("STIGMER_MASTER_KEY", BENCH_MASTER_KEY)
            .args(["server", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            // The health loop would probe every applied resource while the bench measures.
            .args(["--health-interval", "0"])
            .args(flags)
            .args(extra.split_whitespace())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(fs::File::create(log)?)
            .spawn()?;
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        stdout.read_line(&mut line)?;
        let endpoint = line.split_whitespace().find(|w| w.starts_with("http://")).map(ToOwned::to_owned);
        let http = if flags.contains(&"--http-listen") {
            let mut second = String::new();
            stdout.read_line(&mut second)?;
            second.split_whitespace().find(|w| w.starts_with("http://")).map(ToOwned::to_owned)
        } else {
            None
        };
        let server = Self { child, endpoint: endpoint.unwrap_or_default(), http };
        if server.endpoint.is_empty() {
            return Err(format!("the server did not start: {line:?}; log:\n{}", fs::read_to_string(log)?).into());
        }
        Ok(server)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An admin token for `org`, made with `stigmer server token create`.
pub fn make_token(bin: &Path, data: &Path, org: &str) -> BenchResult<String> {
    make_token_in(bin, &["--data", &data.display().to_string()], org, "admin")
}

/// A token of `role` for `org` where `place` (`--data DIR`, `--store URL`) says the tokens are.
pub fn make_token_in(bin: &Path, place: &[&str], org: &str, role: &str) -> BenchResult<String> {
    let output = Command::new(bin)
        .args(["server", "token", "create", "--org", org, "--role", role, "--name", &format!("bench-{org}-{role}")])
        .args(place)
        .output()?;
    if !output.status.success() {
        return Err(format!("token create failed: {}", String::from_utf8_lossy(&output.stderr)).into());
    }
    Ok(String::from_utf8(output.stdout)?.trim().to_owned())
}

/// A `KiB` field (`VmRSS:`, `VmHWM:`) of `/proc/<pid>/status`.
pub fn read_status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find(|l| l.starts_with(field))?.split_whitespace().nth(1)?.parse().ok()
}

/// The 1, 5 and 15 minute load averages.
pub fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map_or_else(|_| "n/a".to_owned(), |l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}
