//! Anthropic's Messages API (`POST {base}/v1/messages`), streamed.
//!
//! Wire decisions:
//! - The system prompt is the top-level `system`; tool results are `tool_result` blocks in a
//!   user message. Consecutive messages of one role are merged into one message, since the API
//!   wants the roles to alternate (tool results followed by a user's text become one turn).
//! - Empty text is left out: the API refuses empty text blocks.
//! - `max_tokens` is required; 4096 when the request has none.
//! - `temperature` above 1 (the spec allows up to 2, Anthropic up to 1) is sent as 1.
//! - Input tokens are the prompt's whole size: `input_tokens` plus the cache's read and
//!   creation counts, which Anthropic reports apart.
//! - Tool arguments that were not JSON are sent back as `{}` (the API takes only an object);
//!   the error tool result answering the call tells the model what was wrong.

use serde_json::{Map, Value, json};

use super::settings::ANTHROPIC_DEFAULT_MAX_TOKENS;
use super::stream::{Decoder, Failure, Progress, RetryCause, Retryable, parse_arguments, parse_data, tokens};
use super::transport::{Endpoint, auth_headers};
use super::{
    Completion, CompletionRequest, Message, Provider, ProviderError, ProviderKind, ProviderSettings, StopReason,
    StreamEvent, StreamSink, ToolCall, Usage,
};

/// Anthropic's Messages API.
#[derive(Debug, Clone)]
pub struct Anthropic {
    endpoint: Endpoint,
}

impl Anthropic {
    /// The provider at `settings.base_url`, sending the key as `x-api-key`.
    pub fn new(settings: &ProviderSettings) -> Result<Self, ProviderError> {
        if settings.api_key.is_none() {
            return Err(ProviderError::ApiKeyMissing {
                provider: ProviderKind::Anthropic,
                variable: super::ENV_ANTHROPIC_API_KEY,
            });
        }
        Ok(Self { endpoint: Endpoint::new(settings, "/v1/messages", auth_headers(settings)?)? })
    }
}

/// The JSON body for `request`.
pub(super) fn body(request: &CompletionRequest) -> Value {
    let mut messages: Vec<(&str, Vec<Value>)> = Vec::new();
    for message in &request.messages {
        let (role, blocks) = match message {
            Message::User { text } => ("user", text_block(text).into_iter().collect()),
            Message::Assistant { text, tool_calls } => {
                let mut blocks: Vec<Value> = text_block(text).into_iter().collect();
                blocks.extend(tool_calls.iter().map(|call| {
                    let input = if call.arguments.is_object() && call.malformed_arguments.is_none() {
                        call.arguments.clone()
                    } else {
                        Value::Object(Map::new())
                    };
                    json!({ "type": "tool_use", "id": call.id, "name": call.name, "input": input })
                }));
                ("assistant", blocks)
            }
            Message::ToolResult(result) => {
                let mut block =
                    json!({ "type": "tool_result", "tool_use_id": result.call_id, "content": result.content });
                if result.is_error {
                    block["is_error"] = json!(true);
                }
                ("user", vec![block])
            }
        };
        if blocks.is_empty() {
            continue;
        }
        match messages.last_mut() {
            Some((last_role, last_blocks)) if *last_role == role => last_blocks.extend(blocks),
            _ => messages.push((role, blocks)),
        }
    }
    let messages: Vec<Value> =
        messages.into_iter().map(|(role, content)| json!({ "role": role, "content": content })).collect();

    let mut body = Map::new();
    body.insert("model".to_owned(), json!(request.model));
    body.insert("max_tokens".to_owned(), json!(request.max_tokens.unwrap_or(ANTHROPIC_DEFAULT_MAX_TOKENS)));
    if let Some(system) = request.system.as_ref().filter(|system| !system.is_empty()) {
        body.insert("system".to_owned(), json!(system));
    }
    body.insert("messages".to_owned(), Value::Array(messages));
    if !request.tools.is_empty() {
        let tools = request.tools.iter().map(
            |tool| json!({ "name": tool.name, "description": tool.description, "input_schema": tool.input_schema }),
        );
        body.insert("tools".to_owned(), Value::Array(tools.collect()));
    }
    if let Some(temperature) = request.temperature {
        body.insert("temperature".to_owned(), json!(temperature.clamp(0.0, 1.0)));
    }
    body.insert("stream".to_owned(), json!(true));
    Value::Object(body)
}

fn text_block(text: &str) -> Option<Value> {
    (!text.is_empty()).then(|| json!({ "type": "text", "text": text }))
}

impl Provider for Anthropic {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Anthropic
    }

    async fn complete(
        &self,
        request: &CompletionRequest,
        sink: &mut dyn StreamSink,
    ) -> Result<Completion, ProviderError> {
        let body = body(request);
        self.endpoint.stream(&body, sink, || EventDecoder::new(&self.endpoint, &request.model)).await
    }
}

/// One content block of the answer, by its `index`.
enum Block {
    Text,
    ToolUse {
        id: String,
        name: String,
        initial_input: Value,
        json: String,
    },
    /// `thinking` and block types this code does not use.
    Ignored,
}

/// Assembles a completion from Messages API events.
struct EventDecoder<'a> {
    endpoint: &'a Endpoint,
    model: String,
    text: String,
    blocks: Vec<(u64, Block)>,
    usage: Usage,
    stop_reason: Option<String>,
}

impl<'a> EventDecoder<'a> {
    fn new(endpoint: &'a Endpoint, requested_model: &str) -> Self {
        Self {
            endpoint,
            model: requested_model.to_owned(),
            text: String::new(),
            blocks: Vec::new(),
            usage: Usage::default(),
            stop_reason: None,
        }
    }

    fn block(&mut self, index: u64) -> Option<&mut Block> {
        self.blocks.iter_mut().rev().find(|(i, _)| *i == index).map(|(_, block)| block)
    }
}

/// The whole prompt's tokens: Anthropic counts cached ones apart.
fn input_tokens(usage: &Value) -> u64 {
    tokens(usage, "input_tokens")
        + tokens(usage, "cache_creation_input_tokens")
        + tokens(usage, "cache_read_input_tokens")
}

/// The HTTP status an error event's `type` stands for, so it is classified like one.
fn error_status(event: &Value) -> u16 {
    match event.pointer("/error/type").and_then(Value::as_str).unwrap_or_default() {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "overloaded_error" => 529,
        _ => 500,
    }
}

impl Decoder for EventDecoder<'_> {
    fn event(&mut self, event: &str, data: &str, sink: &mut dyn StreamSink) -> Result<Progress, Failure> {
        let value = parse_data(self.endpoint.kind, data)?;
        let kind = value.get("type").and_then(Value::as_str).unwrap_or(event);
        let index = value.get("index").and_then(Value::as_u64).unwrap_or(0);
        match kind {
            "message_start" => {
                let message = value.get("message").unwrap_or(&Value::Null);
                if let Some(model) = message.get("model").and_then(Value::as_str).filter(|model| !model.is_empty()) {
                    model.clone_into(&mut self.model);
                }
                if let Some(usage) = message.get("usage") {
                    self.usage = Usage {
                        input_tokens: input_tokens(usage),
                        output_tokens: tokens(usage, "output_tokens"),
                        cached_tokens: tokens(usage, "cache_read_input_tokens"),
                    };
                }
            }
            "content_block_start" => {
                let start = value.get("content_block").unwrap_or(&Value::Null);
                let block = match start.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        if let Some(text) = start.get("text").and_then(Value::as_str).filter(|text| !text.is_empty()) {
                            self.text.push_str(text);
                            sink.event(StreamEvent::Text(text.to_owned()));
                        }
                        Block::Text
                    }
                    Some("tool_use") => {
                        let id = start.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
                        let name = start.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
                        sink.event(StreamEvent::ToolCallStarted { id: id.clone(), name: name.clone() });
                        let initial_input = start.get("input").cloned().unwrap_or(Value::Object(Map::new()));
                        Block::ToolUse { id, name, initial_input, json: String::new() }
                    }
                    _ => Block::Ignored,
                };
                self.blocks.push((index, block));
            }
            "content_block_delta" => {
                let delta = value.get("delta").unwrap_or(&Value::Null);
                match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => {
                        if let Some(text) = delta.get("text").and_then(Value::as_str).filter(|text| !text.is_empty()) {
                            self.text.push_str(text);
                            sink.event(StreamEvent::Text(text.to_owned()));
                        }
                    }
                    Some("input_json_delta") => {
                        if let Some(Block::ToolUse { json, .. }) = self.block(index)
                            && let Some(partial) = delta.get("partial_json").and_then(Value::as_str)
                        {
                            json.push_str(partial);
                        }
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(reason) = value.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.stop_reason = Some(reason.to_owned());
                }
                if let Some(usage) = value.get("usage") {
                    // Counts here are cumulative; input tokens come only in newer API versions.
                    if usage.get("output_tokens").is_some() {
                        self.usage.output_tokens = tokens(usage, "output_tokens");
                    }
                    if usage.get("input_tokens").is_some() {
                        self.usage.input_tokens = input_tokens(usage);
                        self.usage.cached_tokens = tokens(usage, "cache_read_input_tokens");
                    }
                }
            }
            "message_stop" => return Ok(Progress::Done),
            "error" => return Err(self.endpoint.event_failure(error_status(&value), data, &self.model)),
            // `ping`, `content_block_stop` and event types added later carry nothing needed here.
            _ => {}
        }
        Ok(Progress::Continue)
    }

    fn finish(self, ended: bool) -> Result<Completion, Failure> {
        if !ended && self.stop_reason.is_none() {
            return Err(Failure::Retryable(Retryable {
                cause: RetryCause::Dropped,
                retry_after: None,
                message: "the stream ended before the answer was complete".to_owned(),
            }));
        }
        let tool_calls = self
            .blocks
            .into_iter()
            .filter_map(|(_, block)| match block {
                Block::ToolUse { id, name, initial_input, json } => {
                    let (arguments, malformed_arguments) =
                        if json.is_empty() { (initial_input, None) } else { parse_arguments(&name, &json) };
                    Some(ToolCall { id, name, arguments, malformed_arguments })
                }
                Block::Text | Block::Ignored => None,
            })
            .collect();
        let stop_reason = match self.stop_reason.as_deref() {
            Some("end_turn") => StopReason::EndTurn,
            Some("tool_use") => StopReason::ToolUse,
            Some("max_tokens") => StopReason::MaxTokens,
            Some("stop_sequence") => StopReason::StopSequence,
            Some("refusal") => StopReason::ContentFilter,
            other => StopReason::Other(other.unwrap_or_default().to_owned()),
        };
        Ok(Completion { text: self.text, tool_calls, usage: self.usage, stop_reason, model: self.model })
    }
}
