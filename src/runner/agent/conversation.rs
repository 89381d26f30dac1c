//! The tool loop: the model answers; when it calls tools, their results go back to it and it
//! answers again, until it answers without calling any, or the step limit is reached.
//!
//! Tools are served by MCP servers (through [`ToolServers`]) or are sub-agents: a sub-agent call
//! runs its own loop — its own instructions, model and tools — on the message the parent wrote,
//! and its final answer is the tool's result. Every step is reported to an [`AgentObserver`], which
//! records it in the execution's log and shows it on a terminal.
//!
//! Decisions:
//! - A tool's failure (an error result, a timeout, a crashed server, malformed arguments, an
//!   unknown tool name, a failing sub-agent) goes back to the model as an error tool result; only
//!   the model's own endpoint failing ends the run.
//! - Tool calls of one answer run one after the other, in the order the model wrote them.
//! - One step is one model answer; the limit counts the steps of this agent, not of its
//!   sub-agents (each has the same limit).

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use jiff::Timestamp;

use serde_json::Value;

pub use super::event::{AgentEvent, RecordedCall};
use super::mcp::{McpServerConfig, McpToolset};
use super::provider::{
    AnyProvider, Completion, CompletionRequest, Message, Provider, ProviderError, ProviderSettings, StreamEvent,
    StreamSink, ToolCall, ToolDefinition, ToolResult, Usage,
};
use super::resume::{Asked, Entry, Past};
use super::usage::{Budget, LimitExceeded, Prices};
use crate::backend::approval::{ApprovalDecision, ApprovalRequest};
use crate::model::RunLimits;

/// How many steps an agent takes at most unless told otherwise.
pub const DEFAULT_MAX_STEPS: u32 = 25;

/// An agent ready to run: its prompt, its model and the tools it may call.
#[derive(Debug)]
pub struct PreparedAgent {
    /// Its name, as shown in logs (`triage`, or `researcher` for a sub-agent).
    pub name: String,
    /// The system prompt: instructions, then skills.
    pub system: String,
    /// The model and how to reach it.
    pub settings: ProviderSettings,
    /// The client for that model.
    pub provider: AnyProvider,
    /// The tools the model sees, each with where it is served.
    pub tools: Vec<Tool>,
    /// The sub-agents [`Route::SubAgent`] points into.
    pub sub_agents: Vec<PreparedAgent>,
    /// The MCP servers it uses, with the tools it may call of each.
    pub mcp_servers: Vec<McpServerConfig>,
}

impl PreparedAgent {
    /// Every MCP server the agent and its sub-agents use, each once (the first configuration of a
    /// name wins: a parent's, which enables at least what its inline sub-agents do).
    pub fn all_mcp_servers(&self) -> Vec<McpServerConfig> {
        fn collect(agent: &PreparedAgent, out: &mut Vec<McpServerConfig>) {
            for server in &agent.mcp_servers {
                if !out.iter().any(|known| known.name == server.name) {
                    out.push(server.clone());
                }
            }
            agent.sub_agents.iter().for_each(|sub| collect(sub, out));
        }
        let mut out = Vec::new();
        collect(self, &mut out);
        out
    }

    /// Offers each agent the tools of its MCP servers that it may call, ahead of its sub-agents.
    pub fn attach_tools(&mut self, toolset: &McpToolset) {
        let mut tools: Vec<Tool> = Vec::new();
        for server in &self.mcp_servers {
            for tool in toolset.tools().filter(|tool| tool.server == server.name) {
                if server.enabled_tools.is_empty() || server.enabled_tools.contains(&tool.name) {
                    tools.push(Tool {
                        definition: ToolDefinition {
                            name: tool.exposed_name.clone(),
                            description: tool.description.clone().unwrap_or_default(),
                            input_schema: tool.input_schema.clone(),
                        },
                        route: Route::Mcp(tool.exposed_name.clone()),
                        approval: server
                            .approval(&tool.name)
                            .map(|message| ApprovalGate { message: message.map(str::to_owned) }),
                    });
                }
            }
        }
        tools.append(&mut self.tools);
        self.tools = tools;
        self.sub_agents.iter_mut().for_each(|sub| sub.attach_tools(toolset));
    }
}

/// One tool the model may call.
#[derive(Debug, Clone)]
pub struct Tool {
    /// What the model sees (its name is unique among the agent's tools).
    pub definition: ToolDefinition,
    /// Who serves it.
    pub route: Route,
    /// Set when each call needs a person's approval first.
    pub approval: Option<ApprovalGate>,
}

/// A tool whose calls a person must approve (a usage's `toolApprovalOverrides`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalGate {
    /// What the person approving is told.
    pub message: Option<String>,
}

/// Who serves a tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// An MCP server's tool, by the name the model calls it (`server__tool`).
    Mcp(String),
    /// The agent's sub-agent number `n`.
    SubAgent(usize),
}

/// The result of a tool call, as the model will read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOutcome {
    /// The text given back to the model.
    pub content: String,
    /// Whether it is an error.
    pub is_error: bool,
}

/// The MCP servers a run has connected to.
pub trait ToolServers: Sync {
    /// Calls the tool the model knows as `exposed`; never fails, an error becomes an error outcome.
    fn call(&self, exposed: &str, arguments: &Value) -> impl Future<Output = ToolOutcome> + Send;
}

/// A run with no MCP servers.
impl ToolServers for () {
    async fn call(&self, exposed: &str, _: &Value) -> ToolOutcome {
        ToolOutcome { content: format!("no MCP server serves `{exposed}`"), is_error: true }
    }
}

/// How long one MCP tool call may take.
pub const TOOL_TIMEOUT: std::time::Duration = std::time::Duration::from_mins(2);

impl ToolServers for McpToolset {
    async fn call(&self, exposed: &str, arguments: &Value) -> ToolOutcome {
        let outcome = McpToolset::call(self, exposed, arguments.clone(), TOOL_TIMEOUT).await;
        ToolOutcome { content: outcome.text, is_error: outcome.is_error }
    }
}

/// Receives a run's steps and its streamed text. Called from the run's own task; keep it quick.
pub trait AgentObserver: Send {
    /// One step, to record.
    fn event(&mut self, event: &AgentEvent);
    /// Streamed output of `agent`'s model, to show as it comes.
    fn stream(&mut self, agent: &str, event: &StreamEvent);
}

/// Ignores everything.
impl AgentObserver for () {
    fn event(&mut self, _: &AgentEvent) {}
    fn stream(&mut self, _: &str, _: &StreamEvent) {}
}

/// Collects the steps.
impl AgentObserver for Vec<AgentEvent> {
    fn event(&mut self, event: &AgentEvent) {
        self.push(event.clone());
    }
    fn stream(&mut self, _: &str, _: &StreamEvent) {}
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The model could not be asked.
    #[error("agent `{agent}`: {source}")]
    Provider {
        /// The agent whose model failed.
        agent: String,
        /// Why.
        #[source]
        source: ProviderError,
    },
    /// The model asked for calls that need a person's approval: the run waits for the
    /// decisions (an agent execution parks; anything else that runs an agent stops here).
    #[error("agent `{agent}` is waiting for approval of {}", .tools.join(", "))]
    AwaitingApproval {
        /// The agent.
        agent: String,
        /// The tools called, as the model named them.
        tools: Vec<String>,
        /// The earliest deadline of the requests, after which they are rejected.
        until: Option<Timestamp>,
    },
    /// The run reached one of its limits (`maxTurns`, `maxTokens`, `maxCost`, `maxDuration`).
    #[error("agent `{agent}`: {source}")]
    Limit {
        /// The agent that was stopped.
        agent: String,
        /// Which limit.
        #[source]
        source: LimitExceeded,
    },
    /// The model kept calling tools.
    #[error("agent `{agent}` reached its limit of {limit} steps without a final answer")]
    StepLimit {
        /// The agent.
        agent: String,
        /// The limit.
        limit: u32,
    },
}

impl AgentError {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Provider { source, .. } => source.hint(),
            Self::StepLimit { .. } => {
                Some("raise it with --max-steps, or make the instructions say when to stop".to_owned())
            }
            Self::Limit { source: LimitExceeded::Unpriced { model }, .. } => Some(format!(
                "give {model} a price under model_prices in the runner's config.yaml, or drop maxCost"
            )),
            Self::Limit { .. } => {
                Some("raise the limit in the agent's spec, or make the instructions say when to stop".to_owned())
            }
            Self::AwaitingApproval { .. } => Some(
                "approve or reject with `stigmer execution approve|reject`; a workflow's `call: agent` cannot wait for a person: set requiresApproval: false in the usage's toolApprovalOverrides there".to_owned(),
            ),
        }
    }
}

/// What a finished run produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The final answer.
    pub text: String,
    /// The conversation this run added (its user message, answers and tool results), to keep
    /// in a session.
    pub messages: Vec<Message>,
    /// Tokens used by this agent (not its sub-agents).
    pub usage: Usage,
}

/// The limits of a run.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Most model answers per agent.
    pub max_steps: u32,
    /// How long a call waits for a person's approval before it is rejected; forever when `None`.
    pub approval_timeout: Option<Duration>,
    /// The agent's run limits, over all of its sub-agents.
    pub run: RunLimits,
    /// What each model costs, for `maxCost`.
    pub prices: Prices,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_steps: DEFAULT_MAX_STEPS,
            approval_timeout: None,
            run: RunLimits::default(),
            prices: Prices::default(),
        }
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Runs `agent` on `message`, after the `history` of its session.
///
/// # Errors
/// The model's endpoint failed, the agent reached its step limit, or it waits for approval.
pub fn converse<'a, S: ToolServers>(
    agent: &'a PreparedAgent,
    servers: &'a S,
    history: Vec<Message>,
    message: String,
    limits: Limits,
    observer: &'a mut dyn AgentObserver,
) -> BoxFuture<'a, Result<Answer, AgentError>> {
    resume(agent, servers, history, message, limits, &NOTHING_BEFORE, observer)
}

static NOTHING_BEFORE: Past = Past::NONE;

/// Runs `agent` on `message` from where `past` (what this execution recorded before) left it:
/// the steps recorded are not taken again, the calls of its last answer that have no result are
/// made — once a person decided the ones that wait for approval.
///
/// # Errors
/// The model's endpoint failed, the agent reached its step limit, or it waits for approval.
pub fn resume<'a, S: ToolServers>(
    agent: &'a PreparedAgent,
    servers: &'a S,
    history: Vec<Message>,
    message: String,
    limits: Limits,
    past: &'a Past,
    observer: &'a mut dyn AgentObserver,
) -> BoxFuture<'a, Result<Answer, AgentError>> {
    Box::pin(async move {
        let budget = Budget::new(limits.run, limits.prices.clone());
        let run = Run { servers, limits, past, budget };
        let so_far = past.unfinished(&agent.name, Entry::Root);
        talk(agent, &run, history, message, None, so_far, observer).await
    })
}

/// What every agent of one run shares.
struct Run<'a, S> {
    servers: &'a S,
    limits: Limits,
    past: &'a Past,
    /// What the run spent, against its limits.
    budget: Budget,
}

/// One agent's conversation: `so_far` holds its steps when it resumes; `call` is the
/// parent's call when it is a sub-agent.
fn talk<'a, S: ToolServers>(
    agent: &'a PreparedAgent,
    run: &'a Run<'a, S>,
    history: Vec<Message>,
    message: String,
    call: Option<&'a str>,
    so_far: Option<Vec<&'a AgentEvent>>,
    observer: &'a mut dyn AgentObserver,
) -> BoxFuture<'a, Result<Answer, AgentError>> {
    Box::pin(async move {
        let mut request = agent.settings.request();
        request.system = Some(agent.system.clone()).filter(|system| !system.is_empty());
        request.tools = agent.tools.iter().map(|tool| tool.definition.clone()).collect();
        let first_new = history.len();
        request.messages = history;
        let mut usage = Usage::default();
        let mut step = 0;
        let mut pending: Vec<ToolCall> = Vec::new();
        let mut asked = Asked::default();
        let resumed = so_far.is_some();
        match &so_far {
            None => {
                observer.event(&AgentEvent::UserMessage {
                    agent: agent.name.clone(),
                    text: message.clone(),
                    call: call.map(str::to_owned),
                });
                request.messages.push(Message::user(message));
            }
            Some(steps) => {
                request.messages.extend(messages_from_events(steps.iter().copied(), &agent.name));
                for step_so_far in steps {
                    if let AgentEvent::AssistantMessage { model, input_tokens, output_tokens, cached_tokens, .. } =
                        step_so_far
                    {
                        step += 1;
                        let spent = Usage {
                            input_tokens: *input_tokens,
                            output_tokens: *output_tokens,
                            cached_tokens: *cached_tokens,
                        };
                        usage.input_tokens += input_tokens;
                        usage.output_tokens += output_tokens;
                        usage.cached_tokens += cached_tokens;
                        run.budget.count(model, spent);
                    }
                }
                // The last answer's calls that have no result yet are still to be made.
                if let Some(at) = steps.iter().rposition(|s| matches!(s, AgentEvent::AssistantMessage { .. }))
                    && let AgentEvent::AssistantMessage { tool_calls, .. } = steps[at]
                {
                    let done: Vec<&str> = steps[at..]
                        .iter()
                        .filter_map(|s| match s {
                            AgentEvent::ToolResult { call_id, .. } => Some(call_id.as_str()),
                            _ => None,
                        })
                        .collect();
                    pending = tool_calls
                        .iter()
                        .filter(|c| !done.contains(&c.id.as_str()))
                        .map(|c| ToolCall::new(c.id.clone(), c.name.clone(), c.arguments.clone()))
                        .collect();
                    asked = Asked::among(&steps[at + 1..]);
                }
            }
        }
        let mut answer_resumed = resumed;
        loop {
            if !pending.is_empty() {
                let calls = Calls { calls: &pending, resumed: answer_resumed };
                make_calls(agent, run, calls, &mut asked, &mut request, observer).await?;
            }
            if step >= run.limits.max_steps {
                return Err(AgentError::StepLimit { agent: agent.name.clone(), limit: run.limits.max_steps });
            }
            let limit = |source| AgentError::Limit { agent: agent.name.clone(), source };
            run.budget.check().map_err(limit)?;
            step += 1;
            let completion = match run.budget.time_left() {
                None => ask(agent, &request, observer).await?,
                Some(left) => match tokio::time::timeout(left, ask(agent, &request, observer)).await {
                    Ok(completion) => completion?,
                    Err(_) => return Err(limit(run.budget.timed_out())),
                },
            };
            usage.input_tokens += completion.usage.input_tokens;
            usage.output_tokens += completion.usage.output_tokens;
            usage.cached_tokens += completion.usage.cached_tokens;
            observer.event(&AgentEvent::AssistantMessage {
                agent: agent.name.clone(),
                step,
                text: completion.text.clone(),
                tool_calls: completion.tool_calls.iter().map(recorded).collect(),
                model: completion.model.clone(),
                input_tokens: completion.usage.input_tokens,
                output_tokens: completion.usage.output_tokens,
                cached_tokens: completion.usage.cached_tokens,
            });
            // Charged once recorded: the history keeps what was spent, even past a limit.
            run.budget.charge(&completion.model, completion.usage).map_err(limit)?;
            request.messages.push(Message::assistant(&completion));
            if completion.tool_calls.is_empty() {
                observer.event(&AgentEvent::Answer { agent: agent.name.clone(), text: completion.text.clone() });
                let messages = request.messages.split_off(first_new);
                return Ok(Answer { text: completion.text, messages, usage });
            }
            pending = completion.tool_calls;
            asked = Asked::default();
            answer_resumed = false;
        }
    })
}

/// The calls of one answer still to make, and whether that answer was recorded before this run
/// (so a sub-agent call in flight resumes rather than starts again).
struct Calls<'c> {
    calls: &'c [ToolCall],
    resumed: bool,
}

/// Makes the calls of one answer in order, each result given back to the model. Every call that
/// needs a person is asked about first, before any call of the answer is made; while any waits,
/// nothing is called and the run stops with [`AgentError::AwaitingApproval`].
async fn make_calls<S: ToolServers>(
    agent: &PreparedAgent,
    run: &Run<'_, S>,
    calls: Calls<'_>,
    asked: &mut Asked<'_>,
    request: &mut CompletionRequest,
    observer: &mut dyn AgentObserver,
) -> Result<(), AgentError> {
    let now = Timestamp::now();
    let mut waiting = Vec::new();
    let mut until: Option<Timestamp> = None;
    for call in calls.calls {
        let Some(gate) = gate(agent, call) else { continue };
        if asked.decision(&call.id).is_some() {
            continue;
        }
        let deadline = match asked.request(&call.id) {
            Some(request) if request.deadline.is_some_and(|deadline| deadline <= now) => {
                let decision = ApprovalDecision {
                    agent: agent.name.clone(),
                    call_id: call.id.clone(),
                    approved: false,
                    reason: None,
                    by: "timeout".to_owned(),
                    at: now,
                };
                observer.event(&AgentEvent::ApprovalDecided(decision.clone()));
                asked.decided(decision);
                continue;
            }
            Some(request) => request.deadline,
            None => {
                let deadline = run.limits.approval_timeout.and_then(|timeout| now.checked_add(timeout).ok());
                observer.event(&AgentEvent::ApprovalRequested(ApprovalRequest {
                    agent: agent.name.clone(),
                    call_id: call.id.clone(),
                    tool: call.name.clone(),
                    arguments: call.arguments.clone(),
                    message: gate.message.clone(),
                    deadline,
                }));
                deadline
            }
        };
        waiting.push(call.name.clone());
        until = match (until, deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    if !waiting.is_empty() {
        return Err(AgentError::AwaitingApproval { agent: agent.name.clone(), tools: waiting, until });
    }
    for call in calls.calls {
        let started = Instant::now();
        let refused = gate(agent, call).and(asked.decision(&call.id)).filter(|decision| !decision.approved);
        let outcome = match refused {
            Some(decision) => ToolOutcome { content: decision.refusal(), is_error: true },
            // The history keeps secrets masked: a call it recorded with one cannot be made
            // faithfully, and is never made with the mask in the secret's place.
            None if calls.resumed && run.past.lost_a_secret(&call.arguments) => ToolOutcome {
                content: "this call was not made: its arguments held a secret value, which the execution's \
                          history keeps only masked (***); make the call again"
                    .to_owned(),
                is_error: true,
            },
            None => call_tool(agent, run, call, calls.resumed, observer).await?,
        };
        observer.event(&AgentEvent::ToolResult {
            agent: agent.name.clone(),
            call_id: call.id.clone(),
            tool: call.name.clone(),
            content: outcome.content.clone(),
            is_error: outcome.is_error,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        });
        request.messages.push(Message::ToolResult(ToolResult {
            call_id: call.id.clone(),
            content: outcome.content,
            is_error: outcome.is_error,
        }));
    }
    Ok(())
}

/// The approval gate of the tool `call` names, when its calls need one (a call whose
/// arguments are malformed is never made, so it needs none).
fn gate<'t>(agent: &'t PreparedAgent, call: &ToolCall) -> Option<&'t ApprovalGate> {
    call.checked_arguments().ok()?;
    agent.tools.iter().find(|tool| tool.definition.name == call.name)?.approval.as_ref()
}

/// One model answer, its stream forwarded to the observer.
async fn ask(
    agent: &PreparedAgent,
    request: &CompletionRequest,
    observer: &mut dyn AgentObserver,
) -> Result<Completion, AgentError> {
    let mut sink = Forward { agent: &agent.name, observer };
    agent
        .provider
        .complete(request, &mut sink)
        .await
        .map_err(|source| AgentError::Provider { agent: agent.name.clone(), source })
}

/// Runs one tool call wherever it is served; every failure is an error outcome the model
/// reads, except a sub-agent's call that waits for approval, which stops the whole run.
/// `resumed`: the call was in flight before this run, so a sub-agent carries on its steps.
async fn call_tool<S: ToolServers>(
    agent: &PreparedAgent,
    run: &Run<'_, S>,
    call: &ToolCall,
    resumed: bool,
    observer: &mut dyn AgentObserver,
) -> Result<ToolOutcome, AgentError> {
    let arguments = match call.checked_arguments() {
        Ok(arguments) => arguments,
        Err(malformed) => return Ok(ToolOutcome { content: malformed.to_string(), is_error: true }),
    };
    let Some(tool) = agent.tools.iter().find(|tool| tool.definition.name == call.name) else {
        let known: Vec<&str> = agent.tools.iter().map(|tool| tool.definition.name.as_str()).collect();
        return Ok(ToolOutcome {
            content: format!("there is no tool named `{}`; the tools are: {}", call.name, known.join(", ")),
            is_error: true,
        });
    };
    Ok(match &tool.route {
        Route::Mcp(exposed) => run.servers.call(exposed, arguments).await,
        Route::SubAgent(index) => {
            let Some(sub_agent) = agent.sub_agents.get(*index) else {
                return Ok(ToolOutcome {
                    content: format!("sub-agent `{}` is not prepared", call.name),
                    is_error: true,
                });
            };
            let message = sub_agent_message(arguments);
            let so_far = if resumed { run.past.unfinished(&sub_agent.name, Entry::Call(&call.id)) } else { None };
            match talk(sub_agent, run, Vec::new(), message, Some(&call.id), so_far, observer).await {
                Ok(answer) => ToolOutcome { content: answer.text, is_error: false },
                Err(error @ AgentError::AwaitingApproval { .. }) => return Err(error),
                Err(error) => ToolOutcome { content: format!("the sub-agent failed: {error}"), is_error: true },
            }
        }
    })
}

/// The input schema offered for every sub-agent tool: the task to hand over.
pub fn sub_agent_schema() -> Value {
    serde_json::json!({
        "type": "object",
        "properties": { "message": { "type": "string", "description": "The task for the sub-agent, with everything it needs to know." } },
        "required": ["message"],
    })
}

/// The message a parent wrote for its sub-agent: `message`, or the arguments as JSON when the
/// model wrote something else.
fn sub_agent_message(arguments: &Value) -> String {
    match arguments.get("message") {
        Some(Value::String(message)) => message.clone(),
        _ => arguments.to_string(),
    }
}

/// The conversation of `agent` (its path, as in the events) in recorded events: what a session
/// continues from. Sub-agents' steps are left out; their answers are in the tool results.
pub fn messages_from_events<'e>(events: impl IntoIterator<Item = &'e AgentEvent>, agent: &str) -> Vec<Message> {
    let mut messages = Vec::new();
    for event in events {
        match event {
            AgentEvent::UserMessage { agent: who, text, .. } if who == agent => {
                messages.push(Message::user(text.clone()));
            }
            AgentEvent::AssistantMessage { agent: who, text, tool_calls, .. } if who == agent => {
                messages.push(Message::Assistant {
                    text: text.clone(),
                    tool_calls: tool_calls
                        .iter()
                        .map(|call| ToolCall::new(call.id.clone(), call.name.clone(), call.arguments.clone()))
                        .collect(),
                });
            }
            AgentEvent::ToolResult { agent: who, call_id, content, is_error, .. } if who == agent => {
                messages.push(Message::ToolResult(ToolResult {
                    call_id: call_id.clone(),
                    content: content.clone(),
                    is_error: *is_error,
                }));
            }
            _ => {}
        }
    }
    messages
}

fn recorded(call: &ToolCall) -> RecordedCall {
    RecordedCall { id: call.id.clone(), name: call.name.clone(), arguments: call.arguments.clone() }
}

/// Forwards a model's stream to the run's observer, with the agent's name.
struct Forward<'a> {
    agent: &'a str,
    observer: &'a mut dyn AgentObserver,
}

impl StreamSink for Forward<'_> {
    fn event(&mut self, event: StreamEvent) {
        self.observer.stream(self.agent, &event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::agent::provider::ProviderKind;
    use crate::runner::agent::test_server::{Reply, ScriptedCall, ScriptedServer, openai_text, openai_tool_calls};

    const MODEL: &str = "qwen2.5-coder:7b";

    fn agent(name: &str, server: &ScriptedServer, tools: Vec<Tool>, sub_agents: Vec<PreparedAgent>) -> PreparedAgent {
        let settings = ProviderSettings::new(ProviderKind::Ollama, MODEL, format!("{}/v1", server.base_url()));
        PreparedAgent {
            name: name.to_owned(),
            system: format!("You are {name}."),
            provider: AnyProvider::new(&settings).unwrap(),
            settings,
            tools,
            sub_agents,
            mcp_servers: Vec::new(),
        }
    }

    fn call<'a>(id: &'a str, name: &'a str, fragments: &'a [&'a str]) -> Vec<String> {
        openai_tool_calls(MODEL, &[ScriptedCall { id, name, fragments }], (10, 5))
    }

    #[tokio::test]
    async fn a_sub_agent_answers_as_a_tool_and_the_parent_builds_on_it() {
        let server = ScriptedServer::start([
            Reply::sse(call("c1", "researcher", &[r#"{"message": "what is 6*7?"}"#])),
            Reply::sse(openai_text(MODEL, &["4", "2"], (7, 2))),
            Reply::sse(openai_text(MODEL, &["The answer is ", "42."], (30, 6))),
        ])
        .await;
        let researcher = agent("lead/researcher", &server, Vec::new(), Vec::new());
        let tool = Tool {
            definition: ToolDefinition {
                name: "researcher".to_owned(),
                description: "Finds things out.".to_owned(),
                input_schema: sub_agent_schema(),
            },
            route: Route::SubAgent(0),
            approval: None,
        };
        let lead = agent("lead", &server, vec![tool], vec![researcher]);
        let mut events = Vec::new();
        let answer = converse(&lead, &(), Vec::new(), "Ask the researcher.".to_owned(), Limits::default(), &mut events)
            .await
            .unwrap();
        assert_eq!(answer.text, "The answer is 42.");
        assert_eq!(answer.usage, Usage { input_tokens: 40, output_tokens: 11, cached_tokens: 9 });

        let requests = server.requests();
        assert_eq!(requests.len(), 3);
        // The sub-agent got the parent's message under its own instructions, and no history.
        let sub = requests[1].json();
        assert_eq!(sub["messages"][0]["content"], "You are lead/researcher.");
        assert_eq!(sub["messages"][1]["content"], "what is 6*7?");
        // Its answer went back to the parent as the tool's result.
        let last = requests[2].json();
        let result = last["messages"].as_array().unwrap().last().unwrap().clone();
        assert_eq!((result["role"].as_str(), result["content"].as_str()), (Some("tool"), Some("42")));

        let kinds: Vec<(String, String)> = events
            .iter()
            .map(|event| {
                let value = serde_json::to_value(event).unwrap();
                (value["event"].as_str().unwrap().to_owned(), value["agent"].as_str().unwrap().to_owned())
            })
            .collect();
        let expected = [
            ("userMessage", "lead"),
            ("assistantMessage", "lead"),
            ("userMessage", "lead/researcher"),
            ("assistantMessage", "lead/researcher"),
            ("answer", "lead/researcher"),
            ("toolResult", "lead"),
            ("assistantMessage", "lead"),
            ("answer", "lead"),
        ];
        assert_eq!(kinds, expected.map(|(a, b)| (a.to_owned(), b.to_owned())));
        // A session continues from exactly the conversation the run added.
        assert_eq!(messages_from_events(&events, "lead"), answer.messages);
    }

    #[tokio::test]
    async fn bad_tool_calls_go_back_to_the_model_and_the_step_limit_ends_the_run() {
        let server = ScriptedServer::start([
            Reply::sse(call("c1", "no_such_tool", &["{}"])),
            Reply::sse(call("c2", "researcher", &["{not json"])),
        ])
        .await;
        let lead = agent("lead", &server, Vec::new(), Vec::new());
        let mut events = Vec::new();
        let limits = Limits { max_steps: 2, ..Limits::default() };
        let error = converse(&lead, &(), Vec::new(), "Go.".to_owned(), limits, &mut events).await.unwrap_err();
        assert!(matches!(error, AgentError::StepLimit { limit: 2, .. }), "{error}");
        assert!(error.hint().unwrap().contains("--max-steps"));
        let results: Vec<(String, bool)> = events
            .iter()
            .filter_map(|event| match event {
                AgentEvent::ToolResult { content, is_error, .. } => Some((content.clone(), *is_error)),
                _ => None,
            })
            .collect();
        assert_eq!(results.len(), 2);
        assert!(results[0].0.contains("there is no tool named `no_such_tool`") && results[0].1);
        assert!(results[1].1, "malformed arguments are an error result: {}", results[1].0);
        // The second request carried the first error back to the model.
        let second = server.requests()[1].json();
        assert!(second["messages"].to_string().contains("no_such_tool"));
    }
}
