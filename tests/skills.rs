//! Skills kept as directories, through the real binary on both backends: applying carries the
//! directory's files into the stored skill (bundle and digest), a second apply changes nothing,
//! an edited file shows in `diff` without its content and is stored by `apply`, and `export`
//! writes skill directories that `import` restores with the same digest.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test that cannot set up fails loudly")]

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use support::Sandbox;

#[macro_use]
mod support;

const SKILL_MANIFEST: &str = "apiVersion: agentic.stigmer.ai/v1
kind: Skill
metadata:
  name: pdf-forms
spec:
  description: Fill in PDF forms.
  path: skills/pdf-forms
";

/// A project with one directory skill: text, a script and a binary file.
fn project(sandbox: &Sandbox) -> PathBuf {
    let project = sandbox.project("p", "docs", &[("skills.yaml", SKILL_MANIFEST)]);
    let skill = project.join("skills/pdf-forms");
    fs::create_dir_all(skill.join("scripts")).unwrap();
    fs::write(skill.join("SKILL.md"), "# PDF forms\n\nRun scripts/fill.py with the form.\n").unwrap();
    fs::write(skill.join("scripts/fill.py"), "print('filled')\n").unwrap();
    fs::write(skill.join("blank.pdf"), [0x25, 0x50, 0x44, 0x46, 0x00, 0xff, 0xfe]).unwrap();
    fs::write(skill.join(".DS_Store"), "hidden").unwrap();
    project
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The stored skill as `get -o json` shows it.
fn stored(sandbox: &Sandbox) -> Value {
    let (code, json, err) = sandbox.run(&["get", "skill", "pdf-forms", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&json).unwrap()
}

fn digest(sandbox: &Sandbox) -> String {
    stored(sandbox)["status"]["bundle"]["digest"].as_str().unwrap().to_owned()
}

fn applying_a_directory_skill_stores_its_files_once(sandbox: &Sandbox) {
    let project = project(sandbox);
    let (code, out, err) = sandbox.run(&["apply", "-f", arg(&project)]);
    assert_eq!(
        (code, out.as_str()),
        (0, "skill/pdf-forms created\n1 created, 0 updated, 0 deleted, 0 unchanged\n"),
        "{err}"
    );

    let skill = stored(sandbox);
    let bundle = &skill["status"]["bundle"];
    assert!(bundle["digest"].as_str().unwrap().starts_with("sha256:"), "{skill}");
    let files: Vec<(&str, u64)> = bundle["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["path"].as_str().unwrap(), f["size"].as_u64().unwrap()))
        .collect();
    assert_eq!(files, [("SKILL.md", 48), ("blank.pdf", 7), ("scripts/fill.py", 16)], "hidden files are not bundled");
    assert_eq!(bundle["size"], 71);
    assert_eq!(skill["spec"]["path"], "skills/pdf-forms");
    assert!(skill["spec"].get("bundle").is_none(), "get shows a summary in status, not the contents: {skill}");

    let commits = sandbox.commits();
    let (code, out, _) = sandbox.run(&["apply", "-f", arg(&project)]);
    assert_eq!((code, out.as_str()), (0, "skill/pdf-forms unchanged\n0 created, 0 updated, 0 deleted, 1 unchanged\n"));
    assert_eq!(sandbox.commits(), commits, "the same directory again is a no-op");
    let (code, _, _) = sandbox.run(&["diff", "-f", arg(&project)]);
    assert_eq!(code, 0);
}

fn an_edited_skill_file_shows_in_diff_without_its_content(sandbox: &Sandbox) {
    let project = project(sandbox);
    assert_eq!(sandbox.run(&["apply", "-f", arg(&project)]).0, 0);
    let before = digest(sandbox);

    let skill = project.join("skills/pdf-forms");
    fs::write(skill.join("scripts/fill.py"), "print('filled in with care')\n").unwrap();
    fs::write(skill.join("notes.txt"), "a secret recipe\n").unwrap();
    let (code, out, err) = sandbox.run(&["diff", "-f", arg(&project)]);
    assert_eq!(code, 1, "{err}");
    assert!(out.contains("--- skill/pdf-forms (generation 1)"), "{out}");
    assert!(out.contains(&format!("-    digest: {before}")), "{out}");
    assert!(out.contains("+    - notes.txt (16 bytes, sha256 "), "{out}");
    assert!(out.contains("+    - scripts/fill.py (29 bytes, sha256 "), "{out}");
    assert!(out.contains("     - SKILL.md (48 bytes, sha256 "), "an unchanged file is context: {out}");
    assert!(!out.contains("secret recipe") && !out.contains("with care"), "no file content in a diff: {out}");
    assert!(out.ends_with("0 created, 1 updated, 0 deleted, 0 unchanged\n"), "{out}");

    let (code, out, _) = sandbox.run(&["apply", "-f", arg(&project)]);
    assert_eq!((code, out.as_str()), (0, "skill/pdf-forms updated\n0 created, 1 updated, 0 deleted, 0 unchanged\n"));
    let after = stored(sandbox);
    assert_ne!(after["status"]["bundle"]["digest"], before);
    assert_eq!(after["status"]["generation"], 2);
    assert_eq!(sandbox.run(&["diff", "-f", arg(&project)]).0, 0, "what apply stored is what the directory holds");

    let (code, out, _) = sandbox.run(&["describe", "skill", "pdf-forms"]);
    assert_eq!(code, 0);
    assert!(out.contains("Bundle:      sha256:") && out.contains("(4 files, 100 bytes)"), "{out}");
    assert!(!out.contains("secret recipe"), "{out}");
}

fn export_writes_skill_directories_that_import_restores(sandbox: &Sandbox) {
    let project = project(sandbox);
    assert_eq!(sandbox.run(&["apply", "-f", arg(&project)]).0, 0);
    let original = digest(sandbox);

    let out = sandbox.dir.path().join("backup");
    fs::create_dir_all(&out).unwrap();
    let file = out.join("all.yaml");
    let (code, _, err) = sandbox.run(&["export", "--all", "-o", arg(&file)]);
    assert_eq!(code, 0, "{err}");
    assert!(err.is_empty(), "nothing is left out: {err}");
    let manifest = fs::read_to_string(&file).unwrap();
    assert!(manifest.contains("  path: all.skills/pdf-forms\n"), "{manifest}");
    assert!(!manifest.contains("bundle"), "{manifest}");
    let exported = out.join("all.skills/pdf-forms");
    assert_eq!(fs::read(exported.join("blank.pdf")).unwrap(), [0x25, 0x50, 0x44, 0x46, 0x00, 0xff, 0xfe]);
    assert_eq!(fs::read_to_string(exported.join("scripts/fill.py")).unwrap(), "print('filled')\n");

    // Exporting again replaces the directory: a file removed from the skill does not linger.
    fs::write(exported.join("stale.txt"), "from an older export").unwrap();
    assert_eq!(sandbox.run(&["export", "--all", "-o", arg(&file)]).0, 0);
    assert!(!exported.join("stale.txt").exists());
    assert_eq!(fs::read_to_string(&file).unwrap(), manifest);

    let fresh = sandbox.another();
    let (code, _, err) = fresh.run(&["import", "-f", arg(&file)]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(digest(&fresh), original, "the same files, the same digest");

    // Standard output cannot carry files: SKILL.md goes inline, the rest is named on stderr.
    let (code, stream, err) = sandbox.run(&["export", "skills"]);
    assert_eq!(code, 0);
    assert!(stream.contains("  skillMd: |\n    # PDF forms\n"), "{stream}");
    assert!(!stream.contains("path:") && !stream.contains("bundle"), "{stream}");
    assert!(
        err.contains("warning: skill/pdf-forms: SKILL.md is written inline; its other files are left out: blank.pdf, scripts/fill.py"),
        "{err}"
    );
    assert!(err.contains("hint: export with -o FILE"), "{err}");
    let inline = sandbox.another();
    let output = inline.stigmer().arg("import").write_stdin(stream).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

fn a_skill_directory_over_the_limits_is_refused_at_its_path(sandbox: &Sandbox) {
    let project = project(sandbox);
    fs::write(project.join("skills/pdf-forms/huge.bin"), vec![0u8; 1024 * 1024 + 1]).unwrap();
    let (code, out, err) = sandbox.run(&["apply", "-f", arg(&project)]);
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains("error: skill directory \"skills/pdf-forms\": \"huge.bin\" is 1048577 bytes; a skill file may be at most 1048576 bytes (1 MiB)"),
        "{err}"
    );
    assert!(err.contains("skills.yaml:7:9"), "points at the path: {err}");
    assert!(err.contains("hint: keep large data out of the skill"), "{err}");
    assert_eq!(sandbox.commits(), 0, "nothing was written");
}

on_both_backends!(
    applying_a_directory_skill_stores_its_files_once,
    an_edited_skill_file_shows_in_diff_without_its_content,
    export_writes_skill_directories_that_import_restores,
    a_skill_directory_over_the_limits_is_refused_at_its_path,
);
