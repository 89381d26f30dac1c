//! The `stigmer` binary as people run it: exit codes, output and snapshots of what it prints.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test that cannot set up fails loudly")]

use std::fs;
use std::path::PathBuf;

use assert_cmd::Command;
use predicates::prelude::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn stigmer() -> Command {
    let mut cmd = Command::cargo_bin("stigmer").unwrap();
    cmd.current_dir(root()).env("NO_COLOR", "1");
    cmd
}

/// Replaces temporary directories with a stable placeholder in snapshots.
fn filtered(dir: &std::path::Path) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&regex_escape(&dir.display().to_string()), "[TMP]");
    settings
}

fn regex_escape(text: &str) -> String {
    text.chars().flat_map(|c| if "\\.+*?()|[]{}^$".contains(c) { vec!['\\', c] } else { vec![c] }).collect()
}

#[test]
fn validate_examples_succeeds_with_a_summary() {
    let output = stigmer().args(["validate", "-f", "examples/"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
    insta::assert_snapshot!(String::from_utf8_lossy(&output.stdout));
}

#[test]
fn validate_reads_several_paths_and_stdin() {
    let agent = fs::read_to_string(root().join("tests/manifests/valid/yaml-features.yaml")).unwrap();
    stigmer()
        .args(["validate", "-f", "examples/skills.yaml", "-f", "-"])
        .write_stdin(agent)
        .assert()
        .success()
        .stdout(predicate::str::contains("5 resources valid in 2 files"));
}

#[test]
fn validate_reports_every_problem_of_a_document_at_once() {
    let output =
        stigmer().args(["validate", "-f", "tests/manifests/invalid/several-errors-at-once.yaml"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.matches("error:").count() >= 4, "{stderr}");
    assert_eq!(output.stdout, b"");
}

#[test]
fn validate_json_output_is_structured() {
    let output = stigmer()
        .args(["validate", "-o", "json", "-f", "tests/manifests/invalid/agent-dangling-skill.yaml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["valid"], false);
    assert_eq!(report["errors"], 1);
    insta::assert_json_snapshot!(report);
}

#[test]
fn validate_a_missing_path_fails_clearly() {
    stigmer()
        .args(["validate", "-f", "no/such/dir"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("cannot read no/such/dir"))
        .stderr(predicate::str::contains("hint: check the path given to -f"));
}

#[test]
fn validate_without_files_is_a_usage_error() {
    stigmer().arg("validate").assert().code(2).stderr(predicate::str::contains("--filename <PATH>"));
}

#[test]
fn validate_an_empty_directory_says_so() {
    let dir = tempfile::tempdir().unwrap();
    stigmer()
        .args(["validate", "-f"])
        .arg(dir.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no manifests found"));
}

#[test]
fn hidden_directories_and_other_files_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join(".git")).unwrap();
    fs::write(dir.path().join(".git/broken.yaml"), "{{{{").unwrap();
    fs::write(dir.path().join("notes.txt"), "not yaml").unwrap();
    fs::create_dir(dir.path().join("nested")).unwrap();
    fs::copy(root().join("examples/mcp-servers.yaml"), dir.path().join("nested/servers.yml")).unwrap();
    stigmer()
        .args(["validate", "-f"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("2 resources valid in 1 file"));
}

#[cfg(unix)]
#[test]
fn symlinked_files_are_followed_and_symlink_loops_end() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(root().join("examples/mcp-servers.yaml"), dir.path().join("servers.yaml")).unwrap();
    std::os::unix::fs::symlink(dir.path(), dir.path().join("loop")).unwrap();
    stigmer()
        .args(["validate", "-f"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("2 resources valid"));
}

#[test]
fn colors_only_when_asked_or_on_a_terminal() {
    let plain = stigmer().args(["validate", "-f", "tests/manifests/invalid/unknown-kind.yaml"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&plain.stderr).contains('\x1b'));
    let colored = stigmer()
        .args(["--color", "always", "validate", "-f", "tests/manifests/invalid/unknown-kind.yaml"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&colored.stderr).contains("\x1b[1;31merror:"));
}

#[test]
fn schema_prints_a_kind_schema_with_an_id() {
    let output = stigmer().args(["schema", "Agents"]).output().unwrap();
    assert!(output.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(schema["$id"], "https://schemas.stigmer.ai/v1/agent.json");
    assert_eq!(schema["title"], "Agent");
    let any: serde_json::Value = serde_json::from_slice(&stigmer().arg("schema").output().unwrap().stdout).unwrap();
    assert_eq!(any["$id"], "https://schemas.stigmer.ai/v1/manifest.json");
}

#[test]
fn schema_of_an_unknown_kind_is_refused_with_the_list() {
    let output = stigmer().args(["schema", "robot"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    insta::assert_snapshot!(String::from_utf8_lossy(&output.stderr));
}

#[test]
fn init_scaffolds_a_project_that_validates_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("My Project");
    let output = stigmer().arg("init").arg(&project).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    filtered(dir.path()).bind(|| insta::assert_snapshot!(String::from_utf8_lossy(&output.stdout)));
    assert_eq!(fs::read_to_string(project.join("stigmer.yaml")).unwrap().lines().last(), Some("name: my-project"));

    let validated = stigmer().args(["validate", "-f"]).arg(&project).output().unwrap();
    assert!(validated.status.success(), "{}", String::from_utf8_lossy(&validated.stderr));
    insta::assert_snapshot!(String::from_utf8_lossy(&validated.stdout));

    fs::write(project.join("agent.yaml"), "edited").unwrap();
    let again = stigmer().arg("init").arg(&project).output().unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert_eq!(fs::read_to_string(project.join("agent.yaml")).unwrap(), "edited");
}

#[test]
fn an_initialized_project_works_offline_with_no_environment_variables() {
    // A fresh machine: no variable at all (not even HOME or PATH), no network, no model.
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("fresh");
    let bare = || {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_stigmer"));
        command.env_clear().current_dir(dir.path());
        command
    };
    let run = |args: &[&str]| {
        let output = bare().args(args).output().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let home = dir.path().join("home");
    let (home, project) = (home.to_str().unwrap(), project.to_str().unwrap());
    assert_eq!(run(&["init", project]).0, Some(0));
    let (code, out, err) = run(&["validate", "-f", project]);
    assert_eq!((code, err.as_str()), (Some(0), ""), "no warning either: {out}");
    let (code, out, err) = run(&["--home", home, "apply", "-f", project]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.ends_with("6 created, 0 updated, 0 deleted, 0 unchanged\n"), "{out}");
    // The agent needs only a model endpoint: without one, the README's error, and its hint.
    if std::net::TcpStream::connect("127.0.0.1:11434").is_ok() {
        eprintln!("skipped: something listens on Ollama's port 11434 here, so no error is expected");
        return;
    }
    for target in ["triage-bot", "triage-bot-dev"] {
        let (code, _, err) = run(&["--home", home, "agent", "execute", target, "Triage: the login page is down"]);
        assert_eq!(code, Some(1), "{err}");
        assert!(
            err.starts_with("error: agent `triage-bot`: cannot reach ollama at http://localhost:11434/v1"),
            "{err}"
        );
        assert!(err.contains("hint: is Ollama running? start it with `ollama serve`"), "{err}");
    }
}

#[test]
fn init_refuses_an_invalid_project_name() {
    let dir = tempfile::tempdir().unwrap();
    stigmer()
        .arg("init")
        .arg(dir.path())
        .args(["--name", "Bad_Name"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("hint: try --name bad-name"));
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn version_and_completion_work() {
    stigmer().arg("--version").assert().success().stdout(format!("stigmer {}\n", env!("CARGO_PKG_VERSION")));
    stigmer().args(["completion", "bash"]).assert().success().stdout(predicate::str::contains("_stigmer()"));
}

#[test]
fn help_shows_examples() {
    stigmer().args(["validate", "--help"]).assert().success().stdout(predicate::str::contains("Examples:"));
}

#[test]
fn a_plaintext_secret_is_a_warning_with_its_place_not_an_error() {
    let output = stigmer().args(["validate", "-f", "tests/manifests/warnings/plaintext-secret.yaml"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    insta::assert_snapshot!(String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("ok: 1 resource valid"));
}

#[test]
fn a_plaintext_secret_never_reaches_the_output() {
    for format in ["text", "json"] {
        let output = stigmer()
            .args(["validate", "-o", format, "-f", "tests/manifests/warnings/plaintext-secret.yaml"])
            .output()
            .unwrap();
        let everything = [output.stdout, output.stderr].concat();
        assert!(
            !String::from_utf8_lossy(&everything).contains("sk-not-a-real-key"),
            "{format} output shows the secret"
        );
    }
}
