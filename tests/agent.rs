//! `stigmer agent execute` end to end, offline: a scripted LLM server speaking the real
//! OpenAI-compatible wire format (real HTTP, real SSE), the MCP test server built from
//! `examples/mcp_test_server.rs` (rmcp's server side) over stdio, a skill and a sub-agent, on
//! both backends.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test that cannot set up fails loudly")]

use serde_json::Value;
use support::Sandbox;

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

/// `stigmer agent execute ARGS` with every agent pointed at the scripted server.
fn execute(sandbox: &Sandbox, server: &ScriptedServer, args: &[&str]) -> (i32, String, String) {
    run_with_llm(sandbox, server, &[&["agent", "execute"], args].concat())
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
    let skill_dir = sandbox.home().join("workspaces").join(id).join("skills/house-style");
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

    // An MCP server that cannot start: its name and the reason, and no run is recorded.
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
    assert_eq!(listed.len(), 1, "only the unreachable-model run was recorded: {listed:?}");
}
