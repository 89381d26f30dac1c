//! Renames that keep history: `moved` in `stigmer.yaml` (or `metadata.previous_names`) makes
//! the plan rename instead of deleting and creating; the agent's revisions, executions and
//! sessions follow; a reference to the old name is refused; the manifest round-trips.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test that cannot set up fails loudly")]

use serde_json::Value;
use support::Sandbox;

#[macro_use]
mod support;

#[path = "support/llm.rs"]
#[allow(dead_code, reason = "shared with the crate's unit tests, which use more of it")]
mod llm;

use llm::{Reply, ScriptedServer, openai_text};

const MODEL: &str = "qwen2.5-coder:7b";

fn agent(name: &str, extra_metadata: &str) -> String {
    format!(
        "apiVersion: agentic.stigmer.ai/v1
kind: Agent
metadata:
  name: {name}
{extra_metadata}spec:
  instructions: Be brief.
"
    )
}

/// A project `p` (set `team`) with `stigmer.yaml` holding `project` and the given manifests.
fn project(sandbox: &Sandbox, project: &str, manifests: &str) -> String {
    let dir = sandbox.dir.path().join("p");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("stigmer.yaml"), project).unwrap();
    std::fs::write(dir.join("agents.yaml"), manifests).unwrap();
    dir.to_str().unwrap().to_owned()
}

fn execute(sandbox: &Sandbox, llm: &ScriptedServer, agent: &str, message: &str) -> (i32, String, String) {
    let base_url = format!("STIGMER_LLM_BASE_URL={}/v1", llm.base_url());
    let model = format!("STIGMER_LLM_MODEL={MODEL}");
    let settings = ["--env", "STIGMER_LLM_PROVIDER=ollama", "--env", &base_url, "--env", &model];
    let args = [&["agent", "execute", agent, message, "--session", "chat"][..], &settings].concat();
    sandbox.run(&args)
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn a_rename_keeps_the_history_executions_and_sessions_of_the_old_name(sandbox: &Sandbox) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let llm = runtime.block_on(ScriptedServer::start([
        Reply::sse(openai_text(MODEL, &["Hello Ada."], (10, 2))),
        Reply::sse(openai_text(MODEL, &["You are Ada."], (20, 3))),
    ]));
    let dir = project(sandbox, "name: team\n", &agent("scout", ""));
    let (code, _, err) = sandbox.run(&["apply", "-f", &dir]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = execute(sandbox, &llm, "scout", "I am Ada.");
    assert_eq!(code, 0, "{err}");

    let moved = "name: team\nmoved:\n  - from: agent/scout\n    to: agent/ranger\n";
    let dir = project(sandbox, moved, &agent("ranger", ""));
    let (code, diff, _) = sandbox.run(&["diff", "-f", &dir]);
    assert_eq!(code, 1, "a rename is a change: {diff}");
    assert!(diff.contains("agent/scout (generation 1)") && diff.contains("agent/ranger (renamed)"), "{diff}");
    let (code, out, err) = sandbox.run(&["apply", "-f", &dir]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("agent/ranger renamed from scout"), "{out}");
    assert!(out.contains("0 created, 0 updated, 1 renamed, 0 deleted"), "not a delete and a create: {out}");

    let (_, names, _) = sandbox.run(&["get", "agents", "-o", "name"]);
    assert_eq!(names.trim(), "agent/ranger");
    let (_, history, _) = sandbox.run(&["history", "agent", "ranger", "-o", "json"]);
    let actions: Vec<String> =
        json(&history)["items"].as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap().to_owned()).collect();
    assert_eq!(actions, ["created", "renamed"], "the old name's history came along");
    let (_, executions, _) = sandbox.run(&["execution", "list", "-o", "json"]);
    assert_eq!(json(&executions)["items"][0]["target"], "agent/ranger", "its executions came along");
    let (_, session, _) = sandbox.run(&["get", "session", "chat", "-o", "json"]);
    assert_eq!(json(&session)["spec"]["agentRef"], "ranger", "its session came along");

    // The session goes on under the new name, with what was said under the old one.
    let (code, out, err) = execute(sandbox, &llm, "ranger", "Who am I?");
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("You are Ada."), "{out}");
    let said: Vec<String> = llm.requests()[1].json()["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["content"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(said, ["Be brief.", "I am Ada.", "Hello Ada.", "Who am I?"]);

    // Applying the same files again changes nothing: the rename is done.
    let (code, out, err) = sandbox.run(&["apply", "-f", &dir]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("agent/ranger unchanged"), "{out}");
}

fn a_reference_to_an_old_name_is_refused_and_previous_names_round_trip(sandbox: &Sandbox) {
    let dir = project(sandbox, "name: team\n", &agent("scout", ""));
    assert_eq!(sandbox.run(&["apply", "-f", &dir]).0, 0);
    let instance = "---
apiVersion: agentic.stigmer.ai/v1
kind: AgentInstance
metadata:
  name: scout-prod
spec:
  agentRef: scout
";
    let renamed = agent("ranger", "  previous_names: [scout]\n");
    let dir = project(sandbox, "name: team\n", &format!("{renamed}{instance}"));
    let (code, _, err) = sandbox.run(&["apply", "-f", &dir]);
    assert_ne!(code, 0, "a reference to the old name: {err}");
    assert!(
        err.contains("agentinstance/scout-prod references agent \"scout\", which is renamed to \"ranger\""),
        "{err}"
    );
    assert!(err.contains("hint: refer to it by its new name: ranger"), "{err}");
    let (_, names, _) = sandbox.run(&["get", "agents", "-o", "name"]);
    assert_eq!(names.trim(), "agent/scout", "nothing was half-written");

    let dir = project(
        sandbox,
        "name: team\n",
        &format!("{renamed}{}", instance.replace("agentRef: scout", "agentRef: ranger")),
    );
    let (code, out, err) = sandbox.run(&["apply", "-f", &dir]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("agent/ranger renamed from scout"), "{out}");
    let (code, exported, err) = sandbox.run(&["export", "agents"]);
    assert_eq!(code, 0, "{err}");
    assert!(exported.contains("previousNames:") && exported.contains("- scout"), "{exported}");
    let other = sandbox.another();
    let file = other.dir.path().join("exported.yaml");
    std::fs::write(&file, &exported).unwrap();
    let (code, _, err) = other.run(&["import", "-f", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (_, again, _) = other.run(&["export", "agents"]);
    assert_eq!(again, exported, "export → import → export is stable");
}

on_both_backends!(
    a_rename_keeps_the_history_executions_and_sessions_of_the_old_name,
    a_reference_to_an_old_name_is_refused_and_previous_names_round_trip,
);
