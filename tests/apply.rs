//! The reconciler as people use it: `apply`, `diff`, `get`, `describe`, `delete`, `export`,
//! `import`, `history`, `rollback` and `agent create`, run as the real binary. Every scenario
//! that does not look inside the store file runs twice — on a temporary local store and on a
//! real `stigmer server` on 127.0.0.1 — against the same snapshots, so both backends give the
//! same plans, outputs, errors and exit codes.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test that cannot set up fails loudly")]

use std::fs;
use std::path::Path;
use std::time::Duration;

use stigmer::store::redb::{OpenOptions, Store};
use support::Sandbox;

#[macro_use]
mod support;

fn skill(name: &str, text: &str) -> String {
    format!("apiVersion: agentic.stigmer.ai/v1\nkind: Skill\nmetadata:\n  name: {name}\nspec:\n  skillMd: {text}\n")
}

fn agent(name: &str, skills: &[&str]) -> String {
    let refs: String = skills.iter().map(|s| ["    - ", s, "\n"].concat()).collect();
    format!(
        "apiVersion: agentic.stigmer.ai/v1\nkind: Agent\nmetadata:\n  name: {name}\nspec:\n  instructions: Help.\n  skillRefs:\n{refs}"
    )
}

/// Snapshot settings hiding times, ages, uids and hashes.
fn stable() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    // In order: ids and hashes first, so an age-like run inside one ("411d") stays theirs.
    settings.add_filter(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "[UID]");
    settings.add_filter(r"\b[0-9a-f]{64}\b", "[HASH]");
    settings.add_filter(r"\b[0-9a-f]{12}\b", "[HASH12]");
    settings.add_filter(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z", "[TIME]");
    settings.add_filter(r"\b\d+[smhd]\b", "[AGE]");
    settings
}

fn applying_twice_changes_nothing_the_second_time(sandbox: &Sandbox) {
    let (code, out, err) = sandbox.run(&["apply", "-f", "examples/"]);
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!("first_apply", out);
    let commits = sandbox.commits();
    assert_eq!(commits, 1, "the whole first apply is one commit");

    let (code, out, _) = sandbox.run(&["apply", "-f", "examples/"]);
    assert_eq!(code, 0);
    assert!(out.ends_with("0 created, 0 updated, 0 deleted, 12 unchanged\n"), "{out}");
    assert_eq!(sandbox.commits(), commits, "a no-op apply must not commit");
    let (_, json, _) = sandbox.run(&["get", "-o", "json"]);
    let listed: serde_json::Value = serde_json::from_str(&json).unwrap();
    let resources = listed["items"].as_array().unwrap();
    assert_eq!(resources.len(), 12);
    assert!(resources.iter().all(|r| r["status"]["generation"] == 1), "{json}");
    let (_, history, _) = sandbox.run(&["history", "agent", "support-bot"]);
    assert_eq!(history.lines().count(), 2, "one revision: {history}");
}

fn export_import_export_is_byte_identical(sandbox: &Sandbox) {
    let first = sandbox;
    assert_eq!(first.run(&["apply", "-f", "examples/"]).0, 0);
    first.run(&[
        "agent",
        "create",
        "by-hand",
        "--instructions",
        "Made without a manifest.",
        "--skill",
        "tone-of-voice",
    ]);
    let (code, exported, _) = first.run(&["export", "--all"]);
    assert_eq!(code, 0);
    assert!(exported.contains("name: by-hand"));
    assert!(
        !exported.contains("\nstatus:") && !exported.contains("uid:") && !exported.contains("generation:"),
        "server fields leaked into export"
    );

    let second = sandbox.another();
    let output = second.stigmer().arg("import").write_stdin(exported.clone()).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let (_, again, _) = second.run(&["export", "--all"]);
    assert_eq!(again, exported);

    let file = second.dir.path().join("all.yaml");
    assert_eq!(second.run(&["export", "--all", "-o", file.to_str().unwrap()]).0, 0);
    assert_eq!(fs::read_to_string(file).unwrap(), exported);
}

fn an_empty_store_exports_a_stream_that_imports_as_nothing(sandbox: &Sandbox) {
    let (code, exported, _) = sandbox.run(&["export", "--all"]);
    assert_eq!((code, exported.as_str()), (0, ""));
    let output = sandbox.stigmer().arg("import").write_stdin(exported.clone()).output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{err}");
    assert!(err.contains("warning: this file holds no manifests") && err.contains("nothing to import"), "{err}");
    assert_eq!(sandbox.commits(), 0, "an empty import commits nothing");
    // Pruning to nothing would delete a whole set: an empty stream is refused then.
    let output = sandbox.stigmer().args(["import", "--prune", "--set", "team"]).write_stdin("").output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
}

fn diff_exits_0_without_changes_1_with_changes_and_2_on_error(sandbox: &Sandbox) {
    let (code, out, _) = sandbox.run(&["diff", "-f", "examples/skills.yaml"]);
    assert_eq!(code, 1);
    assert!(out.contains("+++ skill/refund-policy (new)"), "{out}");
    sandbox.run(&["apply", "-f", "examples/skills.yaml"]);
    let (code, out, _) = sandbox.run(&["diff", "-f", "examples/skills.yaml"]);
    assert_eq!((code, out.as_str()), (0, "0 created, 0 updated, 0 deleted, 2 unchanged\n"));

    let project = sandbox.project("p", "docs", &[("s.yaml", &skill("tone-of-voice", "Be brief."))]);
    let (code, out, _) = sandbox.run(&["diff", "-f", project.to_str().unwrap(), "--force-ownership"]);
    assert_eq!(code, 1);
    stable().bind(|| insta::assert_snapshot!("diff_update", out));

    let (code, _, err) = sandbox.run(&["diff", "-f", "tests/manifests/invalid/unknown-kind.yaml"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = sandbox.run(&["diff", "-f", "no/such/file.yaml"]);
    assert_eq!(code, 2);
}

fn prune_deletes_only_what_this_set_owns_and_no_longer_declares(sandbox: &Sandbox) {
    let a = sandbox.project("a", "team-a", &[("x.yaml", &skill("x", "X")), ("y.yaml", &skill("y", "Y"))]);
    let b = sandbox.project("b", "team-b", &[("z.yaml", &skill("z", "Z"))]);
    assert_eq!(sandbox.run(&["apply", "-f", a.to_str().unwrap()]).0, 0);
    assert_eq!(sandbox.run(&["apply", "-f", b.to_str().unwrap()]).0, 0);
    assert_eq!(sandbox.run(&["agent", "create", "helper", "--instructions", "Help."]).0, 0);

    let a = sandbox.project("a", "team-a", &[("x.yaml", &skill("x", "X"))]);
    let (code, out, err) = sandbox.run(&["apply", "-f", a.to_str().unwrap(), "--prune"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "skill/x unchanged\nskill/y deleted\n0 created, 0 updated, 1 deleted, 1 unchanged\n");
    let (_, names, _) = sandbox.run(&["get", "-o", "name"]);
    assert_eq!(names, "skill/x\nskill/z\nagent/helper\n");

    // Without --prune nothing is deleted.
    let a = sandbox.project("a", "team-a", &[]);
    fs::write(a.join("other.yaml"), skill("w", "W")).unwrap();
    let (_, out, _) = sandbox.run(&["apply", "-f", a.to_str().unwrap()]);
    assert!(out.ends_with("1 created, 0 updated, 0 deleted, 0 unchanged\n"), "{out}");
    assert!(sandbox.run(&["get", "skill", "x"]).0 == 0);
}

fn prune_refuses_to_delete_what_a_remaining_resource_references(sandbox: &Sandbox) {
    let a = sandbox.project("a", "team-a", &[("s.yaml", &skill("calc", "Add."))]);
    sandbox.run(&["apply", "-f", a.to_str().unwrap()]);
    assert_eq!(sandbox.run(&["agent", "create", "helper", "--instructions", "Help.", "--skill", "calc"]).0, 0);
    let a = sandbox.project("a", "team-a", &[("t.yaml", &skill("other", "Other."))]);
    let (code, out, err) = sandbox.run(&["apply", "-f", a.to_str().unwrap(), "--prune"]);
    assert_eq!(code, 2);
    assert_eq!(out, "");
    insta::assert_snapshot!("prune_refused", err);
    assert_eq!(sandbox.run(&["get", "skill", "other"]).0, 2, "nothing may be written when the plan is refused");
}

fn resources_of_another_set_are_taken_over_only_when_forced(sandbox: &Sandbox) {
    let a = sandbox.project("a", "team-a", &[("s.yaml", &skill("shared", "A's."))]);
    let b = sandbox.project("b", "team-b", &[("s.yaml", &skill("shared", "B's."))]);
    sandbox.run(&["apply", "-f", a.to_str().unwrap()]);
    let (code, _, err) = sandbox.run(&["apply", "-f", b.to_str().unwrap()]);
    assert_eq!(code, 2);
    insta::assert_snapshot!("owned_by_another_set", err);
    let (code, out, _) = sandbox.run(&["apply", "-f", b.to_str().unwrap(), "--force-ownership"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().next(), Some("skill/shared updated (taken over from apply set \"team-a\")"));
    let (_, table, _) = sandbox.run(&["get", "skills"]);
    assert!(table.contains("team-b"), "{table}");
}

fn references_resolve_against_the_store(sandbox: &Sandbox) {
    sandbox.run(&["apply", "-f", "examples/skills.yaml"]);
    let project = sandbox.project("p", "agents", &[("a.yaml", &agent("writer", &["tone-of-voice"]))]);
    assert_eq!(sandbox.run(&["apply", "-f", project.to_str().unwrap()]).0, 0);
    let project = sandbox.project("p", "agents", &[("a.yaml", &agent("writer", &["tone-of-voic"]))]);
    let (code, _, err) = sandbox.run(&["apply", "-f", project.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("did you mean \"tone-of-voice\"? (it exists in the backend)"), "{err}");
}

fn delete_refuses_while_referenced_and_deletes_otherwise(sandbox: &Sandbox) {
    sandbox.run(&["apply", "-f", "examples/"]);
    let (code, _, err) = sandbox.run(&["delete", "skill", "tone-of-voice"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("skill/tone-of-voice is still referenced by agent/escalation-writer, agent/support-bot"),
        "{err}"
    );
    let (code, out, _) = sandbox.run(&["delete", "workflowinstance", "ticket-triage-prod"]);
    assert_eq!((code, out.as_str()), (0, "workflowinstance/ticket-triage-prod deleted\n"));
    let (code, out, err) = sandbox.run(&["delete", "-f", "examples/workflows/", "-f", "examples/instances.yaml"]);
    assert_eq!(code, 2, "the instance is already gone: {out}{err}");
    assert!(err.contains("workflowinstance/ticket-triage-prod does not exist"));
    let (code, out, _) = sandbox.run(&["delete", "-f", "examples/workflows/"]);
    assert_eq!((code, out.as_str()), (0, "workflow/ticket-triage deleted\nworkflow/nightly-report deleted\n"));
}

fn history_and_rollback(sandbox: &Sandbox) {
    let p = sandbox.project("p", "docs", &[("s.yaml", &skill("notes", "One."))]);
    sandbox.run(&["apply", "-f", p.to_str().unwrap()]);
    let p = sandbox.project("p", "docs", &[("s.yaml", &skill("notes", "Two."))]);
    sandbox.run(&["apply", "-f", p.to_str().unwrap()]);
    let (code, out, _) = sandbox.run(&["rollback", "skill", "notes", "--to", "1"]);
    assert_eq!((code, out.as_str()), (0, "skill/notes rolled back to generation 1 (now generation 3)\n"));
    let (_, yaml, _) = sandbox.run(&["get", "skill", "notes", "-o", "yaml"]);
    assert!(yaml.contains("skillMd: One."), "{yaml}");
    let (_, history, _) = sandbox.run(&["history", "skill", "notes"]);
    stable().bind(|| insta::assert_snapshot!("history", history));
    let (code, _, err) = sandbox.run(&["rollback", "skill", "notes", "--to", "9"]);
    assert_eq!(code, 2);
    assert!(err.contains("skill/notes has no generation 9; it has 1, 2, 3"), "{err}");

    // Deleted and created again, it counts its generations from 1 anew: `--to` names the
    // current life's, not the earlier one's of the same number.
    assert_eq!(sandbox.run(&["delete", "skill", "notes"]).0, 0);
    let p = sandbox.project("p", "docs", &[("s.yaml", &skill("notes", "Three."))]);
    sandbox.run(&["apply", "-f", p.to_str().unwrap()]);
    let p = sandbox.project("p", "docs", &[("s.yaml", &skill("notes", "Four."))]);
    sandbox.run(&["apply", "-f", p.to_str().unwrap()]);
    let (code, out, _) = sandbox.run(&["rollback", "skill", "notes", "--to", "1"]);
    assert_eq!((code, out.as_str()), (0, "skill/notes rolled back to generation 1 (now generation 3)\n"));
    let (_, yaml, _) = sandbox.run(&["get", "skill", "notes", "-o", "yaml"]);
    assert!(yaml.contains("skillMd: Three."), "{yaml}");
}

fn get_and_describe_show_what_is_stored(sandbox: &Sandbox) {
    sandbox.run(&["apply", "-f", "examples/"]);
    let (_, table, _) = sandbox.run(&["get"]);
    stable().bind(|| insta::assert_snapshot!("get_all", table));
    let (_, table, _) = sandbox.run(&["get", "agents", "-l", "team=cs"]);
    stable().bind(|| insta::assert_snapshot!("get_agents_by_label", table));
    let (_, described, _) = sandbox.run(&["describe", "skill", "tone-of-voice"]);
    stable().bind(|| insta::assert_snapshot!("describe_skill", described));
    let (code, _, err) = sandbox.run(&["get", "agent", "nobody"]);
    assert_eq!(code, 2);
    assert!(err.contains("agent/nobody does not exist"));
    let (code, _, err) = sandbox.run(&["get", "robots"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown kind \"robots\""));
}

#[test]
fn a_busy_store_is_waited_for_then_named_with_its_holder() {
    let sandbox = Sandbox::new();
    sandbox.run(&["apply", "-f", "examples/skills.yaml"]);
    let path = sandbox.home().join("local.db");
    let holder = Store::open(&path, &OpenOptions::new(Duration::from_secs(5), "pid 1: stigmer apply --watch")).unwrap();
    let output = sandbox.stigmer().env("STIGMER_LOCK_WAIT", "0.3").args(["get", "skills"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("is busy (held by pid 1: stigmer apply --watch)"), "{err}");
    assert!(err.contains("hint: another stigmer process is using the store"), "{err}");
    assert!(!err.contains("waiting for"), "a wait shorter than half a second is not announced: {err}");

    // Released while the command waits: it says once what it waits for, then goes through.
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1200));
        drop(holder);
    });
    let output =
        sandbox.stigmer().env("STIGMER_LOCK_WAIT", "10").args(["get", "skills", "-o", "name"]).output().unwrap();
    release.join().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{err}");
    let waiting = format!("waiting for {}: pid 1: stigmer apply --watch has it open (for up to 10 s", path.display());
    assert!(err.contains(&waiting), "{err}");
    assert_eq!(err.matches("waiting for").count(), 1, "{err}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("tone-of-voice"));
}

#[test]
fn a_damaged_store_is_a_clear_error() {
    let sandbox = Sandbox::new();
    fs::create_dir_all(sandbox.home()).unwrap();
    fs::write(sandbox.home().join("local.db"), b"this is not a database, just some bytes that go on").unwrap();
    let (code, _, err) = sandbox.run(&["get"]);
    assert_eq!(code, 2);
    assert!(err.contains("is damaged") && err.contains("hint: move"), "{err}");
    assert!(!err.contains("panicked"));
}

#[test]
fn the_store_directory_is_private() {
    let sandbox = Sandbox::new();
    sandbox.run(&["apply", "-f", "examples/skills.yaml"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(sandbox.home()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
    assert!(Path::new(&sandbox.home().join("local.db")).exists());
}

fn dry_run_and_json_output(sandbox: &Sandbox) {
    let (code, out, _) = sandbox.run(&["apply", "-f", "examples/skills.yaml", "--dry-run", "-o", "json"]);
    assert_eq!(code, 0);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["dryRun"], true);
    assert_eq!(report["committed"], false);
    assert_eq!(report["summary"]["created"], 2);
    assert_eq!(sandbox.run(&["get", "-o", "name"]).1, "", "a dry run writes nothing");
    let (code, out, _) = sandbox.run(&["apply", "-f", "examples/skills.yaml", "-o", "json"]);
    assert_eq!(code, 0);
    insta::assert_json_snapshot!("apply_json", serde_json::from_str::<serde_json::Value>(&out).unwrap());
}

fn invalid_manifests_write_nothing(sandbox: &Sandbox) {
    let (code, _, err) = sandbox.run(&[
        "apply",
        "-f",
        "examples/skills.yaml",
        "-f",
        "tests/manifests/invalid/agent-unknown-field-typo.yaml",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown field \"skilRefs\""));
    assert_eq!(sandbox.run(&["get", "-o", "name"]).1, "");
}

#[test]
fn a_store_from_a_newer_stigmer_is_refused_with_a_message() {
    let sandbox = Sandbox::new();
    sandbox.run(&["apply", "-f", "examples/skills.yaml"]);
    {
        let db = redb::Database::create(sandbox.home().join("local.db")).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut meta = txn.open_table(redb::TableDefinition::<&str, u64>::new("meta")).unwrap();
            meta.insert("format_version", 999).unwrap();
        }
        txn.commit().unwrap();
    }
    let (code, _, err) = sandbox.run(&["get"]);
    assert_eq!(code, 2);
    assert!(err.contains("has format version 999; this stigmer reads up to 5"), "{err}");
    assert!(err.contains("hint: upgrade stigmer"), "{err}");
}

fn two_processes_applying_at_once_both_get_through(sandbox: &Sandbox) {
    let a = sandbox.project("a", "team-a", &[("s.yaml", &skill("from-a", "A"))]);
    let b = sandbox.project("b", "team-b", &[("s.yaml", &skill("from-b", "B"))]);
    let spawn = |dir: &Path| sandbox.stigmer().args(["apply", "-f"]).arg(dir).output();
    let (first, second) = std::thread::scope(|s| {
        let first = s.spawn(|| spawn(&a));
        let second = s.spawn(|| spawn(&b));
        (first.join().unwrap().unwrap(), second.join().unwrap().unwrap())
    });
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    assert_eq!(sandbox.run(&["get", "skills", "-o", "name"]).1, "skill/from-a\nskill/from-b\n");
}

on_both_backends!(
    applying_twice_changes_nothing_the_second_time,
    export_import_export_is_byte_identical,
    an_empty_store_exports_a_stream_that_imports_as_nothing,
    diff_exits_0_without_changes_1_with_changes_and_2_on_error,
    prune_deletes_only_what_this_set_owns_and_no_longer_declares,
    prune_refuses_to_delete_what_a_remaining_resource_references,
    resources_of_another_set_are_taken_over_only_when_forced,
    references_resolve_against_the_store,
    delete_refuses_while_referenced_and_deletes_otherwise,
    history_and_rollback,
    get_and_describe_show_what_is_stored,
    dry_run_and_json_output,
    invalid_manifests_write_nothing,
    two_processes_applying_at_once_both_get_through,
);
