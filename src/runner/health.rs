//! Health: probes of what each stored resource depends on, as conditions.
//!
//! - `McpServer` `Ready`: started (stdio) or connected (HTTP), `initialize` and `tools/list`
//!   answered; with its tool count and latency, or the error. A server whose `${VAR}`s have no
//!   default is `Unknown`: its values come with each run.
//! - Agent `Reachable`: its model endpoint lists its models with the runner's credentials (no
//!   tokens spent); a refused key is `AuthFailed`.
//! - Environment `SecretsResolved`: every `secretRef` names a stored secret.
//! - Skill `Resolved`: it has its `SKILL.md`.
//! - Agent `Ready`: its MCP servers ready, its skills resolved, its model reachable;
//!   `AgentInstance` `Ready`: its agent ready and its environments' secrets resolved.
//!
//! Every probe has a timeout and probes run one resource at a time, so a probe run costs at
//! most a few MCP server starts; an endpoint shared by many agents is asked once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::agent::mcp::{ConnectOptions, McpConnection, McpServerConfig};
use super::agent::provider::probe::{Unreachable, reachable};
use super::agent::provider::{SettingsSources, resolve_settings};
use super::environment::{self, Overrides};
use crate::backend::condition::{Condition, ConditionStatus, Observed};
use crate::backend::{Backend, BackendError, ResourceQuery, StoredResource, address};
use crate::model::{
    AgentInstanceSpec, AgentSpec, Declarations, EnvironmentSpec, Kind, McpServerSpec, McpServerUsage, ResourceRef,
    SkillSpec,
};

/// How long each probe may take.
#[derive(Debug, Clone, Copy)]
pub struct ProbeOptions {
    /// The limit of one MCP server start or one model listing.
    pub timeout: Duration,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        Self { timeout: Duration::from_secs(20) }
    }
}

/// Probes every stored resource that has something to probe; the result is ready to record
/// with [`Backend::conditions_record`].
///
/// # Errors
/// The backend could not be read.
pub async fn probe<B: Backend>(backend: &B, options: ProbeOptions) -> Result<Vec<Observed>, BackendError> {
    let stored = backend.list(&ResourceQuery::all()).await?;
    let secrets: BTreeSet<String> = backend.secret_list().await?.into_iter().map(|s| s.name).collect();
    let spec = |resource: &StoredResource| resource.manifest.get("spec").cloned().unwrap_or(Value::Null);
    let mut found: BTreeMap<String, Condition> = BTreeMap::new();
    let mut observed = Vec::new();
    let mut record = |found: &mut BTreeMap<String, Condition>, at: String, condition: Condition| {
        found.insert(at.clone(), condition.clone());
        observed.push(Observed { address: at, conditions: vec![condition] });
    };
    for resource in &stored {
        let at = address(resource.kind, &resource.name);
        let condition = match resource.kind {
            Kind::McpServer => match serde_json::from_value::<McpServerSpec>(spec(resource)) {
                Ok(server) => mcp_ready(backend, &resource.name, &server, options).await,
                Err(error) => unreadable("Ready", &error),
            },
            Kind::Environment => match serde_json::from_value::<EnvironmentSpec>(spec(resource)) {
                Ok(environment) => secrets_resolved(&environment, &secrets),
                Err(error) => unreadable("SecretsResolved", &error),
            },
            Kind::Skill => match serde_json::from_value::<SkillSpec>(spec(resource)) {
                Ok(skill) => skill_resolved(&skill),
                Err(error) => unreadable("Resolved", &error),
            },
            _ => continue,
        };
        record(&mut found, at, condition);
    }
    // Agents after what they use; each model endpoint is asked once.
    let mut endpoints: BTreeMap<String, Condition> = BTreeMap::new();
    let mut agents: BTreeMap<String, bool> = BTreeMap::new();
    for resource in stored.iter().filter(|r| r.kind == Kind::Agent) {
        let at = address(Kind::Agent, &resource.name);
        let Ok(agent) = serde_json::from_value::<AgentSpec>(spec(resource)) else {
            observed.push(Observed {
                address: at,
                conditions: vec![Condition::now(
                    "Ready",
                    ConditionStatus::False,
                    "Unreadable",
                    "the stored spec does not read",
                )],
            });
            continue;
        };
        let model = model_reachable(&agent, &mut endpoints, options).await;
        let ready = agent_ready(&agent, &model, &found);
        agents.insert(resource.name.clone(), ready.status == ConditionStatus::True);
        observed.push(Observed { address: at, conditions: vec![model, ready] });
    }
    for resource in stored.iter().filter(|r| r.kind == Kind::AgentInstance) {
        let at = address(Kind::AgentInstance, &resource.name);
        let ready = match serde_json::from_value::<AgentInstanceSpec>(spec(resource)) {
            Ok(instance) => instance_ready(&instance, &agents, &found),
            Err(error) => unreadable("Ready", &error),
        };
        observed.push(Observed { address: at, conditions: vec![ready] });
    }
    Ok(observed)
}

fn unreadable(kind: &str, error: &serde_json::Error) -> Condition {
    Condition::now(kind, ConditionStatus::False, "Unreadable", format!("the stored spec does not read: {error}"))
}

/// Starts (or connects to) the server, lists its tools, and stops it.
async fn mcp_ready<B: Backend>(backend: &B, name: &str, server: &McpServerSpec, options: ProbeOptions) -> Condition {
    let usage = McpServerUsage {
        mcp_server_ref: ResourceRef::named(name),
        enabled_tools: Vec::new(),
        tool_approval_overrides: None,
    };
    let config = match McpServerConfig::from_usage(&usage, server) {
        Ok(config) => config,
        Err(error) => return Condition::now("Ready", ConditionStatus::False, "Unsupported", error.to_string()),
    };
    let mut declared = Declarations::default();
    let at = address(Kind::McpServer, name);
    declared.env_spec(&at, server.env_spec.as_ref()).env(&at, &server.env);
    let variables = match environment::resolve(backend, &declared, &[], &Overrides::default()).await {
        Ok(variables) => variables,
        Err(environment::ResolveError::Missing(missing)) => {
            return Condition::now(
                "Ready",
                ConditionStatus::Unknown,
                "NeedsRunValues",
                format!("not probed: each run gives {}", missing.join("; ")),
            );
        }
        Err(environment::ResolveError::Backend(error)) => {
            return Condition::now("Ready", ConditionStatus::Unknown, "ProbeFailed", error.to_string());
        }
    };
    let resolved = match config.resolve(&variables) {
        Ok(resolved) => resolved,
        Err(error) => return Condition::now("Ready", ConditionStatus::Unknown, "NeedsRunValues", error.to_string()),
    };
    let connect = ConnectOptions { initialize_timeout: options.timeout, shutdown_grace: Duration::from_secs(2) };
    let started = Instant::now();
    match McpConnection::connect(&resolved, &connect).await {
        Ok(connection) => {
            let latency = started.elapsed();
            let tools = connection.tools().len();
            let _ = connection.shutdown().await;
            Condition::now(
                "Ready",
                ConditionStatus::True,
                "Connected",
                format!("{tools} tools, answered in {}", millis(latency)),
            )
            .with_detail(json!({ "tools": tools, "latencyMs": latency.as_millis() }))
        }
        Err(error) => {
            let reason = if server.stdio.is_some() { "StartFailed" } else { "ConnectFailed" };
            Condition::now("Ready", ConditionStatus::False, reason, variables.redactor().redact(&error.to_string()))
        }
    }
}

fn millis(duration: Duration) -> String {
    format!("{} ms", duration.as_millis())
}

/// Every `secretRef` names a stored secret.
fn secrets_resolved(environment: &EnvironmentSpec, secrets: &BTreeSet<String>) -> Condition {
    let missing: Vec<String> = environment
        .data
        .iter()
        .filter_map(|(key, value)| {
            value.secret_ref.as_ref().filter(|name| !secrets.contains(*name)).map(|name| format!("{key} → {name}"))
        })
        .collect();
    if missing.is_empty() {
        Condition::now("SecretsResolved", ConditionStatus::True, "AllFound", "every referenced secret exists")
    } else {
        Condition::now(
            "SecretsResolved",
            ConditionStatus::False,
            "SecretMissing",
            format!("no such secret: {}", missing.join(", ")),
        )
    }
}

fn skill_resolved(skill: &SkillSpec) -> Condition {
    let has_text = skill.skill_md.as_ref().is_some_and(|text| !text.trim().is_empty());
    if has_text || skill.bundle.is_some() {
        Condition::now("Resolved", ConditionStatus::True, "Stored", "its SKILL.md is stored")
    } else {
        Condition::now("Resolved", ConditionStatus::False, "NoSkillMd", "it has neither skillMd nor a bundle")
    }
}

/// The agent's model endpoint lists its models (asked once per endpoint).
async fn model_reachable(
    agent: &AgentSpec,
    endpoints: &mut BTreeMap<String, Condition>,
    options: ProbeOptions,
) -> Condition {
    let sources = SettingsSources { model_flag: None, spec: agent.model.as_ref(), api_key: None };
    let settings = match resolve_settings(&sources, |name| std::env::var(name).ok()) {
        Ok(settings) => settings,
        Err(error) => return Condition::now("Reachable", ConditionStatus::False, "InvalidSettings", error.to_string()),
    };
    let key = format!("{:?} {} {}", settings.kind, settings.base_url, settings.api_key.is_some());
    if let Some(known) = endpoints.get(&key) {
        return known.clone();
    }
    let condition = match reachable(&settings, options.timeout).await {
        Ok(reached) => Condition::now(
            "Reachable",
            ConditionStatus::True,
            "Listed",
            format!("{} answered in {}", settings.base_url, millis(reached.latency)),
        )
        .with_detail(json!({ "latencyMs": reached.latency.as_millis(), "model": settings.model })),
        Err(error @ Unreachable::Auth { .. }) => {
            Condition::now("Reachable", ConditionStatus::False, error.reason(), error.to_string())
        }
        Err(error) => Condition::now("Reachable", ConditionStatus::False, error.reason(), error.to_string()),
    };
    endpoints.insert(key, condition.clone());
    condition
}

/// Ready when everything it uses is: its MCP servers, its skills and its model.
fn agent_ready(agent: &AgentSpec, model: &Condition, found: &BTreeMap<String, Condition>) -> Condition {
    let mut uses: Vec<String> =
        agent.mcp_server_usages.iter().map(|u| address(Kind::McpServer, &u.mcp_server_ref.name)).collect();
    uses.extend(agent.skill_refs.iter().map(|s| address(Kind::Skill, &s.name)));
    let mut not_ready: Vec<String> = uses
        .iter()
        .filter_map(|at| match found.get(at) {
            Some(condition) if condition.status == ConditionStatus::True => None,
            Some(condition) => Some(format!("{at} ({}: {})", condition.reason, condition.message)),
            None => Some(format!("{at} (not stored)")),
        })
        .collect();
    if model.status != ConditionStatus::True {
        not_ready.push(format!("the model ({}: {})", model.reason, model.message));
    }
    if not_ready.is_empty() {
        Condition::now("Ready", ConditionStatus::True, "DependenciesReady", "every dependency is ready")
    } else {
        Condition::now(
            "Ready",
            ConditionStatus::False,
            "DependencyNotReady",
            format!("not ready: {}", not_ready.join("; ")),
        )
    }
}

fn instance_ready(
    instance: &AgentInstanceSpec,
    agents: &BTreeMap<String, bool>,
    found: &BTreeMap<String, Condition>,
) -> Condition {
    let mut not_ready = Vec::new();
    match instance.agent_ref.as_ref().map(|r| r.name.as_str()) {
        Some(agent) if agents.get(agent) == Some(&true) => {}
        Some(agent) => not_ready.push(format!("agent/{agent}")),
        None => not_ready.push("its agent (by id)".to_owned()),
    }
    for environment in &instance.environment_refs {
        let at = address(Kind::Environment, &environment.name);
        if found.get(&at).is_none_or(|c| c.status != ConditionStatus::True) {
            not_ready.push(at);
        }
    }
    if not_ready.is_empty() {
        Condition::now("Ready", ConditionStatus::True, "DependenciesReady", "its agent and environments are ready")
    } else {
        Condition::now(
            "Ready",
            ConditionStatus::False,
            "DependencyNotReady",
            format!("not ready: {}", not_ready.join(", ")),
        )
    }
}
