//! Behaviour of the providers against a scripted server speaking the real wire formats, and of
//! settings resolution.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::json;

use super::*;
use crate::model::agent::ModelConfig;
use crate::runner::agent::test_server::{
    Reply, ScriptedCall, ScriptedServer, anthropic_event, anthropic_start, anthropic_text, anthropic_tool_use,
    openai_chunk, openai_done, openai_text, openai_tool_calls, openai_usage,
};
use crate::secrets::SecretValue;

const KEY: &str = "sk-test-4f9c2a7e1b3d5f60";
const MODEL: &str = "qwen2.5-coder:7b";

/// Settings for `kind` at the scripted server, with a key where the provider takes one and
/// retries fast enough for tests.
fn settings_for(kind: ProviderKind, server: &ScriptedServer) -> ProviderSettings {
    let base = match kind {
        ProviderKind::Anthropic => server.base_url(),
        ProviderKind::Ollama | ProviderKind::OpenAi => format!("{}/v1", server.base_url()),
    };
    let mut settings = ProviderSettings::new(kind, MODEL, base);
    if kind != ProviderKind::Ollama {
        settings.api_key = Some(SecretValue::new(KEY));
    }
    settings.retry = RetryPolicy {
        max_retries: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(40),
        max_retry_after: Duration::from_secs(5),
    };
    settings.timeouts = Timeouts { connect: Duration::from_secs(2), overall: Duration::from_secs(10) };
    settings
}

async fn complete(
    settings: &ProviderSettings,
    request: &CompletionRequest,
) -> (Result<Completion, ProviderError>, Vec<StreamEvent>) {
    let provider = AnyProvider::new(settings).unwrap();
    let mut events = Vec::new();
    let result = provider.complete(request, &mut events).await;
    (result, events)
}

fn hello(model: &str) -> CompletionRequest {
    CompletionRequest::new(model).message(Message::user("Say hello"))
}

fn texts(events: &[StreamEvent]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|event| match event {
            StreamEvent::Text(text) => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

fn retries(events: &[StreamEvent]) -> Vec<(u32, Duration)> {
    events
        .iter()
        .filter_map(|event| match event {
            StreamEvent::Retrying { attempt, delay, .. } => Some((*attempt, *delay)),
            _ => None,
        })
        .collect()
}

fn weather_tool() -> ToolDefinition {
    ToolDefinition {
        name: "get_weather".to_owned(),
        description: "The forecast for a city.".to_owned(),
        input_schema: json!({
            "type": "object",
            "properties": { "city": { "type": "string" }, "days": { "type": "integer" } },
            "required": ["city"],
        }),
    }
}

/// A conversation that went through one tool round, with a failed and a successful result.
fn tool_round_request(model: &str) -> CompletionRequest {
    let mut request = CompletionRequest::new(model)
        .system("You are a weather assistant.")
        .message(Message::user("Weather in Paris and Oslo?"))
        .message(Message::Assistant {
            text: "Let me check.".to_owned(),
            tool_calls: vec![
                ToolCall::new("call_1", "get_weather", json!({ "city": "Paris" })),
                ToolCall::new("call_2", "get_weather", json!({ "city": "Oslo" })),
            ],
        })
        .message(Message::ToolResult(ToolResult {
            call_id: "call_1".to_owned(),
            content: "18°C, sunny".to_owned(),
            is_error: false,
        }))
        .message(Message::ToolResult(ToolResult {
            call_id: "call_2".to_owned(),
            content: "weather service timed out".to_owned(),
            is_error: true,
        }))
        .tool(weather_tool());
    request.max_tokens = Some(512);
    request.temperature = Some(0.2);
    request
}

// ---- OpenAI-compatible ---------------------------------------------------------------------

#[tokio::test]
async fn openai_text_arrives_in_deltas_in_order_and_as_the_final_text() {
    let reported = "qwen2.5-coder:7b-instruct-q4_K_M";
    let server =
        ScriptedServer::start([Reply::sse(openai_text(reported, &["Hel", "lo, ", "wor", "ld!"], (21, 5)))]).await;
    let settings = settings_for(ProviderKind::Ollama, &server);

    let (result, events) = complete(&settings, &hello(MODEL)).await;

    let completion = result.unwrap();
    assert_eq!(texts(&events), ["Hel", "lo, ", "wor", "ld!"]);
    assert_eq!(completion.text, "Hello, world!");
    assert_eq!(completion.usage, Usage { input_tokens: 21, output_tokens: 5, cached_tokens: 5 });
    assert_eq!(completion.stop_reason, StopReason::EndTurn);
    assert_eq!(completion.model, reported);
    assert!(completion.tool_calls.is_empty());

    let request = server.only_request();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v1/chat/completions");
    assert_eq!(request.header("authorization"), None, "Ollama gets no key");
    assert_eq!(request.header("accept"), Some("text/event-stream"));
    let body = request.json();
    assert_eq!(body["model"], MODEL);
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"], json!({ "include_usage": true }));
    assert_eq!(body["messages"], json!([{ "role": "user", "content": "Say hello" }]));
}

#[tokio::test]
async fn openai_stream_split_at_any_byte_and_close_delimited_reads_the_same() {
    let chunks = openai_text(MODEL, &["Grüß ", "dich ✓", " — 日本"], (3, 4));
    let server = ScriptedServer::start([Reply::sse(chunks).rechunked(7).close_delimited()]).await;
    let settings = settings_for(ProviderKind::Ollama, &server);

    let (result, events) = complete(&settings, &hello(MODEL)).await;

    assert_eq!(result.unwrap().text, "Grüß dich ✓ — 日本");
    assert_eq!(texts(&events).concat(), "Grüß dich ✓ — 日本");
}

#[tokio::test]
async fn openai_tool_call_split_across_fragments_is_assembled_with_parsed_arguments() {
    let call = ScriptedCall {
        id: "call_k3Xq",
        name: "get_weather",
        fragments: &["{\"ci", "ty\": \"Pa", "ris\", \"da", "ys\": 3}"],
    };
    let server =
        ScriptedServer::start([Reply::sse(openai_tool_calls("gpt-4o-mini-2024-07-18", &[call], (80, 22)))]).await;
    let settings = settings_for(ProviderKind::OpenAi, &server);

    let (result, events) = complete(
        &settings,
        &CompletionRequest::new("gpt-4o-mini").message(Message::user("Paris?")).tool(weather_tool()),
    )
    .await;

    let completion = result.unwrap();
    assert_eq!(
        completion.tool_calls,
        [ToolCall::new("call_k3Xq", "get_weather", json!({ "city": "Paris", "days": 3 }))]
    );
    assert_eq!(completion.stop_reason, StopReason::ToolUse);
    assert_eq!(completion.usage, Usage { input_tokens: 80, output_tokens: 22, cached_tokens: 20 });
    assert_eq!(events, [StreamEvent::ToolCallStarted { id: "call_k3Xq".to_owned(), name: "get_weather".to_owned() }]);
    assert_eq!(server.only_request().header("authorization"), Some(format!("Bearer {KEY}").as_str()));
}

#[tokio::test]
async fn openai_two_parallel_tool_calls_with_interleaved_fragments_are_kept_apart() {
    let fragment = |index: u64, arguments: &str| {
        openai_chunk(
            MODEL,
            &json!({ "tool_calls": [{ "index": index, "function": { "arguments": arguments } }] }),
            None,
        )
    };
    let start = |index: u64, id: &str, name: &str| {
        openai_chunk(
            MODEL,
            &json!({ "tool_calls": [{ "index": index, "id": id, "type": "function", "function": { "name": name, "arguments": "" } }] }),
            None,
        )
    };
    let chunks = vec![
        openai_chunk(MODEL, &json!({ "role": "assistant", "content": "Checking both." }), None),
        start(0, "call_a", "get_weather"),
        start(1, "call_b", "get_time"),
        fragment(0, "{\"city\":"),
        fragment(1, "{\"zone\":\"Europe/"),
        fragment(0, "\"Oslo\"}"),
        fragment(1, "Oslo\"}"),
        openai_chunk(MODEL, &json!({}), Some("tool_calls")),
        openai_usage(MODEL, 50, 30),
        openai_done(),
    ];
    let server = ScriptedServer::start([Reply::sse(chunks)]).await;
    let settings = settings_for(ProviderKind::Ollama, &server);

    let (result, events) = complete(&settings, &hello(MODEL)).await;

    let completion = result.unwrap();
    assert_eq!(completion.text, "Checking both.");
    assert_eq!(
        completion.tool_calls,
        [
            ToolCall::new("call_a", "get_weather", json!({ "city": "Oslo" })),
            ToolCall::new("call_b", "get_time", json!({ "zone": "Europe/Oslo" })),
        ]
    );
    let started: Vec<_> = events.iter().filter(|event| matches!(event, StreamEvent::ToolCallStarted { .. })).collect();
    assert_eq!(started.len(), 2);
}

#[tokio::test]
async fn openai_malformed_arguments_are_kept_as_an_error_for_the_tool_result() {
    let call = ScriptedCall { id: "call_1", name: "get_weather", fragments: &["{\"city\": \"Par"] };
    let server = ScriptedServer::start([Reply::sse(openai_tool_calls(MODEL, &[call], (10, 5)))]).await;
    let settings = settings_for(ProviderKind::Ollama, &server);

    let (result, _) = complete(&settings, &hello(MODEL)).await;

    let completion = result.unwrap();
    let call = &completion.tool_calls[0];
    let malformed = call.checked_arguments().unwrap_err();
    assert_eq!(malformed.text, "{\"city\": \"Par");
    let message = malformed.to_string();
    assert!(message.contains("get_weather") && message.contains("not valid JSON"), "{message}");
    // Sent back as the model wrote it, so it sees its mistake.
    let provider = OpenAiCompatible::new(&settings).unwrap();
    let body = provider.body(&CompletionRequest::new(MODEL).message(Message::assistant(&completion)));
    assert_eq!(body["messages"][0]["tool_calls"][0]["function"]["arguments"], "{\"city\": \"Par");
}

#[tokio::test]
async fn openai_request_carries_system_prompt_tools_and_tool_results() {
    let server = ScriptedServer::start([Reply::sse(openai_text(MODEL, &["Paris is sunny."], (90, 6)))]).await;
    let settings = settings_for(ProviderKind::OpenAi, &server);

    let (result, _) = complete(&settings, &tool_round_request(MODEL)).await;
    result.unwrap();

    let body = server.only_request().json();
    assert_eq!(
        body["messages"],
        json!([
            { "role": "system", "content": "You are a weather assistant." },
            { "role": "user", "content": "Weather in Paris and Oslo?" },
            { "role": "assistant", "content": "Let me check.", "tool_calls": [
                { "id": "call_1", "type": "function", "function": { "name": "get_weather", "arguments": "{\"city\":\"Paris\"}" } },
                { "id": "call_2", "type": "function", "function": { "name": "get_weather", "arguments": "{\"city\":\"Oslo\"}" } },
            ] },
            { "role": "tool", "tool_call_id": "call_1", "content": "18°C, sunny" },
            { "role": "tool", "tool_call_id": "call_2", "content": "error: weather service timed out" },
        ])
    );
    assert_eq!(
        body["tools"],
        json!([{ "type": "function", "function": {
            "name": "get_weather",
            "description": "The forecast for a city.",
            "parameters": weather_tool().input_schema,
        } }])
    );
    assert_eq!(body["max_tokens"], 512);
    assert_eq!(body["temperature"], 0.2);
}

#[test]
fn openai_itself_gets_max_completion_tokens() {
    let mut settings = ProviderSettings::new(ProviderKind::OpenAi, "gpt-4o", ProviderKind::OpenAi.default_base_url());
    settings.api_key = Some(SecretValue::new(KEY));
    let provider = OpenAiCompatible::new(&settings).unwrap();
    let mut request = hello("gpt-4o");
    request.max_tokens = Some(100);

    let body = provider.body(&request);

    assert_eq!(body["max_completion_tokens"], 100);
    assert_eq!(body.get("max_tokens"), None);
}

// ---- Anthropic -----------------------------------------------------------------------------

#[tokio::test]
async fn anthropic_text_arrives_in_deltas_with_usage_and_the_reported_model() {
    let reported = "claude-sonnet-4-5-20250929";
    let server =
        ScriptedServer::start([Reply::sse(anthropic_text(reported, &["Hello", " from", " Claude."], (25, 9)))]).await;
    let settings = settings_for(ProviderKind::Anthropic, &server);

    let (result, events) = complete(&settings, &hello("claude-sonnet-4-5")).await;

    let completion = result.unwrap();
    assert_eq!(texts(&events), ["Hello", " from", " Claude."]);
    assert_eq!(completion.text, "Hello from Claude.");
    assert_eq!(completion.usage, Usage { input_tokens: 25, output_tokens: 9, cached_tokens: 0 });
    assert_eq!(completion.stop_reason, StopReason::EndTurn);
    assert_eq!(completion.model, reported);

    let request = server.only_request();
    assert_eq!(request.path, "/v1/messages");
    assert_eq!(request.header("x-api-key"), Some(KEY));
    assert_eq!(request.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(request.header("authorization"), None);
    let body = request.json();
    assert_eq!(body["stream"], true);
    assert_eq!(body["max_tokens"], 4096, "Anthropic requires max_tokens");
    assert_eq!(body["messages"], json!([{ "role": "user", "content": [{ "type": "text", "text": "Say hello" }] }]));
    assert_eq!(body.get("system"), None);
}

#[tokio::test]
async fn anthropic_two_tool_uses_from_input_json_deltas_are_assembled() {
    let calls = [
        ScriptedCall {
            id: "toolu_01A",
            name: "get_weather",
            fragments: &["", "{\"city\": \"Pa", "ris\", \"days\"", ": 2}"],
        },
        ScriptedCall { id: "toolu_01B", name: "get_weather", fragments: &["{\"city\":", " \"Oslo\"}"] },
    ];
    let events = anthropic_tool_use("claude-sonnet-4-5", &["I'll check ", "both."], &calls, (310, 120));
    let server = ScriptedServer::start([Reply::sse(events)]).await;
    let settings = settings_for(ProviderKind::Anthropic, &server);

    let (result, events) = complete(&settings, &tool_round_request("claude-sonnet-4-5")).await;

    let completion = result.unwrap();
    assert_eq!(completion.text, "I'll check both.");
    assert_eq!(
        completion.tool_calls,
        [
            ToolCall::new("toolu_01A", "get_weather", json!({ "city": "Paris", "days": 2 })),
            ToolCall::new("toolu_01B", "get_weather", json!({ "city": "Oslo" })),
        ]
    );
    assert_eq!(completion.stop_reason, StopReason::ToolUse);
    assert_eq!(completion.usage, Usage { input_tokens: 310, output_tokens: 120, cached_tokens: 0 });
    assert_eq!(
        events,
        [
            StreamEvent::Text("I'll check ".to_owned()),
            StreamEvent::Text("both.".to_owned()),
            StreamEvent::ToolCallStarted { id: "toolu_01A".to_owned(), name: "get_weather".to_owned() },
            StreamEvent::ToolCallStarted { id: "toolu_01B".to_owned(), name: "get_weather".to_owned() },
        ]
    );
}

#[tokio::test]
async fn anthropic_request_carries_system_prompt_tools_and_tool_results() {
    let server = ScriptedServer::start([Reply::sse(anthropic_text("claude-sonnet-4-5", &["Sunny."], (1, 1)))]).await;
    let settings = settings_for(ProviderKind::Anthropic, &server);
    let mut request = tool_round_request("claude-sonnet-4-5");
    request.temperature = Some(1.6);
    request.messages.push(Message::user("And tomorrow?"));

    let (result, _) = complete(&settings, &request).await;
    result.unwrap();

    let body = server.only_request().json();
    assert_eq!(body["system"], "You are a weather assistant.");
    assert_eq!(
        body["messages"],
        json!([
            { "role": "user", "content": [{ "type": "text", "text": "Weather in Paris and Oslo?" }] },
            { "role": "assistant", "content": [
                { "type": "text", "text": "Let me check." },
                { "type": "tool_use", "id": "call_1", "name": "get_weather", "input": { "city": "Paris" } },
                { "type": "tool_use", "id": "call_2", "name": "get_weather", "input": { "city": "Oslo" } },
            ] },
            // Both results and the next question are one user turn, results first.
            { "role": "user", "content": [
                { "type": "tool_result", "tool_use_id": "call_1", "content": "18°C, sunny" },
                { "type": "tool_result", "tool_use_id": "call_2", "content": "weather service timed out", "is_error": true },
                { "type": "text", "text": "And tomorrow?" },
            ] },
        ])
    );
    assert_eq!(
        body["tools"],
        json!([{ "name": "get_weather", "description": "The forecast for a city.", "input_schema": weather_tool().input_schema }])
    );
    assert_eq!(body["max_tokens"], 512);
    assert_eq!(body["temperature"], 1.0, "Anthropic's range ends at 1");
}

#[tokio::test]
async fn anthropic_overloaded_event_before_any_text_is_retried() {
    let overloaded = vec![
        anthropic_start("claude-sonnet-4-5", 10),
        anthropic_event(&json!({ "type": "error", "error": { "type": "overloaded_error", "message": "Overloaded" } })),
    ];
    let server = ScriptedServer::start([
        Reply::sse(overloaded),
        Reply::sse(anthropic_text("claude-sonnet-4-5", &["Fine."], (10, 2))),
    ])
    .await;
    let settings = settings_for(ProviderKind::Anthropic, &server);

    let (result, events) = complete(&settings, &hello("claude-sonnet-4-5")).await;

    assert_eq!(result.unwrap().text, "Fine.");
    assert_eq!(server.requests().len(), 2);
    assert_eq!(retries(&events).len(), 1);
}

#[tokio::test]
async fn anthropic_unknown_model_is_model_not_found() {
    let body = json!({ "type": "error", "error": { "type": "not_found_error", "message": "model: claude-nope" } });
    let server = ScriptedServer::start([Reply::json_status(404, &body)]).await;
    let settings = settings_for(ProviderKind::Anthropic, &server);

    let (result, _) = complete(&settings, &hello("claude-nope")).await;

    let error = result.unwrap_err();
    assert!(
        matches!(&error, ProviderError::ModelNotFound { provider: ProviderKind::Anthropic, model, .. } if model == "claude-nope"),
        "{error:?}"
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn anthropic_stream_that_stops_without_its_end_after_text_is_interrupted() {
    let mut events = vec![anthropic_start("claude-sonnet-4-5", 10)];
    events.extend(crate::runner::agent::test_server::anthropic_text_block(0, &["Part one", " and"]));
    let server = ScriptedServer::start([Reply::sse(events)]).await;
    let settings = settings_for(ProviderKind::Anthropic, &server);

    let (result, events) = complete(&settings, &hello("claude-sonnet-4-5")).await;

    assert!(matches!(result, Err(ProviderError::Interrupted { .. })), "{result:?}");
    assert_eq!(texts(&events), ["Part one", " and"]);
    assert_eq!(server.requests().len(), 1, "not retried once text was shown");
}

// ---- Retries and errors ----------------------------------------------------------------------

#[tokio::test]
async fn rate_limited_429_waits_for_retry_after_then_succeeds() {
    let limited = json!({ "error": { "message": "Rate limit reached for gpt-4o-mini", "type": "requests", "code": "rate_limit_exceeded" } });
    let server = ScriptedServer::start([Reply::json_status(429, &limited).header("retry-after", "1")]).await;
    server.push(Reply::sse(openai_text(MODEL, &["ok"], (1, 1))));
    let settings = settings_for(ProviderKind::OpenAi, &server);
    let started = Instant::now();

    let (result, events) = complete(&settings, &hello(MODEL)).await;

    assert_eq!(result.unwrap().text, "ok");
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let waited = requests[1].at.duration_since(requests[0].at);
    assert!(waited >= Duration::from_millis(950), "waited only {waited:?}");
    assert!(started.elapsed() >= Duration::from_millis(950));
    assert_eq!(retries(&events), [(1, Duration::from_secs(1))]);
}

#[tokio::test]
async fn server_error_twice_then_success_is_retried_with_backoff() {
    let failing = json!({ "error": { "message": "internal error", "type": "server_error" } });
    let server = ScriptedServer::start([
        Reply::json_status(500, &failing),
        Reply::json_status(503, &failing),
        Reply::sse(openai_text(MODEL, &["third time"], (1, 2))),
    ])
    .await;
    let settings = settings_for(ProviderKind::Ollama, &server);

    let (result, events) = complete(&settings, &hello(MODEL)).await;

    assert_eq!(result.unwrap().text, "third time");
    assert_eq!(server.requests().len(), 3);
    assert_eq!(retries(&events), [(1, Duration::from_millis(10)), (2, Duration::from_millis(20))]);
}

#[tokio::test]
async fn server_errors_past_the_retry_budget_fail_with_the_attempt_count() {
    let server = ScriptedServer::start((0..4).map(|_| Reply::text_status(502, "bad gateway"))).await;
    let settings = settings_for(ProviderKind::Ollama, &server);

    let (result, _) = complete(&settings, &hello(MODEL)).await;

    assert_eq!(
        result.unwrap_err(),
        ProviderError::ServerFailed {
            provider: ProviderKind::Ollama,
            status: 502,
            attempts: 4,
            message: "bad gateway".to_owned()
        }
    );
    assert_eq!(server.requests().len(), 4);
}

#[tokio::test]
async fn rate_limited_past_the_retry_budget_is_rate_limited() {
    let server = ScriptedServer::start((0..4).map(|_| Reply::text_status(429, "slow down"))).await;
    let settings = settings_for(ProviderKind::OpenAi, &server);

    let (result, _) = complete(&settings, &hello(MODEL)).await;

    let error = result.unwrap_err();
    assert!(matches!(error, ProviderError::RateLimited { attempts: 4, .. }), "{error:?}");
    assert!(error.hint().unwrap().contains("try again"));
}

#[tokio::test]
async fn retry_after_longer_than_the_cap_fails_at_once() {
    let server = ScriptedServer::start([Reply::text_status(429, "quota").header("retry-after", "3600")]).await;
    let settings = settings_for(ProviderKind::OpenAi, &server);

    let (result, _) = complete(&settings, &hello(MODEL)).await;

    let error = result.unwrap_err();
    assert!(
        matches!(error, ProviderError::RateLimited { attempts: 1, retry_after: Some(after), .. } if after == Duration::from_hours(1)),
        "{error:?}"
    );
    assert_eq!(error.hint().unwrap(), "wait about 3600s and try again");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn bad_request_400_is_not_retried() {
    let body = json!({ "error": { "message": "'messages' must contain at least one message", "type": "invalid_request_error" } });
    let server = ScriptedServer::start([Reply::json_status(400, &body)]).await;
    let settings = settings_for(ProviderKind::OpenAi, &server);

    let (result, events) = complete(&settings, &hello(MODEL)).await;

    match result.unwrap_err() {
        ProviderError::Rejected { status: 400, message, .. } => {
            assert_eq!(message, "'messages' must contain at least one message");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(server.requests().len(), 1);
    assert!(events.is_empty());
}

#[tokio::test]
async fn unauthorized_401_is_an_authentication_error_without_the_key() {
    let body = json!({ "error": {
        "message": format!("Incorrect API key provided: {KEY}. You can find your API key at https://platform.openai.com/account/api-keys."),
        "type": "invalid_request_error", "code": "invalid_api_key",
    } });
    let server = ScriptedServer::start([Reply::json_status(401, &body)]).await;
    let settings = settings_for(ProviderKind::OpenAi, &server);

    let (result, _) = complete(&settings, &hello(MODEL)).await;

    let error = result.unwrap_err();
    assert!(matches!(error, ProviderError::AuthenticationRejected { status: 401, .. }), "{error:?}");
    assert!(!error.to_string().contains(KEY), "{error}");
    assert!(!format!("{error:?}").contains(KEY));
    assert!(error.hint().unwrap().contains("OPENAI_API_KEY"));
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn ollama_missing_model_is_model_not_found_with_a_pull_hint() {
    let body = json!({ "error": {
        "message": "model \"llama9\" not found, try pulling it first", "type": "api_error", "param": null, "code": null,
    } });
    let server = ScriptedServer::start([Reply::json_status(404, &body)]).await;
    let settings = settings_for(ProviderKind::Ollama, &server);

    let (result, _) = complete(&settings, &hello("llama9")).await;

    let error = result.unwrap_err();
    assert_eq!(
        error,
        ProviderError::ModelNotFound {
            provider: ProviderKind::Ollama,
            model: "llama9".to_owned(),
            message: "model \"llama9\" not found, try pulling it first".to_owned(),
        }
    );
    assert_eq!(error.hint().unwrap(), "download it with `ollama pull llama9`, or name another model");
}

#[tokio::test]
async fn openai_unknown_model_is_model_not_found() {
    let body = json!({ "error": {
        "message": "The model `gpt-9` does not exist or you do not have access to it.",
        "type": "invalid_request_error", "param": null, "code": "model_not_found",
    } });
    let server = ScriptedServer::start([Reply::json_status(404, &body)]).await;
    let settings = settings_for(ProviderKind::OpenAi, &server);

    let (result, _) = complete(&settings, &hello("gpt-9")).await;

    assert!(matches!(result, Err(ProviderError::ModelNotFound { provider: ProviderKind::OpenAi, .. })), "{result:?}");
}

#[tokio::test]
async fn plain_404_is_a_wrong_url_not_a_missing_model() {
    let server = ScriptedServer::start([Reply::text_status(404, "404 page not found")]).await;
    let settings = settings_for(ProviderKind::Ollama, &server);

    let (result, _) = complete(&settings, &hello(MODEL)).await;

    let error = result.unwrap_err();
    assert!(matches!(error, ProviderError::Rejected { status: 404, .. }), "{error:?}");
    assert!(error.hint().unwrap().contains("base URL"));
}

#[tokio::test]
async fn connection_refused_is_unreachable_with_the_ollama_hint() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let settings = ProviderSettings::new(ProviderKind::Ollama, MODEL, format!("http://{address}/v1"));
    let started = Instant::now();

    let (result, events) = complete(&settings, &hello(MODEL)).await;

    let error = result.unwrap_err();
    match &error {
        ProviderError::Unreachable { provider: ProviderKind::Ollama, url, reason } => {
            assert_eq!(url, &format!("http://{address}/v1/chat/completions"));
            assert!(reason.to_lowercase().contains("refused"), "{reason}");
        }
        other => panic!("expected unreachable, got {other:?}"),
    }
    assert!(error.to_string().starts_with(&format!("cannot reach ollama at http://{address}/v1/chat/completions")));
    assert!(error.hint().unwrap().contains("start it with `ollama serve`, or set a provider"));
    assert!(retries(&events).is_empty(), "nothing listens: not retried");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn connection_dropped_before_the_answer_is_retried() {
    let server = ScriptedServer::start([Reply::Hangup, Reply::sse(openai_text(MODEL, &["back"], (1, 1)))]).await;
    let settings = settings_for(ProviderKind::Ollama, &server);

    let (result, events) = complete(&settings, &hello(MODEL)).await;

    assert_eq!(result.unwrap().text, "back");
    assert_eq!(server.requests().len(), 2);
    assert_eq!(retries(&events).len(), 1);
}

#[tokio::test]
async fn stream_cut_before_any_text_is_retried() {
    // The first chunk (role only, empty content) delivers nothing to the caller.
    let server = ScriptedServer::start([
        Reply::sse(openai_text(MODEL, &["lost"], (1, 1))).cut_after(1),
        Reply::sse(openai_text(MODEL, &["kept"], (1, 1))),
    ])
    .await;
    let settings = settings_for(ProviderKind::Ollama, &server);

    let (result, events) = complete(&settings, &hello(MODEL)).await;

    assert_eq!(result.unwrap().text, "kept");
    assert_eq!(texts(&events), ["kept"]);
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn stream_cut_after_text_was_delivered_is_interrupted_not_retried() {
    let server =
        ScriptedServer::start([Reply::sse(openai_text(MODEL, &["Once upon", " a time"], (1, 1))).cut_after(3)]).await;
    let settings = settings_for(ProviderKind::Ollama, &server);

    let (result, events) = complete(&settings, &hello(MODEL)).await;

    assert!(matches!(result, Err(ProviderError::Interrupted { provider: ProviderKind::Ollama, .. })), "{result:?}");
    assert_eq!(texts(&events), ["Once upon", " a time"]);
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_server_slower_than_the_timeout_times_out() {
    let server = ScriptedServer::start([Reply::Stall(Duration::from_secs(5))]).await;
    let mut settings = settings_for(ProviderKind::Ollama, &server);
    settings.timeouts.overall = Duration::from_millis(300);
    let started = Instant::now();

    let (result, _) = complete(&settings, &hello(MODEL)).await;

    assert!(matches!(result, Err(ProviderError::Timeout { .. })), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_json_body_instead_of_a_stream_is_a_bad_response_with_an_excerpt() {
    let body = json!({ "id": "chatcmpl-1", "object": "chat.completion", "choices": [] });
    let server = ScriptedServer::start([Reply::json_status(200, &body)]).await;
    let settings = settings_for(ProviderKind::Ollama, &server);

    let (result, _) = complete(&settings, &hello(MODEL)).await;

    match result.unwrap_err() {
        ProviderError::BadResponse { excerpt, reason, .. } => {
            assert!(reason.contains("text/event-stream"), "{reason}");
            assert!(excerpt.contains("chat.completion"), "{excerpt}");
        }
        other => panic!("expected a bad response, got {other:?}"),
    }
}

#[tokio::test]
async fn an_event_that_is_not_json_is_a_bad_response() {
    let server = ScriptedServer::start([Reply::sse(vec!["data: {\"choices\": [oops\n\n".to_owned()])]).await;
    let settings = settings_for(ProviderKind::Ollama, &server);

    let (result, _) = complete(&settings, &hello(MODEL)).await;

    match result.unwrap_err() {
        ProviderError::BadResponse { excerpt, .. } => assert_eq!(excerpt, "{\"choices\": [oops"),
        other => panic!("expected a bad response, got {other:?}"),
    }
}

#[tokio::test]
async fn the_key_never_shows_in_debug_of_settings_or_provider() {
    let server = ScriptedServer::start([]).await;
    for kind in [ProviderKind::OpenAi, ProviderKind::Anthropic] {
        let settings = settings_for(kind, &server);
        let provider = AnyProvider::new(&settings).unwrap();
        assert!(!format!("{settings:?}").contains(KEY), "{settings:?}");
        assert!(!format!("{provider:?}").contains(KEY), "{provider:?}");
        assert!(!format!("{provider:#?}").contains(&KEY[3..]));
    }
}

// ---- Settings resolution -------------------------------------------------------------------

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    move |name| map.get(name).cloned()
}

fn spec(provider: Option<&str>, name: Option<&str>, base_url: Option<&str>) -> ModelConfig {
    ModelConfig {
        provider: provider.map(str::to_owned),
        name: name.map(str::to_owned),
        base_url: base_url.map(str::to_owned),
        ..ModelConfig::default()
    }
}

fn resolve(
    flag: Option<&str>,
    model: Option<&ModelConfig>,
    env: &[(&str, &str)],
) -> Result<ProviderSettings, ProviderError> {
    resolve_settings(&SettingsSources { model_flag: flag, spec: model, api_key: None }, env_of(env))
}

fn chosen(settings: &ProviderSettings) -> (ProviderKind, &str, &str) {
    (settings.kind, settings.model.as_str(), settings.base_url.as_str())
}

#[test]
fn nothing_configured_is_local_ollama_with_the_default_model() {
    let settings = resolve(None, None, &[]).unwrap();
    assert_eq!(chosen(&settings), (ProviderKind::Ollama, "qwen2.5-coder:7b", "http://localhost:11434/v1"));
    assert_eq!(settings.api_key, None);
    assert_eq!(settings.timeouts, Timeouts::default());
}

#[test]
fn environment_beats_defaults() {
    let env = [
        (ENV_LLM_PROVIDER, "openai"),
        (ENV_LLM_MODEL, "meta-llama/Llama-3.1-8B-Instruct"),
        (ENV_LLM_BASE_URL, "http://gpu-box:8000/v1/"),
    ];
    let settings = resolve(None, None, &env).unwrap();
    assert_eq!(chosen(&settings), (ProviderKind::OpenAi, "meta-llama/Llama-3.1-8B-Instruct", "http://gpu-box:8000/v1"));
    assert_eq!(settings.api_key, None, "a self-hosted OpenAI-compatible server needs no key");
}

#[test]
fn agent_spec_beats_environment_and_ignores_its_model_for_another_provider() {
    let env = [(ENV_LLM_PROVIDER, "ollama"), (ENV_LLM_MODEL, "llama3.2"), (ENV_ANTHROPIC_API_KEY, KEY)];
    let settings = resolve(None, Some(&spec(Some("anthropic"), None, None)), &env).unwrap();
    assert_eq!(chosen(&settings), (ProviderKind::Anthropic, "claude-sonnet-4-5", "https://api.anthropic.com"));
    assert_eq!(settings.api_key.as_ref().map(SecretValue::expose), Some(KEY));
}

#[test]
fn environment_without_a_provider_fills_in_for_the_spec_provider() {
    let env = [(ENV_LLM_MODEL, "Qwen/Qwen2.5-7B-Instruct")];
    let settings = resolve(None, Some(&spec(Some("openai"), None, Some("http://localhost:1234/v1"))), &env).unwrap();
    assert_eq!(chosen(&settings), (ProviderKind::OpenAi, "Qwen/Qwen2.5-7B-Instruct", "http://localhost:1234/v1"));
}

#[test]
fn model_flag_beats_spec_and_drops_the_spec_url_of_another_provider() {
    let model = spec(Some("ollama"), Some("llama3.2"), Some("http://ollama-box:11434/v1"));
    let settings = resolve(Some("openai/gpt-4o"), Some(&model), &[(ENV_OPENAI_API_KEY, KEY)]).unwrap();
    assert_eq!(chosen(&settings), (ProviderKind::OpenAi, "gpt-4o", "https://api.openai.com/v1"));
    assert_eq!(settings.api_key.as_ref().map(SecretValue::expose), Some(KEY));
}

#[test]
fn model_flag_without_a_provider_keeps_the_spec_provider_and_url() {
    let model = spec(Some("ollama"), Some("llama3.2"), Some("http://ollama-box:11434/v1"));
    let settings = resolve(Some("mistral-nemo"), Some(&model), &[]).unwrap();
    assert_eq!(chosen(&settings), (ProviderKind::Ollama, "mistral-nemo", "http://ollama-box:11434/v1"));
}

#[test]
fn model_flag_forms() {
    let parse = |text: &str| ModelChoice::parse(text).unwrap();
    assert_eq!(
        parse("anthropic/claude-opus-4-1"),
        ModelChoice { provider: Some(ProviderKind::Anthropic), model: Some("claude-opus-4-1".to_owned()) }
    );
    assert_eq!(parse("llama3.2:3b"), ModelChoice { provider: None, model: Some("llama3.2:3b".to_owned()) });
    // Slashes inside model names stay: only a provider's name is a prefix.
    assert_eq!(
        parse("hf.co/bartowski/Llama-3.2-1B-GGUF"),
        ModelChoice { provider: None, model: Some("hf.co/bartowski/Llama-3.2-1B-GGUF".to_owned()) }
    );
    assert_eq!(
        parse("ollama/hf.co/org/m:Q4"),
        ModelChoice { provider: Some(ProviderKind::Ollama), model: Some("hf.co/org/m:Q4".to_owned()) }
    );
    assert_eq!(parse("Anthropic"), ModelChoice { provider: Some(ProviderKind::Anthropic), model: None });
    assert!(matches!(ModelChoice::parse("openai/"), Err(ProviderError::InvalidSetting { .. })));
    assert!(matches!(ModelChoice::parse("  "), Err(ProviderError::InvalidSetting { .. })));

    let settings = resolve(Some("anthropic"), None, &[(ENV_ANTHROPIC_API_KEY, KEY)]).unwrap();
    assert_eq!(settings.model, "claude-sonnet-4-5");
}

#[test]
fn spec_sampling_settings_reach_the_request() {
    let model = ModelConfig { temperature: Some(0.3), max_tokens: Some(1024), ..spec(None, Some("llama3.2"), None) };
    let settings = resolve(None, Some(&model), &[]).unwrap();
    let request = settings.request();
    assert_eq!((request.model.as_str(), request.temperature, request.max_tokens), ("llama3.2", Some(0.3), Some(1024)));
}

#[test]
fn unknown_provider_names_its_origin_and_lists_the_providers() {
    let error = resolve(None, Some(&spec(Some("gemini"), None, None)), &[]).unwrap_err();
    assert_eq!(
        error,
        ProviderError::UnknownProvider { given: "gemini".to_owned(), origin: "spec.model.provider".to_owned() }
    );
    assert!(error.hint().unwrap().contains("ollama, openai, anthropic"));

    let error = resolve(None, None, &[(ENV_LLM_PROVIDER, "vertex")]).unwrap_err();
    assert!(matches!(error, ProviderError::UnknownProvider { origin, .. } if origin == ENV_LLM_PROVIDER));
}

#[test]
fn missing_keys_name_the_variable() {
    let error = resolve(Some("anthropic/claude-sonnet-4-5"), None, &[]).unwrap_err();
    assert_eq!(
        error,
        ProviderError::ApiKeyMissing { provider: ProviderKind::Anthropic, variable: "ANTHROPIC_API_KEY" }
    );
    assert_eq!(error.to_string(), "anthropic needs an API key and ANTHROPIC_API_KEY is not set");
    assert!(error.hint().unwrap().starts_with("set ANTHROPIC_API_KEY"));

    let error = resolve(Some("openai/gpt-4o"), None, &[(ENV_OPENAI_API_KEY, "  ")]).unwrap_err();
    assert_eq!(error, ProviderError::ApiKeyMissing { provider: ProviderKind::OpenAi, variable: "OPENAI_API_KEY" });
}

#[test]
fn a_key_from_the_caller_beats_the_environment() {
    let sources = SettingsSources {
        model_flag: Some("openai/gpt-4o"),
        spec: None,
        api_key: Some(SecretValue::new("sk-from-secret")),
    };
    let settings = resolve_settings(&sources, env_of(&[(ENV_OPENAI_API_KEY, KEY)])).unwrap();
    assert_eq!(settings.api_key.as_ref().map(SecretValue::expose), Some("sk-from-secret"));
    assert!(!format!("{settings:?}").contains("sk-from-secret"), "{settings:?}");
}

#[test]
fn bad_values_are_reported_with_their_setting() {
    let error = resolve(None, None, &[(ENV_LLM_BASE_URL, "localhost:11434")]).unwrap_err();
    assert!(
        matches!(&error, ProviderError::InvalidSetting { setting, .. } if setting == ENV_LLM_BASE_URL),
        "{error:?}"
    );

    let error = resolve(None, Some(&spec(None, None, Some("not a url"))), &[]).unwrap_err();
    assert!(
        matches!(&error, ProviderError::InvalidSetting { setting, .. } if setting == "spec.model.baseUrl"),
        "{error:?}"
    );

    let error = resolve(None, None, &[(ENV_LLM_TIMEOUT, "soon")]).unwrap_err();
    assert!(matches!(&error, ProviderError::InvalidSetting { setting, .. } if setting == ENV_LLM_TIMEOUT), "{error:?}");

    let settings = resolve(None, None, &[(ENV_LLM_TIMEOUT, "45")]).unwrap();
    assert_eq!(settings.timeouts.overall, Duration::from_secs(45));
}

#[test]
fn empty_environment_values_count_as_unset() {
    let env = [(ENV_LLM_PROVIDER, ""), (ENV_LLM_MODEL, " "), (ENV_LLM_BASE_URL, "")];
    let settings = resolve(None, None, &env).unwrap();
    assert_eq!(chosen(&settings), (ProviderKind::Ollama, "qwen2.5-coder:7b", "http://localhost:11434/v1"));
}

#[test]
fn no_error_message_contains_a_key() {
    let key_variable_errors = [
        ProviderError::ApiKeyMissing { provider: ProviderKind::OpenAi, variable: ENV_OPENAI_API_KEY },
        // A key that cannot be a header value is reported without its value.
        OpenAiCompatible::new(&ProviderSettings {
            api_key: Some(SecretValue::new(format!("{KEY}\n"))),
            ..ProviderSettings::new(ProviderKind::OpenAi, "gpt-4o", "https://api.openai.com/v1")
        })
        .unwrap_err(),
    ];
    for error in key_variable_errors {
        assert!(!error.to_string().contains(KEY), "{error}");
        assert!(!format!("{error:?}").contains(KEY), "{error:?}");
    }
}

#[test]
fn backoff_doubles_up_to_its_cap() {
    let policy = RetryPolicy::default();
    let delays: Vec<Duration> = (1..=6).map(|retry| policy.backoff(retry)).collect();
    let millis: Vec<u128> = delays.iter().map(Duration::as_millis).collect();
    assert_eq!(millis, [500, 1000, 2000, 4000, 8000, 8000]);
}
