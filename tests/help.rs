//! Every command's `--help`, as people read it: a one-line summary, a description whose lines
//! were wrapped by clap (not broken by hand in a doc comment), an `Examples:` section and the
//! environment variables the command reads. All of it is pinned by one snapshot, so a change to
//! any help text shows up in review.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test that cannot set up fails loudly")]

use std::fmt::Write as _;

use clap::CommandFactory;

mod support;

/// The widest line clap writes when it cannot ask the terminal, as the tests run it.
const COLUMNS: usize = 100;

/// Every command path (`[]`, `["secret", "set"]`, …), parents before children.
fn command_paths() -> Vec<Vec<String>> {
    fn walk(command: &clap::Command, path: &[String], out: &mut Vec<Vec<String>>) {
        out.push(path.to_vec());
        for sub in command.get_subcommands().filter(|sub| sub.get_name() != "help") {
            let mut next = path.to_vec();
            next.push(sub.get_name().to_owned());
            walk(sub, &next, out);
        }
    }
    let mut out = Vec::new();
    walk(&stigmer::cli::Cli::command(), &[], &mut out);
    out
}

fn help(path: &[String]) -> String {
    let output = std::process::Command::new(support::stigmer_bin())
        .args(path)
        .arg("--help")
        .env("COLUMNS", COLUMNS.to_string())
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    assert!(output.status.success(), "stigmer {} --help failed", path.join(" "));
    String::from_utf8(output.stdout).unwrap()
}

/// What is wrong with one command's help, if anything.
fn problems(path: &[String], text: &str) -> Vec<String> {
    let name = format!("stigmer {}", path.join(" ")).trim_end().to_owned();
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    if lines.first().is_none_or(|summary| summary.trim().is_empty()) {
        out.push(format!("{name}: no summary"));
    }
    if lines.get(1).is_some_and(|second| !second.is_empty()) {
        out.push(format!("{name}: the summary runs over one line: {:?}", &lines[..2]));
    }
    // The description, between the summary and `Usage:`: every line but a paragraph's last was
    // wrapped by clap, so it fills most of the width; a short one is a break written by hand.
    let usage = lines.iter().position(|line| line.starts_with("Usage:")).unwrap_or(lines.len());
    let description = &lines[2.min(usage)..usage];
    for pair in description.windows(2) {
        if !pair[1].is_empty() && !pair[0].is_empty() && pair[0].chars().count() < COLUMNS - 30 {
            out.push(format!("{name}: a line break inside a paragraph: {:?} / {:?}", pair[0], pair[1]));
        }
    }
    for (section, start) in [("Examples:", "\nExamples:\n  stigmer"), ("Environment:", "\nEnvironment:\n  ")] {
        if !text.contains(start) {
            out.push(format!("{name}: no {section} section"));
        }
    }
    for line in &lines {
        if line.chars().count() > COLUMNS {
            out.push(format!("{name}: a line over {COLUMNS} columns: {line}"));
        }
    }
    out
}

#[test]
fn every_command_has_a_summary_examples_and_the_variables_it_reads() {
    let paths = command_paths();
    assert!(paths.len() > 40, "the walk found {} commands", paths.len());
    let problems: Vec<String> = paths.iter().flat_map(|path| problems(path, &help(path))).collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn help_texts_are_stable() {
    let all = command_paths().iter().fold(String::new(), |mut all, path| {
        let _ = writeln!(all, "=== stigmer {}\n{}", path.join(" "), help(path));
        all
    });
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&regex_escape(env!("CARGO_PKG_VERSION")), "[VERSION]");
    settings.bind(|| insta::assert_snapshot!("help", all));
}

/// `text` as a regex that matches it literally.
fn regex_escape(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_string() } else { format!("\\{c}") }).collect()
}

#[test]
fn the_problem_finder_sees_a_hand_broken_paragraph() {
    let broken = "Show one resource in full.\n\nIts spec, status and\nits revisions.\n\nUsage: stigmer x\n";
    let found = problems(&["x".to_owned()], broken);
    assert!(found.iter().any(|p| p.contains("a line break inside a paragraph")), "{found:?}");
    assert!(found.iter().any(|p| p.contains("no Examples: section")), "{found:?}");
    let two_lines = "A summary that\ngoes on.\n\nUsage: stigmer x\n";
    assert!(problems(&["x".to_owned()], two_lines).iter().any(|p| p.contains("runs over one line")));
}
