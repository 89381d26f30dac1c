//! `stigmer agent execute` end to end, offline: a scripted LLM server speaking the real
//! OpenAI-compatible wire format (real HTTP, real SSE), the MCP test server built from
//! `examples/mcp_test_server.rs` (rmcp's server side) over stdio, a skill and a sub-agent, on
//! both backends.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test that cannot set up fails loudly")]

use std::fs;
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
const SECRET: &str = "greeting-s3cr3t-value";

fn manifests() -> String {
    let server = mcp_server::test_server().display().to_string();
    format!(
        "apiVersion: agentic.stigmer.ai/v1
kind: Skill
metadata:
  name: house-style
spec:
  description: How answers are written here.
  skillMd: Always end with the word DONE.
---
apiVersion: agentic.stigmer.ai/v1
kind: McpServer
metadata:
  name: tools
spec:
  stdio:
    command: {server}
    envPlaceholders:
      GREETING: ${{GREETING}}
  defaultEnabledTools: [env, echo]
  envSpec:
    data:
      GREETING:
        description: what the env tool reads back
---
apiVersion: agentic.stigmer.ai/v1
kind: Agent
metadata:
  name: lead
spec:
  instructions: You lead. Use your tools.
  skillRefs: [house-style]
  mcpServerUsages:
    - mcpServerRef: tools
  subAgents:
    - name: researcher
      description: Finds numbers.
      instructions: You research.
      mcpServers: [tools]
      mcpToolSelections:
        tools:
          enabledTools: [echo]
"
    )
}

fn call(id: &str, name: &str, arguments: &str) -> Reply {
    Reply::sse(openai_tool_calls(MODEL, &[ScriptedCall { id, name, fragments: &[arguments] }], (10, 5)))
}

fn text(parts: &[&str]) -> Reply {
    Reply::sse(openai_text(MODEL, parts, (20, 4)))
}

/// `stigmer agent execute ARGS` with every agent pointed at the scripted server. The settings
/// go as the run's variables too: on a server, its workers run the agent, not this process.
fn execute(sandbox: &Sandbox, server: &ScriptedServer, args: &[&str]) -> (i32, String, String) {
    let base_url = format!("STIGMER_LLM_BASE_URL={}/v1", server.base_url());
    let model = format!("STIGMER_LLM_MODEL={MODEL}");
    let settings = ["--env", "STIGMER_LLM_PROVIDER=ollama", "--env", &base_url, "--env", &model];
    run_with_llm(sandbox, server, &[&["agent", "execute"], args, &settings].concat())
}

/// `stigmer ARGS` with every agent pointed at the scripted server.
fn run_with_llm(sandbox: &Sandbox, server: &ScriptedServer, args: &[&str]) -> (i32, String, String) {
    let output = sandbox
        .command()
        .env("STIGMER_LLM_PROVIDER", "ollama")
        .env("STIGMER_LLM_BASE_URL", format!("{}/v1", server.base_url()))
        .env("STIGMER_LLM_MODEL", MODEL)
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn an_agent_uses_an_mcp_tool_a_skill_and_a_sub_agent(sandbox: &Sandbox) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let project = sandbox.project("agents", "agents", &[("agents.yaml", &manifests())]);
    let (code, _, err) = sandbox.run(&["apply", "-f", project.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");

    let server = runtime.block_on(ScriptedServer::start([
        call("c1", "tools__env", r#"{"name": "GREETING"}"#),
        call("c2", "researcher", r#"{"message": "What is 6 times 7?"}"#),
        text(&["4", "2"]),
        text(&["The greeting is set and the answer is ", "42. DONE"]),
    ]));
    let (code, out, err) = execute(
        sandbox,
        &server,
        &[
            "lead",
            "Check the greeting, then ask the researcher.",
            "--secret",
            &format!("GREETING={SECRET}"),
            "-o",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["status"], "completed");
    assert_eq!(report["answer"], "The greeting is set and the answer is 42. DONE");
    assert_eq!(report["steps"], 3);

    let requests = server.requests();
    assert_eq!(requests.len(), 4);
    let first = requests[0].json();
    let system = first["messages"][0]["content"].as_str().unwrap();
    assert!(system.starts_with("You lead. Use your tools."), "{system}");
    assert!(system.contains("## house-style") && system.contains("Always end with the word DONE."), "{system}");
    let tools: Vec<&str> =
        first["tools"].as_array().unwrap().iter().map(|t| t["function"]["name"].as_str().unwrap()).collect();
    assert_eq!(tools, ["tools__echo", "tools__env", "researcher"], "defaultEnabledTools filter the server's tools");
    // The MCP server got the secret in its environment, and the model got the tool's result.
    let second = requests[1].json();
    let tool_result = second["messages"].as_array().unwrap().last().unwrap();
    assert_eq!((tool_result["role"].as_str(), tool_result["content"].as_str()), (Some("tool"), Some(SECRET)));
    // The sub-agent ran under its own instructions, with only the tools selected for it.
    let sub = requests[2].json();
    assert_eq!(sub["messages"][0]["content"], "You research.");
    let sub_tools: Vec<&str> =
        sub["tools"].as_array().unwrap().iter().map(|t| t["function"]["name"].as_str().unwrap()).collect();
    assert_eq!(sub_tools, ["tools__echo"]);

    // The record shows each step; the secret is masked in it.
    let id = report["id"].as_str().unwrap();
    let (_, logs, _) = sandbox.run(&["execution", "logs", id]);
    for line in ["userMessage", "toolResult lead tools__env", "userMessage lead/researcher", "answer    lead"] {
        assert!(logs.contains(line), "{line:?} in:\n{logs}");
    }
    // The skill's files were placed in the execution's workspace, and the prompt says where.
    let skill_dir = sandbox.runner_home().join("workspaces").join(id).join("skills/house-style");
    assert_eq!(std::fs::read_to_string(skill_dir.join("SKILL.md")).unwrap(), "Always end with the word DONE.");
    assert!(system.contains(&skill_dir.display().to_string()), "{system}");
    let (_, record, _) = sandbox.run(&["execution", "get", id, "-o", "json"]);
    assert!(record.contains("\"session\""));
    sandbox.assert_stored_nowhere(&[SECRET]);
}

fn a_session_continues_across_executions(sandbox: &Sandbox) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let project = sandbox.project("agents", "agents", &[("agents.yaml", &manifests())]);
    assert_eq!(sandbox.run(&["apply", "-f", project.to_str().unwrap()]).0, 0);
    let server = runtime.block_on(ScriptedServer::start([text(&["Hello Ada."]), text(&["You are Ada."])]));
    let secret = format!("GREETING={SECRET}");
    let (code, _, err) = execute(sandbox, &server, &["lead", "I am Ada.", "--session", "chat", "--secret", &secret]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = execute(sandbox, &server, &["lead", "Who am I?", "--session", "chat", "--secret", &secret]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("You are Ada."), "the answer streams first: {out}");
    let second = server.requests()[1].json();
    let said: Vec<&str> = second["messages"].as_array().unwrap().iter().filter_map(|m| m["content"].as_str()).collect();
    assert_eq!(&said[1..], ["I am Ada.", "Hello Ada.", "Who am I?"], "the session's history comes first");
    let (_, sessions, _) = sandbox.run(&["get", "sessions", "-o", "name"]);
    assert!(sessions.contains("session/chat"), "{sessions}");
}

fn a_workflow_calls_an_agent(sandbox: &Sandbox) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let project = sandbox.project("agents", "agents", &[("agents.yaml", &manifests())]);
    assert_eq!(sandbox.run(&["apply", "-f", project.to_str().unwrap()]).0, 0);
    let flow = sandbox.dir.path().join("flow.yaml");
    std::fs::write(
        &flow,
        "document: { dsl: '1.0.0', namespace: demo, name: greet, version: '0.1.0' }
do:
  - ask:
      call: agent
      with:
        agent: lead
        message: '${ \"Say hi to \" + .name }'
        env: { GREETING: hello }
  - shout:
      set: '${ ascii_upcase }'
",
    )
    .unwrap();
    let server = runtime.block_on(ScriptedServer::start([text(&["Hi Ada.", " DONE"])]));
    let (code, out, err) = run_with_llm(
        sandbox,
        &server,
        // In this process, which has the scripted model's settings (a server's workers use theirs).
        &["workflow", "run", "-f", flow.to_str().unwrap(), "--input", r#"{"name": "Ada"}"#, "-o", "json", "--local"],
    );
    assert_eq!(code, 0, "{err}\n{out}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["output"], "HI ADA. DONE");
    let request = server.only_request().json();
    assert_eq!(request["messages"].as_array().unwrap().last().unwrap()["content"], "Say hi to Ada");
}

on_both_backends!(
    an_agent_uses_an_mcp_tool_a_skill_and_a_sub_agent,
    a_session_continues_across_executions,
    a_workflow_calls_an_agent,
);

/// The errors people hit first say what to do, exit non-zero and start nothing.
#[test]
fn an_unreachable_model_a_missing_agent_and_a_broken_mcp_server_are_clear_errors() {
    let sandbox = Sandbox::new();
    let project = sandbox.project("agents", "agents", &[("agents.yaml", &manifests())]);
    assert_eq!(sandbox.run(&["apply", "-f", project.to_str().unwrap()]).0, 0);
    let secret = format!("GREETING={SECRET}");

    let (code, _, err) = sandbox.run(&["agent", "execute", "nobody", "hi"]);
    assert_eq!(code, 2);
    assert!(err.contains("agent/nobody is not stored"), "{err}");

    let (code, _, err) = sandbox.run(&["agent", "execute", "lead", "hi"]);
    assert_eq!(code, 2, "a required variable is missing: {err}");
    assert!(err.contains("GREETING") && err.contains("hint: give the missing values"), "{err}");

    // Nothing listens on port 9: the default provider is Ollama, and the hint says how to start it.
    let output = sandbox
        .command()
        .env("STIGMER_LLM_BASE_URL", "http://127.0.0.1:9/v1")
        .args(["agent", "execute", "lead", "hi", "--secret", &secret])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot reach ollama") && err.contains("ollama serve"), "{err}");
    assert!(!err.contains(SECRET));

    // An MCP server that cannot start: its name and the reason; the run is recorded as faulted
    // with why, as a server's worker records it.
    let broken = manifests().replace(&mcp_server::test_server().display().to_string(), "/no/such/mcp-server");
    let project = sandbox.project("agents", "agents", &[("agents.yaml", &broken)]);
    assert_eq!(sandbox.run(&["apply", "-f", project.to_str().unwrap()]).0, 0);
    let (code, _, err) = sandbox.run(&["agent", "execute", "lead", "hi", "--secret", &secret]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("tools") && err.contains("/no/such/mcp-server"), "{err}");
    assert!(err.contains("hint: check the server's `stdio.command`"), "{err}");
    let (_, listed, _) = sandbox.run(&["execution", "list", "-o", "json"]);
    let listed: Value = serde_json::from_str(&listed).unwrap();
    let listed = listed["items"].as_array().unwrap();
    let faulted: Vec<&str> = listed.iter().filter_map(|r| r["error"]["title"].as_str()).collect();
    assert_eq!(faulted.len(), 2, "the unreachable model and the broken server: {listed:?}");
    assert!(faulted.iter().any(|title| title.contains("/no/such/mcp-server")), "{faulted:?}");
    assert!(listed.iter().all(|r| r["status"] == "faulted"));
}

/// The `--env` flags that point a run's agents at the scripted model.
fn llm_env(llm: &ScriptedServer) -> Vec<String> {
    let settings = [
        "STIGMER_LLM_PROVIDER=ollama".to_owned(),
        format!("STIGMER_LLM_BASE_URL={}/v1", llm.base_url()),
        format!("STIGMER_LLM_MODEL={MODEL}"),
    ];
    settings.into_iter().flat_map(|setting| ["--env".to_owned(), setting]).collect()
}

/// Against a server, `agent execute` queues the run; a remote worker whose token may read no
/// resource runs it from what the execution carries (agent, skill, MCP server, sub-agent), with
/// the run's secret sealed for it alone; the CLI follows it, streaming each step.
#[test]
fn an_agent_queued_on_a_server_runs_on_a_worker_that_reads_no_resource() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = support::Server::start_on(&dir.path().join("server"), "127.0.0.1:0", &["--workers", "0"]);
    let editor = server.token("acme", "editor", "ana");
    let work = server.token("acme", "worker", "workers");
    let (home, worker_home) = (dir.path().join("home"), dir.path().join("worker-home"));
    let llm = runtime.block_on(ScriptedServer::start([
        call("c1", "tools__env", r#"{"name": "GREETING"}"#),
        call("c2", "researcher", r#"{"message": "What is 6 times 7?"}"#),
        text(&["4", "2"]),
        text(&["The greeting is set and the answer is ", "42. DONE"]),
        text(&["You asked about the greeting.", " DONE"]),
    ]));
    let project = dir.path().join("agents");
    fs::create_dir_all(&project).unwrap();
    fs::write(project.join("stigmer.yaml"), "name: agents\n").unwrap();
    fs::write(project.join("agents.yaml"), manifests()).unwrap();
    let (ok, _, err) = output(server.cli(&editor, &home), &["apply", "-f", project.to_str().unwrap()]);
    assert!(ok, "{err}");

    let secret = format!("GREETING={SECRET}");
    let mut args = vec!["agent", "execute", "lead", "Check the greeting.", "--session", "s1", "--secret", &secret];
    let env = llm_env(&llm);
    args.extend(env.iter().map(String::as_str));
    let (ok, out, err) = output(server.cli(&editor, &home), &[&args[..], &["--detach"]].concat());
    assert!(ok, "{err}");
    let id = out.trim().to_owned();
    assert!(err.contains(&format!("execution {id} queued (queue default)")), "{err}");
    assert!(llm.requests().is_empty(), "nothing ran in the CLI");

    let worker_log = dir.path().join("worker.log");
    let mut worker = server.worker(&work, &worker_home, &worker_log, &[]);
    let record = server.wait_for_status(&editor, &home, &id, "completed", Duration::from_secs(30));
    assert_eq!(record["output"]["answer"], "The greeting is set and the answer is 42. DONE");
    let requests = llm.requests();
    let system = requests[0].json()["messages"][0]["content"].as_str().unwrap().to_owned();
    assert!(system.contains("Always end with the word DONE."), "the skill came with the execution: {system}");
    let tool_result = requests[1].json()["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(tool_result["content"], SECRET, "the MCP server on the worker got the sealed secret");
    assert_eq!(requests[2].json()["messages"][0]["content"], "You research.");
    let skill = worker_home.join("workspaces").join(&id).join("skills/house-style/SKILL.md");
    assert!(skill.exists(), "the skill's files are in the worker's workspace");
    let (_, events, _) = output(server.cli(&editor, &home), &["execution", "events", &id, "-o", "json"]);
    let events: Value = serde_json::from_str(&events).unwrap();
    let claimed = events["items"].as_array().unwrap().iter().find(|e| e["event"] == "claimed").unwrap().clone();
    assert!(!claimed["worker"].as_str().unwrap().starts_with("cli-"), "a worker ran it: {claimed}");

    // Followed: the next turn of the session streams its steps here and exits 0.
    args[3] = "What did I ask?";
    let (ok, out, err) = output(server.cli(&editor, &home), &args);
    assert!(ok, "{err}");
    assert!(out.starts_with("You asked about the greeting. DONE\n"), "{out}");
    assert!(out.contains("continue with --session s1"), "{out}");
    let said: Vec<String> = llm.requests()[4].json()["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "user")
        .map(|m| m["content"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(said, ["Check the greeting.", "What did I ask?"], "the session came with the execution");
    worker.kill().unwrap();
    let _ = worker.wait();

    support::assert_nowhere_in(&server.data, &[SECRET]);
    support::assert_nowhere_in(&worker_home, &[SECRET]);
    assert!(!fs::read_to_string(&worker_log).unwrap().contains(SECRET), "not in the worker's log");
    assert!(!fs::read_to_string(&server.log).unwrap().contains(SECRET), "not in the server's log");
}

/// A worker killed in the middle of an agent's turn: the lease lapses, another worker runs the
/// turn again from its start, and the session keeps the finished attempt only.
#[test]
fn an_agent_turn_whose_worker_is_killed_runs_again_and_the_session_keeps_one() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = support::Server::start_on(&dir.path().join("server"), "127.0.0.1:0", &["--workers", "0"]);
    let editor = server.token("acme", "editor", "ana");
    let work = server.token("acme", "worker", "workers");
    let home = dir.path().join("home");
    let llm = runtime.block_on(ScriptedServer::start([
        Reply::Stall(Duration::from_mins(1)),
        text(&["Hello Ada."]),
        text(&["You are Ada."]),
    ]));
    let (ok, _, err) =
        output(server.cli(&editor, &home), &["agent", "create", "helper", "--instructions", "Be brief."]);
    assert!(ok, "{err}");
    let env = llm_env(&llm);
    let ask = |message: &'static str| {
        let mut args = vec!["agent", "execute", "helper", message, "--session", "chat"];
        args.extend(env.iter().map(String::as_str));
        args
    };
    let mut a = server.worker(&work, &dir.path().join("a"), &dir.path().join("a.log"), &[]);
    let (ok, out, err) = output(server.cli(&editor, &home), &[&ask("I am Ada.")[..], &["--detach"]].concat());
    assert!(ok, "{err}");
    let id = out.trim().to_owned();
    let user_messages = || {
        let (_, events, _) = output(server.cli(&editor, &home), &["execution", "events", &id, "-o", "json"]);
        let events: Value = serde_json::from_str(&events).unwrap();
        events["items"].as_array().unwrap().iter().filter(|e| e["event"] == "userMessage").count()
    };
    // Killed once its turn is recorded as begun and its model call is on the wire.
    let deadline = Instant::now() + Duration::from_secs(20);
    while llm.requests().is_empty() || user_messages() == 0 {
        assert!(Instant::now() < deadline, "worker a never asked the model");
        std::thread::sleep(Duration::from_millis(50));
    }
    a.kill().unwrap();
    a.wait().unwrap();
    let mut b = server.worker(&work, &dir.path().join("b"), &dir.path().join("b.log"), &[]);
    let record = server.wait_for_status(&editor, &home, &id, "completed", Duration::from_secs(30));
    assert_eq!(record["attempts"], 2, "{record:#}");
    assert_eq!(record["output"]["answer"], "Hello Ada.");
    assert_eq!(user_messages(), 2, "each attempt is in the history");

    let (ok, out, err) = output(server.cli(&editor, &home), &ask("Who am I?"));
    b.kill().unwrap();
    let _ = b.wait();
    assert!(ok, "{err}");
    assert!(out.starts_with("You are Ada."), "{out}");
    let said: Vec<String> = llm.requests()[2].json()["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["content"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(said, ["Be brief.", "I am Ada.", "Hello Ada.", "Who am I?"], "the first turn once, not twice");
}
