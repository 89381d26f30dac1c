//! Which provider, model, URL and key a run uses, resolved once by a pure function.
//!
//! Order: the `--model` flag > the agent's `spec.model` > the environment (`STIGMER_LLM_*`) >
//! the provider's defaults (Ollama, `qwen2.5-coder:7b`, `http://localhost:11434/v1`). The
//! provider comes from the first layer that names one; the model and base URL from the first
//! layer that names them *and* does not name another provider — so `STIGMER_LLM_MODEL=llama3`
//! meant for Ollama is not sent to Anthropic because an agent's spec says `anthropic`. The
//! environment is passed in as a lookup, so this never reads the process's.

use std::time::Duration;

use reqwest::Url;

use super::{CompletionRequest, ProviderError, ProviderKind};
use crate::model::agent::ModelConfig;
use crate::secrets::SecretValue;

/// `STIGMER_LLM_PROVIDER`: the provider when neither `--model` nor the agent names one
/// (`ollama`, `openai` or `anthropic`).
pub const ENV_LLM_PROVIDER: &str = "STIGMER_LLM_PROVIDER";
/// `STIGMER_LLM_MODEL`: the model when neither `--model` nor the agent names one.
pub const ENV_LLM_MODEL: &str = "STIGMER_LLM_MODEL";
/// `STIGMER_LLM_BASE_URL`: the provider's base URL when the agent does not set one (e.g. a vLLM
/// server at `http://gpu-box:8000/v1`).
pub const ENV_LLM_BASE_URL: &str = "STIGMER_LLM_BASE_URL";
/// `STIGMER_LLM_TIMEOUT`: seconds one model request may take, streaming included (default 600).
pub const ENV_LLM_TIMEOUT: &str = "STIGMER_LLM_TIMEOUT";
/// `OPENAI_API_KEY`: the key for OpenAI (sent as a bearer token).
pub const ENV_OPENAI_API_KEY: &str = "OPENAI_API_KEY";
/// `ANTHROPIC_API_KEY`: the key for Anthropic (sent as `x-api-key`).
pub const ENV_ANTHROPIC_API_KEY: &str = "ANTHROPIC_API_KEY";

/// Anthropic requires `max_tokens`; this is sent when nothing sets it.
pub(crate) const ANTHROPIC_DEFAULT_MAX_TOKENS: u32 = 4096;

/// A `--model` value: `provider/model`, `model`, or just `provider` (its default model).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelChoice {
    /// The provider, when the value starts with a provider's name and `/`.
    pub provider: Option<ProviderKind>,
    /// The model, unless the value is only a provider's name.
    pub model: Option<String>,
}

impl ModelChoice {
    /// Reads `ollama/llama3.2`, `anthropic/claude-sonnet-4-5`, `llama3.2` or `anthropic`.
    ///
    /// Only a known provider's name counts as a prefix, so model names with slashes
    /// (`hf.co/org/model`, `meta-llama/Llama-3.1-8B`) stay whole.
    pub fn parse(text: &str) -> Result<Self, ProviderError> {
        let text = text.trim();
        let invalid = |reason: &str| ProviderError::InvalidSetting {
            setting: "--model".to_owned(),
            value: text.to_owned(),
            reason: reason.to_owned(),
        };
        if text.is_empty() {
            return Err(invalid("it is empty; write provider/model or model"));
        }
        if let Some(provider) = ProviderKind::from_name(text) {
            return Ok(Self { provider: Some(provider), model: None });
        }
        if let Some((prefix, model)) = text.split_once('/')
            && let Some(provider) = ProviderKind::from_name(prefix)
        {
            if model.trim().is_empty() {
                return Err(invalid("the model after the provider is missing"));
            }
            return Ok(Self { provider: Some(provider), model: Some(model.trim().to_owned()) });
        }
        Ok(Self { provider: None, model: Some(text.to_owned()) })
    }
}

/// How long a request may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// To open the connection.
    pub connect: Duration,
    /// For the whole request, the streamed answer included.
    pub overall: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        // Local models can take minutes to load and answer on a CPU; the overall bound is for a
        // server that stalls, not for a slow one.
        Self { connect: Duration::from_secs(10), overall: Duration::from_mins(10) }
    }
}

/// When and how often a failed request is sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The delay before the first retry; doubled for each next one.
    pub base_delay: Duration,
    /// The longest delay between attempts when the server does not say.
    pub max_delay: Duration,
    /// The longest `retry-after` waited for; a longer one fails at once.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            max_retry_after: Duration::from_mins(1),
        }
    }
}

impl RetryPolicy {
    /// The delay before retry `retry` (1 for the first) when the server did not say.
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// Everything needed to talk to one provider. The key never shows in `Debug`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderSettings {
    /// Which API.
    pub kind: ProviderKind,
    /// The model's name at the provider.
    pub model: String,
    /// The API's base URL, without a trailing `/`.
    pub base_url: String,
    /// The API key, if the provider takes one.
    pub api_key: Option<SecretValue>,
    /// Sampling temperature from the agent's spec.
    pub temperature: Option<f64>,
    /// Most tokens per answer from the agent's spec.
    pub max_tokens: Option<u32>,
    /// Connect and overall timeouts.
    pub timeouts: Timeouts,
    /// Retries of failed requests.
    pub retry: RetryPolicy,
}

impl ProviderSettings {
    /// Settings for `kind` at `base_url` with `model`, no key, and default timeouts and retries.
    pub fn new(kind: ProviderKind, model: impl Into<String>, base_url: impl Into<String>) -> Self {
        Self {
            kind,
            model: model.into(),
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            api_key: None,
            temperature: None,
            max_tokens: None,
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
        }
    }

    /// An empty request for this model, with the spec's temperature and `max_tokens`.
    pub fn request(&self) -> CompletionRequest {
        CompletionRequest {
            temperature: self.temperature,
            max_tokens: self.max_tokens,
            ..CompletionRequest::new(&self.model)
        }
    }
}

/// What the caller knows before the environment is consulted.
#[derive(Debug, Clone, Default)]
pub struct SettingsSources<'a> {
    /// The `--model` flag, as typed.
    pub model_flag: Option<&'a str>,
    /// The agent's `spec.model`.
    pub spec: Option<&'a ModelConfig>,
    /// A key the caller already has (e.g. from the secret store); beats the environment's.
    pub api_key: Option<SecretValue>,
}

/// One layer of configuration: what it names, and where it came from for messages.
struct Layer {
    provider: Option<ProviderKind>,
    model: Option<String>,
    base_url: Option<(String, &'static str)>,
}

/// Resolves the settings of a run; `env` looks up an environment variable.
pub fn resolve_settings(
    sources: &SettingsSources<'_>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<ProviderSettings, ProviderError> {
    // An empty variable is treated as unset, as shells make it easy to leave one empty.
    let env = |name: &str| env(name).map(|value| value.trim().to_owned()).filter(|value| !value.is_empty());

    let flag = sources.model_flag.map(ModelChoice::parse).transpose()?;
    let flag_layer = flag.map(|choice| Layer { provider: choice.provider, model: choice.model, base_url: None });
    let spec_layer = sources
        .spec
        .map(|spec| -> Result<Layer, ProviderError> {
            Ok(Layer {
                provider: provider_named(spec.provider.as_deref(), "spec.model.provider")?,
                model: non_empty(spec.name.as_deref()),
                base_url: non_empty(spec.base_url.as_deref()).map(|url| (url, "spec.model.baseUrl")),
            })
        })
        .transpose()?;
    let env_layer = Layer {
        provider: provider_named(env(ENV_LLM_PROVIDER).as_deref(), ENV_LLM_PROVIDER)?,
        model: env(ENV_LLM_MODEL),
        base_url: env(ENV_LLM_BASE_URL).map(|url| (url, ENV_LLM_BASE_URL)),
    };
    let layers: Vec<&Layer> =
        [flag_layer.as_ref(), spec_layer.as_ref(), Some(&env_layer)].into_iter().flatten().collect();

    let kind = layers.iter().find_map(|layer| layer.provider).unwrap_or(ProviderKind::Ollama);
    let applies = |layer: &&&Layer| layer.provider.is_none_or(|provider| provider == kind);
    let model = layers.iter().filter(applies).find_map(|layer| layer.model.clone());
    let base_url = layers.iter().filter(applies).find_map(|layer| layer.base_url.clone());

    let mut settings = ProviderSettings::new(kind, model.unwrap_or_else(|| kind.default_model().to_owned()), "");
    settings.base_url = match base_url {
        Some((url, origin)) => checked_base_url(&url, origin)?,
        None => kind.default_base_url().to_owned(),
    };
    settings.temperature = sources.spec.and_then(|spec| spec.temperature);
    settings.max_tokens = sources.spec.and_then(|spec| spec.max_tokens);
    if let Some(seconds) = env(ENV_LLM_TIMEOUT) {
        settings.timeouts.overall = timeout_seconds(&seconds)?;
    }
    settings.api_key = api_key(kind, &settings.base_url, sources.api_key.clone(), &env)?;
    Ok(settings)
}

/// The key to send: the caller's, else the provider's variable; an error when one is required.
fn api_key(
    kind: ProviderKind,
    base_url: &str,
    given: Option<SecretValue>,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Option<SecretValue>, ProviderError> {
    if given.is_some() {
        return Ok(given);
    }
    let Some(variable) = kind.api_key_variable() else { return Ok(None) };
    if let Some(key) = env(variable) {
        return Ok(Some(SecretValue::new(key)));
    }
    // vLLM and LM Studio speak OpenAI's API without a key; only OpenAI's own endpoint needs one.
    let required = match kind {
        ProviderKind::OpenAi => base_url == kind.default_base_url(),
        ProviderKind::Anthropic => true,
        ProviderKind::Ollama => false,
    };
    if required { Err(ProviderError::ApiKeyMissing { provider: kind, variable }) } else { Ok(None) }
}

fn provider_named(name: Option<&str>, origin: &str) -> Result<Option<ProviderKind>, ProviderError> {
    match non_empty(name) {
        None => Ok(None),
        Some(name) => ProviderKind::from_name(&name)
            .map(Some)
            .ok_or_else(|| ProviderError::UnknownProvider { given: name, origin: origin.to_owned() }),
    }
}

fn non_empty(value: Option<&str>) -> Option<String> {
    value.map(str::trim).filter(|value| !value.is_empty()).map(str::to_owned)
}

fn checked_base_url(url: &str, origin: &str) -> Result<String, ProviderError> {
    let invalid =
        |reason: String| ProviderError::InvalidSetting { setting: origin.to_owned(), value: url.to_owned(), reason };
    let parsed = Url::parse(url).map_err(|error| invalid(format!("not a URL: {error}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("not an http or https URL".to_owned()));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

fn timeout_seconds(value: &str) -> Result<Duration, ProviderError> {
    value.parse::<u64>().ok().filter(|seconds| *seconds > 0).map(Duration::from_secs).ok_or_else(|| {
        ProviderError::InvalidSetting {
            setting: ENV_LLM_TIMEOUT.to_owned(),
            value: value.to_owned(),
            reason: "expected a whole number of seconds, at least 1".to_owned(),
        }
    })
}
