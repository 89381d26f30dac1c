//! Shared by the integration tests: a real `stigmer server` started from the built binary on
//! 127.0.0.1 with an ephemeral port, and API tokens made the way people make them.

#![allow(dead_code, reason = "each test file uses part of the support module")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test that cannot set up fails loudly")]

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use stigmer::backend::Backend;
use stigmer::remote::{RemoteBackend, RemoteOptions};
use stigmer::store::redb::LocalBackend;

pub mod browser;
pub mod effects;
pub mod postgres;
pub mod resources;

/// The repository root, where the tests run commands (so `examples/` resolves).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

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
    /// `http://127.0.0.1:PORT` of its HTTP side, when started with `--http-listen`.
    pub http: Option<String>,
    /// The database it keeps its data in, when started with `--store`.
    pub store: Option<String>,
}

impl Server {
    /// Starts a server on a free port over `data` (created if need be).
    pub fn start(data: &Path) -> Self {
        Self::start_on(data, "127.0.0.1:0", &[])
    }

    /// Starts a server on a free port keeping its data in the database at `store` (`data`
    /// holds its master key and log), with extra flags.
    pub fn start_on_store(data: &Path, store: &str, extra: &[&str]) -> Self {
        let mut server = Self::start_on(data, "127.0.0.1:0", &[&["--store", store], extra].concat());
        server.store = Some(store.to_owned());
        server
    }

    /// Starts a server on `listen` with extra flags.
    pub fn start_on(data: &Path, listen: &str, extra: &[&str]) -> Self {
        Self::launch(data, listen, extra, &[])
    }

    /// Starts a server on `listen` with extra flags and environment variables. Its health loop
    /// is off unless `extra` sets `--health-interval`: probes in the background would add
    /// conditions to what other tests compare, at a moment no test controls.
    pub fn launch(data: &Path, listen: &str, extra: &[&str], env: &[(&str, &str)]) -> Self {
        std::fs::create_dir_all(data).unwrap();
        let log = data.with_extension("log");
        let log_file = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        let health: &[&str] = if extra.contains(&"--health-interval") { &[] } else { &["--health-interval", "0"] };
        let mut child = Command::new(stigmer_bin())
            .args(["server", "--listen", listen, "--data"])
            .arg(data)
            .args(extra)
            .args(health)
            .env("NO_COLOR", "1")
            .env("STIGMER_HOME", data.with_extension("home"))
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .unwrap();
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut line).unwrap();
        let http = extra.contains(&"--http-listen").then(|| {
            let mut second = String::new();
            stdout.read_line(&mut second).unwrap();
            second
                .split_whitespace()
                .find(|w| w.starts_with("http://") || w.starts_with("https://"))
                .unwrap()
                .to_owned()
        });
        let endpoint = line
            .split_whitespace()
            .find(|word| word.starts_with("http://") || word.starts_with("https://"))
            .unwrap_or_else(|| panic!("the server did not start: {line}{}", std::fs::read_to_string(&log).unwrap()))
            .to_owned();
        let store =
            extra.iter().position(|flag| *flag == "--store").and_then(|at| extra.get(at + 1)).map(|s| (*s).to_owned());
        Self { child, endpoint, data: data.to_path_buf(), log, http, store }
    }

    /// Makes a token with `stigmer server token create`, where the server keeps its tokens.
    pub fn token(&self, org: &str, role: &str, name: &str) -> String {
        match &self.store {
            Some(store) => make_token_in(&["--store", store], org, role, name, None),
            None => make_token(&self.data, org, role, name, None),
        }
    }

    /// `stigmer` as a user of this server runs it: with `token`, in `home`.
    pub fn cli(&self, token: &str, home: &Path) -> Command {
        let mut command = Command::new(stigmer_bin());
        command
            .current_dir(root())
            .env("NO_COLOR", "1")
            .env("STIGMER_HOME", home)
            .env("STIGMER_ENDPOINT", &self.endpoint)
            .env("STIGMER_TOKEN", token);
        command
    }

    /// A `stigmer worker` process serving this server with `token` and a 2 s lease, its log
    /// in `log`.
    pub fn worker(&self, token: &str, home: &Path, log: &Path, extra: &[&str]) -> Child {
        let log = fs::File::create(log).unwrap();
        self.cli(token, home)
            .args(["worker", "--endpoint", &self.endpoint, "--lease", "2s"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    /// Waits up to `within` for execution `id` to reach `status`; returns its record.
    pub fn wait_for_status(&self, token: &str, home: &Path, id: &str, status: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let (ok, out, err) = output(self.cli(token, home), &["execution", "get", id, "-o", "json"]);
            assert!(ok, "{err}");
            let record: Value = serde_json::from_str(&out).unwrap();
            if record["status"] == status {
                return record;
            }
            assert!(Instant::now() < deadline, "{id} never became {status}: {record:#}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.endpoint.rsplit(':').next().unwrap().trim_end_matches('/').parse().unwrap()
    }

    /// Kills it at once (SIGKILL): no shutdown, nothing finished.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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

/// Runs `command` with `args`: whether it succeeded, its stdout and its stderr.
pub fn output(mut command: Command, args: &[&str]) -> (bool, String, String) {
    let output = command.args(args).output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Makes a token in a data directory with `stigmer server token create`.
pub fn make_token(data: &Path, org: &str, role: &str, name: &str, expires: Option<&str>) -> String {
    make_token_in(&["--data", &data.display().to_string()], org, role, name, expires)
}

/// Makes a token with `stigmer server token create` and `place` (`--data DIR`, `--store URL`).
pub fn make_token_in(place: &[&str], org: &str, role: &str, name: &str, expires: Option<&str>) -> String {
    let mut command = Command::new(stigmer_bin());
    command.args(["server", "token", "create", "--org", org, "--role", role, "--name", name]).args(place);
    if let Some(expires) = expires {
        command.args(["--expires", expires]);
    }
    let output = command.output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// A scratch home and project directory, on the local store or on a server of its own.
pub struct Sandbox {
    /// The scratch directory.
    pub dir: tempfile::TempDir,
    /// The server and an admin token for org `test`, named like the local actor.
    pub remote: Option<(Server, String)>,
}

impl Sandbox {
    /// On a local store.
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().unwrap(), remote: None }
    }

    /// On a server started for it.
    pub fn remote() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(&dir.path().join("server"));
        let token = server.token("test", "admin", "tester");
        Self { dir, remote: Some((server, token)) }
    }

    /// Another sandbox on the same kind of backend.
    pub fn another(&self) -> Self {
        if self.remote.is_some() { Self::remote() } else { Self::new() }
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// The home of whoever runs executions: this sandbox's CLI, or its server's workers.
    pub fn runner_home(&self) -> PathBuf {
        match &self.remote {
            Some((server, _)) => server.data.with_extension("home"),
            None => self.home(),
        }
    }

    /// `stigmer` set up for this sandbox: its home, and its server when it is remote.
    pub fn command(&self) -> Command {
        let mut command = Command::new(stigmer_bin());
        command.current_dir(root()).env("NO_COLOR", "1").env("STIGMER_HOME", self.home()).env("USER", "tester");
        if let Some((server, token)) = &self.remote {
            command.env("STIGMER_ENDPOINT", &server.endpoint).env("STIGMER_TOKEN", token).env("STIGMER_ORG", "test");
        }
        command
    }

    pub fn stigmer(&self) -> assert_cmd::Command {
        assert_cmd::Command::from_std(self.command())
    }

    /// Starts `stigmer ARGS` in the background, stdout piped.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command().args(args).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap()
    }

    /// Asserts that no file stigmer wrote for this sandbox (its home; its server's data
    /// directory and log) holds any of `values`.
    pub fn assert_stored_nowhere(&self, values: &[&str]) {
        let mut places = vec![self.home()];
        if let Some((server, _)) = &self.remote {
            places.push(server.data.clone());
            places.push(server.log.clone());
        }
        for place in places {
            assert_nowhere_in(&place, values);
        }
    }

    /// The stored skills, by name, with their `skillMd` (asserting the store reads).
    pub fn stored_skills(&self) -> std::collections::BTreeMap<String, String> {
        let (code, out, err) = self.run(&["get", "skills", "-o", "json"]);
        assert_eq!(code, 0, "the store must read: {err}");
        let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
        listed["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|item| {
                let text =
                    |pointer: &str| item.pointer(pointer).and_then(serde_json::Value::as_str).unwrap().to_owned();
                (text("/metadata/name"), text("/spec/skillMd"))
            })
            .collect()
    }

    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        let output = self.stigmer().args(args).output().unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// A project directory with `stigmer.yaml` naming `set` and the given files.
    pub fn project(&self, name: &str, set: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = self.dir.path().join(name);
        if dir.exists() {
            fs::remove_dir_all(&dir).unwrap();
        }
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("stigmer.yaml"), format!("name: {set}\n")).unwrap();
        for (file, text) in files {
            fs::write(dir.join(file), text).unwrap();
        }
        dir
    }

    /// How many batches the backend has committed (its version).
    pub fn commits(&self) -> u64 {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            match &self.remote {
                Some((server, token)) => {
                    let options = RemoteOptions {
                        endpoint: server.endpoint.clone(),
                        token: token.clone(),
                        org: Some("test".into()),
                        ca_cert: None,
                    };
                    RemoteBackend::new(&options).unwrap().version().await.unwrap()
                }
                None => LocalBackend::new(self.home().join("local.db"), "test").version().await.unwrap(),
            }
        })
    }
}

/// Each scenario as two tests: `local::…` on a local store, `remote::…` on a server.
#[macro_export]
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod local {
            $(#[test] fn $scenario() { super::$scenario(&$crate::support::Sandbox::new()); })*
        }
        mod remote {
            $(#[test] fn $scenario() { super::$scenario(&$crate::support::Sandbox::remote()); })*
        }
    };
}

/// Every file at or under `path`, read as bytes.
fn files_under(path: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = fs::read_dir(path) else {
        return fs::read(path).map(|bytes| vec![(path.display().to_string(), bytes)]).unwrap_or_default();
    };
    entries.flatten().flat_map(|entry| files_under(&entry.path())).collect()
}

/// Asserts no file at or under `path` holds any of the values.
pub fn assert_nowhere_in(path: &Path, values: &[&str]) {
    for (file, bytes) in files_under(path) {
        for value in values {
            assert!(!bytes.windows(value.len()).any(|w| w == value.as_bytes()), "{value} found in {file}");
        }
    }
}

/// The id of the token named `name`, from `stigmer server token list -o json`.
pub fn token_id(data: &Path, name: &str) -> String {
    let output = Command::new(stigmer_bin())
        .args(["server", "token", "list", "-o", "json", "--data"])
        .arg(data)
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let items = list["items"].as_array().cloned().unwrap_or_default();
    let token = items.iter().find(|t| t["name"] == name).unwrap_or_else(|| panic!("no token {name}: {list}"));
    token["id"].as_str().unwrap().to_owned()
}
