//! Manifests in the shape of Stigmer's cloud API, as people bring them: `snake_case` fields,
//! `metadata.visibility` and `metadata.org`, `spec.env`, tool approval overrides, references
//! as `{kind, org, slug}` objects, `agent_id`, and kinds this runtime does not have. Each is
//! validated, applied, shown, exported and imported through the built binary, on the local store
//! and on a real server; and every read verb prints the same output formats.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test that cannot set up fails loudly")]

use std::fs;
use std::io::Write as _;
use std::process::Stdio;

use serde_json::{Value, json};
use support::Sandbox;

#[macro_use]
mod support;

#[path = "support/llm.rs"]
#[allow(dead_code, reason = "shared with the crate's unit tests, which use more of it")]
mod llm;

#[path = "support/mcp_server.rs"]
mod mcp_server;

use llm::{Reply, ScriptedCall, ScriptedServer, openai_text, openai_tool_calls};

/// The org every sandbox acts in (the remote one's token is for it).
const ORG: &str = "test";

const MODEL: &str = "qwen2.5-coder:7b";

/// A project in Stigmer's `snake_case` shape, with each of its fields this runtime reads.
fn stigmer_shaped() -> String {
    format!(
        "apiVersion: agentic.stigmer.ai/v1
kind: Environment
metadata:
  name: prod
  org: {ORG}
  visibility: visibility_org
spec:
  data:
    REGION: {{value: eu-west-1}}
---
apiVersion: agentic.stigmer.ai/v1
kind: Skill
metadata:
  name: calc
  visibility: VISIBILITY_PUBLIC
spec:
  skill_md: Add numbers carefully.
---
apiVersion: agentic.stigmer.ai/v1
kind: McpServer
metadata:
  name: github
  visibility: private
spec:
  http:
    url: https://mcp.example.com/github
    headers:
      Authorization: Bearer ${{GITHUB_TOKEN}}
  env:
    GITHUB_TOKEN:
      description: the token the server is called with
      is_secret: true
      default_value: not-a-real-token
---
apiVersion: agentic.stigmer.ai/v1
kind: Agent
metadata:
  name: bot
  org: {ORG}
spec:
  instructions: Help.
  skill_refs:
    - {{kind: skill, org: {ORG}, slug: calc}}
  mcp_server_usages:
    - mcp_server_ref: {{kind: mcp_server, org: {ORG}, slug: github}}
      enabled_tools: [create_issue, search]
      tool_approval_overrides:
        - {{tool_name: create_issue, requires_approval: true, message: opens an issue in public}}
        - {{tool_name: search, requires_approval: false}}
  env:
    REGION: {{description: where tickets are filed}}
    DEBUG: {{optional: true}}
  sub_agents:
    - name: helper
      agent_ref: {{kind: agent, org: {ORG}, slug: helper}}
---
apiVersion: agentic.stigmer.ai/v1
kind: Agent
metadata: {{name: helper}}
spec: {{instructions: Assist.}}
---
apiVersion: agentic.stigmer.ai/v1
kind: AgentInstance
metadata:
  name: bot-prod
spec:
  agent_ref: {{kind: agent, org: {ORG}, slug: bot}}
  environment_refs:
    - {{kind: environment, org: {ORG}, slug: prod}}
"
    )
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn stigmer_shapes_apply_show_and_round_trip(sandbox: &Sandbox) {
    let project = sandbox.project("shaped", "shaped", &[("all.yaml", &stigmer_shaped())]);
    let project = project.to_str().unwrap();
    let (code, out, err) = sandbox.run(&["validate", "-f", project]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = sandbox.run(&["apply", "-f", project]);
    assert_eq!(code, 0, "{err}");

    let get = |kind: &str, name: &str| {
        let (code, out, err) = sandbox.run(&["get", kind, name, "-o", "json"]);
        assert_eq!(code, 0, "{err}");
        json_of(&out)
    };
    let environment = get("environment", "prod");
    assert_eq!(environment["metadata"]["visibility"], "org", "the API spelling is stored in the short one");
    assert_eq!(environment["metadata"]["org"], ORG);
    assert_eq!(get("skill", "calc")["metadata"]["visibility"], "public");
    let server = get("mcpserver", "github");
    assert_eq!(
        server["spec"]["env"]["GITHUB_TOKEN"],
        json!({"description": "the token the server is called with", "isSecret": true, "defaultValue": "not-a-real-token"})
    );
    let agent = get("agent", "bot");
    assert_eq!(
        agent["spec"]["mcpServerUsages"][0]["toolApprovalOverrides"],
        json!([
            {"toolName": "create_issue", "requiresApproval": true, "message": "opens an issue in public"},
            {"toolName": "search"},
        ])
    );
    assert_eq!(
        agent["spec"]["env"],
        json!({"REGION": {"description": "where tickets are filed"}, "DEBUG": {"optional": true}})
    );
    assert_eq!(agent["spec"]["skillRefs"][0], json!({"kind": "skill", "name": "calc", "org": ORG}));
    let instance = get("agentinstance", "bot-prod");
    assert_eq!(instance["spec"]["agentRef"], json!({"kind": "agent", "name": "bot", "org": ORG}));
    assert_eq!(instance["spec"]["environmentRefs"][0], json!({"kind": "environment", "name": "prod", "org": ORG}));

    // References in the API's shape hold like names: the skill cannot go while the agent needs it.
    let (code, _, err) = sandbox.run(&["delete", "skill", "calc"]);
    assert_ne!(code, 0);
    assert!(err.contains("still referenced by agent/bot"), "{err}");

    // Export, import elsewhere, export again: the same bytes, and nothing left to apply.
    let (code, exported, err) = sandbox.run(&["export", "--all"]);
    assert_eq!(code, 0, "{err}");
    let other = sandbox.another();
    let file = other.dir.path().join("all.yaml");
    fs::write(&file, &exported).unwrap();
    let (code, _, err) = other.run(&["import", "-f", file.to_str().unwrap(), "--set", "shaped"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(other.run(&["export", "--all"]).1, exported);
    let (code, out, err) = other.run(&["diff", "-f", project]);
    assert_eq!(code, 0, "the imported store holds what the manifests say: {out}{err}");
}

fn a_kind_of_stigmers_cloud_is_refused_and_nothing_is_written(sandbox: &Sandbox) {
    let channel = "apiVersion: agentic.stigmer.ai/v1\nkind: AgentChannel\nmetadata: {name: slack}\nspec: {}\n";
    let project = sandbox.project("cloud", "cloud", &[("all.yaml", &stigmer_shaped()), ("channel.yaml", channel)]);
    let (code, _, err) = sandbox.run(&["apply", "-f", project.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("kind \"AgentChannel\" exists in Stigmer's cloud but is not supported by this runtime"),
        "{err}"
    );
    assert!(err.contains("channel.yaml:2:7"), "{err}");
    assert!(
        err.contains(
            "the supported kinds are Environment, Skill, McpServer, Agent, AgentInstance, Workflow, WorkflowInstance"
        ),
        "{err}"
    );
    assert!(!err.contains("did you mean"), "AgentChannel is no typo of Agent: {err}");
    assert_eq!(sandbox.commits(), 0, "all or nothing: the valid files were not applied either");
}

fn get_of_one_resource_is_the_object_and_of_many_a_list(sandbox: &Sandbox) {
    assert_eq!(sandbox.run(&["apply", "-f", "examples/"]).0, 0);
    let (_, listed, _) = sandbox.run(&["get", "-o", "json"]);
    let listed = json_of(&listed);
    assert_eq!((listed["apiVersion"].as_str(), listed["kind"].as_str()), (Some("v1"), Some("List")));
    let items = listed["items"].as_array().unwrap();
    let mut kinds: Vec<&str> = items.iter().map(|item| item["kind"].as_str().unwrap()).collect();
    kinds.dedup();
    assert_eq!(kinds, ["Environment", "Skill", "McpServer", "Agent", "AgentInstance", "Workflow", "WorkflowInstance"]);
    for item in items {
        let kind = item["kind"].as_str().unwrap();
        let name = item["metadata"]["name"].as_str().unwrap();
        // What `stigmer get KIND NAME -o json | jq .metadata.name` prints.
        let (code, one, err) = sandbox.run(&["get", kind, name, "-o", "json"]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(json_of(&one)["metadata"]["name"], name, "{kind}/{name}");
        let (_, yaml, _) = sandbox.run(&["get", kind, name, "-o", "yaml"]);
        assert!(yaml.starts_with("apiVersion: agentic.stigmer.ai/v1\n") && !yaml.contains("\n---"), "{yaml}");
    }
    let (_, agents, _) = sandbox.run(&["get", "agents", "-o", "yaml"]);
    assert!(agents.matches("kind: Agent\n").count() >= 2 && agents.contains("\n---\n"), "a stream: {agents}");
    let (_, names, _) = sandbox.run(&["get", "agents", "-o", "name"]);
    assert!(names.lines().all(|line| line.starts_with("agent/")), "{names}");
}

/// `stigmer ARGS -o FORMAT` printed what FORMAT promises.
fn assert_format(sandbox: &Sandbox, args: &[&str], listing: bool) {
    for format in ["table", "wide", "yaml", "json", "name"] {
        let (code, out, err) = sandbox.run(&[args, &["-o", format]].concat());
        assert_eq!(code, 0, "stigmer {} -o {format}: {err}", args.join(" "));
        match format {
            "json" => {
                let value = json_of(&out);
                if listing {
                    assert_eq!(value["kind"], "List", "stigmer {} -o json: {out}", args.join(" "));
                    assert!(value["items"].is_array());
                } else {
                    assert!(value.is_object() && value.get("items").is_none(), "stigmer {}: {out}", args.join(" "));
                }
            }
            "yaml" => {
                assert!(!out.trim().is_empty() && !out.starts_with('{'), "stigmer {} -o yaml: {out}", args.join(" "));
            }
            _ => assert!(!out.trim().is_empty(), "stigmer {} -o {format} printed nothing", args.join(" ")),
        }
    }
}

fn every_read_verb_takes_every_output_format(sandbox: &Sandbox) {
    assert_eq!(sandbox.run(&["apply", "-f", "examples/"]).0, 0);
    let mut secret = sandbox.command().args(["secret", "set", "api-key"]).stdin(Stdio::piped()).spawn().unwrap();
    secret.stdin.take().unwrap().write_all(b"sk-output-test").unwrap();
    assert!(secret.wait().unwrap().success());
    let flow = sandbox.dir.path().join("flow.yaml");
    fs::write(&flow, "document: {dsl: 1.0.0, namespace: t, name: t, version: 0.1.0}\ndo:\n  - a: {set: {x: 1}}\n")
        .unwrap();
    let (code, report, err) = sandbox.run(&["workflow", "run", "-f", flow.to_str().unwrap(), "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let id = json_of(&report)["id"].as_str().unwrap().to_owned();

    for (args, listing) in [
        (&["get"][..], true),
        (&["get", "agents"][..], true),
        (&["get", "agent", "support-bot"][..], false),
        (&["describe", "agent", "support-bot"][..], false),
        (&["history", "agent", "support-bot"][..], true),
        (&["execution", "list"][..], true),
        (&["execution", "get", &id][..], false),
        (&["execution", "events", &id][..], true),
        (&["audit"][..], true),
        (&["secret", "list"][..], true),
        (&["secret", "get", "api-key"][..], false),
        (&["context", "list"][..], true),
        (&["context", "show"][..], false),
        (&["whoami"][..], false),
    ] {
        assert_format(sandbox, args, listing);
    }
    for verb in [&["audit"][..], &["secret", "list"], &["whoami"], &["execution", "list"], &["execution", "get", &id]] {
        let (code, _, err) = sandbox.run(&[verb, &["--json"]].concat());
        assert_eq!(code, 2, "no verb keeps its own --json: stigmer {}", verb.join(" "));
        assert!(err.contains("--json"), "{err}");
    }
    sandbox.assert_stored_nowhere(&["sk-output-test"]);
}

fn a_required_variable_no_environment_gives_warns_then_fails_the_run(sandbox: &Sandbox) {
    let manifests = "apiVersion: agentic.stigmer.ai/v1
kind: Environment
metadata: {name: dev}
spec: {data: {REGION: {value: eu}}}
---
apiVersion: agentic.stigmer.ai/v1
kind: McpServer
metadata: {name: tickets}
spec:
  stdio: {command: /bin/true}
  env: {TICKETS_TOKEN: {description: the ticket system's token}, TICKETS_URL: {}}
---
apiVersion: agentic.stigmer.ai/v1
kind: Agent
metadata: {name: triage}
spec:
  instructions: Triage.
  mcp_server_usages: [{mcp_server_ref: tickets}]
  env:
    REGION: {description: where tickets are filed}
    MODE: {default_value: careful}
    TICKETS_URL: {default_value: 'https://tickets.example.com'}
---
apiVersion: agentic.stigmer.ai/v1
kind: AgentInstance
metadata: {name: triage-dev}
spec: {agent_ref: triage, environment_refs: [dev]}
";
    let project = sandbox.project("vars", "vars", &[("all.yaml", manifests)]);
    let (code, _, err) = sandbox.run(&["validate", "-f", project.to_str().unwrap()]);
    assert_eq!(code, 0, "a warning, not an error: {err}");
    let warning = "warning: agentinstance/triage-dev: mcpserver/tickets requires TICKETS_TOKEN, and none of its environments (dev) gives it";
    assert!(err.contains(warning), "{err}");
    assert!(
        !err.contains("requires REGION") && !err.contains("requires MODE") && !err.contains("requires TICKETS_URL"),
        "given, defaulted, or defaulted by the agent for its server: {err}"
    );

    // An instance whose environment only the backend holds is not judged; the one after it still is.
    let shared = "apiVersion: agentic.stigmer.ai/v1\nkind: Environment\nmetadata: {name: shared}\nspec: {}\n";
    assert_eq!(sandbox.run(&["apply", "-f", sandbox.project("s", "s", &[("s.yaml", shared)]).to_str().unwrap()]).0, 0);
    let unjudged = "apiVersion: agentic.stigmer.ai/v1
kind: AgentInstance
metadata: {name: triage-shared}
spec: {agent_ref: triage, environment_refs: [shared]}
---
";
    let project = sandbox.project("vars", "vars", &[("all.yaml", &format!("{unjudged}{manifests}"))]);
    let (code, _, err) = sandbox.run(&["apply", "-f", project.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(warning) && !err.contains("triage-shared:"), "{err}");
    let (code, _, err) = sandbox.run(&["agent", "execute", "triage-dev", "hello"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(
            "TICKETS_TOKEN (the ticket system's token) is required and no environment, --env or --secret gives it"
        ) && !err.contains("TICKETS_URL"),
        "the run agrees with the warning: {err}"
    );
}

fn an_agent_instance_names_its_agent_by_id(sandbox: &Sandbox) {
    let agent = "apiVersion: agentic.stigmer.ai/v1\nkind: Agent\nmetadata: {name: bot}\nspec: {instructions: Help.}\n";
    assert_eq!(sandbox.run(&["apply", "-f", sandbox.project("a", "a", &[("a.yaml", agent)]).to_str().unwrap()]).0, 0);
    let (_, stored, _) = sandbox.run(&["get", "agent", "bot", "-o", "json"]);
    let id = json_of(&stored)["status"]["uid"].as_str().unwrap().to_owned();
    let instance = |id: &str| {
        format!(
            "apiVersion: agentic.stigmer.ai/v1\nkind: AgentInstance\nmetadata: {{name: bot-prod}}\nspec: {{agent_id: {id}}}\n"
        )
    };
    let project = sandbox.project("i", "i", &[("i.yaml", &instance(&id))]);
    let (code, _, err) = sandbox.run(&["apply", "-f", project.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (_, shown, _) = sandbox.run(&["get", "agentinstance", "bot-prod", "-o", "json"]);
    assert_eq!(json_of(&shown)["spec"], json!({"agentRef": "bot"}), "stored as the reference by name");
    assert_eq!(sandbox.run(&["diff", "-f", project.to_str().unwrap()]).0, 0, "the same file changes nothing");

    let unknown = sandbox.project("u", "u", &[("u.yaml", &instance("0000-no-such-agent"))]);
    let (code, _, err) = sandbox.run(&["apply", "-f", unknown.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("agentinstance/bot-prod refers to agent id \"0000-no-such-agent\", which no stored agent has"),
        "{err}"
    );
    assert!(err.contains("u.yaml:4:"), "{err}");
}

on_both_backends!(
    stigmer_shapes_apply_show_and_round_trip,
    a_kind_of_stigmers_cloud_is_refused_and_nothing_is_written,
    get_of_one_resource_is_the_object_and_of_many_a_list,
    every_read_verb_takes_every_output_format,
    a_required_variable_no_environment_gives_warns_then_fails_the_run,
    an_agent_instance_names_its_agent_by_id,
);

#[test]
fn locally_metadata_org_is_stored_as_written() {
    let sandbox = Sandbox::new();
    let manifest =
        "apiVersion: agentic.stigmer.ai/v1\nkind: Skill\nmetadata: {name: calc, org: acme}\nspec: {skillMd: x}\n";
    let project = sandbox.project("p", "p", &[("s.yaml", manifest)]);
    assert_eq!(sandbox.run(&["apply", "-f", project.to_str().unwrap()]).0, 0);
    assert_eq!(json_of(&sandbox.run(&["get", "skill", "calc", "-o", "json"]).1)["metadata"]["org"], "acme");
}

#[test]
fn on_a_server_another_org_is_refused_where_the_manifest_says_it() {
    let sandbox = Sandbox::remote();
    let manifests = "apiVersion: agentic.stigmer.ai/v1
kind: Skill
metadata: {name: calc, org: globex}
spec: {skillMd: x}
---
apiVersion: agentic.stigmer.ai/v1
kind: Agent
metadata: {name: bot}
spec:
  instructions: Help.
  skill_refs: [{kind: skill, org: globex, slug: calc}]
";
    let project = sandbox.project("p", "p", &[("all.yaml", manifests)]);
    let (code, _, err) = sandbox.run(&["apply", "-f", project.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("error: skill/calc is declared in org \"globex\", but this context acts in org \"test\""),
        "{err}"
    );
    assert!(err.contains("all.yaml:3:"), "{err}");
    assert!(err.contains("agent/bot refers to skill \"calc\" in org \"globex\""), "{err}");
    assert_eq!(sandbox.commits(), 0);
}

#[test]
fn the_server_itself_refuses_a_write_for_another_org() {
    // A client that skips validation still cannot write into another org through this one.
    use stigmer::backend::{ApplyBatch, Backend, BatchItem, Write};
    use stigmer::remote::{RemoteBackend, RemoteOptions};
    let sandbox = Sandbox::remote();
    let (server, token) = sandbox.remote.as_ref().unwrap();
    let options =
        RemoteOptions { endpoint: server.endpoint.clone(), token: token.clone(), org: Some(ORG.into()), ca_cert: None };
    let manifest = json!({
        "apiVersion": "agentic.stigmer.ai/v1", "kind": "Skill",
        "metadata": {"name": "calc", "org": "globex"}, "spec": {"skillMd": "x"}
    });
    let batch = |kind, name: &str, manifest: serde_json::Value| ApplyBatch {
        apply_set: None,
        items: vec![BatchItem { kind, name: name.into(), write: Write::Create { manifest: manifest.into() } }],
        dry_run: false,
        correcting: false,
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let refused =
        |batch| runtime.block_on(async { RemoteBackend::new(&options).unwrap().apply(batch).await.unwrap_err() });
    let error = refused(batch(stigmer::model::Kind::Skill, "calc", manifest));
    assert!(
        error.to_string().contains("skill/calc is declared in org globex, but this token acts in org test"),
        "{error}"
    );
    let agent = json!({
        "apiVersion": "agentic.stigmer.ai/v1", "kind": "Agent", "metadata": {"name": "bot"},
        "spec": {"instructions": "Help.", "skillRefs": [{"name": "calc", "org": "globex"}]}
    });
    let error = refused(batch(stigmer::model::Kind::Agent, "bot", agent));
    assert!(
        error.to_string().contains("agent/bot refers to calc in org globex, but this token acts in org test"),
        "{error}"
    );
    // A write that names an org where the org store cannot read it is refused, not waved through.
    let unreadable = json!({"kind": "Skill", "metadata": {"name": "odd", "org": "test"}, "spec": {"orgs": 1}});
    let error = refused(batch(stigmer::model::Kind::Skill, "odd", unreadable));
    assert!(error.to_string().contains("skill/odd names an org but cannot be read to check it"), "{error}");
    assert_eq!(sandbox.commits(), 0);
}

/// An agent whose MCP servers take `${VAR}` from their `spec.env` defaults: an HTTP server's
/// header and a stdio server's environment.
fn approval_and_placeholder_manifests(http_url: &str) -> String {
    let stdio = mcp_server::test_server().display().to_string();
    format!(
        "apiVersion: agentic.stigmer.ai/v1
kind: McpServer
metadata: {{name: web}}
spec:
  http:
    url: {http_url}
    headers: {{X-Token: 'Bearer ${{WEB_TOKEN}}'}}
  env: {{WEB_TOKEN: {{default_value: token-from-env-default, is_secret: true}}}}
---
apiVersion: agentic.stigmer.ai/v1
kind: McpServer
metadata: {{name: local}}
spec:
  stdio:
    command: {stdio}
    env_placeholders: {{GREETING: '${{GREETING}}'}}
  env: {{GREETING: {{default_value: hello-from-env-default}}}}
---
apiVersion: agentic.stigmer.ai/v1
kind: Agent
metadata: {{name: careful}}
spec:
  instructions: Use your tools.
  mcp_server_usages:
    - mcp_server_ref: web
    - mcp_server_ref: local
      tool_approval_overrides:
        - {{tool_name: env, requires_approval: false}}
        - {{tool_name: echo, requires_approval: true, message: echo speaks for you}}
"
    )
}

/// The last message's content the model was sent in `request`.
fn last_result_of(request: &llm::RecordedRequest) -> String {
    request.json()["messages"].as_array().unwrap().last().unwrap()["content"].as_str().unwrap().to_owned()
}

#[test]
fn placeholders_resolve_from_spec_env_and_an_approval_gated_call_waits_for_a_person() {
    let sandbox = Sandbox::new();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut http = std::process::Command::new(mcp_server::test_server())
        .arg("--http")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut url = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(http.stdout.take().unwrap()), &mut url).unwrap();
    let project = sandbox.project("p", "p", &[("all.yaml", &approval_and_placeholder_manifests(url.trim()))]);
    assert_eq!(sandbox.run(&["apply", "-f", project.to_str().unwrap()]).0, 0);

    let call = |id: &str, name: &str, arguments: &str| {
        Reply::sse(openai_tool_calls(MODEL, &[ScriptedCall { id, name, fragments: &[arguments] }], (10, 5)))
    };
    let server = runtime.block_on(ScriptedServer::start([
        call("c1", "web__header", r#"{"name": "x-token"}"#),
        call("c2", "local__env", r#"{"name": "GREETING"}"#),
        call("c3", "local__echo", r#"{"text": "said for you"}"#),
        Reply::sse(openai_text(MODEL, &["never asked"], (1, 1))),
    ]));
    let run = sandbox
        .command()
        .env("STIGMER_LLM_PROVIDER", "ollama")
        .env("STIGMER_LLM_BASE_URL", format!("{}/v1", server.base_url()))
        .args(["agent", "execute", "careful", "go", "-o", "json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The gated call waits for a person; nothing of it runs meanwhile.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let waiting = loop {
        let (_, listed, _) = sandbox.run(&["execution", "approvals", "-o", "json"]);
        let items = json_of(&listed)["items"].as_array().cloned().unwrap_or_default();
        if let Some(first) = items.first() {
            break first.clone();
        }
        assert!(std::time::Instant::now() < deadline, "the gated call never waited: {listed}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!((&waiting["tool"], &waiting["message"]), (&"local__echo".into(), &"echo speaks for you".into()));
    let requests = server.requests();
    assert_eq!(requests.len(), 3, "the run waits at the gated call");
    let last_result = |request: usize| last_result_of(&requests[request]);
    assert_eq!(last_result(1), "Bearer token-from-env-default", "the header's ${{WEB_TOKEN}} came from spec.env");
    assert_eq!(last_result(2), "hello-from-env-default", "the stdio env's ${{GREETING}} came from spec.env");

    // Nothing was called: the log has the two results before it, not a third.
    let id = waiting["execution"].as_str().unwrap().to_owned();
    let (_, events, _) = sandbox.run(&["execution", "events", &id, "-o", "json"]);
    let results: Vec<Value> = json_of(&events)["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["event"] == "toolResult")
        .cloned()
        .collect();
    assert_eq!(results.len(), 2, "{results:?}");
    let (code, _, err) = sandbox.run(&["execution", "reject", &id, "--reason", "not now"]);
    assert_eq!(code, 0, "{err}");
    let output = run.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let requests = server.requests();
    assert!(last_result_of(&requests[3]).contains("rejected it: not now"), "the model read the refusal");
    // WEB_TOKEN is declared secret: what the run recorded masks it.
    assert!(!events.contains("token-from-env-default") && events.contains("Bearer ***"), "{events}");
    drop(http.stdin.take());
    let _ = http.wait();
}
