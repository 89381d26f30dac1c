//! A real PostgreSQL for the tests: `STIGMER_TEST_DATABASE_URL` when it is set (a server where
//! the role may create databases), else a private cluster this test binary starts on an
//! ephemeral port under a scratch directory — `initdb` and `postgres` run as an unprivileged
//! user when the tests run as root, since PostgreSQL refuses root. Each test gets a database of
//! its own. The cluster stops, and its directory goes, when the test binary exits.
//!
//! Without PostgreSQL the tests that need it print why and pass as skipped, unless
//! `STIGMER_TEST_REQUIRE_POSTGRES` is set (CI sets it): then they fail.

#![allow(dead_code, reason = "each test file uses part of the support module")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Set to make a missing PostgreSQL a failure rather than a skip.
pub const REQUIRE: &str = "STIGMER_TEST_REQUIRE_POSTGRES";
/// A PostgreSQL server to use instead of a private cluster.
pub const DATABASE_URL: &str = "STIGMER_TEST_DATABASE_URL";

/// Where the databases of this test binary are made.
struct Cluster {
    /// `postgres://stigmer@127.0.0.1:PORT`, without a database.
    base: String,
    /// The database to connect to for making others.
    admin: String,
    /// The cluster's process (a shell that stops it when this binary's stdin to it closes).
    _guard: Option<Mutex<Child>>,
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
static NEXT: AtomicU32 = AtomicU32::new(0);

/// A fresh, empty database for one test: its URL. `None` (having said why) when there is no
/// PostgreSQL and it is not required.
pub fn database() -> Option<String> {
    let cluster = match CLUSTER.get_or_init(start) {
        Ok(cluster) => cluster,
        Err(why) => {
            assert!(std::env::var_os(REQUIRE).is_none(), "PostgreSQL is required ({REQUIRE} is set) but: {why}");
            eprintln!("skipped: no PostgreSQL for this test: {why}");
            return None;
        }
    };
    let name = format!("t{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    sql(&cluster.admin, &format!("CREATE DATABASE {name}")).unwrap_or_else(|e| panic!("cannot create a database: {e}"));
    Some(format!("{}/{name}", cluster.base))
}

/// Runs statements on `url` (on a thread of its own, so async tests may call it too).
pub fn sql(url: &str, statements: &str) -> Result<(), String> {
    let (url, statements) = (url.to_owned(), statements.to_owned());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        runtime.block_on(async {
            use sqlx::Connection as _;
            let mut connection = sqlx::PgConnection::connect(&url).await.map_err(|e| e.to_string())?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(statements)).execute(&mut connection).await.map_err(|e| e.to_string())?;
            Ok(())
        })
    })
    .join()
    .map_err(|_| "the statement's thread panicked".to_owned())?
}

fn start() -> Result<Cluster, String> {
    if let Ok(url) = std::env::var(DATABASE_URL) {
        let base = url.rsplit_once('/').map(|(base, _)| base.to_owned()).ok_or("the URL names no database")?;
        return Ok(Cluster { base, admin: url, _guard: None });
    }
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
    // The shell stops the cluster and removes its directory once this process's end of its
    // stdin closes, which happens when the test binary exits, however it exits.
    let script = format!(
        "'{postgres}' -D '{data}' -p {port} -k '{dir}' -c listen_addresses=127.0.0.1 -c fsync=off \
         -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 \
         -c shared_preload_libraries=pg_stat_statements > '{dir}/log' 2>&1 & pid=$!; cat > /dev/null; \
         kill -INT $pid; wait $pid; rm -rf '{dir}'",
        postgres = bin.join("postgres").display(),
        data = data.display(),
        dir = dir.display(),
    );
    let child = as_user(user.as_deref(), Path::new("sh"))
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start postgres: {e}"))?;
    let base = format!("postgres://stigmer@127.0.0.1:{port}");
    let admin = format!("{base}/postgres");
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Err(why) = sql(&admin, "SELECT 1") {
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
            return Err(format!("postgres did not start: {why}\n{log}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(Cluster { base, admin, _guard: Some(Mutex::new(child)) })
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
    let dir = std::env::temp_dir().join(format!("stigmer-pg-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    if let Some(user) = user {
        let chown = Command::new("chown").args([user, &dir.display().to_string()]).status();
        if !chown.is_ok_and(|status| status.success()) {
            return Err(format!("cannot hand {} to {user}", dir.display()));
        }
    }
    Ok(dir)
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| u64::from(d.subsec_nanos()))
}

/// `program` run as `user` (through `runuser`), or as this process's user.
fn as_user(user: Option<&str>, program: &Path) -> Command {
    match user {
        Some(user) => {
            let mut command = Command::new("runuser");
            command.args(["-u", user, "--"]).arg(program);
            command
        }
        None => Command::new(program),
    }
}
