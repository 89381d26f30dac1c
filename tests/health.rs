//! Health in status, end to end: a good MCP server (the real test server over stdio), one whose
//! command does not exist, one over HTTP whose server is down, an environment naming a missing
//! secret, and model endpoints (the scripted LLM server) that list their models or refuse the
//! key — probed by `stigmer status` on the local store and by a server on its own.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test that cannot set up fails loudly")]

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Sandbox, output};

#[macro_use]
mod support;

#[path = "support/llm.rs"]
#[allow(dead_code, reason = "shared with the crate's unit tests, which use more of it")]
mod llm;

#[path = "support/mcp_server.rs"]
mod mcp_server;

use llm::{Reply, ScriptedServer};

/// A port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn good() -> String {
    let server = mcp_server::test_server().display().to_string();
    format!(
        "apiVersion: agentic.stigmer.ai/v1
kind: McpServer
metadata:
  name: good
spec:
  stdio:
    command: {server}
  defaultEnabledTools: [echo, add]
---
apiVersion: agentic.stigmer.ai/v1
kind: Skill
metadata:
  name: style
spec:
  skillMd: Be brief.
---
apiVersion: agentic.stigmer.ai/v1
kind: Agent
metadata:
  name: fine
spec:
  instructions: Help.
  skillRefs: [style]
  mcpServerUsages:
    - mcpServerRef: good
"
    )
}

fn broken() -> String {
    format!(
        "---
apiVersion: agentic.stigmer.ai/v1
kind: McpServer
metadata:
  name: missing
spec:
  stdio:
    command: /nonexistent/bin/mcp-server
---
apiVersion: agentic.stigmer.ai/v1
kind: McpServer
metadata:
  name: down
spec:
  http:
    url: http://127.0.0.1:{}/mcp
---
apiVersion: agentic.stigmer.ai/v1
kind: Environment
metadata:
  name: prod
spec:
  data:
    TOKEN:
      secretRef: no-such-secret
---
apiVersion: agentic.stigmer.ai/v1
kind: Agent
metadata:
  name: stuck
spec:
  instructions: Help.
  mcpServerUsages:
    - mcpServerRef: missing
",
        closed_port()
    )
}

/// `stigmer ARGS` with the model endpoint at `llm`.
fn run(sandbox: &Sandbox, llm: &ScriptedServer, args: &[&str]) -> (i32, String, String) {
    let output = sandbox
        .command()
        .env("STIGMER_LLM_PROVIDER", "openai")
        .env("STIGMER_LLM_BASE_URL", format!("{}/v1", llm.base_url()))
        .env("STIGMER_LLM_MODEL", "gpt-4o")
        .env("OPENAI_API_KEY", "sk-test-key")
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Each listed condition, by `resource type`.
fn conditions(listed: &str) -> Vec<Value> {
    serde_json::from_str::<Value>(listed).unwrap()["items"].as_array().unwrap().clone()
}

fn find<'a>(items: &'a [Value], resource: &str, kind: &str) -> &'a Value {
    items
        .iter()
        .find(|c| c["resource"] == resource && c["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} of {resource} in {items:#?}"))
}

fn models() -> Reply {
    Reply::json_status(200, &json!({"object": "list", "data": [{"id": "gpt-4o", "object": "model"}]}))
}

#[test]
fn status_probes_what_agents_depend_on_and_fails_when_something_is_not_ready() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sandbox = Sandbox::new();
    let llm = runtime.block_on(ScriptedServer::start([
        models(),
        Reply::json_status(
            401,
            &json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}),
        ),
    ]));
    let project = sandbox.project("agents", "agents", &[("good.yaml", &good()), ("broken.yaml", &broken())]);
    let (code, _, err) = run(&sandbox, &llm, &["apply", "-f", project.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");

    let (code, out, err) = run(&sandbox, &llm, &["status", "-o", "json"]);
    assert_eq!(code, 1, "something is not ready: {err}");
    assert!(err.contains("not ready"), "{err}");
    let items = conditions(&out);
    assert_eq!(items[0]["status"], "False", "failing first: {items:#?}");
    let good = find(&items, "mcpserver/good", "Ready");
    assert_eq!((&good["status"], &good["reason"]), (&json!("True"), &json!("Connected")));
    assert_eq!(good["detail"]["tools"], 2, "its enabled tools: {good}");
    let missing = find(&items, "mcpserver/missing", "Ready");
    assert_eq!((&missing["status"], &missing["reason"]), (&json!("False"), &json!("StartFailed")));
    assert!(missing["message"].as_str().unwrap().contains("/nonexistent/bin/mcp-server"), "{missing}");
    let down = find(&items, "mcpserver/down", "Ready");
    assert_eq!((&down["status"], &down["reason"]), (&json!("False"), &json!("ConnectFailed")));
    let prod = find(&items, "environment/prod", "SecretsResolved");
    assert_eq!((&prod["status"], &prod["reason"]), (&json!("False"), &json!("SecretMissing")));
    assert!(prod["message"].as_str().unwrap().contains("no-such-secret"), "{prod}");
    assert_eq!(find(&items, "skill/style", "Resolved")["status"], "True");
    let reachable = find(&items, "agent/fine", "Reachable");
    assert_eq!((&reachable["status"], &reachable["reason"]), (&json!("True"), &json!("Listed")));
    assert_eq!(find(&items, "agent/fine", "Ready")["status"], "True");
    let stuck = find(&items, "agent/stuck", "Ready");
    assert_eq!((&stuck["status"], &stuck["reason"]), (&json!("False"), &json!("DependencyNotReady")));
    assert!(stuck["message"].as_str().unwrap().contains("mcpserver/missing"), "{stuck}");
    let asked = llm.requests();
    assert_eq!(asked.len(), 1, "one endpoint, asked once for both agents");
    assert_eq!((asked[0].method.as_str(), asked[0].path.as_str()), ("GET", "/v1/models"), "no tokens spent");
    assert_eq!(asked[0].header("authorization"), Some("Bearer sk-test-key"));

    let (_, table, _) = run(&sandbox, &llm, &["get", "mcpservers"]);
    let line = |name: &str| table.lines().find(|l| l.starts_with(name)).unwrap_or_default().to_owned();
    assert!(table.starts_with("NAME") && table.lines().next().unwrap().contains("READY"), "{table}");
    assert!(line("good ").contains("True") && line("missing ").contains("False"), "{table}");
    let (_, described, _) = run(&sandbox, &llm, &["describe", "mcpserver", "missing"]);
    assert!(described.contains("Conditions:") && described.contains("StartFailed"), "{described}");

    // The key is refused now: the model is named unreachable for that reason, and the agent
    // that was ready is not.
    let (code, out, _) = run(&sandbox, &llm, &["status", "-o", "json"]);
    assert_eq!(code, 1);
    let items = conditions(&out);
    let refused = find(&items, "agent/fine", "Reachable");
    assert_eq!((&refused["status"], &refused["reason"]), (&json!("False"), &json!("AuthFailed")), "{refused}");
    assert!(!out.contains("sk-test-key"), "the key is never shown");
    assert_eq!(find(&items, "agent/fine", "Ready")["status"], "False");
}

#[test]
fn apply_wait_waits_for_ready_or_names_what_is_not() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sandbox = Sandbox::new();
    let llm = runtime.block_on(ScriptedServer::start((0..20).map(|_| models())));
    let project = sandbox.project("agents", "agents", &[("good.yaml", &good())]);
    let (code, _, err) = run(&sandbox, &llm, &["apply", "-f", project.to_str().unwrap(), "--wait"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("3 resources ready"), "{err}");

    let project = sandbox.project("agents", "agents", &[("good.yaml", &good()), ("broken.yaml", &broken())]);
    let started = Instant::now();
    let (code, _, err) =
        run(&sandbox, &llm, &["apply", "-f", project.to_str().unwrap(), "--wait", "--wait-timeout", "3s"]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("not ready after 3s") && err.contains("mcpserver/missing: Ready=False"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30), "the wait ends at its timeout");
}

/// A server probes by itself soon after an apply; `status` shows what it found.
#[test]
fn a_server_probes_after_an_apply_and_status_reads_what_it_found() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let llm = runtime.block_on(ScriptedServer::start((0..20).map(|_| models())));
    let dir = tempfile::tempdir().unwrap();
    let base_url = format!("{}/v1", llm.base_url());
    let env = [
        ("STIGMER_LLM_PROVIDER", "openai"),
        ("STIGMER_LLM_BASE_URL", base_url.as_str()),
        ("STIGMER_LLM_MODEL", "gpt-4o"),
        ("OPENAI_API_KEY", "sk-test-key"),
    ];
    let server = support::Server::launch(
        &dir.path().join("server"),
        "127.0.0.1:0",
        &["--workers", "0", "--health-interval", "1h"],
        &env,
    );
    let editor = server.token("acme", "editor", "ana");
    let home = dir.path().join("home");
    let project = dir.path().join("agents");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(project.join("stigmer.yaml"), "name: agents\n").unwrap();
    std::fs::write(project.join("good.yaml"), good()).unwrap();
    std::fs::write(project.join("broken.yaml"), broken()).unwrap();
    let (ok, _, err) = output(server.cli(&editor, &home), &["apply", "-f", project.to_str().unwrap()]);
    assert!(ok, "{err}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let items = loop {
        let (_, out, err) = output(server.cli(&editor, &home), &["status", "-o", "json"]);
        if let Ok(listed) = serde_json::from_str::<Value>(&out)
            && listed["items"].as_array().is_some_and(|items| items.iter().any(|c| c["resource"] == "agent/stuck"))
        {
            break conditions(&out);
        }
        assert!(Instant::now() < deadline, "the server never probed: {out} {err}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(find(&items, "mcpserver/good", "Ready")["status"], "True");
    assert_eq!(find(&items, "mcpserver/missing", "Ready")["reason"], "StartFailed");
    assert_eq!(find(&items, "agent/fine", "Reachable")["status"], "True");
    let (ok, _, err) = output(server.cli(&editor, &home), &["status"]);
    assert!(!ok, "status exits non-zero: {err}");
}
