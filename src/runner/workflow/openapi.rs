//! `call: openapi`: finds an operation by `operationId` in an OpenAPI document (Swagger 2.0 or
//! OpenAPI 3.x, JSON or YAML) and turns it and the task's parameters into the parts of an HTTP
//! request, which `http` then sends like a `call: http`. Pure but for [`document`], which
//! fetches the document (once per run and URL).
//!
//! Decisions where the reference is open:
//! - The base URL is OpenAPI 3's first `servers` entry (the operation's, else the path's, else
//!   the document's; `/` when there is none), its variables set to their defaults and a relative
//!   URL resolved against the document's URL; or Swagger 2's `schemes`, `host` and `basePath`,
//!   the scheme being the document's own when listed (else the first listed), the host the
//!   document's when absent.
//! - Parameters are taken from `with.parameters` by their declared name (path-level ones
//!   overridden by operation-level ones of the same name and location; local `$ref`s
//!   followed). Values are serialized per the declared `style`/`explode` (OpenAPI 3) or
//!   `collectionFormat` (Swagger 2); a parameter with `content` is sent as JSON. `null` is
//!   absent. Header parameters named `Accept`, `Content-Type` or `Authorization` are ignored,
//!   as OpenAPI 3 says.
//! - The body of an OpenAPI 3 `requestBody` is the parameter named `body` when there is one
//!   (and no declared parameter has that name), else an object of the parameters no declared
//!   parameter consumed (none: no body). It is sent as JSON unless the operation only accepts
//!   `application/x-www-form-urlencoded` (sent form-encoded) or another non-JSON type (a string
//!   sent as it is). Swagger 2 sends its `in: body` parameter the same way, and `formData`
//!   parameters form-encoded. Multipart bodies are not supported.
//! - Parameters the operation does not declare are ignored (OpenAPI 3 without `requestBody`,
//!   Swagger 2). Missing `required` ones are one configuration error naming them all.
//! - The document is fetched with `GET`, following redirects, with the document endpoint's own
//!   authentication; the operation is called with the task's `authentication`.

use std::fmt::Write as _;
use std::sync::Arc;

use reqwest::Url;
use serde_json::{Map, Value};

use super::encode::{form_encode, percent_encode};
use super::error::WorkflowError;
use super::http::{self, Clients, Credentials};
use crate::model::dsl::HttpOutputFormat;

/// The HTTP methods a path item may hold operations for.
const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// How deep `$ref`s may chain before the document is taken to loop.
const MAX_REFERENCE_CHAIN: usize = 32;

/// The parts of the HTTP request an operation call makes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Operation {
    /// The method, as the document's path item names it (`get`, `post`, …).
    pub method: String,
    /// The URL, path parameters substituted, without the query.
    pub uri: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    /// Already encoded (a string), its `Content-Type` among the headers.
    pub body: Option<Value>,
}

/// Which specification a document follows.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Version {
    Swagger2,
    OpenApi3,
}

/// The request calling `operation_id` of `document` (fetched from `document_url`) with
/// `parameters`.
///
/// # Errors
/// Why the call cannot be made: not an OpenAPI document, no such operation, a reference that
/// cannot be followed, missing required parameters, an unsupported body type.
pub(crate) fn operation(
    document: &Value,
    document_url: &str,
    operation_id: &str,
    parameters: &Map<String, Value>,
) -> Result<Operation, String> {
    let version = if document.get("openapi").and_then(Value::as_str).is_some_and(|v| v.starts_with("3.")) {
        Version::OpenApi3
    } else if document.get("swagger").and_then(Value::as_str) == Some("2.0") {
        Version::Swagger2
    } else {
        return Err(format!("{document_url} is not an OpenAPI 3 or Swagger 2.0 document"));
    };
    let (path, item, method, operation) =
        find(document, operation_id)?.ok_or_else(|| format!("no operation `{operation_id}` in {document_url}"))?;
    let base = base_url(document, version, document_url, item, operation)?;

    let mut declared: Vec<&Map<String, Value>> = Vec::new();
    for list in [item.get("parameters"), operation.get("parameters")].into_iter().flatten() {
        for parameter in list.as_array().into_iter().flatten() {
            let parameter = resolve(document, parameter)?
                .as_object()
                .ok_or_else(|| format!("a parameter of `{operation_id}` is not an object"))?;
            let key = |p: &Map<String, Value>| (p.get("name").cloned(), p.get("in").cloned());
            match declared.iter().position(|existing| key(existing) == key(parameter)) {
                Some(index) => declared[index] = parameter,
                None => declared.push(parameter),
            }
        }
    }

    let mut request =
        Operation { method: method.to_owned(), uri: String::new(), query: Vec::new(), headers: Vec::new(), body: None };
    let mut missing: Vec<String> = Vec::new();
    let mut path = path.to_owned();
    let mut cookies: Vec<String> = Vec::new();
    let mut form: Vec<(String, String)> = Vec::new();
    let mut consumed: Vec<&str> = Vec::new();
    for parameter in &declared {
        let name = parameter.get("name").and_then(Value::as_str).unwrap_or_default();
        let location = parameter.get("in").and_then(Value::as_str).unwrap_or_default();
        consumed.push(name);
        let value = parameters.get(name).filter(|value| !value.is_null());
        let required = location == "path" || parameter.get("required").and_then(Value::as_bool) == Some(true);
        let Some(value) = value else {
            if required {
                missing.push(name.to_owned());
            }
            continue;
        };
        let style = Style::of(parameter, version, location);
        match location {
            "path" => path = path.replace(&format!("{{{name}}}"), &style.path(name, value)),
            "query" => request.query.extend(style.query(name, value)),
            "header" if !["accept", "content-type", "authorization"].contains(&name.to_ascii_lowercase().as_str()) => {
                request.headers.push((name.to_owned(), style.header(value)));
            }
            "cookie" => {
                let mut cookie = format!("{name}=");
                percent_encode(&style.header(value), &mut cookie);
                cookies.push(cookie);
            }
            "body" => request.body = Some(value.clone()),
            "formData" => form.push((name.to_owned(), text(value))),
            _ => {}
        }
    }
    // Variables the template uses but no parameter declares.
    while let Some(start) = path.find('{') {
        let Some(length) = path[start..].find('}') else { break };
        let name = path[start + 1..start + length].to_owned();
        let value = if let Some(value) = parameters.get(&name).filter(|value| !value.is_null()) {
            Style::simple().path(&name, value)
        } else {
            if !missing.contains(&name) {
                missing.push(name.clone());
            }
            String::new()
        };
        path.replace_range(start..=start + length, &value);
    }
    if !cookies.is_empty() {
        request.headers.push(("Cookie".to_owned(), cookies.join("; ")));
    }

    match version {
        Version::OpenApi3 => {
            if let Some(request_body) = operation.get("requestBody") {
                let request_body = resolve(document, request_body)?;
                let value = match parameters.get("body") {
                    Some(body) if !consumed.contains(&"body") => Some(body.clone()),
                    _ => {
                        let rest: Map<String, Value> = parameters
                            .iter()
                            .filter(|(name, _)| !consumed.contains(&name.as_str()))
                            .map(|(name, value)| (name.clone(), value.clone()))
                            .collect();
                        (!rest.is_empty()).then_some(Value::Object(rest))
                    }
                };
                let media_types: Vec<&str> = request_body
                    .get("content")
                    .and_then(Value::as_object)
                    .map(|content| content.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                match value {
                    Some(value) => encode_body(&mut request, &value, &media_types)?,
                    None if request_body.get("required").and_then(Value::as_bool) == Some(true) => {
                        missing.push("body".to_owned());
                    }
                    None => {}
                }
            }
        }
        Version::Swagger2 => {
            let accepted: Vec<&str> = operation
                .get("consumes")
                .or_else(|| document.get("consumes"))
                .and_then(Value::as_array)
                .map(|types| types.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if let Some(value) = request.body.take() {
                encode_body(&mut request, &value, &accepted)?;
            } else if !form.is_empty() {
                let accepts_form =
                    accepted.is_empty() || accepted.iter().any(|t| essence(t) == "application/x-www-form-urlencoded");
                if !accepts_form {
                    return Err(format!("`{operation_id}` takes a multipart body, which is not supported"));
                }
                let pairs: Vec<(&str, String)> =
                    form.iter().map(|(name, value)| (name.as_str(), value.clone())).collect();
                request.body = Some(Value::String(form_encode(&pairs)));
                request.headers.push(("Content-Type".to_owned(), "application/x-www-form-urlencoded".to_owned()));
            }
        }
    }

    if !missing.is_empty() {
        return Err(format!("`{operation_id}` needs parameters `with.parameters` lacks: {}", missing.join(", ")));
    }
    request.uri = format!("{}{path}", base.trim_end_matches('/'));
    Ok(request)
}

/// The path, path item, method and operation whose `operationId` is `id`.
fn find<'d>(document: &'d Value, id: &str) -> Result<Option<(&'d str, &'d Value, &'d str, &'d Value)>, String> {
    let Some(paths) = document.get("paths").and_then(Value::as_object) else { return Ok(None) };
    for (path, item) in paths {
        let item = resolve(document, item)?;
        for method in METHODS {
            if let Some(operation) = item.get(method)
                && operation.get("operationId").and_then(Value::as_str) == Some(id)
            {
                return Ok(Some((path, item, method, operation)));
            }
        }
    }
    Ok(None)
}

/// `value`, or what its local `$ref` (`#/components/parameters/x`, `#/parameters/x`) points at.
fn resolve<'d>(document: &'d Value, value: &'d Value) -> Result<&'d Value, String> {
    let mut current = value;
    for _ in 0..MAX_REFERENCE_CHAIN {
        let Some(reference) = current.get("$ref").and_then(Value::as_str) else { return Ok(current) };
        let pointer = reference
            .strip_prefix('#')
            .ok_or_else(|| format!("the reference \"{reference}\" is outside the document, which is not supported"))?;
        current =
            document.pointer(pointer).ok_or_else(|| format!("the reference \"{reference}\" points at nothing"))?;
    }
    Err(format!("references chain more than {MAX_REFERENCE_CHAIN} times from {value}"))
}

/// The URL the operation's path is appended to.
fn base_url(
    document: &Value,
    version: Version,
    document_url: &str,
    item: &Value,
    operation: &Value,
) -> Result<String, String> {
    let document_url = Url::parse(document_url).map_err(|error| format!("\"{document_url}\" is not a URL: {error}"))?;
    match version {
        Version::OpenApi3 => {
            let server = [operation, item, document]
                .into_iter()
                .filter_map(|holder| holder.get("servers").and_then(Value::as_array))
                .find_map(|servers| servers.first());
            let Some(server) = server else {
                return document_url.join("/").map(String::from).map_err(|e| e.to_string());
            };
            let mut url = server.get("url").and_then(Value::as_str).unwrap_or("/").to_owned();
            if let Some(variables) = server.get("variables").and_then(Value::as_object) {
                for (name, variable) in variables {
                    if let Some(default) = variable.get("default") {
                        url = url.replace(&format!("{{{name}}}"), &text(default));
                    }
                }
            }
            if let Some(start) = url.find('{') {
                let name = url[start + 1..].split('}').next().unwrap_or_default();
                return Err(format!("the server variable `{name}` of \"{url}\" has no default"));
            }
            let mut base =
                document_url.join(&url).map_err(|error| format!("the server URL \"{url}\" is not a URL: {error}"))?;
            base.set_query(None);
            base.set_fragment(None);
            Ok(base.into())
        }
        Version::Swagger2 => {
            let schemes: Vec<&str> = document
                .get("schemes")
                .and_then(Value::as_array)
                .map(|schemes| schemes.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let own = document_url.scheme();
            let scheme = if schemes.is_empty() || schemes.contains(&own) {
                own
            } else {
                schemes.iter().copied().find(|scheme| matches!(*scheme, "http" | "https")).unwrap_or(own)
            };
            let host = document.get("host").and_then(Value::as_str).map_or_else(
                || {
                    let host = document_url.host_str().unwrap_or_default();
                    match document_url.port() {
                        Some(port) => format!("{host}:{port}"),
                        None => host.to_owned(),
                    }
                },
                str::to_owned,
            );
            let base_path = document.get("basePath").and_then(Value::as_str).unwrap_or("/");
            Ok(format!("{scheme}://{host}/{}", base_path.trim_start_matches('/')))
        }
    }
}

/// How a parameter's value is written.
struct Style {
    /// OpenAPI 3's style (`simple`, `form`, `label`, `matrix`, `spaceDelimited`,
    /// `pipeDelimited`, `deepObject`), or Swagger 2's, mapped onto them.
    name: &'static str,
    explode: bool,
    /// The parameter has `content`: its value is sent as JSON.
    json: bool,
}

impl Style {
    fn simple() -> Self {
        Self { name: "simple", explode: false, json: false }
    }

    fn of(parameter: &Map<String, Value>, version: Version, location: &str) -> Self {
        if version == Version::Swagger2 {
            let (name, explode) = match parameter.get("collectionFormat").and_then(Value::as_str) {
                Some("multi") => ("form", true),
                Some("ssv") => ("spaceDelimited", false),
                Some("pipes") => ("pipeDelimited", false),
                Some("tsv") => ("tabDelimited", false),
                _ if location == "query" => ("form", false),
                _ => ("simple", false),
            };
            return Self { name, explode, json: false };
        }
        let default = if matches!(location, "query" | "cookie") { "form" } else { "simple" };
        let name = match parameter.get("style").and_then(Value::as_str).unwrap_or(default) {
            "form" => "form",
            "label" => "label",
            "matrix" => "matrix",
            "spaceDelimited" => "spaceDelimited",
            "pipeDelimited" => "pipeDelimited",
            "deepObject" => "deepObject",
            _ => "simple",
        };
        let explode = parameter.get("explode").and_then(Value::as_bool).unwrap_or(name == "form");
        Self { name, explode, json: parameter.contains_key("content") }
    }

    /// The separator of array items (unexploded).
    fn separator(&self) -> &'static str {
        match self.name {
            "spaceDelimited" => " ",
            "pipeDelimited" => "|",
            "tabDelimited" => "\t",
            _ => ",",
        }
    }

    /// A path segment, percent-encoded.
    fn path(&self, name: &str, value: &Value) -> String {
        let encode = |text: &str| {
            let mut out = String::new();
            percent_encode(text, &mut out);
            out
        };
        if self.json {
            return encode(&value.to_string());
        }
        let (prefix, separator) = match self.name {
            "label" => (".".to_owned(), if self.explode { "." } else { "," }),
            "matrix" if self.explode => (String::new(), ""),
            "matrix" => (format!(";{name}="), ","),
            _ => (String::new(), ","),
        };
        let parts: Vec<String> = match value {
            Value::Array(items) if self.name == "matrix" && self.explode => {
                return items.iter().fold(String::new(), |mut out, item| {
                    let _ = write!(out, ";{name}={}", encode(&text(item)));
                    out
                });
            }
            Value::Object(map) if self.name == "matrix" && self.explode => {
                return map.iter().fold(String::new(), |mut out, (key, item)| {
                    let _ = write!(out, ";{}={}", encode(key), encode(&text(item)));
                    out
                });
            }
            Value::Array(items) => items.iter().map(|item| encode(&text(item))).collect(),
            Value::Object(map) if self.explode => {
                map.iter().map(|(key, item)| format!("{}={}", encode(key), encode(&text(item)))).collect()
            }
            Value::Object(map) => map.iter().flat_map(|(key, item)| [encode(key), encode(&text(item))]).collect(),
            Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null if self.name == "matrix" => {
                return format!(";{name}={}", encode(&text(value)));
            }
            scalar => vec![encode(&text(scalar))],
        };
        format!("{prefix}{}", parts.join(separator))
    }

    /// Query pairs (not yet encoded: `http` encodes the query).
    fn query(&self, name: &str, value: &Value) -> Vec<(String, String)> {
        if self.json {
            return vec![(name.to_owned(), value.to_string())];
        }
        match value {
            Value::Array(items) if self.explode => items.iter().map(|item| (name.to_owned(), text(item))).collect(),
            Value::Array(items) => {
                vec![(name.to_owned(), items.iter().map(text).collect::<Vec<_>>().join(self.separator()))]
            }
            Value::Object(map) if self.name == "deepObject" => {
                map.iter().map(|(key, item)| (format!("{name}[{key}]"), text(item))).collect()
            }
            Value::Object(map) if self.explode => map.iter().map(|(key, item)| (key.clone(), text(item))).collect(),
            Value::Object(map) => {
                let flat: Vec<String> = map.iter().flat_map(|(key, item)| [key.clone(), text(item)]).collect();
                vec![(name.to_owned(), flat.join(","))]
            }
            scalar => vec![(name.to_owned(), text(scalar))],
        }
    }

    /// A header (or cookie) value.
    fn header(&self, value: &Value) -> String {
        if self.json {
            return value.to_string();
        }
        match value {
            Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(self.separator()),
            Value::Object(map) if self.explode => {
                map.iter().map(|(key, item)| format!("{key}={}", text(item))).collect::<Vec<_>>().join(",")
            }
            Value::Object(map) => {
                map.iter().flat_map(|(key, item)| [key.clone(), text(item)]).collect::<Vec<_>>().join(",")
            }
            scalar => text(scalar),
        }
    }
}

/// A scalar as text (strings unquoted); arrays and objects as JSON.
fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The media type without parameters, lower case.
fn essence(media_type: &str) -> String {
    media_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

/// Sets the request's body to `value`, encoded for the first of `media_types` this runtime can
/// write (JSON preferred; JSON when none is declared).
fn encode_body(request: &mut Operation, value: &Value, media_types: &[&str]) -> Result<(), String> {
    let is_json = |t: &&&str| {
        let essence = essence(t);
        essence == "application/json" || essence.ends_with("+json") || essence.contains('*')
    };
    let (media_type, body) = if media_types.is_empty() {
        ("application/json".to_owned(), value.to_string())
    } else if let Some(json) = media_types.iter().find(is_json) {
        let media_type = if json.contains('*') { "application/json".to_owned() } else { (*json).to_owned() };
        (media_type, value.to_string())
    } else if media_types.iter().any(|t| essence(t) == "application/x-www-form-urlencoded") {
        let Value::Object(map) = value else {
            return Err("a form-encoded body must be an object of fields".to_owned());
        };
        let pairs: Vec<(&str, String)> = map.iter().map(|(name, value)| (name.as_str(), text(value))).collect();
        ("application/x-www-form-urlencoded".to_owned(), form_encode(&pairs))
    } else if let Some(other) = media_types.iter().find(|t| !essence(t).starts_with("multipart/")) {
        ((*other).to_owned(), text(value))
    } else {
        return Err(format!("multipart bodies ({}) are not supported", media_types.join(", ")));
    };
    request.headers.push(("Content-Type".to_owned(), media_type));
    request.body = Some(Value::String(body));
    Ok(())
}

/// The OpenAPI document at `url`: the one this run already fetched, else fetched now (JSON or
/// YAML, whatever its `Content-Type`) with `credentials`.
///
/// # Errors
/// `communication` when the fetch fails, `configuration` when the reply is not a JSON or YAML
/// object.
pub(crate) async fn document(
    clients: &Clients,
    url: &str,
    credentials: Option<Credentials>,
    instance: &str,
) -> Result<Arc<Value>, WorkflowError> {
    if let Some(document) = clients.document(url) {
        return Ok(document);
    }
    let request = http::Request {
        method: "get".to_owned(),
        uri: url.to_owned(),
        headers: vec![(
            "Accept".to_owned(),
            "application/json, application/yaml;q=0.9, text/yaml;q=0.9, */*;q=0.8".to_owned(),
        )],
        query: Vec::new(),
        body: None,
        credentials,
        output: HttpOutputFormat::Content,
        redirect: true,
    };
    let fetched = http::send(clients, request, instance).await.map_err(|mut error| {
        error.detail = error.detail.map(|detail| format!("fetching the OpenAPI document failed: {detail}"));
        error
    })?;
    let invalid = |why: String| WorkflowError::configuration(format!("the OpenAPI document {url} {why}"), instance);
    let document = match fetched {
        Value::String(text) => match serde_json::from_str::<Value>(&text) {
            Ok(document) => document,
            Err(_) => serde_saphyr::from_str::<Value>(&text).map_err(|error| {
                let mut why = String::from("is neither JSON nor YAML: ");
                let _ = write!(why, "{error}");
                invalid(why)
            })?,
        },
        other => other,
    };
    if !document.is_object() {
        return Err(invalid("is not an object".to_owned()));
    }
    let document = Arc::new(document);
    clients.keep_document(url, Arc::clone(&document));
    Ok(document)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parameters(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    fn petstore_v2() -> Value {
        serde_saphyr::from_str(
            r"
swagger: '2.0'
host: petstore.example.com
basePath: /v2
schemes: [https, http]
consumes: [application/json]
parameters:
  petId:
    name: petId
    in: path
    required: true
    type: integer
paths:
  /pet/{petId}:
    parameters:
      - $ref: '#/parameters/petId'
    get:
      operationId: getPetById
      parameters:
        - { name: api_key, in: header, type: string }
      responses:
        200: { description: ok }
    post:
      operationId: updatePetWithForm
      consumes: [application/x-www-form-urlencoded]
      parameters:
        - { name: name, in: formData, type: string }
        - { name: status, in: formData, type: string }
      responses:
        405: { description: invalid }
  /pet/findByStatus:
    get:
      operationId: findPetsByStatus
      parameters:
        - { name: status, in: query, required: true, type: array, items: { type: string }, collectionFormat: multi }
        - { name: tags, in: query, type: array, items: { type: string } }
  /pet:
    post:
      operationId: addPet
      parameters:
        - { name: body, in: body, required: true, schema: { type: object } }
",
        )
        .unwrap()
    }

    #[test]
    fn swagger_2_path_header_and_scheme_host_base_path() {
        let document = petstore_v2();
        let call = operation(
            &document,
            "http://docs.example.com/swagger.yaml",
            "getPetById",
            &parameters(json!({ "petId": 7, "api_key": "k", "unused": true })),
        )
        .unwrap();
        assert_eq!(call.method, "get");
        // The document was fetched over http, which the API lists too.
        assert_eq!(call.uri, "http://petstore.example.com/v2/pet/7");
        assert_eq!(call.headers, [("api_key".to_owned(), "k".to_owned())]);
        assert_eq!(call.body, None);

        let call = operation(&document, "ftp://docs/x", "getPetById", &parameters(json!({ "petId": "a/b" }))).unwrap();
        assert_eq!(call.uri, "https://petstore.example.com/v2/pet/a%2Fb");
    }

    #[test]
    fn swagger_2_collection_formats_body_and_form_data() {
        let document = petstore_v2();
        let url = "https://docs/swagger.json";
        let call = operation(
            &document,
            url,
            "findPetsByStatus",
            &parameters(json!({ "status": ["available", "sold"], "tags": ["a", "b"] })),
        )
        .unwrap();
        let pair = |name: &str, value: &str| (name.to_owned(), value.to_owned());
        assert_eq!(call.query, [pair("status", "available"), pair("status", "sold"), pair("tags", "a,b")]);

        let call = operation(&document, url, "addPet", &parameters(json!({ "body": { "name": "Rex" } }))).unwrap();
        assert_eq!(call.method, "post");
        assert_eq!(call.body, Some(json!("{\"name\":\"Rex\"}")));
        assert!(call.headers.contains(&pair("Content-Type", "application/json")));

        let call =
            operation(&document, url, "updatePetWithForm", &parameters(json!({ "petId": 1, "name": "R x" }))).unwrap();
        assert_eq!(call.body, Some(json!("name=R%20x")));
        assert!(call.headers.contains(&pair("Content-Type", "application/x-www-form-urlencoded")));
    }

    #[test]
    fn missing_operation_and_required_parameters_are_named() {
        let document = petstore_v2();
        let url = "https://docs/swagger.json";
        let error = operation(&document, url, "deletePet", &Map::new()).unwrap_err();
        assert_eq!(error, "no operation `deletePet` in https://docs/swagger.json");
        let error = operation(&document, url, "addPet", &Map::new()).unwrap_err();
        assert_eq!(error, "`addPet` needs parameters `with.parameters` lacks: body");
        let error = operation(&document, url, "getPetById", &parameters(json!({ "petId": null }))).unwrap_err();
        assert!(error.ends_with("lacks: petId"), "{error}");
        let error = operation(&json!({ "info": {} }), url, "x", &Map::new()).unwrap_err();
        assert_eq!(error, "https://docs/swagger.json is not an OpenAPI 3 or Swagger 2.0 document");
    }

    fn petstore_v3() -> Value {
        json!({
            "openapi": "3.0.3",
            "servers": [{ "url": "/api/{version}", "variables": { "version": { "default": "v3" } } }],
            "components": {
                "parameters": {
                    "id": { "name": "id", "in": "path", "required": true, "schema": { "type": "string" } },
                    "trace": { "$ref": "#/components/parameters/traceInner" },
                    "traceInner": { "name": "X-Trace", "in": "header", "required": true, "schema": { "type": "string" } }
                },
                "requestBodies": {
                    "pet": { "required": true, "content": { "application/json": { "schema": { "type": "object" } } } }
                }
            },
            "paths": {
                "/pets/{id}": {
                    "parameters": [{ "$ref": "#/components/parameters/id" }],
                    "get": {
                        "operationId": "getPet",
                        "parameters": [
                            { "$ref": "#/components/parameters/trace" },
                            { "name": "fields", "in": "query", "schema": { "type": "array" }, "explode": false },
                            { "name": "filter", "in": "query", "style": "deepObject", "schema": { "type": "object" } },
                            { "name": "session", "in": "cookie", "schema": { "type": "string" } },
                            { "name": "lang", "in": "cookie", "schema": { "type": "string" } },
                            { "name": "Accept", "in": "header", "schema": { "type": "string" } }
                        ]
                    },
                    "put": {
                        "operationId": "updatePet",
                        "servers": [{ "url": "https://write.example.com/v3/" }],
                        "requestBody": { "$ref": "#/components/requestBodies/pet" }
                    }
                },
                "/pets/{id}/photo": {
                    "post": {
                        "operationId": "uploadPhoto",
                        "parameters": [{ "$ref": "#/components/parameters/id" }],
                        "requestBody": { "content": { "multipart/form-data": {} } }
                    }
                },
                "/pets/{id}/notes": {
                    "post": {
                        "operationId": "addNote",
                        "parameters": [{ "$ref": "#/components/parameters/id" }],
                        "requestBody": { "content": { "text/plain": {} } }
                    }
                }
            }
        })
    }

    #[test]
    fn openapi_3_servers_references_styles_and_cookies() {
        let document = petstore_v3();
        let call = operation(
            &document,
            "http://127.0.0.1:8080/docs/openapi.json",
            "getPet",
            &parameters(json!({
                "id": "a b",
                "X-Trace": "t-1",
                "fields": ["name", "tag"],
                "filter": { "color": "red" },
                "session": "s;1",
                "lang": "en",
                "Accept": "text/html",
            })),
        )
        .unwrap();
        assert_eq!(call.uri, "http://127.0.0.1:8080/api/v3/pets/a%20b");
        let pair = |name: &str, value: &str| (name.to_owned(), value.to_owned());
        assert_eq!(call.query, [pair("fields", "name,tag"), pair("filter[color]", "red")]);
        assert_eq!(call.headers, [pair("X-Trace", "t-1"), pair("Cookie", "session=s%3B1; lang=en")]);
        assert_eq!(call.body, None);

        let error =
            operation(&document, "http://h/openapi.json", "getPet", &parameters(json!({ "id": 1 }))).unwrap_err();
        assert!(error.ends_with("lacks: X-Trace"), "{error}");
    }

    #[test]
    fn openapi_3_request_bodies_take_body_or_the_unconsumed_parameters() {
        let document = petstore_v3();
        let url = "http://h/openapi.json";
        let call = operation(&document, url, "updatePet", &parameters(json!({ "id": 1, "name": "Rex", "tag": null })))
            .unwrap();
        assert_eq!(call.method, "put");
        assert_eq!(call.uri, "https://write.example.com/v3/pets/1");
        assert_eq!(call.body, Some(json!("{\"name\":\"Rex\",\"tag\":null}")));
        assert_eq!(call.headers, [("Content-Type".to_owned(), "application/json".to_owned())]);

        let call =
            operation(&document, url, "updatePet", &parameters(json!({ "id": 1, "body": [1, 2], "x": 3 }))).unwrap();
        assert_eq!(call.body, Some(json!("[1,2]")));

        let error = operation(&document, url, "updatePet", &parameters(json!({ "id": 1 }))).unwrap_err();
        assert!(error.ends_with("lacks: body"), "{error}");

        let call = operation(&document, url, "addNote", &parameters(json!({ "id": 1, "body": "hi" }))).unwrap();
        assert_eq!(call.body, Some(json!("hi")));
        assert_eq!(call.headers, [("Content-Type".to_owned(), "text/plain".to_owned())]);

        let error = operation(&document, url, "uploadPhoto", &parameters(json!({ "id": 1, "file": "x" }))).unwrap_err();
        assert!(error.contains("multipart"), "{error}");
    }

    #[test]
    fn path_styles_and_servers_without_defaults() {
        let mut parameter = Map::new();
        parameter.insert("style".to_owned(), json!("label"));
        assert_eq!(Style::of(&parameter, Version::OpenApi3, "path").path("id", &json!([1, 2])), ".1,2");
        parameter.insert("style".to_owned(), json!("matrix"));
        assert_eq!(Style::of(&parameter, Version::OpenApi3, "path").path("id", &json!(5)), ";id=5");
        parameter.insert("explode".to_owned(), json!(true));
        assert_eq!(Style::of(&parameter, Version::OpenApi3, "path").path("id", &json!([1, 2])), ";id=1;id=2");
        assert_eq!(Style::simple().path("id", &json!({ "a": 1, "b": "x y" })), "a,1,b,x%20y");

        let document = json!({
            "openapi": "3.1.0",
            "servers": [{ "url": "https://{tenant}.example.com" }],
            "paths": { "/x": { "get": { "operationId": "x" } } }
        });
        let error = operation(&document, "http://h/doc", "x", &Map::new()).unwrap_err();
        assert!(error.contains("server variable `tenant`"), "{error}");
        let document = json!({ "openapi": "3.1.0", "paths": { "/x": { "get": { "operationId": "x" } } } });
        assert_eq!(operation(&document, "http://h:1/a/doc", "x", &Map::new()).unwrap().uri, "http://h:1/x");
    }
}
