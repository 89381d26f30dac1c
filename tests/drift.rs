//! Drift: the store changed by another path (another person's apply, a delete by hand) is
//! reported with who changed it and when, by `stigmer drift` and by watch mode in each of its
//! modes — detect (reported, left), warn (marked `Drifted`, cleared when it matches again) and
//! correct (put back, recorded as `corrected`).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test that cannot set up fails loudly")]

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod support;

fn agent(instructions: &str) -> String {
    format!(
        "apiVersion: agentic.stigmer.ai/v1
kind: Skill
metadata:
  name: style
spec:
  skillMd: Be brief.
---
apiVersion: agentic.stigmer.ai/v1
kind: Skill
metadata:
  name: tone
spec:
  skillMd: Be kind.
---
apiVersion: agentic.stigmer.ai/v1
kind: Agent
metadata:
  name: helper
spec:
  instructions: {instructions}
  skillRefs: [style]
"
    )
}

/// A home, the team's project (set `agents`), and `stigmer` as `tester` or someone else.
struct Team {
    dir: tempfile::TempDir,
}

impl Team {
    fn new() -> Self {
        let team = Self { dir: tempfile::tempdir().unwrap() };
        team.write("project", &agent("Help with care."));
        let (code, _, err) = team.run("tester", &["apply", "-f", team.project().to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
        team
    }

    fn project(&self) -> PathBuf {
        self.dir.path().join("project")
    }

    fn write(&self, name: &str, manifests: &str) -> PathBuf {
        let dir = self.dir.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("stigmer.yaml"), "name: agents\n").unwrap();
        std::fs::write(dir.join("agents.yaml"), manifests).unwrap();
        dir
    }

    fn command(&self, actor: &str) -> Command {
        let mut command = Command::new(support::stigmer_bin());
        command.env("STIGMER_HOME", self.dir.path().join("home")).env("NO_COLOR", "1").env("USER", actor);
        command
    }

    fn run(&self, actor: &str, args: &[&str]) -> (i32, String, String) {
        let output = self.command(actor).args(args).output().unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Ana applies her own version of the agent to the same set, from her own directory.
    fn ana_changes_the_agent(&self) {
        let theirs = self.write("theirs", &agent("Answer in French."));
        let (code, _, err) = self.run("ana", &["apply", "-f", theirs.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
    }

    fn instructions(&self) -> String {
        let (_, out, _) = self.run("tester", &["get", "agent", "helper", "-o", "json"]);
        serde_json::from_str::<Value>(&out).unwrap()["spec"]["instructions"].as_str().unwrap().to_owned()
    }

    fn watch(&self, mode: &str) -> Child {
        let project = self.project();
        self.command("tester")
            .args(["apply", "--watch", "-f", project.to_str().unwrap(), "--drift", mode, "--interval", "300ms"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Stops a watcher with SIGTERM; its stdout.
fn stop(mut child: Child) -> String {
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    child.wait().unwrap();
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    out
}

fn project_arg(path: &Path) -> String {
    path.to_str().unwrap().to_owned()
}

#[test]
fn drift_names_each_difference_with_who_made_it_and_exits_as_diff() {
    let team = Team::new();
    let project = project_arg(&team.project());
    let (code, out, err) = team.run("tester", &["drift", "-f", &project]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("No drift"), "{out}");

    team.ana_changes_the_agent();
    let (code, _, err) = team.run("ana", &["delete", "skill", "tone"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = team.run("tester", &["drift", "-f", &project]);
    assert_eq!(code, 1, "drifted: {err}");
    assert!(out.contains("agent/helper updated in the store by ana at"), "{out}");
    assert!(out.contains("applying set \"agents\""), "{out}");
    assert!(out.contains("skill/tone deleted in the store by ana at"), "{out}");
    assert!(
        out.contains("-  instructions: Answer in French.") && out.contains("+  instructions: Help with care."),
        "{out}"
    );
    let (code, out, _) = team.run("tester", &["drift", "-f", &project, "-o", "json"]);
    assert_eq!(code, 1);
    let drifted: Value = serde_json::from_str(&out).unwrap();
    let helper =
        drifted["drifted"].as_array().unwrap().iter().find(|d| d["address"] == "agent/helper").unwrap().clone();
    assert_eq!((&helper["applyWould"], &helper["lastChange"]["actor"]), (&"updated".into(), &"ana".into()));

    let (code, _, err) = team.run("tester", &["apply", "-f", &project]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(team.run("tester", &["drift", "-f", &project]).0, 0, "back in step");
    let (code, _, err) = team.run("tester", &["drift", "-f", "/nonexistent/dir"]);
    assert_eq!(code, 2, "an error is not drift: {err}");
}

#[test]
fn watch_detect_reports_drift_and_leaves_the_store() {
    let team = Team::new();
    let watcher = team.watch("detect");
    std::thread::sleep(Duration::from_millis(500));
    team.ana_changes_the_agent();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(team.instructions(), "Answer in French.", "detect changes nothing");
    let out = stop(watcher);
    assert!(
        out.contains("drift: agent/helper updated in the store by ana at") && out.contains("left as it is"),
        "{out}"
    );
}

#[test]
fn watch_warn_marks_drifted_resources_until_they_match_again() {
    let team = Team::new();
    let watcher = team.watch("warn");
    std::thread::sleep(Duration::from_millis(500));
    team.ana_changes_the_agent();
    let drifted = |status: &str| {
        let (_, out, _) = team.run("tester", &["describe", "agent", "helper", "-o", "json"]);
        let described: Value = serde_json::from_str(&out).unwrap_or_default();
        described["status"]["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["type"] == "Drifted" && c["status"] == status))
    };
    wait_until("the agent is marked Drifted", || drifted("True"));
    assert_eq!(team.instructions(), "Answer in French.", "warn changes nothing");
    let (_, described, _) = team.run("tester", &["describe", "agent", "helper"]);
    assert!(
        described.contains("Drifted") && described.contains("ChangedInStore") && described.contains("by ana"),
        "{described}"
    );
    // Back in step (ana applies the team's files): the mark is cleared.
    let (code, _, err) = team.run("ana", &["apply", "-f", &project_arg(&team.project())]);
    assert_eq!(code, 0, "{err}");
    wait_until("the mark is cleared", || drifted("False"));
    let out = stop(watcher);
    assert!(out.contains("marked Drifted"), "{out}");
}

#[test]
fn watch_correct_puts_the_files_version_back_and_history_says_so() {
    let team = Team::new();
    let watcher = team.watch("correct");
    std::thread::sleep(Duration::from_millis(500));
    team.ana_changes_the_agent();
    wait_until("the files' version is back", || team.instructions() == "Help with care.");
    let out = stop(watcher);
    assert!(out.contains("drift: agent/helper updated in the store by ana") && out.contains("put back"), "{out}");
    let (_, history, _) = team.run("tester", &["history", "agent", "helper", "-o", "json"]);
    let history: Value = serde_json::from_str(&history).unwrap();
    let actions: Vec<(String, String)> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["action"].as_str().unwrap().to_owned(), r["actor"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        actions.last().unwrap(),
        &("corrected".to_owned(), "tester".to_owned()),
        "the put-back is recorded as such: {actions:?}"
    );
}
