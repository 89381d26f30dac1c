//! The agent runner: an LLM answers, calls tools, reads their results, and answers again.
//!
//! Only the first layer exists so far: [`provider`], one interface over the LLM servers an
//! agent can run on (OpenAI-compatible chat completions — Ollama, OpenAI, vLLM, LM Studio — and
//! Anthropic's Messages API), with streaming, retries and errors that say what to do. The tool
//! loop, MCP client, skills, sub-agents and sessions build on it. Nothing here prints: answers
//! stream to a caller-supplied sink and failures are typed errors with hints.

pub mod conversation;
pub mod prepare;
pub mod provider;
pub mod session;
#[cfg(test)]
pub(crate) mod test_server;
