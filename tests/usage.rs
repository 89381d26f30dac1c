//! What agent runs spend, from the scripted LLM server's reported usage (OpenAI's wire format,
//! a quarter of each prompt reported as cached): per execution, summed by `stigmer usage`,
//! priced by `model_prices`; and the run limits that stop a run instead of letting it go on.

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

fn agent(name: &str, limits: &str) -> String {
    format!(
        "---
apiVersion: agentic.stigmer.ai/v1
kind: Agent
metadata:
  name: {name}
spec:
  instructions: Count.
  mcp_server_usages:
    - mcp_server_ref: tools
{limits}"
    )
}

fn manifests() -> String {
    let server = mcp_server::test_server().display().to_string();
    format!(
        "apiVersion: agentic.stigmer.ai/v1
kind: McpServer
metadata:
  name: tools
spec:
  stdio:
    command: {server}
  defaultEnabledTools: [add]
{}{}{}{}---
apiVersion: agentic.stigmer.ai/v1
kind: AgentInstance
metadata:
  name: counter-once
spec:
  agent_ref: counter
  max_turns: 1
",
        agent("counter", ""),
        agent("short", "  max_turns: 1\n"),
        agent("frugal", "  max_tokens: 20\n"),
        agent("cheap", "  max_cost: 0.01\n"),
    )
}

/// A tool call (10 tokens in, 2 of them cached; 5 out), then an answer (20 in, 5 cached; 4 out).
fn script(runtime: &tokio::runtime::Runtime) -> ScriptedServer {
    let add = ScriptedCall { id: "c1", name: "tools__add", fragments: &[r#"{"a": 2, "b": 3}"#] };
    runtime.block_on(ScriptedServer::start([
        Reply::sse(openai_tool_calls(MODEL, &[add], (10, 5))),
        Reply::sse(openai_text(MODEL, &["Five."], (20, 4))),
    ]))
}

fn execute(sandbox: &Sandbox, llm: &ScriptedServer, agent: &str) -> (i32, String, String) {
    let output = sandbox
        .command()
        .env("STIGMER_LLM_PROVIDER", "ollama")
        .env("STIGMER_LLM_BASE_URL", format!("{}/v1", llm.base_url()))
        .env("STIGMER_LLM_MODEL", MODEL)
        .args(["agent", "execute", agent, "Add 2 and 3.", "-o", "json"])
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn set_up() -> Sandbox {
    let sandbox = Sandbox::new();
    let project = sandbox.project("agents", "agents", &[("agents.yaml", &manifests())]);
    let (code, _, err) = sandbox.run(&["apply", "-f", project.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    std::fs::create_dir_all(sandbox.home()).unwrap();
    std::fs::write(
        sandbox.home().join("config.yaml"),
        "model_prices:\n  qwen2.5-coder: {input: 1000, output: 2000, cached: 500}\n",
    )
    .unwrap();
    sandbox
}

#[test]
fn usage_is_recorded_per_execution_summed_and_priced() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sandbox = set_up();
    let llm = script(&runtime);
    let (code, out, err) = execute(&sandbox, &llm, "counter");
    assert_eq!(code, 0, "{err}");
    let id = serde_json::from_str::<Value>(&out).unwrap()["id"].as_str().unwrap().to_owned();

    // 23 fresh input tokens at 1000, 7 cached at 500, 9 output at 2000, per million.
    let (_, got, _) = sandbox.run(&["execution", "get", &id]);
    assert!(got.contains("Usage:     2 turns, 30 in (7 cached), 9 out tokens; cost 0.0445"), "{got}");
    let (_, events, _) = sandbox.run(&["execution", "events", &id, "-o", "json"]);
    let events: Value = serde_json::from_str(&events).unwrap();
    let cached: Vec<u64> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "assistantMessage")
        .map(|e| e["cachedTokens"].as_u64().unwrap())
        .collect();
    assert_eq!(cached, [2, 5], "each turn records the provider's cached count");

    let (code, usage, err) = sandbox.run(&["usage", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let usage: Value = serde_json::from_str(&usage).unwrap();
    let row = &usage["items"][0];
    assert_eq!(row["name"], "agent/counter");
    assert_eq!(
        (&row["executions"], &row["turns"], &row["input"], &row["cached"], &row["output"]),
        (&1.into(), &2.into(), &30.into(), &7.into(), &9.into())
    );
    assert!((row["cost"].as_f64().unwrap() - 0.0445).abs() < 1e-9, "{row}");
    let (_, by_model, _) = sandbox.run(&["usage", "--by", "model"]);
    assert!(by_model.contains(MODEL) && by_model.contains("0.0445"), "{by_model}");
    let (_, wide, _) = sandbox.run(&["execution", "list", "-o", "wide"]);
    assert!(wide.contains("TOKENS") && wide.contains(" 39 ") && wide.contains("0.0445"), "{wide}");
}

#[test]
fn each_run_limit_stops_the_run_with_a_clear_error() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sandbox = set_up();
    for (agent, message, requests) in [
        ("short", "limit exceeded: maxTurns 1 (spent 1 turns)", 1),
        ("frugal", "limit exceeded: maxTokens 20 (spent 39 tokens)", 2),
        ("cheap", "limit exceeded: maxCost 0.01 (spent 0.0190)", 1),
        ("counter-once", "limit exceeded: maxTurns 1 (spent 1 turns)", 1),
    ] {
        let llm = script(&runtime);
        let (code, _, err) = execute(&sandbox, &llm, agent);
        assert_ne!(code, 0, "{agent}: {err}");
        assert!(err.contains(message), "{agent}: {err}");
        assert!(err.contains("hint:"), "{agent}: {err}");
        assert_eq!(llm.requests().len(), requests, "{agent} asked the model no more");
    }
    let (_, list, _) = sandbox.run(&["execution", "list", "-o", "json"]);
    let list: Value = serde_json::from_str(&list).unwrap();
    let faulted = list["items"].as_array().unwrap().iter().filter(|r| r["status"] == "faulted").count();
    assert_eq!(faulted, 4, "{list:#}");
}
