//! Bad input, through the built binary: every command with missing or malformed arguments, and
//! every file a command reads given as something that is not a good file — binary, not UTF-8, a
//! directory, a FIFO, a symlink loop, too large, too deep, an alias bomb, unreadable, missing —
//! and skill paths that leave the project.
//!
//! Each case must end in bounded time with a non-zero exit, an `error:` line on stderr (a bare
//! command group prints its help instead) saying what the case says, no panic — and write
//! nothing. "Nothing" is checked two ways:
//! - on a home holding a store (a real apply, a secret, an execution), the whole sandbox — home,
//!   inputs, working directory — is the same after the case, byte for byte, `local.db` included
//!   (commands that only read open the store read-only, so redb does not rewrite its header);
//! - on a fresh home, a failing command creates nothing, not even the home directory.
//!
//! The clap tree is walked from the library's `Cli`, so a new command or option is covered
//! without a new line here. Every case runs; failures are collected and reported together.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test that cannot set up fails loudly")]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::CommandFactory;
use support::Sandbox;

mod support;

/// A case still running after this is killed and reported as a hang.
const KILL_AFTER: Duration = Duration::from_secs(20);
/// A case slower than this is reported (debug build, a loaded two-core CI machine).
const TOO_SLOW: Duration = Duration::from_secs(8);

/// What a command that needs arguments may print instead of an `error:` line: a bare command
/// group prints its help, which starts with what it does and shows its usage.
const USAGE: &[&str] = &["Usage: stigmer"];

/// Commands refused on any home, with what stderr must say. `{files}` is the directory of bad
/// files, `{root}` the repository.
const REFUSED: &[(&[&str], &[&str])] = &[
    // Kinds and names.
    (&["get", "nosuchkind"], &["unknown kind \"nosuchkind\"", "hint: kinds: environment"]),
    (&["get", "agent", "nosuch"], &["agent/nosuch does not exist", "hint:"]),
    (&["get", "-l", "no equals sign"], &["bad label selector \"no equals sign\"", "hint: write key=value"]),
    (&["get", "-l", "=value"], &["bad label selector \"=value\"", "hint: write key=value"]),
    (&["describe", "nosuchkind", "x"], &["unknown kind \"nosuchkind\""]),
    (&["describe", "agent", "nosuch"], &["agent/nosuch does not exist"]),
    (&["delete", "nosuchkind", "x"], &["unknown kind \"nosuchkind\""]),
    (&["delete", "agent"], &["name the resources to delete", "hint:"]),
    (&["delete", "agent", "nosuch"], &["agent/nosuch does not exist"]),
    (&["history", "nosuchkind", "x"], &["unknown kind \"nosuchkind\""]),
    (&["history", "agent", "nosuch"], &["agent/nosuch does not exist"]),
    (&["rollback", "agent", "nosuch", "--to", "1"], &["agent/nosuch does not exist"]),
    (&["rollback", "nosuchkind", "x", "--to", "1"], &["unknown kind \"nosuchkind\""]),
    (&["schema", "nosuchkind"], &["unknown kind \"nosuchkind\""]),
    (&["export"], &["say what to export", "hint: stigmer export --all"]),
    (&["export", "nosuchkind"], &["unknown kind \"nosuchkind\""]),
    (&["export", "--all", "-o", "{files}/empty-dir.yaml"], &["{files}/empty-dir.yaml is a directory"]),
    (&["export", "--all", "-o", "{files}/fifo.yaml"], &["{files}/fifo.yaml is a named pipe", "hint:"]),
    (&["export", "--all", "-o", "{files}/no/such/dir/all.yaml"], &["cannot write {files}/no/such/dir/all.yaml"]),
    // Names and values checked before anything is done.
    (&["agent", "create", "Bad Name", "--instructions", "x"], &["agent name \"Bad Name\" has the character"]),
    (&["agent", "create", "fresh", "--instructions", "x", "--skill", "nosuch"], &["references skill/nosuch"]),
    (&["agent", "create", "fresh", "--instructions", "x", "--mcp-server", "nosuch"], &["references mcpserver/nosuch"]),
    (&["agent", "execute", "nosuch", "hello"], &["agent/nosuch is not stored", "hint:"]),
    (&["agent", "execute", "nosuch", "hello", "--max-steps", "0"], &["invalid value '0' for '--max-steps"]),
    (&["apply", "-f", "{root}/examples", "--set", "Bad Set"], &["apply set name \"Bad Set\""]),
    (&["apply", "-f", "{root}/examples", "--watch", "--interval", "0s"], &["invalid value '0s' for '--interval"]),
    (&["apply", "-f", "{files}/agent.yaml", "--prune"], &["--prune", "hint: add a stigmer.yaml"]),
    (&["validate", "-f", ""], &["a value is required for '--filename"]),
    (&["apply", "-f", ""], &["a value is required for '--filename"]),
    (&["workflow", "run", "-f", ""], &["a value is required for '--filename"]),
    (&["audit", "--since", "yesterday"], &["--since: \"yesterday\" is neither a duration", "hint:"]),
    (&["audit", "--since", "2026-13-45T00:00:00Z"], &["--since: \"2026-13-45T00:00:00Z\" is neither", "hint:"]),
    (&["init", "{root}/examples"], &["stigmer.yaml already exists", "hint:"]),
    (&["init", "{files}/regular-file"], &["cannot create {files}/regular-file"]),
    // Secrets.
    (&["secret", "get", "nosuch"], &["secret/nosuch does not exist", "hint: list secrets with `stigmer secret list`"]),
    (&["secret", "get", "nosuch", "--reveal"], &["secret/nosuch does not exist", "stigmer secret list"]),
    (&["secret", "delete", "nosuch"], &["secret/nosuch does not exist", "stigmer secret list"]),
    (&["secret", "set", "bad name!"], &["invalid secret name \"bad name!\"", "hint:"]),
    (&["secret", "set", "EMPTY"], &["the value for EMPTY is empty", "hint:"]),
    (
        &["secret", "set", "X", "--from-env", "STIGMER_TEST_NO_SUCH_VARIABLE"],
        &["STIGMER_TEST_NO_SUCH_VARIABLE is not set"],
    ),
    // Contexts and servers.
    (&["--context", "nosuch", "get"], &["there is no context named \"nosuch\"", "hint:"]),
    (&["--home", "{files}/regular-file", "get"], &["{files}/regular-file", "Not a directory"]),
    (&["context", "use", "nosuch"], &["there is no context named \"nosuch\""]),
    (&["logout", "nosuch"], &["there is no context named \"nosuch\""]),
    (&["logout", "local"], &["the local context has no login to forget"]),
    (&["login", "--endpoint", "http://127.0.0.1:1", "--name", "local"], &["the context name \"local\""]),
    (&["login", "--endpoint", "http://127.0.0.1:1"], &["no token given", "hint:"]),
    (&["login", "--endpoint", "not a url", "--token-file", "{files}/token"], &["not a valid endpoint URL"]),
    (&["login", "--endpoint", "ftp://127.0.0.1:1", "--token-file", "{files}/token"], &["not a valid endpoint URL"]),
    (&["login", "--endpoint", "http://127.0.0.1:1", "--token-file", "{files}/token"], &["cannot reach the server"]),
    (&["server", "--max-request-mib", "0"], &["invalid value '0' for '--max-request-mib"]),
    (&["server", "--request-timeout-secs", "0"], &["invalid value '0' for '--request-timeout-secs"]),
    (&["server", "--listen", "127.0.0.1:0", "--data", "{files}/regular-file"], &["{files}/regular-file"]),
    (&["server", "token", "create", "--org", "Bad Org"], &["invalid org name \"Bad Org\""]),
    (&["server", "token", "create", "--org", "acme", "--expires", "0s"], &["invalid value '0s' for '--expires"]),
    (&["server", "token", "revoke", "nosuch"], &["no token has id nosuch", "hint:"]),
    (&["server", "token", "list", "--data", "{files}/regular-file"], &["{files}/regular-file"]),
    // Workflows and executions.
    (&["workflow", "run", "nosuch"], &["workflow/nosuch does not exist"]),
    (&["workflow", "run", "nosuch", "--input", "{}"], &["workflow/nosuch does not exist"]),
    (&["workflow", "run", "-f", "{files}/flow.yaml", "--input", "{bad"], &["--input is neither JSON nor YAML", "1:"]),
    (&["workflow", "run", "-f", "{files}/flow.yaml", "--input", "[1, 2"], &["--input is neither JSON nor YAML"]),
    (&["workflow", "run", "-f", "{files}/flow.yaml", "--input", "nosuch.json"], &["cannot read nosuch.json"]),
    (&["execution", "get", "nosuch"], &["execution/nosuch does not exist", "hint: list executions with"]),
    (&["execution", "logs", "nosuch"], &["execution/nosuch does not exist", "hint: list executions with"]),
    (&["execution", "cancel", "nosuch"], &["execution/nosuch does not exist"]),
    (&["execution", "resume", "nosuch"], &["execution/nosuch does not exist"]),
    (&["execution", "signal", "nosuch", "--type", "t"], &["execution/nosuch does not exist"]),
    (&["execution", "signal", "nosuch", "--type", "t", "--data", "{bad"], &["--data is not JSON"]),
];

/// Commands refused because of what the populated store holds; `{exec}` is a completed
/// execution's id.
const REFUSED_WITH_DATA: &[(&[&str], &[&str])] = &[
    (&["rollback", "agent", "support-bot", "--to", "99"], &["agent/support-bot has no generation 99", "hint:"]),
    (&["rollback", "agent", "support-bot", "--to", "0"], &["agent/support-bot has no generation 0"]),
    (&["agent", "create", "support-bot", "--instructions", "x"], &["agent/support-bot already exists", "hint:"]),
    (&["agent", "execute", "support-bot", "hello"], &["is required and no environment, --env or --secret gives it"]),
    (&["workflow", "run", "ticket-triage"], &["is required and no environment, --env or --secret gives it"]),
    (&["execution", "cancel", "{exec}"], &["is already completed"]),
    (&["execution", "resume", "{exec}"], &["is completed"]),
    (&["execution", "signal", "{exec}", "--type", "t"], &["only a running execution can receive events"]),
    (&["execution", "signal", "{exec}", "--type", "t", "--data", "[1,"], &["--data is not JSON"]),
];

/// Bad files, by name under `{files}`, and what stderr must say about each, whoever reads it.
/// `{f}` is the file's path.
const FILES: &[(&str, &[&str])] = &[
    ("random.yaml", &["{f} is a binary file"]),
    ("nul.yaml", &["{f} is a binary file", "2:1"]),
    ("latin1.yaml", &["{f} is not valid UTF-8", "1:7"]),
    ("empty-dir.yaml", &["{f}", "directory"]),
    ("fifo.yaml", &["{f} is a named pipe"]),
    ("loop.yaml", &["cannot read {f}", "symbolic links"]),
    ("loop-a.yaml", &["cannot read {f}", "symbolic links"]),
    ("huge.yaml", &["{f} is larger than"]),
    ("missing.yaml", &["cannot read {f}", "No such file"]),
    ("unreadable.yaml", &["cannot read {f}", "Permission denied"]),
    ("deep.yaml", &["nest", "{f}:1:"]),
    ("laughs.yaml", &["alias", "{f}:6:"]),
    ("empty.yaml", &[]),
    ("tree-with-bad-entries", &["{f}/pipe.yaml is a named pipe", "{f}/a.yaml", "symbolic links"]),
];

/// Commands that read manifests with `-f`, and their exit code for a bad one.
const MANIFEST_READERS: &[(&[&str], i32)] = &[
    (&["validate", "-f", "{f}"], 1),
    (&["apply", "-f", "{f}"], 1),
    (&["diff", "-f", "{f}"], 2),
    (&["delete", "-f", "{f}"], 1),
    (&["import", "-f", "{f}"], 1),
    (&["workflow", "run", "-f", "{f}"], 2),
];

/// Commands that read one file of another sort (a value, a token, a certificate), and the bad
/// files that do not apply to them (text files that are fine for them).
const OTHER_READERS: &[(&[&str], &[&str])] = &[
    (&["workflow", "run", "-f", "{files}/flow.yaml", "--input", "{f}"], &["empty.yaml", "tree-with-bad-entries"]),
    (&["secret", "set", "FROM_FILE", "--from-file", "{f}"], &["deep.yaml", "laughs.yaml", "tree-with-bad-entries"]),
    (
        &["login", "--endpoint", "http://127.0.0.1:1", "--token-file", "{f}"],
        &["deep.yaml", "laughs.yaml", "tree-with-bad-entries"],
    ),
    (
        &["login", "--endpoint", "https://127.0.0.1:1", "--ca-cert", "{f}", "--token-file", "{files}/token"],
        &["deep.yaml", "laughs.yaml", "empty.yaml", "tree-with-bad-entries"],
    ),
    (
        &["server", "--listen", "127.0.0.1:0", "--tls-cert", "{f}", "--tls-key", "{files}/key.pem"],
        &["deep.yaml", "laughs.yaml", "empty.yaml", "tree-with-bad-entries"],
    ),
];

/// What a reader says instead of the common text, for a file it reads its own way. The reader is
/// named by its flag (`-f`), or by its command and flag (`workflow -f`), which comes first.
const SAYS_INSTEAD: &[(&str, &str, &[&str])] = &[
    // `workflow run -f` runs one file; the other `-f` readers read directories.
    ("workflow -f", "empty-dir.yaml", &["{f} is a directory"]),
    ("workflow -f", "tree-with-bad-entries", &["{f} is a directory"]),
    ("-f", "empty-dir.yaml", &["no manifests found in {f}"]),
    ("-f", "empty.yaml", &["this file holds no manifests", "{f}:1:1"]),
    ("--from-file", "empty.yaml", &["the value for FROM_FILE is empty"]),
    ("--token-file", "empty.yaml", &["no token given"]),
    ("--ca-cert", "random.yaml", &["{f} holds no PEM certificate"]),
    ("--ca-cert", "nul.yaml", &["{f} holds no PEM certificate"]),
    ("--ca-cert", "latin1.yaml", &["{f} holds no PEM certificate"]),
    ("--tls-cert", "random.yaml", &["{f} holds no PEM certificate"]),
    ("--tls-cert", "nul.yaml", &["{f} holds no PEM certificate"]),
    ("--tls-cert", "latin1.yaml", &["{f} holds no PEM certificate"]),
];

/// Skill manifests whose `path` leaves the project or whose directory cannot be bundled, by file
/// under `{project}`, and what stderr must say.
const SKILLS: &[(&str, &str, &[&str])] = &[
    ("up.yaml", "../outside", &["skill path \"../outside\" leads outside the project", "{m}:7:9", "hint:"]),
    ("absolute.yaml", "{outside}", &["is absolute", "{m}:7:9", "hint:"]),
    ("link.yaml", "skills/link", &["skill path \"skills/link\" leads outside the project", "{m}:7:9"]),
    ("md-link.yaml", "skills/md-link", &["symlink \"SKILL.md\" leads outside the skill directory", "{m}:7:9"]),
    ("fifo.yaml", "skills/with-fifo", &["\"pipe\" is not a regular file", "{m}:7:9"]),
    ("big.yaml", "skills/big", &["\"big.bin\" is 2097152 bytes; a skill file may be at most", "{m}:7:9"]),
    ("looped.yaml", "skills/looped", &["symlink \"again\" loops back", "{m}:7:9"]),
    ("missing.yaml", "skills/nosuch", &["skill path \"skills/nosuch\" does not exist", "{m}:7:9"]),
];

/// Commands that read skill manifests.
const SKILL_READERS: &[&[&str]] =
    &[&["validate", "-f", "{m}"], &["apply", "-f", "{m}"], &["diff", "-f", "{m}"], &["import", "-f", "{m}"]];

// --- The cases ------------------------------------------------------------------------------

#[test]
fn every_command_refuses_missing_arguments_unknown_flags_and_malformed_values() {
    let bench = Bench::populated();
    let mut failures = Vec::new();
    let mut typed = Vec::new();
    let commands = commands();
    for (path, command) in &commands {
        let mut args = path.clone();
        args.push("--no-such-flag".to_owned());
        bench.refused(&args, b"", Some(2), &["unexpected argument '--no-such-flag'"], &mut failures);

        let needs_something = command.is_subcommand_required_set()
            || command.get_arguments().any(|a| a.is_required_set() && !is_global_or_builtin(a));
        if needs_something {
            bench.refused(path, b"", Some(2), USAGE, &mut failures);
        }

        for arg in command.get_arguments().filter(|a| takes_typed_value(a) && !is_global_or_builtin(a)) {
            let mut args = path.clone();
            if let Some(long) = arg.get_long() {
                args.extend([format!("--{long}"), "bogus-value".to_owned()]);
            } else {
                // A positional: the ones before it get any word, it gets the bad one.
                let earlier = command.get_positionals().take_while(|p| p.get_id() != arg.get_id()).count();
                args.extend(std::iter::repeat_n("x".to_owned(), earlier));
                args.push("bogus-value".to_owned());
            }
            bench.refused(&args, b"", Some(2), &["invalid value 'bogus-value'"], &mut failures);
            typed.push(args.join(" "));
        }
    }
    for global in ["--color", "--home", "--context"] {
        bench.refused(&[global], b"", Some(2), &["a value is required"], &mut failures);
    }
    bench.refused(&["--color", "bogus-value", "get"], b"", Some(2), &["invalid value 'bogus-value'"], &mut failures);
    // The walk reaches the leaves and their typed options, so it cannot pass by finding nothing.
    assert!(commands.iter().any(|(path, _)| path.join(" ") == "server token create"), "the walk missed commands");
    for option in ["get --output", "agent execute --max-steps", "apply --interval", "completion bogus-value"] {
        assert!(typed.iter().any(|args| args.starts_with(option)), "the walk missed `{option}`: {typed:?}");
    }
    report(&failures);
}

#[test]
fn commands_refuse_bad_values_clearly_and_write_nothing() {
    let bench = Bench::populated();
    let mut failures = Vec::new();
    for (args, says) in REFUSED.iter().chain(REFUSED_WITH_DATA) {
        bench.refused(args, b"", None, says, &mut failures);
    }
    report(&failures);
}

#[test]
fn a_failing_command_creates_nothing_in_a_fresh_home() {
    let bench = Bench::fresh();
    let mut failures = Vec::new();
    for (args, _) in REFUSED {
        // What they say can differ on an empty store; that they fail and create nothing cannot.
        bench.refused(args, b"", None, &[], &mut failures);
    }
    for (path, command) in commands() {
        if command.get_arguments().any(|a| a.is_required_set() && !is_global_or_builtin(a)) {
            bench.refused(&path, b"", Some(2), USAGE, &mut failures);
        }
    }
    // Commands that only read do not create the store either.
    for args in
        [&["get"][..], &["get", "agents", "-o", "json"], &["audit"], &["execution", "list"], &["secret", "list"]]
    {
        let outcome = bench.run(args, b"");
        if outcome.code != Some(0) {
            failures.push(format!("`{}` failed on a fresh home: {}", args.join(" "), outcome.stderr));
        }
        if bench.home().exists() {
            failures.push(format!("`{}` created {}", args.join(" "), bench.home().display()));
            let _ = fs::remove_dir_all(bench.home());
        }
    }
    report(&failures);
}

#[test]
fn manifest_readers_refuse_bad_files() {
    let bench = Bench::populated();
    let mut failures = Vec::new();
    for (name, says) in FILES {
        let Some(file) = bench.bad_file(name) else { continue };
        for (template, code) in MANIFEST_READERS {
            if *name == "empty.yaml" && template[0] == "import" {
                continue; // what export writes for an empty store: tests/apply.rs imports it as nothing
            }
            let args = with_file(template, &file);
            let says = says_for(template, name, says, &file);
            let says: Vec<&str> = says.iter().map(String::as_str).collect();
            bench.refused(&args, b"", Some(*code), &says, &mut failures);
        }
    }
    // The same content on standard input.
    let stdin_cases: &[(&str, &[u8], &[&str])] = &[
        ("random bytes", &bench.random, &["<stdin> is a binary file"]),
        ("NUL bytes", b"kind: Agent\n\0", &["<stdin> is a binary file", "<stdin>:2:1"]),
        ("Latin-1", b"kind: \xe9t\xe9\n", &["<stdin> is not valid UTF-8", "<stdin>:1:7"]),
        ("40 MiB", &vec![b'#'; 40 * 1024 * 1024], &["<stdin> is larger than 32 MiB"]),
        ("an alias bomb", &laughs().into_bytes(), &["alias", "<stdin>:"]),
    ];
    for (what, stdin, says) in stdin_cases {
        let mut found = Vec::new();
        bench.refused(&["apply", "-f", "-"], stdin, Some(1), says, &mut found);
        failures.extend(found.into_iter().map(|f| format!("[stdin: {what}] {f}")));
    }
    report(&failures);
}

#[test]
fn other_file_readers_refuse_bad_files() {
    let bench = Bench::populated();
    let mut failures = Vec::new();
    for (template, not_for) in OTHER_READERS {
        for (name, says) in FILES.iter().filter(|(name, _)| !not_for.contains(name)) {
            let Some(file) = bench.bad_file(name) else { continue };
            let mut args = with_file(template, &file);
            if args[0] == "server" {
                let data = bench.work.join("server-data").display().to_string();
                args.extend(["--data".to_owned(), data]);
            }
            let says = says_for(template, name, says, &file);
            let says: Vec<&str> = says.iter().map(String::as_str).collect();
            bench.refused(&args, b"", Some(2), &says, &mut failures);
        }
    }
    report(&failures);
}

#[test]
fn skill_paths_outside_the_project_are_refused_by_every_reader() {
    let bench = Bench::populated();
    let project = bench.skill_project();
    let mut failures = Vec::new();
    for (file, _, says) in SKILLS {
        let manifest = project.join(file).display().to_string();
        let says: Vec<String> = says.iter().map(|s| s.replace("{m}", &manifest)).collect();
        let says: Vec<&str> = says.iter().map(String::as_str).collect();
        for template in SKILL_READERS {
            let args: Vec<String> = template.iter().map(|a| a.replace("{m}", &manifest)).collect();
            let code = if args[0] == "diff" { 2 } else { 1 };
            bench.refused(&args, b"", Some(code), &says, &mut failures);
        }
    }
    // The whole project at once reports every one of them.
    let all: Vec<&str> = SKILLS.iter().map(|(file, _, _)| *file).collect();
    let dir = project.display().to_string();
    bench.refused(&["apply", "-f", &dir], b"", Some(1), &all, &mut failures);
    report(&failures);
}

// --- The bench: a sandbox, its bad files, and the checks -------------------------------------

/// A sandbox with a working directory, a directory of bad files and (when populated) a store.
struct Bench {
    sandbox: Sandbox,
    work: PathBuf,
    files: PathBuf,
    /// Bytes for `random.yaml`.
    random: Vec<u8>,
    /// A completed execution's id.
    execution: String,
    /// Whether a file with mode 000 is unreadable here (it is not for root).
    permissions_hold: bool,
}

impl Bench {
    fn fresh() -> Self {
        let sandbox = Sandbox::new();
        let work = sandbox.dir.path().join("work");
        let files = sandbox.dir.path().join("files");
        fs::create_dir_all(&work).unwrap();
        let random = pseudo_random_bytes(4096);
        let permissions_hold = make_bad_files(&files, &random);
        Self { sandbox, work, files, random, execution: String::new(), permissions_hold }
    }

    /// With a store made the way people make one: the examples applied, a secret set, a
    /// workflow run.
    fn populated() -> Self {
        let mut bench = Self::fresh();
        let root = support::root().join("examples").display().to_string();
        let (code, _, err) = bench.sandbox.run(&["apply", "-f", &root]);
        assert_eq!(code, 0, "{err}");
        let output = bench.sandbox.stigmer().args(["secret", "set", "API_KEY"]).write_stdin("s3cret").output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let flow = bench.files.join("flow.yaml").display().to_string();
        let (code, out, err) = bench.sandbox.run(&["workflow", "run", "-f", &flow, "-o", "json"]);
        assert_eq!(code, 0, "{err}");
        let run: serde_json::Value = serde_json::from_str(&out).unwrap();
        run["id"].as_str().unwrap().clone_into(&mut bench.execution);
        bench
    }

    fn home(&self) -> PathBuf {
        self.sandbox.home()
    }

    /// The bad file's path, or `None` (with the reason printed) when it cannot be made bad here.
    fn bad_file(&self, name: &str) -> Option<String> {
        if name == "unreadable.yaml" && !self.permissions_hold {
            eprintln!("skipping unreadable.yaml: this user reads files with mode 000 (root)");
            return None;
        }
        Some(self.files.join(name).display().to_string())
    }

    /// A project whose skills leave it or cannot be bundled (see [`SKILLS`]).
    fn skill_project(&self) -> PathBuf {
        let dir = self.sandbox.dir.path();
        let project = dir.join("project");
        let outside = dir.join("outside");
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join("SKILL.md"), "# Outside\n").unwrap();
        fs::create_dir_all(project.join("skills")).unwrap();
        fs::write(project.join("stigmer.yaml"), "name: skills\n").unwrap();
        for (file, path, _) in SKILLS {
            let path = path.replace("{outside}", &outside.display().to_string());
            let name = file.trim_end_matches(".yaml");
            let manifest = format!(
                "apiVersion: agentic.stigmer.ai/v1\nkind: Skill\nmetadata:\n  name: {name}\nspec:\n  description: A \
                 skill.\n  path: {path}\n"
            );
            fs::write(project.join(file), manifest).unwrap();
        }
        let skills = project.join("skills");
        symlink(&outside, &skills.join("link"));
        fs::create_dir_all(skills.join("md-link")).unwrap();
        symlink(&outside.join("SKILL.md"), &skills.join("md-link/SKILL.md"));
        for skill in ["with-fifo", "big", "looped"] {
            fs::create_dir_all(skills.join(skill)).unwrap();
            fs::write(skills.join(skill).join("SKILL.md"), "# A skill\n").unwrap();
        }
        mkfifo(&skills.join("with-fifo/pipe"));
        fs::File::create(skills.join("big/big.bin")).unwrap().set_len(2 * 1024 * 1024).unwrap();
        symlink(&skills.join("looped"), &skills.join("looped/again"));
        project
    }

    /// Runs `stigmer ARGS` in the working directory, killed after [`KILL_AFTER`].
    fn run<S: AsRef<str>>(&self, args: &[S], stdin: &[u8]) -> Outcome {
        let args: Vec<String> = args.iter().map(|a| self.expand(a.as_ref())).collect();
        let mut command = self.sandbox.command();
        command.current_dir(&self.work).env_remove("STIGMER_TEST_NO_SUCH_VARIABLE");
        let started = Instant::now();
        let output = assert_cmd::Command::from_std(command)
            .args(&args)
            .write_stdin(stdin.to_vec())
            .timeout(KILL_AFTER)
            .output()
            .unwrap();
        Outcome {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            took: started.elapsed(),
        }
    }

    fn expand(&self, text: &str) -> String {
        text.replace("{files}", &self.files.display().to_string())
            .replace("{root}", &support::root().display().to_string())
            .replace("{exec}", &self.execution)
    }

    /// Runs a case that must be refused, and adds what is wrong with how it was to `failures`.
    fn refused<S: AsRef<str>>(
        &self,
        args: &[S],
        stdin: &[u8],
        code: Option<i32>,
        says: &[&str],
        failures: &mut Vec<String>,
    ) {
        let before = tree(self.sandbox.dir.path());
        let outcome = self.run(args, stdin);
        let after = tree(self.sandbox.dir.path());
        let mut wrong = Vec::new();
        if outcome.took >= KILL_AFTER {
            wrong.push(format!("did not finish in {KILL_AFTER:?}; killed"));
        } else if outcome.took >= TOO_SLOW {
            wrong.push(format!("took {:?}", outcome.took));
        }
        match (outcome.code, code) {
            (Some(0), _) => wrong.push("succeeded".to_owned()),
            (Some(found), Some(expected)) if found != expected => {
                wrong.push(format!("exit code {found}, not {expected}"));
            }
            (None, _) if outcome.took < KILL_AFTER => wrong.push("killed by a signal".to_owned()),
            _ => {}
        }
        let everything = format!("{}{}", outcome.stdout, outcome.stderr);
        if everything.contains("panicked") || everything.contains("RUST_BACKTRACE") {
            wrong.push("panicked".to_owned());
        }
        let clear = outcome.stderr.contains("error:") || says == USAGE;
        if !clear {
            wrong.push("no `error:` line".to_owned());
        }
        for text in says {
            let text = self.expand(text);
            if !outcome.stderr.contains(&text) {
                wrong.push(format!("stderr lacks {text:?}"));
            }
        }
        let changes = changes(&before, &after);
        if !changes.is_empty() {
            wrong.push(format!("wrote: {}", changes.join(", ")));
        }
        if !wrong.is_empty() {
            let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
            let mut text = format!("`stigmer {}`: {}", args.join(" "), wrong.join("; "));
            let _ = write!(text, "\n    stderr: {}", outcome.stderr.trim().replace('\n', "\n            "));
            failures.push(text);
        }
    }
}

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

fn report(failures: &[String]) {
    assert!(failures.is_empty(), "{} bad-input cases failed:\n{}", failures.len(), failures.join("\n"));
}

// --- The clap tree -------------------------------------------------------------------------

/// Every command and subcommand, with the words that name it (`["server", "token", "create"]`).
fn commands() -> Vec<(Vec<String>, clap::Command)> {
    fn walk(path: &[String], command: &clap::Command, out: &mut Vec<(Vec<String>, clap::Command)>) {
        for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
            let mut words = path.to_vec();
            words.push(sub.get_name().to_owned());
            out.push((words.clone(), sub.clone()));
            walk(&words, sub, out);
        }
    }
    let root = stigmer::cli::Cli::command();
    let mut out = vec![(Vec::new(), root.clone())];
    walk(&[], &root, &mut out);
    out
}

fn is_global_or_builtin(arg: &clap::Arg) -> bool {
    arg.is_global_set() || matches!(arg.get_id().as_str(), "help" | "version")
}

/// Whether the argument takes a value that "bogus-value" is not: a number, a duration, a choice,
/// a KEY=VALUE pair — anything but free text or a path.
fn takes_typed_value(arg: &clap::Arg) -> bool {
    use std::any::TypeId;
    let takes_value = arg.get_num_args().is_none_or(|n| n.takes_values())
        && !matches!(
            arg.get_action(),
            clap::ArgAction::SetTrue | clap::ArgAction::SetFalse | clap::ArgAction::Count | clap::ArgAction::Help
        );
    let parser = arg.get_value_parser();
    let free_text = [TypeId::of::<String>(), TypeId::of::<PathBuf>(), TypeId::of::<std::ffi::OsString>()]
        .iter()
        .any(|id| parser.type_id() == *id);
    takes_value && (!free_text || !arg.get_possible_values().is_empty())
}

// --- Files -----------------------------------------------------------------------------------

fn with_file(template: &[&str], file: &str) -> Vec<String> {
    template.iter().map(|a| a.replace("{f}", file)).collect()
}

/// What stderr must say when `template` reads the bad file `name`: the reader's own text when
/// it has one, else the common text; with `{f}` filled in.
fn says_for(template: &[&str], name: &str, common: &[&str], file: &str) -> Vec<String> {
    let flag = template.windows(2).find(|w| w[1] == "{f}").map_or("", |w| w[0]);
    let command_and_flag = format!("{} {flag}", template[0]);
    let own = |reader: &str| SAYS_INSTEAD.iter().find(|(r, n, _)| *r == reader && *n == name).map(|(_, _, says)| *says);
    let says = own(&command_and_flag).or_else(|| own(flag)).unwrap_or(common);
    says.iter().map(|s| s.replace("{f}", file)).collect()
}

/// Makes every file of [`FILES`] under `dir`, and `flow.yaml`, `agent.yaml`, `token`,
/// `key.pem` and `regular-file`. Returns whether mode 000 makes a file unreadable here.
fn make_bad_files(dir: &Path, random: &[u8]) -> bool {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join("random.yaml"), random).unwrap();
    fs::write(dir.join("nul.yaml"), b"kind: Agent\n\0\0").unwrap();
    fs::write(dir.join("latin1.yaml"), b"kind: \xe9t\xe9\n").unwrap();
    fs::create_dir(dir.join("empty-dir.yaml")).unwrap();
    mkfifo(&dir.join("fifo.yaml"));
    symlink(Path::new("loop.yaml"), &dir.join("loop.yaml"));
    symlink(Path::new("loop-b.yaml"), &dir.join("loop-a.yaml"));
    symlink(Path::new("loop-a.yaml"), &dir.join("loop-b.yaml"));
    // Sparse: the size is refused before a byte is read.
    fs::File::create(dir.join("huge.yaml")).unwrap().set_len(100 * 1024 * 1024).unwrap();
    fs::write(dir.join("deep.yaml"), format!("a: {}{}\n", "[".repeat(10_000), "]".repeat(10_000))).unwrap();
    fs::write(dir.join("laughs.yaml"), laughs()).unwrap();
    fs::write(dir.join("empty.yaml"), "").unwrap();
    let tree = dir.join("tree-with-bad-entries");
    fs::create_dir(&tree).unwrap();
    mkfifo(&tree.join("pipe.yaml"));
    symlink(Path::new("b.yaml"), &tree.join("a.yaml"));
    symlink(Path::new("a.yaml"), &tree.join("b.yaml"));
    symlink(Path::new("."), &tree.join("again"));
    fs::write(
        dir.join("flow.yaml"),
        "document: {dsl: '1.0.0', namespace: test, name: hello, version: '0.1.0'}\ndo:\n  - greet:\n      set:\n        \
         message: hello\n",
    )
    .unwrap();
    fs::write(
        dir.join("agent.yaml"),
        "apiVersion: agentic.stigmer.ai/v1\nkind: Agent\nmetadata:\n  name: lone\nspec:\n  instructions: Help.\n",
    )
    .unwrap();
    fs::write(dir.join("token"), "stk_0000000000000000000000000000000000000000000000000000000000000000\n").unwrap();
    fs::write(dir.join("key.pem"), "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").unwrap();
    fs::write(dir.join("regular-file"), "not a directory\n").unwrap();
    let unreadable = dir.join("unreadable.yaml");
    fs::write(&unreadable, "kind: Agent\n").unwrap();
    set_mode(&unreadable, 0o000);
    fs::read(&unreadable).is_err()
}

/// A billion-laughs document: nine levels of nine aliases each.
fn laughs() -> String {
    let mut text = String::from("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    let mut previous = 'a';
    for name in 'b'..='j' {
        let aliases = vec![format!("*{previous}"); 9].join(", ");
        let _ = writeln!(text, "{name}: &{name} [{aliases}]");
        previous = name;
    }
    text + "kind: Agent\n"
}

/// Deterministic bytes that are not UTF-8 text (with NUL bytes among them).
fn pseudo_random_bytes(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

fn symlink(target: &Path, link: &Path) {
    std::os::unix::fs::symlink(target, link).unwrap();
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

// --- Snapshots -------------------------------------------------------------------------------

/// Files larger than this are compared by size and modification time, not content.
const COMPARED_UP_TO: u64 = 1024 * 1024;

/// What is at a path, as far as "nothing was written" goes.
#[derive(Debug, PartialEq)]
enum Entry {
    Directory,
    Link(PathBuf),
    /// A pipe, a socket, a device: never opened.
    Special,
    File(Vec<u8>),
    Large(u64, Option<std::time::SystemTime>),
    Unreadable(std::io::ErrorKind),
}

/// Everything under `root`, by relative path. Symlinks are not followed and special files not
/// opened.
fn tree(root: &Path) -> BTreeMap<String, Entry> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Entry>) {
        let Ok(entries) = fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = path.strip_prefix(root).unwrap().display().to_string();
            let Ok(meta) = fs::symlink_metadata(&path) else { continue };
            let kind = meta.file_type();
            let what = if kind.is_symlink() {
                Entry::Link(fs::read_link(&path).unwrap_or_default())
            } else if kind.is_dir() {
                walk(root, &path, out);
                Entry::Directory
            } else if !kind.is_file() {
                Entry::Special
            } else if meta.len() > COMPARED_UP_TO {
                Entry::Large(meta.len(), meta.modified().ok())
            } else {
                fs::read(&path).map_or_else(|e| Entry::Unreadable(e.kind()), Entry::File)
            };
            out.insert(name, what);
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// What differs between two snapshots, one entry per path.
fn changes(before: &BTreeMap<String, Entry>, after: &BTreeMap<String, Entry>) -> Vec<String> {
    let mut changes = Vec::new();
    for (path, what) in after {
        match before.get(path) {
            None => changes.push(format!("created {path}")),
            Some(was) if was != what => changes.push(format!("changed {path}")),
            Some(_) => {}
        }
    }
    changes.extend(before.keys().filter(|p| !after.contains_key(*p)).map(|p| format!("removed {p}")));
    changes
}
