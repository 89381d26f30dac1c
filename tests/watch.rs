//! `stigmer apply --watch` driven as people use it: the real binary watching a temporary
//! directory while the test edits, adds, removes and renames files, breaks one and fixes it,
//! and changes the store behind its back; after each step the store is checked.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test that cannot set up fails loudly")]
#![cfg(unix)]

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod support;

fn skill(name: &str, text: &str) -> String {
    format!("apiVersion: agentic.stigmer.ai/v1\nkind: Skill\nmetadata:\n  name: {name}\nspec:\n  skillMd: {text}\n")
}

struct Watching {
    dir: tempfile::TempDir,
    child: Child,
    /// The environment naming the backend (empty: the local store).
    env: Vec<(String, String)>,
}

impl Watching {
    fn start(files: &[(&str, String)], extra: &[&str]) -> Self {
        Self::start_in(tempfile::tempdir().unwrap(), files, extra, Vec::new())
    }

    fn start_in(dir: tempfile::TempDir, files: &[(&str, String)], extra: &[&str], env: Vec<(String, String)>) -> Self {
        let project = dir.path().join("project");
        fs::create_dir_all(&project).unwrap();
        fs::write(project.join("stigmer.yaml"), "name: watched\n").unwrap();
        for (file, text) in files {
            fs::write(project.join(file), text).unwrap();
        }
        let child = Command::new(assert_cmd::cargo::cargo_bin("stigmer"))
            .env("STIGMER_HOME", dir.path().join("home"))
            .env("NO_COLOR", "1")
            .envs(env.iter().cloned())
            .args(["apply", "--watch", "-f"])
            .arg(&project)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let watching = Self { dir, child, env };
        watching.wait_for(|names| !names.is_empty(), "the initial reconcile");
        watching
    }

    fn project(&self) -> PathBuf {
        self.dir.path().join("project")
    }

    fn stigmer(&self, args: &[&str]) -> String {
        let output = Command::new(assert_cmd::cargo::cargo_bin("stigmer"))
            .env("STIGMER_HOME", self.dir.path().join("home"))
            .envs(self.env.iter().cloned())
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// `kind/name@generation` of everything stored.
    fn state(&self) -> Vec<String> {
        let json = self.stigmer(&["get", "-o", "json"]);
        let listed: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
        listed["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                format!(
                    "{}/{}@{}",
                    r["kind"].as_str().unwrap().to_lowercase(),
                    r["metadata"]["name"].as_str().unwrap(),
                    r["status"]["generation"]
                )
            })
            .collect()
    }

    fn wait_for(&self, done: impl Fn(&[String]) -> bool, what: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let state = self.state();
            if done(&state) {
                return state;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}; store: {state:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops with SIGTERM and returns (exit code, stdout, stderr).
    fn stop(mut self) -> (Option<i32>, String, String) {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        let status = self.child.wait().unwrap();
        let mut out = String::new();
        let mut err = String::new();
        self.child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        self.child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        (status.code(), out, err)
    }
}

/// Writes like an editor that saves atomically: a temporary file, then a rename over the target.
fn save(path: &Path, text: &str) {
    let temporary = path.with_file_name(format!(".{}.tmp", path.file_name().unwrap().to_string_lossy()));
    fs::write(&temporary, text).unwrap();
    fs::rename(&temporary, path).unwrap();
}

#[test]
fn the_store_follows_edits_additions_removals_and_renames() {
    let watching = Watching::start(&[("a.yaml", skill("a", "One.")), ("b.yaml", skill("b", "Bee."))], &["--prune"]);
    assert_eq!(watching.state(), ["skill/a@1", "skill/b@1"]);

    save(&watching.project().join("a.yaml"), &skill("a", "Two."));
    watching.wait_for(|s| s.contains(&"skill/a@2".to_owned()), "the edit");

    fs::write(watching.project().join("c.yaml"), skill("c", "Sea.")).unwrap();
    watching.wait_for(|s| s.contains(&"skill/c@1".to_owned()), "the new file");

    fs::remove_file(watching.project().join("b.yaml")).unwrap();
    watching.wait_for(|s| s == ["skill/a@2", "skill/c@1"], "the removal (pruned)");

    // A rename keeps the resource as it is: no delete and create.
    fs::rename(watching.project().join("c.yaml"), watching.project().join("renamed.yaml")).unwrap();
    fs::create_dir(watching.project().join("nested")).unwrap();
    fs::write(watching.project().join("nested/d.yaml"), skill("d", "Dee.")).unwrap();
    watching.wait_for(|s| s == ["skill/a@2", "skill/c@1", "skill/d@1"], "the new directory");

    // Editors' swap and backup files are ignored.
    fs::write(watching.project().join(".a.yaml.swp"), "binary junk \0").unwrap();
    fs::write(watching.project().join("a.yaml~"), "old").unwrap();

    // A directory removed takes its manifests with it.
    fs::remove_dir_all(watching.project().join("nested")).unwrap();
    watching.wait_for(|s| s == ["skill/a@2", "skill/c@1"], "the directory removal");

    // A file moved out of the tree counts as removed.
    fs::rename(watching.project().join("renamed.yaml"), watching.dir.path().join("moved-out.yaml")).unwrap();
    watching.wait_for(|s| s == ["skill/a@2"], "the file moved out");

    let (code, out, err) = watching.stop();
    assert_eq!(code, Some(0), "SIGTERM ends watch mode cleanly: {err}");
    assert!(err.is_empty(), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines.iter().any(|l| l.contains("skill/a updated — 0 created, 1 updated, 0 deleted, 1 unchanged")
            && l.contains("1 file read")),
        "{out}"
    );
    assert!(lines.iter().any(|l| l.contains("skill/b deleted")), "{out}");
    assert_eq!(lines.len(), 7, "one line per reconcile that changed something, none for the rest:\n{out}");
}

#[test]
fn a_broken_save_applies_nothing_until_it_is_fixed() {
    let watching = Watching::start(&[("a.yaml", skill("a", "One."))], &[]);
    save(
        &watching.project().join("a.yaml"),
        "apiVersion: agentic.stigmer.ai/v1\nkind: Skill\nmetadata:\n  name: a\nspec:\n  skilMd: Two.\n",
    );
    save(&watching.project().join("b.yaml"), &skill("b", "Bee."));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(watching.state(), ["skill/a@1"], "nothing of a broken set is applied");
    save(&watching.project().join("a.yaml"), &skill("a", "Two."));
    watching.wait_for(|s| s == ["skill/a@2", "skill/b@1"], "the fix");
    let (code, _, err) = watching.stop();
    assert_eq!(code, Some(0));
    assert!(err.contains("unknown field \"skilMd\" in spec") && err.contains("project/a.yaml:6:3"), "{err}");
    assert!(err.contains("not applied: the store keeps the last good state"), "{err}");
}

#[test]
fn a_change_behind_its_back_is_put_back_on_the_interval() {
    let watching = Watching::start(&[("a.yaml", skill("a", "One."))], &["--interval", "300ms"]);
    watching.stigmer(&["delete", "skill", "a"]);
    watching.wait_for(|s| s == ["skill/a@1"], "drift correction");
    let (code, out, _) = watching.stop();
    assert_eq!(code, Some(0));
    assert!(out.contains("skill/a created") && out.contains("0 files read"), "{out}");
}

#[test]
fn symlinked_files_are_followed() {
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("shared.yaml");
    fs::write(&target, skill("shared", "One.")).unwrap();
    let watching = Watching::start(&[("a.yaml", skill("a", "A."))], &[]);
    std::os::unix::fs::symlink(&target, watching.project().join("shared.yaml")).unwrap();
    watching.wait_for(|s| s.contains(&"skill/shared@1".to_owned()), "the symlinked file");
    save(&target, &skill("shared", "Two."));
    watching.wait_for(|s| s.contains(&"skill/shared@2".to_owned()), "an edit through the link");
    assert_eq!(watching.stop().0, Some(0));
}

#[test]
fn watching_a_server_survives_its_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    let server = support::Server::start(&data);
    let token = server.token("team", "editor", "watcher");
    let env = vec![
        ("STIGMER_ENDPOINT".to_owned(), server.endpoint.clone()),
        ("STIGMER_TOKEN".to_owned(), token.clone()),
        ("STIGMER_ORG".to_owned(), "team".to_owned()),
    ];
    let watching = Watching::start_in(dir, &[("a.yaml", skill("a", "One."))], &[], env);
    save(&watching.project().join("a.yaml"), &skill("a", "Two."));
    watching.wait_for(|s| s == ["skill/a@2"], "the edit, applied to the server");

    let port = server.port();
    assert!(server.stop().success(), "SIGTERM stops the server cleanly");
    save(&watching.project().join("a.yaml"), &skill("a", "Three."));
    std::thread::sleep(Duration::from_millis(300));
    let server = support::Server::start_on(&data, &format!("127.0.0.1:{port}"), &[]);
    watching.wait_for(|s| s == ["skill/a@3"], "the edit made while the server was down");

    let log = std::fs::read_to_string(&server.log).unwrap();
    assert!(!log.contains(&token[4..]), "the token never shows in the server's log");
    let (code, out, err) = watching.stop();
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("cannot reach the server"), "the outage is reported: {err}");
    assert!(!out.contains(&token[4..]) && !err.contains(&token[4..]), "nor in the watch output");
}

#[test]
fn saving_a_file_in_a_skill_directory_applies_the_skill() {
    // A directory skill is made of its files: saving one is a change, also when the directory is
    // not below the -f path (here `../skills/outer`, still inside the project).
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    let manifests = project.join("manifests");
    let inner = manifests.join("inner");
    let outer = project.join("skills/outer");
    for skill_dir in [&inner, &outer] {
        fs::create_dir_all(skill_dir).unwrap();
        fs::write(skill_dir.join("SKILL.md"), "# One").unwrap();
    }
    fs::write(project.join("stigmer.yaml"), "name: watched\n").unwrap();
    let skill = |name: &str, path: &str| {
        format!("apiVersion: agentic.stigmer.ai/v1\nkind: Skill\nmetadata:\n  name: {name}\nspec:\n  path: {path}\n")
    };
    fs::write(
        manifests.join("skills.yaml"),
        [skill("inner", "inner"), skill("outer", "../skills/outer")].join("---\n"),
    )
    .unwrap();
    let child = Command::new(assert_cmd::cargo::cargo_bin("stigmer"))
        .env("STIGMER_HOME", dir.path().join("home"))
        .env("NO_COLOR", "1")
        .args(["apply", "--watch", "-f"])
        .arg(&manifests)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let watching = Watching { dir, child, env: Vec::new() };
    watching.wait_for(|state| state == ["skill/inner@1", "skill/outer@1"], "the initial reconcile");

    save(&inner.join("SKILL.md"), "# Two");
    watching.wait_for(|state| state == ["skill/inner@2", "skill/outer@1"], "the skill inside the input");
    save(&outer.join("SKILL.md"), "# Two");
    watching.wait_for(|state| state == ["skill/inner@2", "skill/outer@2"], "the skill outside the input");
    fs::create_dir_all(outer.join("scripts")).unwrap();
    fs::write(outer.join("scripts/run.sh"), "echo run\n").unwrap();
    watching.wait_for(|state| state == ["skill/inner@2", "skill/outer@3"], "a new file in a new directory");

    let (_, out, err) = watching.stop();
    assert!(!err.contains("error"), "{err}");
    assert_eq!(out.matches("skill/outer updated").count(), 2, "{out}");
}
