//! The agent runner: an LLM answers, calls tools, reads their results, and answers again.
//!
//! - [`provider`]: one interface over the LLM servers an agent can run on (OpenAI-compatible chat
//!   completions — Ollama, OpenAI, vLLM, LM Studio — and Anthropic's Messages API), with
//!   streaming, retries and errors that say what to do.
//! - [`mcp`]: the MCP client (stdio and streamable HTTP servers, `${VAR}` placeholders, tool
//!   filtering and collision-free names).
//! - [`conversation`]: the tool loop, sub-agents as tools.
//! - [`prepare`]: a stored agent made ready to run, from a backend or a [`resources`] snapshot;
//!   [`launch`]: prepared with its variables and MCP servers; [`session`]: conversations across
//!   runs; [`definition`]: what an agent execution's record keeps to run it anywhere.
//!
//! Nothing here prints: answers stream to a caller-supplied sink and failures are typed errors
//! with hints.

pub mod conversation;
pub mod definition;
pub mod event;
pub mod launch;
pub mod mcp;
pub mod prepare;
pub mod provider;
pub mod resources;
pub mod resume;
pub mod session;
pub mod usage;
// A scripted LLM server for the unit tests; test code, so it lives with the integration tests.
#[cfg(test)]
#[path = "../../../tests/support/llm.rs"]
pub(crate) mod test_server;
