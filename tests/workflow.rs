//! `stigmer workflow run` as people use it: bare Serverless Workflow documents and Workflow
//! manifests from files, stored workflows by name on either backend, inputs, variables and
//! secrets (masked in every output), text and JSON reports, exit codes.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test that cannot set up fails loudly")]

use support::Sandbox;

#[macro_use]
mod support;

const GREET: &str = "document: { dsl: '1.0.0', namespace: demo, name: greet, version: '0.1.0' }
do:
  - greet:
      set:
        greeting: ${ \"Hello, \" + .name }
        region: ${ $secret.REGION }
        key: ${ $secret.API_KEY }
  - onlyForAda:
      if: ${ .greeting == \"Hello, Ada\" }
      set:
        ada: true
";

const MANIFEST: &str = "apiVersion: agentic.stigmer.ai/v1
kind: Workflow
metadata:
  name: greeter
spec:
  envSpec:
    data:
      REGION:
        value: eu
      API_KEY:
        description: the provider key
  do:
    - greet:
        set:
          greeting: ${ \"Hello, \" + .name }
          region: ${ $secret.REGION }
    - fail:
        if: ${ .greeting == \"Hello, Mallory\" }
        raise:
          error:
            type: https://example.com/errors/refused
            status: 403
            title: Refused
";

fn a_bare_document_runs_from_a_file_with_input_and_secrets_masked(sandbox: &Sandbox) {
    let file = sandbox.dir.path().join("greet.yaml");
    std::fs::write(&file, GREET).unwrap();
    let file = file.to_str().unwrap();
    let (code, out, err) = sandbox.run(&[
        "workflow",
        "run",
        "-f",
        file,
        "--input",
        r#"{"name": "Ada"}"#,
        "--env",
        "REGION=eu",
        "--secret",
        "API_KEY=sk-planted-93",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("started   greet /do/0/greet") && out.contains("completed greet"), "{out}");
    assert!(out.contains("\"ada\": true"), "{out}");
    assert!(!out.contains("sk-planted-93") && !err.contains("sk-planted-93"), "the secret is masked: {out}");

    let (code, json, _) = sandbox.run(&[
        "workflow",
        "run",
        "-f",
        file,
        "--input",
        r#"{"name": "Bob"}"#,
        "--env",
        "REGION=us",
        "--secret",
        "API_KEY=sk-planted-93",
        "-o",
        "json",
    ]);
    assert_eq!(code, 0);
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["status"], "completed");
    assert_eq!(report["output"]["greeting"], "Hello, Bob");
    assert_eq!(report["output"]["region"], "us", "--env reaches the run");
    assert_eq!(report["output"]["key"], "***", "a secret is masked even in the output");
    let tasks: Vec<(&str, &str)> = report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["reference"].as_str().unwrap(), t["status"].as_str().unwrap()))
        .collect();
    assert_eq!(tasks, [("/do/0/greet", "completed"), ("/do/1/onlyForAda", "skipped")]);
    let id = report["id"].as_str().unwrap();
    assert_eq!(id.len(), 36);

    // The run is recorded in the backend, redacted.
    let (code, listed, _) = sandbox.run(&["execution", "list", "--status", "completed"]);
    assert_eq!(code, 0);
    assert!(listed.contains(id) && listed.contains("file:"), "{listed}");
    let (_, record, _) = sandbox.run(&["execution", "get", id, "-o", "json"]);
    let record: serde_json::Value = serde_json::from_str(&record).unwrap();
    assert_eq!(record["status"], "completed");
    assert_eq!(record["output"]["key"], "***");
    assert_eq!(record["input"]["name"], "Bob");
    let (code, logs, _) = sandbox.run(&["execution", "logs", id]);
    assert_eq!(code, 0);
    let events: Vec<String> =
        logs.lines().map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" ")).collect();
    assert!(events[0].starts_with("claimed by "), "{events:?}");
    assert_eq!(events[1..], ["started /do/0/greet", "completed /do/0/greet", "skipped /do/1/onlyForAda"]);
    let (code, _, err) = sandbox.run(&["execution", "logs", "no-such-id"]);
    assert_eq!(code, 2);
    assert!(err.contains("execution/no-such-id does not exist"), "{err}");
    // Nowhere in the backend's files either.
    sandbox.assert_stored_nowhere(&["sk-planted-93"]);
}

fn a_stored_workflow_runs_by_name_with_its_env_spec(sandbox: &Sandbox) {
    let project = sandbox.project("p", "flows", &[("greeter.yaml", MANIFEST)]);
    assert_eq!(sandbox.run(&["apply", "-f", project.to_str().unwrap()]).0, 0);

    // API_KEY is required and nobody gives it: refused before anything runs.
    let (code, out, err) = sandbox.run(&["workflow", "run", "greeter", "--input", r#"{"name": "Ada"}"#]);
    assert_eq!((code, out.as_str()), (2, ""), "{err}");
    assert!(err.contains("API_KEY (the provider key) is required"), "{err}");

    // --secret gives it; the envSpec default fills REGION.
    let (code, json, err) = sandbox.run(&[
        "workflow",
        "run",
        "greeter",
        "--input",
        r#"{"name": "Ada"}"#,
        "--secret",
        "API_KEY=k",
        "-o",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["output"], serde_json::json!({"greeting": "Hello, Ada", "region": "eu"}));

    let (code, json, _) = sandbox.run(&[
        "workflow",
        "run",
        "greeter",
        "--input",
        r#"{"name": "Mallory"}"#,
        "--secret",
        "API_KEY=k",
        "-o",
        "json",
    ]);
    assert_eq!(code, 1, "a faulted run exits 1");
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["status"], "faulted");
    assert_eq!(report["error"]["status"], 403);
    assert_eq!(report["error"]["instance"], "/do/1/fail");

    let (code, _, err) = sandbox.run(&["workflow", "run", "nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("workflow/nope does not exist"), "{err}");
}

const PARENT_AND_CHILD: &str = "apiVersion: agentic.stigmer.ai/v1
kind: Workflow
metadata:
  name: child
spec:
  do:
    - double:
        set:
          n: ${ .n * 2 }
---
apiVersion: agentic.stigmer.ai/v1
kind: Workflow
metadata:
  name: parent
spec:
  do:
    - delegate:
        run:
          workflow:
            namespace: default
            name: child
            version: 0.1.0
            input:
              n: ${ .start }
";

fn a_stored_workflow_runs_another_by_name(sandbox: &Sandbox) {
    let project = sandbox.project("p", "flows", &[("flows.yaml", PARENT_AND_CHILD)]);
    assert_eq!(sandbox.run(&["apply", "-f", project.to_str().unwrap()]).0, 0);
    let (code, json, err) = sandbox.run(&["workflow", "run", "parent", "--input", r#"{"start": 21}"#, "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["output"], serde_json::json!({"n": 42}));
    let references: Vec<&str> =
        report["tasks"].as_array().unwrap().iter().map(|t| t["reference"].as_str().unwrap()).collect();
    assert_eq!(references, ["/do/0/delegate", "/do/0/delegate/workflow/do/0/double"]);
}

/// Waits until the running execution of `target` has logged `line`, and returns its id.
fn running_until(sandbox: &Sandbox, child: &mut std::process::Child, target: &str, line: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, listed, _) = sandbox.run(&["execution", "list", "-o", "json"]);
        let listed: serde_json::Value = serde_json::from_str(&listed).unwrap_or_default();
        let running = listed["items"].as_array().cloned().unwrap_or_default();
        // Running, or waiting in a `listen`.
        let alive =
            |r: &&serde_json::Value| r["target"] == target && (r["status"] == "running" || r["status"] == "waiting");
        if let Some(id) = running.iter().find(alive).and_then(|r| r["id"].as_str()) {
            let (_, logs, _) = sandbox.run(&["execution", "logs", id]);
            if logs.contains(line) {
                return id.to_owned();
            }
        }
        if std::time::Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let mut printed = String::new();
            let _ = std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut printed);
            panic!("the run never logged {line:?}; it printed:\n{printed}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

const APPROVAL: &str = "document: { dsl: '1.0.0', namespace: demo, name: approval, version: '0.1.0' }
do:
  - announce:
      emit:
        event:
          with:
            source: https://example.com/shop
            type: com.example.requested
            data: '${ { item: .item } }'
  - hearOwnEvent:
      listen:
        to:
          one:
            with: { type: com.example.requested }
  - approval:
      listen:
        to:
          all:
            - with: { type: com.example.approved }
            - with: { type: com.example.checked, data: { ok: true } }
      output:
        as: '${ { item: $input[0].item, approvedBy: .[0].by, checked: .[1].ok } }'
";

fn a_running_execution_receives_signals_and_emits_to_itself(sandbox: &Sandbox) {
    let file = sandbox.dir.path().join("approval.yaml");
    std::fs::write(&file, APPROVAL).unwrap();
    let file = file.to_str().unwrap();
    let mut child = sandbox.spawn(&["workflow", "run", "-f", file, "--input", r#"{"item": "lamp"}"#, "-o", "json"]);
    let id = running_until(sandbox, &mut child, &format!("file:{file}"), "started   /do/2/approval");

    // One event the filter rejects, then the two it waits for, in either order.
    for (kind, data) in
        [("checked", r#"{"ok": false}"#), ("approved", r#"{"by": "ada"}"#), ("checked", r#"{"ok": true}"#)]
    {
        let (code, out, err) =
            sandbox.run(&["execution", "signal", &id, "--type", &format!("com.example.{kind}"), "--data", data]);
        assert_eq!(code, 0, "{err}");
        assert!(out.starts_with(&format!("sent com.example.{kind} to execution {id}")), "{out}");
    }
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["status"], "completed");
    assert_eq!(report["output"], serde_json::json!({ "item": "lamp", "approvedBy": "ada", "checked": true }));

    let (_, logs, _) = sandbox.run(&["execution", "logs", &id]);
    assert!(logs.contains("emitted   /do/0/announce com.example.requested"), "{logs}");
    assert!(logs.contains("consumed  /do/1/hearOwnEvent com.example.requested"), "{logs}");
    assert_eq!(logs.matches("signal").count(), 3, "{logs}");
    assert_eq!(logs.matches("consumed  /do/2/approval").count(), 2, "the rejected event is not consumed: {logs}");

    let (code, _, err) = sandbox.run(&["execution", "signal", &id, "--type", "late"]);
    assert_eq!(code, 2);
    assert!(err.contains("only a running execution can receive events"), "{err}");
}

on_both_backends!(
    a_bare_document_runs_from_a_file_with_input_and_secrets_masked,
    a_stored_workflow_runs_by_name_with_its_env_spec,
    a_stored_workflow_runs_another_by_name,
    a_running_execution_receives_signals_and_emits_to_itself,
);

const TWO_STEPS: &str = "document: { dsl: '1.0.0', namespace: demo, name: steps, version: '0.1.0' }
do:
  - first:
      listen:
        to:
          one:
            with: { type: step }
  - second:
      listen:
        to:
          one:
            with: { type: step }
      output:
        as: '${ { first: $input[0], second: .[0] } }'
";

/// A resumed run does not hand a listener an event an earlier listener already consumed, and
/// gets the signals sent while no runner was alive.
#[cfg(unix)]
#[test]
fn signals_survive_a_crash_and_are_consumed_once() {
    let sandbox = Sandbox::new();
    let file = sandbox.dir.path().join("steps.yaml");
    std::fs::write(&file, TWO_STEPS).unwrap();
    let file = file.to_str().unwrap();
    let mut child = sandbox.spawn(&["workflow", "run", "-f", file]);
    let id = running_until(&sandbox, &mut child, &format!("file:{file}"), "started   /do/0/first");
    assert_eq!(sandbox.run(&["execution", "signal", &id, "--type", "step", "--data", "1"]).0, 0);
    let id = running_until(&sandbox, &mut child, &format!("file:{file}"), "started   /do/1/second");
    child.kill().unwrap();
    child.wait().unwrap();

    assert_eq!(sandbox.run(&["execution", "signal", &id, "--type", "step", "--data", "2"]).0, 0);
    let (code, json, err) = sandbox.run(&["execution", "resume", &id, "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["output"], serde_json::json!({ "first": 1, "second": 2 }));
}

#[test]
fn a_broken_file_is_reported_not_run() {
    let sandbox = Sandbox::new();
    let file = sandbox.dir.path().join("broken.yaml");
    std::fs::write(&file, "document: { dsl: '1.0.0' }\ndo: 7\n").unwrap();
    let (code, _, err) = sandbox.run(&["workflow", "run", "-f", file.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("is not a Serverless Workflow document"), "{err}");
    let manifest = sandbox.dir.path().join("bad.yaml");
    std::fs::write(&manifest, MANIFEST.replace("raise:", "raize:")).unwrap();
    let (code, _, err) = sandbox.run(&["workflow", "run", "-f", manifest.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("bad.yaml:"), "file:line is named: {err}");
}

/// A workflow with side effects on both sides of a long wait.
fn crashable(counter: &std::path::Path) -> String {
    let counter = counter.display();
    format!(
        "document: {{ dsl: '1.0.0', namespace: demo, name: crashable, version: '0.1.0' }}
do:
  - countOne:
      run:
        shell:
          command: echo one >> \"$COUNTER\"
          environment:
            COUNTER: {counter}
  - note:
      set:
        a: 1
  - pause:
      wait: PT2S
  - countTwo:
      run:
        shell:
          command: echo two >> \"$COUNTER\"
          environment:
            COUNTER: {counter}
  - finish:
      set:
        a: ${{ 1 }}
        done: true
"
    )
}

#[cfg(unix)]
#[test]
fn a_run_killed_midway_resumes_without_redoing_finished_tasks() {
    let sandbox = Sandbox::new();
    let dir = sandbox.dir.path();

    // The reference: an uninterrupted run.
    let clean = dir.join("clean.yaml");
    std::fs::write(&clean, crashable(&dir.join("clean.count"))).unwrap();
    let (code, json, err) = sandbox.run(&["workflow", "run", "-f", clean.to_str().unwrap(), "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let expected: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(std::fs::read_to_string(dir.join("clean.count")).unwrap(), "one\ntwo\n");

    // The same workflow, killed (SIGKILL) while it waits.
    let crashed = dir.join("crashed.yaml");
    let counter = dir.join("crashed.count");
    std::fs::write(&crashed, crashable(&counter)).unwrap();
    let crashed = crashed.to_str().unwrap();
    let mut child = sandbox.spawn(&["workflow", "run", "-f", crashed]);
    let id = running_until(&sandbox, &mut child, &format!("file:{crashed}"), "started   /do/2/pause");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(std::fs::read_to_string(&counter).unwrap(), "one\n");

    let (code, json, err) = sandbox.run(&["execution", "resume", &id, "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("/do/2/pause was running when the execution stopped"), "{err}");
    let resumed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(resumed["output"], expected["output"], "the same output as the uninterrupted run");
    assert_eq!(resumed["id"], id.as_str());
    assert_eq!(std::fs::read_to_string(&counter).unwrap(), "one\ntwo\n", "countOne did not run again");
    let (_, record, _) = sandbox.run(&["execution", "get", &id, "-o", "json"]);
    let record: serde_json::Value = serde_json::from_str(&record).unwrap();
    assert_eq!(record["status"], "completed");
    let (code, _, err) = sandbox.run(&["execution", "resume", &id]);
    assert_eq!(code, 2, "a finished execution is not resumed again");
    assert!(err.contains("is completed"), "{err}");
}

/// Starts a run of a workflow that waits 10 s, and returns it with its execution id once it waits.
#[cfg(unix)]
#[allow(clippy::zombie_processes, reason = "the caller waits for the child it gets back")]
fn waiting_run(sandbox: &Sandbox, name: &str) -> (std::process::Child, String) {
    let file = sandbox.dir.path().join(format!("{name}.yaml"));
    std::fs::write(
        &file,
        format!("document: {{ dsl: '1.0.0', namespace: demo, name: {name}, version: '0.1.0' }}\ndo:\n  - pause:\n      wait: PT10S\n"),
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let mut child = sandbox.spawn(&["workflow", "run", "-f", file]);
    let id = running_until(sandbox, &mut child, &format!("file:{file}"), "started   /do/0/pause");
    (child, id)
}

#[cfg(unix)]
#[test]
fn a_run_stops_on_cancel_or_sigterm_and_says_so() {
    use std::io::Read;
    let sandbox = Sandbox::new();
    let (mut child, id) = waiting_run(&sandbox, "cancelled");
    let started = std::time::Instant::now();
    let (code, out, err) = sandbox.run(&["execution", "cancel", &id]);
    assert_eq!((code, out.as_str()), (0, format!("execution {id} cancelled\n").as_str()), "{err}");
    let status = child.wait().unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "the runner stopped promptly");
    assert_eq!(status.code(), Some(1));
    let mut printed = String::new();
    child.stdout.take().unwrap().read_to_string(&mut printed).unwrap();
    assert!(printed.contains("cancelled with `stigmer execution cancel`"), "{printed}");
    assert_eq!(sandbox.run(&["execution", "cancel", &id]).0, 2, "already cancelled");

    let (child, id) = waiting_run(&sandbox, "interrupted");
    std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stdout).contains("interrupted"));
    let (_, record, _) = sandbox.run(&["execution", "get", &id, "-o", "json"]);
    let record: serde_json::Value = serde_json::from_str(&record).unwrap();
    assert_eq!(record["status"], "cancelled");
}

#[test]
fn document_description_is_read_as_summary_with_a_warning() {
    let sandbox = Sandbox::new();
    let manifest = |header: &str| {
        format!(
            "apiVersion: agentic.stigmer.ai/v1\nkind: Workflow\nmetadata: {{name: described}}\nspec:\n  document:\n    dsl: 1.0.0\n    namespace: demo\n    name: described\n    version: 0.1.0\n{header}  do:\n    - a: {{set: {{x: 1}}}}\n"
        )
    };
    let project = sandbox.project("d", "d", &[("flow.yaml", &manifest("    description: Files tickets.\n"))]);
    let (code, _, err) = sandbox.run(&["apply", "-f", project.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(
            "warning: document.description is not a Serverless Workflow field; it is read as document.summary"
        ),
        "{err}"
    );
    assert!(err.contains("flow.yaml:10:5") && err.contains("hint: rename description to summary"), "{err}");
    let (_, stored, _) = sandbox.run(&["get", "workflow", "described", "-o", "json"]);
    let stored: serde_json::Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(stored["spec"]["document"]["summary"], "Files tickets.");

    // A bare document, run from its file, the same way.
    let bare = sandbox.dir.path().join("bare.yaml");
    std::fs::write(&bare, "document: {dsl: 1.0.0, namespace: demo, name: bare, version: 0.1.0, description: Old style.}\ndo:\n  - a: {set: {x: 1}}\n").unwrap();
    let (code, out, err) = sandbox.run(&["workflow", "run", "-f", bare.to_str().unwrap(), "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("warning: document.description is not a Serverless Workflow field")
            && err.contains("bare.yaml:1:"),
        "{err}"
    );
    assert!(out.contains("\"completed\""), "{out}");

    // Both at once is an error; any other unknown field stays one, with a suggestion.
    let both = sandbox.project("b", "b", &[("flow.yaml", &manifest("    summary: New.\n    description: Old.\n"))]);
    let (code, _, err) = sandbox.run(&["validate", "-f", both.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("error: document has both summary and description") && err.contains("hint: keep summary"),
        "{err}"
    );
    let typo = sandbox.project("t", "t", &[("flow.yaml", &manifest("    sumary: Typo.\n"))]);
    let (code, _, err) = sandbox.run(&["validate", "-f", typo.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("did you mean \"summary\"?"), "{err}");
}
