//! The MCP client against a real MCP server: `examples/mcp_test_server.rs` (rmcp's server side),
//! run over stdio and over streamable HTTP on 127.0.0.1. Unix only: processes are looked for
//! with `kill -0`.
#![cfg(unix)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use indexmap::IndexMap;
use serde_json::json;
use tokio::io::AsyncBufReadExt as _;

use super::*;

#[path = "../../../../tests/support/mcp_server.rs"]
mod mcp_server;
use crate::model::{HttpTransport, McpServerDefinition, McpServerSpec, McpServerUsage, ResourceRef, StdioTransport};
use crate::secrets::SecretValue;
use mcp_server::test_server;

const CALL: Duration = Duration::from_secs(20);

fn variables(pairs: &[(&str, &str)]) -> BTreeMap<String, SecretValue> {
    pairs.iter().map(|(name, value)| ((*name).to_owned(), SecretValue::new(*value))).collect()
}

fn stdio_transport(args: &[&str]) -> StdioTransport {
    StdioTransport {
        command: test_server().display().to_string(),
        args: args.iter().map(|arg| (*arg).to_owned()).collect(),
        ..StdioTransport::default()
    }
}

fn stdio_server(name: &str, args: &[&str]) -> McpServerConfig {
    McpServerConfig {
        name: name.to_owned(),
        transport: McpTransport::Stdio(stdio_transport(args)),
        enabled_tools: vec![],
        approvals: None,
    }
}

fn options() -> ConnectOptions {
    // Generous: the machine running the tests may be busy.
    ConnectOptions { initialize_timeout: Duration::from_secs(30), shutdown_grace: Duration::from_secs(2) }
}

async fn connect(config: &McpServerConfig, vars: &BTreeMap<String, SecretValue>) -> McpConnection {
    let resolved = config.resolve(vars).expect("placeholders resolve");
    McpConnection::connect(&resolved, &options()).await.expect("the test server starts")
}

async fn connect_err(config: &McpServerConfig) -> McpError {
    let resolved = config.resolve(&variables(&[])).expect("placeholders resolve");
    McpConnection::connect(&resolved, &options()).await.expect_err("connecting fails")
}

/// The test server over streamable HTTP; killed when dropped.
struct HttpServer {
    _process: tokio::process::Child,
    port: u16,
}

impl HttpServer {
    async fn start() -> Self {
        let mut process = tokio::process::Command::new(test_server())
            .arg("--http")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the HTTP test server starts");
        let stdout = process.stdout.take().expect("stdout is piped");
        let mut line = String::new();
        let mut stdout = tokio::io::BufReader::new(stdout);
        let read = stdout.read_line(&mut line);
        tokio::time::timeout(Duration::from_secs(30), read).await.expect("the server prints its URL").unwrap();
        let port = line.trim().trim_start_matches("http://127.0.0.1:").trim_end_matches("/mcp").parse().unwrap();
        Self { _process: process, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }
}

fn http_server(name: &str, http: HttpTransport) -> McpServerConfig {
    McpServerConfig {
        name: name.to_owned(),
        transport: McpTransport::Http(http),
        enabled_tools: vec![],
        approvals: None,
    }
}

/// Whether a process with this id exists (a zombie counts: it was not reaped).
fn process_exists(pid: u32) -> bool {
    std::process::Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn names(connection: &McpConnection) -> Vec<&str> {
    connection.tools().iter().map(|tool| tool.name.as_str()).collect()
}

#[tokio::test]
async fn stdio_server_lists_its_tools_and_calls_them() {
    let connection = connect(&stdio_server("test", &[]), &variables(&[])).await;
    for tool in ["echo", "add", "env", "fail", "slow", "crash", "picture"] {
        assert!(names(&connection).contains(&tool), "{tool} in {:?}", names(&connection));
    }
    let add = connection.tools().iter().find(|tool| tool.name == "add").unwrap();
    assert_eq!(add.exposed_name, "test__add");
    assert_eq!(add.description.as_deref(), Some("Adds two integers."));
    assert_eq!(add.input_schema["properties"]["a"]["type"], "integer", "{}", add.input_schema);

    let echoed = connection.call_tool("echo", json!({ "text": "hello" }), CALL).await;
    assert_eq!((echoed.text.as_str(), echoed.is_error), ("hello", false));
    assert!(echoed.duration > Duration::ZERO && echoed.duration < CALL);
    let sum = connection.call_tool("add", json!({ "a": 2, "b": 3 }), CALL).await;
    assert_eq!((sum.text.as_str(), sum.is_error), ("5", false));
    let picture = connection.call_tool("picture", json!(null), CALL).await;
    assert_eq!(picture.text, "[image: image/png, 8 bytes of base64]\na caption");

    let bad_arguments = connection.call_tool("add", json!({ "a": "two" }), CALL).await;
    assert!(bad_arguments.is_error, "{bad_arguments:?}");
    let not_a_tool = connection.call_tool("nope", json!({}), CALL).await;
    assert_eq!(not_a_tool.text, "MCP server \"test\" has no enabled tool \"nope\"");
    connection.shutdown().await.unwrap();
}

#[tokio::test]
async fn http_server_lists_its_tools_and_calls_them() {
    let server = HttpServer::start().await;
    let config = http_server("web", HttpTransport { url: server.url(), ..HttpTransport::default() });
    let connection = connect(&config, &variables(&[])).await;
    assert!(names(&connection).contains(&"header"), "{:?}", names(&connection));
    assert_eq!(connection.pid(), None);
    let echoed = connection.call_tool("echo", json!({ "text": "over http" }), CALL).await;
    assert_eq!((echoed.text.as_str(), echoed.is_error), ("over http", false));
    let failed = connection.call_tool("fail", json!({}), CALL).await;
    assert_eq!((failed.text.as_str(), failed.is_error), ("the tool failed on purpose", true));
    connection.shutdown().await.unwrap();
}

#[tokio::test]
async fn placeholders_reach_the_stdio_process_in_env_args_and_working_dir() {
    let dir = tempfile::tempdir().unwrap();
    let mut transport = stdio_transport(&["--who=${WHO}"]);
    transport.env_placeholders = IndexMap::from([("GREETING".to_owned(), "hello ${WHO}".to_owned())]);
    transport.working_dir = Some("${WORK_DIR}".to_owned());
    let config = McpServerConfig { transport: McpTransport::Stdio(transport), ..stdio_server("test", &[]) };
    let vars = variables(&[("WHO", "world"), ("WORK_DIR", &dir.path().display().to_string())]);
    let connection = connect(&config, &vars).await;

    let greeting = connection.call_tool("env", json!({ "name": "GREETING" }), CALL).await;
    assert_eq!((greeting.text.as_str(), greeting.is_error), ("hello world", false));
    let inherited = connection.call_tool("env", json!({ "name": "PATH" }), CALL).await;
    assert!(!inherited.is_error, "the runner's own environment is inherited: {inherited:?}");
    let argv = connection.call_tool("argv", json!({}), CALL).await;
    assert_eq!(argv.text, r#"["--who=world"]"#);
    let cwd = connection.call_tool("cwd", json!({}), CALL).await;
    assert_eq!(Path::new(&cwd.text).canonicalize().unwrap(), dir.path().canonicalize().unwrap());
    connection.shutdown().await.unwrap();
}

#[tokio::test]
async fn placeholders_reach_the_http_server_in_url_headers_and_query() {
    let server = HttpServer::start().await;
    let http = HttpTransport {
        url: "http://127.0.0.1:${PORT}/mcp".to_owned(),
        headers: IndexMap::from([
            ("Authorization".to_owned(), "Bearer ${TOKEN}".to_owned()),
            ("X-Team".to_owned(), "${TEAM}".to_owned()),
        ]),
        query_params: IndexMap::from([("team".to_owned(), "${TEAM}".to_owned())]),
        timeout_seconds: Some(20),
    };
    let vars = variables(&[("PORT", &server.port.to_string()), ("TOKEN", "s3cret-token"), ("TEAM", "blue")]);
    let connection = connect(&http_server("web", http), &vars).await;
    let authorization = connection.call_tool("header", json!({ "name": "authorization" }), CALL).await;
    assert_eq!((authorization.text.as_str(), authorization.is_error), ("Bearer s3cret-token", false));
    let team = connection.call_tool("header", json!({ "name": "x-team" }), CALL).await;
    assert_eq!(team.text, "blue");
    let query = connection.call_tool("query", json!({}), CALL).await;
    assert_eq!(query.text, "team=blue");
    connection.shutdown().await.unwrap();
}

#[tokio::test]
async fn secrets_stay_out_of_debug_output_and_error_messages() {
    // Nothing listens on a port just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let http = HttpTransport {
        url: format!("http://127.0.0.1:{port}/mcp?key=${{TOKEN}}"),
        headers: IndexMap::from([("Authorization".to_owned(), "Bearer ${TOKEN}".to_owned())]),
        query_params: IndexMap::from([("also".to_owned(), "${TOKEN}".to_owned())]),
        timeout_seconds: Some(5),
    };
    let resolved = http_server("web", http).resolve(&variables(&[("TOKEN", "s3cret-token")])).unwrap();
    let debug = format!("{resolved:?}");
    assert!(!debug.contains("s3cret"), "{debug}");
    let error = McpConnection::connect(&resolved, &options()).await.unwrap_err();
    let message = error.to_string();
    assert!(message.starts_with("MCP server \"web\""), "{message}");
    assert!(message.contains("?key=${TOKEN}"), "the URL is shown as written: {message}");
    assert!(!message.contains("s3cret"), "{message}");

    let mut transport = stdio_transport(&["--token=${TOKEN}"]);
    transport.env_placeholders = IndexMap::from([("API_KEY".to_owned(), "${TOKEN}".to_owned())]);
    let config = McpServerConfig { transport: McpTransport::Stdio(transport), ..stdio_server("test", &[]) };
    let debug = format!("{:?}", config.resolve(&variables(&[("TOKEN", "s3cret-token")])).unwrap());
    assert!(!debug.contains("s3cret"), "{debug}");
}

#[test]
fn unresolved_placeholders_are_all_named_with_server_and_field() {
    let mut transport = stdio_transport(&["--org=${ORG}", "${ORG}-${REGION}"]);
    transport.env_placeholders = IndexMap::from([("API_KEY".to_owned(), "${API_KEY}".to_owned())]);
    transport.working_dir = Some("/srv/${ORG".to_owned());
    let config = McpServerConfig { transport: McpTransport::Stdio(transport), ..stdio_server("github", &[]) };
    let error = config.resolve(&variables(&[("REGION", "eu")])).unwrap_err();
    assert_eq!(
        error.to_string(),
        "MCP server \"github\" has 4 placeholders that cannot be resolved: ${ORG} in stdio.args[0] has no value; \
         ${ORG} in stdio.args[1] has no value; ${API_KEY} in stdio.envPlaceholders.API_KEY has no value; \
         stdio.workingDir has a `${` without a variable name and a closing `}`"
    );

    let http = HttpTransport {
        url: "https://${HOST}/mcp".to_owned(),
        headers: IndexMap::from([("Authorization".to_owned(), "Bearer ${TOKEN}".to_owned())]),
        query_params: IndexMap::from([("team".to_owned(), "${TEAM}".to_owned())]),
        timeout_seconds: None,
    };
    let error = http_server("web", http).resolve(&variables(&[])).unwrap_err();
    let McpError::Placeholders { server, problems } = &error else { panic!("{error}") };
    assert_eq!(server, "web");
    let fields: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        fields,
        [
            "${HOST} in http.url has no value",
            "${TOKEN} in http.headers.Authorization has no value",
            "${TEAM} in http.queryParams.team has no value"
        ]
    );
}

#[test]
fn configs_come_from_definitions_and_usages() {
    let definition = McpServerDefinition {
        name: "fs".into(),
        stdio: Some(stdio_transport(&[])),
        enabled_tools: vec!["echo".into()],
        ..McpServerDefinition::default()
    };
    let config = McpServerConfig::from_definition(&definition).unwrap();
    assert_eq!((config.name.as_str(), config.enabled_tools.as_slice()), ("fs", ["echo".to_owned()].as_slice()));

    let spec =
        McpServerSpec { default_enabled_tools: vec!["echo".into(), "add".into()], ..McpServerSpec::http("http://x") };
    let usage = |tools: &[&str]| McpServerUsage {
        tool_approval_overrides: None,
        mcp_server_ref: ResourceRef::named("shared"),
        enabled_tools: tools.iter().map(|tool| (*tool).to_owned()).collect(),
    };
    let defaults = McpServerConfig::from_usage(&usage(&[]), &spec).unwrap();
    assert_eq!((defaults.name.as_str(), defaults.enabled_tools.len()), ("shared", 2), "the server's defaults");
    assert_eq!(McpServerConfig::from_usage(&usage(&["fail"]), &spec).unwrap().enabled_tools, ["fail"]);

    let narrowed = defaults.narrowed(&crate::model::ToolSelection { enabled_tools: vec!["add".into()] }).unwrap();
    assert_eq!(narrowed.enabled_tools, ["add"]);
    let beyond = defaults.narrowed(&crate::model::ToolSelection { enabled_tools: vec!["crash".into()] });
    assert!(matches!(beyond, Err(McpError::NotEnabled { tools, .. }) if tools == ["crash"]));

    let docker = McpServerSpec { docker: Some(crate::model::DockerTransport::default()), ..McpServerSpec::default() };
    let error = McpServerConfig::from_usage(&usage(&[]), &docker).unwrap_err();
    assert!(matches!(error, McpError::DockerUnsupported { .. }), "{error}");
    let error = McpServerConfig::from_usage(&usage(&[]), &McpServerSpec::default()).unwrap_err();
    assert!(matches!(error, McpError::NoTransport { .. }), "{error}");
    let both = McpServerSpec { stdio: Some(stdio_transport(&[])), ..spec };
    let error = McpServerConfig::from_usage(&usage(&[]), &both).unwrap_err();
    assert_eq!(error.to_string(), "MCP server \"shared\" sets stdio and http transports; choose one");
}

#[tokio::test]
async fn enabled_tools_filter_what_the_model_sees_and_unknown_ones_are_an_error() {
    let config = McpServerConfig { enabled_tools: vec!["add".into(), "echo".into()], ..stdio_server("test", &[]) };
    let connection = connect(&config, &variables(&[])).await;
    let mut enabled = names(&connection);
    enabled.sort_unstable();
    assert_eq!(enabled, ["add", "echo"]);
    let hidden = connection.call_tool("fail", json!({}), CALL).await;
    assert_eq!((hidden.text.as_str(), hidden.is_error), ("MCP server \"test\" has no enabled tool \"fail\"", true));
    connection.shutdown().await.unwrap();

    let config = McpServerConfig { enabled_tools: vec!["echo".into(), "ech0".into()], ..stdio_server("test", &[]) };
    let message = connect_err(&config).await.to_string();
    assert!(message.starts_with("MCP server \"test\" does not offer \"ech0\"; it offers: "), "{message}");
    for offered in ["echo", "add", "crash"] {
        assert!(message.contains(offered), "{message}");
    }
}

#[tokio::test]
async fn tools_of_the_same_name_on_two_servers_are_told_apart() {
    let server = |name: &str| {
        let mut transport = stdio_transport(&[]);
        transport.env_placeholders = IndexMap::from([("WHO".to_owned(), name.to_owned())]);
        McpServerConfig { transport: McpTransport::Stdio(transport), ..stdio_server(name, &[]) }
    };
    let resolved: Vec<ResolvedMcpServer> =
        ["alpha", "beta"].iter().map(|name| server(name).resolve(&variables(&[])).unwrap()).collect();
    let toolset = McpToolset::connect(&resolved, &options()).await.unwrap();
    let exposed: Vec<&str> = toolset.tools().map(|tool| tool.exposed_name.as_str()).collect();
    assert!(exposed.contains(&"alpha__env") && exposed.contains(&"beta__env"), "{exposed:?}");
    for name in ["alpha", "beta"] {
        let outcome = toolset.call(&format!("{name}__env"), json!({ "name": "WHO" }), CALL).await;
        assert_eq!((outcome.text.as_str(), outcome.is_error), (name, false));
    }
    let unknown = toolset.call("gamma__env", json!({}), CALL).await;
    assert_eq!((unknown.text.as_str(), unknown.is_error), ("there is no tool \"gamma__env\"", true));
    let pids: Vec<u32> = toolset.connections().iter().filter_map(McpConnection::pid).collect();
    toolset.shutdown().await.unwrap();
    assert!(pids.len() == 2 && !pids.iter().any(|&pid| process_exists(pid)), "{pids:?}");

    let twice = vec![server("alpha").resolve(&variables(&[])).unwrap(); 2];
    let error = McpToolset::connect(&twice, &options()).await.unwrap_err();
    assert!(error.to_string().starts_with("two MCP tools would be offered to the model as \"alpha__"), "{error}");
}

#[tokio::test]
async fn a_slow_tool_past_its_timeout_is_an_error_outcome_and_the_server_carries_on() {
    let connection = connect(&stdio_server("test", &[]), &variables(&[])).await;
    let slow = connection.call_tool("slow", json!({ "ms": 10_000 }), Duration::from_millis(300)).await;
    assert!(slow.is_error, "{slow:?}");
    assert_eq!(slow.text, "tool \"slow\" of MCP server \"test\" did not answer within 300ms; the call was cancelled");
    assert!(slow.duration >= Duration::from_millis(300) && slow.duration < Duration::from_secs(5), "{slow:?}");
    let echoed = connection.call_tool("echo", json!({ "text": "still here" }), CALL).await;
    assert_eq!((echoed.text.as_str(), echoed.is_error), ("still here", false));
    connection.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_crashed_server_is_an_error_outcome_with_its_stderr_and_stays_one() {
    let connection = connect(&stdio_server("test", &[]), &variables(&[])).await;
    let crashed = connection.call_tool("crash", json!({}), CALL).await;
    assert!(crashed.is_error, "{crashed:?}");
    assert!(crashed.text.contains("the server process exited with status 7"), "{}", crashed.text);
    assert!(crashed.text.ends_with("its stderr ended with:\nmcp_test_server: crashing on purpose"), "{}", crashed.text);

    let after = connection.call_tool("echo", json!({ "text": "anyone?" }), CALL).await;
    assert!(after.is_error, "{after:?}");
    assert!(
        after.text.starts_with("MCP server \"test\" is not running: the process exited with status 7"),
        "{}",
        after.text
    );
    assert!(after.text.contains("crashing on purpose"), "{}", after.text);
    assert!(after.duration < Duration::from_secs(5));
    connection.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_leaves_no_process_behind_even_one_that_ignores_its_closed_stdin() {
    for args in [&[][..], &["--linger"][..]] {
        let connection = connect(&stdio_server("test", args), &variables(&[])).await;
        let pid = connection.pid().expect("a stdio server has a process");
        assert!(process_exists(pid));
        let started = std::time::Instant::now();
        connection.shutdown().await.unwrap();
        assert!(!process_exists(pid), "process {pid} ({args:?}) survived shutdown");
        assert!(started.elapsed() < Duration::from_secs(10), "{args:?}: {:?}", started.elapsed());
    }
}

#[tokio::test]
async fn a_server_that_cannot_start_gives_a_clear_error_with_its_stderr() {
    let missing = McpServerConfig {
        transport: McpTransport::Stdio(StdioTransport {
            command: "/nonexistent/mcp-server".into(),
            ..StdioTransport::default()
        }),
        ..stdio_server("ghost", &[])
    };
    let message = connect_err(&missing).await.to_string();
    assert!(message.starts_with("MCP server \"ghost\": cannot start `/nonexistent/mcp-server`: "), "{message}");

    let error = connect_err(&stdio_server("quitter", &["--fail-at-start"])).await;
    assert!(matches!(error, McpError::Initialize { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.starts_with("MCP server \"quitter\" failed to start: the process exited with status 3"),
        "{message}"
    );
    assert!(
        message.ends_with("its stderr ended with:\nmcp_test_server: refusing to start (--fail-at-start)"),
        "{message}"
    );
}
