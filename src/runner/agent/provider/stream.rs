//! What the two wire formats share once bytes became server-sent events: the decoder interface
//! each provider implements, the sink wrapper that notices the first delivered event, and tool
//! call arguments parsed at the end of a call.

use std::time::Duration;

use serde_json::Value;

use super::{Completion, MalformedArguments, ProviderError, StreamEvent, StreamSink};

/// Turns one provider's events into stream events and, at the end, a [`Completion`].
pub(super) trait Decoder: Send {
    /// One server-sent event (`event` is its `event:` field, `"message"` when absent).
    fn event(&mut self, event: &str, data: &str, sink: &mut dyn StreamSink) -> Result<Progress, Failure>;

    /// The stream is over: after the provider's end marker if `ended` is true, else it just
    /// stopped. Returns the assembled completion.
    fn finish(self, ended: bool) -> Result<Completion, Failure>;
}

/// Whether the stream goes on after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Progress {
    /// More events follow.
    Continue,
    /// That was the end marker (`[DONE]`, `message_stop`).
    Done,
}

/// Why one attempt failed, and whether sending it again may help.
#[derive(Debug)]
pub(super) enum Failure {
    /// Worth retrying, unless something was already delivered.
    Retryable(Retryable),
    /// Not worth retrying.
    Fatal(ProviderError),
}

/// A failure that a later attempt may not have.
#[derive(Debug)]
pub(super) struct Retryable {
    /// What kind of failure, to name the error if every attempt fails.
    pub cause: RetryCause,
    /// How long the server asked us to wait.
    pub retry_after: Option<Duration>,
    /// The server's or the transport's message, scrubbed of the key.
    pub message: String,
}

/// The kinds of failure that are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RetryCause {
    /// 429, or a rate-limit error event.
    RateLimited,
    /// A 5xx status, or an error event standing for one.
    Status(u16),
    /// The connection dropped before the answer began.
    Dropped,
}

impl Retryable {
    /// A short reason for [`StreamEvent::Retrying`].
    pub fn reason(&self) -> String {
        match self.cause {
            RetryCause::RateLimited => "429 Too Many Requests".to_owned(),
            RetryCause::Status(status) => format!("server error {status}"),
            RetryCause::Dropped => format!("connection lost: {}", self.message),
        }
    }
}

/// Passes events on and remembers whether any was: after that, a failure is not retried.
pub(super) struct Delivering<'a> {
    pub sink: &'a mut dyn StreamSink,
    pub delivered: bool,
}

impl StreamSink for Delivering<'_> {
    fn event(&mut self, event: StreamEvent) {
        self.delivered = true;
        self.sink.event(event);
    }
}

/// Parses a tool call's accumulated arguments text; empty text means no arguments (`{}`).
pub(super) fn parse_arguments(tool: &str, text: &str) -> (Value, Option<MalformedArguments>) {
    if text.trim().is_empty() {
        return (Value::Object(serde_json::Map::new()), None);
    }
    match serde_json::from_str(text) {
        Ok(value) => (value, None),
        Err(error) => (
            Value::Object(serde_json::Map::new()),
            Some(MalformedArguments { tool: tool.to_owned(), text: text.to_owned(), reason: error.to_string() }),
        ),
    }
}

/// A stream event's data as JSON, or the error that says it is not.
pub(super) fn parse_data(provider: super::ProviderKind, data: &str) -> Result<Value, Failure> {
    serde_json::from_str(data).map_err(|error| {
        Failure::Fatal(ProviderError::BadResponse {
            provider,
            reason: format!("an event is not JSON: {error}"),
            excerpt: super::excerpt(data, 300),
        })
    })
}

/// A token count from a JSON usage object (absent or not a number counts as 0).
pub(super) fn tokens(usage: &Value, field: &str) -> u64 {
    usage.get(field).and_then(Value::as_u64).unwrap_or(0)
}
