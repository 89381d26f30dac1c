//! Crash safety of `stigmer apply`: an apply (or the server applying it) killed with SIGKILL at
//! a random moment leaves the store readable and holding exactly the old desired state or the new
//! one, never a mix.

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test that cannot set up fails loudly")]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use support::{Sandbox, Server};

#[macro_use]
mod support;

/// How many resources each set holds: enough that an apply takes a while to plan and write.
const RESOURCES: usize = 300;
/// How many times an apply is killed; a server restarts, so it is killed fewer times.
const KILLS: usize = 100;
const SERVER_KILLS: usize = 20;

/// The skills of a set: the second (`extra`) set drops every tenth of the first and adds 20, so
/// a mix of the two could not pass for either.
fn names(extra: bool) -> Vec<String> {
    let kept = (0..RESOURCES).filter(|i| extra || i % 10 != 0).map(|i| format!("skill-{i:04}"));
    kept.chain((0..if extra { 20 } else { 0 }).map(|i| format!("extra-{i:02}"))).collect()
}

/// Writes a project whose skills' instructions all say `version`.
fn write_set(dir: &Path, version: &str, extra: bool) {
    use std::fmt::Write as _;
    std::fs::create_dir_all(dir).unwrap();
    let mut text = String::new();
    for name in names(extra) {
        let _ = write!(
            text,
            "apiVersion: agentic.stigmer.ai/v1\nkind: Skill\nmetadata:\n  name: {name}\nspec:\n  skillMd: {version}\n---\n"
        );
    }
    std::fs::write(dir.join("skills.yaml"), text).unwrap();
    std::fs::write(dir.join("stigmer.yaml"), "name: crash\n").unwrap();
}

/// The state a set describes.
fn expected(version: &str, extra: bool) -> BTreeMap<String, String> {
    names(extra).into_iter().map(|name| (name, version.to_owned())).collect()
}

/// A small deterministic generator (xorshift), seeded from the clock and printed, so a failing
/// run can be replayed.
struct Random(u64);

impl Random {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound.max(1)
    }
}

/// Applies the old set, then swaps the store between the two sets `rounds` times, each apply
/// interrupted by `kill` (given the running apply) after a random delay of up to 1.5 times a
/// full apply. After each round the store must hold exactly one of the two states. Returns how
/// many kills landed before the commit and how many after it.
fn interrupted_applies(
    sandbox: &mut Sandbox,
    rounds: usize,
    mut kill: impl FnMut(&mut Sandbox, std::process::Child),
) -> (usize, usize) {
    let old_dir = sandbox.dir.path().join("old");
    let new_dir = sandbox.dir.path().join("new");
    write_set(&old_dir, "old", false);
    write_set(&new_dir, "new", true);
    let (old, new) = (expected("old", false), expected("new", true));
    let apply = |sandbox: &Sandbox, dir: &Path| sandbox.run(&["apply", "-f", dir.to_str().unwrap(), "--prune"]);
    assert_eq!(apply(sandbox, &old_dir).0, 0);
    assert_eq!(sandbox.stored_skills(), old);
    // How long a whole apply takes, so kills land before, during and after its commit.
    let started = Instant::now();
    assert_eq!(apply(sandbox, &new_dir).0, 0);
    let full = started.elapsed();
    assert_eq!(sandbox.stored_skills(), new);

    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let seed = u64::from(nanos) | 1;
    println!("seed {seed}, a full apply takes {full:?}");
    let mut random = Random(seed);
    let mut state_is_new = true;
    let (mut before, mut after) = (0, 0);
    for round in 0..rounds {
        let (dir, target, was) = if state_is_new { (&old_dir, &old, &new) } else { (&new_dir, &new, &old) };
        let child = sandbox.spawn(&["apply", "-f", dir.to_str().unwrap(), "--prune"]);
        let delay = random.below(u64::try_from(full.as_micros()).unwrap_or(u64::MAX) * 15 / 10);
        std::thread::sleep(Duration::from_micros(delay));
        kill(sandbox, child);
        let now = sandbox.stored_skills();
        if &now == target {
            after += 1;
            state_is_new = !state_is_new;
        } else {
            assert_eq!(
                &now, was,
                "round {round} (seed {seed}, killed after {delay} µs): neither the old nor the new state"
            );
            before += 1;
        }
    }
    (before, after)
}

#[test]
fn an_apply_killed_at_any_moment_leaves_the_old_or_the_new_state() {
    let (before, after) = interrupted_applies(&mut Sandbox::new(), KILLS, |_, mut apply| {
        let _ = apply.kill();
        apply.wait().unwrap();
    });
    println!("{KILLS} kills: {before} before the commit, {after} after it");
}

#[test]
fn a_server_killed_during_an_apply_keeps_the_old_or_the_new_state() {
    let (before, after) = interrupted_applies(&mut Sandbox::remote(), SERVER_KILLS, |sandbox, mut apply| {
        // Dropping the server kills it with SIGKILL, whatever it is doing; it restarts on its data.
        let (server, token) = sandbox.remote.take().unwrap();
        let data = server.data.clone();
        drop(server);
        apply.wait().unwrap();
        sandbox.remote = Some((Server::start(&data), token));
    });
    println!("{SERVER_KILLS} server kills: {before} before the commit, {after} after it");
}
