//! A real MCP server for the tests of stigmer's MCP client (`runner::agent::mcp`), built on
//! rmcp's server side. It is a test fixture, not a user example.
//!
//! ```text
//! mcp_test_server                  serve MCP on stdin/stdout
//! mcp_test_server --http           serve streamable HTTP on 127.0.0.1:<free port>/mcp; the URL is
//!                                  the first line on stdout; stops when stdin closes
//! mcp_test_server --linger         like the default, but keep running for a minute after stdin
//!                                  closes (a server that must be killed)
//! mcp_test_server --fail-at-start  write a line on stderr and exit with status 3
//! ```
//!
//! Tools: `echo {text}`, `add {a, b}`, `env {name}`, `argv`, `cwd`, `fail` (a tool error),
//! `slow {ms}`, `crash` (exits with status 7 after a line on stderr), `picture` (an image and a
//! text block); over HTTP also `header {name}` and `query` (what the request carried).

// Tools are methods of the server for rmcp's router, whether they use it or not.
#![allow(clippy::unused_self)]

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ServerHandler, ServiceExt as _, schemars, tool, tool_handler, tool_router};
use serde::Deserialize;
use tokio::io::AsyncReadExt as _;

/// The server: its tools and nothing else.
#[derive(Debug, Clone)]
struct TestServer {
    tool_router: ToolRouter<Self>,
}

/// Arguments of `echo`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct EchoArgs {
    /// The text to send back.
    text: String,
}

/// Arguments of `add`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct AddArgs {
    /// The first number.
    a: i64,
    /// The second number.
    b: i64,
}

/// Arguments of `env` and `header`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct NameArgs {
    /// The variable's or header's name.
    name: String,
}

/// Arguments of `slow`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct SlowArgs {
    /// How long to wait before answering, in milliseconds.
    ms: u64,
}

fn text(text: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(text)])
}

fn error(text: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(text)])
}

#[tool_router]
impl TestServer {
    fn new() -> Self {
        Self { tool_router: Self::tool_router() }
    }

    /// Sends its text back.
    #[tool(description = "Returns its text unchanged.")]
    fn echo(&self, Parameters(EchoArgs { text }): Parameters<EchoArgs>) -> String {
        text
    }

    /// Adds two numbers.
    #[tool(description = "Adds two integers.")]
    fn add(&self, Parameters(AddArgs { a, b }): Parameters<AddArgs>) -> String {
        a.saturating_add(b).to_string()
    }

    /// One of the server's environment variables.
    #[tool(description = "Returns an environment variable of the server process.")]
    fn env(&self, Parameters(NameArgs { name }): Parameters<NameArgs>) -> CallToolResult {
        match std::env::var(&name) {
            Ok(value) => text(value),
            Err(_) => error(format!("{name} is not set")),
        }
    }

    /// The server's arguments, as JSON.
    #[tool(description = "Returns the arguments the server process was started with, as a JSON array.")]
    fn argv(&self) -> String {
        serde_json::Value::from(std::env::args().skip(1).collect::<Vec<_>>()).to_string()
    }

    /// The server's working directory.
    #[tool(description = "Returns the working directory of the server process.")]
    fn cwd(&self) -> CallToolResult {
        match std::env::current_dir() {
            Ok(dir) => text(dir.display().to_string()),
            Err(problem) => error(problem.to_string()),
        }
    }

    /// Always a tool error.
    #[tool(description = "Always fails, with a tool error.")]
    fn fail(&self) -> CallToolResult {
        error("the tool failed on purpose")
    }

    /// Answers late.
    #[tool(description = "Answers after the given number of milliseconds.")]
    async fn slow(&self, Parameters(SlowArgs { ms }): Parameters<SlowArgs>) -> String {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        format!("slept {ms} ms")
    }

    /// Ends the process in the middle of the call.
    #[tool(description = "Exits the server process with status 7.")]
    fn crash(&self) -> String {
        eprintln!("mcp_test_server: crashing on purpose");
        let _ = std::io::stderr().flush();
        std::process::exit(7)
    }

    /// Content that is not text.
    #[tool(description = "Returns a tiny image and a caption.")]
    fn picture(&self) -> CallToolResult {
        CallToolResult::success(vec![ContentBlock::image("aGVsbG8=", "image/png"), ContentBlock::text("a caption")])
    }

    /// A header of the HTTP request that carried the call.
    #[tool(description = "Returns a header of the HTTP request (streamable HTTP only).")]
    fn header(
        &self,
        Parameters(NameArgs { name }): Parameters<NameArgs>,
        Extension(request): Extension<http::request::Parts>,
    ) -> CallToolResult {
        match request.headers.get(&name).map(|value| value.to_str()) {
            Some(Ok(value)) => text(value),
            _ => error(format!("no header {name}")),
        }
    }

    /// The query string of the HTTP request that carried the call.
    #[tool(description = "Returns the query string of the HTTP request (streamable HTTP only).")]
    fn query(&self, Extension(request): Extension<http::request::Parts>) -> String {
        request.uri.query().unwrap_or_default().to_owned()
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for TestServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|arg| arg == "--fail-at-start") {
        eprintln!("mcp_test_server: refusing to start (--fail-at-start)");
        std::process::exit(3);
    }
    if args.iter().any(|arg| arg == "--http") {
        serve_http().await
    } else {
        serve_stdio(args.iter().any(|arg| arg == "--linger")).await
    }
}

async fn serve_stdio(linger: bool) -> Result<(), Box<dyn std::error::Error>> {
    let running = TestServer::new().serve(rmcp::transport::stdio()).await?;
    running.waiting().await?;
    if linger {
        tokio::time::sleep(Duration::from_mins(1)).await;
    }
    Ok(())
}

async fn serve_http() -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let service = StreamableHttpService::new(
        || Ok(TestServer::new()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let router = axum::Router::new().nest_service("/mcp", service);
    println!("http://{address}/mcp");
    std::io::stdout().flush()?;
    // The test that started us closes stdin (or dies): stop then, so no server outlives it.
    let mut stdin = tokio::io::stdin();
    let mut sink = Vec::new();
    tokio::select! {
        served = axum::serve(listener, router) => served?,
        _ = stdin.read_to_end(&mut sink) => {}
    }
    Ok(())
}
