//! A real PostgreSQL for the tests: `STIGMER_TEST_DATABASE_URL` when it is set (a server where
//! the role may create databases), else a private cluster this test binary starts on an
//! ephemeral port under a scratch directory — `initdb` and `postgres` run as an unprivileged
//! user when the tests run as root, since PostgreSQL refuses root. Each test gets a database of
//! its own. A cluster stops, and its directory goes, when the test binary exits, however it
//! exits: a shell holds it and ends it once this process's end of the shell's stdin closes.
//!
//! Without PostgreSQL the tests that need it print why and pass as skipped, unless
//! `STIGMER_TEST_REQUIRE_POSTGRES` is set (CI sets it): then they fail.

#![allow(dead_code, reason = "each test file uses part of the support module")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test that cannot set up fails loudly")]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Set to make a missing PostgreSQL a failure rather than a skip.
pub const REQUIRE: &str = "STIGMER_TEST_REQUIRE_POSTGRES";
/// A PostgreSQL server to use instead of a private cluster.
pub const DATABASE_URL: &str = "STIGMER_TEST_DATABASE_URL";

/// A PostgreSQL cluster the tests can make databases in.
pub struct Cluster {
    /// `postgres://stigmer@127.0.0.1:PORT`, without a database.
    pub base: String,
    /// The database to connect to for making others.
    admin: String,
    /// Its directory: data, log, sockets (a private cluster's only).
    pub dir: Option<PathBuf>,
    /// The shell that holds a private cluster: it reads `stop` and `start` lines.
    shell: Option<Mutex<Child>>,
}

static SHARED: OnceLock<Result<Cluster, String>> = OnceLock::new();
static NEXT: AtomicU32 = AtomicU32::new(0);

/// A fresh, empty database for one test, on the cluster this test binary shares: its URL.
/// `None` (having said why) when there is no PostgreSQL and it is not required.
pub fn database() -> Option<String> {
    let cluster = usable(SHARED.get_or_init(|| match std::env::var(DATABASE_URL) {
        Ok(url) => {
            let base = url.rsplit_once('/').map(|(base, _)| base.to_owned()).ok_or("the URL names no database")?;
            Ok(Cluster { base, admin: url, dir: None, shell: None })
        }
        Err(_) => Cluster::private(&[]),
    }))?;
    Some(cluster.database())
}

/// A cluster of the test's own, which it may stop and start again (`extra` are `postgres -c`
/// settings); `None` (having said why) when there is no PostgreSQL and it is not required.
/// Always a private one: a server named by `STIGMER_TEST_DATABASE_URL` cannot be restarted.
pub fn private(extra: &[&str]) -> Option<Cluster> {
    match Cluster::private(extra) {
        Ok(cluster) => Some(cluster),
        Err(why) => {
            usable::<()>(&Err(why));
            None
        }
    }
}

fn usable<T>(cluster: &Result<T, String>) -> Option<&T> {
    match cluster {
        Ok(cluster) => Some(cluster),
        Err(why) => {
            assert!(std::env::var_os(REQUIRE).is_none(), "PostgreSQL is required ({REQUIRE} is set) but: {why}");
            eprintln!("skipped: no PostgreSQL for this test: {why}");
            None
        }
    }
}

impl Cluster {
    /// A fresh, empty database: its URL.
    pub fn database(&self) -> String {
        let name = format!("t{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        sql(&self.admin, &format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("cannot create a database: {e}"));
        format!("{}/{name}", self.base)
    }

    /// Stops the cluster (fast shutdown: sessions are cut) and waits until it is down.
    pub fn stop(&self) {
        self.tell("stop");
        let deadline = Instant::now() + Duration::from_secs(30);
        while sql(&self.admin, "SELECT 1").is_ok() {
            assert!(Instant::now() < deadline, "postgres did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the stopped cluster again, on the same port, and waits until it answers.
    pub fn start(&self) {
        self.tell("start");
        self.wait_up().unwrap_or_else(|why| panic!("{why}"));
    }

    fn tell(&self, command: &str) {
        let shell = self.shell.as_ref().expect("a private cluster");
        let mut shell = shell.lock().unwrap();
        let stdin = shell.stdin.as_mut().unwrap();
        writeln!(stdin, "{command}").unwrap();
        stdin.flush().unwrap();
    }

    fn wait_up(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Err(why) = sql(&self.admin, "SELECT 1") {
            if Instant::now() > deadline {
                let log = self.dir.as_ref().map(|dir| std::fs::read_to_string(dir.join("log")).unwrap_or_default());
                return Err(format!("postgres did not start: {why}\n{}", log.unwrap_or_default()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    fn private(extra: &[&str]) -> Result<Self, String> {
        let bin = binaries().ok_or("initdb and postgres are not installed (apt-get install postgresql)")?;
        let user = run_as();
        let dir = scratch(user.as_deref())?;
        let data = dir.join("data");
        let initdb = as_user(user.as_deref(), &bin.join("initdb"))
            .args(["-D", &data.display().to_string(), "--auth=trust", "-U", "stigmer", "-E", "UTF8", "--no-sync"])
            .output()
            .map_err(|e| format!("initdb: {e}"))?;
        if !initdb.status.success() {
            return Err(format!("initdb failed: {}", String::from_utf8_lossy(&initdb.stderr)));
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let settings: Vec<String> = extra.iter().map(|setting| format!("-c '{setting}'")).collect();
        let settings = settings.join(" ");
        let postgres = format!(
            "'{}' -D '{}' -p {port} -k '{dir}' -c listen_addresses=127.0.0.1 -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 \
             -c shared_preload_libraries=pg_stat_statements {settings} >> '{dir}/log' 2>&1",
            bin.join("postgres").display(),
            data.display(),
            dir = dir.display(),
        );
        // Reads `stop` and `start` lines; at the end of its input, stops the cluster for good
        // and removes its directory.
        let script = format!(
            "{postgres} & pid=$!; \
             while read command; do \
               case $command in \
                 stop) kill -INT $pid; wait $pid;; \
                 start) {postgres} & pid=$!;; \
               esac; \
             done; \
             kill -INT $pid; wait $pid; rm -rf '{dir}'",
            dir = dir.display(),
        );
        let shell = as_user(user.as_deref(), Path::new("sh"))
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start postgres: {e}"))?;
        let base = format!("postgres://stigmer@127.0.0.1:{port}");
        let cluster = Self { admin: format!("{base}/postgres"), base, dir: Some(dir), shell: Some(Mutex::new(shell)) };
        cluster.wait_up()?;
        Ok(cluster)
    }
}

/// Runs statements on `url` (on a thread of its own, so async tests may call it too).
pub fn sql(url: &str, statements: &str) -> Result<(), String> {
    query(url, statements).map(drop)
}

/// The first column of every row `statement` returns, as text.
pub fn query(url: &str, statement: &str) -> Result<Vec<String>, String> {
    let (url, statement) = (url.to_owned(), statement.to_owned());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        runtime.block_on(async {
            use sqlx::{Connection as _, Row as _};
            let mut connection = sqlx::PgConnection::connect(&url).await.map_err(|e| e.to_string())?;
            let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                .fetch_all(&mut connection)
                .await
                .map_err(|e| e.to_string())?;
            Ok(rows.iter().filter_map(|row| row.try_get::<String, _>(0).ok()).collect())
        })
    })
    .join()
    .map_err(|_| "the statement's thread panicked".to_owned())?
}

/// Where PostgreSQL's programs are: on the PATH, or Debian's newest.
fn binaries() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|dir| dir.join("initdb").is_file() && dir.join("postgres").is_file());
    on_path.or_else(|| {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .flatten()
            .map(|entry| entry.path().join("bin"))
            .filter(|bin| bin.join("initdb").is_file())
            .collect();
        versions.sort();
        versions.pop()
    })
}

/// The user to run PostgreSQL as, when the tests run as root.
fn run_as() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return None;
    }
    ["postgres", "nobody"]
        .into_iter()
        .find(|user| Command::new("id").arg(user).output().is_ok_and(|o| o.status.success()))
        .map(str::to_owned)
}

/// A directory the cluster's user owns.
fn scratch(user: Option<&str>) -> Result<PathBuf, String> {
    let unique = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("stigmer-pg-{}-{unique}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    if let Some(user) = user {
        let chown = Command::new("chown").args([user, &dir.display().to_string()]).status();
        if !chown.is_ok_and(|status| status.success()) {
            return Err(format!("cannot hand {} to {user}", dir.display()));
        }
    }
    Ok(dir)
}

/// `program` run as `user` (through `runuser`), or as this process's user.
pub fn as_user(user: Option<&str>, program: &Path) -> Command {
    match user {
        Some(user) => {
            let mut command = Command::new("runuser");
            command.args(["-u", user, "--"]).arg(program);
            command
        }
        None => Command::new(program),
    }
}

/// The user a private cluster runs as (`None`: this process's own).
pub fn cluster_user() -> Option<String> {
    run_as()
}
