//! Races: two `stigmer apply` processes with conflicting sets against one store (local) or one
//! server (remote), round after round. Each round ends with exactly one of the two sets stored,
//! and a process that did not apply says why (a conflict or a busy store), never corrupts.

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test that cannot set up fails loudly")]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use support::Sandbox;

#[macro_use]
mod support;

const RESOURCES: usize = 40;
const ROUNDS: usize = 100;

/// A project whose skills all say `version`, in an apply set both projects share.
fn write_set(dir: &Path, version: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let mut text = String::new();
    for i in 0..RESOURCES {
        let _ = write!(
            text,
            "apiVersion: agentic.stigmer.ai/v1\nkind: Skill\nmetadata:\n  name: skill-{i:03}\nspec:\n  skillMd: {version}\n---\n"
        );
    }
    std::fs::write(dir.join("skills.yaml"), text).unwrap();
    std::fs::write(dir.join("stigmer.yaml"), "name: shared\n").unwrap();
}

fn conflicting_applies_never_mix_and_every_loser_says_why(sandbox: &Sandbox) {
    let (a, b) = (sandbox.dir.path().join("a"), sandbox.dir.path().join("b"));
    let versions = ["alpha", "beta"];
    let mut states = Vec::new();
    for (dir, version) in [(&a, versions[0]), (&b, versions[1])] {
        write_set(dir, version);
        states.push((0..RESOURCES).map(|i| (format!("skill-{i:03}"), version.to_owned())).collect::<BTreeMap<_, _>>());
    }
    let (mut both_applied, mut refused) = (0, 0);
    for round in 0..ROUNDS {
        let children: Vec<_> = [&a, &b]
            .iter()
            .map(|dir| {
                let mut command = sandbox.command();
                command.args(["apply", "-f", dir.to_str().unwrap()]);
                command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
                command.spawn().unwrap()
            })
            .collect();
        let mut applied = 0;
        for child in children {
            let output = child.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&output.stderr);
            match output.status.code() {
                Some(0) => applied += 1,
                Some(_) => {
                    refused += 1;
                    let said = err.contains("conflict") || err.contains("changed since") || err.contains("busy");
                    assert!(said, "round {round}: a refused apply must say why:\n{err}");
                }
                None => panic!("round {round}: apply died: {err}"),
            }
        }
        if applied == 2 {
            both_applied += 1;
        }
        let now = sandbox.stored_skills();
        assert!(now == states[0] || now == states[1], "round {round}: the store mixes the two sets: {now:?}");
    }
    println!("{ROUNDS} rounds: {both_applied} with both applies succeeding one after the other, {refused} refused");
}

on_both_backends!(conflicting_applies_never_mix_and_every_loser_says_why);
