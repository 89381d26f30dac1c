//! `stigmer server` on PostgreSQL, as people run it: migrations, moving a data directory into a
//! database, a database that is unreachable, refuses the role, restarts under the server, or
//! speaks TLS. Every test runs on a real PostgreSQL (see `support::postgres`).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test that cannot set up fails loudly")]

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Server, output, postgres, stigmer_bin};

/// `stigmer ARGS` with its home in `home` and no server in the environment.
fn stigmer(home: &Path) -> Command {
    let mut command = Command::new(stigmer_bin());
    command.current_dir(support::root()).env("NO_COLOR", "1").env("STIGMER_HOME", home).env_remove("STIGMER_STORE_URL");
    command
}

/// `stigmer server` on `store`, which should refuse to start: a server that starts instead is
/// stopped after 30 s, and fails the test rather than hanging it.
fn start_server(home: &Path, store: &str) -> std::process::Output {
    let mut command = assert_cmd::Command::from_std(stigmer(home));
    command.args(["server", "--listen", "127.0.0.1:0", "--store", store]).timeout(Duration::from_secs(30));
    command.output().unwrap()
}

fn project(dir: &Path, files: &[(&str, &str)]) -> std::path::PathBuf {
    let project = dir.join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(project.join("stigmer.yaml"), "name: team\n").unwrap();
    for (name, text) in files {
        std::fs::write(project.join(name), text).unwrap();
    }
    project
}

const MANIFESTS: &str = "apiVersion: agentic.stigmer.ai/v1
kind: Skill
metadata: {name: house-style, labels: {team: cs}}
spec: {skillMd: Always be brief.}
---
apiVersion: agentic.stigmer.ai/v1
kind: Workflow
metadata: {name: hello}
spec:
  do:
    - greet:
        set: {msg: hi}
";

/// What a user sees of an org, as JSON, to compare two servers by.
fn picture(server: &Server, token: &str, home: &Path) -> Vec<Value> {
    let json = |args: &[&str]| -> Value {
        let (ok, out, err) = output(server.cli(token, home), args);
        assert!(ok, "{args:?}: {err}");
        let mut value: Value = serde_json::from_str(&out).unwrap();
        // When the follower asked is not what the data says; nor are the health conditions a
        // server observes by itself (they are observed again after a move, not copied).
        if let Some(items) = value.get_mut("items").and_then(Value::as_array_mut) {
            for item in items {
                if let Some(object) = item.as_object_mut() {
                    object.remove("age");
                }
                if let Some(status) = item.get_mut("status").and_then(Value::as_object_mut) {
                    status.remove("conditions");
                }
            }
        }
        value
    };
    vec![
        json(&["get", "skills", "-o", "json"]),
        json(&["get", "workflows", "-o", "json"]),
        json(&["history", "skill", "house-style", "-o", "json"]),
        json(&["execution", "list", "-o", "json"]),
        json(&["secret", "list", "-o", "json"]),
        json(&["audit", "-o", "json"]),
    ]
}

#[test]
fn a_data_directory_moves_into_postgres_whole_and_a_second_copy_checks_again() {
    let Some(url) = postgres::database() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (data, home) = (dir.path().join("data"), dir.path().join("home"));
    let files = Server::start(&data);
    let admin = files.token("acme", "admin", "ana");
    let other = files.token("globex", "editor", "bo");
    let project = project(dir.path(), &[("all.yaml", MANIFESTS)]);
    for token in [&admin, &other] {
        let (ok, _, err) = output(files.cli(token, &home), &["apply", "-f", project.to_str().unwrap()]);
        assert!(ok, "{err}");
    }
    let mut set = files.cli(&admin, &home);
    set.env("THE_KEY", "k-123");
    let (ok, _, err) = output(set, &["secret", "set", "API_KEY", "--from-env", "THE_KEY"]);
    assert!(ok, "{err}");
    let (ok, _, err) = output(files.cli(&admin, &home), &["workflow", "run", "hello"]);
    assert!(ok, "{err}");
    let before = picture(&files, &admin, &home);
    assert_eq!(files.stop().code(), Some(0));

    let copy =
        |url: &str| output(stigmer(&home), &["server", "migrate-store", "--from", data.to_str().unwrap(), "--to", url]);
    let (ok, out, err) = copy(&url);
    assert!(ok, "{err}");
    assert!(out.contains("copied 2 orgs and 2 tokens"), "{out}");
    assert!(out.lines().any(|line| line.starts_with("acme ") && line.ends_with("matches")), "{out}");
    let (ok, out, err) = copy(&url);
    assert!(ok, "copying again checks again: {err}");
    assert!(out.contains("every table's rows and digest match"), "{out}");

    // The same tokens, secrets (same master key: the data directory's) and history, served
    // from the database.
    let served = Server::start_on_store(&data, &url, &["--workers", "0"]);
    assert_eq!(picture(&served, &admin, &home), before);
    let (ok, out, _) = output(served.cli(&admin, &home), &["secret", "get", "API_KEY", "--reveal"]);
    assert!(ok && out.contains("k-123"), "{out}");
    let (ok, out, _) = output(served.cli(&other, &home), &["get", "skills", "-o", "name"]);
    assert!(ok && out.trim() == "skill/house-style", "globex's own: {out}");

    // Changed in the database since: a copy now would not be whole, so nothing of it is written.
    let (ok, _, err) = output(served.cli(&admin, &home), &["delete", "skill", "house-style"]);
    assert!(ok, "{err}");
    let (ok, _, err) = copy(&url);
    assert!(!ok);
    assert!(err.contains("org acme") && err.contains("nothing was copied") && err.contains("revisions"), "{err}");
    let (_, out, _) = output(served.cli(&admin, &home), &["get", "skills", "-o", "name"]);
    assert_eq!(out.trim(), "", "the failed copy wrote nothing back");
}

#[test]
fn the_schema_is_migrated_once_and_a_newer_one_is_refused_untouched() {
    let Some(url) = postgres::database() else { return };
    let home = tempfile::tempdir().unwrap();
    let migrate = || output(stigmer(home.path()), &["server", "migrate", "--store", &url]);
    let (ok, out, err) = migrate();
    assert!(ok, "{err}");
    assert!(out.contains("migrated the stigmer schema from version 0 to 3"), "{out}");
    let (ok, out, _) = migrate();
    assert!(ok && out.contains("at version 3; nothing to do"), "{out}");

    postgres::sql(
        &url,
        "INSERT INTO stigmer.schema_migrations (version, name, applied_by) VALUES (99, 'later', 'test')",
    )
    .unwrap();
    let (ok, _, err) = migrate();
    assert!(!ok);
    assert!(err.contains("schema is at version 99") && err.contains("knows (3)"), "{err}");
    assert!(err.contains("hint: run a newer stigmer"), "{err}");
    let started = start_server(home.path(), &url);
    assert_eq!(started.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&started.stderr).contains("version 99"));
    let versions =
        postgres::query(&url, "SELECT version::text FROM stigmer.schema_migrations ORDER BY version").unwrap();
    assert_eq!(versions, ["1", "2", "3", "99"], "left as it was");
}

#[test]
fn a_database_that_cannot_be_used_is_said_at_start_without_its_password() {
    let Some(url) = postgres::database() else { return };
    let home = tempfile::tempdir().unwrap();
    let start = |store: &str| {
        let begun = Instant::now();
        let out = start_server(home.path(), store);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            begun.elapsed(),
        )
    };
    let (code, out, err, took) = start("postgres://stigmer:hunter2@127.0.0.1:1/nowhere");
    assert_eq!(code, Some(2), "{err}");
    assert!(out.is_empty(), "nothing listened: {out}");
    assert!(err.contains("unavailable") && err.contains("hint: check that PostgreSQL runs"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    assert!(took < Duration::from_secs(15), "{took:?}");

    let (code, _, err, _) = start("mysql://stigmer@127.0.0.1/x");
    assert_eq!(code, Some(2));
    assert!(err.contains("is not a PostgreSQL URL"), "{err}");

    // A role that may log in but not create the schema.
    postgres::sql(&url, "CREATE ROLE limited LOGIN; REVOKE CREATE ON SCHEMA public FROM PUBLIC").unwrap();
    let limited = url.replacen("stigmer@", "limited@", 1);
    let (code, _, err, _) = start(&limited);
    assert_eq!(code, Some(2));
    assert!(err.contains("permission denied") && err.contains("hint: the role needs CREATE"), "{err}");
}

#[test]
fn a_database_restart_fails_requests_retryably_and_the_server_goes_on() {
    let Some(cluster) = postgres::private(&[]) else { return };
    let url = cluster.database();
    let dir = tempfile::tempdir().unwrap();
    let (data, home) = (dir.path().join("data"), dir.path().join("home"));
    let server = Server::start_on_store(&data, &url, &["--workers", "1"]);
    let token = server.token("acme", "admin", "ana");
    let project = project(dir.path(), &[("all.yaml", MANIFESTS)]);
    let (ok, _, err) = output(server.cli(&token, &home), &["apply", "-f", project.to_str().unwrap()]);
    assert!(ok, "{err}");

    cluster.stop();
    let (ok, _, err) = output(server.cli(&token, &home), &["get", "skills"]);
    assert!(!ok);
    assert!(err.contains("unavailable") && err.contains("may be retried"), "{err}");
    assert!(err.contains("hint: the server's database is down or restarting"), "{err}");

    cluster.start();
    // The pool connects again by itself; the listener too, so a queued run is claimed at once.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (ok, out, _) = output(server.cli(&token, &home), &["get", "skills", "-o", "name"]);
        if ok {
            assert_eq!(out.trim(), "skill/house-style");
            break;
        }
        assert!(Instant::now() < deadline, "the server did not come back");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (ok, out, err) = output(server.cli(&token, &home), &["workflow", "run", "hello", "-o", "json"]);
    assert!(ok, "{err}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["status"], "completed");
}

#[test]
fn a_server_reaches_its_database_over_verified_tls() {
    let certs = Certificates::make();
    let settings = [
        "ssl=on".to_owned(),
        format!("ssl_cert_file={}", certs.cert.display()),
        format!("ssl_key_file={}", certs.key.display()),
    ];
    let settings: Vec<&str> = settings.iter().map(String::as_str).collect();
    let Some(cluster) = postgres::private(&settings) else { return };
    let url = cluster.database();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let verified = format!("{url}?sslmode=verify-full&sslrootcert={}", certs.ca.display());
    let server = Server::start_on_store(&dir.path().join("data"), &verified, &["--workers", "0"]);
    let token = server.token("acme", "admin", "ana");
    let (ok, _, err) = output(server.cli(&token, &home), &["get", "skills"]);
    assert!(ok, "{err}");
    let encrypted =
        postgres::query(&url, "SELECT bool_and(ssl)::text FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE usename = 'stigmer' AND datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND application_name <> 'psql'")
            .unwrap();
    assert_eq!(encrypted, ["true"], "every connection of the server is encrypted");

    // A certificate nobody vouches for is refused, with why.
    let (ok, _, err) = output(stigmer(&home), &["server", "migrate", "--store", &format!("{url}?sslmode=verify-full")]);
    assert!(!ok);
    assert!(err.to_lowercase().contains("certificate"), "{err}");
}

/// A CA and a certificate for 127.0.0.1 signed by it, in a directory the cluster's user reads.
struct Certificates {
    dir: tempfile::TempDir,
    ca: std::path::PathBuf,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
}

impl Certificates {
    fn make() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        let paths = Self {
            ca: dir.path().join("ca.pem"),
            cert: dir.path().join("server.crt"),
            key: dir.path().join("server.key"),
            dir,
        };
        std::fs::write(&paths.ca, ca.pem()).unwrap();
        std::fs::write(&paths.cert, cert.pem()).unwrap();
        std::fs::write(&paths.key, key.serialize_pem()).unwrap();
        // PostgreSQL wants its key private to the user it runs as.
        std::fs::set_permissions(paths.dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&paths.key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        if let Some(user) = postgres::cluster_user() {
            for file in [&paths.cert, &paths.key] {
                assert!(Command::new("chown").arg(&user).arg(file).status().unwrap().success());
            }
        }
        paths
    }
}
