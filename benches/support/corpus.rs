//! The generated project both benches use: 10,000 realistic manifests in 100 files of 100
//! documents, every reference resolving within the set.

use std::fmt::{self, Write as _};
use std::fs;
use std::path::Path;

use stigmer::model::Kind;

/// Errors of the benches.
pub type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Documents per file.
pub const PER_FILE: usize = 100;

// ---------------------------------------------------------------------------------------------
// The generated project.

/// How many resources of each kind, in dependency order; each kind fills whole files.
const ENVIRONMENTS: usize = 1000;
const SKILLS: usize = 2000;
const MCP_SERVERS: usize = 1000;
const AGENTS: usize = 2500;
const AGENT_INSTANCES: usize = 1500;
const WORKFLOWS: usize = 1500;
const WORKFLOW_INSTANCES: usize = 500;
pub const TOTAL: usize =
    ENVIRONMENTS + SKILLS + MCP_SERVERS + AGENTS + AGENT_INSTANCES + WORKFLOWS + WORKFLOW_INSTANCES;

const KINDS: [(Kind, &str, usize); 7] = [
    (Kind::Environment, "environments", ENVIRONMENTS),
    (Kind::Skill, "skills", SKILLS),
    (Kind::McpServer, "mcp-servers", MCP_SERVERS),
    (Kind::Agent, "agents", AGENTS),
    (Kind::AgentInstance, "agent-instances", AGENT_INSTANCES),
    (Kind::Workflow, "workflows", WORKFLOWS),
    (Kind::WorkflowInstance, "workflow-instances", WORKFLOW_INSTANCES),
];

const TOPICS: [&str; 10] =
    ["billing", "tickets", "orders", "inventory", "search", "calendar", "crm", "docs", "payments", "shipping"];
const STAGES: [&str; 3] = ["dev", "staging", "prod"];
const MODELS: [(&str, &str); 3] =
    [("ollama", "qwen2.5-coder:7b"), ("anthropic", "claude-sonnet-4-5"), ("openai", "gpt-4o-mini")];

/// Which resources carry edited text. The n-th resource overall (in file order) is edited
/// when `n % 100 == 37`: one resource in each of the 100 files.
pub struct Revisions {
    edited: bool,
}

impl Revisions {
    pub fn none() -> Self {
        Self { edited: false }
    }

    pub fn one_percent() -> Self {
        Self { edited: true }
    }

    fn revision(&self, ordinal: usize) -> u32 {
        if self.edited && ordinal % PER_FILE == 37 { 2 } else { 1 }
    }
}

/// Writes the project (or rewrites its files); returns its size in bytes.
pub fn generate(dir: &Path, revisions: &Revisions) -> BenchResult<u64> {
    generate_scaled(dir, revisions, 1)
}

/// [`generate`] with `scale` times as many resources of every kind ([`TOTAL`] × `scale`),
/// references spread over all of them.
pub fn generate_scaled(dir: &Path, revisions: &Revisions, scale: usize) -> BenchResult<u64> {
    fs::create_dir_all(dir)?;
    let project = "# The apply set of every manifest below.\nname: bench\n";
    fs::write(dir.join("stigmer.yaml"), project)?;
    let mut bytes = project.len() as u64;
    let mut ordinal = 0;
    for (kind, sub, count) in KINDS {
        fs::create_dir_all(dir.join(sub))?;
        for file in 0..count * scale / PER_FILE {
            let mut text = String::with_capacity(PER_FILE * 1500);
            for i in file * PER_FILE..(file + 1) * PER_FILE {
                if i > file * PER_FILE {
                    text.push_str("---\n");
                }
                document(&mut text, kind, i, revisions.revision(ordinal), scale)?;
                ordinal += 1;
            }
            let path = dir.join(sub).join(format!("{sub}-{file:02}.yaml"));
            // Rewrite only what changed, as an editor would.
            if fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                fs::write(&path, &text)?;
            }
            bytes += text.len() as u64;
        }
    }
    Ok(bytes)
}

fn document(out: &mut String, kind: Kind, i: usize, rev: u32, scale: usize) -> fmt::Result {
    writeln!(out, "apiVersion: agentic.stigmer.ai/v1")?;
    match kind {
        Kind::Environment => environment(out, i, rev),
        Kind::Skill => skill(out, i, rev),
        Kind::McpServer => mcp_server(out, i, rev),
        Kind::Agent => agent(out, i, rev, scale),
        Kind::AgentInstance => agent_instance(out, i, rev, scale),
        Kind::Workflow => workflow(out, i, rev, scale),
        Kind::WorkflowInstance => workflow_instance(out, i, rev, scale),
        // Runtime kinds are never written in manifests.
        Kind::Session | Kind::AgentExecution | Kind::WorkflowExecution => Ok(()),
    }
}

fn team(i: usize) -> String {
    format!("team-{:02}", i % 40)
}

fn topic(i: usize) -> &'static str {
    TOPICS[i % TOPICS.len()]
}

fn stage(i: usize) -> &'static str {
    STAGES[i % STAGES.len()]
}

fn environment_name(i: usize) -> String {
    format!("env-{i:04}")
}

fn skill_name(i: usize) -> String {
    format!("skill-{i:04}")
}

fn mcp_server_name(i: usize) -> String {
    format!("mcp-{i:04}")
}

/// The name of the i-th generated agent.
pub fn agent_name(i: usize) -> String {
    format!("agent-{i:04}")
}

fn agent_instance_name(i: usize) -> String {
    format!("agent-{i:04}-{}", stage(i))
}

fn workflow_name(i: usize) -> String {
    format!("workflow-{i:04}")
}

/// The tools MCP server `i` offers.
fn tools(i: usize) -> [String; 3] {
    let topic = topic(i);
    [format!("search_{topic}"), format!("get_{topic}"), format!("update_{topic}")]
}

fn environment(out: &mut String, i: usize, rev: u32) -> fmt::Result {
    let (name, stage, topic, team) = (environment_name(i), stage(i), topic(i), team(i));
    writeln!(out, "kind: Environment")?;
    writeln!(out, "metadata:\n  name: {name}\n  labels:\n    stage: {stage}\n    team: {team}")?;
    writeln!(out, "spec:\n  description: {stage} settings for {team}'s {topic} services (revision {rev}).")?;
    writeln!(out, "  data:")?;
    writeln!(out, "    API_URL:\n      value: https://{topic}-{i:04}.{stage}.example.com/api/v1")?;
    writeln!(out, "      description: Base URL of the {topic} API.")?;
    writeln!(out, "    LOG_LEVEL:\n      value: {}", if stage == "prod" { "info" } else { "debug" })?;
    writeln!(out, "    REGION:\n      value: {}", ["eu-west-1", "us-east-1", "ap-south-1"][i % 3])?;
    writeln!(out, "    REQUEST_TIMEOUT_SECONDS:\n      value: \"{}\"", 10 + i % 50)?;
    writeln!(out, "    API_TOKEN:\n      secretRef: {name}-api-token\n      description: Token for the {topic} API.")?;
    // What the MCP servers' envSpecs require, so every instance has all its variables.
    writeln!(out, "    SERVICE_URL:\n      value: https://mcp.{topic}.{stage}.example.com/mcp")?;
    writeln!(out, "    SERVICE_TOKEN:\n      secretRef: {name}-service-token")?;
    if i.is_multiple_of(2) {
        writeln!(out, "    DB_PASSWORD:\n      secretRef: {name}-db-password")?;
    }
    Ok(())
}

fn skill(out: &mut String, i: usize, rev: u32) -> fmt::Result {
    let topic = topic(i);
    writeln!(out, "kind: Skill")?;
    writeln!(out, "metadata:\n  name: {}\n  labels:\n    topic: {topic}", skill_name(i))?;
    writeln!(out, "spec:\n  description: How to handle {topic} requests, playbook {i} (revision {rev}).")?;
    writeln!(out, "  tag: {}", if i.is_multiple_of(4) { "beta" } else { "stable" })?;
    writeln!(out, "  skillMd: |")?;
    writeln!(out, "    # {topic} playbook {i}")?;
    writeln!(out)?;
    writeln!(out, "    Use this playbook when a request is about {topic}. Read the whole request before")?;
    writeln!(out, "    acting, look the customer up, and check what was already tried. Never promise a")?;
    writeln!(out, "    date or an amount that the {topic} system does not confirm.")?;
    writeln!(out)?;
    writeln!(out, "    ## Steps")?;
    writeln!(out)?;
    writeln!(out, "    1. Search for the item with the customer's reference; ask for it when missing.")?;
    writeln!(out, "    2. Compare what the customer expects with what the record shows.")?;
    writeln!(out, "    3. Fix what you can within policy {}; escalate the rest with a summary.", i % 17)?;
    writeln!(out)?;
    writeln!(out, "    ## Tone")?;
    writeln!(out)?;
    writeln!(out, "    Short sentences, no jargon, no blame. End with the next step the customer can")?;
    writeln!(out, "    expect and when. Sign with the team's name, never with a person's.")?;
    Ok(())
}

fn mcp_server(out: &mut String, i: usize, rev: u32) -> fmt::Result {
    let topic = topic(i);
    let [search, get, update] = tools(i);
    writeln!(out, "kind: McpServer")?;
    writeln!(out, "metadata:\n  name: {}\n  labels:\n    topic: {topic}", mcp_server_name(i))?;
    writeln!(out, "spec:")?;
    if i.is_multiple_of(2) {
        writeln!(out, "  description: The {topic} system as a local process (revision {rev}).")?;
        writeln!(out, "  stdio:\n    command: npx")?;
        writeln!(out, "    args: [\"-y\", \"@example/mcp-server-{topic}\", \"--instance\", \"{i}\"]")?;
        writeln!(out, "    envPlaceholders:\n      SERVICE_TOKEN: ${{SERVICE_TOKEN}}")?;
        writeln!(out, "  defaultEnabledTools: [{search}, {get}, {update}]")?;
        writeln!(out, "  envSpec:\n    data:")?;
        writeln!(
            out,
            "      SERVICE_TOKEN:\n        description: Token for the {topic} system.\n        isSecret: true"
        )?;
    } else {
        writeln!(out, "  description: The {topic} system over streamable HTTP (revision {rev}).")?;
        writeln!(out, "  http:\n    url: ${{SERVICE_URL}}")?;
        writeln!(
            out,
            "    headers:\n      Authorization: Bearer ${{SERVICE_TOKEN}}\n      X-Tenant: tenant-{:02}",
            i % 50
        )?;
        writeln!(out, "    timeoutSeconds: {}", 15 + i % 4 * 15)?;
        writeln!(out, "  defaultEnabledTools: [{search}, {get}]")?;
        writeln!(out, "  envSpec:\n    data:")?;
        writeln!(out, "      SERVICE_URL:\n        description: MCP endpoint of the {topic} system.")?;
        writeln!(
            out,
            "      SERVICE_TOKEN:\n        description: Token for the {topic} system.\n        isSecret: true"
        )?;
    }
    Ok(())
}

fn agent(out: &mut String, i: usize, rev: u32, scale: usize) -> fmt::Result {
    let (topic, team) = (topic(i), team(i));
    let (provider, model) = MODELS[i % MODELS.len()];
    let first_server = i % (MCP_SERVERS * scale);
    let second_server = (i + MCP_SERVERS * scale / 2) % (MCP_SERVERS * scale);
    writeln!(out, "kind: Agent")?;
    writeln!(out, "metadata:\n  name: {}", agent_name(i))?;
    writeln!(out, "  labels:\n    team: {team}\n    tier: \"{}\"\n    topic: {topic}", 1 + i % 3)?;
    writeln!(out, "  annotations:\n    owner: {team}@example.com")?;
    writeln!(out, "spec:\n  description: Answers {topic} requests for {team} (revision {rev}).")?;
    writeln!(out, "  instructions: |")?;
    writeln!(out, "    You answer {topic} requests for {team}. Look the request up first, check the")?;
    writeln!(out, "    playbooks you have before acting, and write in the team's tone of voice.")?;
    writeln!(out, "    When money or personal data is involved, confirm with the customer before any")?;
    writeln!(out, "    change, and hand the request to a person when policy does not cover it.")?;
    writeln!(out, "    Instructions revision {rev}.")?;
    writeln!(out, "  model:\n    provider: {provider}\n    name: {model}")?;
    writeln!(out, "    temperature: 0.{}\n    maxTokens: {}", i % 8, 1024 << (i % 3))?;
    writeln!(out, "  skillRefs:")?;
    let skills = if i.is_multiple_of(3) { 3 } else { 2 };
    for k in 0..skills {
        writeln!(out, "    - {}", skill_name((i * 3 + k) % (SKILLS * scale)))?;
    }
    writeln!(out, "  mcpServerUsages:")?;
    let [search, get, _] = tools(first_server);
    writeln!(out, "    - mcpServerRef: {}\n      enabledTools: [{search}, {get}]", mcp_server_name(first_server))?;
    if i.is_multiple_of(2) {
        writeln!(out, "    - mcpServerRef: {}", mcp_server_name(second_server))?;
    }
    if i.is_multiple_of(5) {
        writeln!(out, "  subAgents:\n    - name: researcher")?;
        writeln!(out, "      description: Digs into the {topic} history of a request.")?;
        writeln!(out, "      instructions: |")?;
        writeln!(out, "        Find earlier requests like this one and summarize the three most relevant,")?;
        writeln!(out, "        with what resolved them.")?;
        writeln!(out, "      mcpServers: [{}]", mcp_server_name(first_server))?;
        writeln!(
            out,
            "      mcpToolSelections:\n        {}:\n          enabledTools: [{search}]",
            mcp_server_name(first_server)
        )?;
    }
    Ok(())
}

fn agent_instance(out: &mut String, i: usize, rev: u32, scale: usize) -> fmt::Result {
    writeln!(out, "kind: AgentInstance")?;
    writeln!(out, "metadata:\n  name: {}\n  labels:\n    stage: {}", agent_instance_name(i), stage(i))?;
    writeln!(out, "spec:\n  agentRef: {}", agent_name(i))?;
    writeln!(out, "  description: {} with {} settings (revision {rev}).", agent_name(i), stage(i))?;
    writeln!(out, "  environmentRefs:\n    - {}", environment_name(i % (ENVIRONMENTS * scale)))?;
    if i.is_multiple_of(2) {
        writeln!(out, "    - {}", environment_name((i + 1) % (ENVIRONMENTS * scale)))?;
    }
    Ok(())
}

fn workflow(out: &mut String, i: usize, rev: u32, scale: usize) -> fmt::Result {
    let (name, topic, team) = (workflow_name(i), topic(i), team(i));
    let escalate = agent_name((i * 2 + 1) % (AGENTS * scale));
    let answer = if i.is_multiple_of(4) {
        agent_instance_name(i % (AGENT_INSTANCES * scale))
    } else {
        agent_name((i * 2) % (AGENTS * scale))
    };
    writeln!(out, "kind: Workflow")?;
    writeln!(out, "metadata:\n  name: {name}\n  labels:\n    team: {team}\n    topic: {topic}")?;
    writeln!(
        out,
        "spec:\n  document:\n    dsl: 1.0.0\n    namespace: {team}\n    name: {name}\n    version: 1.{}.0",
        i % 5
    )?;
    writeln!(out, "    title: Triage of {topic} requests")?;
    writeln!(out, "    summary: Fetches a {topic} request, routes it and drafts an answer (revision {rev}).")?;
    writeln!(out, "  do:")?;
    writeln!(
        out,
        "    - prepare:\n        set:\n          requestId: ${{ $input.requestId }}\n          queue: {topic}"
    )?;
    writeln!(out, "    - fetch:\n        call: http\n        with:\n          method: get")?;
    writeln!(out, "          endpoint: https://{topic}.example.com/api/requests/{{requestId}}")?;
    writeln!(out, "          headers:\n            Accept: application/json")?;
    writeln!(out, "        output:\n          as: ${{ .body }}")?;
    writeln!(out, "    - route:\n        switch:")?;
    writeln!(out, "          - urgent:\n              when: .priority == \"urgent\"\n              then: escalate")?;
    writeln!(out, "          - normal:\n              then: answer")?;
    writeln!(out, "    - escalate:\n        call: agent\n        with:\n          agent: {escalate}")?;
    writeln!(out, "          message: '${{ \"Escalate request \" + .id + \": \" + .subject }}'")?;
    writeln!(out, "        then: end")?;
    writeln!(out, "    - answer:\n        call: agent\n        with:\n          agent: {answer}")?;
    writeln!(out, "          message: ${{ .subject + \"\\n\\n\" + .body }}")?;
    writeln!(
        out,
        "    - record:\n        set:\n          requestId: ${{ $input.requestId }}\n          answered: true"
    )?;
    if i.is_multiple_of(3) {
        writeln!(out, "  timeout:\n    after:\n      minutes: {}", 5 + i % 30)?;
    }
    Ok(())
}

fn workflow_instance(out: &mut String, i: usize, rev: u32, scale: usize) -> fmt::Result {
    let workflow = workflow_name((i * 3) % (WORKFLOWS * scale));
    writeln!(out, "kind: WorkflowInstance")?;
    writeln!(out, "metadata:\n  name: {workflow}-{}", stage(i))?;
    writeln!(out, "spec:\n  workflowRef: {workflow}")?;
    writeln!(out, "  description: {workflow} with {} settings (revision {rev}).", stage(i))?;
    writeln!(
        out,
        "  environmentRefs:\n    - {}\n    - {}",
        environment_name(i % (ENVIRONMENTS * scale)),
        environment_name((i + 7) % (ENVIRONMENTS * scale))
    )?;
    Ok(())
}
