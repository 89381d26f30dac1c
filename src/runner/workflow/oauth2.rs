//! OAuth2 and OpenID Connect authentication: turns a policy into a token request, exchanges it
//! at the token endpoint for an access token, and keeps that token for the rest of the run.
//! `http` sends the token as `Authorization: Bearer …`; nothing here knows about tasks.
//!
//! Decisions where the reference is open:
//! - The token endpoint is the authority followed by `endpoints.token` (default
//!   `/oauth2/token`), joined as paths (`https://idp/realms/x` + `/oauth2/token` →
//!   `https://idp/realms/x/oauth2/token`); an absolute `endpoints.token` URL is used as it is.
//! - OpenID Connect discovers the token endpoint from `authority` +
//!   `/.well-known/openid-configuration` (or from `authority` itself when it already ends so,
//!   as in the reference's example), then exchanges exactly as OAuth2 does.
//! - Grants: `client_credentials` (also when `grant` is absent), `password` and token exchange
//!   (RFC 8693, `subject` and `actor`). `authorization_code` needs a user at a browser and
//!   `refresh_token` a refresh token the policy cannot hold: both are configuration errors.
//! - Client authentication: `client_secret_post` (the reference's default) puts `client_id`
//!   and `client_secret` in the request; `client_secret_basic` sends them as HTTP basic
//!   credentials (each form-encoded first, RFC 6749 §2.3.1); `none` sends `client_id` only;
//!   `private_key_jwt` and `client_secret_jwt` send `client.assertion` as a JWT bearer
//!   assertion (RFC 7523) — this runtime signs nothing itself, so the assertion is required.
//! - Inline, every string of the policy may be a runtime expression (`authority` included; its
//!   URI template variables are not expanded); read from a secret, its strings are taken as
//!   they are.
//! - `scopes` are sent space-joined as `scope`; each audience as an `audience` parameter.
//!   `request.encoding: application/json` sends the same parameters as a JSON object.
//! - `issuers` is not checked: the token is not decoded, only passed on.
//! - The reply's `access_token` is sent as a bearer token whatever its `token_type`.
//! - A token is kept per run, per token endpoint, grant, client, user, scopes and audiences
//!   (and secrets, so a wrong secret never reuses the token a right one got), until its
//!   `expires_in` (less ten seconds) has passed. Concurrent tasks wait for one exchange.
//!   A token the API then refuses is not fetched again: the call fails with that status.
//! - Any failure of the exchange (unreachable, refused, no `access_token`) is the DSL's
//!   `authentication` error (401), naming the token endpoint; secrets never appear in it.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{Client, Url};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::encode::{base64, form_encode, percent_encode};
use super::error::WorkflowError;
use crate::model::dsl::{
    OAuth2ClientAuthentication, OAuth2Grant, OAuth2Properties, OAuth2Token, OAuth2TokenRequestEncoding,
};

/// A token is used again only while it has at least this long to live.
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);

/// How much of an error reply a message quotes.
const QUOTED_REPLY: usize = 512;

/// Which scheme a policy is.
#[derive(Clone, Copy)]
pub(crate) enum Flavor {
    OAuth2,
    Oidc,
}

/// Where the token endpoint is.
enum Endpoint {
    Known(String),
    /// Read `token_endpoint` from this OpenID Connect discovery document.
    Discovered(String),
}

/// How the token is granted.
enum Grant {
    ClientCredentials,
    Password { username: String, password: String },
    TokenExchange { subject: (String, String), actor: Option<(String, String)> },
}

/// A token request, every expression of the policy evaluated. Holds secrets: deliberately not
/// `Debug`.
pub(crate) struct TokenRequest {
    endpoint: Endpoint,
    grant: Grant,
    client_id: Option<String>,
    client_secret: Option<String>,
    client_assertion: Option<String>,
    client_authentication: OAuth2ClientAuthentication,
    scopes: Vec<String>,
    audiences: Vec<String>,
    json: bool,
}

/// The token request an `oauth2` or `oidc` policy describes; `text` evaluates its strings
/// (runtime expressions inline, nothing for a policy read from a secret).
///
/// # Errors
/// `configuration` for what is missing or not supported, or what `text` raises.
pub(crate) fn token_request(
    flavor: Flavor,
    properties: &OAuth2Properties,
    text: &dyn Fn(&str) -> Result<String, WorkflowError>,
    instance: &str,
) -> Result<TokenRequest, WorkflowError> {
    let scheme = match flavor {
        Flavor::OAuth2 => "oauth2",
        Flavor::Oidc => "oidc",
    };
    let missing =
        |what: &str| WorkflowError::configuration(format!("`{scheme}` authentication needs {what}"), instance);
    let optional = |value: &Option<String>| value.as_deref().map(text).transpose();
    let authority = optional(&properties.authority)?.ok_or_else(|| missing("an `authority`"))?;
    let authority = authority.trim_end_matches('/');
    let endpoint = match flavor {
        Flavor::OAuth2 => {
            let path = optional(&properties.endpoints.as_ref().and_then(|endpoints| endpoints.token.clone()))?
                .unwrap_or_else(|| "/oauth2/token".to_owned());
            if path.starts_with("http://") || path.starts_with("https://") {
                Endpoint::Known(path)
            } else {
                Endpoint::Known(format!("{authority}/{}", path.trim_start_matches('/')))
            }
        }
        Flavor::Oidc if authority.ends_with("/.well-known/openid-configuration") => {
            Endpoint::Discovered(authority.to_owned())
        }
        Flavor::Oidc => Endpoint::Discovered(format!("{authority}/.well-known/openid-configuration")),
    };
    let grant = match properties.grant.unwrap_or(OAuth2Grant::ClientCredentials) {
        OAuth2Grant::ClientCredentials => Grant::ClientCredentials,
        OAuth2Grant::Password => Grant::Password {
            username: optional(&properties.username)?.ok_or_else(|| missing("a `username` for the password grant"))?,
            password: optional(&properties.password)?.ok_or_else(|| missing("a `password` for the password grant"))?,
        },
        OAuth2Grant::TokenExchange => {
            let token = |token: &OAuth2Token| -> Result<(String, String), WorkflowError> {
                Ok((text(&token.token)?, text(&token.type_)?))
            };
            Grant::TokenExchange {
                subject: token(properties.subject.as_ref().ok_or_else(|| missing("a `subject` to exchange"))?)?,
                actor: properties.actor.as_ref().map(token).transpose()?,
            }
        }
        grant @ (OAuth2Grant::AuthorizationCode | OAuth2Grant::RefreshToken) => {
            let name = if grant == OAuth2Grant::AuthorizationCode { "authorization_code" } else { "refresh_token" };
            return Err(WorkflowError::configuration(
                format!(
                    "the `{name}` grant is not supported by this runtime (use client_credentials, password or \
                     urn:ietf:params:oauth:grant-type:token-exchange)"
                ),
                instance,
            ));
        }
    };
    let client = properties.client.clone().unwrap_or_default();
    let client_authentication = client.authentication.unwrap_or(OAuth2ClientAuthentication::ClientSecretPost);
    let client_id = optional(&client.id)?;
    let client_assertion = optional(&client.assertion)?;
    match client_authentication {
        OAuth2ClientAuthentication::None => {}
        OAuth2ClientAuthentication::ClientSecretBasic | OAuth2ClientAuthentication::ClientSecretPost => {
            if client_id.is_none() {
                return Err(missing("a `client.id` (or `client.authentication: none`)"));
            }
        }
        OAuth2ClientAuthentication::ClientSecretJwt | OAuth2ClientAuthentication::PrivateKeyJwt => {
            if client_assertion.is_none() {
                return Err(missing(
                    "a signed `client.assertion` for JWT client authentication (this runtime signs none)",
                ));
            }
        }
    }
    Ok(TokenRequest {
        endpoint,
        grant,
        client_id,
        client_secret: optional(&client.secret)?,
        client_assertion,
        client_authentication,
        scopes: properties.scopes.iter().map(|scope| text(scope)).collect::<Result<_, _>>()?,
        audiences: properties.audiences.iter().map(|audience| text(audience)).collect::<Result<_, _>>()?,
        json: properties.request.as_ref().and_then(|request| request.encoding)
            == Some(OAuth2TokenRequestEncoding::Json),
    })
}

/// The properties of a policy read from a secret: the secret holds the policy's fields.
///
/// # Errors
/// `configuration` when the secret is not shaped like a policy (without quoting it: a serde
/// message could echo a secret value).
pub(crate) fn secret_properties(secret: &Value, name: &str, instance: &str) -> Result<OAuth2Properties, WorkflowError> {
    serde_json::from_value(secret.clone()).map_err(|_| {
        WorkflowError::configuration(
            format!(
                "the secret \"{name}\" is not an OAuth2 policy (expected authority, grant, client.id, \
                 client.secret, scopes, …)"
            ),
            instance,
        )
    })
}

/// An access token and until when it may be used.
struct Token {
    access_token: String,
    expires_at: Option<Instant>,
}

impl Token {
    fn fresh(&self) -> bool {
        self.expires_at.is_none_or(|at| Instant::now() + EXPIRY_MARGIN < at)
    }
}

/// The tokens of one run, by what they were requested for.
#[derive(Default)]
pub(crate) struct TokenCache {
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Token>>>>>,
}

/// An access token for `request`: the run's kept one while fresh, else a new one from the
/// token endpoint.
///
/// # Errors
/// `authentication` when the exchange fails; `configuration` for a token endpoint that is not
/// an http(s) URL.
pub(crate) async fn access_token(
    client: &Client,
    cache: &TokenCache,
    request: &TokenRequest,
    instance: &str,
) -> Result<String, WorkflowError> {
    let slot = {
        let mut slots = cache.slots.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(slots.entry(request.cache_key()).or_default())
    };
    // Held across the exchange, so concurrent tasks wanting the same token wait for one.
    let mut kept = slot.lock().await;
    if let Some(token) = kept.as_ref().filter(|token| token.fresh()) {
        return Ok(token.access_token.clone());
    }
    let token = request.exchange(client, instance).await?;
    let access_token = token.access_token.clone();
    *kept = Some(token);
    Ok(access_token)
}

impl TokenRequest {
    /// What identifies the token this request gets, hashed so the cache holds no secret.
    fn cache_key(&self) -> String {
        let mut parts: Vec<&str> = Vec::new();
        match &self.endpoint {
            Endpoint::Known(url) => parts.extend(["token", url]),
            Endpoint::Discovered(url) => parts.extend(["discovered", url]),
        }
        match &self.grant {
            Grant::ClientCredentials => parts.push("client_credentials"),
            Grant::Password { username, password } => parts.extend(["password", username, password]),
            Grant::TokenExchange { subject, actor } => {
                parts.extend(["token-exchange", &subject.0, &subject.1]);
                if let Some(actor) = actor {
                    parts.extend([actor.0.as_str(), actor.1.as_str()]);
                }
            }
        }
        for value in [&self.client_id, &self.client_secret, &self.client_assertion] {
            parts.push(value.as_deref().unwrap_or("\u{0}none"));
        }
        let scopes = self.scopes.join(" ");
        let audiences = self.audiences.join(" ");
        parts.extend([scopes.as_str(), audiences.as_str(), if self.json { "json" } else { "form" }]);
        hex::encode(Sha256::digest(parts.join("\u{0}").as_bytes()))
    }

    /// The strings an error message must never show.
    fn secrets(&self) -> Vec<&str> {
        let mut secrets: Vec<&str> =
            [&self.client_secret, &self.client_assertion].into_iter().filter_map(Option::as_deref).collect();
        match &self.grant {
            Grant::ClientCredentials => {}
            Grant::Password { password, .. } => secrets.push(password),
            Grant::TokenExchange { subject, actor } => {
                secrets.push(&subject.0);
                if let Some(actor) = actor {
                    secrets.push(&actor.0);
                }
            }
        }
        secrets.retain(|secret| !secret.is_empty());
        secrets
    }

    /// The token request's parameters, in the order they are sent.
    fn parameters(&self) -> Vec<(&'static str, String)> {
        let mut parameters = Vec::new();
        match &self.grant {
            Grant::ClientCredentials => parameters.push(("grant_type", "client_credentials".to_owned())),
            Grant::Password { username, password } => parameters.extend([
                ("grant_type", "password".to_owned()),
                ("username", username.clone()),
                ("password", password.clone()),
            ]),
            Grant::TokenExchange { subject, actor } => {
                parameters.extend([
                    ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange".to_owned()),
                    ("subject_token", subject.0.clone()),
                    ("subject_token_type", subject.1.clone()),
                ]);
                if let Some(actor) = actor {
                    parameters.extend([("actor_token", actor.0.clone()), ("actor_token_type", actor.1.clone())]);
                }
            }
        }
        match self.client_authentication {
            OAuth2ClientAuthentication::ClientSecretBasic => {}
            OAuth2ClientAuthentication::ClientSecretPost => {
                parameters.extend(self.client_id.clone().map(|id| ("client_id", id)));
                parameters.extend(self.client_secret.clone().map(|secret| ("client_secret", secret)));
            }
            OAuth2ClientAuthentication::None => {
                parameters.extend(self.client_id.clone().map(|id| ("client_id", id)));
            }
            OAuth2ClientAuthentication::ClientSecretJwt | OAuth2ClientAuthentication::PrivateKeyJwt => {
                parameters.extend(self.client_id.clone().map(|id| ("client_id", id)));
                parameters.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
                ));
                parameters.extend(self.client_assertion.clone().map(|assertion| ("client_assertion", assertion)));
            }
        }
        if !self.scopes.is_empty() {
            parameters.push(("scope", self.scopes.join(" ")));
        }
        parameters.extend(self.audiences.iter().map(|audience| ("audience", audience.clone())));
        parameters
    }

    /// The request body and its media type.
    fn body(&self) -> (String, &'static str) {
        let parameters = self.parameters();
        if !self.json {
            return (form_encode(&parameters), "application/x-www-form-urlencoded");
        }
        let mut object = Map::new();
        for (name, value) in parameters {
            match object.get_mut(name) {
                Some(Value::Array(values)) => values.push(Value::String(value)),
                Some(existing) => *existing = Value::Array(vec![existing.take(), Value::String(value)]),
                None => {
                    object.insert(name.to_owned(), Value::String(value));
                }
            }
        }
        (Value::Object(object).to_string(), "application/json")
    }

    /// Posts the token request and reads the token from the reply.
    async fn exchange(&self, client: &Client, instance: &str) -> Result<Token, WorkflowError> {
        let endpoint = match &self.endpoint {
            Endpoint::Known(endpoint) => endpoint.clone(),
            Endpoint::Discovered(discovery) => discover(client, discovery, instance).await?,
        };
        let url = http_url(&endpoint, "token endpoint", instance)?;
        let shown = shown(&url);
        let secrets = self.secrets();
        let failed = |detail: String| WorkflowError::authentication(detail, instance);
        let (body, media_type) = self.body();
        let mut builder =
            client.post(url).header(CONTENT_TYPE, media_type).header(ACCEPT, "application/json").body(body);
        if self.client_authentication == OAuth2ClientAuthentication::ClientSecretBasic {
            let credentials = form_encode_one(self.client_id.as_deref().unwrap_or_default())
                + ":"
                + &form_encode_one(self.client_secret.as_deref().unwrap_or_default());
            let mut value = HeaderValue::from_str(&format!("Basic {}", base64(credentials.as_bytes())))
                .map_err(|_| failed(format!("the client credentials for {shown} are not a valid header value")))?;
            value.set_sensitive(true);
            builder = builder.header(AUTHORIZATION, value);
        }
        let response = builder
            .send()
            .await
            .map_err(|error| failed(format!("the token endpoint {shown} could not be reached: {}", causes(error))))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|error| {
            failed(format!("reading the reply of the token endpoint {shown} failed: {}", causes(error)))
        })?;
        let reply: Option<Value> = serde_json::from_slice(&bytes).ok();
        if !status.is_success() {
            // What the server says is quoted with every secret masked: it may echo the request.
            let quote = |text: &str| truncate(&redact(text, &secrets));
            let mut detail = format!("the token endpoint {shown} refused the token request: {status}");
            let error = reply.as_ref().and_then(|reply| reply.get("error")).and_then(Value::as_str);
            let description = reply.as_ref().and_then(|reply| reply.get("error_description")).and_then(Value::as_str);
            match (error, description) {
                (Some(error), Some(description)) => {
                    let _ = write!(detail, ": {}: {}", quote(error), quote(description));
                }
                (Some(error), None) => {
                    let _ = write!(detail, ": {}", quote(error));
                }
                _ => {
                    let text = String::from_utf8_lossy(&bytes);
                    if !text.trim().is_empty() {
                        let _ = write!(detail, ": {}", quote(text.trim()));
                    }
                }
            }
            return Err(failed(detail));
        }
        let access_token = reply
            .as_ref()
            .and_then(|reply| reply.get("access_token"))
            .and_then(Value::as_str)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| failed(format!("the token endpoint {shown} answered {status} without an `access_token`")))?;
        let expires_in = reply.as_ref().and_then(|reply| reply.get("expires_in")).and_then(|value| match value {
            Value::Number(number) => number.as_u64(),
            Value::String(text) => text.parse().ok(),
            _ => None,
        });
        Ok(Token {
            access_token: access_token.to_owned(),
            expires_at: expires_in.and_then(|seconds| Instant::now().checked_add(Duration::from_secs(seconds))),
        })
    }
}

/// The `token_endpoint` of an OpenID Connect discovery document.
async fn discover(client: &Client, discovery: &str, instance: &str) -> Result<String, WorkflowError> {
    let url = http_url(discovery, "OpenID Connect discovery document", instance)?;
    let shown = shown(&url);
    let failed = |why: String| {
        WorkflowError::authentication(format!("the OpenID Connect discovery document {shown} {why}"), instance)
    };
    let response = client
        .get(url)
        .header(ACCEPT, "application/json")
        .send()
        .await
        .map_err(|error| failed(format!("could not be fetched: {}", causes(error))))?;
    let status = response.status();
    if !status.is_success() {
        return Err(failed(format!("could not be fetched: {status}")));
    }
    let bytes = response.bytes().await.map_err(|error| failed(format!("could not be read: {}", causes(error))))?;
    serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|document| document.get("token_endpoint").and_then(Value::as_str).map(str::to_owned))
        .ok_or_else(|| failed("has no `token_endpoint`".to_owned()))
}

/// `text` as an http(s) URL.
fn http_url(text: &str, what: &str, instance: &str) -> Result<Url, WorkflowError> {
    match Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(url),
        _ => Err(WorkflowError::configuration(format!("the {what} \"{text}\" is not an http or https URL"), instance)),
    }
}

/// A URL as messages show it: without credentials.
fn shown(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_password(None);
    let _ = shown.set_username("");
    shown.to_string()
}

/// A transport error and its causes, without the URL (which messages show their own way).
fn causes(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

/// `text` with every secret replaced by `***`.
fn redact(text: &str, secrets: &[&str]) -> String {
    secrets.iter().fold(text.to_owned(), |text, secret| text.replace(secret, "***"))
}

fn truncate(text: &str) -> String {
    match text.char_indices().nth(QUOTED_REPLY) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// One value form-encoded (RFC 6749 §2.3.1 encodes client credentials so before basic).
fn form_encode_one(text: &str) -> String {
    let mut out = String::new();
    percent_encode(text, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn request(properties: Value) -> Result<TokenRequest, WorkflowError> {
        let properties: OAuth2Properties = serde_json::from_value(properties).unwrap();
        token_request(Flavor::OAuth2, &properties, &|text| Ok(text.to_owned()), "/do/0/x")
    }

    #[test]
    fn token_endpoint_joins_authority_and_path() {
        let endpoint = |properties| match request(properties).unwrap().endpoint {
            Endpoint::Known(url) => url,
            Endpoint::Discovered(_) => unreachable!(),
        };
        let client = json!({ "id": "c" });
        assert_eq!(
            endpoint(json!({ "authority": "http://idp/realms/x/", "client": client })),
            "http://idp/realms/x/oauth2/token"
        );
        assert_eq!(
            endpoint(json!({ "authority": "http://idp", "endpoints": { "token": "token" }, "client": client })),
            "http://idp/token"
        );
        assert_eq!(
            endpoint(
                json!({ "authority": "http://idp", "endpoints": { "token": "https://other/t" }, "client": client })
            ),
            "https://other/t"
        );
    }

    #[test]
    fn client_secret_post_is_the_default_and_parameters_are_form_encoded() {
        let request = request(json!({
            "authority": "http://idp",
            "grant": "client_credentials",
            "client": { "id": "my client", "secret": "s&cret" },
            "scopes": ["api", "read"],
            "audiences": ["a1", "a2"],
        }))
        .unwrap();
        let (body, media_type) = request.body();
        assert_eq!(media_type, "application/x-www-form-urlencoded");
        assert_eq!(
            body,
            "grant_type=client_credentials&client_id=my%20client&client_secret=s%26cret&scope=api%20read&audience=a1&audience=a2"
        );
    }

    #[test]
    fn json_encoding_password_grant_and_basic_client_authentication() {
        let request = request(json!({
            "authority": "http://idp",
            "grant": "password",
            "username": "ada",
            "password": "pw",
            "client": { "id": "c", "secret": "s", "authentication": "client_secret_basic" },
            "audiences": ["a1", "a2"],
            "request": { "encoding": "application/json" },
        }))
        .unwrap();
        let (body, media_type) = request.body();
        assert_eq!(media_type, "application/json");
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap(),
            json!({ "grant_type": "password", "username": "ada", "password": "pw", "audience": ["a1", "a2"] })
        );
        assert_eq!(request.secrets(), ["s", "pw"]);
    }

    #[test]
    fn unsupported_or_incomplete_policies_are_configuration_errors() {
        for (properties, expected) in [
            (json!({ "client": { "id": "c" } }), "needs an `authority`"),
            (json!({ "authority": "http://idp" }), "needs a `client.id`"),
            (json!({ "authority": "http://idp", "grant": "password", "client": { "id": "c" } }), "needs a `username`"),
            (
                json!({ "authority": "http://idp", "grant": "authorization_code" }),
                "`authorization_code` grant is not supported",
            ),
            (
                json!({ "authority": "http://idp", "client": { "id": "c", "authentication": "private_key_jwt" } }),
                "signed `client.assertion`",
            ),
        ] {
            let Err(error) = request(properties) else { panic!("accepted: {expected}") };
            assert_eq!(error.kind(), "configuration");
            assert!(error.detail.as_deref().unwrap().contains(expected), "{error}");
        }
    }

    #[test]
    fn cache_keys_separate_clients_scopes_and_secrets_but_hold_none() {
        let key = |secret: &str, scopes: Value| {
            request(json!({ "authority": "http://idp", "client": { "id": "c", "secret": secret }, "scopes": scopes }))
                .unwrap()
                .cache_key()
        };
        assert_eq!(key("s", json!(["a"])), key("s", json!(["a"])));
        assert_ne!(key("s", json!(["a"])), key("s", json!(["b"])));
        assert_ne!(key("s", json!(["a"])), key("t", json!(["a"])));
        assert!(!key("supersecret", json!([])).contains("supersecret"));
    }

    #[test]
    fn oidc_discovers_from_the_well_known_document() {
        let properties: OAuth2Properties =
            serde_json::from_value(json!({ "authority": "http://idp/realms/x", "client": { "id": "c" } })).unwrap();
        let request = token_request(Flavor::Oidc, &properties, &|text| Ok(text.to_owned()), "/x").unwrap();
        assert!(
            matches!(request.endpoint, Endpoint::Discovered(url) if url == "http://idp/realms/x/.well-known/openid-configuration")
        );
        let properties: OAuth2Properties = serde_json::from_value(
            json!({ "authority": "http://idp/x/.well-known/openid-configuration", "client": { "id": "c" } }),
        )
        .unwrap();
        let request = token_request(Flavor::Oidc, &properties, &|text| Ok(text.to_owned()), "/x").unwrap();
        assert!(
            matches!(request.endpoint, Endpoint::Discovered(url) if url == "http://idp/x/.well-known/openid-configuration")
        );
    }

    #[test]
    fn secrets_are_redacted_from_messages() {
        assert_eq!(redact("bad secret s3cr3t for s3cr3t", &["s3cr3t"]), "bad secret *** for ***");
    }
}
