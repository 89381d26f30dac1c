//! Why a model could not answer, with what the CLI needs to say what to do about it.
//!
//! No variant holds an API key: messages from servers are scrubbed of it before they get here.

use std::time::Duration;

use super::ProviderKind;
use super::settings::{ENV_LLM_BASE_URL, ENV_LLM_PROVIDER};

/// Why a provider could not be set up or did not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// Nothing answered at the provider's URL (connection refused, unknown host, TLS failure).
    #[error("cannot reach {provider} at {url}: {reason}")]
    Unreachable {
        /// The provider.
        provider: ProviderKind,
        /// The URL called.
        url: String,
        /// The transport's reason.
        reason: String,
    },
    /// The server does not have the model.
    #[error("{provider} has no model \"{model}\": {message}")]
    ModelNotFound {
        /// The provider.
        provider: ProviderKind,
        /// The model requested.
        model: String,
        /// The server's message.
        message: String,
    },
    /// The provider needs an API key and none was given.
    #[error("{provider} needs an API key and {variable} is not set")]
    ApiKeyMissing {
        /// The provider.
        provider: ProviderKind,
        /// The variable to set.
        variable: &'static str,
    },
    /// The server refused the API key (401 or 403).
    #[error("{provider} rejected the credentials ({status}): {message}")]
    AuthenticationRejected {
        /// The provider.
        provider: ProviderKind,
        /// 401 or 403.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// Still 429 after every retry, or told to wait longer than stigmer waits.
    #[error("{provider} is rate limiting requests (429 after {attempts} attempts): {message}")]
    RateLimited {
        /// The provider.
        provider: ProviderKind,
        /// Requests sent.
        attempts: u32,
        /// The last `retry-after`, if the server sent one.
        retry_after: Option<Duration>,
        /// The server's message.
        message: String,
    },
    /// The server refused the request (a 4xx other than 401, 403, 404-for-the-model and 429).
    #[error("{provider} refused the request at {url} ({status}): {message}")]
    Rejected {
        /// The provider.
        provider: ProviderKind,
        /// The URL called.
        url: String,
        /// The status.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// Still 5xx after every retry.
    #[error("{provider} failed ({status} after {attempts} attempts): {message}")]
    ServerFailed {
        /// The provider.
        provider: ProviderKind,
        /// The last status.
        status: u16,
        /// Requests sent.
        attempts: u32,
        /// The server's message.
        message: String,
    },
    /// No answer within the configured time.
    #[error("{provider} did not answer within {}s at {url}", .after.as_secs_f32())]
    Timeout {
        /// The provider.
        provider: ProviderKind,
        /// The URL called.
        url: String,
        /// The limit that passed.
        after: Duration,
    },
    /// The stream broke off after it began (so the call was not retried).
    #[error("the answer from {provider} broke off: {reason}")]
    Interrupted {
        /// The provider.
        provider: ProviderKind,
        /// Why.
        reason: String,
    },
    /// The server answered with something that is not the protocol.
    #[error("{provider} sent a response stigmer cannot read ({reason}): {excerpt}")]
    BadResponse {
        /// The provider.
        provider: ProviderKind,
        /// What is wrong.
        reason: String,
        /// The start of what was received.
        excerpt: String,
    },
    /// A provider name that is not one of ours.
    #[error("unknown LLM provider \"{given}\" (from {origin})")]
    UnknownProvider {
        /// The name given.
        given: String,
        /// Where it came from: `--model`, `spec.model.provider` or `STIGMER_LLM_PROVIDER`.
        origin: String,
    },
    /// A setting whose value cannot be used.
    #[error("{setting} = \"{value}\" cannot be used: {reason}")]
    InvalidSetting {
        /// The setting, e.g. `STIGMER_LLM_TIMEOUT`.
        setting: String,
        /// Its value.
        value: String,
        /// Why.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot create the HTTP client: {reason}")]
    Client {
        /// Why.
        reason: String,
    },
}

impl ProviderError {
    /// What the user can do about it, for the CLI's `hint:` line.
    pub fn hint(&self) -> Option<String> {
        let choose = format!("choose a provider with --model provider/model, spec.model or {ENV_LLM_PROVIDER}");
        match self {
            Self::Unreachable { provider: ProviderKind::Ollama, .. } => Some(format!(
                "is Ollama running? start it with `ollama serve`, or set a provider ({choose}); \
                 a server elsewhere is set with spec.model.baseUrl or {ENV_LLM_BASE_URL}"
            )),
            Self::Unreachable { .. } => {
                Some(format!("check the network and the base URL (spec.model.baseUrl or {ENV_LLM_BASE_URL})"))
            }
            Self::ModelNotFound { provider: ProviderKind::Ollama, model, .. } => {
                Some(format!("download it with `ollama pull {model}`, or name another model"))
            }
            Self::ModelNotFound { .. } => {
                Some("check the model's name (--model, spec.model.name or STIGMER_LLM_MODEL)".to_owned())
            }
            Self::ApiKeyMissing { variable, .. } => {
                Some(format!("set {variable}, or pass the key from a secret; or {choose}"))
            }
            Self::AuthenticationRejected { provider, .. } => Some(match provider.api_key_variable() {
                Some(variable) => format!("check the key in {variable}: it may be wrong, revoked or lack access"),
                None => "the server wants credentials; check how it is configured".to_owned(),
            }),
            Self::RateLimited { retry_after: Some(after), .. } => {
                Some(format!("wait about {}s and try again", after.as_secs().max(1)))
            }
            Self::RateLimited { .. } => Some("wait a little and try again, or check the account's limits".to_owned()),
            Self::Rejected { status: 404, .. } => Some(format!(
                "the URL is not an API endpoint; check the base URL (an OpenAI-compatible one usually ends in /v1), \
                 set with spec.model.baseUrl or {ENV_LLM_BASE_URL}"
            )),
            Self::Timeout { .. } => {
                Some(format!("the model may be loading or slow; raise {} (seconds)", super::ENV_LLM_TIMEOUT))
            }
            Self::UnknownProvider { .. } => Some(format!(
                "the providers are {}; an OpenAI-compatible server (vLLM, LM Studio) is `openai` with its base URL",
                ProviderKind::ALL.map(ProviderKind::name).join(", ")
            )),
            Self::ServerFailed { .. } | Self::Interrupted { .. } => Some("try again in a moment".to_owned()),
            Self::Rejected { .. } | Self::BadResponse { .. } | Self::InvalidSetting { .. } | Self::Client { .. } => {
                None
            }
        }
    }
}
