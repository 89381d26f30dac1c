//! Tool calls that wait for a person, end to end: the scripted LLM server asks for a gated call
//! of the real MCP test server; the execution parks; a second CLI process approves or rejects
//! it (or its approval timeout does), and the run goes on from its history — in this process
//! on a local store, on the server's workers otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test that cannot set up fails loudly")]

use std::io::Read as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Sandbox, output};

#[macro_use]
mod support;

#[path = "support/llm.rs"]
#[allow(dead_code, reason = "shared with the crate's unit tests, which use more of it")]
mod llm;

#[path = "support/mcp_server.rs"]
mod mcp_server;

use llm::{Reply, ScriptedCall, ScriptedServer, openai_text, openai_tool_calls};

const MODEL: &str = "qwen2.5-coder:7b";

/// An agent whose `echo` needs approval (`add` does not), with `extra` spec lines.
fn manifests(extra: &str) -> String {
    let server = mcp_server::test_server().display().to_string();
    format!(
        "apiVersion: agentic.stigmer.ai/v1
kind: McpServer
metadata:
  name: tools
spec:
  stdio:
    command: {server}
  defaultEnabledTools: [echo, add]
---
apiVersion: agentic.stigmer.ai/v1
kind: Agent
metadata:
  name: ops
spec:
  instructions: You operate things.
  mcp_server_usages:
    - mcp_server_ref: tools
      tool_approval_overrides:
        - tool_name: echo
          requires_approval: true
          message: echo says things out loud
        - tool_name: add
          requires_approval: false
{extra}"
    )
}

fn call(id: &str, name: &str, arguments: &str) -> Reply {
    Reply::sse(openai_tool_calls(MODEL, &[ScriptedCall { id, name, fragments: &[arguments] }], (10, 5)))
}

fn text(parts: &[&str]) -> Reply {
    Reply::sse(openai_text(MODEL, parts, (20, 4)))
}

/// The model asks to add (not gated) and to echo (gated) in one answer, then answers.
fn script(runtime: &tokio::runtime::Runtime) -> ScriptedServer {
    runtime.block_on(ScriptedServer::start([
        Reply::sse(openai_tool_calls(
            MODEL,
            &[
                ScriptedCall { id: "c1", name: "tools__add", fragments: &[r#"{"a": 2, "b": 3}"#] },
                ScriptedCall { id: "c2", name: "tools__echo", fragments: &[r#"{"text": "deploying"}"#] },
            ],
            (10, 5),
        )),
        text(&["Done."]),
    ]))
}

/// `--env` settings pointing the run at the scripted server (on a server, its workers run it).
fn llm_settings(llm: &ScriptedServer) -> Vec<String> {
    [
        "STIGMER_LLM_PROVIDER=ollama".to_owned(),
        format!("STIGMER_LLM_BASE_URL={}/v1", llm.base_url()),
        format!("STIGMER_LLM_MODEL={MODEL}"),
    ]
    .into_iter()
    .flat_map(|setting| ["--env".to_owned(), setting])
    .collect()
}

/// `stigmer agent execute ops MESSAGE` in the background, not on a terminal.
fn start(sandbox: &Sandbox, llm: &ScriptedServer, message: &str) -> Child {
    let settings = llm_settings(llm);
    let mut args = vec!["agent", "execute", "ops", message];
    args.extend(settings.iter().map(String::as_str));
    sandbox.command().args(&args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

/// Waits for `child` and returns its exit code, stdout and stderr.
fn finish(mut child: Child, within: Duration) -> (i32, String, String) {
    let deadline = Instant::now() + within;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("agent execute did not finish within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (mut out, mut err) = (String::new(), String::new());
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    (status.code().unwrap_or(-1), out, err)
}

/// The approvals waiting, once there is one (`stigmer execution approvals -o json`).
fn waiting_approvals(sandbox: &Sandbox) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, out, err) = sandbox.run(&["execution", "approvals", "-o", "json"]);
        assert_eq!(code, 0, "{err}");
        let items = serde_json::from_str::<Value>(&out).map(|v| v["items"].as_array().cloned().unwrap_or_default());
        if let Ok(items) = items
            && !items.is_empty()
        {
            return items;
        }
        assert!(Instant::now() < deadline, "no approval was asked for: {out}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn apply(sandbox: &Sandbox, extra: &str) {
    let project = sandbox.project("agents", "agents", &[("agents.yaml", &manifests(extra))]);
    let (code, _, err) = sandbox.run(&["apply", "-f", project.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
}

/// The content of the last message the model was sent in request `n`.
fn last_message(llm: &ScriptedServer, n: usize) -> Value {
    llm.requests()[n].json()["messages"].as_array().unwrap().last().cloned().unwrap()
}

/// The tool results the model was sent in request `n`, by call id.
fn tool_results(llm: &ScriptedServer, n: usize) -> Vec<(String, String)> {
    llm.requests()[n].json()["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| (m["tool_call_id"].as_str().unwrap().to_owned(), m["content"].as_str().unwrap().to_owned()))
        .collect()
}

fn a_gated_call_waits_until_another_process_approves_it(sandbox: &Sandbox) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    apply(sandbox, "");
    let llm = script(&runtime);
    let run = start(sandbox, &llm, "Deploy, and tell everyone.");

    let approvals = waiting_approvals(sandbox);
    assert_eq!(approvals.len(), 1, "{approvals:?}");
    let pending = &approvals[0];
    assert_eq!(pending["tool"], "tools__echo");
    assert_eq!(pending["call"], "c2");
    assert_eq!(pending["arguments"]["text"], "deploying");
    assert_eq!(pending["message"], "echo says things out loud");
    assert_eq!(pending["state"], "waiting");
    let id = pending["execution"].as_str().unwrap().to_owned();
    let (_, record, _) = sandbox.run(&["execution", "get", &id, "-o", "json"]);
    let record: Value = serde_json::from_str(&record).unwrap();
    assert_eq!(record["status"], "waiting", "{record:#}");
    assert_eq!(llm.requests().len(), 1, "nothing runs on while it waits");

    let (code, out, err) = sandbox.run(&["execution", "approve", &id]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("approved") && out.contains("tools__echo"), "{out}");
    let (code, out, err) = finish(run, Duration::from_secs(30));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("Done."), "{out}");
    if sandbox.remote.is_none() {
        assert!(err.contains(&format!("stigmer execution approve {id}")), "says how to decide: {err}");
        assert!(err.contains("approved by tester"), "{err}");
    } else {
        assert!(out.contains("approved by tester"), "the followed run shows the decision: {out}");
    }
    // Both calls ran once, after the decision: the model got both results.
    assert_eq!(
        tool_results(&llm, 1),
        [("c1".to_owned(), "5".to_owned()), ("c2".to_owned(), "deploying".to_owned())],
        "{:#}",
        last_message(&llm, 1)
    );
    assert_eq!(llm.requests().len(), 2);

    // The decision is in the history and in the audit log.
    let (_, logs, _) = sandbox.run(&["execution", "logs", &id]);
    assert!(logs.contains("approvalRequested ops tools__echo (call c2)"), "{logs}");
    assert!(logs.contains("approvalDecided ops approved by tester (call c2)"), "{logs}");
    let (_, audit, _) = sandbox.run(&["audit", "-o", "json"]);
    let audit: Value = serde_json::from_str(&audit).unwrap();
    let decided: Vec<&Value> =
        audit["items"].as_array().unwrap().iter().filter(|e| e["action"] == "approved").collect();
    assert_eq!(decided.len(), 1, "{audit:#}");
    assert_eq!(decided[0]["target"], format!("execution/{id}"));
    assert_eq!(decided[0]["actor"], "tester");
    assert_eq!(decided[0]["detail"], "tools__echo (call c2)");

    let (code, _, err) = sandbox.run(&["execution", "approve", &id]);
    assert_ne!(code, 0, "a second decision is refused");
    assert!(err.contains("is not waiting"), "{err}");
    let (_, all, _) = sandbox.run(&["execution", "approvals", "--all", "-o", "json"]);
    let all: Value = serde_json::from_str(&all).unwrap();
    assert_eq!(all["items"][0]["state"], "approved", "{all:#}");
    assert_eq!(all["items"][0]["decidedBy"], "tester");
}

fn a_rejected_call_is_not_run_and_the_model_reads_why(sandbox: &Sandbox) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    apply(sandbox, "");
    let llm = script(&runtime);
    let run = start(sandbox, &llm, "Deploy, and tell everyone.");
    let id = waiting_approvals(sandbox)[0]["execution"].as_str().unwrap().to_owned();

    let (code, _, err) = sandbox.run(&["execution", "reject", &id, "--call", "c9", "--reason", "x"]);
    assert_ne!(code, 0, "no such call");
    assert!(err.contains("c9"), "{err}");
    let (code, out, err) = sandbox.run(&["execution", "reject", &id, "--reason", "not during the freeze"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("rejected"), "{out}");
    let (code, out, err) = finish(run, Duration::from_secs(30));
    assert_eq!(code, 0, "{out}\n{err}");
    let results = tool_results(&llm, 1);
    assert_eq!(results[0], ("c1".to_owned(), "5".to_owned()), "the call that needed nobody ran");
    assert_eq!(results[1].0, "c2");
    assert_eq!(results[1].1, "error: the call was not run: tester rejected it: not during the freeze");
    let (_, logs, _) = sandbox.run(&["execution", "logs", &id]);
    assert!(logs.contains("rejected by tester (call c2): not during the freeze"), "{logs}");
    let (_, audit, _) = sandbox.run(&["audit", "-o", "json"]);
    assert!(audit.contains("\"rejected\""), "{audit}");
}

fn an_unanswered_call_is_rejected_when_its_approval_timeout_passes(sandbox: &Sandbox) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    apply(sandbox, "  approval_timeout: PT1S\n");
    let llm = script(&runtime);
    let started = Instant::now();
    let run = start(sandbox, &llm, "Deploy, and tell everyone.");
    let pending = waiting_approvals(sandbox);
    assert!(pending[0]["deadline"].is_string(), "{pending:?}");
    let (code, out, err) = finish(run, Duration::from_mins(1));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(started.elapsed() >= Duration::from_secs(1), "it waited for the deadline");
    let results = tool_results(&llm, 1);
    assert_eq!(results[1], ("c2".to_owned(), "error: the call was not run: nobody approved it in time".to_owned()));
    let (_, all, _) = sandbox.run(&["execution", "approvals", "--all", "-o", "json"]);
    let all: Value = serde_json::from_str(&all).unwrap();
    assert_eq!((&all["items"][0]["state"], &all["items"][0]["decidedBy"]), (&"rejected".into(), &"timeout".into()));
}

/// A secret the model puts into a gated call's arguments is masked where a person decides on it
/// (the approvals list, the history, the terminal) and stored nowhere. The history keeps only
/// the mask, so the approved call is not made with `***` in the secret's place: the model reads
/// why and can make it again.
fn a_secret_in_a_gated_call_is_masked_where_a_person_decides(sandbox: &Sandbox) {
    const SECRET: &str = "deploy-s3cr3t-token";
    let runtime = tokio::runtime::Runtime::new().unwrap();
    apply(sandbox, "");
    let llm = runtime.block_on(ScriptedServer::start([
        call("c1", "tools__echo", &format!(r#"{{"text": "{SECRET}"}}"#)),
        text(&["Done."]),
    ]));
    let mut args = vec!["agent".to_owned(), "execute".to_owned(), "ops".to_owned(), "Deploy.".to_owned()];
    args.extend(llm_settings(&llm));
    args.extend(["--secret".to_owned(), format!("DEPLOY_TOKEN={SECRET}")]);
    let run = sandbox
        .command()
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let approvals = waiting_approvals(sandbox);
    assert_eq!(approvals[0]["arguments"]["text"], "***", "{approvals:?}");
    let id = approvals[0]["execution"].as_str().unwrap().to_owned();
    let (_, table, _) = sandbox.run(&["execution", "approvals", "-o", "wide"]);
    assert!(!table.contains(SECRET), "{table}");
    let (code, _, err) = sandbox.run(&["execution", "approve", &id]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = finish(run, Duration::from_secs(30));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!out.contains(SECRET) && !err.contains(SECRET), "{out}\n{err}");
    let results = tool_results(&llm, 1);
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0].0, "c1");
    assert!(results[0].1.contains("was not made") && !results[0].1.contains(SECRET), "{results:?}");
    let (_, logs, _) = sandbox.run(&["execution", "logs", &id]);
    assert!(!logs.contains(SECRET), "{logs}");
    sandbox.assert_stored_nowhere(&[SECRET]);
}

on_both_backends!(
    a_gated_call_waits_until_another_process_approves_it,
    a_rejected_call_is_not_run_and_the_model_reads_why,
    an_unanswered_call_is_rejected_when_its_approval_timeout_passes,
    a_secret_in_a_gated_call_is_masked_where_a_person_decides,
);

/// On a terminal, the waiting CLI asks the person at it (a real pseudo-terminal, made by
/// util-linux's `script`); their answer decides, and the run goes on.
#[test]
fn on_a_terminal_the_waiting_cli_asks_and_the_answer_decides() {
    use std::io::Write as _;
    if Command::new("script").arg("--version").output().is_err() {
        // bsdutils (which has `script`) is essential on Debian: CI always has it.
        eprintln!("skipped: no `script` to make a pseudo-terminal with");
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sandbox = Sandbox::new();
    apply(&sandbox, "");
    let llm = script(&runtime);
    let quote = |text: &str| format!("'{}'", text.replace('\'', "'\\''"));
    let inner = [
        quote(&support::stigmer_bin().display().to_string()),
        "agent".into(),
        "execute".into(),
        "ops".into(),
        quote("Deploy, and tell everyone."),
    ]
    .join(" ");
    let mut run = Command::new("script")
        .current_dir(support::root())
        .env("NO_COLOR", "1")
        .env("STIGMER_HOME", sandbox.home())
        .env("USER", "tester")
        .env("STIGMER_LLM_PROVIDER", "ollama")
        .env("STIGMER_LLM_BASE_URL", format!("{}/v1", llm.base_url()))
        .env("STIGMER_LLM_MODEL", MODEL)
        .env("TERM", "dumb")
        .args(["-qefc", &inner, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    waiting_approvals(&sandbox);
    run.stdin.as_mut().unwrap().write_all(b"n\nnot on a friday\n").unwrap();
    let (code, out, err) = finish(run, Duration::from_secs(30));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("approve? [y]es / [n]o"), "it asked: {out}");
    assert!(out.contains("tools__echo rejected by tester: not on a friday"), "{out}");
    assert_eq!(tool_results(&llm, 1)[1].1, "error: the call was not run: tester rejected it: not on a friday");
}

/// On a server: a parked execution holds no worker slot (a worker of concurrency one runs
/// another execution meanwhile); a viewer may not decide, an editor may.
#[test]
fn a_parked_execution_holds_no_worker_and_only_an_editor_decides() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = support::Server::start_on(&dir.path().join("server"), "127.0.0.1:0", &["--workers", "0"]);
    let editor = server.token("acme", "editor", "ana");
    let viewer = server.token("acme", "viewer", "vic");
    let work = server.token("acme", "worker", "workers");
    let home = dir.path().join("home");
    let project = dir.path().join("agents");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(project.join("stigmer.yaml"), "name: agents\n").unwrap();
    std::fs::write(project.join("agents.yaml"), manifests("")).unwrap();
    let (ok, _, err) = output(server.cli(&editor, &home), &["apply", "-f", project.to_str().unwrap()]);
    assert!(ok, "{err}");
    let llm = runtime.block_on(ScriptedServer::start([
        call("c1", "tools__echo", r#"{"text": "hello"}"#),
        text(&["Unrelated."]),
        text(&["Echoed."]),
    ]));
    let settings = llm_settings(&llm);
    let detach = |message: &str| {
        let mut args = vec!["agent", "execute", "ops", message, "--detach"];
        args.extend(settings.iter().map(String::as_str));
        let (ok, out, err) = output(server.cli(&editor, &home), &args);
        assert!(ok, "{err}");
        out.trim().to_owned()
    };
    let mut worker =
        server.worker(&work, &dir.path().join("worker"), &dir.path().join("worker.log"), &["--concurrency", "1"]);
    let parked = detach("Say hello.");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, out, _) = output(server.cli(&editor, &home), &["execution", "approvals", "-o", "name"]);
        if out.contains(&parked) {
            break;
        }
        assert!(Instant::now() < deadline, "never parked: {out}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let other = detach("Something else.");
    let record = server.wait_for_status(&editor, &home, &other, "completed", Duration::from_secs(30));
    assert_eq!(record["output"]["answer"], "Unrelated.", "the one worker slot was free");

    let (ok, _, err) = output(server.cli(&viewer, &home), &["execution", "approve", &parked]);
    assert!(!ok, "a viewer may not approve");
    assert!(err.contains("permission") || err.contains("editor"), "{err}");
    let (ok, _, err) = output(server.cli(&editor, &home), &["execution", "approve", &parked]);
    assert!(ok, "{err}");
    let record = server.wait_for_status(&editor, &home, &parked, "completed", Duration::from_secs(30));
    assert_eq!(record["output"]["answer"], "Echoed.");
    let admin = server.token("acme", "admin", "root");
    let (_, audit, _) = output(server.cli(&admin, &home), &["audit", "-o", "json"]);
    let audit: Value = serde_json::from_str(&audit).unwrap();
    let decided: Vec<&Value> =
        audit["items"].as_array().unwrap().iter().filter(|e| e["action"] == "approved").collect();
    assert_eq!(decided.len(), 1, "only the editor's decision: {audit:#}");
    assert_eq!(decided[0]["actor"], "ana");
    worker.kill().unwrap();
    let _ = worker.wait();
}
