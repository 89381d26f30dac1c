//! LLM providers: one [`Provider`] interface over the servers an agent can run on.
//!
//! - [`OpenAiCompatible`]: `POST {base}/chat/completions`, for Ollama (the default), OpenAI,
//!   vLLM, LM Studio and anything else that speaks OpenAI's chat completions.
//! - [`Anthropic`]: `POST {base}/v1/messages`, Anthropic's Messages API.
//!
//! Both always stream (server-sent events): text and tool calls reach a [`StreamSink`] as they
//! arrive, and the assembled [`Completion`] is returned at the end. [`resolve_settings`] picks
//! the provider, model, URL and key (flag > agent spec > environment > defaults);
//! [`AnyProvider::new`] builds the provider those settings name.
//!
//! Decisions:
//! - Requests that fail before anything was streamed are retried with exponential backoff: on
//!   429, on 5xx, on a connection that dropped, and on an `overloaded`/`api_error` event sent
//!   before the first token. `retry-after` (seconds) is honoured up to a cap; a longer one
//!   fails at once with [`ProviderError::RateLimited`]. Once a token reached the sink the call is
//!   never retried, since the caller already showed it.
//! - A connection refused is not retried: nothing listens there, and saying so at once (with
//!   "start it with `ollama serve`") beats three silent retries.
//! - Tool call arguments that are not valid JSON do not fail the call: the [`ToolCall`] keeps
//!   the raw text and the parse error, so the agent loop can answer the model with an error
//!   tool result and let it try again.
//! - API keys are held as [`SecretValue`](crate::secrets::SecretValue), so they never show in `Debug`; server messages are
//!   scrubbed of the key before they go into an error.

mod anthropic;
mod error;
mod openai;
pub mod probe;
pub mod settings;
mod stream;
#[cfg(test)]
mod tests;
mod transport;

use std::fmt;
use std::time::Duration;

use serde_json::Value;

pub use anthropic::Anthropic;
pub use error::ProviderError;
pub use openai::OpenAiCompatible;
pub use settings::{
    ENV_ANTHROPIC_API_KEY, ENV_LLM_BASE_URL, ENV_LLM_MODEL, ENV_LLM_PROVIDER, ENV_LLM_TIMEOUT, ENV_OPENAI_API_KEY,
    ModelChoice, ProviderSettings, RetryPolicy, SettingsSources, Timeouts, resolve_settings,
};

/// Which API a provider speaks, and whose defaults apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    /// A local Ollama server, through its OpenAI-compatible API.
    Ollama,
    /// OpenAI, or any OpenAI-compatible server (vLLM, LM Studio) given its base URL.
    OpenAi,
    /// Anthropic's Messages API.
    Anthropic,
}

impl ProviderKind {
    /// Every provider, in the order help texts list them.
    pub const ALL: [Self; 3] = [Self::Ollama, Self::OpenAi, Self::Anthropic];

    /// The name used in `--model provider/model`, `spec.model.provider` and
    /// `STIGMER_LLM_PROVIDER`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ollama => "ollama",
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
        }
    }

    /// The provider of this name (case-insensitive), if there is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name().eq_ignore_ascii_case(name.trim()))
    }

    /// The base URL used when none is configured.
    pub fn default_base_url(self) -> &'static str {
        match self {
            Self::Ollama => "http://localhost:11434/v1",
            Self::OpenAi => "https://api.openai.com/v1",
            Self::Anthropic => "https://api.anthropic.com",
        }
    }

    /// The model used when none is configured.
    pub fn default_model(self) -> &'static str {
        match self {
            Self::Ollama => "qwen2.5-coder:7b",
            Self::OpenAi => "gpt-4o-mini",
            Self::Anthropic => "claude-sonnet-4-5",
        }
    }

    /// The environment variable holding this provider's API key, if it takes one.
    pub fn api_key_variable(self) -> Option<&'static str> {
        match self {
            Self::Ollama => None,
            Self::OpenAi => Some(ENV_OPENAI_API_KEY),
            Self::Anthropic => Some(ENV_ANTHROPIC_API_KEY),
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One request to a model: the conversation so far and the tools it may call.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletionRequest {
    /// The model's name at the provider.
    pub model: String,
    /// The system prompt (the agent's instructions), if any.
    pub system: Option<String>,
    /// The conversation, oldest first.
    pub messages: Vec<Message>,
    /// The tools the model may call.
    pub tools: Vec<ToolDefinition>,
    /// Most tokens the answer may have; the provider's default when `None` (4096 for
    /// Anthropic, which requires one).
    pub max_tokens: Option<u32>,
    /// Sampling temperature; the provider's default when `None`.
    pub temperature: Option<f64>,
}

impl CompletionRequest {
    /// A request to `model` with no messages, tools or sampling settings yet.
    pub fn new(model: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            system: None,
            messages: Vec::new(),
            tools: Vec::new(),
            max_tokens: None,
            temperature: None,
        }
    }

    /// Sets the system prompt.
    #[must_use]
    pub fn system(mut self, system: impl Into<String>) -> Self {
        self.system = Some(system.into());
        self
    }

    /// Adds a message.
    #[must_use]
    pub fn message(mut self, message: Message) -> Self {
        self.messages.push(message);
        self
    }

    /// Adds a tool.
    #[must_use]
    pub fn tool(mut self, tool: ToolDefinition) -> Self {
        self.tools.push(tool);
        self
    }
}

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// What the user said.
    User {
        /// The text.
        text: String,
    },
    /// What the model answered: text, tool calls, or both.
    Assistant {
        /// The text (may be empty when the model only called tools).
        text: String,
        /// The tools it called, in order.
        tool_calls: Vec<ToolCall>,
    },
    /// The result of one tool call, answering the assistant message that made it.
    ToolResult(ToolResult),
}

impl Message {
    /// A user message.
    pub fn user(text: impl Into<String>) -> Self {
        Self::User { text: text.into() }
    }

    /// The assistant message that records a completion, to send back on the next turn.
    pub fn assistant(completion: &Completion) -> Self {
        Self::Assistant { text: completion.text.clone(), tool_calls: completion.tool_calls.clone() }
    }
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDefinition {
    /// Its name, unique among the request's tools.
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// A JSON Schema of its arguments (an object schema).
    pub input_schema: Value,
}

/// A tool call the model made.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// The provider's id for the call; the result names it.
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments; `{}` when the model's text did not parse (see `malformed_arguments`).
    pub arguments: Value,
    /// The model's arguments text and why it is not JSON, when it is not.
    pub malformed_arguments: Option<MalformedArguments>,
}

impl ToolCall {
    /// A well-formed call.
    pub fn new(id: impl Into<String>, name: impl Into<String>, arguments: Value) -> Self {
        Self { id: id.into(), name: name.into(), arguments, malformed_arguments: None }
    }

    /// The arguments, or why the model's text is not usable as arguments.
    pub fn checked_arguments(&self) -> Result<&Value, &MalformedArguments> {
        self.malformed_arguments.as_ref().map_or(Ok(&self.arguments), Err)
    }
}

/// Tool call arguments the model wrote that are not a JSON value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the arguments of tool `{tool}` are not valid JSON ({reason}): {}", excerpt(.text, 200))]
pub struct MalformedArguments {
    /// The tool's name.
    pub tool: String,
    /// The text the model wrote, whole (sent back to it on the next turn as it was).
    pub text: String,
    /// Why it does not parse.
    pub reason: String,
}

/// The result of a tool call, sent back to the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolResult {
    /// The id of the call this answers.
    pub call_id: String,
    /// What the tool returned, or the error, as text.
    pub content: String,
    /// Whether the call failed.
    pub is_error: bool,
}

/// A model's whole answer to one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// The text, all deltas joined.
    pub text: String,
    /// The tools it called, in the order it started them.
    pub tool_calls: Vec<ToolCall>,
    /// Tokens read and written.
    pub usage: Usage,
    /// Why it stopped.
    pub stop_reason: StopReason,
    /// The model as the server named it (may differ from the requested alias).
    pub model: String,
}

/// Tokens counted by the provider for one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Tokens of the prompt (system, messages, tools).
    pub input_tokens: u64,
    /// Tokens of the answer.
    pub output_tokens: u64,
    /// Tokens of the prompt the provider read from its cache (a part of `input_tokens`).
    pub cached_tokens: u64,
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// It finished its answer.
    EndTurn,
    /// It wants its tool calls run.
    ToolUse,
    /// It hit `max_tokens`; the answer is cut short.
    MaxTokens,
    /// It produced a stop sequence.
    StopSequence,
    /// The provider's filter stopped it.
    ContentFilter,
    /// A reason this code does not know, as the server wrote it (empty when none was sent).
    Other(String),
}

/// What a provider reports while it streams, for a terminal to show.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// A piece of the answer's text, in order.
    Text(String),
    /// The model started a tool call (its arguments follow, and come with the completion).
    ToolCallStarted {
        /// The call's id.
        id: String,
        /// The tool's name.
        name: String,
    },
    /// The request failed before anything streamed and is sent again after `delay`.
    Retrying {
        /// 1 for the first retry.
        attempt: u32,
        /// How long it waits first.
        delay: Duration,
        /// Why, e.g. "429 Too Many Requests".
        reason: String,
    },
}

/// Receives [`StreamEvent`]s as they arrive. Called from the request's own task, never
/// concurrently; keep it quick, since the stream waits for it.
pub trait StreamSink: Send {
    /// One event.
    fn event(&mut self, event: StreamEvent);
}

/// Ignores every event.
impl StreamSink for () {
    fn event(&mut self, _: StreamEvent) {}
}

/// Collects every event, in order.
impl StreamSink for Vec<StreamEvent> {
    fn event(&mut self, event: StreamEvent) {
        self.push(event);
    }
}

/// An LLM server that answers a conversation, streaming as it goes.
pub trait Provider: Send + Sync {
    /// Which API it speaks.
    fn kind(&self) -> ProviderKind;

    /// Sends `request`, streams what arrives to `sink`, and returns the whole answer.
    fn complete(
        &self,
        request: &CompletionRequest,
        sink: &mut dyn StreamSink,
    ) -> impl Future<Output = Result<Completion, ProviderError>> + Send;
}

/// Whichever provider the settings name.
#[derive(Debug, Clone)]
pub enum AnyProvider {
    /// Ollama, OpenAI, or another OpenAI-compatible server.
    OpenAiCompatible(OpenAiCompatible),
    /// Anthropic.
    Anthropic(Anthropic),
}

impl AnyProvider {
    /// The provider `settings` name, with its HTTP client.
    pub fn new(settings: &ProviderSettings) -> Result<Self, ProviderError> {
        Ok(match settings.kind {
            ProviderKind::Ollama | ProviderKind::OpenAi => Self::OpenAiCompatible(OpenAiCompatible::new(settings)?),
            ProviderKind::Anthropic => Self::Anthropic(Anthropic::new(settings)?),
        })
    }
}

impl Provider for AnyProvider {
    fn kind(&self) -> ProviderKind {
        match self {
            Self::OpenAiCompatible(provider) => provider.kind(),
            Self::Anthropic(provider) => provider.kind(),
        }
    }

    async fn complete(
        &self,
        request: &CompletionRequest,
        sink: &mut dyn StreamSink,
    ) -> Result<Completion, ProviderError> {
        match self {
            Self::OpenAiCompatible(provider) => provider.complete(request, sink).await,
            Self::Anthropic(provider) => provider.complete(request, sink).await,
        }
    }
}

/// The first `max` characters of `text`, with `…` when cut.
pub(crate) fn excerpt(text: &str, max: usize) -> String {
    let text = text.trim();
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}
