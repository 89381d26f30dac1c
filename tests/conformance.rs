//! The Serverless Workflow conformance suite: cases written from the DSL reference
//! (`tests/conformance/*.yaml`, one file per area), each run through the built binary the way a
//! user runs a DSL file: `stigmer workflow run -f FILE --input JSON -o json`.
//!
//! A case is a mapping entry `name: { spec, input, secrets, workflow, output | error, detail,
//! tasks, took }`:
//! - `workflow` is the document's text without its `document:` header (the harness adds it);
//!   `{{HTTP}}` in it is the base URL of a loopback HTTP server the suite starts;
//! - `output` is the expected workflow output (the run must complete), or `error` the expected
//!   error's fields (the run must fault), `detail` a text the error's detail contains;
//! - `tasks` is every task the report lists, as `status reference`, in start order;
//! - `took` bounds the wall time: `{ atLeastMs, atMostMs }`.
//!
//! Every failing case is reported, not just the first.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test that cannot set up fails loudly")]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod support;

/// A loopback HTTP/1.1 server with the routes the cases call:
/// - `GET /pets/{id}` → `{ id, query }`;
/// - `POST|PUT /echo` → `{ method, body, contentType }`;
/// - `GET /headers` → the request's headers (lower-case names);
/// - `/status/{code}` → that status, `{ status }`;
/// - `/flaky/{key}/{n}` → 503 for the first `n` requests with that key, then `{ attempts }`;
/// - `/slow/{ms}` → waits, then `{ slept }`;
/// - `GET /openapi.json` → an OpenAPI 3 document for `getPet` (`/pets/{id}`) and `echo`.
fn start_http() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let attempts: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let attempts = Arc::clone(&attempts);
            std::thread::spawn(move || serve(stream, &attempts));
        }
    });
    base
}

fn serve(stream: TcpStream, attempts: &Mutex<HashMap<String, u32>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or_default().to_owned(), parts.next().unwrap_or_default().to_owned());
    let mut headers = serde_json::Map::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.trim_end().split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), Value::from(value.trim()));
        }
    }
    let length = headers.get("content-length").and_then(Value::as_str).and_then(|l| l.parse().ok()).unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let body = String::from_utf8_lossy(&body).into_owned();
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path.to_owned(), Value::from(query)),
        None => (target.clone(), Value::Null),
    };
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (status, reply) = match segments.as_slice() {
        ["pets", id] => (200, json!({ "id": id, "query": query })),
        ["echo"] => (
            200,
            json!({
                "method": method,
                "body": serde_json::from_str::<Value>(&body).unwrap_or(Value::String(body.clone())),
                "contentType": headers.get("content-type"),
            }),
        ),
        ["headers"] => (200, Value::Object(headers.clone())),
        ["openapi.json"] => (200, openapi_document()),
        ["status", code] => (code.parse().unwrap_or(500), json!({ "status": code })),
        ["flaky", key, failures] => {
            let mut attempts = attempts.lock().unwrap();
            let count = attempts.entry((*key).to_owned()).or_default();
            *count += 1;
            if *count <= failures.parse().unwrap_or(0) {
                (503, json!({ "attempt": *count }))
            } else {
                (200, json!({ "attempts": *count }))
            }
        }
        ["slow", millis] => {
            std::thread::sleep(Duration::from_millis(millis.parse().unwrap_or(0)));
            (200, json!({ "slept": millis }))
        }
        _ => (404, json!({ "path": path })),
    };
    let reply = reply.to_string();
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
        reply.len()
    );
}

fn openapi_document() -> Value {
    json!({
        "openapi": "3.0.3",
        "info": { "title": "pets", "version": "1" },
        "servers": [{ "url": "/" }],
        "paths": {
            "/pets/{id}": { "get": {
                "operationId": "getPet",
                "parameters": [
                    { "name": "id", "in": "path", "required": true, "schema": { "type": "string" } },
                    { "name": "verbose", "in": "query", "schema": { "type": "boolean" } }
                ]
            } },
            "/echo": { "post": {
                "operationId": "echo",
                "requestBody": { "content": { "application/json": { "schema": { "type": "object" } } } }
            } }
        }
    })
}

/// Runs every case of `tests/conformance/FILE`, then fails listing those that did not hold.
fn run_cases(file: &str) {
    let path = support::root().join("tests/conformance").join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let cases: indexmap::IndexMap<String, Value> = serde_saphyr::from_str(&text).unwrap();
    assert!(!cases.is_empty(), "{file} has no cases");
    let http = start_http();
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (name, case) in &cases {
        if let Err(why) = run_case(name, case, &http, dir.path()) {
            failures.push(format!("{file} › {name}: {why}"));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n\n"));
}

fn run_case(name: &str, case: &Value, http: &str, dir: &std::path::Path) -> Result<(), String> {
    let body = case["workflow"].as_str().ok_or("no `workflow` text")?.replace("{{HTTP}}", http);
    let document =
        format!("document: {{ dsl: '1.0.0', namespace: conformance, name: {name}, version: '0.1.0' }}\n{body}");
    let file = dir.join(format!("{name}.yaml"));
    std::fs::write(&file, document).unwrap();
    let input = case.get("input").cloned().unwrap_or_else(|| json!({})).to_string();
    let mut command = std::process::Command::new(support::stigmer_bin());
    command.env("STIGMER_HOME", dir.join("home")).env("NO_COLOR", "1");
    command.args(["workflow", "run", "-f"]).arg(&file).args(["-o", "json", "--input", &input]);
    if let Some(Value::Object(secrets)) = case.get("secrets") {
        for (key, value) in secrets {
            command.arg("--secret").arg(format!("{key}={}", value.as_str().unwrap_or_default()));
        }
    }
    let started = Instant::now();
    let ran = command.output().unwrap();
    let took = started.elapsed();
    let report: Value = serde_json::from_slice(&ran.stdout)
        .map_err(|e| format!("no JSON report ({e}); stderr:\n{}", String::from_utf8_lossy(&ran.stderr)))?;
    if let Some(expected) = case.get("output") {
        if report["status"] != "completed" || &report["output"] != expected {
            return Err(format!("expected output {expected}, got {} {}", report["status"], report["output"]));
        }
        if ran.status.code() != Some(0) {
            return Err(format!("completed, but exited {:?}", ran.status.code()));
        }
    }
    if let Some(Value::Object(expected)) = case.get("error") {
        if report["status"] != "faulted" {
            return Err(format!("expected a fault, got {} {}", report["status"], report["output"]));
        }
        for (field, value) in expected {
            if &report["error"][field] != value {
                return Err(format!("error.{field}: expected {value}, got {}", report["error"]));
            }
        }
        if ran.status.code() != Some(1) {
            return Err(format!("faulted, but exited {:?}", ran.status.code()));
        }
    }
    if let Some(Value::String(detail)) = case.get("detail") {
        let got = report["error"]["detail"].as_str().unwrap_or_default();
        if !got.contains(detail.as_str()) {
            return Err(format!("error.detail should contain {detail:?}: {got:?}"));
        }
    }
    if let Some(Value::Array(expected)) = case.get("tasks") {
        let got: Vec<Value> = report["tasks"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|task| {
                Value::String(format!(
                    "{} {}",
                    task["status"].as_str().unwrap_or("?"),
                    task["reference"].as_str().unwrap_or("?")
                ))
            })
            .collect();
        if &got != expected {
            return Err(format!("tasks: expected {expected:#?}, got {got:#?}"));
        }
    }
    let millis = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
    if let Some(least) = case.pointer("/took/atLeastMs").and_then(Value::as_u64)
        && millis < least
    {
        return Err(format!("took {millis} ms, expected at least {least} ms"));
    }
    if let Some(most) = case.pointer("/took/atMostMs").and_then(Value::as_u64)
        && millis > most
    {
        return Err(format!("took {millis} ms, expected at most {most} ms"));
    }
    Ok(())
}

#[test]
fn tasks() {
    run_cases("tasks.yaml");
}

#[test]
fn data_flow() {
    run_cases("data-flow.yaml");
}

#[test]
fn flow_directives() {
    run_cases("flow.yaml");
}

#[test]
fn errors_and_retries() {
    run_cases("errors.yaml");
}

#[test]
fn http_calls() {
    run_cases("http.yaml");
}

#[test]
fn processes_and_events() {
    run_cases("processes-and-events.yaml");
}
