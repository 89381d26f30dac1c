//! OpenAI-compatible chat completions (`POST {base}/chat/completions`), streamed: Ollama,
//! OpenAI, vLLM, LM Studio.
//!
//! Wire decisions:
//! - `stream_options.include_usage` asks for the usage chunk; a server that ignores it leaves
//!   the usage at 0 rather than failing.
//! - Tool calls arrive as fragments in `delta.tool_calls[i]`, keyed by `index`: the id and name
//!   in the first, `function.arguments` text spread over the rest. The text is parsed once the
//!   stream ends. A fragment without an index continues the last call unless it brings a new id.
//! - A tool result with `is_error` is sent as `error: …`, since the format has no error flag.
//! - `max_tokens` is sent as `max_completion_tokens` to OpenAI itself (its newer models refuse
//!   `max_tokens`) and as `max_tokens` to every other server (which may not know the new name).
//! - A stream that ends without `[DONE]` is accepted when a `finish_reason` came, since some
//!   servers close without the marker; without either it broke off.

use serde_json::{Map, Value, json};

use super::stream::{Decoder, Failure, Progress, RetryCause, Retryable, parse_arguments, parse_data, tokens};
use super::transport::{Endpoint, auth_headers};
use super::{
    Completion, CompletionRequest, Message, Provider, ProviderError, ProviderKind, ProviderSettings, StopReason,
    StreamEvent, StreamSink, ToolCall, Usage,
};

/// A server speaking OpenAI's chat completions API.
#[derive(Debug, Clone)]
pub struct OpenAiCompatible {
    endpoint: Endpoint,
    /// Whether this is OpenAI's own API (which wants `max_completion_tokens`).
    is_openai: bool,
}

impl OpenAiCompatible {
    /// The provider at `settings.base_url`, sending the key (if any) as a bearer token.
    pub fn new(settings: &ProviderSettings) -> Result<Self, ProviderError> {
        let endpoint = Endpoint::new(settings, "/chat/completions", auth_headers(settings)?)?;
        let is_openai = settings.base_url == ProviderKind::OpenAi.default_base_url();
        Ok(Self { endpoint, is_openai })
    }

    /// The JSON body for `request`.
    pub(super) fn body(&self, request: &CompletionRequest) -> Value {
        let mut messages = Vec::new();
        if let Some(system) = &request.system {
            messages.push(json!({ "role": "system", "content": system }));
        }
        for message in &request.messages {
            messages.push(match message {
                Message::User { text } => json!({ "role": "user", "content": text }),
                Message::Assistant { text, tool_calls } if tool_calls.is_empty() => {
                    json!({ "role": "assistant", "content": text })
                }
                Message::Assistant { text, tool_calls } => json!({
                    "role": "assistant",
                    "content": if text.is_empty() { Value::Null } else { Value::String(text.clone()) },
                    "tool_calls": tool_calls.iter().map(wire_tool_call).collect::<Vec<_>>(),
                }),
                Message::ToolResult(result) => json!({
                    "role": "tool",
                    "tool_call_id": result.call_id,
                    "content": if result.is_error { format!("error: {}", result.content) } else { result.content.clone() },
                }),
            });
        }
        let mut body = Map::new();
        body.insert("model".to_owned(), json!(request.model));
        body.insert("messages".to_owned(), Value::Array(messages));
        if !request.tools.is_empty() {
            let tools = request.tools.iter().map(|tool| {
                json!({
                    "type": "function",
                    "function": { "name": tool.name, "description": tool.description, "parameters": tool.input_schema },
                })
            });
            body.insert("tools".to_owned(), Value::Array(tools.collect()));
        }
        if let Some(max_tokens) = request.max_tokens {
            let field = if self.is_openai { "max_completion_tokens" } else { "max_tokens" };
            body.insert(field.to_owned(), json!(max_tokens));
        }
        if let Some(temperature) = request.temperature {
            body.insert("temperature".to_owned(), json!(temperature));
        }
        body.insert("stream".to_owned(), json!(true));
        body.insert("stream_options".to_owned(), json!({ "include_usage": true }));
        Value::Object(body)
    }
}

/// A tool call as the assistant message that made it: arguments as JSON text, and the model's
/// own text when it was not JSON, so it sees what it wrote.
fn wire_tool_call(call: &ToolCall) -> Value {
    let arguments = match &call.malformed_arguments {
        Some(malformed) => malformed.text.clone(),
        None => call.arguments.to_string(),
    };
    json!({ "id": call.id, "type": "function", "function": { "name": call.name, "arguments": arguments } })
}

impl Provider for OpenAiCompatible {
    fn kind(&self) -> ProviderKind {
        self.endpoint.kind
    }

    async fn complete(
        &self,
        request: &CompletionRequest,
        sink: &mut dyn StreamSink,
    ) -> Result<Completion, ProviderError> {
        let body = self.body(request);
        self.endpoint.stream(&body, sink, || ChunkDecoder::new(&self.endpoint, &request.model)).await
    }
}

/// A tool call being assembled from fragments.
struct PartialCall {
    index: u64,
    id: String,
    name: String,
    arguments: String,
    announced: bool,
    /// The id was made up here because the server had sent none by the time the name came.
    id_made_up: bool,
}

/// Assembles a completion from `chat.completion.chunk`s.
struct ChunkDecoder<'a> {
    endpoint: &'a Endpoint,
    model: String,
    text: String,
    calls: Vec<PartialCall>,
    usage: Usage,
    finish_reason: Option<String>,
}

impl<'a> ChunkDecoder<'a> {
    fn new(endpoint: &'a Endpoint, requested_model: &str) -> Self {
        Self {
            endpoint,
            model: requested_model.to_owned(),
            text: String::new(),
            calls: Vec::new(),
            usage: Usage::default(),
            finish_reason: None,
        }
    }

    /// Adds one `delta.tool_calls[i]` fragment.
    fn tool_call_fragment(&mut self, fragment: &Value, sink: &mut dyn StreamSink) {
        let id = fragment.get("id").and_then(Value::as_str).filter(|id| !id.is_empty());
        let index = fragment.get("index").and_then(Value::as_u64);
        let existing = match index {
            Some(index) => self.calls.iter().rposition(|call| call.index == index),
            None => self.calls.len().checked_sub(1),
        };
        // A new id at a known index is a new call: some servers number every call 0.
        let position = match existing {
            Some(position)
                if id.is_none_or(|id| {
                    let call = &self.calls[position];
                    call.id.is_empty() || call.id_made_up || call.id == id
                }) =>
            {
                position
            }
            _ => {
                let index = index.unwrap_or(self.calls.len() as u64);
                self.calls.push(PartialCall {
                    index,
                    id: String::new(),
                    name: String::new(),
                    arguments: String::new(),
                    announced: false,
                    id_made_up: false,
                });
                self.calls.len() - 1
            }
        };
        let call = &mut self.calls[position];
        if let Some(id) = id
            && !call.id_made_up
        {
            id.clone_into(&mut call.id);
        }
        let function = fragment.get("function");
        if let Some(name) = function.and_then(|f| f.get("name")).and_then(Value::as_str) {
            call.name.push_str(name);
        }
        match function.and_then(|f| f.get("arguments")) {
            Some(Value::String(text)) => call.arguments.push_str(text),
            // Some servers send the arguments as an object rather than JSON text.
            Some(value @ Value::Object(_)) => call.arguments.push_str(&value.to_string()),
            _ => {}
        }
        if !call.announced && !call.name.is_empty() {
            call.announced = true;
            if call.id.is_empty() {
                call.id = format!("call_{position}");
                call.id_made_up = true;
            }
            sink.event(StreamEvent::ToolCallStarted { id: call.id.clone(), name: call.name.clone() });
        }
    }
}

impl Decoder for ChunkDecoder<'_> {
    fn event(&mut self, _event: &str, data: &str, sink: &mut dyn StreamSink) -> Result<Progress, Failure> {
        if data.trim() == "[DONE]" {
            return Ok(Progress::Done);
        }
        let chunk = parse_data(self.endpoint.kind, data)?;
        if chunk.get("error").is_some() {
            // An error after the stream began: the server failed while answering.
            let status = chunk.pointer("/error/code").and_then(Value::as_u64).and_then(|c| u16::try_from(c).ok());
            return Err(self.endpoint.event_failure(status.unwrap_or(500), data, &self.model));
        }
        if let Some(model) = chunk.get("model").and_then(Value::as_str).filter(|model| !model.is_empty()) {
            model.clone_into(&mut self.model);
        }
        if let Some(usage) = chunk.get("usage").filter(|usage| usage.is_object()) {
            self.usage = Usage {
                input_tokens: tokens(usage, "prompt_tokens"),
                output_tokens: tokens(usage, "completion_tokens"),
                cached_tokens: usage
                    .pointer("/prompt_tokens_details/cached_tokens")
                    .and_then(Value::as_u64)
                    .unwrap_or_default(),
            };
        }
        // Only the first choice is asked for (no `n`), so only it is read.
        let Some(choice) = chunk.get("choices").and_then(Value::as_array).and_then(|choices| choices.first()) else {
            return Ok(Progress::Continue);
        };
        if let Some(delta) = choice.get("delta") {
            if let Some(text) = delta.get("content").and_then(Value::as_str).filter(|text| !text.is_empty()) {
                self.text.push_str(text);
                sink.event(StreamEvent::Text(text.to_owned()));
            }
            for fragment in delta.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
                self.tool_call_fragment(fragment, sink);
            }
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_owned());
        }
        Ok(Progress::Continue)
    }

    fn finish(self, ended: bool) -> Result<Completion, Failure> {
        if !ended && self.finish_reason.is_none() {
            return Err(Failure::Retryable(Retryable {
                cause: RetryCause::Dropped,
                retry_after: None,
                message: "the stream ended before the answer was complete".to_owned(),
            }));
        }
        let tool_calls: Vec<ToolCall> = self
            .calls
            .into_iter()
            .map(|call| {
                let (arguments, malformed_arguments) = parse_arguments(&call.name, &call.arguments);
                ToolCall { id: call.id, name: call.name, arguments, malformed_arguments }
            })
            .collect();
        let stop_reason = match self.finish_reason.as_deref() {
            Some("stop") if tool_calls.is_empty() => StopReason::EndTurn,
            // Ollama says `stop` even when it called tools; what it did decides.
            Some("tool_calls" | "function_call" | "stop") => StopReason::ToolUse,
            Some("length") => StopReason::MaxTokens,
            Some("content_filter") => StopReason::ContentFilter,
            other => StopReason::Other(other.unwrap_or_default().to_owned()),
        };
        Ok(Completion { text: self.text, tool_calls, usage: self.usage, stop_reason, model: self.model })
    }
}
