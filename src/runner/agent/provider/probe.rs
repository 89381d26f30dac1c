//! Whether a model endpoint answers, without spending tokens: its models listing
//! (`GET {base}/models` for OpenAI-compatible servers, `GET {base}/v1/models` for Anthropic),
//! with the run's credentials.

use std::time::{Duration, Instant};

use super::transport::auth_headers;
use super::{ProviderKind, ProviderSettings};

/// The endpoint answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reached {
    /// How long the listing took.
    pub latency: Duration,
}

/// Why the endpoint is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreachable {
    /// It refused the credentials (401 or 403).
    #[error("{url} refused the credentials (HTTP {status}){}", missing_key(*.keyless))]
    Auth {
        /// The listing's URL.
        url: String,
        /// The status.
        status: u16,
        /// No key was sent.
        keyless: bool,
    },
    /// It answered with another error.
    #[error("{url} answered HTTP {status}")]
    Status {
        /// The listing's URL.
        url: String,
        /// The status.
        status: u16,
    },
    /// It could not be reached at all (or not in time).
    #[error("cannot reach {url}: {reason}")]
    Connect {
        /// The listing's URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The settings cannot make a request (a bad URL, a key no header can carry).
    #[error("{0}")]
    Settings(String),
}

fn missing_key(keyless: bool) -> &'static str {
    if keyless { "; no API key was set" } else { "" }
}

impl Unreachable {
    /// A one-word reason, for a condition.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Auth { .. } => "AuthFailed",
            Self::Status { .. } => "HttpError",
            Self::Connect { .. } => "Unreachable",
            Self::Settings(_) => "InvalidSettings",
        }
    }
}

/// Lists the endpoint's models, within `timeout`.
///
/// # Errors
/// The endpoint refused the credentials, answered an error, or could not be reached.
pub async fn reachable(settings: &ProviderSettings, timeout: Duration) -> Result<Reached, Unreachable> {
    let path = if settings.kind == ProviderKind::Anthropic { "/v1/models" } else { "/models" };
    let url = format!("{}{path}", settings.base_url.trim_end_matches('/'));
    let headers = auth_headers(settings).map_err(|e| Unreachable::Settings(e.to_string()))?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(concat!("stigmer/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Unreachable::Settings(e.to_string()))?;
    let started = Instant::now();
    let response = client
        .get(&url)
        .headers(headers)
        .send()
        .await
        .map_err(|e| Unreachable::Connect { url: url.clone(), reason: without_url(e) })?;
    let status = response.status().as_u16();
    match status {
        200..=299 => Ok(Reached { latency: started.elapsed() }),
        401 | 403 => Err(Unreachable::Auth { url, status, keyless: settings.api_key.is_none() }),
        _ => Err(Unreachable::Status { url, status }),
    }
}

/// reqwest's error without the URL it repeats (the message names it once).
fn without_url(error: reqwest::Error) -> String {
    let timeout = error.is_timeout();
    let text = error.without_url().to_string();
    if timeout { format!("no answer in time ({text})") } else { text }
}
