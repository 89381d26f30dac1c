//! From a stored agent to a [`PreparedAgent`]: the agent (by name, or through an
//! `AgentInstance` with its environments), its skills written into its system prompt, its model
//! settings resolved, and its sub-agents prepared the same way, each under its parent's path.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::conversation::{PreparedAgent, Route, Tool, sub_agent_schema};
use super::mcp::{McpError, McpServerConfig};
use super::provider::{AnyProvider, ProviderError, SettingsSources, ToolDefinition, resolve_settings};
use super::resources::Resources;
use crate::backend::{BackendError, address};
use crate::model::{
    AgentSpec, AnyResource, Declarations, Environment, Kind, McpServerSpec, ModelConfig, ResourceRef, SkillSpec,
    ToolApproval,
};

/// How deep sub-agents may nest (an agent that names itself as its sub-agent stops here).
const MAX_DEPTH: usize = 8;

/// Why an agent cannot be prepared.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// A resource it needs is not stored.
    #[error("{address} is not stored")]
    NotFound {
        /// What is missing, e.g. `skill/tone`.
        address: String,
        /// Who needs it.
        needed_by: String,
    },
    /// A stored resource does not read as its kind.
    #[error("the stored {address} does not read as its kind: {detail}")]
    Malformed {
        /// Which one.
        address: String,
        /// Why.
        detail: String,
    },
    /// Sub-agents nest too deep.
    #[error("sub-agents nest more than {MAX_DEPTH} levels deep at `{agent}`; an agent probably uses itself")]
    TooDeep {
        /// Where it stopped.
        agent: String,
    },
    /// The model settings are not usable.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// A skill's files could not be placed in the workspace.
    #[error("skill `{skill}`: {source}")]
    Skill {
        /// The skill.
        skill: String,
        /// Why.
        #[source]
        source: crate::runner::skills::MaterializeError,
    },
    /// An MCP server is not usable as configured.
    #[error(transparent)]
    Mcp(#[from] McpError),
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

impl PrepareError {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::NotFound { needed_by, .. } => Some(format!(
                "{needed_by} refers to it: apply it, or fix the reference (`stigmer get` lists what is stored)"
            )),
            Self::Provider(error) => error.hint(),
            Self::Malformed { .. } | Self::TooDeep { .. } | Self::Skill { .. } | Self::Mcp(_) | Self::Backend(_) => {
                None
            }
        }
    }
}

/// An agent to run, as stored.
#[derive(Debug, Clone)]
pub struct Target {
    /// `agent/NAME` or `agentinstance/NAME`: what the execution records as its target.
    pub address: String,
    /// The agent's name.
    pub name: String,
    /// The agent.
    pub spec: AgentSpec,
    /// The instance's environments, in order (none when run by agent name).
    pub environments: Vec<Environment>,
    /// The shared `McpServer`s the agent uses, by name.
    pub mcp_servers: BTreeMap<String, McpServerSpec>,
}

impl Target {
    /// The variables the run needs: the agent's `envSpec` and `env`, plus those of the MCP
    /// servers it uses that the agent does not declare itself.
    pub fn declarations(&self) -> Declarations {
        let servers = self.mcp_servers.iter().map(|(name, spec)| (address(Kind::McpServer, name), spec));
        self.spec.declarations(&address(Kind::Agent, &self.name), servers)
    }
}

/// The stored `Agent` named `name`, or else the `AgentInstance` of that name with its agent and
/// environments.
///
/// # Errors
/// Neither is stored, one of the instance's references is missing, or the backend failed.
pub async fn target<R: Resources>(resources: &R, name: &str) -> Result<Target, PrepareError> {
    if let Some(spec) = agent(resources, name).await? {
        let mcp_servers = used_mcp_servers(resources, &spec, &address(Kind::Agent, name)).await?;
        return Ok(Target {
            address: address(Kind::Agent, name),
            name: name.to_owned(),
            spec,
            environments: Vec::new(),
            mcp_servers,
        });
    }
    let instance_address = address(Kind::AgentInstance, name);
    let Some(stored) = resources.manifest(Kind::AgentInstance, name).await? else {
        return Err(PrepareError::NotFound {
            address: address(Kind::Agent, name),
            needed_by: "the command".to_owned(),
        });
    };
    let Ok(AnyResource::AgentInstance(instance)) = AnyResource::from_value(Kind::AgentInstance, stored) else {
        return Err(PrepareError::Malformed { address: instance_address, detail: "not an AgentInstance".to_owned() });
    };
    // Apply stores an `agentId` as `agentRef` (`reconcile::ids`), so a stored instance names
    // its agent by name; one written past apply may not.
    let Some(agent_name) = instance.spec.agent_ref.as_ref().map(|reference| reference.name.clone()) else {
        return Err(PrepareError::Malformed {
            address: instance_address,
            detail: "it names no agent by agentRef; apply its manifest again to resolve an agentId".to_owned(),
        });
    };
    let spec = agent(resources, &agent_name).await?.ok_or_else(|| PrepareError::NotFound {
        address: address(Kind::Agent, &agent_name),
        needed_by: instance_address.clone(),
    })?;
    // The run is limited as the instance says, where it says.
    let spec = instance.spec.limiting(spec);
    let mut environments = Vec::new();
    for reference in &instance.spec.environment_refs {
        let stored =
            resources.manifest(Kind::Environment, &reference.name).await?.ok_or_else(|| PrepareError::NotFound {
                address: address(Kind::Environment, &reference.name),
                needed_by: instance_address.clone(),
            })?;
        match AnyResource::from_value(Kind::Environment, stored) {
            Ok(AnyResource::Environment(environment)) => environments.push(*environment),
            _ => {
                return Err(PrepareError::Malformed {
                    address: address(Kind::Environment, &reference.name),
                    detail: "not an Environment".to_owned(),
                });
            }
        }
    }
    let mcp_servers = used_mcp_servers(resources, &spec, &instance_address).await?;
    Ok(Target { address: instance_address, name: agent_name, spec, environments, mcp_servers })
}

/// The `McpServer` resources `spec` uses, by name.
async fn used_mcp_servers<R: Resources>(
    resources: &R,
    spec: &AgentSpec,
    needed_by: &str,
) -> Result<BTreeMap<String, McpServerSpec>, PrepareError> {
    let mut servers = BTreeMap::new();
    for usage in &spec.mcp_server_usages {
        let name = &usage.mcp_server_ref.name;
        let stored = resources.manifest(Kind::McpServer, name).await?.ok_or_else(|| PrepareError::NotFound {
            address: address(Kind::McpServer, name),
            needed_by: needed_by.to_owned(),
        })?;
        match AnyResource::from_value(Kind::McpServer, stored) {
            Ok(AnyResource::McpServer(server)) => {
                servers.insert(name.clone(), server.spec);
            }
            _ => {
                return Err(PrepareError::Malformed {
                    address: address(Kind::McpServer, name),
                    detail: "not an McpServer".to_owned(),
                });
            }
        }
    }
    Ok(servers)
}

/// The MCP servers `spec` defines inline and uses, with the tools it enables of each.
async fn mcp_configs<R: Resources>(
    resources: &R,
    spec: &AgentSpec,
    needed_by: &str,
) -> Result<Vec<McpServerConfig>, PrepareError> {
    let mut configs = Vec::new();
    for definition in &spec.mcp_servers {
        configs.push(McpServerConfig::from_definition(definition)?);
    }
    let used = used_mcp_servers(resources, spec, needed_by).await?;
    for usage in &spec.mcp_server_usages {
        if let Some(server) = used.get(&usage.mcp_server_ref.name) {
            configs.push(McpServerConfig::from_usage(usage, server)?);
        }
    }
    // The agent-wide mode over the usages' lists: an empty list gates every tool.
    match spec.tool_approval.unwrap_or_default() {
        ToolApproval::Listed => {}
        ToolApproval::Always => configs.iter_mut().for_each(|config| config.approvals = Some(Vec::new())),
        ToolApproval::Never => configs.iter_mut().for_each(|config| config.approvals = None),
    }
    Ok(configs)
}

async fn agent<R: Resources>(resources: &R, name: &str) -> Result<Option<AgentSpec>, PrepareError> {
    let Some(stored) = resources.manifest(Kind::Agent, name).await? else { return Ok(None) };
    match AnyResource::from_value(Kind::Agent, stored) {
        Ok(AnyResource::Agent(agent)) => Ok(Some(agent.spec)),
        _ => Err(PrepareError::Malformed { address: address(Kind::Agent, name), detail: "not an Agent".to_owned() }),
    }
}

/// What preparing needs besides the stored resources.
pub struct Inputs<'a> {
    /// The `--model` flag.
    pub model_flag: Option<&'a str>,
    /// Looks up a variable: the run's resolved variables first, then the process environment.
    pub lookup: &'a (dyn Fn(&str) -> Option<String> + Sync),
    /// The run's workspace: each skill's files are written under `skills/<name>/` in it.
    pub workspace: Option<&'a Path>,
}

/// Prepares `spec` to run as `path` (its name; `parent/child` for a sub-agent).
///
/// # Errors
/// A skill or sub-agent it names is missing, sub-agents nest too deep, its model settings are
/// unusable, or the backend failed.
pub async fn prepare<R: Resources>(
    resources: &R,
    path: &str,
    spec: &AgentSpec,
    inputs: &Inputs<'_>,
) -> Result<PreparedAgent, PrepareError> {
    prepare_at(resources, path, spec, None, inputs, 0).await
}

fn prepare_at<'a, R: Resources>(
    resources: &'a R,
    path: &'a str,
    spec: &'a AgentSpec,
    // An inline sub-agent's servers: its parent's, narrowed to its selection.
    inherited: Option<Vec<McpServerConfig>>,
    inputs: &'a Inputs<'a>,
    depth: usize,
) -> std::pin::Pin<Box<dyn Future<Output = Result<PreparedAgent, PrepareError>> + Send + 'a>> {
    Box::pin(async move {
        if depth > MAX_DEPTH {
            return Err(PrepareError::TooDeep { agent: path.to_owned() });
        }
        let needed_by = format!("agent `{path}`");
        let mut skills = BTreeMap::new();
        for reference in &spec.skill_refs {
            let stored = skill(resources, reference, &needed_by).await?;
            skills.insert(reference.name.clone(), place(&reference.name, &stored, inputs.workspace)?);
        }
        let settings = resolve_settings(
            &SettingsSources {
                model_flag: if depth == 0 { inputs.model_flag } else { None },
                spec: spec.model.as_ref(),
                api_key: None,
            },
            inputs.lookup,
        )?;
        let provider = AnyProvider::new(&settings)?;
        let mcp_servers = match inherited {
            Some(servers) => servers,
            None => mcp_configs(resources, spec, &needed_by).await?,
        };
        let mut tools = Vec::new();
        let mut sub_agents = Vec::new();
        for sub in &spec.sub_agents {
            let sub_path = format!("{path}/{}", sub.name);
            let sub_spec = match &sub.agent_ref {
                Some(reference) => agent(resources, &reference.name).await?.ok_or_else(|| PrepareError::NotFound {
                    address: address(Kind::Agent, &reference.name),
                    needed_by: needed_by.clone(),
                })?,
                None => AgentSpec {
                    description: sub.description.clone(),
                    instructions: sub.instructions.clone().unwrap_or_default(),
                    // An inline sub-agent runs on its parent's model unless it names one.
                    model: sub.model.clone().or_else(|| spec.model.clone()).or_else(|| {
                        Some(ModelConfig {
                            provider: Some(settings.kind.name().to_owned()),
                            name: Some(settings.model.clone()),
                            base_url: Some(settings.base_url.clone()),
                            ..ModelConfig::default()
                        })
                    }),
                    skill_refs: sub.skill_refs.clone(),
                    ..AgentSpec::default()
                },
            };
            // An inline sub-agent uses a selection of its parent's servers; a referenced agent its own.
            let inherited = if sub.agent_ref.is_some() {
                None
            } else {
                let mut servers = Vec::new();
                for name in &sub.mcp_servers {
                    let parent = mcp_servers.iter().find(|server| &server.name == name).ok_or_else(|| {
                        PrepareError::NotFound {
                            address: format!("MCP server `{name}` of agent `{path}`"),
                            needed_by: format!("sub-agent `{sub_path}`"),
                        }
                    })?;
                    servers.push(match sub.mcp_tool_selections.get(name) {
                        Some(selection) => parent.narrowed(selection)?,
                        None => parent.clone(),
                    });
                }
                Some(servers)
            };
            let prepared = prepare_at(resources, &sub_path, &sub_spec, inherited, inputs, depth + 1).await?;
            let description = sub
                .description
                .clone()
                .or_else(|| sub_spec.description.clone())
                .unwrap_or_else(|| format!("Delegate a task to the `{}` agent.", sub.name));
            tools.push(Tool {
                definition: ToolDefinition { name: sub.name.clone(), description, input_schema: sub_agent_schema() },
                route: Route::SubAgent(sub_agents.len()),
                approval: None,
            });
            sub_agents.push(prepared);
        }
        Ok(PreparedAgent {
            name: path.to_owned(),
            system: system_prompt(&spec.instructions, &skills),
            settings,
            provider,
            tools,
            sub_agents,
            mcp_servers,
        })
    })
}

async fn skill<R: Resources>(
    resources: &R,
    reference: &ResourceRef,
    needed_by: &str,
) -> Result<SkillSpec, PrepareError> {
    let stored = resources.manifest(Kind::Skill, &reference.name).await?.ok_or_else(|| PrepareError::NotFound {
        address: address(Kind::Skill, &reference.name),
        needed_by: needed_by.to_owned(),
    })?;
    match AnyResource::from_value(Kind::Skill, stored) {
        Ok(AnyResource::Skill(skill)) => Ok(skill.spec),
        _ => Err(PrepareError::Malformed {
            address: address(Kind::Skill, &reference.name),
            detail: "not a Skill".to_owned(),
        }),
    }
}

/// A skill as the prompt shows it.
struct PlacedSkill {
    description: Option<String>,
    instructions: String,
    /// Where its files are, when the run has a workspace.
    files: Option<PathBuf>,
}

/// Writes a skill's files into the workspace (when there is one) and reads its instructions.
fn place(name: &str, spec: &SkillSpec, workspace: Option<&Path>) -> Result<PlacedSkill, PrepareError> {
    let description = spec.description_for_agent();
    let Some(workspace) = workspace else {
        return Ok(PlacedSkill {
            description,
            instructions: spec.instructions().unwrap_or_default().to_owned(),
            files: None,
        });
    };
    let dir = workspace.join("skills").join(name);
    let instructions = crate::runner::skills::materialize(spec, &dir)
        .map_err(|source| PrepareError::Skill { skill: name.to_owned(), source })?;
    Ok(PlacedSkill { description, instructions, files: Some(dir) })
}

/// The instructions, then each skill under its name and description, with where its files are.
fn system_prompt(instructions: &str, skills: &BTreeMap<String, PlacedSkill>) -> String {
    let mut prompt = instructions.trim_end().to_owned();
    if skills.is_empty() {
        return prompt;
    }
    prompt.push_str("\n\n# Skills\n\nYou have these skills; follow a skill's instructions when its task comes up.\n");
    for (name, skill) in skills {
        let _ = write!(prompt, "\n## {name}\n");
        if let Some(description) = &skill.description {
            let _ = write!(prompt, "\n{description}\n");
        }
        if let Some(files) = &skill.files {
            let _ = write!(prompt, "\nIts files are in `{}`.\n", files.display());
        }
        let _ = write!(prompt, "\n{}\n", skill.instructions.trim_end());
    }
    prompt
}
