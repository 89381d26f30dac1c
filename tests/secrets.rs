//! Secrets as people use them — `stigmer secret set|list|get|delete|rotate-key` on the real
//! binary — on a local store and on a real server alike. Known values are planted and then
//! searched for in every byte stigmer wrote: the store files, the server's data directory and
//! log, `export` output and every command's output. The only place a value may appear is the
//! output of `secret get --reveal`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test that cannot set up fails loudly")]

use support::{Sandbox, assert_nowhere_in};

#[macro_use]
mod support;

fn secrets_are_encrypted_at_rest_listed_without_values_and_revealed_on_request(sandbox: &Sandbox) {
    let planted = ["planted-stdin-7f3a9c", "planted-file-2b8d41", "planted-env-9e1c55"];
    let mut outputs = String::new();
    let mut record = |(code, out, err): (i32, String, String)| {
        outputs.push_str(&out);
        outputs.push_str(&err);
        (code, out, err)
    };

    let output = sandbox
        .stigmer()
        .args(["secret", "set", "OPENAI_API_KEY"])
        .write_stdin(format!("{}\n", planted[0]))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "secret/OPENAI_API_KEY created\n");
    let file = sandbox.dir.path().join("value.txt");
    std::fs::write(&file, format!("{}\n", planted[1])).unwrap();
    let (code, _, err) = record(sandbox.run(&["secret", "set", "db-password", "--from-file", file.to_str().unwrap()]));
    assert_eq!(code, 0, "{err}");
    std::fs::remove_file(&file).unwrap();
    let output = sandbox
        .stigmer()
        .env("PLANTED", planted[2])
        .args(["secret", "set", "github.token", "--from-env", "PLANTED"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let (_, out, _) = record(sandbox.run(&["secret", "set", "db-password", "--from-env", "NO_SUCH_VARIABLE_HERE"]));
    assert_eq!(out, "", "a missing variable sets nothing");

    let (code, list, _) = record(sandbox.run(&["secret", "list"]));
    assert_eq!(code, 0);
    for name in ["OPENAI_API_KEY", "db-password", "github.token"] {
        assert!(list.contains(name), "{list}");
    }
    let (_, json, _) = record(sandbox.run(&["secret", "list", "-o", "json"]));
    let listed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 3);
    let (_, shown, _) = record(sandbox.run(&["secret", "get", "db-password"]));
    assert!(shown.contains("hidden; add --reveal"), "{shown}");

    // Only --reveal prints a value; its output is not recorded with the rest.
    for (name, value) in [("OPENAI_API_KEY", planted[0]), ("db-password", planted[1]), ("github.token", planted[2])] {
        let (code, out, err) = sandbox.run(&["secret", "get", name, "--reveal"]);
        assert_eq!((code, out.as_str()), (0, format!("{value}\n").as_str()), "{err}");
    }

    // Rotation re-encrypts everything; every value still reads back.
    let (code, out, err) = record(sandbox.run(&["secret", "rotate-key"]));
    assert_eq!((code, out.as_str()), (0, "re-encrypted 3 secrets under a new key\n"), "{err}");
    assert_eq!(sandbox.run(&["secret", "get", "github.token", "--reveal"]).1, format!("{}\n", planted[2]));

    let (code, out, _) = record(sandbox.run(&["secret", "delete", "github.token"]));
    assert_eq!((code, out.as_str()), (0, "secret/github.token deleted\n"));
    let (code, _, err) = record(sandbox.run(&["secret", "get", "github.token", "--reveal"]));
    assert_eq!(code, 2);
    assert!(err.contains("secret/github.token does not exist"), "{err}");
    let (code, _, err) = record(sandbox.run(&["secret", "set", "bad name"]));
    assert_eq!(code, 2);
    assert!(err.contains("invalid secret name \"bad name\""), "{err}");

    assert_eq!(record(sandbox.run(&["apply", "-f", "examples/"])).0, 0);
    let (_, exported, _) = record(sandbox.run(&["export", "--all"]));
    let (_, audit, _) = record(sandbox.run(&["audit"]));
    assert!(audit.contains("secret/db-password") && audit.contains("secret-key"), "{audit}");
    assert!(!exported.is_empty());

    for value in planted {
        assert!(!outputs.contains(value), "{value} printed by a command other than --reveal");
    }
    sandbox.assert_stored_nowhere(&planted);
    if let Some((server, token)) = &sandbox.remote {
        assert_nowhere_in(&server.log, &[&token[4..]]);
    }
}

fn an_inline_secret_is_stored_encrypted_and_only_its_reference_is_kept(sandbox: &Sandbox) {
    let environment = |value: &str| {
        format!(
            "apiVersion: agentic.stigmer.ai/v1\nkind: Environment\nmetadata:\n  name: prod\nspec:\n  data:\n    REGION:\n      value: eu\n    API_KEY:\n      value: {value}\n      isSecret: true\n      description: the provider key\n"
        )
    };
    let project = sandbox.project("p", "inline", &[("env.yaml", &environment("inline-planted-4d2e"))]);
    let project = project.to_str().unwrap();
    let (code, out, err) = sandbox.run(&["apply", "-f", project]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "secret/prod.API_KEY created (from an inline isSecret value)\nenvironment/prod created\n1 created, 0 updated, 0 deleted, 0 unchanged\n"
    );
    assert!(err.contains("warning:") && err.contains("env.yaml:10:"), "the plaintext in the file is pointed at: {err}");
    let (_, yaml, _) = sandbox.run(&["get", "environment", "prod", "-o", "yaml"]);
    assert!(yaml.contains("secretRef: prod.API_KEY") && yaml.contains("description: the provider key"), "{yaml}");
    // Regression: moving the inline secret out took the plain value beside it too (stored as
    // `REGION: {}`), and every later apply reported the damaged resource unchanged.
    assert!(yaml.contains("REGION:\n      value: eu\n"), "the plain value is kept: {yaml}");
    assert_eq!(sandbox.run(&["secret", "get", "prod.API_KEY", "--reveal"]).1, "inline-planted-4d2e\n");

    let commits = sandbox.commits();
    let (code, out, _) = sandbox.run(&["apply", "-f", project]);
    assert_eq!((code, out.as_str()), (0, "environment/prod unchanged\n0 created, 0 updated, 0 deleted, 1 unchanged\n"));
    assert_eq!(sandbox.commits(), commits, "the same secret again writes nothing");
    assert_eq!(sandbox.run(&["diff", "-f", project]).0, 0);

    let project = sandbox.project("p", "inline", &[("env.yaml", &environment("inline-rotated-8c1f"))]);
    let project = project.to_str().unwrap();
    let (code, out, _) = sandbox.run(&["diff", "-f", project]);
    assert_eq!(code, 1, "a changed value is a change: {out}");
    assert!(out.starts_with("secret/prod.API_KEY updated"), "{out}");
    let (code, out, _) = sandbox.run(&["apply", "-f", project]);
    assert_eq!(code, 0);
    assert!(out.starts_with("secret/prod.API_KEY updated") && out.contains("environment/prod unchanged"), "{out}");
    assert_eq!(sandbox.run(&["secret", "get", "prod.API_KEY", "--reveal"]).1, "inline-rotated-8c1f\n");

    let (_, exported, _) = sandbox.run(&["export", "--all"]);
    let (_, json, _) = sandbox.run(&["get", "-o", "json"]);
    let (_, described, _) = sandbox.run(&["describe", "environment", "prod"]);
    for text in [&exported, &json, &described] {
        assert!(!text.contains("inline-planted") && !text.contains("inline-rotated"), "{text}");
    }
    sandbox.assert_stored_nowhere(&["inline-planted-4d2e", "inline-rotated-8c1f"]);
    if let Some((server, _)) = &sandbox.remote {
        assert_nowhere_in(&server.log, &["inline-"]);
    }
}

on_both_backends!(
    secrets_are_encrypted_at_rest_listed_without_values_and_revealed_on_request,
    an_inline_secret_is_stored_encrypted_and_only_its_reference_is_kept,
);

#[test]
fn a_wrong_missing_or_exposed_key_is_a_clear_error_never_an_empty_value() {
    let sandbox = Sandbox::new();
    let output = sandbox.stigmer().args(["secret", "set", "api-key"]).write_stdin("value-1").output().unwrap();
    assert!(output.status.success());
    let key_file = sandbox.home().join("master.key");
    assert!(key_file.exists(), "made on first use");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
    }

    let other = "ab".repeat(32);
    let output = sandbox
        .stigmer()
        .env("STIGMER_MASTER_KEY", &other)
        .args(["secret", "get", "api-key", "--reveal"])
        .output()
        .unwrap();
    let (out, err) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!((output.status.code(), out.as_ref()), (Some(2), ""));
    assert!(
        err.contains("the master key from STIGMER_MASTER_KEY")
            && err.contains("is not the one the secrets were encrypted with"),
        "{err}"
    );
    assert!(err.contains("hint: the master key is STIGMER_MASTER_KEY"), "{err}");
    let output = sandbox.stigmer().env("STIGMER_MASTER_KEY", "short").args(["secret", "list"]).output().unwrap();
    assert!(output.status.success(), "listing needs no key");
    let output = sandbox
        .stigmer()
        .env("STIGMER_MASTER_KEY", "short")
        .args(["secret", "set", "x"])
        .write_stdin("v")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("STIGMER_MASTER_KEY is malformed"));

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (code, _, err) = sandbox.run(&["secret", "get", "api-key", "--reveal"]);
        assert_eq!(code, 2);
        assert!(err.contains("is readable by others (mode 644); refusing to use it"), "{err}");
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    let saved = std::fs::read(&key_file).unwrap();
    std::fs::remove_file(&key_file).unwrap();
    let (code, out, err) = sandbox.run(&["secret", "get", "api-key", "--reveal"]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(
        err.contains(&format!("secrets are stored but there is no master key: expected {}", key_file.display())),
        "{err}"
    );
    let (code, _, _) = sandbox.run(&["secret", "set", "another"]);
    assert_eq!(code, 2, "a missing key is never silently replaced while secrets exist");
    assert!(!key_file.exists());

    // The right key, given by the environment instead of the file, opens them.
    let hex = String::from_utf8(saved).unwrap();
    let output = sandbox
        .stigmer()
        .env("STIGMER_MASTER_KEY", hex.trim())
        .args(["secret", "get", "api-key", "--reveal"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "value-1\n");
}

#[test]
fn on_a_server_viewers_see_names_only_and_only_admins_rotate() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::Server::start(&dir.path().join("data"));
    let home = dir.path().join("home");
    let endpoint = server.endpoint.clone();
    let command = move |token: String| {
        let (home, endpoint) = (home.clone(), endpoint.clone());
        move || {
            let mut cmd = assert_cmd::Command::cargo_bin("stigmer").unwrap();
            cmd.env("NO_COLOR", "1")
                .env("STIGMER_HOME", &home)
                .env("STIGMER_ENDPOINT", &endpoint)
                .env("STIGMER_TOKEN", &token);
            cmd
        }
    };
    let client = |role: &str, name: &str| command(server.token("acme", role, name));
    let (viewer, editor) = (client("viewer", "vic"), client("editor", "eddie"));
    assert!(editor().args(["secret", "set", "k"]).write_stdin("v").output().unwrap().status.success());
    assert!(String::from_utf8_lossy(&viewer().args(["secret", "list"]).output().unwrap().stdout).contains('k'));
    for (command, what) in [
        (viewer().args(["secret", "get", "k", "--reveal"]).output(), "use secret values"),
        (viewer().args(["secret", "set", "k2"]).write_stdin("v").output(), "use secret values"),
        (editor().args(["secret", "rotate-key"]).output(), "rotate the secret key"),
    ] {
        let output = command.unwrap();
        assert_eq!(output.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&output.stderr).contains(what), "{}", String::from_utf8_lossy(&output.stderr));
    }
    // Another org does not see them.
    let mut other = command(server.token("globex", "admin", "gus"))();
    let output = other.args(["secret", "get", "k", "--reveal"]).output().unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("secret/k does not exist"));
    // The server's key is its data directory's; without it the server says which file it needs.
    std::fs::remove_file(server.data.join("master.key")).unwrap();
    let output = editor().args(["secret", "get", "k", "--reveal"]).output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert!(err.contains("there is no master key: expected") && err.contains("master.key"), "{err}");
}
