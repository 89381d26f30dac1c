//! `call: http` (and `call: openapi`, once `openapi` has built its request): sends one HTTP
//! request (already evaluated by the interpreter) with its authentication and turns the
//! response into the task's output, or into the DSL's `communication` error.
//!
//! Authentication: `basic` and `bearer` send their `Authorization` header with the request;
//! `oauth2` and `oidc` first get a token (see `oauth2`) and send it as a bearer token; `digest`
//! sends the request without credentials and, when the server answers 401 with a digest
//! challenge it can answer (see `digest`), sends it once more with the answer, at the URL that
//! challenged. Any other 401, and a 401 to the answer (a wrong password), is the
//! `communication` error with status 401. An authentication policy's `Authorization` header
//! gives way to one the task sets in `headers`.
//!
//! Decisions where the reference is open:
//! - The default output (`content`) is the body parsed as JSON when the response says it is
//!   JSON (`application/json` or `*+json`), else the body as text when it is UTF-8, else its
//!   base64; an empty body is `null`. `raw` is always the base64 of the body.
//! - `redirect: false` (the default) does not follow redirects and raises on 3xx; `redirect:
//!   true` follows up to 10 of them and accepts a final 3xx.
//! - A non-accepted status raises `communication` with that status; a connection failure
//!   raises `communication` with 503 (Service Unavailable); any other transport failure 500.
//! - A string body is sent as it is; any other body (object, array, number, boolean) as JSON,
//!   with `Content-Type: application/json` unless the headers set one. `null` sends no body.
//! - The `request` echoed in `output: response` lists the headers the task set, never the
//!   `Authorization` header computed from its authentication policy (nor any token or
//!   password), and the `Authorization` values are marked sensitive so they are never logged.
//! - A run keeps one set of clients, the OAuth2 tokens it obtained and the OpenAPI documents it
//!   fetched: a `for` loop does not fetch them again.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, WWW_AUTHENTICATE};
use reqwest::{Client, Method, RequestBuilder, StatusCode, Url, redirect};
use serde_json::{Map, Value, json};

use super::digest;
use super::encode::{base64, percent_encode};
use super::error::WorkflowError;
use super::oauth2;
use crate::model::dsl::HttpOutputFormat;

/// The type of the DSL's standard communication error.
const COMMUNICATION: &str = "https://serverlessworkflow.io/spec/1.0.0/errors/communication";

/// How long connecting may take; the task and workflow timeouts bound the whole exchange.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The HTTP state of one run: a client that does not follow redirects, one that does, the
/// OAuth2 tokens obtained so far and the documents (OpenAPI) fetched so far.
pub(crate) struct Clients {
    direct: Client,
    following: Client,
    tokens: oauth2::TokenCache,
    documents: Mutex<HashMap<String, Arc<Value>>>,
}

impl Clients {
    /// Builds both clients (TLS with rustls and the ring provider, the platform's roots).
    ///
    /// # Errors
    /// Why a client could not be built, as text.
    pub(crate) fn new() -> Result<Self, String> {
        // reqwest is built without a default crypto provider; ring is the one tonic uses. A
        // provider installed earlier (by anyone) is kept: `install_default` then fails harmlessly.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let build = |policy: redirect::Policy| {
            Client::builder()
                .redirect(policy)
                .connect_timeout(CONNECT_TIMEOUT)
                .user_agent(concat!("stigmer/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|error| format!("cannot create the HTTP client: {error}"))
        };
        Ok(Self {
            direct: build(redirect::Policy::none())?,
            following: build(redirect::Policy::limited(10))?,
            tokens: oauth2::TokenCache::default(),
            documents: Mutex::new(HashMap::new()),
        })
    }

    /// The document this run already fetched from `url`, if any.
    pub(crate) fn document(&self, url: &str) -> Option<Arc<Value>> {
        self.documents.lock().unwrap_or_else(PoisonError::into_inner).get(url).cloned()
    }

    /// Keeps the document fetched from `url` for the rest of the run.
    pub(crate) fn keep_document(&self, url: &str, document: Arc<Value>) {
        self.documents.lock().unwrap_or_else(PoisonError::into_inner).insert(url.to_owned(), document);
    }
}

/// A credential to send in the `Authorization` header. Holds secrets: deliberately not `Debug`.
pub(crate) enum Credentials {
    Basic {
        username: String,
        password: String,
    },
    Bearer(String),
    /// Sent only in answer to the server's digest challenge.
    Digest {
        username: String,
        password: String,
    },
    /// Exchanged for a bearer token first.
    OAuth2(Box<oauth2::TokenRequest>),
}

/// An HTTP request, every expression of it evaluated.
pub(crate) struct Request {
    /// The method as written (`get`, `POST`, …).
    pub method: String,
    /// The expanded URI, without the query.
    pub uri: String,
    /// The headers, by name.
    pub headers: Vec<(String, String)>,
    /// The query parameters, appended to the URI's own.
    pub query: Vec<(String, String)>,
    /// The body, if any.
    pub body: Option<Value>,
    /// The credentials, if the endpoint has an authentication policy.
    pub credentials: Option<Credentials>,
    /// What the task outputs.
    pub output: HttpOutputFormat,
    /// Whether redirects are followed and 3xx statuses accepted.
    pub redirect: bool,
}

/// Sends `request` and returns the task's output.
///
/// # Errors
/// `configuration` for an invalid method, URI or header; `authentication` when an OAuth2 token
/// cannot be obtained; `communication` when the exchange fails or the status is not accepted.
pub(crate) async fn send(clients: &Clients, request: Request, instance: &str) -> Result<Value, WorkflowError> {
    let configuration = |detail: String| WorkflowError::configuration(detail, instance);
    let method = Method::from_bytes(request.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| configuration(format!("\"{}\" is not an HTTP method", request.method)))?;
    let mut url = Url::parse(&request.uri)
        .map_err(|error| configuration(format!("\"{}\" is not a URL: {error}", request.uri)))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(configuration(format!("\"{}\" is not an http or https URL", request.uri)));
    }
    if !request.query.is_empty() {
        let mut pairs = url.query_pairs_mut();
        for (name, value) in &request.query {
            pairs.append_pair(name, value);
        }
    }
    let mut headers = HeaderMap::new();
    for (name, value) in &request.headers {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| configuration(format!("\"{name}\" is not an HTTP header name")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| configuration(format!("the value of header \"{name}\" is not a valid header value")))?;
        headers.append(header, value);
    }
    let client = if request.redirect { &clients.following } else { &clients.direct };
    let body = match &request.body {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text.clone()),
        Some(other) => {
            if !headers.contains_key(CONTENT_TYPE) {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            }
            Some(other.to_string())
        }
    };
    let sent_headers = header_map(&headers);
    let authorization = match &request.credentials {
        Some(Credentials::Basic { username, password }) => {
            Some(sensitive(&format!("Basic {}", base64(format!("{username}:{password}").as_bytes())), instance)?)
        }
        Some(Credentials::Bearer(token)) => Some(sensitive(&format!("Bearer {token}"), instance)?),
        Some(Credentials::OAuth2(token_request)) => {
            let token = oauth2::access_token(&clients.direct, &clients.tokens, token_request, instance).await?;
            Some(sensitive(&format!("Bearer {token}"), instance)?)
        }
        Some(Credentials::Digest { .. }) | None => None,
    };
    // The policy's `Authorization` comes first: a header the task sets itself replaces it.
    let build = |url: &Url, authorization: Option<&HeaderValue>| -> RequestBuilder {
        let mut builder = client.request(method.clone(), url.clone());
        if let Some(authorization) = authorization {
            builder = builder.header(AUTHORIZATION, authorization.clone());
        }
        builder = builder.headers(headers.clone());
        match &body {
            Some(body) => builder.body(body.clone()),
            None => builder,
        }
    };
    let mut response =
        build(&url, authorization.as_ref()).send().await.map_err(|error| transport(&error, &method, &url, instance))?;
    if let Some(Credentials::Digest { username, password }) = &request.credentials
        && response.status() == StatusCode::UNAUTHORIZED
        && let Some(challenge) =
            digest::challenge(response.headers().get_all(WWW_AUTHENTICATE).iter().filter_map(|v| v.to_str().ok()))
    {
        // Answered at the URL that challenged (the last one, when redirects are followed).
        let challenged = response.url().clone();
        let target = match challenged.query() {
            Some(query) => format!("{}?{query}", challenged.path()),
            None => challenged.path().to_owned(),
        };
        let answer = digest::Answer {
            username,
            password,
            method: method.as_str(),
            uri: &target,
            body: body.as_deref().unwrap_or_default().as_bytes(),
            cnonce: &digest::cnonce(),
        };
        let authorization = sensitive(&digest::authorization(&challenge, &answer), instance)?;
        response = build(&challenged, Some(&authorization))
            .send()
            .await
            .map_err(|error| transport(&error, &method, &challenged, instance))?;
    }

    let status = response.status();
    let response_headers = header_map(response.headers());
    let json_body =
        response.headers().get(CONTENT_TYPE).and_then(|value| value.to_str().ok()).is_some_and(is_json_media_type);
    let bytes = response.bytes().await.map_err(|error| transport(&error, &method, &url, instance))?;

    let accepted = status.is_success() || (request.redirect && status.is_redirection());
    if !accepted {
        let mut detail = format!("{method} {url} answered {status}");
        let text = String::from_utf8_lossy(&bytes);
        let text = text.trim();
        if !text.is_empty() {
            detail.push_str(": ");
            detail.push_str(&truncate(text, 512));
        }
        return Err(communication(status.as_u16(), detail, instance));
    }
    Ok(match request.output {
        HttpOutputFormat::Raw => Value::String(base64(&bytes)),
        HttpOutputFormat::Content => content(&bytes, json_body),
        HttpOutputFormat::Response => json!({
            "request": { "method": method.as_str().to_ascii_lowercase(), "uri": url.as_str(), "headers": sent_headers },
            "statusCode": status.as_u16(),
            "headers": response_headers,
            "content": content(&bytes, json_body),
        }),
    })
}

/// An `Authorization` value, marked sensitive so it is never printed.
fn sensitive(value: &str, instance: &str) -> Result<HeaderValue, WorkflowError> {
    let mut value = HeaderValue::from_bytes(value.as_bytes()).map_err(|_| {
        WorkflowError::configuration(
            "the credentials of the authentication policy cannot be sent in an HTTP header (control characters)",
            instance,
        )
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// The DSL's `communication` error.
fn communication(status: u16, detail: String, instance: &str) -> WorkflowError {
    WorkflowError {
        type_: COMMUNICATION.to_owned(),
        status,
        title: Some("Communication Error".to_owned()),
        detail: Some(detail),
        instance: Some(instance.to_owned()),
    }
}

/// A failed exchange: 503 when the server could not be reached, 500 otherwise.
fn transport(error: &reqwest::Error, method: &Method, url: &Url, instance: &str) -> WorkflowError {
    let status = if error.is_connect() { 503 } else { 500 };
    let mut detail = format!("{method} {url} failed: {error}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let _ = write!(detail, ": {cause}");
        source = cause.source();
    }
    communication(status, detail, instance)
}

/// Headers as a JSON object; repeated headers are joined with `, `.
fn header_map(headers: &HeaderMap) -> Value {
    let mut map = Map::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match map.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(&value);
            }
            _ => {
                map.insert(name.as_str().to_owned(), Value::String(value));
            }
        }
    }
    Value::Object(map)
}

/// Whether a `Content-Type` is JSON (`application/json`, `application/problem+json`, …).
fn is_json_media_type(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}

/// The response content: JSON when declared (and valid), else text, else base64; empty is null.
fn content(bytes: &[u8], json_body: bool) -> Value {
    if bytes.is_empty() {
        return Value::Null;
    }
    if json_body && let Ok(value) = serde_json::from_slice(bytes) {
        return value;
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => Value::String(text.to_owned()),
        Err(_) => Value::String(base64(bytes)),
    }
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// Expands a URI template's simple `{name}` variables from the top-level fields of `data`
/// (RFC 6570 simple string expansion: values percent-encoded, missing or `null` ones empty).
///
/// # Errors
/// The name of a variable whose value is an object or an array.
pub(crate) fn expand_uri_template(template: &str, data: &Value) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = &after[..end];
        let value = match data.get(name) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(text)) => text.clone(),
            Some(scalar @ (Value::Bool(_) | Value::Number(_))) => scalar.to_string(),
            Some(_) => return Err(name.to_owned()),
        };
        percent_encode(&value, &mut out);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_templates_expand_top_level_scalars() {
        let data = json!({ "petId": 42, "name": "a b/c", "pet.id": "x", "none": null, "obj": {} });
        assert_eq!(
            expand_uri_template("https://x/pets/{petId}?n={name}", &data).unwrap(),
            "https://x/pets/42?n=a%20b%2Fc"
        );
        assert_eq!(expand_uri_template("/{pet.id}/{missing}/{none}", &data).unwrap(), "/x//");
        assert_eq!(expand_uri_template("/{obj}", &data).unwrap_err(), "obj");
        assert_eq!(expand_uri_template("/open{brace", &data).unwrap(), "/open{brace");
    }

    #[test]
    fn json_media_types_are_recognised() {
        assert!(is_json_media_type("application/json; charset=utf-8"));
        assert!(is_json_media_type("application/problem+json"));
        assert!(!is_json_media_type("text/plain"));
    }
}
