//! The apply digest cache (`reconcile::digest_cache`): an apply of files that did not change,
//! to a backend that did not change, reuses the last apply's result without reading the
//! manifests — and never hides a real difference. Run as the real binary: random edits to the
//! files (some keeping size and modification time), to a skill directory, and to the store by
//! another path, each followed by `diff` (the truth, planned in full) and a cached `apply`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test that cannot set up fails loudly")]

use std::fs;
use std::path::Path;

use proptest::prelude::*;
use support::Sandbox;

#[macro_use]
mod support;

fn skill_md(name: &str, text: &str) -> String {
    format!("apiVersion: agentic.stigmer.ai/v1\nkind: Skill\nmetadata:\n  name: {name}\nspec:\n  skillMd: \"{text}\"\n")
}

fn agent(name: &str, instructions: &str) -> String {
    format!(
        "apiVersion: agentic.stigmer.ai/v1\nkind: Agent\nmetadata:\n  name: {name}\nspec:\n  instructions: \"{instructions}\"\n  skillRefs:\n    - name: calc\n    - name: bundled\n"
    )
}

const BUNDLED: &str =
    "apiVersion: agentic.stigmer.ai/v1\nkind: Skill\nmetadata:\n  name: bundled\nspec:\n  path: bundled-skill\n";

/// One thing that happens between two applies.
#[derive(Debug, Clone)]
enum Edit {
    /// Rewrites the agent's instructions with text of the same length, and puts the file's
    /// modification time back: only its content says it changed.
    SameSizeSameTime(char),
    /// Rewrites the calc skill's text (any length).
    Skill(String),
    /// Adds a file with one more skill.
    AddFile(u8),
    /// Removes the added files.
    RemoveAdded,
    /// Writes the same bytes again: nothing changed.
    Touch,
    /// Changes a file in the bundled skill's directory.
    SkillDir(String),
    /// Changes the agent in the store by another path (another file, same apply set).
    StoreByAnotherPath(String),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        proptest::char::range('a', 'e').prop_map(Edit::SameSizeSameTime),
        "[a-z]{1,12}".prop_map(Edit::Skill),
        (0u8..3).prop_map(Edit::AddFile),
        Just(Edit::RemoveAdded),
        Just(Edit::Touch),
        "[a-z]{1,12}".prop_map(Edit::SkillDir),
        "[a-z]{1,12}".prop_map(Edit::StoreByAnotherPath),
    ]
}

fn project(sandbox: &Sandbox) -> std::path::PathBuf {
    let dir = sandbox.project(
        "p",
        "demo",
        &[
            ("skills.yaml", &[skill_md("calc", "adds"), BUNDLED.to_owned()].join("---\n")),
            ("agent.yaml", &agent("bot", "aaaa")),
        ],
    );
    fs::create_dir_all(dir.join("bundled-skill")).unwrap();
    fs::write(dir.join("bundled-skill/SKILL.md"), "---\nname: bundled\ndescription: d\n---\nBody.\n").unwrap();
    dir
}

fn apply_edit(sandbox: &Sandbox, dir: &Path, edit: &Edit) {
    match edit {
        Edit::SameSizeSameTime(c) => {
            let file = dir.join("agent.yaml");
            let before = fs::metadata(&file).unwrap().modified().unwrap();
            fs::write(&file, agent("bot", &c.to_string().repeat(4))).unwrap();
            fs::File::options().write(true).open(&file).unwrap().set_modified(before).unwrap();
        }
        Edit::Skill(text) => {
            fs::write(dir.join("skills.yaml"), [skill_md("calc", text), BUNDLED.to_owned()].join("---\n")).unwrap();
        }
        Edit::AddFile(n) => {
            fs::write(dir.join(format!("added-{n}.yaml")), skill_md(&format!("added-{n}"), "x")).unwrap();
        }
        Edit::RemoveAdded => {
            for n in 0..3 {
                let _ = fs::remove_file(dir.join(format!("added-{n}.yaml")));
            }
        }
        Edit::Touch => {
            let file = dir.join("agent.yaml");
            fs::write(&file, fs::read(&file).unwrap()).unwrap();
        }
        Edit::SkillDir(text) => {
            fs::write(dir.join("bundled-skill/SKILL.md"), format!("---\nname: bundled\ndescription: d\n---\n{text}\n"))
                .unwrap();
        }
        Edit::StoreByAnotherPath(text) => {
            let other = sandbox.dir.path().join("other.yaml");
            fs::write(&other, agent("bot", text)).unwrap();
            let (code, _, err) = sandbox.run(&["apply", "-f", other.to_str().unwrap(), "--set", "demo"]);
            assert_eq!(code, 0, "{err}");
        }
    }
}

/// `(created, updated, deleted)` of an apply's JSON report.
fn changes(report: &str) -> (u64, u64, u64) {
    let report: serde_json::Value = serde_json::from_str(report).unwrap();
    let count = |key: &str| report["summary"][key].as_u64().unwrap();
    (count("created"), count("updated"), count("deleted"))
}

fn cached_applies_never_hide_a_difference(sandbox: &Sandbox, edits: &[Edit]) {
    let dir = project(sandbox);
    let dir_arg = dir.to_str().unwrap();
    let (code, _, err) = sandbox.run(&["apply", "-f", dir_arg, "--prune"]);
    assert_eq!(code, 0, "{err}");
    for edit in edits {
        apply_edit(sandbox, &dir, edit);
        // The truth: a plan made from every file, against the store as it is.
        let (differs, diff, err) = sandbox.run(&["diff", "-f", dir_arg, "--prune"]);
        assert!(differs == 0 || differs == 1, "diff failed: {err}");
        let (code, report, err) = sandbox.run(&["apply", "-f", dir_arg, "--prune", "-o", "json"]);
        assert_eq!(code, 0, "{err}");
        let (created, updated, deleted) = changes(&report);
        assert_eq!(
            differs == 1,
            created + updated + deleted > 0,
            "after {edit:?}, diff said {differs} but the apply changed {created}/{updated}/{deleted}:\n{diff}\n{report}"
        );
        // And what the apply reported is what a full plan reports now: nothing to do.
        let (_, cached, _) = sandbox.run(&["apply", "-f", dir_arg, "--prune", "-o", "json"]);
        let (code, full, err) = sandbox.run(&["apply", "-f", dir_arg, "--prune", "-o", "json", "--no-cache"]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(changes(&full), (0, 0, 0), "after {edit:?} the store does not match the files: {full}");
        assert_eq!(cached, full, "a cached no-op reports what a full one does");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn a_cached_no_op_never_hides_a_real_difference(edits in proptest::collection::vec(edit(), 1..6)) {
        cached_applies_never_hide_a_difference(&Sandbox::new(), &edits);
    }
}

#[test]
fn every_kind_of_edit_is_seen_locally_and_on_a_server() {
    let edits = [
        Edit::Touch,
        Edit::SameSizeSameTime('b'),
        Edit::Skill("subtracts".to_owned()),
        Edit::AddFile(1),
        Edit::RemoveAdded,
        Edit::SkillDir("changed".to_owned()),
        Edit::StoreByAnotherPath("elsewhere".to_owned()),
    ];
    cached_applies_never_hide_a_difference(&Sandbox::new(), &edits);
    cached_applies_never_hide_a_difference(&Sandbox::remote(), &edits);
}

#[test]
fn a_store_made_again_or_inline_secrets_are_never_skipped() {
    let sandbox = Sandbox::new();
    let dir = project(&sandbox);
    let dir_arg = dir.to_str().unwrap();
    assert_eq!(sandbox.run(&["apply", "-f", dir_arg]).0, 0);
    assert_eq!(sandbox.run(&["apply", "-f", dir_arg]).0, 0);
    let entries = || fs::read_dir(sandbox.home().join("cache/apply")).map_or(0, Iterator::count);
    assert_eq!(entries(), 1, "one entry per inputs and backend");

    // Another build of stigmer may plan differently: its applies have entries of their own.
    let other_build = sandbox.dir.path().join("stigmer-other-build");
    fs::copy(support::stigmer_bin(), &other_build).unwrap();
    let run = || {
        std::process::Command::new(&other_build)
            .args(["apply", "-f", dir_arg])
            .current_dir(support::root())
            .env("NO_COLOR", "1")
            .env("STIGMER_HOME", sandbox.home())
            .env("USER", "tester")
            .output()
    };
    // A test thread that forks while the copy's file is still open for writing holds it open
    // in its child until that child execs: executing the copy then fails with ETXTBSY for a
    // moment (seen in CI). Try again briefly.
    let mut output = run();
    for _ in 0..50 {
        match &output {
            Err(error) if error.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                std::thread::sleep(std::time::Duration::from_millis(20));
                output = run();
            }
            _ => break,
        }
    }
    let output = output.unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    fs::remove_file(&other_build).unwrap();
    assert_eq!(entries(), 2, "the other build planned in full and remembered it under its own key");

    // The store deleted and made again reaches the same version (one commit) with other
    // contents: the entry must not match it.
    fs::remove_file(sandbox.home().join("local.db")).unwrap();
    let elsewhere = sandbox.project("q", "demo", &[("skills.yaml", &skill_md("calc", "other"))]);
    assert_eq!(sandbox.run(&["apply", "-f", elsewhere.to_str().unwrap()]).0, 0);
    let (code, out, err) = sandbox.run(&["apply", "-f", dir_arg]);
    assert_eq!(code, 0, "{err}");
    assert!(out.ends_with("2 created, 1 updated, 0 deleted, 0 unchanged\n"), "{out}");

    // An inline secret lives outside the resources: an apply holding one is never skipped,
    // so a secret changed with `stigmer secret set` is put back.
    let environment = "apiVersion: agentic.stigmer.ai/v1\nkind: Environment\nmetadata:\n  name: prod\nspec:\n  data:\n    TOKEN:\n      value: s3cr3t-value\n      isSecret: true\n";
    fs::write(dir.join("env.yaml"), environment).unwrap();
    let before = entries();
    assert_eq!(sandbox.run(&["apply", "-f", dir_arg]).0, 0);
    assert_eq!(entries(), before - 1, "no entry for an apply with inline secrets");
    assert_eq!(sandbox.run(&["apply", "-f", dir_arg]).0, 0);
    assert_eq!(entries(), before - 1);
    sandbox.assert_stored_nowhere(&["s3cr3t-value"]);
}
