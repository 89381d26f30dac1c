//! One provider endpoint over HTTP: the client, the streamed request with its retries, and the
//! mapping of statuses and transport failures to [`ProviderError`]s.

use std::fmt::Write as _;
use std::pin::pin;
use std::time::Duration;

use eventsource_stream::{EventStreamError, Eventsource as _};
use futures_util::StreamExt as _;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{Client, StatusCode, Url};
use serde_json::Value;

use super::stream::{Decoder, Delivering, Failure, Progress, RetryCause, Retryable};
use super::{Completion, ProviderError, ProviderKind, ProviderSettings, RetryPolicy, StreamEvent, StreamSink, excerpt};
use crate::secrets::SecretValue;

/// How much of a response body an error quotes.
const EXCERPT_CHARS: usize = 300;
/// How much of a stream is kept to quote when it turns out not to be one.
const HEAD_BYTES: usize = 1024;

/// A provider's URL, client and credentials.
#[derive(Debug, Clone)]
pub(super) struct Endpoint {
    pub kind: ProviderKind,
    pub url: Url,
    client: Client,
    headers: HeaderMap,
    retry: RetryPolicy,
    overall_timeout: Duration,
    /// Only to scrub it from server messages.
    api_key: Option<SecretValue>,
}

impl Endpoint {
    /// The endpoint `path` below the settings' base URL, sending `headers` (marked sensitive
    /// where they hold credentials) with every request.
    pub fn new(settings: &ProviderSettings, path: &str, mut headers: HeaderMap) -> Result<Self, ProviderError> {
        let joined = format!("{}{path}", settings.base_url.trim_end_matches('/'));
        let url = Url::parse(&joined).map_err(|error| ProviderError::InvalidSetting {
            setting: "base URL".to_owned(),
            value: settings.base_url.clone(),
            reason: error.to_string(),
        })?;
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        // reqwest is built without a default crypto provider; ring is the one tonic uses. A
        // provider installed earlier (by anyone) is kept: `install_default` then fails harmlessly.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = Client::builder()
            .connect_timeout(settings.timeouts.connect)
            .timeout(settings.timeouts.overall)
            .user_agent(concat!("stigmer/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| ProviderError::Client { reason: error.to_string() })?;
        Ok(Self {
            kind: settings.kind,
            url,
            client,
            headers,
            retry: settings.retry,
            overall_timeout: settings.timeouts.overall,
            api_key: settings.api_key.clone(),
        })
    }

    /// Posts `body`, streams the answer through a fresh decoder per attempt, and retries what
    /// failed before anything reached `sink`.
    pub async fn stream<D: Decoder>(
        &self,
        body: &Value,
        sink: &mut dyn StreamSink,
        new_decoder: impl Fn() -> D + Send,
    ) -> Result<Completion, ProviderError> {
        let mut attempt: u32 = 1;
        loop {
            let mut delivering = Delivering { sink: &mut *sink, delivered: false };
            let retry = match self.attempt(body, &mut delivering, new_decoder()).await {
                Ok(completion) => return Ok(completion),
                Err(Failure::Fatal(error)) => return Err(error),
                Err(Failure::Retryable(retry)) => retry,
            };
            if delivering.delivered {
                // The caller already showed part of this answer; a second one would not match.
                return Err(ProviderError::Interrupted { provider: self.kind, reason: retry.message });
            }
            let delay = match retry.retry_after {
                Some(after) if after > self.retry.max_retry_after => return Err(self.exhausted(retry, attempt)),
                Some(after) => after,
                None => self.retry.backoff(attempt),
            };
            if attempt > self.retry.max_retries {
                return Err(self.exhausted(retry, attempt));
            }
            sink.event(StreamEvent::Retrying { attempt, delay, reason: retry.reason() });
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// One request and its streamed answer.
    async fn attempt<D: Decoder>(
        &self,
        body: &Value,
        sink: &mut Delivering<'_>,
        mut decoder: D,
    ) -> Result<Completion, Failure> {
        let response = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .json(body)
            .send()
            .await
            .map_err(|error| self.transport_failure(&error))?;
        let status = response.status();
        if !status.is_success() {
            let retry_after = retry_after(response.headers());
            // A body that cannot be read still leaves the status to go by.
            let text = response.text().await.unwrap_or_default();
            let model = body.get("model").and_then(Value::as_str).unwrap_or_default();
            return Err(self.status_failure(status, retry_after, &text, model));
        }
        let content_type =
            response.headers().get(CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or("").to_owned();
        if content_type.to_ascii_lowercase().contains("json") {
            let text = response.text().await.unwrap_or_default();
            return Err(Failure::Fatal(ProviderError::BadResponse {
                provider: self.kind,
                reason: format!("expected a stream of events (text/event-stream), got {content_type}"),
                excerpt: excerpt(&self.scrub(&text), EXCERPT_CHARS),
            }));
        }

        let mut head = Vec::new();
        let bytes = response.bytes_stream().map(|chunk| {
            if let Ok(bytes) = &chunk
                && head.len() < HEAD_BYTES
            {
                head.extend_from_slice(&bytes[..bytes.len().min(HEAD_BYTES - head.len())]);
            }
            chunk
        });
        // The stream borrows `head`; it ends with this block so `head` can be quoted below.
        let (seen_event, ended) = {
            let mut events = pin!(bytes.eventsource());
            let mut seen_event = false;
            let mut ended = false;
            while let Some(next) = events.next().await {
                match next {
                    Ok(event) => {
                        seen_event = true;
                        if decoder.event(&event.event, &event.data, sink)? == Progress::Done {
                            ended = true;
                            break;
                        }
                    }
                    Err(EventStreamError::Transport(error)) => {
                        if error.is_timeout() {
                            return Err(Failure::Fatal(self.timeout()));
                        }
                        return Err(Failure::Retryable(Retryable {
                            cause: RetryCause::Dropped,
                            retry_after: None,
                            message: error_chain(&error),
                        }));
                    }
                    Err(error) => {
                        return Err(Failure::Fatal(ProviderError::BadResponse {
                            provider: self.kind,
                            reason: format!("not a valid event stream: {error}"),
                            excerpt: String::new(),
                        }));
                    }
                }
            }
            (seen_event, ended)
        };
        if !seen_event && !head.is_empty() {
            return Err(Failure::Fatal(ProviderError::BadResponse {
                provider: self.kind,
                reason: "expected a stream of events (text/event-stream)".to_owned(),
                excerpt: excerpt(&self.scrub(&String::from_utf8_lossy(&head)), EXCERPT_CHARS),
            }));
        }
        decoder.finish(ended)
    }

    /// The error once retrying stops.
    fn exhausted(&self, retry: Retryable, attempts: u32) -> ProviderError {
        match retry.cause {
            RetryCause::RateLimited => ProviderError::RateLimited {
                provider: self.kind,
                attempts,
                retry_after: retry.retry_after,
                message: retry.message,
            },
            RetryCause::Status(status) => {
                ProviderError::ServerFailed { provider: self.kind, status, attempts, message: retry.message }
            }
            RetryCause::Dropped => ProviderError::Unreachable {
                provider: self.kind,
                url: self.url.to_string(),
                reason: format!("{} ({attempts} attempts)", retry.message),
            },
        }
    }

    fn timeout(&self) -> ProviderError {
        ProviderError::Timeout { provider: self.kind, url: self.url.to_string(), after: self.overall_timeout }
    }

    /// A request that got no response: nothing listens (not retried), too slow (not retried:
    /// the time is spent), or the connection dropped (retried).
    fn transport_failure(&self, error: &reqwest::Error) -> Failure {
        if error.is_connect() {
            return Failure::Fatal(ProviderError::Unreachable {
                provider: self.kind,
                url: self.url.to_string(),
                reason: error_chain(error),
            });
        }
        if error.is_timeout() {
            return Failure::Fatal(self.timeout());
        }
        Failure::Retryable(Retryable { cause: RetryCause::Dropped, retry_after: None, message: error_chain(error) })
    }

    /// A non-2xx answer, classified by status and by what the body says.
    fn status_failure(&self, status: StatusCode, retry_after: Option<Duration>, text: &str, model: &str) -> Failure {
        let reported = ErrorBody::read(text);
        let message = excerpt(&self.scrub(&reported.message), EXCERPT_CHARS);
        classify(self.kind, &self.url, status.as_u16(), retry_after, &reported, message, model)
    }

    /// An error the server sent inside the stream, classified as if it came with `status`.
    pub fn event_failure(&self, status: u16, data: &str, model: &str) -> Failure {
        let reported = ErrorBody::read(data);
        let message = excerpt(&self.scrub(&reported.message), EXCERPT_CHARS);
        classify(self.kind, &self.url, status, None, &reported, message, model)
    }

    /// `text` with the API key replaced by `***`, in case a server echoes it.
    pub fn scrub(&self, text: &str) -> String {
        match &self.api_key {
            Some(key) if !key.expose().is_empty() => text.replace(key.expose(), "***"),
            _ => text.to_owned(),
        }
    }
}

/// The Anthropic API version this code speaks.
const ANTHROPIC_VERSION: &str = "2023-06-01";

/// The headers that say who calls, as each API wants them: the key as a bearer token
/// (OpenAI-compatible), or as `x-api-key` with the API version (Anthropic); no key, no credential.
pub(super) fn auth_headers(settings: &ProviderSettings) -> Result<HeaderMap, ProviderError> {
    let mut headers = HeaderMap::new();
    if settings.kind == ProviderKind::Anthropic {
        headers.insert(HeaderName::from_static("anthropic-version"), HeaderValue::from_static(ANTHROPIC_VERSION));
    }
    if let Some(key) = &settings.api_key {
        let (name, value) = match settings.kind {
            ProviderKind::Anthropic => (HeaderName::from_static("x-api-key"), key.clone()),
            _ => (AUTHORIZATION, SecretValue::new(format!("Bearer {}", key.expose()))),
        };
        headers.insert(name, credential_header(settings.kind, &value)?);
    }
    Ok(headers)
}

/// A credential as a header value marked sensitive, so `Debug` never shows it.
fn credential_header(kind: ProviderKind, value: &SecretValue) -> Result<HeaderValue, ProviderError> {
    let mut header = HeaderValue::from_str(value.expose()).map_err(|_| ProviderError::InvalidSetting {
        setting: kind.api_key_variable().unwrap_or("the API key").to_owned(),
        // Never the value itself: it is a secret, even when malformed.
        value: "(hidden)".to_owned(),
        reason: "it contains characters an HTTP header cannot carry".to_owned(),
    })?;
    header.set_sensitive(true);
    Ok(header)
}

/// What an error body says, from the shapes servers use: `{"error": {"message", "type",
/// "code"}}` (OpenAI, Anthropic, Ollama's OpenAI API), `{"error": "…"}` (Ollama's own),
/// `{"message": …}` (vLLM), or plain text.
struct ErrorBody {
    message: String,
    error_type: Option<String>,
    code: Option<String>,
    is_json: bool,
}

impl ErrorBody {
    fn read(text: &str) -> Self {
        let Ok(value) = serde_json::from_str::<Value>(text) else {
            return Self { message: text.trim().to_owned(), error_type: None, code: None, is_json: false };
        };
        let error = value.get("error").unwrap_or(&value);
        let string = |value: Option<&Value>| match value {
            Some(Value::String(text)) => Some(text.clone()),
            Some(Value::Number(number)) => Some(number.to_string()),
            _ => None,
        };
        let message = match error {
            Value::String(message) => message.clone(),
            _ => string(error.get("message")).unwrap_or_else(|| text.trim().to_owned()),
        };
        Self { message, error_type: string(error.get("type")), code: string(error.get("code")), is_json: true }
    }

    /// Whether the server says the model does not exist, in any of the ways servers say it.
    fn is_model_not_found(&self, status: u16) -> bool {
        let message = self.message.to_ascii_lowercase();
        self.error_type.as_deref() == Some("not_found_error")
            || self.code.as_deref() == Some("model_not_found")
            || (message.contains("model") && (message.contains("not found") || message.contains("does not exist")))
            // A JSON 404 from the chat endpoint is about the model; a plain-text one is a wrong URL.
            || (status == 404 && self.is_json)
    }
}

fn classify(
    provider: ProviderKind,
    url: &Url,
    status: u16,
    retry_after: Option<Duration>,
    reported: &ErrorBody,
    message: String,
    model: &str,
) -> Failure {
    let model = model.to_owned();
    match status {
        401 | 403 => Failure::Fatal(ProviderError::AuthenticationRejected { provider, status, message }),
        429 => Failure::Retryable(Retryable { cause: RetryCause::RateLimited, retry_after, message }),
        _ if reported.is_model_not_found(status) => {
            Failure::Fatal(ProviderError::ModelNotFound { provider, model, message })
        }
        500.. => Failure::Retryable(Retryable { cause: RetryCause::Status(status), retry_after, message }),
        _ => Failure::Fatal(ProviderError::Rejected { provider, url: url.to_string(), status, message }),
    }
}

/// `retry-after` in seconds (the HTTP-date form is rare from APIs and is ignored).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let seconds: f64 = text.parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
}

/// An error and its causes on one line (reqwest's own message hides "connection refused").
fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}
